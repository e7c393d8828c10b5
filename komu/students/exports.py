"""名簿の出力: a class list (出席番号, 氏名, ふりがな, 性別, 生年月日) or a registry (plus address and guardians'
contacts, fields chosen) of one class, as CSV (UTF-8 with BOM, or CP932) or XLSX.

An export is a disclosure: it needs students.export within the actor's scope (a homeroom teacher: their own class
only), guardians' contacts need guardians.view_contact as on screen, a reason is asked for, and the audit event
names who, why, which pupils (their ids) and which fields. Cells are formula-safe (komu.core.tabular escapes =, +,
-, @ and their full-width forms). A CP932 file that cannot hold a character (𠮷, a variation sequence) is never
written with "?": the outcome lists every row and field that cannot be encoded, and the caller offers UTF-8.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from django.db import transaction
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.audit.services import Scope, audit_record
from komu.core.errors import PermissionDeniedError, ValidationFailed
from komu.core.tabular import Cp932Error, write_csv, write_xlsx
from komu.core.text import TextError, cp932_unencodable, describe_char, reject_control_chars
from komu.core.wareki import fiscal_year_of
from komu.directory.models import HomeroomClass, Role
from komu.disclosures.models import Disclosure
from komu.disclosures.services import StepUpRequired, disclosure_record, is_bulk, new_serial, watermark_words
from komu.students.models import ClassMembership, GuardianLink, Student

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

ExportKind = Literal["class_list", "registry"]
ExportFormat = Literal["csv_utf8", "csv_cp932", "xlsx"]

# Field codes, in column order, with their headings. A class list has the first five; a registry may add the rest.
FIELD_LABELS: dict[str, StrOrPromise] = {
    "shusseki_no": gettext_lazy("出席番号"),
    "name": gettext_lazy("氏名"),
    "kana": gettext_lazy("ふりがな"),
    "sex": gettext_lazy("性別"),
    "birth_date": gettext_lazy("生年月日"),
    "address": gettext_lazy("住所"),
    "guardian_name": gettext_lazy("保護者氏名"),
    "guardian_relationship": gettext_lazy("続柄"),
    "guardian_phone": gettext_lazy("保護者電話番号"),
    "guardian_email": gettext_lazy("保護者メールアドレス"),
    "guardian_address": gettext_lazy("保護者住所"),
    "other_guardians": gettext_lazy("その他の保護者（氏名・続柄・電話）"),
}
CLASS_LIST_FIELDS = ("shusseki_no", "name", "kana", "sex", "birth_date")
REGISTRY_FIELDS = tuple(FIELD_LABELS)
GUARDIAN_FIELDS = frozenset({"guardian_name", "guardian_relationship", "guardian_phone", "guardian_email",
                             "guardian_address", "other_guardians"})
FORMATS: dict[str, str] = {"csv_utf8": "CSV（UTF-8）", "csv_cp932": "CSV（Shift_JIS / CP932）", "xlsx": "Excel（XLSX）"}
_MAX_REASON = 200
_SEX = {"male": "男", "female": "女", "unspecified": ""}


def exportable_classes_for(actor: Actor) -> QuerySet[HomeroomClass]:
    """Classes whose lists the actor may export: a homeroom teacher their own class, school roles their school's
    classes, board officers their board's schools' classes."""
    q = Q(pk__in=[])
    for grant in actor.grants_with(roles.STUDENTS_EXPORT):
        if grant.role == Role.HOMEROOM_TEACHER:
            q |= Q(pk=grant.class_id)
        else:
            narrowed = Actor(user=actor.user, grants=(grant,))
            q |= Q(school_year__school__in=scope.schools_for(narrowed, roles.STUDENTS_EXPORT))
    return HomeroomClass.objects.filter(q)


def export_class_choices_for(*, actor: Actor) -> list[HomeroomClass]:
    """This year's and later classes the actor may export, for the picker (no personal data)."""
    return list(
        exportable_classes_for(actor).filter(school_year__year__gte=fiscal_year_of(timezone.localdate()))
        .select_related("school_year__school")
        .order_by("school_year__school__code", "school_year__year", "grade_code", "sort_order", "name")
    )


def export_class_get(*, actor: Actor, class_id: object) -> HomeroomClass:
    """One class the actor may export (for the form's heading); NotFoundOrNoAccess otherwise."""
    return scope.get_in_scope(exportable_classes_for(actor).select_related("school_year__school"), pk=class_id)


