"""校外活動: set-up within scope, the chaperone's sheet only in the window and until revoked, the nurse's release,
the lost-phone report (signed in, and by code), audit events."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from komu.access.scope import get_actor
from komu.audit.models import AuditEvent
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.students.models import EmergencyContact
from komu.testing.world import World
from komu.trips import selectors, services
from komu.trips.models import Trip, TripChaperone, TripIncident


def _trip(world: World, *, start: datetime.timedelta = datetime.timedelta(hours=-1),
          length: datetime.timedelta = datetime.timedelta(days=2), chaperones: tuple[str, ...] = ("teacher_a",),
          ) -> Trip:
    now = timezone.now()
    return services.trip_create(
        actor=get_actor(world.user("homeroom_a1")), title="修学旅行", starts_at=now + start,
        ends_at=now + start + length, class_ids=[world.class_a1.pk], student_ids=[],
        chaperone_ids=[world.user(c).pk for c in chaperones],
    )


def _open(world: World, trip: Trip) -> None:
    """Move a trip's window to now (the service refuses windows already over, so tests shift them here)."""
    now = timezone.now()
    Trip.objects.filter(pk=trip.pk).update(starts_at=now - datetime.timedelta(hours=1),
                                           ends_at=now + datetime.timedelta(hours=5))


def test_homeroom_teacher_sets_up_a_trip_for_their_class(world: World) -> None:
    trip = _trip(world)
    assert {p.student_id for p in trip.participants.all()} == {world.students["a1_first"].pk,
                                                               world.students["a1_second"].pk}
    event = AuditEvent.objects.get(action="trips.trip.created")
    assert len(event.detail["person_ids"]) == 2


def test_setup_refuses_another_class_outside_staff_and_bad_windows(world: World) -> None:
    actor = get_actor(world.user("homeroom_a1"))
    now = timezone.now()
    with pytest.raises(ValidationFailed) as exc:
        services.trip_create(actor=actor, title="", starts_at=now, ends_at=now - datetime.timedelta(hours=1),
                             class_ids=[world.class_a2.pk], student_ids=[world.students["b1_first"].pk],
                             chaperone_ids=[world.user("teacher_b").pk])
    assert {"title", "ends_at", "classes", "students"} <= set(exc.value.errors)
    with pytest.raises(ValidationFailed) as exc:
        services.trip_create(actor=actor, title="遠足", starts_at=now, ends_at=now + datetime.timedelta(days=20),
                             class_ids=[world.class_a1.pk], student_ids=[], chaperone_ids=[world.user("teacher_b").pk])
    assert {"ends_at", "chaperones"} == set(exc.value.errors)
    assert not Trip.objects.exists()
    with pytest.raises(PermissionDeniedError):
        services.trip_create(actor=get_actor(world.user("teacher_a")), title="x", starts_at=now,
                             ends_at=now + datetime.timedelta(hours=2), class_ids=[world.class_a1.pk],
                             student_ids=[], chaperone_ids=[world.user("teacher_a").pk])


def test_chaperone_sees_exactly_the_participants_contacts_in_the_window(world: World) -> None:
    EmergencyContact(student=world.students["a1_first"], priority=1, name="髙橋 一", relationship="祖父",
                     phone="03-1111-2222").save()
    trip = _trip(world)
    sheet = selectors.chaperone_sheet(actor=get_actor(world.user("teacher_a")), trip_id=trip.pk)
    names = [line.name for line in sheet.lines]
    assert names == [world.students["a1_first"].full_name, world.students["a1_second"].full_name]
    phones = [c.phone for c in sheet.lines[0].contacts]
    assert phones == ["090-1234-5678", "03-1111-2222"]
    assert AuditEvent.objects.filter(action="trips.contacts.viewed").count() == 1
    # Not a chaperone: no such page.
    with pytest.raises(NotFoundOrNoAccess):
        selectors.chaperone_sheet(actor=get_actor(world.user("nurse_a")), trip_id=trip.pk)


@pytest.mark.parametrize(("start", "reason"), [(datetime.timedelta(hours=3), "before"),
                                               (datetime.timedelta(hours=-30), "after")])
def test_outside_the_window_the_sheet_is_refused(world: World, start: datetime.timedelta, reason: str) -> None:
    trip = _trip(world, start=start, length=datetime.timedelta(days=2))
    if reason == "after":
        Trip.objects.filter(pk=trip.pk).update(ends_at=timezone.now() - datetime.timedelta(minutes=1))
    with pytest.raises(selectors.AccessRefused) as exc:
        selectors.chaperone_sheet(actor=get_actor(world.user("teacher_a")), trip_id=trip.pk)
    assert exc.value.reason == reason
    assert AuditEvent.objects.filter(action="trips.contacts.refused").exists()


