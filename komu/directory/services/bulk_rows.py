"""The rules for each kind of row in a bulk load: resolve its codes against the database and the rest of the
file, check it with the same rules as the screens, and add what it does to the plan."""

from __future__ import annotations

import datetime
import unicodedata
from collections.abc import Callable, Collection
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Model
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from komu.core import codes, wareki
from komu.core.codes import CodeError
from komu.core.tabular import Row
from komu.directory.models import (
    BOARD_ROLES,
    SCHOOL_ROLES,
    Board,
    HomeroomClass,
    Prefecture,
    Role,
    School,
    SchoolYear,
    StaffAssignment,
)
from komu.directory.services._common import Errors, add_error, model_errors
from komu.directory.services.bulk_plan import (
    BOARD_KINDS,
    CATEGORIES,
    CLASS_KINDS,
    STAFF_ROLES,
    Plan,
    choice,
    ja,
    parse_grade,
    snapshot,
)
from komu.directory.services.organisations import (
    board_kind_for_code,
    board_parent_error,
    fill_board,
    fill_school,
)
from komu.directory.services.school_years import ClassInput, fill_class, normalize_class_name

_SCHOOL_MISSING = gettext_lazy(
    "学校コード「%(code)s」の学校が登録されていません。先に学校を登録するか、学校コードを確認してください。"
)
_BOARD_MISSING = gettext_lazy(
    "教育委員会コード「%(code)s」の教育委員会が登録されていません。先に教育委員会を登録するか、コードを確認してください。"
)


def _checked(plan: Plan, row: Row, obj: Model, errors: Errors, *, exclude: Collection[str]) -> bool:
    """Every kind of row ends here: the model's own checks on top of the row's (skipping the fields already in
    error and the references the planner resolved itself), then either the row's errors go to the report
    (False) or the row may be recorded (True)."""
    for key, messages in model_errors(obj, exclude={*errors, *exclude}, check_unique=False).items():
        errors.setdefault(key, messages)
    if errors:
        plan.report_errors(row.line, errors)
        return False
    return True


# --- boards ----------------------------------------------------------------------------------------------------

# Labels of the fields a row may change, as the preview's 「変更する項目」 shows them.
_BOARD_TRACKED = {
    "code": gettext_lazy("教育委員会コード"),
    "name": gettext_lazy("名称"),
    "kind": gettext_lazy("種別"),
    "prefecture": gettext_lazy("都道府県"),
    "parent": gettext_lazy("上位教育委員会"),
}
_BOARD_HEADERS: dict[str, str | None] = {
    "code": "教育委員会コード",
    "prefecture": "教育委員会コード",
    "name": "名称",
    "kind": "種別",
    "parent": "上位教育委員会コード",
    "__all__": None,
}


