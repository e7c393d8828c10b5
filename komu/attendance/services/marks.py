"""Daily marks: the one way to write a pupil's day (`mark_set`), a whole class's day at once (`register_save`),
the register's confirmation (`register_confirm`) and period marks for high schools (`period_mark_set`).

Rules every write follows, in one place:
- scope: a homeroom teacher writes their own class; the principal, vice-principal and school office any class of
  their school (capability attendance.record); a guardian only through their own report (source GUARDIAN);
- the day must be a 授業日 of the pupil's class, not a 学級閉鎖 day, in a month that is not locked; a month that
  is in approval or approved takes changes only as amendments with a reason, and goes back for approval
  (komu.attendance.services.monthly.register_amended);
- optimistic concurrency: a save carries the version it was based on; a stale one raises MarkConflict, unless it
  asks for exactly what is already stored (a retried or repeated save is then a no-op);
- idempotency: a save with a key already applied by the same person is answered with the current value;
- every change leaves a MarkChange (old → new, by, at, version) and an audit event in the same transaction.
"""

from __future__ import annotations

import datetime
import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import (
    BigIntegerField,
    CharField,
    DateTimeField,
    IntegerField,
    Max,
    QuerySet,
    UUIDField,
    Value,
)
from django.db.models.expressions import RawSQL
from django.utils import timezone

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.attendance import calendar, periods
from komu.attendance.models import (
    AbsenceReason,
    AttendanceRules,
    CalendarDay,
    ClassClosure,
    DailyRegister,
    Disease,
    GuardianReport,
    Mark,
    MarkChange,
    MarkKind,
    MarkSource,
    MonthlyRegister,
    PeriodMark,
    SaveReceipt,
    SuspensionKind,
)
from komu.audit.services import Scope, audit_record
from komu.core.errors import KomuError, NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.core.text import TextError, reject_control_chars
from komu.directory.models import HomeroomClass
from komu.students.models import ClassMembership, Student

MAX_DETAIL = 200
MAX_AMENDMENT_REASON = 200
KINSHIP_DEGREES = (1, 2, 3)
# Months whose register has left the teacher's hands: a change is an amendment (reason required, re-approval).
AMENDABLE_STATUSES = frozenset(
    {MonthlyRegister.Status.SUBMITTED, MonthlyRegister.Status.APPROVED, MonthlyRegister.Status.AMENDED}
)
GUARDIAN_KINDS = frozenset({MarkKind.ABSENT, MarkKind.LATE, MarkKind.EARLY_LEAVE})
# A guardian's report may replace only what came from a guardian's report; staff entries stand.
_GUARDIAN_SOURCES = frozenset({MarkSource.GUARDIAN})


@dataclass(frozen=True)
class MarkInput:
    """What a pupil's day should say. 出席 (present) carries no detail: a present day has no Mark row."""

    kind: str
    absence_reason: str = ""
    suspension_kind: str = ""
    disease: str = ""
    kinship_degree: int | None = None
    detail: str = ""

    def matches(self, mark: Mark | None) -> bool:
        """True when `mark` already says exactly this (so saving it again changes nothing)."""
        if mark is None:
            return self.kind == MarkKind.PRESENT
        return (
            mark.kind == self.kind
            and mark.absence_reason == self.absence_reason
            and mark.suspension_kind == self.suspension_kind
            and mark.disease == self.disease
            and mark.kinship_degree == self.kinship_degree
            and mark.detail == self.detail
        )


class MarkConflict(KomuError):
    """The day changed since the version the save was based on. Carries what is stored now, for the screen."""

    def __init__(self, message: str, *, student_id: uuid.UUID, date: datetime.date, current: Mark | None,
                 version: int, changed_by: Any = None, changed_at: datetime.datetime | None = None) -> None:
        super().__init__(message)
        self.student_id = student_id
        self.date = date
        self.current = current
        self.version = version
        self.changed_by = changed_by
        self.changed_at = changed_at


class _DuplicateSave(Exception):
    """A save with an idempotency key that another request of the same person applied meanwhile."""


# --- Input ------------------------------------------------------------------------------------------------------

