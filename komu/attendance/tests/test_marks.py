"""mark_set, register_save and register_confirm: every kind, the messages for bad input, scope, optimistic
concurrency, idempotency, the change history, amendments after approval, and guardians' reports."""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

import pytest
from django.utils import timezone

from komu.attendance.models import (
    CalendarDay,
    ClassClosure,
    DailyRegister,
    GuardianReport,
    Mark,
    MarkChange,
    MarkKind,
    MarkSource,
    MonthlyRegister,
    SaveReceipt,
)
from komu.attendance.services import marks
from komu.attendance.services.marks import MarkConflict, MarkInput
from komu.attendance.tests.entry_helpers import (  # noqa: F401
    _fast_password_hashing,
    a_saturday,
    a_school_day,
    actor,
    add_pupils,
    set_today,
)
from komu.audit.models import AuditEvent
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.testing.world import World

pytestmark = pytest.mark.django_db


def _set(world: World, who: str, pupil: str, day: datetime.date, kind: str, **kw: Any) -> Mark | None:
    return marks.mark_set(actor=actor(world, who), student_id=world.students[pupil].pk, date=day, kind=kind, **kw)


@pytest.mark.parametrize(("kind", "extra", "label"), [
    (MarkKind.ABSENT, {"absence_reason": "illness"}, "欠席"),
    (MarkKind.ABSENT, {"absence_reason": "accident"}, "欠席"),
    (MarkKind.ABSENT, {"absence_reason": "other", "detail": "家庭の事情"}, "欠席"),
    (MarkKind.LATE, {}, "遅刻"),
    (MarkKind.EARLY_LEAVE, {}, "早退"),
    (MarkKind.LATE_AND_EARLY, {}, "遅刻・早退"),
    (MarkKind.SUSPENSION, {"suspension_kind": "infectious", "disease": "influenza"}, "出席停止"),
    (MarkKind.SUSPENSION, {"suspension_kind": "conduct"}, "出席停止"),
    (MarkKind.SUSPENSION, {"suspension_kind": "disaster"}, "出席停止"),
    (MarkKind.MOURNING, {"kinship_degree": 1}, "忌引"),
    (MarkKind.OFFICIAL, {}, "公欠"),
])
def test_a_homeroom_teacher_records_every_kind_for_their_class(world: World, kind: str, extra: dict[str, Any],
                                                                label: str) -> None:
    day = a_school_day(world.class_a1)
    mark = _set(world, "homeroom_a1", "a1_first", day, kind, **extra)
    assert mark is not None
    stored = Mark.objects.get(student=world.students["a1_first"], date=day)
    assert stored.kind == kind and stored.get_kind_display() == label
    assert stored.homeroom_class == world.class_a1
    assert stored.updated_by == world.user("homeroom_a1")
    assert stored.version == 1
    assert stored.detail == extra.get("detail", "")
    assert stored.source == MarkSource.TEACHER


def test_setting_a_day_back_to_present_deletes_the_mark_and_keeps_the_history(world: World) -> None:
    day = a_school_day(world.class_a1)
    _set(world, "homeroom_a1", "a1_first", day, MarkKind.ABSENT, absence_reason="illness")
    assert _set(world, "homeroom_a1", "a1_first", day, MarkKind.PRESENT, base_version=1) is None
    assert not Mark.objects.filter(student=world.students["a1_first"], date=day).exists()
    history = list(MarkChange.objects.filter(student=world.students["a1_first"], date=day).order_by("version"))
    assert [(c.old_kind, c.new_kind, c.version) for c in history] == [
        ("present", "absent", 1), ("absent", "present", 2),
    ]
    assert history[0].new_reason == "illness" and history[1].old_reason == "illness"
    assert all(c.changed_by == world.user("homeroom_a1") and c.changed_at for c in history)


def test_changing_one_exception_into_another_records_the_old_value_for_the_struck_through_display(world: World) -> None:
    day = a_school_day(world.class_a1)
    _set(world, "homeroom_a1", "a1_first", day, MarkKind.ABSENT, absence_reason="illness")
    _set(world, "homeroom_a1", "a1_first", day, MarkKind.LATE, base_version=1)
    latest = MarkChange.objects.filter(student=world.students["a1_first"], date=day).order_by("version").last()
    assert latest is not None
    assert (latest.old_kind, latest.old_reason, latest.new_kind, latest.new_reason) == ("absent", "illness", "late", "")


