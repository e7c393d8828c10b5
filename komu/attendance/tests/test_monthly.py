"""The monthly 出席簿 through its approval: totals, submission, the chain, amendments and re-approval, the year
close."""

from __future__ import annotations

import datetime
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from komu.access.scope import Actor, forget_actor, get_actor
from komu.approvals import selectors as approval_selectors
from komu.approvals import services as approvals
from komu.approvals.models import ApprovalAction, ApprovalRequest
from komu.attendance.models import ClassClosure, Mark, MarkChange, MarkKind, MonthlyRegister
from komu.attendance.registers import build_month
from komu.attendance.selectors import monthly as selectors
from komu.attendance.services import monthly
from komu.audit.models import AuditEvent
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.testing.world import World


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def after_the_year(world: World, monkeypatch: pytest.MonkeyPatch) -> datetime.date:
    """The clock at the end of the world's school year: every month can be submitted and the year closed."""
    end = world.class_a1.school_year.end_date
    monkeypatch.setattr(monthly, "today", lambda: end)
    return end


def act(world: World, name: str) -> Actor:
    user = world.user(name)
    forget_actor(user)
    return get_actor(user)


def june(world: World) -> tuple[int, int]:
    return world.class_a1.school_year.year, 6


def day(world: World, d: int) -> datetime.date:
    """A school day of June in the world's year (the d-th weekday that is not a holiday)."""
    year, month = june(world)
    sheet = build_month(world.class_a1, year, month, with_names=False)
    return sheet.days[d - 1]


def mark(world: World, who: str, on: datetime.date, kind: str, reason: str = "", **extra: Any) -> Mark:
    return Mark.objects.create(student=world.students[who], homeroom_class=world.class_a1, date=on, kind=kind,
                               absence_reason=reason, updated_by=world.user("homeroom_a1"), **extra)


def submit_june(world: World) -> MonthlyRegister:
    year, month = june(world)
    return monthly.monthly_register_submit(actor=act(world, "homeroom_a1"), class_id=world.class_a1.pk, year=year,
                                           month=month)


def approve_all(world: World, register: MonthlyRegister) -> None:
    register.refresh_from_db()
    assert register.approval is not None
    for name in ("vice_principal_a", "principal_a"):
        approvals.request_approve(actor=act(world, name), request_id=register.approval_id)
    register.refresh_from_db()


def test_the_month_page_shows_the_totals_of_the_month_sheet(world: World) -> None:
    mark(world, "a1_first", day(world, 1), MarkKind.ABSENT, "illness")
    mark(world, "a1_first", day(world, 2), MarkKind.LATE)
    mark(world, "a1_second", day(world, 3), MarkKind.SUSPENSION, suspension_kind="infectious", disease="influenza")
    mark(world, "a1_second", day(world, 4), MarkKind.MOURNING, kinship_degree=1)
    ClassClosure.objects.create(homeroom_class=world.class_a1, start_date=day(world, 6), end_date=day(world, 6))
    year, month = june(world)
    page = selectors.monthly_register_get_for(actor=act(world, "principal_a"), class_id=world.class_a1.pk,
                                              year=year, month=month)
    sheet = build_month(world.class_a1, year, month)
    assert [r.totals for r in page.rows] == [p.totals for p in sheet.pupils]
    assert page.class_totals == sheet.class_totals
    assert page.content_hash == sheet.content_hash()
    first, second = page.rows
    assert first.name == "髙橋 𠮷乃"
    assert (first.totals.absent_days, first.totals.late, first.totals.present_days) == (
        1, 1, first.totals.lesson_days - 1 - 1)
    assert second.totals.excused_days == 3  # 出席停止, 忌引 and the 学級閉鎖 day
    by_date = {d.date: i for i, d in enumerate(page.days)}
    assert first.cells[by_date[day(world, 1)]].symbol == "病"
    assert first.cells[by_date[day(world, 2)]].symbol == "チ"
    assert second.cells[by_date[day(world, 3)]].symbol == "停"
    assert "インフルエンザ" in second.cells[by_date[day(world, 3)]].label
    assert second.cells[by_date[day(world, 4)]].symbol == "忌"
    assert first.cells[by_date[day(world, 6)]].is_closure
    saturday = next(d for d in page.days if d.date.weekday() == 5)
    assert not saturday.is_school_day and saturday.weekday == "土"
    assert AuditEvent.objects.filter(action="attendance.register.viewed").count() == 1


