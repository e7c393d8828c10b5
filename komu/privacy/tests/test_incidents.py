from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.utils import timezone

from komu.access.scope import get_actor
from komu.audit.models import AuditEvent
from komu.audit.services import audit_record
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.disclosures.services import disclosure_record
from komu.privacy import selectors, services
from komu.privacy.models import AffectedPerson, Incident
from komu.testing.world import World

pytestmark = pytest.mark.django_db


def _actor(world: World, name: str) -> Any:
    return get_actor(world.user(name))


def _create(world: World, name: str = "principal_a", **kw: Any) -> Incident:
    persons = kw.pop("persons", {world.students["a1_first"].pk: ["family_name", "phone"]})
    data = services.IncidentInput(title=kw.pop("title", "名簿の紛失"), **kw)
    return services.incident_create(actor=_actor(world, name), data=data, persons=persons)


def test_incident_records_persons_fields_count_and_audit(world: World) -> None:
    incident = _create(world, persons={
        world.students["a1_first"].pk: ["family_name", "given_name", "phone"],
        str(world.students["a2_first"].pk): ["family_name"],
    })
    assert incident.school == world.school_a and incident.board == world.board_a
    assert incident.person_count == 2
    assert incident.data_items == ["family_name", "given_name", "phone"]
    assert set(AffectedPerson.objects.filter(incident=incident).values_list("student_id", flat=True)) == {
        world.students["a1_first"].pk, world.students["a2_first"].pk}
    event = AuditEvent.objects.get(action="privacy.incident.created")
    assert event.object_id == str(incident.pk) and event.detail["persons"] == 2 and event.school_id == world.school_a.pk


def test_a_person_of_another_school_is_refused_and_nothing_is_written(world: World) -> None:
    with pytest.raises(ValidationFailed):
        _create(world, persons={world.students["b1_first"].pk: ["family_name"]})
    assert not Incident.objects.exists()


def test_teacher_cannot_record_an_incident(world: World) -> None:
    with pytest.raises(PermissionDeniedError):
        _create(world, "teacher_a")


def test_empty_title_and_future_found_at_are_refused(world: World) -> None:
    with pytest.raises(ValidationFailed) as caught:
        _create(world, title=" ", found_at=timezone.now() + datetime.timedelta(days=2))
    assert set(caught.value.errors) == {"title", "found_at"}


def test_out_of_scope_incident_answers_like_a_missing_one(world: World) -> None:
    incident = _create(world)
    with pytest.raises(NotFoundOrNoAccess):
        services.get_incident(_actor(world, "principal_b"), incident.pk)
    assert services.get_incident(_actor(world, "board_officer_a"), incident.pk) == incident
    with pytest.raises(NotFoundOrNoAccess):
        services.get_incident(_actor(world, "board_officer_b"), incident.pk)


def test_deadlines_3_5_30_days_and_60_when_unlawful(world: World) -> None:
    found = timezone.make_aware(datetime.datetime(2026, 11, 26, 10, 0))
    incident = _create(world, found_at=found)
    dues = [d.due for d in selectors.deadlines(incident, today=datetime.date(2026, 11, 26))]
    # The day the school became aware is day 1.
    assert dues == [datetime.date(2026, 11, 28), datetime.date(2026, 11, 30), datetime.date(2026, 12, 25)]
    incident = services.incident_update_report(actor=_actor(world, "principal_a"), incident_id=incident.pk,
                                               values={"unlawful_purpose": True})
    dues = [d.due for d in selectors.deadlines(incident)]
    assert dues[2] == datetime.date(2027, 1, 24)


def test_report_edit_and_status_record_dates_and_audit(world: World) -> None:
    incident = _create(world)
    actor = _actor(world, "principal_a")
    incident = services.incident_update_report(actor=actor, incident_id=incident.pk, values={
        "cause": "校外学習中に名簿を置き忘れた", "prevention": "紙の名簿を持ち出さない", "status": "preliminary"})
    incident.refresh_from_db()
    assert incident.cause == "校外学習中に名簿を置き忘れた" and incident.preliminary_reported_at is not None
    event = AuditEvent.objects.filter(action="privacy.incident.updated").get()
    assert set(event.fields) == {"cause", "prevention", "status"}
    with pytest.raises(ValidationFailed):
        services.incident_update_report(actor=actor, incident_id=incident.pk, values={"status": "bogus"})


def test_report_required_reasons(world: World) -> None:
    incident = _create(world, persons={world.students["a1_first"].pk: ["health_note"]})
    assert selectors.report_required(incident)
    incident = _create(world)
    assert selectors.report_required(incident) == []


def test_persons_from_query_whole_class(world: World) -> None:
    persons = services.persons_from_query(_actor(world, "principal_a"), school_id=world.school_a.pk,
                                          class_ids=[world.class_a1.pk], fields=["family_name", "phone"])
    assert set(persons) == {str(world.students["a1_first"].pk), str(world.students["a1_second"].pk)}
    with pytest.raises(NotFoundOrNoAccess):
        services.persons_from_query(_actor(world, "principal_a"), school_id=world.school_b.pk, fields=["phone"])
    with pytest.raises(NotFoundOrNoAccess):
        services.persons_from_query(_actor(world, "principal_a"), school_id=world.school_a.pk,
                                    class_ids=[world.class_b1.pk], fields=["phone"])