@pytest.mark.parametrize(("kind", "extra", "field", "message"), [
    (MarkKind.ABSENT, {}, "absence_reason", "欠席の理由（病気・事故・その他）を選んでください。"),
    (MarkKind.ABSENT, {"absence_reason": "cold"}, "absence_reason", "欠席の理由（病気・事故・その他）を選んでください。"),
    (MarkKind.LATE, {"absence_reason": "illness"}, "absence_reason", "欠席の理由は「欠席」のときだけ指定できます。"),
    (MarkKind.SUSPENSION, {}, "suspension_kind", "出席停止の事由（感染症・性行不良・非常変災・その他）を選んでください。"),
    (MarkKind.SUSPENSION, {"suspension_kind": "infectious"}, "disease", "感染症による出席停止では、感染症名を選んでください。"),
    (MarkKind.SUSPENSION, {"suspension_kind": "conduct", "disease": "influenza"}, "disease",
     "感染症名は、事由が感染症の出席停止のときだけ指定できます。"),
    (MarkKind.MOURNING, {}, "kinship_degree", "忌引の親等（1親等・2親等・3親等）を選んでください。"),
    (MarkKind.MOURNING, {"kinship_degree": 4}, "kinship_degree", "忌引の親等（1親等・2親等・3親等）を選んでください。"),
    (MarkKind.LATE, {"kinship_degree": 1}, "kinship_degree", "親等は「忌引」のときだけ指定できます。"),
    (MarkKind.PRESENT, {"detail": "元気"}, "detail", "出席には備考を付けられません。備考を消してから保存してください。"),
    (MarkKind.ABSENT, {"absence_reason": "illness", "detail": "熱\x07"}, "detail",
     "備考に制御文字（U+0007）が含まれています。削除してから再度入力してください。"),
    (MarkKind.ABSENT, {"absence_reason": "illness", "detail": "あ" * 201}, "detail",
     "備考が長すぎます（201文字）。200文字以内で入力してください。"),
    ("sick", {}, "kind", "出欠の区分を選んでください（出席・欠席・遅刻・早退・出席停止・忌引・公欠）。"),
])
def test_bad_input_is_refused_with_a_message_that_says_what_to_do(world: World, kind: str, extra: dict[str, Any],
                                                                   field: str, message: str) -> None:
    day = a_school_day(world.class_a1)
    with pytest.raises(ValidationFailed) as exc:
        _set(world, "homeroom_a1", "a1_first", day, kind, **extra)
    assert exc.value.errors[field] == [message]
    assert not Mark.objects.exists() and not MarkChange.objects.exists()


def test_a_day_that_is_not_a_school_day_takes_no_marks(world: World) -> None:
    saturday = a_saturday(world.class_a1)
    with pytest.raises(ValidationFailed, match="授業日ではありません"):
        _set(world, "homeroom_a1", "a1_first", saturday, MarkKind.LATE)


def test_a_class_closure_day_takes_no_marks(world: World) -> None:
    day = a_school_day(world.class_a1)
    ClassClosure.objects.create(homeroom_class=world.class_a1, start_date=day, end_date=day, disease="influenza")
    with pytest.raises(ValidationFailed, match="学級閉鎖の期間です"):
        _set(world, "homeroom_a1", "a1_first", day, MarkKind.LATE)


def test_a_homeroom_teacher_cannot_mark_another_class(world: World) -> None:
    day = a_school_day(world.class_a2)
    with pytest.raises(NotFoundOrNoAccess):
        _set(world, "homeroom_a1", "a2_first", day, MarkKind.LATE)
    assert not Mark.objects.exists()


@pytest.mark.parametrize("who", ["teacher_a", "nurse_a", "board_officer_a", "principal_b", "operator", "guardian_a"])
def test_people_without_the_class_in_their_recording_scope_get_not_found(world: World, who: str) -> None:
    with pytest.raises(NotFoundOrNoAccess):
        _set(world, who, "a1_first", a_school_day(world.class_a1), MarkKind.LATE)


@pytest.mark.parametrize("who", ["principal_a", "vice_principal_a", "school_admin_a"])
def test_the_principal_vice_principal_and_office_record_for_any_class_of_their_school(world: World, who: str) -> None:
    assert _set(world, who, "a2_first", a_school_day(world.class_a2), MarkKind.LATE) is not None


