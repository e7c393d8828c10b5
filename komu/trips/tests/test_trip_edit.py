"""Editing a 校外活動: the rules of setting up, scope (out of reach answers as missing), a trip that has ended
stays as it was, the audit event with old → new, and changes that take effect on the chaperones' next request; a
removed chaperone stays on record (who removed them, when) without any access, and can be added again."""

from __future__ import annotations

import datetime
import re
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from komu.access.scope import get_actor
from komu.audit.models import AuditEvent
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.testing.world import World
from komu.trips import selectors, services
from komu.trips.models import Trip, TripChaperone, TripHealthRelease

HOUR = datetime.timedelta(hours=1)


def _trip(
    world: World,
    *,
    by: str = "homeroom_a1",
    klass: str = "class_a1",
    chaperones: tuple[str, ...] = ("teacher_a",),
) -> Trip:
    now = timezone.now()
    return services.trip_create(
        actor=get_actor(world.user(by)),
        title="修学旅行",
        starts_at=now - HOUR,
        ends_at=now + 30 * HOUR,
        class_ids=[getattr(world, klass).pk],
        student_ids=[],
        chaperone_ids=[world.user(c).pk for c in chaperones],
    )


def _data(world: World, trip: Trip, **changes: Any) -> services.TripData:
    values: dict[str, Any] = {
        "title": trip.title,
        "starts_at": trip.starts_at,
        "ends_at": trip.ends_at,
        "class_ids": [c.pk for c in trip.classes.all()],
        "student_ids": [],
        "chaperone_ids": [c.user_id for c in trip.chaperones.filter(revoked_at__isnull=True, removed_at__isnull=True)],
    }
    values.update(changes)
    return services.TripData(**values)


def test_edit_changes_name_and_window_and_audits_old_and_new(world: World) -> None:
    trip = _trip(world)
    old_end = trip.ends_at
    new_end = old_end + 5 * HOUR
    services.trip_update(
        actor=get_actor(world.user("homeroom_a1")),
        trip_id=trip.pk,
        data=_data(world, trip, title="  修学旅行（日光）  ", ends_at=new_end),
    )
    trip.refresh_from_db()
    assert trip.title == "修学旅行（日光）" and trip.ends_at == new_end
    event = AuditEvent.objects.get(action="trips.trip.updated")
    assert event.detail["changes"] == {
        "title": ["修学旅行", "修学旅行（日光）"],
        "ends_at": [old_end.isoformat(), new_end.isoformat()],
    }
    assert event.detail["person_ids_added"] == [] and event.detail["chaperone_ids_removed"] == []
    assert sorted(event.fields) == ["ends_at", "title"]
    # Saving without a change writes nothing more.
    services.trip_update(actor=get_actor(world.user("homeroom_a1")), trip_id=trip.pk, data=_data(world, trip))
    assert AuditEvent.objects.filter(action="trips.trip.updated").count() == 1


def test_narrowing_the_window_refuses_the_next_request(world: World) -> None:
    trip = _trip(world)
    teacher = get_actor(world.user("teacher_a"))
    assert selectors.chaperone_sheet(actor=teacher, trip_id=trip.pk).lines
    now = timezone.now()
    services.trip_update(
        actor=get_actor(world.user("homeroom_a1")),
        trip_id=trip.pk,
        data=_data(world, trip, starts_at=now + 2 * HOUR, ends_at=now + 10 * HOUR),
    )
    with pytest.raises(selectors.AccessRefused) as exc:
        selectors.chaperone_sheet(actor=teacher, trip_id=trip.pk)
    assert exc.value.reason == "before"