def clean_mark_input(data: MarkInput) -> MarkInput:
    """Check one mark's fields; ValidationFailed with the field names the forms use and Japanese messages that
    say what to do."""
    errors: dict[str, list[str]] = {}

    def error(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    kind = data.kind
    if kind not in MarkKind.values:
        error("kind", "出欠の区分を選んでください（出席・欠席・遅刻・早退・出席停止・忌引・公欠）。")
    if kind == MarkKind.ABSENT:
        if data.absence_reason not in AbsenceReason.values:
            error("absence_reason", "欠席の理由（病気・事故・その他）を選んでください。")
    elif data.absence_reason:
        error("absence_reason", "欠席の理由は「欠席」のときだけ指定できます。")
    if kind == MarkKind.SUSPENSION:
        if data.suspension_kind not in SuspensionKind.values:
            error("suspension_kind", "出席停止の事由（感染症・性行不良・非常変災・その他）を選んでください。")
        elif data.suspension_kind == SuspensionKind.INFECTIOUS and data.disease not in Disease.values:
            error("disease", "感染症による出席停止では、感染症名を選んでください。")
        elif data.suspension_kind != SuspensionKind.INFECTIOUS and data.disease:
            error("disease", "感染症名は、事由が感染症の出席停止のときだけ指定できます。")
    elif data.suspension_kind or data.disease:
        error("suspension_kind", "出席停止の事由と感染症名は「出席停止」のときだけ指定できます。")
    if kind == MarkKind.MOURNING:
        if data.kinship_degree not in KINSHIP_DEGREES:
            error("kinship_degree", "忌引の親等（1親等・2親等・3親等）を選んでください。")
    elif data.kinship_degree is not None:
        error("kinship_degree", "親等は「忌引」のときだけ指定できます。")
    detail = data.detail.strip()
    if kind == MarkKind.PRESENT and detail:
        error("detail", "出席には備考を付けられません。備考を消してから保存してください。")
    try:
        reject_control_chars(detail, "備考")
    except TextError as exc:
        error("detail", str(exc))
    if len(detail) > MAX_DETAIL:
        error("detail", f"備考が長すぎます（{len(detail)}文字）。{MAX_DETAIL}文字以内で入力してください。")
    if errors:
        raise ValidationFailed(next(iter(errors.values()))[0], errors=errors)
    return replace(data, detail=detail)


def _clean_amendment_reason(reason: str) -> str:
    reason = reason.strip()
    try:
        reject_control_chars(reason, "訂正理由")
    except TextError as exc:
        raise ValidationFailed(str(exc), errors={"amendment_reason": [str(exc)]}) from exc
    if len(reason) > MAX_AMENDMENT_REASON:
        message = f"訂正理由が長すぎます（{len(reason)}文字）。{MAX_AMENDMENT_REASON}文字以内で入力してください。"
        raise ValidationFailed(message, errors={"amendment_reason": [message]})
    return reason


# --- Scope and the day --------------------------------------------------------------------------------------------

def recordable_classes(actor: Actor) -> QuerySet[HomeroomClass]:
    """Classes whose register the actor may write: their own class for a homeroom teacher, every class of their
    school for the principal, vice-principal and school office."""
    return scope.classes_for(actor, roles.ATTENDANCE_RECORD)


def _membership_on(student_id: Any, day: datetime.date, class_id: int | None = None) -> ClassMembership:
    """The pupil's class in the school year that contains `day` (NotFoundOrNoAccess if none, or if `class_id` is
    given and the pupil is not in that class)."""
    if not isinstance(student_id, uuid.UUID):
        try:
            student_id = uuid.UUID(str(student_id))
        except ValueError:
            raise NotFoundOrNoAccess("見つかりません。") from None
    membership = (
        ClassMembership.objects.select_related("homeroom_class__school_year__school", "student")
        .filter(student_id=student_id, student__is_active=True,
                homeroom_class__school_year__start_date__lte=day, homeroom_class__school_year__end_date__gte=day)
        .first()
    )
    if membership is None or (class_id is not None and membership.homeroom_class_id != class_id):
        raise NotFoundOrNoAccess("見つかりません。")
    return membership


def _month_status(klass: HomeroomClass, day: datetime.date) -> str:
    status = (
        # order_by("pk"): first() would otherwise order by the model's ordering, a join to class, year and school.
        MonthlyRegister.objects.filter(homeroom_class=klass, year=day.year, month=day.month).order_by("pk")
        .values_list("status", flat=True)
        .first()
    )
    return status or MonthlyRegister.Status.OPEN


def _entry_day_status(klass: HomeroomClass, day: datetime.date, rules: AttendanceRules | None = None) -> str:
    """The month's register status, once `day` is known to be a 授業日 of the class that is not closed."""
    _check_school_day(klass, day, calendar.is_school_day(klass.school_year, day, rules))
    _check_not_closed(day, ClassClosure.objects.filter(homeroom_class=klass, start_date__lte=day,
                                                       end_date__gte=day).exists())
    return _month_status(klass, day)


def _check_school_day(klass: HomeroomClass, day: datetime.date, school_day: bool) -> None:
    school_year = klass.school_year
    label = f"{day.month}月{day.day}日"
    if not (school_year.start_date <= day <= school_year.end_date):
        raise ValidationFailed(f"{label}はこの学級の年度の期間外です。")
    if not school_day:
        raise ValidationFailed(f"{label}は授業日ではありません。授業日を変えるときは学校カレンダーを編集してください。")


def _check_not_closed(day: datetime.date, closed: bool) -> None:
    if closed:
        raise ValidationFailed(
            f"{day.month}月{day.day}日は学級閉鎖の期間です。この日は全員を出席停止・忌引等として数えるため、"
            "出欠は入力できません。"
        )


def check_day(klass: HomeroomClass, day: datetime.date, *, amendment_reason: str = "",
              guardian: bool = False) -> bool:
    """Whether marks may be written for the class on `day`; returns True when the write is an amendment.
    Raises ValidationFailed with a message that says why not and what to do."""
    return _status_allows(_entry_day_status(klass, day), amendment_reason=amendment_reason, guardian=guardian)


def _status_allows(status: str, *, amendment_reason: str, guardian: bool = False) -> bool:
    """check_day's decision for the month's status: refused (ValidationFailed), an amendment (True) or not."""
    if status == MonthlyRegister.Status.LOCKED:
        raise ValidationFailed("この月の出席簿は年度末に確定したため、変更できません。")
    if status in AMENDABLE_STATUSES:
        if guardian:
            raise ValidationFailed("この日の出席簿は締め切られています。学校に直接連絡してください。")
        if not amendment_reason:
            message = "この月の出席簿は決裁中または承認済みです。訂正するには訂正理由を入力してください。"
            raise ValidationFailed(message, errors={"amendment_reason": [message]})
        return True
    return False


def _authorize_guardian(actor: Actor, student_id: uuid.UUID, *, source: str,
                        guardian_report: GuardianReport | None) -> bool:
    """True when the actor writes as the pupil's guardian through their own report; NotFoundOrNoAccess if not."""
    if (actor.is_guardian and source == MarkSource.GUARDIAN and guardian_report is not None
            and student_id in actor.child_ids and guardian_report.guardian_user_id == actor.user.pk):
        return True
    raise NotFoundOrNoAccess("見つかりません。")


def _locked_marks(student_ids: Sequence[uuid.UUID], day: datetime.date) -> QuerySet[Mark]:
    """The pupils' marks for the day, locked FOR UPDATE. Ordered by pupil, not by Mark's default ordering: that
    ordering joins class, school year and school, and FOR UPDATE would then lock the school's row too, so every
    save in a school queued behind every other. By pupil, only the marks are locked, always in the same order
    (two saves of overlapping pupils cannot deadlock)."""
    return Mark.objects.select_for_update().filter(student_id__in=list(student_ids), date=day).order_by("student_id")


def _version_now(student_id: uuid.UUID, day: datetime.date, mark: Mark | None) -> int:
    if mark is not None:
        return mark.version
    latest = MarkChange.objects.filter(student_id=student_id, date=day).order_by().aggregate(v=Max("version"))["v"]
    return latest or 0


def _last_change(student_id: uuid.UUID, day: datetime.date) -> MarkChange | None:
    return (
        MarkChange.objects.filter(student_id=student_id, date=day).select_related("changed_by")
        .order_by("-version", "-changed_at").first()
    )


def _conflict(student_id: uuid.UUID, day: datetime.date, current: Mark | None, version: int,
              message: str = "") -> MarkConflict:
    change = _last_change(student_id, day)
    changed_by = change.changed_by if change else (current.updated_by if current else None)
    changed_at = change.changed_at if change else (current.updated_at if current else None)
    who = (getattr(changed_by, "display_name", "") or getattr(changed_by, "username", "")) if changed_by else ""
    if not message:
        now_label = current.get_kind_display() if current else MarkKind.PRESENT.label
        when = timezone.localtime(changed_at).strftime("%H:%M") if changed_at else ""
        message = (
            f"{who}さんが{when}に「{now_label}」に変更していました。あなたの変更は保存されていません。"
            "表示されている内容を確かめて、必要ならもう一度選んでください。"
            if who else
            "ほかの画面で変更されていました。あなたの変更は保存されていません。表示されている内容を確かめて、"
            "必要ならもう一度選んでください。"
        )
    return MarkConflict(message, student_id=student_id, date=day, current=current, version=version,
                        changed_by=changed_by, changed_at=changed_at)


# --- Writing one pupil's day ---------------------------------------------------------------------------------------

def _full_clean(mark: Mark) -> None:
    # Related rows were fetched and authorised above, and uniqueness is the database's: skip the per-field
    # existence and constraint queries that full_clean would otherwise make for every mark.
    try:
        mark.full_clean(exclude=["student", "homeroom_class", "guardian_report", "updated_by"],
                        validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        raise ValidationFailed("入力内容を確認してください。", errors=exc.message_dict) from exc


@dataclass
class _Write:
    student_id: uuid.UUID
    data: MarkInput
    current: Mark | None
    version: int
    source: str = MarkSource.TEACHER
    guardian_report: GuardianReport | None = None


@dataclass(slots=True)
class _Change:
    """A MarkChange row as a save writes it (_insert_changes): the columns, without a model instance per row."""

    student_id: uuid.UUID
    homeroom_class_id: int
    date: datetime.date
    old_kind: str
    old_reason: str
    new_kind: str
    new_reason: str
    is_amendment: bool
    amendment_reason: str
    changed_by_id: Any
    changed_at: datetime.datetime
    version: int


def _apply(writes: Sequence[_Write], *, user: Any, klass: HomeroomClass, day: datetime.date, is_amendment: bool,
           amendment_reason: str, now: datetime.datetime) -> list[tuple[_Write, Mark | None, _Change]]:
    """Write the marks and their MarkChange rows. The caller has locked the current rows and checked versions."""
    results: list[tuple[_Write, Mark | None, _Change]] = []
    to_delete: list[Any] = []
    to_create: list[Mark] = []
    to_update: list[Mark] = []
    detail_changed: list[Mark] = []
    validated: set[tuple[Any, ...]] = set()
    user_id = user.pk  # marks are always written by a signed-in person (or the guardian behind a report)
    for w in writes:
        new_version = w.version + 1
        old = w.current
        # Read the old value before `mark` (which may be the same object as `old`) is overwritten below: the
        # change history must show what the day was, struck through (the digital 訂正印).
        old_kind = old.kind if old is not None else MarkKind.PRESENT
        old_reason = old.absence_reason if old is not None else ""
        if w.data.kind == MarkKind.PRESENT:
            if old is not None:
                to_delete.append(old.pk)
            mark: Mark | None = None
        else:
            if old is not None and old.detail != w.data.detail:
                detail_changed.append(old)
            mark = old if old is not None else Mark(student_id=w.student_id, date=day)
            # Foreign keys by id: the related objects are known, and a class's 35 rows would otherwise pay the
            # descriptors' checks and caching once per row and relation.
            mark.homeroom_class_id = klass.pk
            mark.kind = w.data.kind
            mark.absence_reason = w.data.absence_reason
            mark.suspension_kind = w.data.suspension_kind
            mark.disease = w.data.disease
            mark.kinship_degree = w.data.kinship_degree
            mark.detail = w.data.detail
            mark.source = MarkSource.AMENDMENT if is_amendment else w.source
            if w.guardian_report is not None:
                mark.guardian_report = w.guardian_report
            else:
                mark.guardian_report_id = None
            mark.version = new_version
            mark.updated_by_id = user_id
            # Rows that store the same values pass or fail full_clean alike (the date is the same for all, the
            # version is a positive count, the pupil is excluded): validate one row per distinct value.
            values = (mark.kind, mark.absence_reason, mark.suspension_kind, mark.disease, mark.kinship_degree,
                      mark.detail, mark.source, mark.guardian_report_id)
            if values not in validated:
                _full_clean(mark)
                validated.add(values)
            (to_update if old is not None else to_create).append(mark)
        change = _Change(
            student_id=w.student_id, homeroom_class_id=klass.pk, date=day,
            old_kind=old_kind, old_reason=old_reason,
            new_kind=w.data.kind, new_reason=w.data.absence_reason, is_amendment=is_amendment,
            amendment_reason=amendment_reason if is_amendment else "", changed_by_id=user_id, changed_at=now,
            version=new_version,
        )
        results.append((w, mark, change))
    if to_delete:
        # The date too: on PostgreSQL marks are partitioned by month, and the date prunes the other partitions.
        Mark.objects.filter(pk__in=to_delete, date=day).delete()
    # Updates go out as one UPDATE per distinct new value (a class's morning is a handful of kinds): bulk_update's
    # CASE per row and column costs far more to build than to run. The rows are locked, so version + 1 is each
    # row's new version.
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for mark in to_update:
        mark.updated_at = now
        key = (mark.kind, mark.absence_reason, mark.suspension_kind, mark.disease, mark.kinship_degree,
               mark.source, mark.guardian_report_id)
        groups.setdefault(key, []).append(mark.pk)
    if groups:
        _update_marks(groups, klass_id=klass.pk, day=day, user_id=user_id, now=now)
    for mark in detail_changed:
        # bulk_update bypasses the encrypted field's pre_save (it would send plaintext): a changed note is
        # sealed by a normal save. Notes are rare; the bulk path stays one statement for the usual rows.
        mark.save(update_fields=["detail"])
    if to_create:
        try:
            # A savepoint: a concurrent first save of the same day must not poison an enclosing transaction.
            with transaction.atomic():
                Mark.objects.bulk_create(to_create)
        except IntegrityError:
            w = next(w for w, m, _ in results if m is to_create[0])
            raise _conflict(w.student_id, day, Mark.objects.filter(student_id=w.student_id, date=day).first(),
                            _version_now(w.student_id, day, None)) from None
    _insert_changes([change for _, _, change in results])
    return results


# The two statements of every save, in SQL: built by the ORM they cost more Python than the rest of the save's
# writes together (the compiler, and a preparation per field and row). Values are parameters; only the models'
# own table and column names are formatted in. PostgreSQL takes the ids as one array each (and the history rows as
# one array per column, as Django's own bulk insert does), SQLite as lists of parameters.

def _uuid_param(value: Any) -> Any:
    if value is None or connection.features.has_native_uuid_field:
        return value
    return value.hex


def _update_marks(groups: Mapping[tuple[Any, ...], list[Any]], *, klass_id: int, day: datetime.date,
                  user_id: Any, now: datetime.datetime) -> None:
    """One UPDATE per group of locked marks taking the same new values (kind, reason, suspension, disease,
    degree, source, report); each row's version goes up by one. With the date, so that PostgreSQL prunes the
    partitions of other months."""
    table = Mark._meta.db_table
    date = connection.ops.adapt_datefield_value(day)
    stamp = connection.ops.adapt_datetimefield_value(now)
    user = _uuid_param(user_id)
    native = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        for (kind, reason, suspension, disease, degree, source, report_id), pks in groups.items():
            ids = [_uuid_param(pk) for pk in pks]
            where = "id = ANY(%s)" if native else f"id IN ({', '.join(['%s'] * len(ids))})"
            cursor.execute(
                f"UPDATE {table} SET homeroom_class_id = %s, kind = %s, absence_reason = %s, "  # noqa: S608
                "suspension_kind = %s, disease = %s, kinship_degree = %s, source = %s, guardian_report_id = %s, "
                f"version = version + 1, updated_by_id = %s, updated_at = %s WHERE date = %s AND {where}",
                [klass_id, kind, reason, suspension, disease, degree, source, _uuid_param(report_id), user, stamp,
                 date, *([ids] if native else ids)],
            )


_CHANGE_COLUMNS = ("student_id", "homeroom_class_id", "date", "old_kind", "old_reason", "new_kind", "new_reason",
                   "is_amendment", "amendment_reason", "changed_by_id", "changed_at", "version")
_CHANGE_TYPES = ("uuid", "bigint", "date", "text", "text", "text", "text", "boolean", "text", "uuid", "timestamptz",
                 "integer")


def _insert_changes(changes: Sequence[_Change]) -> None:
    """The history rows of a save, in one INSERT (PostgreSQL: one array per column; SQLite: executemany)."""
    if not changes:
        return
    table = MarkChange._meta.db_table
    columns = ", ".join(_CHANGE_COLUMNS)
    ops = connection.ops
    rows = [
        (_uuid_param(c.student_id), c.homeroom_class_id, ops.adapt_datefield_value(c.date), c.old_kind,
         c.old_reason, c.new_kind, c.new_reason, c.is_amendment, c.amendment_reason, _uuid_param(c.changed_by_id),
         ops.adapt_datetimefield_value(c.changed_at), c.version)
        for c in changes
    ]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            arrays = ", ".join(f"%s::{t}[]" for t in _CHANGE_TYPES)
            cursor.execute(f"INSERT INTO {table} ({columns}) SELECT * FROM UNNEST({arrays})",  # noqa: S608
                           [list(column) for column in zip(*rows, strict=True)])
        else:
            marks_ = ", ".join(["%s"] * len(_CHANGE_COLUMNS))
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks_})", rows)  # noqa: S608