def test_a_malformed_pupil_id_is_not_found(world: World) -> None:
    with pytest.raises(NotFoundOrNoAccess):
        marks.mark_set(actor=actor(world, "homeroom_a1"), student_id="not-a-uuid",
                       date=a_school_day(world.class_a1), kind=MarkKind.LATE)


def test_a_save_based_on_a_stale_version_is_refused_with_the_current_value_and_who_changed_it(world: World) -> None:
    day = a_school_day(world.class_a1)
    _set(world, "homeroom_a1", "a1_first", day, MarkKind.LATE, base_version=0)
    _set(world, "principal_a", "a1_first", day, MarkKind.ABSENT, absence_reason="illness", base_version=1)
    with pytest.raises(MarkConflict) as exc:
        _set(world, "homeroom_a1", "a1_first", day, MarkKind.OFFICIAL, base_version=1)
    conflict = exc.value
    assert conflict.version == 2
    assert conflict.current is not None and conflict.current.kind == MarkKind.ABSENT
    assert conflict.changed_by == world.user("principal_a")
    assert "「欠席」に変更していました。あなたの変更は保存されていません。" in str(conflict)
    assert Mark.objects.get(date=day).kind == MarkKind.ABSENT


def test_a_stale_save_that_asks_for_what_is_stored_is_a_harmless_repeat(world: World) -> None:
    day = a_school_day(world.class_a1)
    _set(world, "homeroom_a1", "a1_first", day, MarkKind.LATE, base_version=0)
    again = _set(world, "homeroom_a1", "a1_first", day, MarkKind.LATE, base_version=0)
    assert again is not None and again.version == 1
    assert MarkChange.objects.count() == 1


def test_a_save_from_before_a_day_was_set_back_to_present_is_still_stale(world: World) -> None:
    day = a_school_day(world.class_a1)
    _set(world, "homeroom_a1", "a1_first", day, MarkKind.LATE, base_version=0)  # v1
    _set(world, "principal_a", "a1_first", day, MarkKind.PRESENT, base_version=1)  # v2, no row
    with pytest.raises(MarkConflict) as exc:
        _set(world, "homeroom_a1", "a1_first", day, MarkKind.OFFICIAL, base_version=1)
    assert exc.value.version == 2 and exc.value.current is None
    latest = _set(world, "homeroom_a1", "a1_first", day, MarkKind.OFFICIAL, base_version=2)
    assert latest is not None and latest.version == 3


def test_a_retried_save_with_the_same_key_is_applied_once(world: World) -> None:
    day = a_school_day(world.class_a1)
    first = _set(world, "homeroom_a1", "a1_first", day, MarkKind.LATE, base_version=0, idempotency_key="k-1")
    # Someone else changes the day; then the lost response's retry arrives, still based on version 0.
    _set(world, "principal_a", "a1_first", day, MarkKind.OFFICIAL, base_version=1)
    retry = _set(world, "homeroom_a1", "a1_first", day, MarkKind.LATE, base_version=0, idempotency_key="k-1")
    assert first is not None and retry is not None
    assert retry.kind == MarkKind.OFFICIAL  # answered with what is stored, not applied again
    assert MarkChange.objects.count() == 2
    receipt = SaveReceipt.objects.get(key="k-1")
    assert receipt.actor == world.user("homeroom_a1") and receipt.response_version == 1


def test_an_idempotency_key_reused_for_another_pupil_is_refused(world: World) -> None:
    day = a_school_day(world.class_a1)
    _set(world, "homeroom_a1", "a1_first", day, MarkKind.LATE, idempotency_key="k-2")
    with pytest.raises(ValidationFailed, match="別の欄で使われています"):
        _set(world, "homeroom_a1", "a1_second", day, MarkKind.LATE, idempotency_key="k-2")


def test_a_malformed_idempotency_key_is_refused(world: World) -> None:
    with pytest.raises(ValidationFailed, match="保存の識別子が正しくありません"):
        _set(world, "homeroom_a1", "a1_first", a_school_day(world.class_a1), MarkKind.LATE, idempotency_key="鍵")