def _plan_boards(rows: list[Row], plan: Plan) -> None:
    file_codes = {row.values["code"] for row in rows}
    parent_codes = {row.values.get("parent_code", "") for row in rows} - {""}
    existing = {
        b.code: b for b in Board.objects.filter(code__in=file_codes | parent_codes).select_related("parent")
    }
    built: dict[str, tuple[Row, Board, dict[str, Any] | None, Errors]] = {}
    for row in rows:
        values = row.values
        board = existing.get(values["code"]) or Board()
        before = snapshot(board, _BOARD_TRACKED)
        errors: Errors = {}
        kind = ""
        if values.get("kind"):
            try:
                kind = choice(
                    values["kind"], BOARD_KINDS, "種別", ["都道府県教育委員会", "市区町村教育委員会"]
                )
            except ValueError as exc:
                add_error(errors, "kind", str(exc))
        elif before is not None and "kind" not in values:
            kind = board.kind  # the column is absent: keep what is registered
        fill_board(board, code=values["code"], name=values["name"], kind=kind, errors=errors)
        if not kind and "code" not in errors:
            board.kind = board_kind_for_code(board.code)
        built[values["code"]] = (row, board, before, errors)

    for row, board, before, errors in built.values():
        if "parent_code" in row.values:
            parent_code = row.values["parent_code"]
            parent = None
            if parent_code:
                parent = built[parent_code][1] if parent_code in built else existing.get(parent_code)
                if parent is None:
                    add_error(
                        errors,
                        "parent",
                        _(
                            "上位教育委員会コード「%(code)s」の教育委員会は、このファイルにも登録済みの教育委員会に"
                            "もありません。先に登録するか、コードを確認してください。"
                        )
                        % {"code": parent_code},
                    )
            board.parent = parent
        if "parent" not in errors and (message := board_parent_error(board, board.parent)):
            add_error(errors, "parent", message)
        if (
            before is not None
            and before["kind"] == Board.Kind.PREFECTURAL
            and board.kind != Board.Kind.PREFECTURAL
            and Board.objects.filter(parent=board).exists()
        ):
            add_error(
                errors,
                "kind",
                _("下位の教育委員会がある都道府県教育委員会を市区町村教育委員会にはできません。"),
            )
        if not _checked(plan, row, board, errors, exclude={"parent", "prefecture"}):
            continue
        # Parents are prefectural boards, which have no parent themselves: two stages order every reference.
        plan.record(
            line=row.line,
            obj=board,
            before=before,
            tracked=_BOARD_TRACKED,
            target=_("教育委員会"),
            key=board.code,
            label=board.name,
            stage=0 if board.parent is None else 1,
        )


# --- schools ---------------------------------------------------------------------------------------------------

_SCHOOL_TRACKED = {
    "name": gettext_lazy("学校名"),
    "board": gettext_lazy("設置者"),
    "address": gettext_lazy("所在地"),
    "phone": gettext_lazy("電話番号"),
}
_SCHOOL_HEADERS: dict[str, str | None] = {
    "code": "学校コード",
    "school_type": "学校コード",
    "prefecture": "学校コード",
    "name": "学校名",
    "board": "教育委員会コード",
    "address": "所在地",
    "phone": "電話番号",
    "__all__": None,
}


def _plan_schools(rows: list[Row], plan: Plan) -> None:
    existing = {
        s.code: s
        for s in School.objects.filter(code__in=[r.values["code"] for r in rows]).select_related("board")
    }
    boards = {b.code: b for b in Board.objects.filter(code__in={r.values["board_code"] for r in rows})}
    for row in rows:
        values = row.values
        school = existing.get(values["code"]) or School()
        before = snapshot(school, _SCHOOL_TRACKED)
        errors: Errors = {}
        board = boards.get(values["board_code"])
        if board is None:
            add_error(
                errors,
                "board",
                _BOARD_MISSING % {"code": values["board_code"]},
            )
        fill_school(
            school,
            code=values["code"],
            name=values["name"],
            board=board,
            address=values.get("address"),
            phone=values.get("phone"),
            errors=errors,
        )
        derived = {"prefecture", "school_type"} if "code" in errors else set()
        if not _checked(plan, row, school, errors, exclude={*derived, "board"}):
            continue
        plan.record(
            line=row.line,
            obj=school,
            before=before,
            tracked=_SCHOOL_TRACKED,
            target=_("学校"),
            key=school.code,
            label=school.name,
        )


# --- classes ---------------------------------------------------------------------------------------------------

_CLASS_TRACKED = {
    "kind": gettext_lazy("種別"),
    "special_needs_category": gettext_lazy("障害種別"),
    "sort_order": gettext_lazy("並び順"),
}
_CLASS_HEADERS: dict[str, str | None] = {
    "school": "学校コード",
    "school_year": "年度",
    "year": "年度",
    "grade_code": "学年",
    "name": "学級名",
    "kind": "種別",
    "special_needs_category": "障害種別",
    "sort_order": "並び順",
    "__all__": None,
}


def _year_in_range(plan: Plan, row: Row, column: str) -> int | None:
    year = int(row.values[column])
    if not 1990 <= year <= 2100:
        plan.issue(
            row.line,
            "年度",
            _("年度「%(year)s」が正しくありません。西暦4桁で入力してください（例: 2026）。") % {"year": year},
        )
        return None
    return year