def _register_amended(klass: HomeroomClass, day: datetime.date, actor: Actor) -> None:
    # The monthly register's owner decides what an amendment does to its approval (status AMENDED, the chain
    # restarts). Imported here: the monthly module imports this one to read marks.
    from komu.attendance.services.monthly import register_amended

    register_amended(klass, day, actor)


def _receipt_seen(actor: Actor, key: str) -> SaveReceipt | None:
    if not key or not getattr(actor.user, "pk", None):
        return None
    return SaveReceipt.objects.filter(actor=actor.user, key=key).first()


def _store_receipt(actor: Actor, key: str, student_id: uuid.UUID, day: datetime.date, version: int,
                   now: datetime.datetime) -> None:
    if not key:
        return
    # No savepoint of its own: the receipt is the idempotency check itself (no read before the write). A key
    # already applied fails the insert, and _DuplicateSave leaves mark_set's atomic block, which rolls back
    # everything this save wrote; mark_set then answers with what is stored.
    try:
        SaveReceipt.objects.create(actor=actor.user, key=key, student_id=student_id, date=day,
                                   response_version=version, created_at=now)
    except IntegrityError:
        raise _DuplicateSave from None


def _clean_key(key: str) -> str:
    key = key.strip()
    if len(key) > 64 or not key.isascii() or not key.isprintable():
        raise ValidationFailed("保存の識別子が正しくありません。画面を再読み込みしてからもう一度操作してください。")
    return key