def test_every_change_is_audited_against_the_pupil(world: World) -> None:
    day = a_school_day(world.class_a1)
    _set(world, "homeroom_a1", "a1_first", day, MarkKind.ABSENT, absence_reason="illness")
    event = AuditEvent.objects.get(action="attendance.mark.set")
    assert event.object_type == "students.student" and event.object_id == str(world.students["a1_first"].pk)
    assert event.actor_id == str(world.user("homeroom_a1").pk)
    assert event.school_id == world.school_a.pk
    assert event.detail["old"] == "present" and event.detail["new"] == "absent"
    assert event.detail["date"] == day.isoformat() and event.detail["amendment"] is False
    assert "髙橋" not in str(event.detail)


def _approve_month(world: World, day: datetime.date, status: str = MonthlyRegister.Status.APPROVED) -> MonthlyRegister:
    return MonthlyRegister.objects.create(homeroom_class=world.class_a1, year=day.year, month=day.month, status=status)


def test_a_change_in_an_approved_month_needs_a_reason(world: World) -> None:
    day = a_school_day(world.class_a1)
    _approve_month(world, day)
    with pytest.raises(ValidationFailed) as exc:
        _set(world, "homeroom_a1", "a1_first", day, MarkKind.LATE)
    assert exc.value.errors["amendment_reason"] == [
        "この月の出席簿は決裁中または承認済みです。訂正するには訂正理由を入力してください。"
    ]


def test_an_amendment_is_recorded_as_such_and_sends_the_register_back_for_approval(world: World) -> None:
    day = a_school_day(world.class_a1)
    register = _approve_month(world, day)
    mark = _set(world, "homeroom_a1", "a1_first", day, MarkKind.LATE, amendment_reason="遅刻の記入漏れ")
    assert mark is not None and mark.source == MarkSource.AMENDMENT
    change = MarkChange.objects.get()
    assert change.is_amendment and change.amendment_reason == "遅刻の記入漏れ"
    assert AuditEvent.objects.get(action="attendance.mark.set").detail["amendment"] is True
    register.refresh_from_db()
    assert register.status == MonthlyRegister.Status.AMENDED


def test_a_locked_month_cannot_be_changed_even_with_a_reason(world: World) -> None:
    day = a_school_day(world.class_a1)
    _approve_month(world, day, MonthlyRegister.Status.LOCKED)
    with pytest.raises(ValidationFailed, match="年度末に確定したため、変更できません"):
        _set(world, "principal_a", "a1_first", day, MarkKind.LATE, amendment_reason="訂正")


# --- Guardians --------------------------------------------------------------------------------------------------

def _report(world: World, pupil: str, day: datetime.date, kind: str = "absent", guardian: str = "guardian_a",
            reason_category: str = "illness") -> GuardianReport:
    user = world.user(guardian)
    return GuardianReport.objects.create(
        student=world.students[pupil], guardian_user=user, login_id=user.username, date=day, kind=kind,
        reason_code="fever", reason_category=reason_category, symptoms="発熱", submitted_at=timezone.now(),
        content_hash=hashlib.sha256(b"report").hexdigest(),
    )


def test_a_guardian_records_their_own_childs_absence_through_their_report(world: World) -> None:
    day = a_school_day(world.class_a1)
    report = _report(world, "a1_first", day)
    mark = _set(world, "guardian_a", "a1_first", day, MarkKind.ABSENT, absence_reason="illness",
                source=MarkSource.GUARDIAN, guardian_report=report)
    assert mark is not None and mark.source == MarkSource.GUARDIAN and mark.guardian_report == report
    assert mark.updated_by == world.user("guardian_a")


def test_a_guardians_report_never_overwrites_what_the_school_entered(world: World) -> None:
    day = a_school_day(world.class_a1)
    _set(world, "homeroom_a1", "a1_first", day, MarkKind.OFFICIAL)
    report = _report(world, "a1_first", day)
    with pytest.raises(MarkConflict, match="学校が既にこの日の出欠を記録しています"):
        _set(world, "guardian_a", "a1_first", day, MarkKind.ABSENT, absence_reason="illness",
             source=MarkSource.GUARDIAN, guardian_report=report)
    assert Mark.objects.get().kind == MarkKind.OFFICIAL


def test_a_guardian_cannot_record_other_kinds_or_other_children(world: World) -> None:
    day = a_school_day(world.class_a1)
    report = _report(world, "a1_first", day)
    with pytest.raises(PermissionDeniedError):
        _set(world, "guardian_a", "a1_first", day, MarkKind.OFFICIAL, source=MarkSource.GUARDIAN,
             guardian_report=report)
    with pytest.raises(NotFoundOrNoAccess):
        _set(world, "guardian_a", "a1_first", day, MarkKind.LATE)  # not through a report
    other = _report(world, "b1_first", a_school_day(world.class_b1), guardian="guardian_b")
    with pytest.raises(NotFoundOrNoAccess):
        _set(world, "guardian_a", "b1_first", other.date, MarkKind.ABSENT, absence_reason="illness",
             source=MarkSource.GUARDIAN, guardian_report=other)