def _plan_classes(rows: list[Row], plan: Plan) -> None:
    schools = {s.code: s for s in School.objects.filter(code__in={r.values["school_code"] for r in rows})}
    years = {
        (y.school_id, y.year): y
        for y in SchoolYear.objects.filter(
            school__in=list(schools.values()), year__in={int(r.values["year"]) for r in rows}
        )
    }
    existing = {
        (k.school_year_id, k.grade_code, k.name): k
        for k in HomeroomClass.objects.filter(school_year__in=list(years.values()))
    }
    new_years: dict[tuple[int, int], SchoolYear] = {}
    seen: dict[tuple[int, int, str, str], int] = {}
    for row in rows:
        values = row.values
        school = schools.get(values["school_code"])
        if school is None:
            plan.issue(
                row.line,
                "学校コード",
                _SCHOOL_MISSING % {"code": values["school_code"]},
            )
            continue
        year = _year_in_range(plan, row, "year")
        errors: Errors = {}
        try:
            grade = parse_grade(values["grade"], school.school_type)
        except CodeError as exc:
            add_error(errors, "grade_code", exc.message)
            grade = ""
        name = normalize_class_name(values["name"])
        if year is None or errors:
            plan.report_errors(row.line, errors)
            continue
        key = (school.pk, year, grade, name)
        if (first := seen.setdefault(key, row.line)) != row.line:
            plan.issue(
                row.line,
                "学級名",
                _(
                    "%(school)sの%(year)d年度%(grade)s「%(name)s」が%(first)d行目と重複しています。どちらかの行を削除してください。"
                )
                % {
                    "school": school.name,
                    "year": year,
                    "grade": codes.grade_display(grade),
                    "name": name,
                    "first": first,
                },
                "duplicate_row",
            )
            continue
        school_year = years.get((school.pk, year))
        if school_year is None:
            school_year = new_years.get((school.pk, year))
            if school_year is None:
                start, end = wareki.fiscal_year_bounds(year)
                school_year = SchoolYear(school=school, year=year, start_date=start, end_date=end)
                new_years[(school.pk, year)] = school_year
                plan.record(
                    line=None,
                    obj=school_year,
                    before=None,
                    tracked={},
                    target=_("年度"),
                    key=f"{school.code} {year}",
                    label=f"{school.name} {school_year.title}",
                    stage=0,
                )
        klass = existing.get((school_year.pk, grade, name)) if school_year.pk else None
        klass = klass or HomeroomClass(school_year=school_year)
        before = snapshot(klass, _CLASS_TRACKED)
        kind = klass.kind if before is not None else HomeroomClass.Kind.REGULAR
        category = klass.special_needs_category
        if values.get("kind"):
            try:
                kind = choice(values["kind"], CLASS_KINDS, "種別", ["通常の学級", "特別支援学級"])
            except ValueError as exc:
                add_error(errors, "kind", str(exc))
        elif "kind" in values:
            kind = HomeroomClass.Kind.REGULAR
        if "category" in values:
            category = ""
            if values["category"]:
                try:
                    category = choice(
                        values["category"],
                        CATEGORIES,
                        "障害種別",
                        [ja(c.label) for c in HomeroomClass.SpecialNeedsCategory],
                    )
                except ValueError as exc:
                    add_error(errors, "special_needs_category", str(exc))
        sort_order = int(values["sort_order"]) if values.get("sort_order") else klass.sort_order
        if "sort_order" in values and not values["sort_order"]:
            sort_order = 0
        fill_class(
            klass,
            school_year=school_year,
            data=ClassInput(
                grade_code=grade, name=name, kind=kind, special_needs_category=category, sort_order=sort_order
            ),
            errors=errors,
        )
        if not _checked(plan, row, klass, errors, exclude={"school_year"}):
            continue
        plan.record(
            line=row.line,
            obj=klass,
            before=before,
            tracked=_CLASS_TRACKED,
            target=_("学級"),
            key=f"{school.code} {year} {grade}",
            label=f"{school.name} {klass}",
            stage=1,
        )


