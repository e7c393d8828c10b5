"""The monthly 出席簿 through its approval: submission by the homeroom teacher, the approvals engine's hooks,
amendments after submission (訂正 → re-approval), and the year close that locks every register for good.

The register is registered with komu.approvals as the document type "attendance.monthly_register": its content
is the canonical month sheet of komu.attendance.registers (marks and totals, no names), so every seal signs that
hash. The approval engine stores the canonical JSON of each submitted revision, so the seals of a superseded
revision keep verifying against what their approvers saw, while current seals verify against the live marks.

Called from elsewhere: komu.attendance.services.marks calls `register_amended` when it writes a mark into a
month that is SUBMITTED, APPROVED or AMENDED, and refuses LOCKED months (`month_is_locked`).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_noop

from komu.access import roles
from komu.access.scope import Actor, classes_for
from komu.approvals import registry
from komu.approvals import services as approvals
from komu.approvals.models import ApprovalRequest
from komu.attendance import calendar
from komu.attendance.models import MarkChange, MonthlyRegister
from komu.attendance.registers import build_month
from komu.audit.services import Scope, audit_record
from komu.core import wareki
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.directory.models import HomeroomClass, Role, School, SchoolYear

DOCUMENT_TYPE = "attendance.monthly_register"
# The register never changes again in these states except through an amendment (reason, re-approval).
SEALED = frozenset({MonthlyRegister.Status.SUBMITTED, MonthlyRegister.Status.APPROVED})


def today() -> datetime.date:
    """Today in Japan (a function so tests can move the clock)."""
    return timezone.localdate()


def _scope(klass: HomeroomClass) -> Scope:
    school = klass.school_year.school
    return Scope(school_id=school.pk, board_id=school.board_id)


def month_title(klass: HomeroomClass, year: int, month: int) -> str:
    """「令和8年度 出席簿 小学1年 1組 6月」: how the paper register and its approval are titled."""
    fiscal = wareki.fiscal_year_title(klass.school_year.year, wareki=True)
    return f"{fiscal} 出席簿 {klass} {month}月"


def fiscal_months(school_year: SchoolYear) -> list[tuple[int, int]]:
    """(calendar year, month) of every month of the school year, April first."""
    months = []
    day = school_year.start_date.replace(day=1)
    while day <= school_year.end_date:
        months.append((day.year, day.month))
        day = (day + datetime.timedelta(days=32)).replace(day=1)
    return months


def month_in_year(klass: HomeroomClass, year: int, month: int) -> bool:
    return (year, month) in fiscal_months(klass.school_year)


def submittable_from(klass: HomeroomClass, year: int, month: int) -> datetime.date:
    """The first day the month can be submitted: its last school day (the teacher submits after entering it),
    or the day after the month when it has no school day."""
    start, end = calendar.month_bounds(year, month)
    days = calendar.school_days(klass.school_year, start, end)
    return days[-1] if days else end + datetime.timedelta(days=1)


# --- For the marks service ---------------------------------------------------------------------------------------

def month_is_locked(homeroom_class: HomeroomClass, date: datetime.date) -> bool:
    """Whether the class's register for the month of `date` is closed for good (年度末確定)."""
    return MonthlyRegister.objects.filter(
        homeroom_class=homeroom_class, year=date.year, month=date.month, status=MonthlyRegister.Status.LOCKED
    ).exists()


def register_amended(homeroom_class: HomeroomClass, date: datetime.date, actor: Any) -> MonthlyRegister | None:
    """A mark of a submitted or approved month was amended (the marks service has kept the old value and the
    reason in MarkChange). The pending or approved request is superseded — its seals stay in the history and keep
    verifying against the snapshot — and the register waits for a new revision to be submitted and approved.
    Runs inside the caller's transaction. `actor` is the acting Actor (or a user)."""
    user = getattr(actor, "user", actor)
    with transaction.atomic():
        register = (
            # Lock the register row only (of=self): the joined class, year and school rows are read, not locked,
            # so an amendment in one class never waits on another class of the same school.
            MonthlyRegister.objects.select_for_update(of=("self",)).select_related("homeroom_class__school_year__school")
            .filter(homeroom_class=homeroom_class, year=date.year, month=date.month).first()
        )
        if register is None:
            return None
        if register.status == MonthlyRegister.Status.LOCKED:
            raise ValidationFailed("この月の出席簿は年度末に確定したため、変更できません。")
        if register.status not in SEALED:
            return register
        change = (
            MarkChange.objects.filter(homeroom_class=homeroom_class, date=date, is_amendment=True)
            .order_by("-changed_at").first()
        )
        reason = f"{date.month}月{date.day}日の出欠を訂正"
        if change is not None and change.amendment_reason:
            reason += f"（{change.amendment_reason}）"
        previous = register.status
        if register.approval is not None:
            role = _role_in(actor, homeroom_class)
            approvals.request_supersede(user=user, request=register.approval, reason=reason, role=role)
        register.status = MonthlyRegister.Status.AMENDED
        register.save(update_fields=["status", "updated_at"])
        audit_record(
            actor=user, action="attendance.register.amended", obj=register,
            detail={"date": date.isoformat(), "previous_status": previous,
                    "request": register.approval_id or ""},
            scope=_scope(homeroom_class),
        )
        return register


