"""Writes of guardian absence reports (保護者からの欠席・遅刻・早退の連絡) and of reports taken by phone.

A guardian's report is kept as proof of intent (MEXT 2文科初第1026号, 2020-10-20: the login id, the time and the
content of the submission): each row stores the login id, the time, the client address and a SHA-256 hash of its
canonical content (komu.attendance.selectors.reports.canonical_content); symptoms and note are encrypted.

Applying a report to the register: **at submission**. The morning-entry screen then opens with the reported
pupils already marked 「保護者連絡」, so the teacher confirms rather than types, and a report sent at 7:40 is in the
register before anyone has read it — the guardian's word is the record (the same as a written 欠席届 used to be).
A report never overwrites what staff entered for that day (a teacher's or a phone mark): it then waits in the
teacher's list, and the teacher applies it with one tap (`guardian_report_apply`). Withdrawing a report before the
cut-off takes its mark back out. Reading (acknowledging) is separate: it is the guardian's read receipt.

Every write of a Mark goes through komu.attendance.services.marks.mark_set, which audits it and keeps the history.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.attendance import calendar
from komu.attendance.models import AbsenceReason, AttendanceRules, GuardianReport, Mark, MarkKind, MarkSource
from komu.attendance.selectors import reports as selectors
from komu.attendance.services.marks import mark_set
from komu.audit import context as audit_context
from komu.audit.services import Scope, audit_record
from komu.core.errors import KomuError, NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.core.text import TextError, reject_control_chars
from komu.directory.models import HomeroomClass, SchoolYear
from komu.students.models import Student

NOTE_MAX = 200
PHONE_NOTE_MAX = 200

MARK_KIND: dict[str, str] = {
    GuardianReport.Kind.ABSENT: MarkKind.ABSENT,
    GuardianReport.Kind.LATE: MarkKind.LATE,
    GuardianReport.Kind.EARLY_LEAVE: MarkKind.EARLY_LEAVE,
}


@dataclass
class ReportInput:
    """What a guardian sends: one or more of their children at one school, one day, one kind and reason."""

    student_ids: Sequence[Any]
    date: datetime.date
    kind: str
    reason_code: str
    symptom_codes: Sequence[str] = field(default_factory=list)
    note: str = ""
    expected_time: datetime.time | None = None


@dataclass(frozen=True)
class CheckedReport:
    """A validated report, before it is stored: what the confirmation page shows and the submission saves."""

    students: list[Student]
    classes: dict[uuid.UUID, HomeroomClass]
    rules: AttendanceRules
    date: datetime.date
    kind: str
    reason: dict[str, str]
    symptoms: list[dict[str, str]]
    note: str
    expected_time: datetime.time | None


def _fail(errors: dict[str, list[str]]) -> None:
    if errors:
        raise ValidationFailed("入力内容を確認してください。", errors=errors)


def _year_of(school_id: int, day: datetime.date) -> SchoolYear | None:
    return SchoolYear.objects.filter(school_id=school_id, start_date__lte=day, end_date__gte=day).first()


def _closed_message(rules: AttendanceRules, day: datetime.date) -> str:
    cutoff = rules.report_cutoff.strftime("%H:%M").lstrip("0")
    if day == selectors.school_today():
        return (f"本日の連絡の受付は {cutoff} で終了しました。先生がすでに朝の出欠確認を始めているため、"
                "学校へ電話でご連絡ください。")
    return "この日の連絡の受付は終了しています。学校へ電話でご連絡ください。"


def guardian_report_check(*, actor: Actor, data: ReportInput, now: datetime.datetime | None = None) -> CheckedReport:
    """Validate a report without storing it (the confirmation step uses this; the submission repeats it).

    A child who is not the actor's own answers NotFoundOrNoAccess, exactly as a missing one."""
    now = now or timezone.now()
    if not actor.has(roles.ATTENDANCE_REPORT):
        raise PermissionDeniedError("保護者としてログインしたときだけ連絡できます。")
    ids = list(dict.fromkeys(str(i) for i in data.student_ids))
    errors: dict[str, list[str]] = {}
    if not ids:
        _fail({"student_ids": ["連絡するお子さまを選んでください。"]})
    children = selectors.reportable_children(actor).select_related("school")
    students = [scope.get_in_scope(children, pk=i) for i in ids]
    school_ids = {s.school_id for s in students}
    if len(school_ids) > 1:
        _fail({"student_ids": ["学校が違うお子さまは、学校ごとに分けて送信してください。"]})
    school = students[0].school
    rules = calendar.rules_for(school)

    if data.kind not in GuardianReport.Kind.values:
        errors.setdefault("kind", []).append("「欠席」「遅刻」「早退」のどれかを選んでください。")
    reason = next((r for r in rules.report_reasons if r.get("code") == data.reason_code), None)
    if reason is None:
        errors.setdefault("reason_code", []).append("理由を選んでください。")
    elif reason.get("category") not in AbsenceReason.values:
        # The school's list is configuration: a reason without a 病気/事故/その他 category cannot be counted.
        errors.setdefault("reason_code", []).append("この理由は現在選べません。学校にお問い合わせください。")
    known_symptoms = {s.get("code"): s for s in rules.report_symptoms}
    symptoms: list[dict[str, str]] = []
    for code in dict.fromkeys(data.symptom_codes):
        symptom = known_symptoms.get(code)
        if symptom is None:
            errors.setdefault("symptom_codes", []).append("症状は一覧から選んでください。")
            break
        symptoms.append({"code": str(code), "label": str(symptom.get("label", code))})
    # Keep the school's order, not the order the boxes were ticked: the same content always hashes the same.
    order = list(known_symptoms)
    symptoms.sort(key=lambda s: order.index(s["code"]))

    note = data.note.replace("\r\n", "\n").strip()
    try:
        reject_control_chars(note, "連絡事項", allow="\n")
    except TextError as exc:
        errors.setdefault("note", []).append(str(exc))
    if len(note) > NOTE_MAX:
        errors.setdefault("note", []).append(
            f"連絡事項が長すぎます（{len(note)}文字）。{NOTE_MAX}文字以内で入力してください。"
        )
    # A time belongs to a late arrival or an early leave; for an absence it would only confuse the register.
    expected_time = data.expected_time if data.kind != GuardianReport.Kind.ABSENT else None

    today = selectors.school_today()
    day = data.date
    year = _year_of(school.pk, day)
    if day < today:
        errors.setdefault("date", []).append("過ぎた日の連絡はできません。学校へ電話でご連絡ください。")
    elif day > today + datetime.timedelta(days=selectors.DAYS_AHEAD):
        errors.setdefault("date", []).append(
            f"連絡できるのは今日から{selectors.DAYS_AHEAD}日先までです。近くなってから送ってください。"
        )
    elif year is None or not calendar.is_school_day(year, day):
        errors.setdefault("date", []).append("この日は授業日ではありません。日付を選び直してください。")
    elif not selectors.is_open(rules, day, now):
        errors.setdefault("date", []).append(_closed_message(rules, day))
    _fail(errors)

    classes: dict[uuid.UUID, HomeroomClass] = {}
    for student in students:
        klass = selectors.report_class_on(student, day)
        if klass is None:
            errors.setdefault("student_ids", []).append(
                f"{student.given_name} さんのこの日の学級が登録されていません。学校へ電話でご連絡ください。"
            )
        else:
            classes[student.pk] = klass
    existing = {
        r.student_id: r for r in GuardianReport.objects.filter(
            student__in=students, date=day, withdrawn_at__isnull=True
        )
    }
    for student in students:
        if student.pk in existing:
            errors.setdefault("student_ids", []).append(
                f"{student.given_name} さんのこの日の連絡は受付済みです（受付番号 "
                f"{selectors.receipt_number(existing[student.pk].pk)}）。内容を変えるときは、"
                "連絡の履歴から取り消してから送り直してください。"
            )
    _fail(errors)
    assert reason is not None
    return CheckedReport(
        students=students, classes=classes, rules=rules, date=day, kind=data.kind, reason=reason,
        symptoms=symptoms, note=note, expected_time=expected_time,
    )


