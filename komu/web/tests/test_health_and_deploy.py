from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.db import OperationalError

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.django_db
def test_healthz_answers_200_when_the_database_is_reachable(client: Any) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


@pytest.mark.django_db
def test_healthz_answers_503_when_the_database_is_down(client: Any) -> None:
    with mock.patch("komu.web.views.connection.cursor", side_effect=OperationalError("connection refused")):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


def _production_env(tmp_path: Path) -> dict[str, str]:
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KOMU_", "PYTEST"))}
    env.update(
        KOMU_VAR_DIR=str(tmp_path / "var"),
        KOMU_KEY_FILE=str(keys / "komu-keys.json"),
        KOMU_SECRET_KEY=secrets.token_urlsafe(60),
        KOMU_ALLOWED_HOSTS="komu.example.jp",
        KOMU_WEBAUTHN_ORIGINS="https://komu.example.jp",
        KOMU_WEBAUTHN_RP_ID="komu.example.jp",
    )
    return env


def _komu(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "komu", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_check_deploy_passes_with_production_variables(tmp_path: Path) -> None:
    env = _production_env(tmp_path)
    assert _komu(env, "keys", "create").returncode == 0
    result = _komu(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_its_key_file(tmp_path: Path) -> None:
    env = _production_env(tmp_path)
    result = _komu(env, "keys", "status")
    assert result.returncode != 0
    assert "鍵ファイル" in result.stderr