def test_the_homeroom_teacher_submits_and_the_chain_approves(world: World, after_the_year: datetime.date) -> None:
    register = submit_june(world)
    assert register.status == MonthlyRegister.Status.SUBMITTED
    request = register.approval
    assert request is not None and request.document_type == monthly.DOCUMENT_TYPE
    year, month = june(world)
    assert register.content_hash == request.content_hash == build_month(world.class_a1, year, month).content_hash()
    assert request.title == f"{request.title.split()[0]} 出席簿 小学1年 1組 6月"

    approvals.request_approve(actor=act(world, "vice_principal_a"), request_id=request.pk)
    register.refresh_from_db()
    assert register.status == MonthlyRegister.Status.SUBMITTED
    approvals.request_approve(actor=act(world, "principal_a"), request_id=request.pk)
    register.refresh_from_db()
    assert register.status == MonthlyRegister.Status.APPROVED
    assert all(c.valid for c in approval_selectors.subject_verify(register))
    assert AuditEvent.objects.filter(action="attendance.register.approved").exists()


def test_a_returned_register_is_open_again_for_the_teacher(world: World, after_the_year: datetime.date) -> None:
    register = submit_june(world)
    approvals.request_return(actor=act(world, "vice_principal_a"), request_id=register.approval_id,
                             comment="6月3日の遅刻を確認してください")
    register.refresh_from_db()
    assert register.status == MonthlyRegister.Status.OPEN
    again = submit_june(world)
    assert again.status == MonthlyRegister.Status.SUBMITTED and again.approval.revision == 2


