"""A school's 年度 and its 学期, and the homeroom classes (学級) of a year."""

from __future__ import annotations

import datetime
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils.translation import gettext as _

from komu.access import roles
from komu.access.scope import Actor
from komu.audit.services import audit_record
from komu.core import codes, wareki
from komu.core.codes import CodeError
from komu.directory import selectors
from komu.directory.models import HomeroomClass, SchoolYear, Term
from komu.directory.services._common import (
    Errors,
    add_error,
    audit_scope,
    clean_line,
    model_errors,
    raise_if,
    user_of,
)

EARLIEST_YEAR = 1990
LATEST_YEAR = 2100


def _jp(day: datetime.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def school_year_errors(school_year: SchoolYear) -> Errors:
    """The rules of a 年度 beyond the model's own. 学年 runs from 1 April to 31 March (学校教育法施行規則 §59),
    so a year's dates stay inside those bounds and the year is named by the April it starts in."""
    errors: Errors = {}
    year = school_year.year
    if not EARLIEST_YEAR <= year <= LATEST_YEAR:
        add_error(
            errors,
            "year",
            _("年度は%(first)d〜%(last)dの西暦4桁で入力してください（例: 2026）。")
            % {"first": EARLIEST_YEAR, "last": LATEST_YEAR},
        )
        return errors
    first, last = wareki.fiscal_year_bounds(year)
    for key, label in (("start_date", _("開始日")), ("end_date", _("終了日"))):
        day = getattr(school_year, key)
        if day and not first <= day <= last:
            add_error(
                errors,
                key,
                _("%(label)sは%(first)sから%(last)sまでの日付にしてください。")
                % {"label": label, "first": _jp(first), "last": _jp(last)},
            )
    return errors


@transaction.atomic
def school_year_create(
    *,
    actor: Actor,
    school_id: int,
    year: int,
    start_date: datetime.date | None = None,
    end_date: datetime.date | None = None,
) -> SchoolYear:
    """A new 年度; without dates it runs 1 April to 31 March (the board may set other dates)."""
    school = selectors.school_get_for(actor=actor, school_id=school_id, capability=roles.DIRECTORY_MANAGE)
    school_year = SchoolYear(school=school, year=year)
    errors = school_year_errors(school_year)
    if "year" in errors:
        raise_if(errors)
    default_start, default_end = wareki.fiscal_year_bounds(year)
    school_year.start_date = start_date or default_start
    school_year.end_date = end_date or default_end
    errors = school_year_errors(school_year)
    if not errors and SchoolYear.objects.filter(school=school, year=year).exists():
        add_error(errors, "year", _("%(year)sはすでに登録されています。") % {"year": school_year.title})
    for key, messages in model_errors(school_year, exclude={*errors, "school"}, check_unique=False).items():
        errors.setdefault(key, messages)
    raise_if(errors)
    school_year.save()
    audit_record(
        actor=user_of(actor),
        action="directory.school_year.created",
        obj=school_year,
        fields=["year", "start_date", "end_date"],
        detail={"year": year},
        scope=audit_scope(school_id=school.pk, board_id=school.board_id),
    )
    return school_year


# --- terms -----------------------------------------------------------------------------------------------------

TERM_COUNTS = (2, 3)
DEFAULT_TERM_NAMES = {2: ("前期", "後期"), 3: ("1学期", "2学期", "3学期")}


@dataclass(frozen=True)
class TermInput:
    start_date: datetime.date
    end_date: datetime.date
    name: str = ""  # "" → 前期/後期 or n学期


def terms_errors(school_year: SchoolYear, terms: Sequence[TermInput]) -> Errors:
    """2 or 3 terms, in order, not overlapping, inside the year. Keys name the term: ``term2_start``."""
    errors: Errors = {}
    if len(terms) not in TERM_COUNTS:
        add_error(errors, "__all__", _("学期は2つ（前期・後期）か3つ（1〜3学期）にしてください。"))
        return errors
    previous: TermInput | None = None
    for number, term in enumerate(terms, start=1):
        values = {"n": number, "start": _jp(school_year.start_date), "end": _jp(school_year.end_date)}
        if term.start_date > term.end_date:
            add_error(
                errors, f"term{number}_end", _("%(n)dつ目の学期の終了日は開始日以降にしてください。") % values
            )
        if not school_year.start_date <= term.start_date <= school_year.end_date:
            add_error(
                errors,
                f"term{number}_start",
                _("%(n)dつ目の学期の開始日は年度の期間（%(start)s〜%(end)s）の中にしてください。") % values,
            )
        if not school_year.start_date <= term.end_date <= school_year.end_date:
            add_error(
                errors,
                f"term{number}_end",
                _("%(n)dつ目の学期の終了日は年度の期間（%(start)s〜%(end)s）の中にしてください。") % values,
            )
        if previous is not None and term.start_date <= previous.end_date:
            add_error(
                errors,
                f"term{number}_start",
                _("%(n)dつ目の学期の開始日は、前の学期の終了日（%(previous)s）より後にしてください。")
                % {**values, "previous": _jp(previous.end_date)},
            )
        previous = term
    return errors


@transaction.atomic
def terms_set(*, actor: Actor, school_year_id: int, terms: Sequence[TermInput]) -> list[Term]:
    """Replace a year's terms with 2 or 3 new ones (a board sets the term structure for the whole year)."""
    school_year = selectors.school_year_get_for(
        actor=actor, school_year_id=school_year_id, capability=roles.DIRECTORY_MANAGE
    )
    errors = terms_errors(school_year, terms)
    raise_if(errors if "__all__" in errors else {})
    names = DEFAULT_TERM_NAMES[len(terms)]
    built: list[Term] = []
    for number, term in enumerate(terms, start=1):
        name = clean_line(
            term.name,
            key=f"term{number}_name",
            label=_("%(n)dつ目の学期の名称") % {"n": number},
            errors=errors,
        )
        built.append(
            Term(
                school_year=school_year,
                number=number,
                name=name or names[number - 1],
                start_date=term.start_date,
                end_date=term.end_date,
            )
        )
    raise_if(errors)
    for term_obj in built:
        for key, messages in model_errors(term_obj, exclude={"school_year"}, check_unique=False).items():
            errors.setdefault(f"term{term_obj.number}_{key.removesuffix('_date')}", messages)
    raise_if(errors)
    school_year.terms.all().delete()
    Term.objects.bulk_create(built)
    audit_record(
        actor=user_of(actor),
        action="directory.terms.set",
        obj=school_year,
        fields=["terms"],
        detail={"year": school_year.year, "terms": len(built)},
        scope=audit_scope(school_id=school_year.school_id, board_id=school_year.school.board_id),
    )
    return built


# --- homeroom classes ------------------------------------------------------------------------------------------


def normalize_class_name(name: str) -> str:
    """学級名 in one width (１組 and 1組 are one class): NFKC, blanks removed at the ends.

    Unlike a person's or school's name, a class name is a label the school chooses, so folding it is safe and
    keeps the same class from being registered twice.
    """
    return unicodedata.normalize("NFKC", name).strip()


@dataclass(frozen=True)
class ClassInput:
    grade_code: str
    name: str
    kind: str = HomeroomClass.Kind.REGULAR
    special_needs_category: str = ""
    sort_order: int = 0


def fill_class(klass: HomeroomClass, *, school_year: SchoolYear, data: ClassInput, errors: Errors) -> None:
    """Set a class's values: the grade must exist at this 学校種, a category only for 特別支援学級."""
    klass.school_year = school_year
    try:
        klass.grade_code = codes.validate_grade_code(
            data.grade_code, school_type=school_year.school.school_type
        )
    except CodeError as exc:
        add_error(errors, "grade_code", exc.message)
    name = clean_line(data.name, key="name", label=_("学級名"), errors=errors, required=True)
    klass.name = normalize_class_name(name)
    klass.kind = data.kind
    klass.special_needs_category = (
        data.special_needs_category if data.kind != HomeroomClass.Kind.REGULAR else ""
    )
    if data.kind == HomeroomClass.Kind.REGULAR and data.special_needs_category:
        add_error(
            errors,
            "special_needs_category",
            _(
                "障害種別は特別支援学級にだけ設定できます。種別を「特別支援学級」にするか、障害種別を空にしてください。"
            ),
        )
    klass.sort_order = data.sort_order


def _class_errors(klass: HomeroomClass, data: ClassInput) -> Errors:
    errors: Errors = {}
    fill_class(klass, school_year=klass.school_year, data=data, errors=errors)
    if (
        "grade_code" not in errors
        and "name" not in errors
        and (
            HomeroomClass.objects.filter(
                school_year=klass.school_year, grade_code=klass.grade_code, name=klass.name
            )
            .exclude(pk=klass.pk)
            .exists()
        )
    ):
        add_error(
            errors,
            "name",
            _("%(grade)sに「%(name)s」はすでにあります。別の学級名にしてください。")
            % {"grade": codes.grade_display(klass.grade_code), "name": klass.name},
        )
    for key, messages in model_errors(klass, exclude={*errors, "school_year"}, check_unique=False).items():
        errors.setdefault(key, messages)
    return errors


@transaction.atomic
def homeroom_class_create(*, actor: Actor, school_year_id: int, data: ClassInput) -> HomeroomClass:
    school_year = selectors.school_year_get_for(
        actor=actor, school_year_id=school_year_id, capability=roles.DIRECTORY_MANAGE
    )
    klass = HomeroomClass(school_year=school_year)
    raise_if(_class_errors(klass, data))
    klass.save()
    audit_record(
        actor=user_of(actor),
        action="directory.class.created",
        obj=klass,
        fields=["grade_code", "name", "kind", "special_needs_category"],
        detail={"year": school_year.year, "grade": klass.grade_code},
        scope=audit_scope(school_id=school_year.school_id, board_id=school_year.school.board_id),
    )
    return klass


@transaction.atomic
def homeroom_class_update(*, actor: Actor, class_id: int, data: ClassInput) -> HomeroomClass:
    klass = selectors.homeroom_class_get_for(
        actor=actor, class_id=class_id, capability=roles.DIRECTORY_MANAGE
    )
    fields = ("grade_code", "name", "kind", "special_needs_category", "sort_order")
    before = {name: getattr(klass, name) for name in fields}
    raise_if(_class_errors(klass, data))
    klass.save()
    school = klass.school_year.school
    audit_record(
        actor=user_of(actor),
        action="directory.class.updated",
        obj=klass,
        fields=[name for name in fields if getattr(klass, name) != before[name]],
        detail={"year": klass.school_year.year, "grade": klass.grade_code},
        scope=audit_scope(school_id=school.pk, board_id=school.board_id),
    )
    return klass