def test_principal_revokes_and_the_next_request_is_refused(world: World, signed_in: Any) -> None:
    trip = _trip(world, chaperones=("teacher_a", "nurse_a"))
    chaperone = TripChaperone.objects.get(trip=trip, user=world.user("teacher_a"))
    with pytest.raises(NotFoundOrNoAccess):
        services.trip_chaperone_revoke(actor=get_actor(world.user("principal_b")), chaperone_id=chaperone.pk,
                                       reason="x")
    with pytest.raises(PermissionDeniedError):
        services.trip_chaperone_revoke(actor=get_actor(world.user("homeroom_a1")), chaperone_id=chaperone.pk,
                                       reason="x")
    services.trip_chaperone_revoke(actor=get_actor(world.user("principal_a")), chaperone_id=chaperone.pk,
                                   reason="端末紛失")
    with pytest.raises(selectors.AccessRefused) as exc:
        selectors.chaperone_sheet(actor=get_actor(world.user("teacher_a")), trip_id=trip.pk)
    assert exc.value.reason == "revoked"
    # The other chaperone still reads.
    assert selectors.chaperone_sheet(actor=get_actor(world.user("nurse_a")), trip_id=trip.pk).lines


def test_nurse_releases_a_health_note_that_the_chaperone_sees(world: World) -> None:
    trip = _trip(world)
    nurse = get_actor(world.user("nurse_a"))
    pupil = world.students["a1_second"]
    services.trip_health_release_set(actor=nurse, trip_id=trip.pk, student_id=pupil.pk, note="卵アレルギー（エピペン携帯）")
    sheet = selectors.chaperone_sheet(actor=get_actor(world.user("teacher_a")), trip_id=trip.pk)
    assert [line.health for line in sheet.lines] == ["", "卵アレルギー（エピペン携帯）"]
    with pytest.raises(ValidationFailed):
        services.trip_health_release_set(actor=nurse, trip_id=trip.pk, student_id=pupil.pk, note="  ")
    services.trip_health_release_set(actor=nurse, trip_id=trip.pk, student_id=pupil.pk, note=None)
    sheet = selectors.chaperone_sheet(actor=get_actor(world.user("teacher_a")), trip_id=trip.pk)
    assert all(line.health == "" for line in sheet.lines)
    assert AuditEvent.objects.filter(action="trips.health.withdrawn").exists()
    with pytest.raises(NotFoundOrNoAccess):
        services.trip_health_release_set(actor=nurse, trip_id=trip.pk, student_id=world.students["a2_first"].pk,
                                         note="x")
    with pytest.raises(PermissionDeniedError):
        services.trip_health_release_set(actor=get_actor(world.user("teacher_a")), trip_id=trip.pk,
                                         student_id=pupil.pk, note="x")


def test_lost_phone_signed_in_elsewhere_revokes_and_records(world: World) -> None:
    trip = _trip(world)
    teacher = get_actor(world.user("teacher_a"))
    incident = services.trip_phone_lost_report(actor=teacher, trip_id=trip.pk)
    assert incident.person_count == 2 and incident.channel == "signed_in"
    with pytest.raises(selectors.AccessRefused):
        selectors.chaperone_sheet(actor=teacher, trip_id=trip.pk)


def test_lost_phone_by_code_without_sign_in(world: World, client: Any) -> None:
    trip = _trip(world)
    code = services.trip_lost_code_issue(actor=get_actor(world.user("teacher_a")), trip_id=trip.pk)
    response = client.post(reverse("trips:lost_code"), {"code": "WRONG-CODE-0000"})
    assert "このコードは使えません" in response.content.decode()
    assert not TripIncident.objects.exists()
    response = client.post(reverse("trips:lost_code"), {"code": code.lower(), "note": "バスに置き忘れ"})
    assert "届け出を受け付けました" in response.content.decode()
    incident = TripIncident.objects.get()
    assert incident.channel == "code" and incident.note == "バスに置き忘れ"
    # The code is used up.
    response = client.post(reverse("trips:lost_code"), {"code": code})
    assert "このコードは使えません" in response.content.decode()