def test_a_month_is_submitted_only_after_its_last_school_day(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    year, month = june(world)
    last = build_month(world.class_a1, year, month, with_names=False).days[-1]
    monkeypatch.setattr(monthly, "today", lambda: last - datetime.timedelta(days=1))
    with pytest.raises(ValidationFailed, match="最後の授業日"):
        submit_june(world)
    monkeypatch.setattr(monthly, "today", lambda: last)
    assert submit_june(world).status == MonthlyRegister.Status.SUBMITTED


def test_only_the_classes_homeroom_teacher_submits(world: World, after_the_year: datetime.date) -> None:
    year, month = june(world)
    with pytest.raises(PermissionDeniedError, match="担任"):
        monthly.monthly_register_submit(actor=act(world, "principal_a"), class_id=world.class_a1.pk, year=year,
                                        month=month)
    with pytest.raises(NotFoundOrNoAccess):
        monthly.monthly_register_submit(actor=act(world, "homeroom_a1"), class_id=world.class_a2.pk, year=year,
                                        month=month)
    with pytest.raises(NotFoundOrNoAccess):
        monthly.monthly_register_submit(actor=act(world, "homeroom_a1"), class_id=world.class_a1.pk,
                                        year=year + 5, month=month)


def test_an_amendment_after_approval_goes_back_for_approval_and_keeps_the_old_seals(
    world: World, after_the_year: datetime.date,
) -> None:
    from komu.attendance.services import marks

    first_day = day(world, 1)
    mark(world, "a1_first", first_day, MarkKind.ABSENT, "illness")
    register = approve_all_june(world)
    first_request = register.approval
    old_hash = register.content_hash

    with pytest.raises(ValidationFailed, match="訂正理由"):
        marks.mark_set(actor=act(world, "homeroom_a1"), student_id=world.students["a1_first"].pk, date=first_day,
                       kind=MarkKind.LATE)
    marks.mark_set(actor=act(world, "homeroom_a1"), student_id=world.students["a1_first"].pk, date=first_day,
                   kind=MarkKind.LATE, amendment_reason="病院に寄ってから登校したため遅刻に訂正")
    register.refresh_from_db()
    first_request.refresh_from_db()
    assert register.status == MonthlyRegister.Status.AMENDED
    assert first_request.status == ApprovalRequest.Status.SUPERSEDED
    assert first_request.approved_at is not None
    supersede = first_request.actions.get(kind=ApprovalAction.Kind.SUPERSEDE)
    assert "病院に寄ってから" in supersede.comment

    year, month = june(world)
    page = selectors.monthly_register_get_for(actor=act(world, "principal_a"), class_id=world.class_a1.pk,
                                              year=year, month=month)
    [correction] = page.corrections
    assert correction.new_symbol == "チ" and correction.reason.startswith("病院に寄って")
    cell = page.rows[0].cells[[d.date for d in page.days].index(first_day)]
    assert cell.symbol == "チ" and cell.corrections == (correction,)

    # The old seals still verify (against the first revision's snapshot); nothing current is sealed yet.
    checks = approval_selectors.subject_verify(register)
    assert [c.revision for c in checks] == [1, 1] and all(c.valid for c in checks)

    again = submit_june(world)
    assert again.approval.revision == 2 and again.content_hash != old_hash
    approve_all(world, again)
    assert again.status == MonthlyRegister.Status.APPROVED
    checks = approval_selectors.subject_verify(again)
    assert sorted(c.revision for c in checks) == [1, 1, 2, 2] and all(c.valid for c in checks)


def test_a_correction_shows_the_old_symbol_struck_through_with_who_when_and_why(world: World) -> None:
    on = day(world, 3)
    mark(world, "a1_second", on, MarkKind.EARLY_LEAVE)
    when = timezone.now()
    MarkChange.objects.create(
        student=world.students["a1_second"], homeroom_class=world.class_a1, date=on, old_kind=MarkKind.ABSENT,
        old_reason="accident", new_kind=MarkKind.EARLY_LEAVE, is_amendment=True, amendment_reason="保護者から訂正の連絡",
        changed_by=world.user("homeroom_a1"), changed_at=when,
    )
    # A change before submission is no amendment: it is not shown as a correction.
    MarkChange.objects.create(
        student=world.students["a1_first"], homeroom_class=world.class_a1, date=on, old_kind=MarkKind.PRESENT,
        new_kind=MarkKind.LATE, changed_by=world.user("homeroom_a1"), changed_at=when,
    )
    year, month = june(world)
    page = selectors.monthly_register_get_for(actor=act(world, "homeroom_a1"), class_id=world.class_a1.pk,
                                              year=year, month=month)
    [correction] = page.corrections
    assert (correction.number, correction.shusseki_no, correction.pupil) == (1, 2, "山﨑 葛\U000e0100太")
    assert (correction.old_symbol, correction.old_label) == ("事", "欠席（事故）")
    assert (correction.new_symbol, correction.new_label) == ("早", "早退")
    assert correction.by == world.user("homeroom_a1").display_name and correction.at == when
    assert correction.reason == "保護者から訂正の連絡"
    cell = page.rows[1].cells[[d.date for d in page.days].index(on)]
    assert cell.symbol == "早" and cell.corrections == (correction,)


def approve_all_june(world: World) -> MonthlyRegister:
    register = submit_june(world)
    approve_all(world, register)
    assert register.status == MonthlyRegister.Status.APPROVED
    return register


def test_an_amendment_while_pending_stops_the_request(world: World, after_the_year: datetime.date) -> None:
    register = submit_june(world)
    monthly.register_amended(world.class_a1, day(world, 2), act(world, "homeroom_a1"))
    register.refresh_from_db()
    assert register.status == MonthlyRegister.Status.AMENDED
    assert register.approval.status == ApprovalRequest.Status.SUPERSEDED
    assert AuditEvent.objects.filter(action="attendance.register.amended").count() == 1


def test_a_change_to_an_open_month_needs_no_reapproval(world: World) -> None:
    assert monthly.register_amended(world.class_a1, day(world, 2), act(world, "homeroom_a1")) is None


def test_data_changed_behind_the_registers_back_fails_verification(world: World,
                                                                  after_the_year: datetime.date) -> None:
    register = approve_all_june(world)
    mark(world, "a1_second", day(world, 5), MarkKind.ABSENT, "other")
    checks = approval_selectors.subject_verify(register)
    assert checks and not any(c.valid for c in checks)
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("approvals", "verify", "--school", world.school_a.code, stdout=out)
    assert "承認後に内容が変更されています" in out.getvalue()


# --- Year close --------------------------------------------------------------------------------------------------

def _approve_every_month(world: World) -> None:
    """Every class of school A, every month: approved (set directly; the chain itself is tested above)."""
    school_year = world.class_a1.school_year
    for klass in school_year.classes.all():
        for year, month in monthly.fiscal_months(school_year):
            MonthlyRegister.objects.update_or_create(homeroom_class=klass, year=year, month=month,
                                                     defaults={"status": MonthlyRegister.Status.APPROVED,
                                                               "content_hash": "0" * 64})


def test_the_year_cannot_close_while_a_month_is_unapproved(world: World, after_the_year: datetime.date) -> None:
    with pytest.raises(ValidationFailed, match="承認されていません") as exc:
        monthly.attendance_year_close(actor=act(world, "principal_a"), school=world.school_a,
                                      fiscal_year=world.class_a1.school_year.year)
    assert any("1組" in p for p in exc.value.errors["year"])
    assert not MonthlyRegister.objects.filter(status=MonthlyRegister.Status.LOCKED).exists()


def test_the_year_cannot_close_before_its_last_school_day(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    _approve_every_month(world)
    monkeypatch.setattr(monthly, "today", lambda: world.class_a1.school_year.start_date)
    with pytest.raises(ValidationFailed, match="最後の授業日"):
        monthly.attendance_year_close(actor=act(world, "principal_a"), school=world.school_a,
                                      fiscal_year=world.class_a1.school_year.year)


def test_only_the_schools_principal_closes_its_year(world: World, after_the_year: datetime.date) -> None:
    _approve_every_month(world)
    for name in ("vice_principal_a", "principal_b", "homeroom_a1"):
        with pytest.raises(NotFoundOrNoAccess):
            monthly.attendance_year_close(actor=act(world, name), school=world.school_a,
                                          fiscal_year=world.class_a1.school_year.year)


def test_a_closed_year_is_locked_for_good(world: World, after_the_year: datetime.date) -> None:
    from komu.attendance.services import marks

    _approve_every_month(world)
    result = monthly.attendance_year_close(actor=act(world, "principal_a"), school=world.school_a,
                                           fiscal_year=world.class_a1.school_year.year)
    assert result.locked == 24  # two classes × twelve months
    assert not MonthlyRegister.objects.filter(homeroom_class__school_year__school=world.school_a).exclude(
        status=MonthlyRegister.Status.LOCKED).exists()
    assert monthly.month_is_locked(world.class_a1, day(world, 1))
    with pytest.raises(ValidationFailed, match="確定"):
        marks.mark_set(actor=act(world, "homeroom_a1"), student_id=world.students["a1_first"].pk,
                       date=day(world, 1), kind=MarkKind.LATE, amendment_reason="訂正")
    with pytest.raises(ValidationFailed, match="確定"):
        monthly.register_amended(world.class_a1, day(world, 1), act(world, "homeroom_a1"))
    with pytest.raises(ValidationFailed, match="確定"):
        submit_june(world)
    assert not MarkChange.objects.exists()
    assert AuditEvent.objects.filter(action="attendance.year.closed").count() == 1


def test_the_close_year_command_locks_a_school_year(world: World, after_the_year: datetime.date) -> None:
    fiscal = str(world.class_a1.school_year.year)
    with pytest.raises(CommandError, match="承認されていません"):
        call_command("attendance", "close-year", "--school", world.school_a.code, "--year", fiscal)
    _approve_every_month(world)
    out = StringIO()
    call_command("attendance", "close-year", "--school", world.school_a.code, "--year", fiscal, stdout=out)
    assert "24" in out.getvalue()
    with pytest.raises(CommandError, match="学校コード"):
        call_command("attendance", "close-year", "--school", "B199999999999", "--year", fiscal)


def test_the_school_overview_shows_every_class_and_month(world: World, after_the_year: datetime.date) -> None:
    approve_all_june(world)
    overview = selectors.school_year_overview_for(actor=act(world, "principal_a"), school_id=world.school_a.pk,
                                                  fiscal_year=world.class_a1.school_year.year)
    assert [str(r.klass) for r in overview.rows] == ["小学1年 1組", "小学1年 2組"]
    assert overview.rows[0].statuses[2] == MonthlyRegister.Status.APPROVED
    assert overview.can_close and overview.blockers
    teacher = selectors.school_year_overview_for(actor=act(world, "homeroom_a1"), school_id=world.school_a.pk,
                                                 fiscal_year=world.class_a1.school_year.year)
    assert [r.klass for r in teacher.rows] == [world.class_a1] and not teacher.can_close
    with pytest.raises(NotFoundOrNoAccess):
        selectors.school_year_overview_for(actor=act(world, "principal_b"), school_id=world.school_a.pk,
                                           fiscal_year=world.class_a1.school_year.year)


def test_the_annual_record_adds_up_the_twelve_months(world: World) -> None:
    mark(world, "a1_first", day(world, 1), MarkKind.ABSENT, "illness")
    mark(world, "a1_first", day(world, 2), MarkKind.SUSPENSION, suspension_kind="infectious", disease="influenza")
    record = selectors.annual_record_print_for(actor=act(world, "homeroom_a1"), class_id=world.class_a1.pk)
    first = record.pupils[0]
    assert len(first.months) == 12 and first.months[0].month == 4
    assert first.total.lesson_days == sum(m.totals.lesson_days for m in first.months)
    assert (first.total.absent_days, first.total.suspension_days) == (1, 1)
    assert "インフルエンザ1日" in first.note
    assert AuditEvent.objects.filter(action="attendance.annual_record.printed").count() == 1
    with pytest.raises(NotFoundOrNoAccess):
        selectors.annual_record_print_for(actor=act(world, "principal_b"), class_id=world.class_a1.pk)


def test_reading_a_register_of_another_school_is_not_found(world: World) -> None:
    year, month = june(world)
    for name in ("principal_b", "teacher_a", "board_officer_a", "guardian_a"):
        with pytest.raises(NotFoundOrNoAccess):
            selectors.monthly_register_get_for(actor=act(world, name), class_id=world.class_a1.pk, year=year,
                                               month=month)
    # The homeroom teacher of 1組 reads 1組 only.
    with pytest.raises(NotFoundOrNoAccess):
        selectors.monthly_register_get_for(actor=act(world, "homeroom_a1"), class_id=world.class_a2.pk, year=year,
                                           month=month)


def test_a_delegate_without_attendance_access_reads_the_register_they_must_seal(
    world: World, after_the_year: datetime.date,
) -> None:
    from komu.approvals.models import Delegation

    today = timezone.localdate()
    Delegation.objects.create(school=world.school_a, delegator=world.user("vice_principal_a"),
                              delegate=world.user("teacher_a"), start_date=today, end_date=today)
    submit_june(world)
    year, month = june(world)
    page = selectors.monthly_register_get_for(actor=act(world, "teacher_a"), class_id=world.class_a1.pk,
                                              year=year, month=month)
    assert page.authority is not None and page.authority.on_behalf_of == world.user("vice_principal_a")
    with pytest.raises(NotFoundOrNoAccess):
        selectors.monthly_register_get_for(actor=act(world, "teacher_a"), class_id=world.class_a1.pk, year=year,
                                           month=5)
