"""Guardian absence reports, read as sentences: who may report for whom, the daily cut-off, the proof of intent
(login id, time, address, content hash), encryption at rest, the register, withdrawal, read receipts, audit
events, and reports taken by phone.

Time is frozen with unittest.mock on django.utils.timezone.now (every clock in Komu reads it), at a school day of
the world's school year, in Japan time.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from django.db import connection
from django.utils import timezone

from komu.access.scope import Actor, forget_actor, get_actor
from komu.attendance import calendar
from komu.attendance.models import AbsenceReason, GuardianReport, Mark, MarkKind, MarkSource
from komu.attendance.selectors import reports as selectors
from komu.attendance.services import reports as services
from komu.attendance.services.marks import mark_set
from komu.audit import context as audit_context
from komu.audit.models import AuditEvent
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.directory.models import Role, StaffAssignment
from komu.students.models import GuardianLink
from komu.testing.world import World, make_user

pytestmark = pytest.mark.django_db

JST = selectors.SCHOOL_TZ


# --- helpers shared with test_guardian_views.py ---------------------------------------------------------------


def school_days(world: World, count: int = 3) -> list[datetime.date]:
    """`count` consecutive 授業日 of the world's school year, starting at or after today when the year allows."""
    year = world.class_a1.school_year
    days = calendar.school_days(year, year.start_date, year.end_date)
    today = timezone.localdate()
    later = [d for d in days if d >= today]
    start = days.index(later[0]) if len(later) >= count else 0
    return days[start:start + count]


def at(day: datetime.date, hour: int, minute: int = 0) -> datetime.datetime:
    return datetime.datetime(day.year, day.month, day.day, hour, minute, tzinfo=JST)


@contextlib.contextmanager
def frozen(moment: datetime.datetime) -> Iterator[None]:
    with mock.patch("django.utils.timezone.now", return_value=moment.astimezone(datetime.UTC)):
        yield


@contextlib.contextmanager
def from_address(ip: str) -> Iterator[None]:
    token = audit_context.begin(audit_context.RequestContext(request_id="test-request-0001", client_ip=ip))
    try:
        yield
    finally:
        audit_context.end(token)


def add_sibling(world: World) -> None:
    """guardian_a is also a1_second's parent: two children in class a1."""
    GuardianLink.objects.create(guardian=world.guardians["guardian_a"], student=world.students["a1_second"],
                                relationship="母")
    forget_actor(world.user("guardian_a"))


def actor(world: World, name: str) -> Actor:
    user = world.user(name)
    forget_actor(user)
    return get_actor(user)


def fever(world: World, day: datetime.date, *children: str, note: str = "熱が38度あります。") -> services.ReportInput:
    return services.ReportInput(
        student_ids=[world.students[c].pk for c in (children or ("a1_first",))], date=day,
        kind=GuardianReport.Kind.ABSENT, reason_code="fever", symptom_codes=["cough", "fever"], note=note,
    )


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


# --- who may report for whom ---------------------------------------------------------------------------------


def test_guardian_reports_for_their_own_child_with_proof_of_intent(world: World) -> None:
    day = school_days(world)[0]
    moment = at(day, 7, 40)
    with frozen(moment), from_address("203.0.113.7"):
        [report] = services.guardian_report_submit(actor=actor(world, "guardian_a"), data=fever(world, day))
    report.refresh_from_db()
    assert report.student == world.students["a1_first"]
    assert report.guardian_user == world.user("guardian_a")
    assert report.login_id == "guardian_a"
    assert report.submitted_at == moment
    assert report.client_ip == "203.0.113.7"
    assert report.reason_category == AbsenceReason.ILLNESS
    # The hash covers the canonical content and is recomputed identically from the stored row.
    assert report.content_hash == hashlib.sha256(selectors.canonical_content(report)).hexdigest()
    assert len(report.content_hash) == 64
    canonical = selectors.canonical_content(report).decode()
    for part in ('"login_id":"guardian_a"', '"note":"熱が38度あります。"', '"kind":"absent"', '"発熱"',
                 moment.astimezone(datetime.UTC).isoformat(timespec="microseconds")):
        assert part in canonical