@dataclass(frozen=True)
class EncodingProblem:
    """A cell CP932 cannot hold: the spreadsheet row (1 is the heading), the pupil's 出席番号, the column and the
    characters."""

    row: int
    shusseki_no: str
    column: str
    chars: str


@dataclass(frozen=True)
class ExportOutcome:
    """Either a file (content, filename, content type) or, for CP932, the cells that cannot be encoded."""

    content: bytes | None
    filename: str
    content_type: str
    rows: int
    problems: list[EncodingProblem] = field(default_factory=list)
    serial: str = ""

    @property
    def ok(self) -> bool:
        return self.content is not None


def _guardian_cells(links: Sequence[GuardianLink], wanted: Sequence[str]) -> dict[str, str]:
    first = links[0] if links else None
    g = first.guardian if first else None
    others = "／".join(
        f"{link.guardian.full_name}（{link.relationship}）{link.guardian.phone}".strip() for link in links[1:]
    )
    values = {
        "guardian_name": g.full_name if g else "",
        "guardian_relationship": first.relationship if first else "",
        "guardian_phone": g.phone if g else "",
        "guardian_email": g.email if g else "",
        "guardian_address": g.address if g else "",
        "other_guardians": others,
    }
    return {k: v for k, v in values.items() if k in wanted}


def _row(membership: ClassMembership, wanted: Sequence[str]) -> list[str]:
    s: Student = membership.student
    values = {
        "shusseki_no": str(membership.shusseki_no),
        "name": s.full_name,
        "kana": s.full_kana,
        "sex": _SEX.get(s.sex, ""),
        "birth_date": s.birth_date.isoformat() if s.birth_date else "",
        "address": s.address,
    }
    if GUARDIAN_FIELDS & set(wanted):
        values.update(_guardian_cells(s.ordered_links, wanted))  # type: ignore[attr-defined]
    return [values[name] for name in wanted]


def _clean(kind: str, fields: Sequence[str], fmt: str, reason: str) -> tuple[list[str], str]:
    errors: dict[str, list[str]] = {}
    allowed = CLASS_LIST_FIELDS if kind == "class_list" else REGISTRY_FIELDS
    if kind not in ("class_list", "registry"):
        errors["kind"] = [_("出力する名簿の種類を選んでください。")]
    wanted = [name for name in REGISTRY_FIELDS if name in set(fields)]
    if set(fields) - set(allowed):
        errors["fields"] = [_("この名簿では選べない項目が含まれています。")]
    elif not wanted:
        errors["fields"] = [_("出力する項目を1つ以上選んでください。")]
    if fmt not in FORMATS:
        errors["format"] = [_("ファイル形式を選んでください。")]
    text = reason.strip()
    try:
        reject_control_chars(text, _("出力の目的"))
    except TextError as exc:
        errors["reason"] = [str(exc)]
    else:
        if not text:
            errors["reason"] = [_("出力の目的を入力してください（例: 家庭訪問の準備）。")]
        elif len(text) > _MAX_REASON:
            errors["reason"] = [_("出力の目的は%(limit)d文字以内で入力してください。") % {"limit": _MAX_REASON}]
    if errors:
        raise ValidationFailed(_("入力内容を確認してください。"), errors=errors)
    return wanted, text


