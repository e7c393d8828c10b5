from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """The shared `world` hashes fifteen passwords with Argon2 (about a second each on a busy machine); these
    tests never check a password, so a cheap hasher keeps them fast without changing what they test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _uploads_in_tmp(settings: Any, tmp_path: Any) -> None:
    """The bulk load page keeps a previewed file until it is applied; keep those out of var/test."""
    settings.MEDIA_ROOT = tmp_path / "media"