def test_the_content_hash_is_stable_and_changes_with_any_part_of_the_content(world: World) -> None:
    day = school_days(world)[0]
    with frozen(at(day, 7, 0)):
        [report] = services.guardian_report_submit(actor=actor(world, "guardian_a"), data=fever(world, day))
    stored = GuardianReport.objects.get(pk=report.pk)
    assert selectors.content_hash(stored) == report.content_hash == selectors.content_hash(stored)
    # Ticking the symptoms in another order gives the same content (the school's order is kept).
    assert [s["code"] for s in selectors.parse_symptoms(stored.symptoms)] == ["fever", "cough"]
    for name, value in [("note", "熱が37度あります。"), ("login_id", "someone_else"), ("kind", "late"),
                        ("reason_code", "cold")]:
        changed = GuardianReport.objects.get(pk=report.pk)
        setattr(changed, name, value)
        assert selectors.content_hash(changed) != report.content_hash, name


def test_guardian_cannot_report_for_a_child_who_is_not_theirs(world: World) -> None:
    day = school_days(world)[0]
    guardian = actor(world, "guardian_a")
    with frozen(at(day, 7, 0)):
        for other in ("a1_second", "a2_first", "b1_first"):
            with pytest.raises(NotFoundOrNoAccess):
                services.guardian_report_submit(actor=guardian, data=fever(world, day, other))
        # Smuggling another child in beside one's own fails the whole submission.
        with pytest.raises(NotFoundOrNoAccess):
            services.guardian_report_submit(actor=guardian, data=fever(world, day, "a1_first", "b1_first"))
        with pytest.raises(NotFoundOrNoAccess):
            services.guardian_report_check(actor=guardian, data=services.ReportInput(
                student_ids=["not-a-uuid"], date=day, kind="absent", reason_code="fever"))
    assert not GuardianReport.objects.exists()


def test_staff_cannot_send_a_guardian_report(world: World) -> None:
    day = school_days(world)[0]
    with frozen(at(day, 7, 0)), pytest.raises(PermissionDeniedError):
        services.guardian_report_submit(actor=actor(world, "homeroom_a1"), data=fever(world, day))


def test_siblings_are_reported_in_one_submission(world: World) -> None:
    add_sibling(world)
    day = school_days(world)[0]
    with frozen(at(day, 7, 30)):
        reports = services.guardian_report_submit(
            actor=actor(world, "guardian_a"), data=fever(world, day, "a1_first", "a1_second"))
    assert {r.student for r in reports} == {world.students["a1_first"], world.students["a1_second"]}
    assert len({r.content_hash for r in reports}) == 2  # each row is sealed on its own
    assert len({r.submitted_at for r in reports}) == 1
    assert len(events("attendance.guardian_report.submitted")) == 2
    assert Mark.objects.filter(date=day, source=MarkSource.GUARDIAN).count() == 2


def test_children_at_two_schools_are_sent_school_by_school(world: World) -> None:
    from komu.directory.models import HomeroomClass
    from komu.students.models import ClassMembership, Student

    junior_class = HomeroomClass.objects.get(school_year__school=world.school_a2)
    brother = Student(school=world.school_a2, family_name="髙橋", given_name="一郎", family_name_kana="タカハシ",
                      given_name_kana="イチロウ", birth_date=datetime.date(2013, 5, 1))
    brother.save()
    ClassMembership.objects.create(student=brother, homeroom_class=junior_class, shusseki_no=1)
    GuardianLink.objects.create(guardian=world.guardians["guardian_a"], student=brother, relationship="母")
    guardian = actor(world, "guardian_a")
    day = school_days(world)[0]
    with frozen(at(day, 7, 0)):
        options = selectors.guardian_report_options(actor=guardian)
        assert [o.school for o in options] == [world.school_a, world.school_a2]
        data = fever(world, day)
        data.student_ids = [world.students["a1_first"].pk, brother.pk]
        with pytest.raises(ValidationFailed) as failure:
            services.guardian_report_submit(actor=guardian, data=data)
    assert "学校ごと" in failure.value.errors["student_ids"][0]