# --- staff -----------------------------------------------------------------------------------------------------

_STAFF_TRACKED = {"start_date": gettext_lazy("開始日"), "end_date": gettext_lazy("終了日")}
_STAFF_HEADERS: dict[str, str | None] = {
    "login_id": "ログインID",
    "user": "ログインID",
    "role": "役割",
    "school": "学校コード",
    "board": "教育委員会コード",
    "prefecture": "都道府県コード",
    "homeroom_class": "学級名",
    "start_date": "開始日",
    "end_date": "終了日",
    "__all__": None,
}


def _staff_place_errors(role: str, values: dict[str, str]) -> Errors:
    """Which code columns a role's row must fill and which it must leave blank."""
    errors: Errors = {}
    needs = {
        "school": role in SCHOOL_ROLES,
        "board": role in BOARD_ROLES,
        "prefecture": role == Role.PREFECTURAL_ANALYST,
    }
    columns = {"school": "school_code", "board": "board_code", "prefecture": "prefecture_code"}
    headings = {"school": "学校コード", "board": "教育委員会コード", "prefecture": "都道府県コード"}
    label = Role(role).label
    for place, needed in needs.items():
        given = bool(values.get(columns[place]))
        if needed and not given:
            add_error(
                errors,
                place,
                _("「%(role)s」の行には%(column)sを入力してください。")
                % {"role": label, "column": headings[place]},
            )
        elif given and not needed:
            add_error(
                errors,
                place,
                _("「%(role)s」の行では%(column)sを空にしてください。")
                % {"role": label, "column": headings[place]},
            )
    wants_class = role == Role.HOMEROOM_TEACHER
    for column, key in (("grade", "homeroom_class"), ("class_name", "homeroom_class")):
        given = bool(values.get(column))
        heading = "学年" if column == "grade" else "学級名"
        if wants_class and not given:
            add_error(errors, key, _("学級担任の行には%(column)sを入力してください。") % {"column": heading})
        elif given and not wants_class:
            add_error(
                errors, key, _("%(column)sは学級担任の行にだけ入力してください。") % {"column": heading}
            )
    return errors


def _date_or_none(value: str) -> datetime.date | None:
    return datetime.date.fromisoformat(value) if value else None