def test_persons_from_audit_covers_reads_in_the_window_only(world: World) -> None:
    from django.db import transaction

    teacher = world.user("homeroom_a1")
    with transaction.atomic():
        audit_record(actor=teacher, action="students.student.viewed", obj=world.students["a1_first"],
                     fields=["family_name", "health_note"])
        audit_record(actor=teacher, action="students.list.viewed", object_type="directory.homeroomclass",
                     object_id=str(world.class_a1.pk), fields=["family_name", "given_name"])
        audit_record(actor=world.user("principal_a"), action="students.student.viewed",
                     obj=world.students["a2_first"], fields=["family_name"])
    now = timezone.now()
    persons = services.persons_from_audit(_actor(world, "principal_a"), user_id=teacher.pk,
                                          start=now - datetime.timedelta(hours=1), end=now + datetime.timedelta(minutes=1))
    assert persons == {
        str(world.students["a1_first"].pk): ["family_name", "given_name", "health_note"],
        str(world.students["a1_second"].pk): ["family_name", "given_name"],
    }
    earlier = services.persons_from_audit(_actor(world, "principal_a"), user_id=teacher.pk,
                                          start=now - datetime.timedelta(hours=3), end=now - datetime.timedelta(hours=2))
    assert earlier == {}
    with pytest.raises(NotFoundOrNoAccess):
        services.persons_from_audit(_actor(world, "principal_b"), user_id=teacher.pk,
                                    start=now - datetime.timedelta(hours=1), end=now)


def test_affected_persons_by_name_is_audited(world: World) -> None:
    incident = _create(world)
    rows = selectors.affected_persons(_actor(world, "principal_a"), incident.pk, with_guardians=True)
    assert [r.name for r in rows] == ["髙橋 𠮷乃"]
    assert rows[0].guardians == ["髙橋 陽子"] and rows[0].fields == ["氏名", "電話番号"]
    assert AuditEvent.objects.filter(action="privacy.incident.persons_viewed", object_id=str(incident.pk)).exists()


def test_incident_from_a_lost_serial_lists_exactly_its_persons_and_fields(world: World) -> None:
    actor = _actor(world, "principal_a")
    pupils = [world.students["a1_first"].pk, world.students["a1_second"].pk]
    disclosure = disclosure_record(actor=actor, document="学級名簿", school=world.school_a, person_ids=pupils,
                                   fields=["family_name", "given_name", "phone"], reason="校外学習の引率",
                                   medium="print")
    incident = services.incident_create_from_lost_document(actor=actor, serial=disclosure.serial.lower())
    assert incident.source == Incident.Source.DISCLOSURE and incident.kind == Incident.Kind.LOST_DOCUMENT
    assert incident.person_count == 2 and incident.data_items == ["family_name", "given_name", "phone"]
    assert set(AffectedPerson.objects.filter(incident=incident).values_list("student_id", flat=True)) == set(pupils)
    assert disclosure.serial in incident.title
    assert services.incident_create_from_lost_document(actor=actor, serial=disclosure.serial) == incident
    assert Incident.objects.count() == 1
    with pytest.raises(ValidationFailed):
        services.incident_create_from_lost_document(actor=actor, serial="NOPE-0000")
    with pytest.raises(ValidationFailed):
        services.incident_create_from_lost_document(actor=_actor(world, "principal_b"), serial=disclosure.serial)


def test_home_tasks_show_near_deadlines_to_the_school_only(world: World) -> None:
    _create(world, found_at=timezone.now() - datetime.timedelta(days=3))
    tasks = selectors.home_tasks(actor=_actor(world, "principal_a"))
    assert len(tasks) == 1 and tasks[0].urgent and "速報" in tasks[0].detail
    assert selectors.home_tasks(actor=_actor(world, "principal_b")) == []
    assert selectors.home_tasks(actor=_actor(world, "teacher_a")) == []


def test_board_lockout_covers_the_board_and_its_schools_only(world: World) -> None:
    from komu.accounts.models import User

    result = services.staff_lockout(actor=_actor(world, "board_officer_a"), board_id=world.board_a.pk,
                                    reason="教育委員会のサーバーへの不正アクセス")
    locked = {u.username for u in User.objects.all() if not u.has_usable_password()}
    assert locked == {"school_admin_a", "principal_a", "vice_principal_a", "homeroom_a1", "teacher_a", "nurse_a"}
    assert result.accounts == 6
    with pytest.raises(NotFoundOrNoAccess):
        services.staff_lockout(actor=_actor(world, "board_officer_a"), board_id=world.board_b.pk, reason="x")
    with pytest.raises(PermissionDeniedError):
        services.staff_lockout(actor=_actor(world, "vice_principal_a"), school_id=world.school_a.pk, reason="x")
    with pytest.raises(ValidationFailed):
        services.staff_lockout(actor=_actor(world, "principal_b"), school_id=world.school_b.pk, reason=" ")