def _client_ip() -> str | None:
    """The address the request came from, as the audit trail records it (one source for both)."""
    raw = audit_context.current().client_ip
    if not raw:
        return None
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        return None


def _scope_of(student: Student) -> Scope:
    return Scope(school_id=student.school_id, board_id=student.school.board_id)


def _save(obj: Any) -> None:
    try:
        obj.full_clean()
    except ValidationError as exc:
        raise ValidationFailed("入力内容を確認してください。", errors=exc.message_dict) from exc
    obj.save()


def _mark_detail(report: GuardianReport, reason_label: str) -> str:
    """What the register keeps beside the mark: the reason and symptoms (not the free note, which stays with the
    report), so an infectious-disease pattern is visible in the register itself."""
    parts = [reason_label]
    symptoms = [s["label"] for s in selectors.parse_symptoms(report.symptoms)]
    if symptoms:
        parts.append("・".join(symptoms))
    if report.expected_time:
        verb = "登校予定" if report.kind == GuardianReport.Kind.LATE else "下校予定"
        parts.append(f"{report.expected_time.strftime('%H:%M')} {verb}")
    return "／".join(parts)


def _apply(*, actor: Actor, report: GuardianReport, reason_label: str, force: bool) -> bool:
    """Write the report's mark into the register. Without `force` a day that staff already marked is left alone
    (False): the report waits for the teacher. With `force` (the teacher's own tap) it replaces that mark."""
    current = Mark.objects.filter(student_id=report.student_id, date=report.date).first()
    if current is not None and current.source != MarkSource.GUARDIAN and not force:
        return False
    kwargs: dict[str, Any] = dict(
        actor=actor, student_id=report.student_id, date=report.date, kind=MARK_KIND[report.kind],
        absence_reason=report.reason_category if report.kind == GuardianReport.Kind.ABSENT else "",
        detail=_mark_detail(report, reason_label), source=MarkSource.GUARDIAN, guardian_report=report,
        # The guardian's path asks for no version: mark_set itself refuses to write over staff's marks.
        base_version=current.version if force and current is not None else None,
    )
    if force:
        mark_set(**kwargs)
        return True
    try:
        mark_set(**kwargs)
    except KomuError:
        # The register refused (e.g. the month is already approved and needs an amendment with a reason): the
        # report is stored all the same and waits in the teacher's list to be applied by hand.
        return False
    return True