def _audit_scope(klass: HomeroomClass) -> Scope:
    school = klass.school_year.school
    return Scope(school_id=school.pk, board_id=school.board_id)


def mark_set(
    *,
    actor: Actor,
    student_id: uuid.UUID | str,
    date: datetime.date,
    kind: str,
    absence_reason: str = "",
    suspension_kind: str = "",
    disease: str = "",
    kinship_degree: int | None = None,
    detail: str = "",
    source: str = MarkSource.TEACHER,
    guardian_report: GuardianReport | None = None,
    base_version: int | None = None,
    amendment_reason: str = "",
    idempotency_key: str = "",
    class_id: int | None = None,
) -> Mark | None:
    """Set one pupil's mark for one day; returns the stored Mark, or None when the day is 出席 (no row).

    `base_version` is the version the caller showed (0 for a day never changed); None skips the check (for
    services acting on their own data, e.g. a guardian report). A guardian may write only through their own
    report (source GUARDIAN, kinds 欠席/遅刻/早退, or 出席 to take their own report's mark back) and never over
    what school staff entered. `class_id`, when given (a row of a class's register), must be the pupil's class
    on the day. Raises NotFoundOrNoAccess, ValidationFailed or MarkConflict."""
    data = clean_mark_input(MarkInput(kind, absence_reason, suspension_kind, disease, kinship_degree, detail))
    amendment_reason = _clean_amendment_reason(amendment_reason)
    key = _clean_key(idempotency_key) if idempotency_key else ""
    if source not in MarkSource.values:
        raise ValidationFailed("入力元が正しくありません。")
    try:
        with transaction.atomic():
            return _mark_set(actor=actor, student_id=student_id, day=date, data=data, source=source,
                             guardian_report=guardian_report, base_version=base_version,
                             amendment_reason=amendment_reason, key=key, class_id=class_id)
    except _DuplicateSave:
        membership = _membership_on(student_id, date)
        receipt = _receipt_seen(actor, key)
        if receipt is not None and (receipt.student_id != membership.student_id or receipt.date != date):
            raise ValidationFailed("保存の識別子が別の欄で使われています。画面を再読み込みしてください。") from None
        return Mark.objects.filter(student_id=membership.student_id, date=date).first()


