"""The home page shows the 学齢簿, roster, placement and transfer to-dos to the people who act on them."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from komu.access.scope import get_actor
from komu.rosters.models import Roster
from komu.rosters.services.rosters import default_deadline, roster_accept, roster_send
from komu.rosters.tests.test_rosters import YEAR, make_entries, officer
from komu.testing.world import World

pytestmark = pytest.mark.django_db


def test_home_pages_walk_the_roster_from_board_to_placement(world: World, signed_in: Any) -> None:
    entries = make_entries(world, count=2)
    board = signed_in("board_officer_a")
    page = board.get(reverse("web:home")).content.decode()
    assert "入学者名簿が未送付の学校 1校" in page
    assert reverse("rosters:board_entries") in page  # the navigation
    roster_send(actor=officer(world), board_id=world.board_a.pk, fiscal_year=YEAR, school_ids=[world.school_a.pk],
                deadline=default_deadline(YEAR))
    roster = Roster.objects.get(school=world.school_a, fiscal_year=YEAR)
    admin = signed_in("school_admin_a")
    page = admin.get(reverse("web:home")).content.decode()
    assert "入学者名簿が届いています（1件）" in page
    assert "学級編制待ち" not in page
    roster_accept(actor=get_actor(world.user("school_admin_a")), roster_id=roster.pk)
    page = admin.get(reverse("web:home")).content.decode()
    assert "入学者名簿が届いています" not in page
    assert f"学級編制待ちの児童生徒が{len(entries)}名います" in page
    # Another school's staff see none of it.
    other = signed_in("principal_b").get(reverse("web:home")).content.decode()
    assert "入学者名簿が届いています" not in other and "学級編制待ち" not in other