def _role_in(actor: Any, klass: HomeroomClass) -> str:
    grants = getattr(actor, "grants", ())
    school_id = klass.school_year.school_id
    for grant in grants:
        if grant.class_id == klass.pk or grant.school_id == school_id:
            return str(grant.role)
    return ""


# --- Submission ----------------------------------------------------------------------------------------------

def _homeroom_class_for(actor: Actor, class_id: Any) -> HomeroomClass:
    """The class if the actor is its homeroom teacher; a refusal if they can see it but do not teach it; 404
    otherwise."""
    qs = HomeroomClass.objects.select_related("school_year__school")
    own = [g.class_id for g in actor.grants if g.role == Role.HOMEROOM_TEACHER and g.class_id is not None]
    try:
        return qs.get(pk=class_id, pk__in=own)
    except (HomeroomClass.DoesNotExist, ValueError, TypeError):
        pass
    if classes_for(actor, roles.ATTENDANCE_VIEW).filter(pk=class_id).exists():
        raise PermissionDeniedError("出席簿を提出できるのは、その学級の担任です。")
    raise NotFoundOrNoAccess("見つかりません。")


@transaction.atomic
def monthly_register_submit(*, actor: Actor, class_id: Any, year: int, month: int) -> MonthlyRegister:
    """The homeroom teacher submits the month: the register is sealed for approval with the hash of its
    current content, through the school's chain (default 副校長 → 校長)."""
    klass = _homeroom_class_for(actor, class_id)
    if not month_in_year(klass, year, month):
        raise NotFoundOrNoAccess("見つかりません。")
    opens = submittable_from(klass, year, month)
    if today() < opens:
        raise ValidationFailed(
            f"{month}月の出席簿は、月の最後の授業日（{wareki.to_wareki(opens)}）の入力が終わってから提出してください。"
        )
    register, _created = MonthlyRegister.objects.select_for_update().get_or_create(
        homeroom_class=klass, year=year, month=month
    )
    if register.status == MonthlyRegister.Status.LOCKED:
        raise ValidationFailed("この月の出席簿は年度末に確定しています。提出し直すことはできません。")
    if register.status == MonthlyRegister.Status.SUBMITTED:
        raise ValidationFailed("この月の出席簿は既に決裁中です。")
    if register.status == MonthlyRegister.Status.APPROVED:
        raise ValidationFailed("この月の出席簿は承認済みです。訂正すると再び提出できるようになります。")
    request = approvals.request_submit(
        actor=actor, document_type=DOCUMENT_TYPE, subject=register, school=klass.school_year.school,
    )
    register.status = MonthlyRegister.Status.SUBMITTED
    register.content_hash = request.content_hash
    register.approval = request
    register.full_clean()
    register.save()
    audit_record(
        actor=actor.user, action="attendance.register.submitted", obj=register,
        detail={"request": request.pk, "revision": request.revision, "content_hash": request.content_hash},
        scope=_scope(klass),
    )
    return register


# --- The approvals engine's view of a register ------------------------------------------------------------------

def _content(register: MonthlyRegister) -> registry.Content:
    sheet = build_month(register.homeroom_class, register.year, register.month, with_names=False)
    return registry.content_of(sheet.canonical())


def _title(register: MonthlyRegister) -> str:
    return month_title(register.homeroom_class, register.year, register.month)


def _url(register: MonthlyRegister) -> str:
    return reverse("attendance:monthly", args=[register.homeroom_class_id, register.year, register.month])


def _ever_approved(register: MonthlyRegister) -> bool:
    from django.contrib.contenttypes.models import ContentType

    return ApprovalRequest.objects.filter(
        content_type=ContentType.objects.get_for_model(MonthlyRegister), object_id=str(register.pk),
        approved_at__isnull=False,
    ).exists()