def _mark_set(*, actor: Actor, student_id: uuid.UUID | str, day: datetime.date, data: MarkInput, source: str,
              guardian_report: GuardianReport | None, base_version: int | None, amendment_reason: str,
              key: str, class_id: int | None = None) -> Mark | None:
    membership = _membership_on(student_id, day, class_id)
    klass = membership.homeroom_class
    sid = membership.student_id
    # Staff who record the class: the class and the day's facts in one query (_save_context). Anyone else may
    # write only as the pupil's guardian, through their own report (_authorize).
    try:
        context: _SaveContext | None = _save_context(actor, klass.pk, day, [sid])
    except NotFoundOrNoAccess:
        context = None
    as_guardian = context is None and _authorize_guardian(actor, sid, source=source, guardian_report=guardian_report)
    if guardian_report is not None and (guardian_report.student_id != sid or guardian_report.date != day):
        raise ValidationFailed("保護者連絡の児童生徒または日付が一致しません。")
    if source == MarkSource.AMENDMENT:
        raise ValidationFailed("承認後の訂正は訂正理由を付けて保存してください（入力元は自動で記録します）。")
    # The idempotency receipt is not read up front: a retry of an applied save either asks for what is stored
    # (a no-op below), or is stale (the conflict paths look the key up), or fails the receipt's insert. Only a
    # refusal of the day (e.g. the month was locked since) needs the look-up here, to answer a retry the same.
    try:
        if context is None:
            is_amendment = check_day(klass, day, amendment_reason=amendment_reason, guardian=as_guardian)
        else:
            _check_school_day(klass, day, context.school_day)
            _check_not_closed(day, context.closed)
            is_amendment = _status_allows(context.month_status, amendment_reason=amendment_reason)
    except ValidationFailed:
        if key and _receipt_seen(actor, key) is not None:
            raise _DuplicateSave from None
        raise
    current = _locked_marks([sid], day).first()
    version = _version_now(sid, day, current)
    if as_guardian:
        if data.kind not in GUARDIAN_KINDS and data.kind != MarkKind.PRESENT:
            raise PermissionDeniedError("保護者の連絡で記録できるのは欠席・遅刻・早退だけです。")
        if current is not None and current.source not in _GUARDIAN_SOURCES:
            raise _conflict(sid, day, current, version,
                            "学校が既にこの日の出欠を記録しています。変更は学校に連絡してください。")
        report_id = guardian_report.pk if guardian_report is not None else None
        if data.kind == MarkKind.PRESENT and current is not None and current.guardian_report_id != report_id:
            raise _conflict(sid, day, current, version, "別の連絡による記録は取り消せません。")
    if data.matches(current):
        # Already so: a repeated or retried save. Nothing changes, whatever version it was based on.
        return current
    if base_version is not None and base_version != version:
        if key and _receipt_seen(actor, key) is not None:
            raise _DuplicateSave
        raise _conflict(sid, day, current, version)
    now = timezone.now()
    write = _Write(sid, data, current, version, source=source, guardian_report=guardian_report)
    try:
        [(_, mark, change)] = _apply([write], user=actor.user, klass=klass, day=day, is_amendment=is_amendment,
                                     amendment_reason=amendment_reason, now=now)
    except MarkConflict:
        # Another request created the day's mark meanwhile: if it was this same save (a retry that raced the
        # original), answer as a duplicate.
        if key and _receipt_seen(actor, key) is not None:
            raise _DuplicateSave from None
        raise
    _store_receipt(actor, key, sid, day, change.version, now)
    audit_record(
        actor=actor.user, action="attendance.mark.set", object_type="students.student", object_id=str(sid),
        fields=["attendance"],
        detail={"date": day.isoformat(), "class": klass.pk, "old": change.old_kind, "new": change.new_kind,
                "reason": change.new_reason, "source": mark.source if mark else source,
                "version": change.version, "amendment": is_amendment},
        scope=_audit_scope(klass),
    )
    if is_amendment:
        _register_amended(klass, day, actor)
    return mark


# --- A whole class's day -------------------------------------------------------------------------------------------

def entry_class_get(*, actor: Actor, class_id: int | str) -> HomeroomClass:
    """The class, if the actor may write its register (NotFoundOrNoAccess otherwise)."""
    return scope.get_in_scope(recordable_classes(actor).select_related("school_year__school"), pk=class_id)


@dataclass(frozen=True)
class _SaveContext:
    """What a class's save must know before it writes, read in one query with the class itself."""

    homeroom_class: HomeroomClass
    rules: AttendanceRules
    school_day: bool
    closed: bool
    month_status: str
    all_members: bool
    has_reports: bool
    # The day's DailyRegister when it exists (asked for with `with_register`); its other fields load on access.
    register: DailyRegister | None = None


