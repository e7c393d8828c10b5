from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from komu.progress import selectors, services
from komu.progress.models import ChecklistItem, FederationMember, IndicatorValue
from komu.progress.tests.conftest import MemberKey, act
from komu.testing.world import World

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command("progress", *args, stdout=out)
    return out.getvalue()


def test_measure_writes_this_months_values(world: World) -> None:
    assert "件の値を計測しました" in _run("measure", "--previous")
    months = set(IndicatorValue.objects.values_list("month", flat=True))
    assert timezone.localdate().replace(day=1) in months and len(months) == 2


def test_measure_refuses_a_malformed_month(world: World) -> None:
    with pytest.raises(CommandError):
        _run("measure", "--month", "2026/10")


def test_load_checklist_and_public_key(world: World, tmp_path: Path) -> None:
    assert "44項目" in _run("load-checklist")
    assert ChecklistItem.objects.count() == 44
    bad = tmp_path / "bad.json"
    bad.write_text('{"edition": "x", "items": [{"code": "1", "audience": "nobody"}]}', encoding="utf-8")
    with pytest.raises(CommandError):
        _run("load-checklist", "--file", str(bad))
    assert "primaryKeyId" in _run("public-key")


def test_register_member_from_a_key_file(world: World, tmp_path: Path) -> None:
    key = tmp_path / "member.json"
    key.write_text(MemberKey().public, encoding="utf-8")
    assert "登録しました" in _run("register-member", "--code", "city-a", "--name", "A市", "--public-key-file", str(key))
    assert FederationMember.objects.get().code == "city-a"
    with pytest.raises(CommandError):
        _run("register-member", "--code", "city-b", "--name", "B市", "--public-key-file", str(tmp_path / "none"))


def test_push_refuses_a_non_http_hub(world: World) -> None:
    with pytest.raises(CommandError):
        _run("push", "--hub", "file:///etc/passwd")


def test_home_tasks_remind_principals_and_boards(world: World) -> None:
    principal = act(world, "principal_a")
    assert any("未提出" in t.title for t in selectors.home_tasks(actor=principal))
    board = act(world, "board_officer_a")
    assert any("学校の提出 0 / 2 校" in t.title for t in selectors.home_tasks(actor=board))
    response = services.checklist_response_open(actor=principal, year=services.fiscal_year_now(),
                                                school_id=world.school_a.pk)
    services.checklist_response_submit(actor=principal, response_id=response.pk)
    assert selectors.home_tasks(actor=principal) == []
    assert any("学校の提出 1 / 2 校" in t.title for t in selectors.home_tasks(actor=board))
    assert selectors.home_tasks(actor=act(world, "teacher_a")) == []