# --- the cut-off ------------------------------------------------------------------------------------------------


def test_today_can_be_reported_until_the_cutoff_and_not_after(world: World) -> None:
    day, tomorrow = school_days(world, 2)
    guardian = actor(world, "guardian_a")
    with frozen(at(day, 7, 59)):
        services.guardian_report_check(actor=guardian, data=fever(world, day))
    with frozen(at(day, 8, 0)):
        with pytest.raises(ValidationFailed) as failure:
            services.guardian_report_submit(actor=guardian, data=fever(world, day))
        message = failure.value.errors["date"][0]
        assert "8:00" in message and "電話" in message
        # A coming school day is still open.
        [report] = services.guardian_report_submit(actor=guardian, data=fever(world, tomorrow))
        assert report.date == tomorrow
        options = selectors.guardian_report_options(actor=guardian)[0]
        assert options.today_closed
        assert day not in [d.date for d in options.days] and tomorrow in [d.date for d in options.days]


def test_the_cutoff_is_the_schools_own_time_in_japan(world: World) -> None:
    rules = calendar.rules_for(world.school_a)
    rules.report_cutoff = datetime.time(8, 30)
    rules.save()
    day = school_days(world)[0]
    # 23:15 UTC the day before is 8:15 in Tokyo: still open under a cut-off of 8:30.
    with frozen(at(day, 8, 15)):
        services.guardian_report_submit(actor=actor(world, "guardian_a"), data=fever(world, day))
    with frozen(at(day, 8, 30)), pytest.raises(ValidationFailed):
        services.guardian_report_check(actor=actor(world, "guardian_a"),
                                       data=fever(world, day, note="もう一度"))


def test_past_days_holidays_and_far_days_cannot_be_reported(world: World) -> None:
    day = school_days(world)[0]
    guardian = actor(world, "guardian_a")
    saturday = day + datetime.timedelta(days=(5 - day.weekday()) % 7)
    with frozen(at(day, 7, 0)):
        for bad, words in [(day - datetime.timedelta(days=1), "過ぎた日"), (saturday, "授業日ではありません"),
                           (day + datetime.timedelta(days=selectors.DAYS_AHEAD + 1), "先まで")]:
            with pytest.raises(ValidationFailed) as failure:
                services.guardian_report_check(actor=guardian, data=fever(world, bad))
            assert words in failure.value.errors["date"][0]


def test_a_second_report_for_the_same_child_and_day_is_refused_until_the_first_is_withdrawn(world: World) -> None:
    day = school_days(world)[0]
    guardian = actor(world, "guardian_a")
    with frozen(at(day, 7, 0)):
        [first] = services.guardian_report_submit(actor=guardian, data=fever(world, day))
        with pytest.raises(ValidationFailed) as failure:
            services.guardian_report_submit(actor=guardian, data=fever(world, day))
        assert selectors.receipt_number(first.pk) in failure.value.errors["student_ids"][0]
        services.guardian_report_withdraw(actor=guardian, report_id=first.pk)
        services.guardian_report_submit(actor=guardian, data=fever(world, day))


def test_bad_reasons_symptoms_and_notes_are_refused_with_what_to_do(world: World) -> None:
    day = school_days(world)[0]
    guardian = actor(world, "guardian_a")
    data = fever(world, day, note="あ" * (services.NOTE_MAX + 1))
    data.reason_code = "invented"
    data.symptom_codes = ["fever", "invented"]
    with frozen(at(day, 7, 0)), pytest.raises(ValidationFailed) as failure:
        services.guardian_report_check(actor=guardian, data=data)
    errors = failure.value.errors
    assert errors["reason_code"] == ["理由を選んでください。"]
    assert errors["symptom_codes"] == ["症状は一覧から選んでください。"]
    assert f"{services.NOTE_MAX}文字以内" in errors["note"][0]
    with frozen(at(day, 7, 0)), pytest.raises(ValidationFailed) as failure:
        services.guardian_report_check(actor=guardian, data=fever(world, day, note="熱\x00あり"))
    assert "制御文字" in failure.value.errors["note"][0]


