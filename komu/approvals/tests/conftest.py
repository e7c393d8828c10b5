from __future__ import annotations

from typing import Any

import pytest

from komu.approvals.tests.documents import TERM_DOCUMENT  # noqa: F401  (registers the test document type)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # The shared world creates many users; Argon2 would make every test here wait for it.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