@functools.cache
def _save_context_sql() -> dict[str, str]:
    """The subqueries of _save_context, correlated with the class row. Only the models' own table names are
    formatted in; every value is a parameter. `members` takes the list of placeholders for the pupils' ids."""
    k = connection.ops.quote_name(HomeroomClass._meta.db_table)
    calendar_day, closure = CalendarDay._meta.db_table, ClassClosure._meta.db_table
    monthly, report = MonthlyRegister._meta.db_table, GuardianReport._meta.db_table
    membership, student = ClassMembership._meta.db_table, Student._meta.db_table
    return {
        "override": f"SELECT cd.kind FROM {calendar_day} cd "  # noqa: S608
                    f"WHERE cd.school_year_id = {k}.school_year_id AND cd.date = %s",
        "closed": f"SELECT COUNT(*) FROM {closure} cc "  # noqa: S608
                  f"WHERE cc.homeroom_class_id = {k}.id AND cc.start_date <= %s AND cc.end_date >= %s",
        "month": f"SELECT mr.status FROM {monthly} mr "  # noqa: S608
                 f"WHERE mr.homeroom_class_id = {k}.id AND mr.year = %s AND mr.month = %s ORDER BY mr.id LIMIT 1",
        "members": f"SELECT COUNT(*) FROM {membership} m INNER JOIN {student} s ON s.id = m.student_id "  # noqa: S608
                   f"WHERE m.homeroom_class_id = {k}.id AND s.is_active = %%s AND m.student_id IN (%s)",
        "reports": f"SELECT COUNT(*) FROM {report} r INNER JOIN {membership} rm "  # noqa: S608
                   f"ON rm.student_id = r.student_id WHERE rm.homeroom_class_id = {k}.id AND r.date = %s "
                   "AND r.withdrawn_at IS NULL",
        **{
            f"register_{column}": f"SELECT dr.{column} FROM {DailyRegister._meta.db_table} dr "  # noqa: S608
                                  f"WHERE dr.homeroom_class_id = {k}.id AND dr.date = %s"
            for column in ("id", "entered_by_id", "entered_at")
        },
    }


def _save_context(actor: Actor, class_id: int | str, day: datetime.date, student_ids: Sequence[uuid.UUID], *,
                  with_register: bool = False) -> _SaveContext:
    """The class through the actor's recording scope (NotFoundOrNoAccess otherwise) with its school year, school
    and rules, and the day's facts as subqueries of the same SELECT: the calendar's entry for the day, whether a
    学級閉鎖 covers it, the month's register status, whether every pupil saved is an active member of the class,
    whether any guardian report for the day is waiting and (`with_register`, for a confirmation) the day's
    register. One round trip instead of six or seven."""
    sql = _save_context_sql()
    date = connection.ops.adapt_datefield_value(day)
    ids = [ClassMembership._meta.get_field("student").get_db_prep_value(s, connection) for s in student_ids]
    members = (
        RawSQL(sql["members"] % ", ".join(["%s"] * len(ids)), (True, *ids), output_field=IntegerField())  # noqa: S611
        if ids else Value(0)
    )
    qs = (
        recordable_classes(actor).select_related("school_year__school__attendance_rules")
        .annotate(
            day_override=RawSQL(sql["override"], (date,), output_field=CharField()),  # noqa: S611
            day_closed=RawSQL(sql["closed"], (date, date), output_field=IntegerField()),  # noqa: S611
            day_month_status=RawSQL(sql["month"], (day.year, day.month), output_field=CharField()),  # noqa: S611
            day_members=members,
            day_reports=RawSQL(sql["reports"], (date,), output_field=IntegerField()),  # noqa: S611
        )
    )
    if with_register:
        qs = qs.annotate(
            day_register_id=RawSQL(sql["register_id"], (date,), output_field=BigIntegerField()),  # noqa: S611
            day_register_by=RawSQL(sql["register_entered_by_id"], (date,), output_field=UUIDField()),  # noqa: S611
            day_register_at=RawSQL(sql["register_entered_at"], (date,), output_field=DateTimeField()),  # noqa: S611
        )
    klass = scope.get_in_scope(qs, pk=class_id)
    school = klass.school_year.school
    try:
        rules = school.attendance_rules  # read just now, with the class
    except AttendanceRules.DoesNotExist:
        rules = calendar.rules_for(school)  # the school's first save: its rules are created with the defaults
    facts: Any = klass
    register = None
    if with_register and facts.day_register_id is not None:
        # As the ORM builds a row it read with only() these columns: the others load if anyone asks for them.
        register = DailyRegister.from_db(
            klass._state.db, ["id", "homeroom_class_id", "date", "entered_by_id", "entered_at"],
            [facts.day_register_id, klass.pk, day, facts.day_register_by, facts.day_register_at],
        )
        register.homeroom_class = klass
        if register.entered_by_id == actor.user.pk:
            register.entered_by = actor.user
    return _SaveContext(
        homeroom_class=klass, rules=rules,
        school_day=calendar.is_school_day_known(klass.school_year, day, rules, facts.day_override),
        closed=bool(facts.day_closed), month_status=facts.day_month_status or MonthlyRegister.Status.OPEN,
        all_members=facts.day_members == len(set(student_ids)), has_reports=bool(facts.day_reports),
        register=register,
    )


def _suggestion(report: GuardianReport) -> MarkInput:
    """What a guardian's report proposes for the day."""
    if report.kind == GuardianReport.Kind.ABSENT:
        reason = report.reason_category if report.reason_category in AbsenceReason.values else AbsenceReason.OTHER
        return MarkInput(MarkKind.ABSENT, absence_reason=reason)
    if report.kind == GuardianReport.Kind.LATE:
        return MarkInput(MarkKind.LATE)
    return MarkInput(MarkKind.EARLY_LEAVE)


def latest_reports(klass: HomeroomClass, day: datetime.date,
                   student_ids: Sequence[uuid.UUID] | None = None) -> dict[uuid.UUID, GuardianReport]:
    """The newest report per pupil of the class for the day that the guardian has not withdrawn."""
    qs = GuardianReport.objects.filter(
        date=day, withdrawn_at__isnull=True, student__memberships__homeroom_class=klass
    ).order_by("submitted_at")
    if student_ids is not None:
        qs = qs.filter(student_id__in=list(student_ids))
    return {r.student_id: r for r in qs}