@transaction.atomic
def guardian_report_submit(*, actor: Actor, data: ReportInput) -> list[GuardianReport]:
    """Store one report per child, sealed with the content hash, audited, and applied to the register."""
    # Lock the children's rows so two parents sending at the same moment cannot both pass the
    # "already reported" check (PostgreSQL; SQLite serialises writers anyway).
    list(Student.objects.select_for_update().filter(pk__in=[str(i) for i in data.student_ids]).values("pk"))
    now = timezone.now()
    checked = guardian_report_check(actor=actor, data=data, now=now)
    user = actor.user
    client_ip = _client_ip()
    reports = []
    for student in checked.students:
        report = GuardianReport(
            student=student, guardian_user=user, login_id=user.get_username(), date=checked.date,
            kind=checked.kind, reason_code=checked.reason["code"], reason_category=checked.reason["category"],
            symptoms=selectors.dump_symptoms(checked.symptoms), note=checked.note,
            expected_time=checked.expected_time, submitted_at=now, client_ip=client_ip,
        )
        report.content_hash = selectors.content_hash(report)
        _save(report)
        audit_record(
            actor=user, action="attendance.guardian_report.submitted", obj=report,
            fields=[name for name in ("symptoms", "note") if getattr(report, name)],
            detail={"student_id": str(student.pk), "date": checked.date.isoformat(), "kind": checked.kind,
                    "login_id": report.login_id, "content_hash": report.content_hash},
            scope=_scope_of(student),
        )
        _apply(actor=actor, report=report, reason_label=checked.reason.get("label", ""), force=False)
        reports.append(report)
    return reports


@transaction.atomic
def guardian_report_withdraw(*, actor: Actor, report_id: Any) -> GuardianReport:
    """取り消し: a guardian takes a report back before its day's cut-off. The mark it put in the register goes
    with it; a mark staff entered since stays (it is theirs). Only the login that sent a report may take it back:
    the report is that person's statement (the other parent sees it in the history and may send their own)."""
    report = scope.get_in_scope(
        GuardianReport.objects.select_for_update().filter(
            student__in=selectors.reportable_children(actor), guardian_user=actor.user,
        ).select_related("student__school"),
        pk=report_id,
    )
    if report.withdrawn_at is not None:
        raise ValidationFailed("この連絡はすでに取り消されています。")
    rules = calendar.rules_for(report.student.school)
    if not selectors.is_open(rules, report.date):
        cutoff = rules.report_cutoff.strftime("%H:%M").lstrip("0")
        raise ValidationFailed(
            f"取り消しの受付は {cutoff} で終了しました。先生がすでに出欠確認を始めているため、"
            "学校へ電話でお伝えください。"
        )
    report.withdrawn_at = timezone.now()
    _save(report)
    audit_record(
        actor=actor.user, action="attendance.guardian_report.withdrawn", obj=report,
        detail={"student_id": str(report.student_id), "date": report.date.isoformat()},
        scope=_scope_of(report.student),
    )
    mark = Mark.objects.filter(student_id=report.student_id, date=report.date).first()
    if mark is not None and mark.source == MarkSource.GUARDIAN and mark.guardian_report_id == report.pk:
        # If the register refuses (the month went into approval meanwhile), the withdrawal still stands: the
        # teacher's list shows the report as 取り消し beside its mark, for the teacher to correct.
        with contextlib.suppress(KomuError):
            mark_set(
                actor=actor, student_id=report.student_id, date=report.date, kind=MarkKind.PRESENT,
                source=MarkSource.GUARDIAN, guardian_report=report, base_version=mark.version,
            )
    return report