def class_export(*, actor: Actor, class_id: object, kind: str, fields: Sequence[str], fmt: str,
                 reason: str, reauthenticated: bool = False) -> ExportOutcome:
    """Export one class's pupils (enrolled, in 出席番号 order). Audited as "students.export.created" (who, why,
    which pupils, which fields) and recorded in the disclosure log (komu.disclosures) under a serial carried by
    the file name, the XLSX header/footer and a last CSV row; or — when CP932 cannot hold some cells —
    "students.export.refused" with the rows listed and nothing written. Guardians' contacts or more than
    BULK_PERSONS pupils need a fresh re-authentication (StepUpRequired)."""
    if not actor.has(roles.STUDENTS_EXPORT):
        raise PermissionDeniedError(_("名簿を出力する権限がありません。"))
    klass = export_class_get(actor=actor, class_id=class_id)
    wanted, reason_text = _clean(kind, fields, fmt, reason)
    school = klass.school_year.school
    if GUARDIAN_FIELDS & set(wanted) and not scope.schools_for(actor, roles.GUARDIANS_VIEW_CONTACT).filter(
            pk=school.pk).exists():
        raise PermissionDeniedError(_("保護者の連絡先を出力する権限がありません。"))
    memberships = list(
        ClassMembership.objects.filter(homeroom_class=klass, student__is_active=True)
        .select_related("student")
        .prefetch_related(Prefetch(
            "student__guardian_links",
            queryset=GuardianLink.objects.select_related("guardian").order_by("priority"),
            to_attr="ordered_links",
        ))
        .order_by("shusseki_no")
    )
    if is_bulk(person_count=len(memberships), with_contacts=bool(GUARDIAN_FIELDS & set(wanted))) \
            and not reauthenticated:
        raise StepUpRequired(_("保護者の連絡先や多数の個人データを出力するには、もう一度本人確認をしてください。"))
    headers = [str(FIELD_LABELS[name]) for name in wanted]
    rows = [_row(m, wanted) for m in memberships]
    title = _("学級名簿") if kind == "class_list" else _("児童生徒名簿")
    stamp = timezone.localdate().strftime("%Y%m%d")
    serial = new_serial()
    words = watermark_words(user=actor.user, at=timezone.now(), serial=serial)
    if fmt == "csv_cp932" and cp932_unencodable(words):
        # The note must not be what makes a CP932 file impossible: the sign-in name stands in for the
        # display name.
        words = watermark_words(user=actor.user.get_username(), at=timezone.now(), serial=serial)
    base = f"{title}_{school.name}_{klass}_{stamp}_{serial}"
    audit_scope = Scope(school_id=school.pk, board_id=school.board_id)
    person_ids = [str(m.student_id) for m in memberships]
    detail = {"reason": reason_text, "kind": kind, "format": fmt, "rows": len(rows), "person_ids": person_ids}
    content: bytes | None
    if fmt == "xlsx":
        try:
            content = _with_header_footer(write_xlsx(rows, headers, sheet_title=str(title)), words)
        except TextError as exc:
            raise ValidationFailed(str(exc)) from None
        filename, content_type = f"{base}.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        content_type = "text/csv; charset=" + ("shift_jis" if fmt == "csv_cp932" else "utf-8")
        filename = f"{base}.csv"
        try:
            # A CSV has no pages to watermark: the serial is in the file name and in a last note row (the first
            # row stays the heading, so the file still reads back as a table).
            note = [f"# {words}", *([""] * (len(headers) - 1))]
            content = write_csv([*rows, note], headers, encoding="cp932" if fmt == "csv_cp932" else "utf-8-sig")
        except Cp932Error as exc:
            problems = _problems(exc, rows, wanted)
            with transaction.atomic():
                audit_record(
                    actor=actor.user, action="students.export.refused", obj=klass, fields=wanted,
                    detail={**detail, "person_ids": [], "problem_rows": sorted({p.row for p in problems})},
                    scope=audit_scope,
                )
            return ExportOutcome(None, filename, content_type, len(rows), problems)
    with transaction.atomic():
        audit_record(actor=actor.user, action="students.export.created", obj=klass, fields=wanted,
                     detail={**detail, "serial": serial}, scope=audit_scope)
        disclosure_record(actor=actor, document=f"{title} {klass}", school=school, person_ids=person_ids,
                          fields=wanted, reason=reason_text, medium=Disclosure.Medium.FILE, serial=serial)
    return ExportOutcome(content, filename, content_type, len(rows), serial=serial)


def _with_header_footer(content: bytes, words: str) -> bytes:
    """The XLSX with the watermark words in the printed header and footer of every page (Excel prints them)."""
    import io

    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(content))
    for sheet in book.worksheets:
        sheet.oddHeader.center.text = words
        sheet.oddFooter.center.text = words + " &P / &N"
    book.properties.description = words
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _problems(exc: Cp932Error, rows: Sequence[Sequence[str]], wanted: Sequence[str]) -> list[EncodingProblem]:
    merged: dict[tuple[int, str], list[str]] = {}
    for p in exc.problems:
        merged.setdefault((p.row, p.column), []).append(describe_char(p.char))
    number_at = wanted.index("shusseki_no") if "shusseki_no" in wanted else None
    result = []
    for (row, column), chars in sorted(merged.items()):
        data = rows[row - 2] if row >= 2 else None
        number = data[number_at] if data is not None and number_at is not None else ""
        result.append(EncodingProblem(row=row, shusseki_no=number, column=column, chars="、".join(chars)))
    return result