@dataclass
class RegisterSaveResult:
    saved: list[uuid.UUID] = field(default_factory=list)
    unchanged: list[uuid.UUID] = field(default_factory=list)
    conflicts: list[MarkConflict] = field(default_factory=list)
    register: DailyRegister | None = None
    # What the save read on its way (the class with its school year and school, the school's rules, the month's
    # status after the save), so the screen answering it need not read them again.
    homeroom_class: HomeroomClass | None = None
    rules: AttendanceRules | None = None
    month_status: str | None = None


@transaction.atomic
def register_save(
    *,
    actor: Actor,
    class_id: int | str,
    date: datetime.date,
    rows: Mapping[uuid.UUID, tuple[MarkInput, int | None]],
    amendment_reason: str = "",
    confirm: bool = False,
) -> RegisterSaveResult:
    """Save a class's day in one transaction (the whole-form save, and the API): `rows` maps pupils to the mark
    wanted and the version it was based on. Rows whose version is stale are not saved and come back as
    conflicts; the others are. One audit event lists the pupils changed. With `confirm`, the register is also
    confirmed (when nothing conflicted). Raises ValidationFailed with errors keyed by pupil id for bad rows."""
    context = _save_context(actor, class_id, date, list(rows), with_register=confirm)
    klass, rules = context.homeroom_class, context.rules
    amendment_reason = _clean_amendment_reason(amendment_reason)
    errors: dict[str, list[str]] = {}
    cleaned: dict[uuid.UUID, tuple[MarkInput, int | None]] = {}
    # A class's rows repeat a handful of values (most of a morning is the same few marks): each distinct value
    # is checked once.
    checked: dict[MarkInput, MarkInput | list[str]] = {}
    for sid, (data, base) in rows.items():
        outcome = checked.get(data)
        if outcome is None:
            try:
                outcome = clean_mark_input(data)
            except ValidationFailed as exc:
                outcome = [m for messages in exc.errors.values() for m in messages]
            checked[data] = outcome
        if isinstance(outcome, MarkInput):
            cleaned[sid] = (outcome, base)
        else:
            errors[str(sid)] = outcome
    if errors:
        raise ValidationFailed("入力内容を確認してください。", errors=errors)
    if not context.all_members:
        raise NotFoundOrNoAccess("見つかりません。")
    _check_school_day(klass, date, context.school_day)
    _check_not_closed(date, context.closed)
    status = context.month_status
    is_amendment = _status_allows(status, amendment_reason=amendment_reason)
    current = {
        m.student_id: m
        for m in _locked_marks(list(cleaned), date)
    }
    absent = [s for s in cleaned if s not in current]
    deleted_versions = dict(
        MarkChange.objects.filter(student_id__in=absent, date=date).order_by()
        .values("student_id").annotate(v=Max("version")).values_list("student_id", "v")
    ) if absent else {}
    untouched = [s for s in absent if s not in deleted_versions]
    # The class's reports for the day are read once, for the rows below and for the confirmation, and only when
    # there are any.
    class_reports = latest_reports(klass, date) if context.has_reports and (confirm or untouched) else {}
    reports = {s: class_reports[s] for s in untouched if s in class_reports}
    result = RegisterSaveResult(homeroom_class=klass, rules=rules, month_status=status)
    writes: list[_Write] = []
    for sid, (data, base) in cleaned.items():
        mark = current.get(sid)
        version = mark.version if mark else deleted_versions.get(sid, 0)
        if data.matches(mark):
            result.unchanged.append(sid)
            continue
        if base is not None and base != version:
            result.conflicts.append(_conflict(sid, date, mark, version))
            continue
        report = reports.get(sid)
        from_report = report is not None and _suggestion(report) == data
        writes.append(_Write(sid, data, mark, version,
                             source=MarkSource.GUARDIAN if from_report else MarkSource.TEACHER,
                             guardian_report=report if from_report else None))
    now = timezone.now()
    applied: list[tuple[_Write, Mark | None, _Change]] = []
    if writes:
        applied = _apply(writes, user=actor.user, klass=klass, day=date, is_amendment=is_amendment,
                         amendment_reason=amendment_reason, now=now)
        result.saved = [w.student_id for w, _, _ in applied]
    done = None
    if confirm and not result.conflicts:
        done = _confirm_writes(actor, klass, date, now, apply_reports=not is_amendment, reports=class_reports,
                               register=context.register)
        result.register = done.register
    # Audit events last: the chain's lock is held from the first append to the commit.
    if applied:
        audit_record(
            actor=actor.user, action="attendance.register.saved", obj=klass, fields=["attendance"],
            detail={"date": date.isoformat(), "students": [str(s) for s in result.saved],
                    "changes": {str(w.student_id): [c.old_kind, c.new_kind] for w, _, c in applied},
                    "amendment": is_amendment},
            scope=_audit_scope(klass),
        )
    if done is not None:
        _confirm_audit(actor, klass, date, done)
    if applied and is_amendment:
        _register_amended(klass, date, actor)
        result.month_status = None  # the amendment moved the month on: whoever needs it reads it again
    return result


@dataclass
class _Confirmation:
    register: DailyRegister
    first: bool
    from_reports: int
    unread: list[uuid.UUID]


def _confirm_writes(actor: Actor, klass: HomeroomClass, day: datetime.date, now: datetime.datetime, *,
                    apply_reports: bool = True,
                    reports: dict[uuid.UUID, GuardianReport] | None = None,
                    register: DailyRegister | None = None) -> _Confirmation:
    """The register's confirmation without its audit events (the caller records them last, see _confirm_audit).
    `reports`: latest_reports(klass, day), and `register`: the day's register if it exists, when the caller has
    already read them in this transaction."""
    if day > timezone.localdate():
        raise ValidationFailed("まだ来ていない日の出席簿は確定できません。当日以降に確定してください。")
    if reports is None:
        reports = latest_reports(klass, day)
    pending: dict[uuid.UUID, GuardianReport] = {}
    if reports and apply_reports:
        # Reports nobody has acted on become marks now: a day someone already changed (even back to 出席) keeps
        # the school's decision.
        ids = list(reports)
        touched = set(Mark.objects.filter(student_id__in=ids, date=day).values_list("student_id", flat=True))
        touched |= set(MarkChange.objects.filter(student_id__in=ids, date=day).values_list("student_id", flat=True))
        pending = {sid: r for sid, r in reports.items() if sid not in touched}
    if pending:
        writes = [_Write(sid, _suggestion(r), None, 0, source=MarkSource.GUARDIAN, guardian_report=r)
                  for sid, r in pending.items()]
        _apply(writes, user=actor.user, klass=klass, day=day, is_amendment=False, amendment_reason="", now=now)
    created = False
    if register is None:
        # With who entered it: the status bar that answers the confirmation shows them (registers.entry_status).
        register, created = DailyRegister.objects.select_related("entered_by").get_or_create(
            homeroom_class=klass, date=day, defaults={"entered_by": actor.user, "entered_at": now}
        )
    return _Confirmation(register, created, len(pending), [r.pk for r in reports.values() if r.read_at is None])