def test_removed_chaperone_loses_access_at_once_and_added_one_reads(world: World, signed_in: Any) -> None:
    trip = _trip(world, chaperones=("teacher_a", "nurse_a"))
    teacher = signed_in("teacher_a")
    assert teacher.get(reverse("trips:sheet", args=[trip.pk])).status_code == 200
    services.trip_update(
        actor=get_actor(world.user("homeroom_a1")),
        trip_id=trip.pk,
        data=_data(world, trip, chaperone_ids=[world.user("nurse_a").pk, world.user("vice_principal_a").pk]),
    )
    response = teacher.get(reverse("trips:sheet", args=[trip.pk]))
    assert response.status_code == 404 and "090-1234-5678" not in response.content.decode()
    with pytest.raises(NotFoundOrNoAccess):
        selectors.chaperone_sheet(actor=get_actor(world.user("teacher_a")), trip_id=trip.pk)
    assert selectors.chaperone_sheet(actor=get_actor(world.user("vice_principal_a")), trip_id=trip.pk).lines
    event = AuditEvent.objects.get(action="trips.trip.updated")
    assert event.detail["chaperone_ids_removed"] == [str(world.user("teacher_a").pk)]
    assert event.detail["chaperone_ids_added"] == [str(world.user("vice_principal_a").pk)]
    assert "chaperones" in event.fields
    # The row stays, marked removed by the editor.
    removed = TripChaperone.objects.get(trip=trip, user=world.user("teacher_a"))
    assert removed.removed_by == world.user("homeroom_a1") and removed.removed_at is not None
    assert removed.revoked_at is None


