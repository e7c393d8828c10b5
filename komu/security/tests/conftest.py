from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from komu.security import keys


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # The shared world creates fifteen users; Argon2 would make every test here wait for it.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def key_file(tmp_path: Path, settings: Any) -> Iterator[Path]:
    """A fresh key file for this test only. Request it before any fixture that writes encrypted rows: rows
    sealed under one key file cannot be opened under another."""
    path = tmp_path / "keys" / "komu-keys.json"
    keys.create_key_file(path)
    settings.KOMU_KEY_FILE = path
    keys.reset_cache()
    yield path
    keys.reset_cache()
