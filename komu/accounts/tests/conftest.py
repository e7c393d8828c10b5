from __future__ import annotations

from typing import Any

import pytest

from komu.accounts.models import User
from komu.testing.world import make_user


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """Argon2 (the production hasher, set in komu.settings) costs ~0.4 s per hash; these tests sign in dozens
    of times. Hashing strength is not what they test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def staff(db: None) -> User:
    """A teacher who enrolled an authenticator app on an earlier sign-in."""
    return make_user("t-tanaka", display_name="田中 花子")


@pytest.fixture
def new_staff(db: None) -> User:
    """A teacher signing in for the first time: no second factor yet."""
    return make_user("t-suzuki", display_name="鈴木 一郎", totp=False)


@pytest.fixture
def guardian(db: None) -> User:
    return make_user("g-sato", kind=User.Kind.GUARDIAN, display_name="佐藤 陽子")