def test_a_guardian_cannot_write_into_a_month_in_approval(world: World) -> None:
    day = a_school_day(world.class_a1)
    _approve_month(world, day, MonthlyRegister.Status.SUBMITTED)
    report = _report(world, "a1_first", day)
    with pytest.raises(ValidationFailed, match="締め切られています"):
        _set(world, "guardian_a", "a1_first", day, MarkKind.ABSENT, absence_reason="illness",
             source=MarkSource.GUARDIAN, guardian_report=report, amendment_reason="x")


# --- A whole class's day -----------------------------------------------------------------------------------------

def test_a_class_save_writes_the_rows_reports_conflicts_and_audits_once(world: World) -> None:
    day = a_school_day(world.class_a1)
    first, second = world.students["a1_first"], world.students["a1_second"]
    _set(world, "principal_a", "a1_second", day, MarkKind.OFFICIAL, base_version=0)
    result = marks.register_save(
        actor=actor(world, "homeroom_a1"), class_id=world.class_a1.pk, date=day,
        rows={first.pk: (MarkInput(MarkKind.ABSENT, absence_reason="illness"), 0),
              second.pk: (MarkInput(MarkKind.LATE), 0)},
    )
    assert result.saved == [first.pk]
    assert [c.student_id for c in result.conflicts] == [second.pk]
    assert Mark.objects.get(student=second, date=day).kind == MarkKind.OFFICIAL
    event = AuditEvent.objects.get(action="attendance.register.saved")
    assert event.detail["students"] == [str(first.pk)]
    assert result.register is None


def test_a_class_save_refuses_pupils_of_another_class(world: World) -> None:
    with pytest.raises(NotFoundOrNoAccess):
        marks.register_save(actor=actor(world, "homeroom_a1"), class_id=world.class_a1.pk,
                            date=a_school_day(world.class_a1),
                            rows={world.students["a2_first"].pk: (MarkInput(MarkKind.LATE), 0)})


def test_a_class_save_with_a_bad_row_saves_nothing_and_names_the_row(world: World) -> None:
    first = world.students["a1_first"]
    with pytest.raises(ValidationFailed) as exc:
        marks.register_save(actor=actor(world, "homeroom_a1"), class_id=world.class_a1.pk,
                            date=a_school_day(world.class_a1),
                            rows={first.pk: (MarkInput(MarkKind.ABSENT), 0)})
    assert exc.value.errors == {str(first.pk): ["欠席の理由（病気・事故・その他）を選んでください。"]}
    assert not Mark.objects.exists()


