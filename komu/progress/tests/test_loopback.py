"""Federation on loopback: the hub is this test's live server (its own database), the member is a second Komu
process with its own KOMU_VAR_DIR (SQLite database and key file), started as `komu ...` commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from komu.progress import services
from komu.progress.models import FederationSnapshot, IndicatorValue, Rollup

MEMBER_DATA = """
import datetime
from django.utils import timezone
from komu.directory.models import Board, Prefecture, School
from komu.core.codes import make_school_code
from komu.progress.models import IndicatorValue
pref = Prefecture.objects.get(code="27")
board = Board.objects.create(code="279001", name="連携市教育委員会", kind="municipal", prefecture=pref)
for i in range(12):
    code = make_school_code("B1", "27", "2", f"{i + 1:07d}")
    School.objects.create(code=code, name=f"連携市立第{i + 1}小学校", school_type="B1", board=board, prefecture=pref)
    IndicatorValue.objects.create(school_code=code, school_name=f"連携市立第{i + 1}小学校", board_code="279001",
        board_name="連携市教育委員会", prefecture_code="27", month=datetime.date(2026, 10, 1),
        indicator="comm_digital", numerator=9, denominator=12, measured_at=timezone.now())
"""


def _komu(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "komu", *args], env=env, capture_output=True, text=True,
                          timeout=180, check=False)


@pytest.fixture
def member_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KOMU_", "DJANGO_")) and k not in ("PYTEST_CURRENT_TEST",)}
    env.update({"KOMU_VAR_DIR": str(tmp_path / "member"), "DJANGO_SETTINGS_MODULE": "komu.settings"})
    (tmp_path / "member").mkdir()
    assert _komu(env, "migrate", "-v0").returncode == 0
    made = _komu(env, "shell", "-c", MEMBER_DATA)
    assert made.returncode == 0, made.stderr
    return env


@pytest.mark.django_db(transaction=True)
def test_a_member_pushes_a_signed_snapshot_to_the_hub(live_server: Any, member_env: dict[str, str],
                                                      tmp_path: Path) -> None:
    key = _komu(member_env, "progress", "public-key")
    assert key.returncode == 0, key.stderr
    services.federation_member_register(actor=None, code="renkei", name="連携市", public_keyset=key.stdout)

    pushed = _komu(member_env, "progress", "push", "--hub", live_server.url, "--month", "2026-10")
    assert pushed.returncode == 0, pushed.stderr
    assert "stored" in pushed.stdout
    assert IndicatorValue.objects.filter(source="renkei").count() == 12
    nation = Rollup.objects.get(level="nation", key="JP", indicator="comm_digital", month="2026-10-01")
    assert (nation.numerator, nation.denominator, nation.schools) == (108, 144, 12)

    # A second push is a new sequence and replaces the month's values (idempotent storage).
    again = _komu(member_env, "progress", "push", "--hub", live_server.url, "--month", "2026-10")
    assert again.returncode == 0, again.stderr
    assert FederationSnapshot.objects.count() == 2
    assert IndicatorValue.objects.filter(source="renkei").count() == 12


@pytest.mark.django_db(transaction=True)
def test_an_unregistered_member_is_refused(live_server: Any, member_env: dict[str, str]) -> None:
    pushed = _komu(member_env, "progress", "push", "--hub", live_server.url, "--month", "2026-10")
    assert pushed.returncode != 0
    assert "403" in pushed.stderr
    assert not IndicatorValue.objects.exists()