def test_a_time_is_kept_for_late_and_early_leave_only(world: World) -> None:
    day, tomorrow = school_days(world, 2)
    guardian = actor(world, "guardian_a")
    late = services.ReportInput(student_ids=[world.students["a1_first"].pk], date=day, kind="late",
                                reason_code="hospital", expected_time=datetime.time(10, 30))
    absent = fever(world, tomorrow)
    absent.expected_time = datetime.time(9, 0)
    with frozen(at(day, 7, 0)):
        [late_report] = services.guardian_report_submit(actor=guardian, data=late)
        [absent_report] = services.guardian_report_submit(actor=guardian, data=absent)
    assert late_report.expected_time == datetime.time(10, 30)
    assert absent_report.expected_time is None
    mark = Mark.objects.get(guardian_report=late_report)
    assert mark.kind == MarkKind.LATE and "10:30 登校予定" in mark.detail


# --- encryption at rest -----------------------------------------------------------------------------------------


def test_symptoms_and_note_are_encrypted_at_rest(world: World) -> None:
    day = school_days(world)[0]
    with frozen(at(day, 7, 0)):
        [report] = services.guardian_report_submit(actor=actor(world, "guardian_a"),
                                                   data=fever(world, day, note="昨夜から嘔吐しています。"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT symptoms, note FROM attendance_guardianreport WHERE id = %s", [report.pk.hex])
        row = cursor.fetchone()
        if row is None:  # PostgreSQL stores the UUID natively
            cursor.execute("SELECT symptoms, note FROM attendance_guardianreport WHERE id = %s", [str(report.pk)])
            row = cursor.fetchone()
    symptoms, note = row
    assert symptoms and note
    for plain in ("発熱", "fever", "嘔吐"):
        assert plain not in symptoms and plain not in note
    stored = GuardianReport.objects.get(pk=report.pk)
    assert stored.note == "昨夜から嘔吐しています。"
    assert [s["label"] for s in selectors.parse_symptoms(stored.symptoms)] == ["発熱", "せき"]
    # The audit trail names the fields, never their content.
    [event] = events("attendance.guardian_report.submitted")
    assert sorted(event.fields) == ["note", "symptoms"]
    assert "嘔吐" not in str(event.detail) and "発熱" not in str(event.detail)
    assert event.detail["content_hash"] == report.content_hash and event.detail["login_id"] == "guardian_a"


# --- the register -----------------------------------------------------------------------------------------------


def test_a_report_goes_into_the_register_at_once_marked_as_from_the_guardian(world: World) -> None:
    day = school_days(world)[0]
    with frozen(at(day, 7, 40)):
        [report] = services.guardian_report_submit(actor=actor(world, "guardian_a"), data=fever(world, day))
    mark = Mark.objects.get(student=world.students["a1_first"], date=day)
    assert (mark.kind, mark.absence_reason, mark.source) == (MarkKind.ABSENT, AbsenceReason.ILLNESS,
                                                             MarkSource.GUARDIAN)
    assert mark.guardian_report == report
    assert mark.detail == "発熱／発熱・せき"
    assert len(events("attendance.mark.set")) == 1


def test_a_report_never_overwrites_what_the_teacher_entered_but_waits_to_be_applied(world: World) -> None:
    day = school_days(world)[0]
    teacher = actor(world, "homeroom_a1")
    pupil = world.students["a1_first"]
    with frozen(at(day, 7, 0)):
        mark_set(actor=teacher, student_id=pupil.pk, date=day, kind=MarkKind.LATE)
        [report] = services.guardian_report_submit(actor=actor(world, "guardian_a"), data=fever(world, day))
        assert Mark.objects.get(student=pupil, date=day).source == MarkSource.TEACHER
        listed = selectors.class_report_list(actor=teacher, class_id=world.class_a1.pk, day=day)
        assert [r.in_register for r in listed.rows] == [False]
        services.guardian_report_apply(actor=teacher, report_id=report.pk)
    mark = Mark.objects.get(student=pupil, date=day)
    assert (mark.kind, mark.source, mark.guardian_report_id) == (MarkKind.ABSENT, MarkSource.GUARDIAN, report.pk)
    report.refresh_from_db()
    assert report.read_by == world.user("homeroom_a1")  # applying is reading


# --- withdrawal -------------------------------------------------------------------------------------------------


def test_a_guardian_withdraws_before_the_cutoff_and_the_mark_goes_with_it(world: World) -> None:
    day = school_days(world)[0]
    guardian = actor(world, "guardian_a")
    with frozen(at(day, 7, 0)):
        [report] = services.guardian_report_submit(actor=guardian, data=fever(world, day))
    with frozen(at(day, 7, 50)):
        services.guardian_report_withdraw(actor=guardian, report_id=report.pk)
        with pytest.raises(ValidationFailed):
            services.guardian_report_withdraw(actor=guardian, report_id=report.pk)
    report.refresh_from_db()
    assert report.withdrawn_at == at(day, 7, 50)
    assert not Mark.objects.filter(student=world.students["a1_first"], date=day).exists()
    [event] = events("attendance.guardian_report.withdrawn")
    assert event.object_id == str(report.pk)
    # The hash still verifies: withdrawal is recorded beside the content, not in it.
    assert selectors.content_hash(report) == report.content_hash


def test_a_report_cannot_be_withdrawn_after_the_cutoff(world: World) -> None:
    day = school_days(world)[0]
    guardian = actor(world, "guardian_a")
    with frozen(at(day, 7, 0)):
        [report] = services.guardian_report_submit(actor=guardian, data=fever(world, day))
    with frozen(at(day, 8, 1)):
        with pytest.raises(ValidationFailed) as failure:
            services.guardian_report_withdraw(actor=guardian, report_id=report.pk)
        assert "電話" in str(failure.value)
        [row] = selectors.guardian_report_history(actor=guardian)
        assert not row.can_withdraw
    report.refresh_from_db()
    assert report.withdrawn_at is None
    assert Mark.objects.filter(student=world.students["a1_first"], date=day).exists()


def test_only_the_sender_may_withdraw_and_strangers_get_not_found(world: World) -> None:
    from komu.students.models import Guardian

    day = school_days(world)[0]
    father_user = make_user("guardian_a_father", kind="guardian")
    father = Guardian(user=father_user, family_name="髙橋", given_name="誠")
    father.save()
    GuardianLink.objects.create(guardian=father, student=world.students["a1_first"], relationship="父")
    with frozen(at(day, 7, 0)):
        [report] = services.guardian_report_submit(actor=actor(world, "guardian_a"), data=fever(world, day))
        father_actor = get_actor(father_user)
        [row] = selectors.guardian_report_history(actor=father_actor)  # he sees it …
        assert not row.sent_by_me and not row.can_withdraw
        for someone in (father_actor, actor(world, "guardian_b")):  # … but cannot take it back
            with pytest.raises(NotFoundOrNoAccess):
                services.guardian_report_withdraw(actor=someone, report_id=report.pk)


# --- the teacher's side -----------------------------------------------------------------------------------------


def test_the_homeroom_teacher_sees_the_report_and_the_read_receipt_reaches_the_guardian(world: World) -> None:
    day = school_days(world)[0]
    guardian = actor(world, "guardian_a")
    teacher = actor(world, "homeroom_a1")
    with frozen(at(day, 7, 40)):
        [report] = services.guardian_report_submit(actor=guardian, data=fever(world, day))
        assert selectors.guardian_report_history(actor=guardian)[0].status == selectors.ReportStatus.SENT
    with frozen(at(day, 8, 5)):
        listed = selectors.class_report_list(actor=teacher, class_id=world.class_a1.pk, day=day)
        [row] = listed.rows
        assert (row.family_name, row.given_name, row.shusseki_no) == ("髙橋", "𠮷乃", 1)
        assert row.symptoms == ["発熱", "せき"] and row.note == "熱が38度あります。"
        assert listed.unread == 1 and listed.can_acknowledge
        services.guardian_report_acknowledge(actor=teacher, report_ids=[report.pk])
        services.guardian_report_acknowledge(actor=teacher, report_ids=[report.pk])  # twice: first reader kept
    [history] = selectors.guardian_report_history(actor=guardian)
    assert history.status == selectors.ReportStatus.READ
    assert history.read_at == at(day, 8, 5)
    [viewed] = events("attendance.guardian_report.viewed")
    assert viewed.detail["report_ids"] == [str(report.pk)]
    assert sorted(viewed.fields) == ["note", "symptoms"]
    [read] = events("attendance.guardian_report.read")
    assert read.actor_username == "homeroom_a1" and read.object_id == str(report.pk)


def test_other_classes_and_schools_cannot_see_or_acknowledge_the_report(world: World) -> None:
    day = school_days(world)[0]
    other_teacher = make_user("homeroom_a2")
    StaffAssignment.objects.create(user=other_teacher, role=Role.HOMEROOM_TEACHER, school=world.school_a,
                                   homeroom_class=world.class_a2)
    with frozen(at(day, 7, 0)):
        [report] = services.guardian_report_submit(actor=actor(world, "guardian_a"), data=fever(world, day))
        for someone in (get_actor(other_teacher), actor(world, "principal_b"), actor(world, "teacher_a")):
            with pytest.raises(NotFoundOrNoAccess):
                selectors.class_report_list(actor=someone, class_id=world.class_a1.pk, day=day)
            with pytest.raises(NotFoundOrNoAccess):
                selectors.report_get_for(actor=someone, report_id=report.pk)
            with pytest.raises(NotFoundOrNoAccess):
                services.guardian_report_acknowledge(actor=someone, report_ids=[report.pk])
    assert GuardianReport.objects.get(pk=report.pk).read_at is None


def test_the_school_office_sees_who_is_absent_but_not_their_symptoms(world: World) -> None:
    day = school_days(world)[0]
    with frozen(at(day, 7, 0)):
        services.guardian_report_submit(actor=actor(world, "guardian_a"), data=fever(world, day))
        listed = selectors.class_report_list(actor=actor(world, "school_admin_a"), class_id=world.class_a1.pk,
                                             day=day)
    [row] = listed.rows
    assert row.kind_label == "欠席" and row.symptoms is None and row.note is None
    assert not listed.shows_health
    assert not events("attendance.guardian_report.viewed")  # nothing sensitive was read


def test_the_nurse_reads_reports_but_does_not_acknowledge_them(world: World) -> None:
    day = school_days(world)[0]
    with frozen(at(day, 7, 0)):
        [report] = services.guardian_report_submit(actor=actor(world, "guardian_a"), data=fever(world, day))
        nurse = actor(world, "nurse_a")
        listed = selectors.class_report_list(actor=nurse, class_id=world.class_a1.pk, day=day)
        assert listed.rows[0].symptoms == ["発熱", "せき"] and not listed.can_acknowledge
        with pytest.raises(PermissionDeniedError):
            services.guardian_report_acknowledge(actor=nurse, report_ids=[report.pk])


def test_the_proof_of_intent_verifies_and_shows_tampering(world: World) -> None:
    day = school_days(world)[0]
    with frozen(at(day, 7, 0)), from_address("2001:db8::1"):
        [report] = services.guardian_report_submit(actor=actor(world, "guardian_a"), data=fever(world, day))
    detail = selectors.report_get_for(actor=actor(world, "principal_a"), report_id=report.pk)
    assert detail.hash_matches and detail.login_id == "guardian_a" and detail.client_ip == "2001:db8::1"
    assert detail.guardian_relationship == "母"
    GuardianReport.objects.filter(pk=report.pk).update(reason_code="cold")
    assert not selectors.report_get_for(actor=actor(world, "principal_a"), report_id=report.pk).hash_matches


# --- phone reports ----------------------------------------------------------------------------------------------


def test_a_teacher_records_a_phone_report_as_a_phone_sourced_mark(world: World) -> None:
    day = school_days(world)[0]
    teacher = actor(world, "homeroom_a1")
    pupil = world.students["a1_second"]
    with frozen(at(day, 8, 20)):
        mark = services.phone_report_record(actor=teacher, data=services.PhoneReportInput(
            student_id=pupil.pk, date=day, kind="absent", reason_category=AbsenceReason.ACCIDENT,
            note="家の用事"))
    assert mark is not None
    assert (mark.kind, mark.absence_reason, mark.source) == (MarkKind.ABSENT, AbsenceReason.ACCIDENT,
                                                             MarkSource.PHONE)
    assert mark.detail == "電話連絡／家の用事"
    [event] = events("attendance.mark.set")
    assert event.detail["source"] == MarkSource.PHONE
    with frozen(at(day, 8, 20)):
        with pytest.raises(ValidationFailed) as failure:
            services.phone_report_record(actor=teacher, data=services.PhoneReportInput(
                student_id=pupil.pk, date=day, kind="absent"))
        assert "病気・事故・その他" in failure.value.errors["reason_category"][0]
        with pytest.raises(NotFoundOrNoAccess):
            services.phone_report_record(actor=teacher, data=services.PhoneReportInput(
                student_id=world.students["a2_first"].pk, date=day, kind="late"))


def test_digital_and_phone_reports_can_be_counted_apart(world: World) -> None:
    day = school_days(world)[0]
    with frozen(at(day, 7, 0)):
        services.guardian_report_submit(actor=actor(world, "guardian_a"), data=fever(world, day))
        services.phone_report_record(actor=actor(world, "homeroom_a1"), data=services.PhoneReportInput(
            student_id=world.students["a1_second"].pk, date=day, kind="late", expected_time=datetime.time(9, 30)))
    counts = {source: Mark.objects.filter(date=day, source=source).count()
              for source in (MarkSource.GUARDIAN, MarkSource.PHONE)}
    assert counts == {MarkSource.GUARDIAN: 1, MarkSource.PHONE: 1}
    assert Mark.objects.get(source=MarkSource.PHONE).detail == "電話連絡／09:30 登校予定"


# --- home page tasks --------------------------------------------------------------------------------------------


def test_home_tasks_tell_the_teacher_how_many_are_unread_and_the_guardian_it_was_received(world: World) -> None:
    add_sibling(world)
    day = school_days(world)[0]
    guardian = actor(world, "guardian_a")
    teacher = actor(world, "homeroom_a1")
    with frozen(at(day, 7, 0)):
        assert selectors.home_tasks(actor=teacher) == []
        assert selectors.home_tasks(actor=guardian) == []
        reports = services.guardian_report_submit(actor=guardian, data=fever(world, day, "a1_first", "a1_second"))
        [task] = selectors.home_tasks(actor=teacher)
        assert "2 件" in task.title and task.urgent and f"class={world.class_a1.pk}" in task.url
        [mine] = selectors.home_tasks(actor=guardian)
        assert mine.title == "本日の連絡は受付済み" and "2 名" in mine.detail
        assert selectors.home_tasks(actor=actor(world, "principal_a")) == []
        services.guardian_report_acknowledge(actor=teacher, report_ids=[r.pk for r in reports])
        assert selectors.home_tasks(actor=teacher) == []


def test_token_changes_only_when_the_list_changes(world: World) -> None:
    day = school_days(world)[0]
    teacher = actor(world, "homeroom_a1")
    args: dict[str, Any] = {"actor": teacher, "class_id": world.class_a1.pk, "day": day}
    with frozen(at(day, 7, 0)):
        empty = selectors.class_reports_token(**args)
        assert selectors.class_reports_token(**args) == empty
        [report] = services.guardian_report_submit(actor=actor(world, "guardian_a"), data=fever(world, day))
        sent = selectors.class_reports_token(**args)
        assert sent != empty
        assert selectors.class_report_list(**args).token == sent
        services.guardian_report_acknowledge(actor=teacher, report_ids=[report.pk])
        assert selectors.class_reports_token(**args) != sent
