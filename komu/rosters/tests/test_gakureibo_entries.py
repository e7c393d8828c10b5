"""学齢簿 by hand: creating and correcting a child, 転出 / 就学猶予, 就学校指定 one by one and in bulk (incl.
区域外就学 and 特別支援学級), scope and audit."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pytest
from django.urls import reverse

from komu.access.scope import get_actor
from komu.audit.models import AuditEvent
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.rosters.models import GakureiboEntry
from komu.rosters.services.gakureibo import (
    EntrantInput,
    gakureibo_entries_designate,
    gakureibo_entry_create,
    gakureibo_entry_designate,
    gakureibo_entry_review_clear,
    gakureibo_entry_status_set,
    gakureibo_entry_update,
)
from komu.security.tests.helpers import raw_value
from komu.testing.world import World

pytestmark = pytest.mark.django_db

YEAR = 2027


def entrant(person_id: str = "100001", **changes: Any) -> EntrantInput:
    base = EntrantInput(
        person_id=person_id, family_name="髙橋", given_name="𠮷乃", family_name_kana="たかはし",
        given_name_kana="ﾖｼﾉ", sex="female", birth_date=datetime.date(2020, 6, 1), postal_code="１２３－４５６７",
        address="みどり市中央1-2-3", guardian_family_name="山﨑", guardian_given_name="花子",
        guardian_family_name_kana="ヤマザキ", guardian_given_name_kana="ハナコ", guardian_relationship="母",
        guardian_phone="０９０−１２３４−５６７８", guardian_email="hanako@example.jp",
    )
    return dataclasses.replace(base, **changes)


def test_officer_creates_an_entry_with_kanji_exact_and_kana_normalised(world: World) -> None:
    actor = get_actor(world.user("board_officer_a"))
    entry = gakureibo_entry_create(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR, data=entrant())
    stored = GakureiboEntry.objects.get(pk=entry.pk)
    data = stored.data
    assert (data["family_name"], data["given_name"], data["guardian_family_name"]) == ("髙橋", "𠮷乃", "山﨑")
    assert (data["family_name_kana"], data["given_name_kana"]) == ("タカハシ", "ヨシノ")
    assert data["postal_code"] == "123-4567" and data["guardian_phone"] == "090-1234-5678"
    assert stored.source == GakureiboEntry.Source.MANUAL and not stored.needs_review
    # Encrypted at rest: the name is not in the stored column.
    assert "髙橋" not in str(raw_value(GakureiboEntry, stored.pk, "record"))
    event = AuditEvent.objects.get(action="rosters.gakureibo_entry.created")
    assert event.object_id == str(entry.pk) and event.board_id == world.board_a.pk


def test_validation_says_what_to_fix_and_writes_nothing(world: World) -> None:
    actor = get_actor(world.user("board_officer_a"))
    with pytest.raises(ValidationFailed) as caught:
        gakureibo_entry_create(
            actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR,
            data=entrant(person_id="", family_name="", family_name_kana="漢字", birth_date=None,
                         guardian_email="not-an-address", entry_date=datetime.date(2026, 4, 1)),
        )
    errors = caught.value.errors
    assert set(errors) >= {"person_id", "family_name", "family_name_kana", "birth_date", "guardian_email",
                           "entry_date"}
    assert not GakureiboEntry.objects.exists()


def test_private_use_character_and_missing_kana_flag_the_entry_for_review(world: World) -> None:
    actor = get_actor(world.user("board_officer_a"))
    entry = gakureibo_entry_create(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR,
                                   data=entrant(family_name="\ue000田", family_name_kana="", given_name_kana=""))
    assert entry.needs_review and entry.data["family_name"] == "\ue000田"
    gakureibo_entry_review_clear(actor=actor, entry_id=entry.pk)
    entry.refresh_from_db()
    assert not entry.needs_review


def test_same_person_twice_in_a_year_is_refused(world: World) -> None:
    actor = get_actor(world.user("board_officer_a"))
    gakureibo_entry_create(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR, data=entrant())
    with pytest.raises(ValidationFailed) as caught:
        gakureibo_entry_create(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR, data=entrant())
    assert "person_id" in caught.value.errors
    assert GakureiboEntry.objects.count() == 1


def test_another_boards_officer_and_school_staff_cannot_touch_the_register(world: World) -> None:
    officer_a = get_actor(world.user("board_officer_a"))
    entry = gakureibo_entry_create(actor=officer_a, board_id=world.board_a.pk, fiscal_year=YEAR, data=entrant())
    officer_b = get_actor(world.user("board_officer_b"))
    with pytest.raises(NotFoundOrNoAccess):
        gakureibo_entry_create(actor=officer_b, board_id=world.board_a.pk, fiscal_year=YEAR, data=entrant("2"))
    with pytest.raises(NotFoundOrNoAccess):
        gakureibo_entry_update(actor=officer_b, entry_id=entry.pk, data=entrant(address="x"))
    with pytest.raises(NotFoundOrNoAccess):
        gakureibo_entry_designate(actor=officer_b, entry_id=entry.pk, school_id=world.school_b.pk)
    with pytest.raises(PermissionDeniedError):
        gakureibo_entry_update(actor=get_actor(world.user("principal_a")), entry_id=entry.pk, data=entrant())


def test_designation_of_another_boards_school_is_out_of_district(world: World) -> None:
    actor = get_actor(world.user("board_officer_a"))
    entry = gakureibo_entry_create(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR, data=entrant(),
                                   designated_school_id=world.school_a.pk)
    assert entry.designated_school_id == world.school_a.pk and not entry.out_of_district
    gakureibo_entry_designate(actor=actor, entry_id=entry.pk, school_id=world.school_b.pk, special_needs=True)
    entry.refresh_from_db()
    assert entry.designated_school_id == world.school_b.pk and entry.out_of_district and entry.special_needs
    assert AuditEvent.objects.filter(action="rosters.gakureibo_entry.designated").count() == 1


def test_a_junior_high_cannot_be_designated_for_an_entrant(world: World) -> None:
    actor = get_actor(world.user("board_officer_a"))
    entry = gakureibo_entry_create(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR, data=entrant())
    with pytest.raises(ValidationFailed):
        gakureibo_entry_designate(actor=actor, entry_id=entry.pk, school_id=world.school_a2.pk)


def test_bulk_designation_moves_the_selected_entries_only(world: World) -> None:
    actor = get_actor(world.user("board_officer_a"))
    entries = [
        gakureibo_entry_create(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR, data=entrant(str(n)))
        for n in range(1, 4)
    ]
    changed = gakureibo_entries_designate(actor=actor, board_id=world.board_a.pk,
                                          entry_ids=[str(e.pk) for e in entries[:2]], school_id=world.school_a.pk)
    assert changed == 2
    assert [GakureiboEntry.objects.get(pk=e.pk).designated_school_id for e in entries] == [
        world.school_a.pk, world.school_a.pk, None,
    ]
    # Designating again changes nothing.
    assert gakureibo_entries_designate(actor=actor, board_id=world.board_a.pk, entry_ids=[entries[0].pk],
                                       school_id=world.school_a.pk) == 0
    with pytest.raises(NotFoundOrNoAccess):
        gakureibo_entries_designate(actor=get_actor(world.user("board_officer_b")), board_id=world.board_b.pk,
                                    entry_ids=[entries[2].pk], school_id=world.school_b.pk)


def test_status_and_update_are_audited(world: World) -> None:
    actor = get_actor(world.user("board_officer_a"))
    entry = gakureibo_entry_create(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR, data=entrant())
    gakureibo_entry_update(actor=actor, entry_id=entry.pk, data=entrant(address="みどり市西1-1"), reason="転居")
    gakureibo_entry_status_set(actor=actor, entry_id=entry.pk, status=GakureiboEntry.Status.DEFERRED)
    entry.refresh_from_db()
    assert entry.data["address"] == "みどり市西1-1" and entry.status == GakureiboEntry.Status.DEFERRED
    updated = AuditEvent.objects.get(action="rosters.gakureibo_entry.updated")
    assert updated.fields == ["address"]
    assert AuditEvent.objects.filter(action="rosters.gakureibo_entry.status_changed").exists()
    with pytest.raises(ValidationFailed):
        gakureibo_entry_status_set(actor=actor, entry_id=entry.pk, status="bogus")


# --- Board screens ----------------------------------------------------------------------------------------------

def test_register_page_lists_counts_and_filters(world: World, signed_in: Any) -> None:
    actor = get_actor(world.user("board_officer_a"))
    entry = gakureibo_entry_create(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR, data=entrant(),
                                   designated_school_id=world.school_a.pk)
    gakureibo_entry_create(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR, data=entrant("2"))
    client = signed_in("board_officer_a")
    page = client.get(reverse("rosters:board_entries"), {"year": YEAR})
    assert page.status_code == 200
    html = page.content.decode()
    assert "髙橋" in html and "𠮷乃" in html and world.school_a.name in html and "未指定 1 名" in html
    assert AuditEvent.objects.filter(action="rosters.gakureibo.listed").exists()
    filtered = client.get(reverse("rosters:board_entries"), {"year": YEAR, "only": "undesignated"})
    assert filtered.content.decode().count('name="entries"') == 1
    by_kana = client.get(reverse("rosters:board_entries"), {"year": YEAR, "kana": "たかはし よしの"})
    assert by_kana.content.decode().count('name="entries"') == 2
    edit = client.get(reverse("rosters:board_entry_edit", args=[entry.pk]))
    assert edit.status_code == 200 and "髙橋" in edit.content.decode()


def test_register_pages_are_not_found_for_school_staff_and_other_boards(world: World, signed_in: Any) -> None:
    actor = get_actor(world.user("board_officer_a"))
    entry = gakureibo_entry_create(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR, data=entrant())
    assert signed_in("principal_a").get(reverse("rosters:board_entries")).status_code == 404
    client = signed_in("board_officer_b")
    assert client.get(reverse("rosters:board_entry_edit", args=[entry.pk])).status_code == 404
    assert client.get(reverse("rosters:board_entries"), {"board": world.board_a.pk}).status_code == 404
    response = client.post(reverse("rosters:board_entry_designate", args=[entry.pk]),
                           {"designate-school": world.school_b.pk})
    assert response.status_code == 404


def test_new_entry_form_creates_and_shows_errors_in_japanese(world: World, signed_in: Any) -> None:
    client = signed_in("board_officer_a")
    url = reverse("rosters:board_entry_new") + f"?year={YEAR}"
    assert client.get(url).status_code == 200
    bad = client.post(url, {"person_id": "77", "family_name": "髙橋", "sex": "male", "birth_date": "令和2年13月1日"})
    assert bad.status_code == 200 and "生年月日" in bad.content.decode()
    assert not GakureiboEntry.objects.exists()
    good = client.post(url, {"person_id": "77", "family_name": "山﨑", "given_name": "太郎",
                             "family_name_kana": "やまざき", "given_name_kana": "たろう", "sex": "male",
                             "birth_date": "令和2年5月1日", "designated_school": world.school_a.pk})
    assert good.status_code == 302
    entry = GakureiboEntry.objects.get()
    assert entry.data["family_name"] == "山﨑" and entry.data["birth_date"] == "2020-05-01"
    assert entry.designated_school_id == world.school_a.pk


def test_bulk_designation_through_the_list(world: World, signed_in: Any) -> None:
    actor = get_actor(world.user("board_officer_a"))
    entries = [gakureibo_entry_create(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR,
                                      data=entrant(str(n))) for n in range(3)]
    client = signed_in("board_officer_a")
    response = client.post(reverse("rosters:board_bulk_designate"), {
        "board": world.board_a.pk, "year": YEAR, "school": world.school_a.pk,
        "entries": [str(entries[0].pk), str(entries[1].pk)],
    })
    assert response.status_code == 302
    assert GakureiboEntry.objects.filter(designated_school=world.school_a).count() == 2
    nothing = client.post(reverse("rosters:board_bulk_designate"), {"board": world.board_a.pk, "year": YEAR,
                                                                    "school": world.school_a.pk}, follow=True)
    assert "チェックボックス" in nothing.content.decode()


def test_designate_and_status_forms_on_the_entry_page(world: World, signed_in: Any) -> None:
    actor = get_actor(world.user("board_officer_a"))
    entry = gakureibo_entry_create(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR, data=entrant())
    client = signed_in("board_officer_a")
    response = client.post(reverse("rosters:board_entry_designate", args=[entry.pk]),
                           {"designate-school": world.school_b.pk, "designate-special_needs": "on"})
    assert response.status_code == 302
    entry.refresh_from_db()
    assert entry.designated_school_id == world.school_b.pk and entry.out_of_district and entry.special_needs
    response = client.post(reverse("rosters:board_entry_status", args=[entry.pk]),
                           {"status-status": "moved_out", "status-reason": "市外へ転出"})
    assert response.status_code == 302
    entry.refresh_from_db()
    assert entry.status == GakureiboEntry.Status.MOVED_OUT