def _set_status(register: MonthlyRegister, status: str, user: Any, action: str, request: ApprovalRequest) -> None:
    if register.approval_id != request.pk or register.status != MonthlyRegister.Status.SUBMITTED:
        # Only the register's current request moves it; an old one finishing late changes nothing.
        return
    register.status = status
    register.save(update_fields=["status", "updated_at"])
    audit_record(actor=user, action=action, obj=register, detail={"request": request.pk},
                 scope=_scope(register.homeroom_class))


def _on_approved(register: MonthlyRegister, request: ApprovalRequest, user: Any) -> None:
    _set_status(register, MonthlyRegister.Status.APPROVED, user, "attendance.register.approved", request)


def _back_to_teacher(register: MonthlyRegister, request: ApprovalRequest, user: Any) -> None:
    # Returned or withdrawn: open for correction again — still "amended" if an earlier revision was approved.
    status = MonthlyRegister.Status.AMENDED if _ever_approved(register) else MonthlyRegister.Status.OPEN
    action = ("attendance.register.returned" if request.status == ApprovalRequest.Status.RETURNED
              else "attendance.register.withdrawn")
    _set_status(register, status, user, action, request)


registry.register(registry.DocumentType(
    code=DOCUMENT_TYPE,
    label=gettext_noop("出席簿（月）"),
    model=MonthlyRegister,
    content=_content,
    title=_title,
    url=_url,
    on_approved=_on_approved,
    on_returned=_back_to_teacher,
    on_withdrawn=_back_to_teacher,
))


# --- Year close ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class YearCloseResult:
    school_year: SchoolYear
    locked: int


def year_close_blockers(school_year: SchoolYear) -> list[str]:
    """What stands between the year and its close: every month with school days must be approved in every class,
    and the year's last school day must have passed."""
    problems = []
    year_days = calendar.school_days(school_year, school_year.start_date, school_year.end_date)
    last_day = year_days[-1] if year_days else school_year.end_date
    if today() < last_day:
        problems.append(f"年度の最後の授業日（{wareki.to_wareki(last_day)}）より後に確定してください。")
    with_days = {(d.year, d.month) for d in year_days}
    approved = set(
        MonthlyRegister.objects.filter(
            homeroom_class__school_year=school_year,
            status__in=(MonthlyRegister.Status.APPROVED, MonthlyRegister.Status.LOCKED),
        ).values_list("homeroom_class_id", "year", "month")
    )
    for klass in school_year.classes.order_by("grade_code", "sort_order", "name"):
        missing = [m for (y, m) in fiscal_months(school_year) if (y, m) in with_days and (klass.pk, y, m) not in approved]
        if missing:
            problems.append(f"{klass}: {'、'.join(f'{m}月' for m in missing)}の出席簿が承認されていません。")
    return problems


@transaction.atomic
def attendance_year_close(*, actor: Actor | None, school: School, fiscal_year: int) -> YearCloseResult:
    """年度末確定: every month of every class of the year becomes LOCKED and can never change again (the
    electronic register is the original). Only when every month with school days is approved. `actor` None is
    the operator's command (`komu attendance close-year`)."""
    if actor is not None:
        allowed = {g.school_id for g in actor.grants_with(roles.ATTENDANCE_CLOSE_YEAR)}
        if school.pk not in allowed:
            raise NotFoundOrNoAccess("見つかりません。")
    try:
        school_year = SchoolYear.objects.select_for_update().get(school=school, year=fiscal_year)
    except SchoolYear.DoesNotExist:
        raise ValidationFailed(f"{school.name} に {fiscal_year}年度 はありません。") from None
    problems = year_close_blockers(school_year)
    if problems:
        raise ValidationFailed("年度末確定ができません。" + " ".join(problems), errors={"year": problems})
    locked = 0
    for klass in school_year.classes.all():
        for year, month in fiscal_months(school_year):
            register, _created = MonthlyRegister.objects.select_for_update().get_or_create(
                homeroom_class=klass, year=year, month=month
            )
            if register.status == MonthlyRegister.Status.LOCKED:
                continue
            if not register.content_hash:
                # A month without school days was never submitted: record what it held when it was closed.
                register.content_hash = _content(register).hash
            register.status = MonthlyRegister.Status.LOCKED
            register.save(update_fields=["status", "content_hash", "updated_at"])
            locked += 1
    audit_record(
        actor=actor.user if actor is not None else None, action="attendance.year.closed", obj=school_year,
        detail={"fiscal_year": fiscal_year, "registers_locked": locked},
        scope=Scope(school_id=school.pk, board_id=school.board_id),
    )
    return YearCloseResult(school_year, locked)
