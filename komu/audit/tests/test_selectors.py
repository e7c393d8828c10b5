"""Who may read which part of the audit trail."""

from __future__ import annotations

import pytest
from django.db import transaction

from komu.access.scope import get_actor
from komu.audit.selectors import audit_events_for, describe_action
from komu.audit.services import Scope, audit_record
from komu.directory.models import Role, StaffAssignment
from komu.testing.world import World, make_user


@pytest.fixture
def trail(world: World) -> World:
    """One event per place: each school, each municipal board, the prefectural board, and the system."""
    places = {
        "school_a": Scope(school_id=world.school_a.pk, board_id=world.board_a.pk),
        "school_a2": Scope(school_id=world.school_a2.pk),
        "school_b": Scope(school_id=world.school_b.pk, board_id=world.board_b.pk),
        "board_a": Scope(board_id=world.board_a.pk),
        "board_b": Scope(board_id=world.board_b.pk),
        "pref_board": Scope(board_id=world.pref_board.pk),
        "system": None,
    }
    for name, scope in places.items():
        with transaction.atomic():
            audit_record(actor=None, action=f"tests.at.{name}", object_type="tests.place", object_id=name,
                         scope=scope)
    return world


def _visible(world: World, persona: str) -> set[str]:
    actor = get_actor(world.user(persona))
    return {event.object_id for event in audit_events_for(actor=actor, object_type="tests.place")}


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("principal_a", {"school_a"}),
        ("vice_principal_a", {"school_a"}),
        ("principal_b", {"school_b"}),
        ("board_officer_a", {"school_a", "school_a2", "board_a"}),
        ("board_officer_b", {"school_b", "board_b"}),
        ("operator", {"school_a", "school_a2", "school_b", "board_a", "board_b", "pref_board", "system"}),
        ("teacher_a", set()),
        ("homeroom_a1", set()),
        ("nurse_a", set()),
        ("school_admin_a", set()),
        ("national_analyst", set()),
        ("pref_analyst", set()),
        ("guardian_a", set()),
    ],
)
def test_each_role_sees_the_events_of_its_scope(trail: World, persona: str, expected: set[str]) -> None:
    assert _visible(trail, persona) == expected


def test_a_prefectural_board_officer_sees_the_boards_and_schools_below(trail: World) -> None:
    officer = make_user("pref_board_officer")
    StaffAssignment.objects.create(user=officer, role=Role.BOARD_OFFICER, board=trail.pref_board)
    trail.users["pref_board_officer"] = officer
    assert _visible(trail, "pref_board_officer") == {
        "school_a", "school_a2", "school_b", "board_a", "board_b", "pref_board",
    }


def test_the_trail_for_one_object_lists_only_its_events_newest_first(trail: World) -> None:
    with transaction.atomic():
        audit_record(actor=None, action="tests.again", object_type="tests.place", object_id="school_a",
                     scope=Scope(school_id=trail.school_a.pk))
    actor = get_actor(trail.user("principal_a"))
    events = list(audit_events_for(actor=actor, object_type="tests.place", object_id="school_a"))
    assert [e.action for e in events] == ["tests.again", "tests.at.school_a"]


def test_action_codes_have_japanese_labels_and_unknown_codes_show_as_they_are() -> None:
    assert describe_action("students.student.viewed") == "児童生徒の記録を表示"
    assert describe_action("tests.unknown.code") == "tests.unknown.code"


def test_the_audit_trail_filter_with_a_control_character_matches_nothing(signed_in) -> None:  # type: ignore[no-untyped-def]
    response = signed_in("principal_a").get("/audit/", {"object": "abc\x00def"})
    assert response.status_code == 200
    assert response.context["page_obj"].paginator.count == 0