def test_views(world: World, signed_in: Any) -> None:
    client = signed_in("homeroom_a1")
    page = client.get(reverse("trips:new")).content.decode()
    assert world.students["a1_first"].full_name in page and world.students["a2_first"].full_name not in page
    now = timezone.localtime()
    response = client.post(reverse("trips:new"), {
        "title": "遠足", "starts_at": (now - datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (now + datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
        "classes": [str(world.class_a1.pk)], "chaperones": [str(world.user("homeroom_a1").pk)],
    })
    assert response.status_code == 302
    trip = Trip.objects.get()
    detail = client.get(response["Location"]).content.decode()
    assert "オフライン表示には対応していません" in detail
    sheet = client.get(reverse("trips:sheet", args=[trip.pk]))
    assert sheet.status_code == 200 and "090-1234-5678" in sheet.content.decode()
    assert "<script" not in sheet.content.decode()
    assert "no-store" in sheet["Cache-Control"]
    Trip.objects.filter(pk=trip.pk).update(ends_at=timezone.now() - datetime.timedelta(minutes=1),
                                           starts_at=timezone.now() - datetime.timedelta(hours=2))
    refused = client.get(reverse("trips:sheet", args=[trip.pk]))
    assert refused.status_code == 403 and "090-1234-5678" not in refused.content.decode()
    assert signed_in("teacher_b").get(reverse("trips:sheet", args=[trip.pk])).status_code == 404


def test_nurse_health_page_and_principal_revoke_view(world: World, signed_in: Any) -> None:
    trip = _trip(world)
    client = signed_in("nurse_a")
    assert client.get(reverse("trips:health", args=[trip.pk])).status_code == 200
    client.post(reverse("trips:health", args=[trip.pk]),
                {"student": str(world.students["a1_first"].pk), "action": "release", "note": "そばアレルギー"})
    assert trip.health_releases.count() == 1
    principal = signed_in("principal_a")
    chaperone = trip.chaperones.get()
    response = principal.post(reverse("trips:revoke", args=[trip.pk, chaperone.pk]), {"reason": "端末紛失"})
    assert response.status_code == 302
    chaperone.refresh_from_db()
    assert chaperone.revoked_at is not None and chaperone.revoke_reason == "端末紛失"
    assert signed_in("principal_b").get(reverse("trips:detail", args=[trip.pk])).status_code == 404


def test_demo_emergency_contacts_for_a_class(world: World) -> None:
    from komu.demo.trips import build

    written = build(klass=world.class_a1, seed=1)
    contacts = EmergencyContact.objects.filter(student__memberships__homeroom_class=world.class_a1)
    assert written == contacts.count() >= 2
    assert all(c.phone.startswith("048-021-") for c in contacts)


def test_home_tasks_for_chaperone_and_nurse(world: World) -> None:
    trip = _trip(world)
    teacher_tasks = selectors.home_tasks(actor=get_actor(world.user("teacher_a")))
    assert [t.url for t in teacher_tasks] == [reverse("trips:sheet", args=[trip.pk])]
    nurse_tasks = selectors.home_tasks(actor=get_actor(world.user("nurse_a")))
    assert [t.url for t in nurse_tasks] == [reverse("trips:health", args=[trip.pk])]
    assert selectors.home_tasks(actor=get_actor(world.user("teacher_b"))) == []


def test_trip_list_query_count_stays_flat(world: World, signed_in: Any, django_assert_max_num_queries: Any) -> None:
    for _ in range(3):
        _trip(world)
    client = signed_in("teacher_a")
    with django_assert_max_num_queries(20):
        page = client.get(reverse("trips:list"))
    assert page.status_code == 200 and page.content.decode().count("連絡先を表示する") == 3


def test_principal_drafts_the_ppc_incident_from_a_lost_phone(world: World, signed_in: Any) -> None:
    from komu.privacy.models import AffectedPerson, Incident

    trip = _trip(world)
    services.trip_health_release_set(actor=get_actor(world.user("nurse_a")), trip_id=trip.pk,
                                     student_id=world.students["a1_first"].pk, note="卵アレルギー")
    report = services.trip_phone_lost_report(actor=get_actor(world.user("teacher_a")), trip_id=trip.pk)
    with pytest.raises(PermissionDeniedError):
        services.trip_incident_draft_report(actor=get_actor(world.user("homeroom_a1")), incident_id=report.pk)
    client = signed_in("principal_a")
    page = client.get(reverse("trips:detail", args=[trip.pk])).content.decode()
    assert "事故報告を作成する" in page
    # The lost-phone table stands once, in the content: not in the page title, breadcrumbs or heading.
    assert page.count('id="incidents-title"') == 1 and page.count("事故報告を作成する") == 1
    assert f"<title>{trip.title} |" in page
    response = client.post(reverse("trips:incident_report", args=[trip.pk, report.pk]))
    incident = Incident.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("privacy:incident_detail",
                                                                           args=[incident.pk])
    assert incident.kind == Incident.Kind.LOST_DEVICE and incident.person_count == 2
    fields = {a.student_id: a.fields for a in AffectedPerson.objects.filter(incident=incident)}
    assert "health_note" in fields[world.students["a1_first"].pk]
    assert "health_note" not in fields[world.students["a1_second"].pk]
    # A second click opens the same incident.
    assert services.trip_incident_draft_report(actor=get_actor(world.user("principal_a")),
                                               incident_id=report.pk) == str(incident.pk)
    assert Incident.objects.count() == 1