def _plan_staff(rows: list[Row], plan: Plan) -> None:
    user_model = get_user_model()
    users = {
        u.username: u for u in user_model.objects.filter(username__in={r.values["login_id"] for r in rows})
    }
    schools = {
        s.code: s
        for s in School.objects.filter(
            code__in={r.values.get("school_code", "") for r in rows} - {""}
        ).select_related("board")
    }
    boards = {
        b.code: b
        for b in Board.objects.filter(code__in={r.values.get("board_code", "") for r in rows} - {""})
    }
    prefectures = {p.code: p for p in Prefecture.objects.all()}
    this_year = wareki.fiscal_year_of(timezone.localdate())
    classes = {
        (k.school_year.school_id, k.school_year.year, k.grade_code, k.name): k
        for k in HomeroomClass.objects.filter(school_year__school__in=list(schools.values())).select_related(
            "school_year"
        )
    }
    existing = {
        (a.user_id, a.role, a.board_id, a.school_id, a.homeroom_class_id, a.prefecture_id): a
        for a in StaffAssignment.objects.filter(user__in=list(users.values()))
    }
    seen: dict[tuple[Any, ...], int] = {}
    for row in rows:
        values = row.values
        errors: Errors = {}
        try:
            role = choice(
                values["role"],
                STAFF_ROLES,
                "役割",
                [ja(label) for value, label in Role.choices if value != Role.GUARDIAN],
            )
        except ValueError as exc:
            plan.issue(row.line, "役割", str(exc))
            continue
        errors = _staff_place_errors(role, values)
        user = users.get(values["login_id"])
        if user is None or not user.is_active:
            add_error(
                errors,
                "user",
                _(
                    "ログインID「%(login_id)s」の利用者が見つかりません。"
                    "先に利用者を登録するか、ログインIDを確認してください。"
                )
                % {"login_id": values["login_id"]},
            )
        elif user.kind != user_model.Kind.STAFF:
            add_error(
                errors,
                "user",
                _("ログインID「%(login_id)s」は保護者の利用者です。教職員の利用者を指定してください。")
                % {"login_id": values["login_id"]},
            )
        school = schools.get(values.get("school_code", "")) if values.get("school_code") else None
        if values.get("school_code") and school is None:
            add_error(
                errors,
                "school",
                _SCHOOL_MISSING % {"code": values["school_code"]},
            )
        board = boards.get(values.get("board_code", "")) if values.get("board_code") else None
        if values.get("board_code") and board is None:
            add_error(
                errors,
                "board",
                _BOARD_MISSING % {"code": values["board_code"]},
            )
        prefecture = None
        if values.get("prefecture_code"):
            prefecture = prefectures.get(unicodedata.normalize("NFKC", values["prefecture_code"]).strip())
            if prefecture is None:
                add_error(
                    errors,
                    "prefecture",
                    _(
                        "都道府県コード「%(code)s」は存在しません。01〜47の2桁で入力してください（例: 東京都は 13）。"
                    )
                    % {"code": values["prefecture_code"]},
                )
        klass = None
        if role == Role.HOMEROOM_TEACHER and school is not None and not errors:
            year = int(values["year"]) if values.get("year") else this_year
            try:
                grade = parse_grade(values["grade"], school.school_type)
            except CodeError as exc:
                add_error(errors, "homeroom_class", exc.message)
            else:
                name = normalize_class_name(values["class_name"])
                klass = classes.get((school.pk, year, grade, name))
                if klass is None:
                    add_error(
                        errors,
                        "homeroom_class",
                        _(
                            "%(school)sの%(year)d年度%(grade)sに「%(name)s」という学級がありません。"
                            "先に学級を登録するか、年度・学年・学級名を確認してください。"
                        )
                        % {"school": school.name, "year": year, "grade": codes.grade_display(grade), "name": name},
                    )
        if errors:
            plan.report_errors(row.line, errors)
            continue
        assert user is not None  # narrowed by the checks above
        key = (
            user.pk,
            role,
            board.pk if board else None,
            school.pk if school else None,
            klass.pk if klass else None,
            prefecture.pk if prefecture else None,
        )
        if (first := seen.setdefault(key, row.line)) != row.line:
            plan.issue(
                row.line,
                "ログインID",
                _(
                    "%(user)s の「%(role)s」の配置が%(first)d行目と重複しています。どちらかの行を削除してください。"
                )
                % {"user": user.username, "role": Role(role).label, "first": first},
                "duplicate_row",
            )
            continue
        assignment = existing.get(key) or StaffAssignment(
            user=user, role=role, board=board, school=school, homeroom_class=klass, prefecture=prefecture
        )
        before = snapshot(assignment, _STAFF_TRACKED)
        if "start_date" in values:
            assignment.start_date = _date_or_none(values["start_date"])
        if "end_date" in values:
            assignment.end_date = _date_or_none(values["end_date"])
        if not _checked(
            plan, row, assignment, errors, exclude={"user", "board", "school", "homeroom_class", "prefecture"}
        ):
            continue
        place = assignment.organisation_label
        plan.record(
            line=row.line,
            obj=assignment,
            before=before,
            tracked=_STAFF_TRACKED,
            target=_("配置"),
            key=user.username,
            label=f"{Role(role).label}（{place}）",
        )


PLANNERS: dict[str, tuple[Callable[[list[Row], Plan], None], dict[str, str | None]]] = {
    "boards": (_plan_boards, _BOARD_HEADERS),
    "schools": (_plan_schools, _SCHOOL_HEADERS),
    "classes": (_plan_classes, _CLASS_HEADERS),
    "staff": (_plan_staff, _STAFF_HEADERS),
}