def test_removal_and_its_audit_event_commit_together(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    trip = _trip(world, chaperones=("teacher_a", "nurse_a"))

    def failing_audit(**kwargs: Any) -> None:
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(services, "audit_record", failing_audit)
    with pytest.raises(RuntimeError):
        services.trip_update(
            actor=get_actor(world.user("homeroom_a1")),
            trip_id=trip.pk,
            data=_data(world, trip, chaperone_ids=[world.user("nurse_a").pk]),
        )
    assert TripChaperone.objects.get(trip=trip, user=world.user("teacher_a")).removed_at is None


def test_a_removed_chaperone_has_no_way_in(world: World, signed_in: Any) -> None:
    trip = _trip(world, chaperones=("teacher_a", "nurse_a"))
    teacher = get_actor(world.user("teacher_a"))
    code = services.trip_lost_code_issue(actor=teacher, trip_id=trip.pk)
    row = TripChaperone.objects.get(trip=trip, user=world.user("teacher_a"))
    services.trip_update(
        actor=get_actor(world.user("homeroom_a1")),
        trip_id=trip.pk,
        data=_data(world, trip, chaperone_ids=[world.user("nurse_a").pk]),
    )
    # Not on the trips list nor the home page, no sheet, no code to take, no loss to report.
    assert selectors.my_trips(actor=teacher) == []
    assert selectors.home_tasks(actor=teacher) == []
    client = signed_in("teacher_a")
    assert "連絡先を表示する" not in client.get(reverse("trips:list")).content.decode()
    assert client.get(reverse("trips:sheet", args=[trip.pk])).status_code == 404
    assert client.post(reverse("trips:issue_code", args=[trip.pk])).status_code == 404
    assert client.post(reverse("trips:lost_self", args=[trip.pk])).status_code == 404
    with pytest.raises(NotFoundOrNoAccess):
        services.trip_phone_lost_report_by_code(code=code)
    # Nothing left to revoke either: the principal's revocation answers as missing.
    with pytest.raises(NotFoundOrNoAccess):
        services.trip_chaperone_revoke(actor=get_actor(world.user("principal_a")), chaperone_id=row.pk, reason="x")
    row.refresh_from_db()
    assert row.lost_code_hash == "" and row.revoked_at is None and row.removed_at is not None
    # The edit form no longer has them chosen.
    edit = selectors.trip_edit_form(actor=get_actor(world.user("homeroom_a1")), trip_id=trip.pk)
    assert edit.initial["chaperones"] == [str(world.user("nurse_a").pk)]


def test_a_removed_chaperone_can_be_added_again_as_a_new_row(world: World) -> None:
    trip = _trip(world, chaperones=("teacher_a", "nurse_a"))
    editor = get_actor(world.user("homeroom_a1"))
    teacher_id, nurse_id = world.user("teacher_a").pk, world.user("nurse_a").pk
    services.trip_update(actor=editor, trip_id=trip.pk, data=_data(world, trip, chaperone_ids=[nurse_id]))
    # The edit form offers them again (they are on the school's staff).
    offered = [key for key, _label in selectors.trip_edit_form(actor=editor, trip_id=trip.pk)
               .choices(selectors.setup_choices(actor=editor)).chaperones]
    assert str(teacher_id) in offered
    services.trip_update(
        actor=editor, trip_id=trip.pk, data=_data(world, trip, chaperone_ids=[nurse_id, teacher_id])
    )
    rows = list(TripChaperone.objects.filter(trip=trip, user_id=teacher_id).order_by("pk"))
    assert len(rows) == 2 and rows[0].removed_at is not None and rows[1].removed_at is None
    assert selectors.chaperone_sheet(actor=get_actor(world.user("teacher_a")), trip_id=trip.pk).lines
    events = list(AuditEvent.objects.filter(action="trips.trip.updated").order_by("occurred_at"))
    assert events[-1].detail["chaperone_ids_added"] == [str(teacher_id)]
    # Removed a second time: both periods are on record.
    services.trip_update(actor=editor, trip_id=trip.pk, data=_data(world, trip, chaperone_ids=[nurse_id]))
    summary = selectors.trip_summary(actor=editor, trip_id=trip.pk)
    assert [c.name for c in summary.chaperones] == ["nurse_a（nurse_a）"]
    assert [c.name for c in summary.removed_chaperones] == ["teacher_a（teacher_a）"] * 2
    first, second = sorted(summary.removed_chaperones, key=lambda c: c.added_at)
    assert first.added_at < first.removed_at <= second.added_at < second.removed_at
    with pytest.raises(NotFoundOrNoAccess):
        selectors.chaperone_sheet(actor=get_actor(world.user("teacher_a")), trip_id=trip.pk)


def test_trip_page_lists_removed_chaperones_with_who_and_when(world: World, signed_in: Any) -> None:
    trip = _trip(world, chaperones=("teacher_a", "nurse_a"))
    services.trip_update(
        actor=get_actor(world.user("vice_principal_a")),
        trip_id=trip.pk,
        data=_data(world, trip, chaperone_ids=[world.user("nurse_a").pk]),
    )
    removed_at = TripChaperone.objects.get(trip=trip, user=world.user("teacher_a")).removed_at
    assert removed_at is not None
    when = timezone.localtime(removed_at)
    page = signed_in("homeroom_a1").get(reverse("trips:detail", args=[trip.pk])).content.decode()
    section = page[page.index('id="removed-chaperones-title"'):]
    section = section[: section.index("</section>")]
    assert "解除した引率者" in section and "teacher_a（teacher_a）" in section
    assert "vice_principal_a（vice_principal_a）" in section
    assert f"{when:%Y-%m-%d %H:%M}" in section  # as the rest of the trip's page writes times
    # The current chaperones' table no longer lists them.
    current = page[page.index('id="chaperones"'):]
    current = current[: current.index("</table>")]
    assert "nurse_a（nurse_a）" in current and "teacher_a（teacher_a）" not in current
    # The nurse reads the trip's page but does not manage the trip: no history for her.
    nurse = signed_in("nurse_a").get(reverse("trips:detail", args=[trip.pk])).content.decode()
    assert "解除した引率者" not in nurse and "teacher_a（teacher_a）" not in nurse
    assert selectors.trip_summary(actor=get_actor(world.user("nurse_a")), trip_id=trip.pk).removed_chaperones == []


def test_a_revoked_chaperone_stays_revoked(world: World) -> None:
    trip = _trip(world, chaperones=("teacher_a", "nurse_a"))
    revoked = TripChaperone.objects.get(trip=trip, user=world.user("teacher_a"))
    services.trip_chaperone_revoke(
        actor=get_actor(world.user("principal_a")), chaperone_id=revoked.pk, reason="x"
    )
    editor = get_actor(world.user("homeroom_a1"))
    with pytest.raises(ValidationFailed) as exc:
        services.trip_update(
            actor=editor,
            trip_id=trip.pk,
            data=_data(world, trip, chaperone_ids=[world.user("teacher_a").pk, world.user("nurse_a").pk]),
        )
    assert exc.value.errors["chaperones"] == ["閲覧を取り消された引率者は、もう一度選ぶことはできません。"]
    services.trip_update(actor=editor, trip_id=trip.pk, data=_data(world, trip, title="遠足"))
    revoked.refresh_from_db()
    assert revoked.revoked_at is not None
    with pytest.raises(selectors.AccessRefused):
        selectors.chaperone_sheet(actor=get_actor(world.user("teacher_a")), trip_id=trip.pk)
    # The edit form does not offer them.
    edit = selectors.trip_edit_form(actor=editor, trip_id=trip.pk)
    offered = [key for key, _label in edit.choices(selectors.setup_choices(actor=editor)).chaperones]
    assert str(world.user("teacher_a").pk) not in offered and str(world.user("nurse_a").pk) in offered
    assert edit.initial["chaperones"] == [str(world.user("nurse_a").pk)]


def test_participants_added_and_removed_like_at_setup(world: World) -> None:
    trip = _trip(world)
    first, second = world.students["a1_first"], world.students["a1_second"]
    services.trip_health_release_set(
        actor=get_actor(world.user("nurse_a")), trip_id=trip.pk, student_id=second.pk, note="卵アレルギー"
    )
    homeroom = get_actor(world.user("homeroom_a1"))
    # Another class is out of the homeroom teacher's reach; nothing changes.
    with pytest.raises(ValidationFailed) as exc:
        services.trip_update(
            actor=homeroom,
            trip_id=trip.pk,
            data=_data(world, trip, title="変更", class_ids=[world.class_a2.pk]),
        )
    assert set(exc.value.errors) == {"classes"}
    assert Trip.objects.get(pk=trip.pk).title == "修学旅行"
    # Only one pupil of the class now.
    services.trip_update(
        actor=homeroom, trip_id=trip.pk, data=_data(world, trip, class_ids=[], student_ids=[first.pk])
    )
    assert [p.student_id for p in trip.participants.all()] == [first.pk]
    assert not TripHealthRelease.objects.filter(trip=trip).exists()
    event = AuditEvent.objects.get(action="trips.trip.updated")
    assert event.detail["person_ids_removed"] == [str(second.pk)]
    assert event.detail["health_releases_removed"] == 1
    assert event.detail["changes"] == {"class_ids": [[str(world.class_a1.pk)], []]}
    sheet = selectors.chaperone_sheet(actor=get_actor(world.user("teacher_a")), trip_id=trip.pk)
    assert [line.name for line in sheet.lines] == [first.full_name]
    # The principal reaches the whole school: adds the other class.
    services.trip_update(
        actor=get_actor(world.user("principal_a")),
        trip_id=trip.pk,
        data=_data(world, trip, class_ids=[world.class_a2.pk], student_ids=[first.pk]),
    )
    assert {p.student_id for p in trip.participants.all()} == {first.pk, world.students["a2_first"].pk}


def test_an_ended_trip_cannot_be_edited(world: World) -> None:
    trip = _trip(world)
    Trip.objects.filter(pk=trip.pk).update(starts_at=timezone.now() - 5 * HOUR, ends_at=timezone.now() - HOUR)
    trip.refresh_from_db()
    with pytest.raises(ValidationFailed) as exc:
        services.trip_update(
            actor=get_actor(world.user("homeroom_a1")),
            trip_id=trip.pk,
            data=_data(world, trip, title="x", ends_at=timezone.now() + HOUR),
        )
    assert str(exc.value) == "終了した校外活動は変更できません。"
    assert Trip.objects.get(pk=trip.pk).title == "修学旅行"
    assert not AuditEvent.objects.filter(action="trips.trip.updated").exists()


def test_edit_scope_and_capability(world: World) -> None:
    trip = _trip(world)
    principals = _trip(world, by="principal_a", klass="class_a2")
    data = _data(world, trip, title="x")
    with pytest.raises(NotFoundOrNoAccess):
        services.trip_update(actor=get_actor(world.user("principal_b")), trip_id=trip.pk, data=data)
    with pytest.raises(NotFoundOrNoAccess):
        # A homeroom teacher edits the trips they set up, not the school's others.
        services.trip_update(
            actor=get_actor(world.user("homeroom_a1")),
            trip_id=principals.pk,
            data=_data(world, principals, title="x"),
        )
    with pytest.raises(NotFoundOrNoAccess):
        services.trip_update(actor=get_actor(world.user("homeroom_a1")), trip_id="１", data=data)
    with pytest.raises(PermissionDeniedError):
        services.trip_update(actor=get_actor(world.user("teacher_a")), trip_id=trip.pk, data=data)
    with pytest.raises(ValidationFailed) as exc:
        services.trip_update(
            actor=get_actor(world.user("homeroom_a1")),
            trip_id=trip.pk,
            data=_data(world, trip, chaperone_ids=[world.user("teacher_b").pk]),
        )
    assert set(exc.value.errors) == {"chaperones"}
    services.trip_update(actor=get_actor(world.user("vice_principal_a")), trip_id=trip.pk, data=data)
    assert Trip.objects.get(pk=trip.pk).title == "x"


def test_edit_views(world: World, signed_in: Any) -> None:
    trip = _trip(world)
    client = signed_in("homeroom_a1")
    detail = client.get(reverse("trips:detail", args=[trip.pk])).content.decode()
    edit_url = reverse("trips:edit", args=[trip.pk])
    assert f'href="{edit_url}"' in detail
    # (signed_in signs the one test client in as another persona.)
    nurse_page = signed_in("nurse_a").get(reverse("trips:detail", args=[trip.pk]))
    assert nurse_page.status_code == 200 and edit_url not in nurse_page.content.decode()
    assert signed_in("principal_b").get(edit_url).status_code == 404
    assert signed_in("teacher_a").get(edit_url).status_code == 404
    client = signed_in("homeroom_a1")
    page = client.get(edit_url).content.decode()
    assert 'value="修学旅行"' in page and "変更を保存する" in page and "修学旅行の編集" in page
    teacher = str(world.user("teacher_a").pk)
    assert re.search(rf'name="chaperones" value="{teacher}" id="[^"]+" checked', page)
    assert re.search(rf'name="classes" value="{world.class_a1.pk}" id="[^"]+" checked', page)
    assert 'href="/trips/' in page and "キャンセル" in page
    start = timezone.localtime(trip.starts_at)
    response = client.post(
        edit_url,
        {
            "title": "",
            "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (start + 3 * HOUR).strftime("%Y-%m-%dT%H:%M"),
            "classes": [str(world.class_a1.pk)],
            "chaperones": [str(world.user("teacher_a").pk)],
        },
    )
    assert response.status_code == 200 and "名称を入力してください" in response.content.decode()
    response = client.post(
        edit_url,
        {
            "title": "遠足（高尾山）",
            "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (start + 3 * HOUR).strftime("%Y-%m-%dT%H:%M"),
            "classes": [str(world.class_a1.pk)],
            "chaperones": [str(world.user("teacher_a").pk)],
        },
    )
    assert response.status_code == 302 and response["Location"] == reverse("trips:detail", args=[trip.pk])
    assert Trip.objects.get(pk=trip.pk).title == "遠足（高尾山）"
    assert "校外活動「遠足（高尾山）」を変更しました。" in client.get(response["Location"]).content.decode()
    Trip.objects.filter(pk=trip.pk).update(starts_at=timezone.now() - 5 * HOUR, ends_at=timezone.now() - HOUR)
    ended = client.get(edit_url)
    assert ended.status_code == 302
    detail = client.get(ended["Location"]).content.decode()
    assert "終了した校外活動は変更できません。" in detail and f'href="{edit_url}"' not in detail


def test_pupils_the_editor_does_not_reach_stay_choosable(world: World) -> None:
    trip = _trip(world)
    other = world.students["a2_first"]
    services.trip_update(
        actor=get_actor(world.user("principal_a")),
        trip_id=trip.pk,
        data=_data(world, trip, student_ids=[other.pk]),
    )
    homeroom = get_actor(world.user("homeroom_a1"))
    edit = selectors.trip_edit_form(actor=homeroom, trip_id=trip.pk)
    assert edit.initial["students"] == [str(other.pk)]
    assert edit.extra.students == [(str(other.pk), other.full_name)]
    assert AuditEvent.objects.filter(action="trips.setup.viewed", detail__persons=1).exists()
    services.trip_update(
        actor=homeroom, trip_id=trip.pk, data=_data(world, trip, title="遠足", student_ids=[other.pk])
    )
    assert other.pk in {p.student_id for p in trip.participants.all()}
    services.trip_update(actor=homeroom, trip_id=trip.pk, data=_data(world, trip, student_ids=[]))
    assert other.pk not in {p.student_id for p in trip.participants.all()}
