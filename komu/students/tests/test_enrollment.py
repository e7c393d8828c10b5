"""Moving a 入学 recorded ahead of time (enrollment_event_redate): only before the pupil starts, within the same
年度, audited old → new, and a no-op when the date is already right."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from komu.access.scope import get_actor
from komu.audit.models import AuditEvent
from komu.core.errors import NotFoundOrNoAccess, ValidationFailed
from komu.students.models import EnrollmentEvent, EnrollmentKind, Student
from komu.students.services.enrollment import enrollment_event_redate
from komu.testing.world import World

pytestmark = pytest.mark.django_db

YEAR = 2027
WINTER = datetime.date(YEAR, 1, 15)  # the roster has been accepted; the 年度 has not begun


@pytest.fixture
def winter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timezone, "localdate", lambda *args, **kwargs: WINTER)


def _planned_admission(world: World, student: Student, day: datetime.date) -> EnrollmentEvent:
    return EnrollmentEvent.objects.create(
        student=student,
        kind=EnrollmentKind.ADMISSION,
        date=day,
        grade_code="P1",
        recorded_by=world.user("school_admin_a"),
    )


def test_a_planned_admission_moves_and_the_move_is_audited_old_to_new(world: World, winter: None) -> None:
    event = _planned_admission(world, world.students["a1_first"], datetime.date(YEAR, 4, 6))
    admin = get_actor(world.user("school_admin_a"))
    moved = enrollment_event_redate(
        actor=admin, event_id=event.pk, date=datetime.date(YEAR, 4, 8), reason="入学予定日の変更"
    )
    event.refresh_from_db()
    assert moved.pk == event.pk and event.date == datetime.date(YEAR, 4, 8)
    audit = AuditEvent.objects.get(action="students.enrollment_event.redated")
    assert audit.detail["old"] == f"{YEAR}-04-06" and audit.detail["new"] == f"{YEAR}-04-08"
    assert audit.detail["event_id"] == str(event.pk)
    # The same date again changes nothing and records nothing.
    enrollment_event_redate(actor=admin, event_id=event.pk, date=datetime.date(YEAR, 4, 8), reason="")
    assert AuditEvent.objects.filter(action="students.enrollment_event.redated").count() == 1


def test_a_started_year_keeps_the_admission_as_it_is(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    event = _planned_admission(world, world.students["a1_first"], datetime.date(YEAR, 4, 6))
    monkeypatch.setattr(timezone, "localdate", lambda *args, **kwargs: datetime.date(YEAR, 4, 2))
    admin = get_actor(world.user("school_admin_a"))
    with pytest.raises(ValidationFailed) as caught:
        enrollment_event_redate(actor=admin, event_id=event.pk, date=datetime.date(YEAR, 4, 8), reason="")
    assert "2027年度はすでに始まっている" in caught.value.errors["date"][0]
    event.refresh_from_db()
    assert event.date == datetime.date(YEAR, 4, 6)
    assert not AuditEvent.objects.filter(action="students.enrollment_event.redated").exists()


def test_a_date_outside_the_year_or_another_kind_is_refused(world: World, winter: None) -> None:
    event = _planned_admission(world, world.students["a1_first"], datetime.date(YEAR, 4, 6))
    admin = get_actor(world.user("school_admin_a"))
    with pytest.raises(ValidationFailed) as caught:
        enrollment_event_redate(actor=admin, event_id=event.pk, date=datetime.date(YEAR + 1, 4, 6), reason="")
    assert "2027年度の中" in caught.value.errors["date"][0]
    transfer = EnrollmentEvent.objects.create(
        student=world.students["a1_first"],
        kind=EnrollmentKind.TRANSFER_IN,
        date=datetime.date(YEAR, 4, 6),
        grade_code="P1",
        other_school_name="他校",
        recorded_by=world.user("school_admin_a"),
    )
    with pytest.raises(ValidationFailed) as caught:
        enrollment_event_redate(actor=admin, event_id=transfer.pk, date=datetime.date(YEAR, 4, 8), reason="")
    assert "「入学」だけ" in str(caught.value)
    transfer.refresh_from_db()
    assert transfer.date == datetime.date(YEAR, 4, 6)
    event.refresh_from_db()
    assert event.date == datetime.date(YEAR, 4, 6)


def test_another_schools_pupil_is_not_found(world: World, winter: None) -> None:
    event = _planned_admission(world, world.students["b1_first"], datetime.date(YEAR, 4, 6))
    for name in ("school_admin_a", "teacher_b"):
        with pytest.raises(NotFoundOrNoAccess):
            enrollment_event_redate(
                actor=get_actor(world.user(name)),
                event_id=event.pk,
                date=datetime.date(YEAR, 4, 8),
                reason="",
            )
    event.refresh_from_db()
    assert event.date == datetime.date(YEAR, 4, 6)