def _as_uuid(value: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFoundOrNoAccess("見つかりません。") from None


def _staff_report(actor: Actor, report_id: Any) -> GuardianReport:
    """A report about a pupil whose attendance the actor records; NotFoundOrNoAccess otherwise (a nurse, who
    reads but does not record, gets PermissionDenied so the page can say why)."""
    report_id = _as_uuid(report_id)
    try:
        return scope.get_in_scope(
            selectors.staff_reports(actor, roles.ATTENDANCE_RECORD).select_for_update()
            .select_related("student__school"),
            pk=report_id,
        )
    except NotFoundOrNoAccess:
        if selectors.staff_reports(actor).filter(pk=report_id).exists():
            raise PermissionDeniedError("連絡を確認済みにできるのは、出欠を記録する教職員だけです。") from None
        raise


@transaction.atomic
def guardian_report_acknowledge(*, actor: Actor, report_ids: Sequence[Any]) -> list[GuardianReport]:
    """既読: the school has read the reports. The guardian's history then shows 「学校が確認しました」. Reading
    twice keeps the first reader and time."""
    done = []
    now = timezone.now()
    for report_id in dict.fromkeys(_as_uuid(i) for i in report_ids):
        report = _staff_report(actor, report_id)
        if report.read_at is not None:
            continue
        report.read_at = now
        report.read_by = actor.user
        _save(report)
        audit_record(
            actor=actor.user, action="attendance.guardian_report.read", obj=report,
            detail={"student_id": str(report.student_id), "date": report.date.isoformat()},
            scope=_scope_of(report.student),
        )
        done.append(report)
    return done


@transaction.atomic
def guardian_report_apply(*, actor: Actor, report_id: Any) -> GuardianReport:
    """The teacher applies a report that waited because staff had already marked the day (one tap in the list).
    Applying also acknowledges it."""
    report = _staff_report(actor, report_id)
    if report.withdrawn_at is not None:
        raise ValidationFailed("取り消された連絡は出席簿に反映できません。")
    rules = calendar.rules_for(report.student.school)
    reason: dict[str, str] = next(
        (r for r in rules.report_reasons if r.get("code") == report.reason_code), {}
    )
    _apply(actor=actor, report=report, reason_label=str(reason.get("label", report.reason_code)), force=True)
    guardian_report_acknowledge(actor=actor, report_ids=[report.pk])
    report.refresh_from_db()
    return report


@dataclass
class PhoneReportInput:
    """A report a teacher took by phone: one pupil, one day."""

    student_id: Any
    date: datetime.date
    kind: str
    reason_category: str = ""
    note: str = ""
    expected_time: datetime.time | None = None


@transaction.atomic
def phone_report_record(*, actor: Actor, data: PhoneReportInput) -> Mark | None:
    """電話で連絡を受けた: the teacher records the call as a mark with source PHONE, so the progress database can
    count digital against phone reports. Replaces whatever the day held (the teacher is deciding)."""
    student = scope.get_in_scope(
        scope.students_for(actor, roles.ATTENDANCE_RECORD).select_related("school"), pk=data.student_id
    )
    errors: dict[str, list[str]] = {}
    if data.kind not in GuardianReport.Kind.values:
        errors.setdefault("kind", []).append("「欠席」「遅刻」「早退」のどれかを選んでください。")
    if data.kind == GuardianReport.Kind.ABSENT and data.reason_category not in AbsenceReason.values:
        errors.setdefault("reason_category", []).append("欠席の理由（病気・事故・その他）を選んでください。")
    note = data.note.strip()
    try:
        reject_control_chars(note, "メモ")
    except TextError as exc:
        errors.setdefault("note", []).append(str(exc))
    if len(note) > PHONE_NOTE_MAX:
        errors.setdefault("note", []).append(
            f"メモが長すぎます（{len(note)}文字）。{PHONE_NOTE_MAX}文字以内で入力してください。"
        )
    year = _year_of(student.school_id, data.date)
    if year is None or not calendar.is_school_day(year, data.date):
        errors.setdefault("date", []).append("この日は授業日ではありません。日付を選び直してください。")
    _fail(errors)
    parts = ["電話連絡"]
    if note:
        parts.append(note)
    if data.expected_time and data.kind != GuardianReport.Kind.ABSENT:
        verb = "登校予定" if data.kind == GuardianReport.Kind.LATE else "下校予定"
        parts.append(f"{data.expected_time.strftime('%H:%M')} {verb}")
    current = Mark.objects.filter(student=student, date=data.date).first()
    result = mark_set(
        actor=actor, student_id=student.pk, date=data.date, kind=MARK_KIND[data.kind],
        absence_reason=data.reason_category if data.kind == GuardianReport.Kind.ABSENT else "",
        detail="／".join(parts), source=MarkSource.PHONE,
        base_version=current.version if current is not None else None,
    )
    return result if isinstance(result, Mark) else Mark.objects.filter(student=student, date=data.date).first()