def test_confirming_the_register_records_who_and_applies_reports_nobody_acted_on(
        world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = a_school_day(world.class_a1)
    set_today(monkeypatch, day)
    report = _report(world, "a1_first", day)
    _report(world, "a1_second", day, kind="late")
    # The teacher saw the second pupil arrive on time and set the day back to 出席: that decision stands.
    _set(world, "homeroom_a1", "a1_second", day, MarkKind.LATE)
    _set(world, "homeroom_a1", "a1_second", day, MarkKind.PRESENT)
    register = marks.register_confirm(actor=actor(world, "homeroom_a1"), class_id=world.class_a1.pk, date=day)
    assert register.entered_by == world.user("homeroom_a1") and register.entered_at
    mark = Mark.objects.get(date=day)
    assert mark.student == world.students["a1_first"] and mark.kind == MarkKind.ABSENT
    assert mark.absence_reason == "illness" and mark.source == MarkSource.GUARDIAN and mark.guardian_report == report
    event = AuditEvent.objects.get(action="attendance.register.confirmed")
    assert event.detail["from_reports"] == 1 and event.detail["first"] is True
    report.refresh_from_db()
    assert report.read_by == world.user("homeroom_a1") and report.read_at is not None
    again = marks.register_confirm(actor=actor(world, "principal_a"), class_id=world.class_a1.pk, date=day)
    assert again.pk == register.pk and again.entered_by == world.user("homeroom_a1")
    assert DailyRegister.objects.count() == 1


def test_a_register_cannot_be_confirmed_before_its_day(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    day = a_school_day(world.class_a1, month=7)
    set_today(monkeypatch, day - datetime.timedelta(days=1))
    with pytest.raises(ValidationFailed, match="まだ来ていない日の出席簿は確定できません"):
        marks.register_confirm(actor=actor(world, "homeroom_a1"), class_id=world.class_a1.pk, date=day)


def test_a_class_save_with_confirm_confirms_only_without_conflicts(
        world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = a_school_day(world.class_a1)
    set_today(monkeypatch, day)
    first = world.students["a1_first"]
    result = marks.register_save(actor=actor(world, "homeroom_a1"), class_id=world.class_a1.pk, date=day,
                                 rows={first.pk: (MarkInput(MarkKind.LATE), 0)}, confirm=True)
    assert result.register is not None
    stale = marks.register_save(actor=actor(world, "homeroom_a1"), class_id=world.class_a1.pk, date=day,
                                rows={first.pk: (MarkInput(MarkKind.OFFICIAL), 0)}, confirm=True)
    assert stale.conflicts and stale.register is None


def _class_save(world: World, day: datetime.date, kind: str = MarkKind.LATE, **kw: Any) -> marks.RegisterSaveResult:
    return marks.register_save(actor=actor(world, "homeroom_a1"), class_id=world.class_a1.pk, date=day,
                               rows={world.students["a1_first"].pk: (MarkInput(kind), None)}, **kw)


def test_a_class_save_checks_the_day_as_a_single_save_does(world: World) -> None:
    # The class's save reads the calendar, closures and the month's status with the class, in one query: each
    # refusal must still come, with the same message.
    with pytest.raises(ValidationFailed, match="授業日ではありません"):
        _class_save(world, a_saturday(world.class_a1))
    day = a_school_day(world.class_a1)
    CalendarDay.objects.create(school_year=world.class_a1.school_year, date=day, kind=CalendarDay.Kind.HOLIDAY)
    with pytest.raises(ValidationFailed, match="授業日ではありません"):
        _class_save(world, day)
    saturday = a_saturday(world.class_a1)
    CalendarDay.objects.create(school_year=world.class_a1.school_year, date=saturday,
                               kind=CalendarDay.Kind.SCHOOL_DAY)
    assert _class_save(world, saturday).saved == [world.students["a1_first"].pk]
    other = a_school_day(world.class_a1, n=1)
    ClassClosure.objects.create(homeroom_class=world.class_a1, start_date=other, end_date=other,
                                disease="influenza")
    with pytest.raises(ValidationFailed, match="学級閉鎖の期間です"):
        _class_save(world, other)
    with pytest.raises(ValidationFailed, match="期間外です"):
        _class_save(world, world.class_a1.school_year.end_date + datetime.timedelta(days=1))
    assert not Mark.objects.filter(date__in=[day, other]).exists()


def test_a_class_save_in_a_month_out_of_the_teachers_hands_is_an_amendment(world: World) -> None:
    day = a_school_day(world.class_a1)
    MonthlyRegister.objects.create(homeroom_class=world.class_a1, year=day.year, month=day.month,
                                   status=MonthlyRegister.Status.APPROVED)
    with pytest.raises(ValidationFailed, match="訂正理由を入力してください"):
        _class_save(world, day)
    result = _class_save(world, day, amendment_reason="記入漏れ")
    assert result.saved == [world.students["a1_first"].pk]
    change = MarkChange.objects.get(date=day)
    assert change.is_amendment and change.amendment_reason == "記入漏れ"
    assert Mark.objects.get(date=day).source == MarkSource.AMENDMENT
    MonthlyRegister.objects.filter(homeroom_class=world.class_a1).update(status=MonthlyRegister.Status.LOCKED)
    with pytest.raises(ValidationFailed, match="年度末に確定したため"):
        _class_save(world, day, kind=MarkKind.OFFICIAL, amendment_reason="記入漏れ")


def test_a_class_save_of_an_inactive_pupil_is_refused(world: World) -> None:
    pupil = world.students["a1_first"]
    type(pupil).objects.filter(pk=pupil.pk).update(is_active=False)
    with pytest.raises(NotFoundOrNoAccess):
        _class_save(world, a_school_day(world.class_a1))


def test_a_class_save_with_confirm_applies_the_reports_and_marks_a_matching_row_as_the_guardians(
        world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = a_school_day(world.class_a1)
    set_today(monkeypatch, day)
    first, second = world.students["a1_first"], world.students["a1_second"]
    first_report = _report(world, "a1_first", day)
    second_report = _report(world, "a1_second", day, kind="late")
    # The screen posts the first pupil's prefilled report as it stands; the second is left to the confirmation.
    result = marks.register_save(
        actor=actor(world, "homeroom_a1"), class_id=world.class_a1.pk, date=day,
        rows={first.pk: (MarkInput(MarkKind.ABSENT, absence_reason="illness"), 0)}, confirm=True,
    )
    assert result.saved == [first.pk] and result.register is not None
    assert result.register.entered_by == world.user("homeroom_a1")
    by_pupil = {m.student_id: m for m in Mark.objects.filter(date=day)}
    assert by_pupil[first.pk].source == MarkSource.GUARDIAN and by_pupil[first.pk].guardian_report == first_report
    assert by_pupil[second.pk].kind == MarkKind.LATE and by_pupil[second.pk].guardian_report == second_report
    event = AuditEvent.objects.get(action="attendance.register.confirmed")
    assert event.detail["from_reports"] == 1
    first_report.refresh_from_db()
    assert first_report.read_at is not None


def test_confirming_again_with_a_class_save_keeps_the_first_entry(
        world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = a_school_day(world.class_a1)
    set_today(monkeypatch, day)
    first = world.students["a1_first"]
    teacher = world.user("homeroom_a1")
    done = marks.register_save(actor=actor(world, "homeroom_a1"), class_id=world.class_a1.pk, date=day,
                               rows={first.pk: (MarkInput(MarkKind.LATE), None)}, confirm=True)
    assert done.register is not None and done.register.entered_by == teacher
    for who in ("homeroom_a1", "principal_a"):
        again = marks.register_save(actor=actor(world, who), class_id=world.class_a1.pk, date=day,
                                    rows={first.pk: (MarkInput(MarkKind.OFFICIAL), None)}, confirm=True)
        # The register read with the class is the stored one: the first entry's who and when, every field there.
        assert again.register is not None and again.register.pk == done.register.pk
        assert again.register.entered_by == teacher and again.register.entered_at == done.register.entered_at
        assert again.register.created_at == DailyRegister.objects.get().created_at
    assert DailyRegister.objects.count() == 1
    assert AuditEvent.objects.filter(action="attendance.register.confirmed").count() == 1


# Issue 4's budget for a whole class's save (PostgreSQL's count; SQLite makes one fewer, without the audit chain's
# advisory lock): constant in the number of pupils.
REGISTER_SAVE_MAX_QUERIES = 9


def test_a_whole_class_save_makes_a_constant_number_of_queries(world: World,
                                                                django_assert_max_num_queries: Any) -> None:
    day = a_school_day(world.class_a1)
    pupils = [world.students["a1_first"].pk, world.students["a1_second"].pk,
              *(p.pk for p in add_pupils(world.class_a1, 33))]
    teacher = actor(world, "homeroom_a1")
    marks.register_save(actor=teacher, class_id=world.class_a1.pk, date=day,
                        rows={sid: (MarkInput(MarkKind.LATE), None) for sid in pupils})
    with django_assert_max_num_queries(REGISTER_SAVE_MAX_QUERIES):
        result = marks.register_save(
            actor=teacher, class_id=world.class_a1.pk, date=day,
            rows={sid: (MarkInput(MarkKind.ABSENT, absence_reason="illness"), 1) for sid in pupils},
        )
    assert sorted(result.saved) == sorted(pupils) and not result.conflicts
    # Every guarantee is still there: 35 history rows of this save, one audit event listing them.
    assert MarkChange.objects.filter(date=day, version=2, new_kind=MarkKind.ABSENT).count() == 35
    event = AuditEvent.objects.filter(action="attendance.register.saved").latest("id")
    assert len(event.detail["students"]) == 35


def test_the_marks_of_a_save_are_locked_without_locking_the_class_or_school(world: World) -> None:
    # Mark's default ordering joins class, school year and school; FOR UPDATE over that join would lock the
    # school's row, and every class of the school would save one after another.
    sql = str(marks._locked_marks([world.students["a1_first"].pk], a_school_day(world.class_a1)).query)
    assert "directory_" not in sql
