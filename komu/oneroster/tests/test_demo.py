"""The demo municipality's export passes the import's own validation (its full round trip through an empty
database was run by hand with `komu oneroster export/import`: byte-identical, see the app's README)."""

from __future__ import annotations

import csv
import io

import pytest

from komu.demo.builder import build_demo
from komu.directory.models import Board, School
from komu.oneroster import bundle
from komu.oneroster.selectors import export_scope_for
from komu.oneroster.services import console_actor, roster_export


@pytest.mark.django_db
def test_the_demo_municipalitys_export_passes_the_japan_profile_validation() -> None:
    build_demo(seed=7)
    board = Board.objects.filter(schools__isnull=False).distinct().get()
    actor = console_actor(board_ids=[board.pk])
    result = roster_export(actor=actor, roster_scope=export_scope_for(actor=actor, board_code=board.code),
                           since=None, reason="デモの検証")
    parsed = bundle.validate_bundle(result.files)
    assert parsed.ok, parsed.errors[:5]
    users = list(csv.DictReader(io.StringIO(result.files["users.csv"].decode())))
    assert len(users) > 900 and result.skipped_staff == 0
    orgs = list(csv.DictReader(io.StringIO(result.files["orgs.csv"].decode())))
    assert {o["identifier"] for o in orgs if o["type"] == "school"} == set(
        School.objects.filter(board=board).values_list("code", flat=True))