def _confirm_audit(actor: Actor, klass: HomeroomClass, day: datetime.date, done: _Confirmation) -> None:
    """The confirmation's audit events. Audit appends serialise on the chain's lock until commit, so every
    service here records them after its other writes."""
    if done.unread:
        # The register was confirmed with the day's reports on screen: the guardians now see them as read.
        # Imported here: the reports service writes marks through this module.
        from komu.attendance.services.reports import guardian_report_acknowledge

        guardian_report_acknowledge(actor=actor, report_ids=done.unread)
    if done.first or done.from_reports:
        audit_record(
            actor=actor.user, action="attendance.register.confirmed", obj=done.register, fields=["attendance"],
            detail={"date": day.isoformat(), "class": klass.pk, "first": done.first,
                    "from_reports": done.from_reports},
            scope=_audit_scope(klass),
        )


@transaction.atomic
def register_confirm(*, actor: Actor, class_id: int | str, date: datetime.date) -> DailyRegister:
    """「出欠を確定」: the class's register for the day is entered (the principal's overview stops listing it).
    Guardian reports that no one has acted on become marks (source GUARDIAN), and the day's reports are marked
    read (komu.attendance.services.reports). Confirming again keeps the first entry's who and when; it is audited
    when it writes something (the first time, or marks from reports)."""
    klass = entry_class_get(actor=actor, class_id=class_id)
    status = _entry_day_status(klass, date)
    # In a month that has left the teacher's hands nothing is written from reports: that would be an
    # amendment nobody gave a reason for.
    done = _confirm_writes(actor, klass, date, timezone.now(), apply_reports=status == MonthlyRegister.Status.OPEN)
    _confirm_audit(actor, klass, date, done)
    return done.register


# --- Period marks (high schools) -----------------------------------------------------------------------------------

@transaction.atomic
def period_mark_set(
    *,
    actor: Actor,
    student_id: uuid.UUID | str,
    date: datetime.date,
    period: int,
    kind: str,
    base_version: int | None = None,
    amendment_reason: str = "",
) -> PeriodMark:
    """Record one period (時限) for one pupil, then re-derive the day's mark from the periods
    (komu.attendance.periods) unless the day is 出席停止, 忌引 or 公欠. Returns the period's row."""
    membership = _membership_on(student_id, date)
    klass = membership.homeroom_class
    sid = membership.student_id
    if not recordable_classes(actor).filter(pk=klass.pk).exists():
        raise NotFoundOrNoAccess("見つかりません。")
    rules = calendar.rules_for(klass.school_year.school)
    if not rules.per_period:
        raise ValidationFailed("この学校は時限ごとの出欠を記録しない設定です。設定は「出欠の規則」で変えられます。")
    if not 1 <= period <= rules.periods_per_day:
        raise ValidationFailed(f"時限は1〜{rules.periods_per_day}で指定してください。")
    if kind not in periods.PERIOD_KINDS:
        raise ValidationFailed("時限の出欠は出席・欠課・遅刻・早退から選んでください。")
    amendment_reason = _clean_amendment_reason(amendment_reason)
    is_amendment = check_day(klass, date, amendment_reason=amendment_reason)
    # order_by: the default ordering would join (and FOR UPDATE lock) the class and school rows.
    row = PeriodMark.objects.select_for_update().filter(student_id=sid, date=date, period=period).order_by("pk").first()
    if row is not None and row.kind == kind:
        return row
    version = row.version if row else 0
    if base_version is not None and base_version != version:
        raise MarkConflict(
            "この時限はほかの画面で変更されていました。あなたの変更は保存されていません。表示を確かめてください。",
            student_id=sid, date=date, current=None, version=version,
            changed_by=row.updated_by if row else None, changed_at=row.updated_at if row else None,
        )
    if row is None:
        row = PeriodMark(student_id=sid, homeroom_class=klass, date=date, period=period)
    old_kind = row.kind or MarkKind.PRESENT
    row.kind = kind
    row.version = version + 1
    row.updated_by = actor.user
    row.homeroom_class = klass
    row.save()
    day_kinds = dict(PeriodMark.objects.filter(student_id=sid, date=date).values_list("period", "kind"))
    derived = periods.derive_daily_kind(day_kinds, rules.periods_per_day)
    current = _locked_marks([sid], date).first()
    current_kind = current.kind if current else MarkKind.PRESENT
    daily_changed = False
    if current_kind in periods.DERIVED_KINDS and derived != current_kind:
        # A whole day missed keeps the reason already given; otherwise その他 until the teacher says why.
        reason = (current.absence_reason if current and current.kind == MarkKind.ABSENT else AbsenceReason.OTHER)
        data = MarkInput(derived, absence_reason=reason if derived == MarkKind.ABSENT else "")
        _apply([_Write(sid, data, current, _version_now(sid, date, current))], user=actor.user, klass=klass,
               day=date, is_amendment=is_amendment, amendment_reason=amendment_reason, now=timezone.now())
        daily_changed = True
    audit_record(
        actor=actor.user, action="attendance.period_mark.set", object_type="students.student", object_id=str(sid),
        fields=["attendance"],
        detail={"date": date.isoformat(), "class": klass.pk, "period": period, "old": old_kind, "new": kind,
                "daily": derived if daily_changed else current_kind, "amendment": is_amendment},
        scope=_audit_scope(klass),
    )
    if is_amendment and daily_changed:
        _register_amended(klass, date, actor)
    return row
