from __future__ import annotations

from typing import Any

import pytest

from komu.testing.world import World, build_world, login_verified


@pytest.fixture(autouse=True, scope="session")
def _allow_audit_flush() -> Any:
    """Transactional tests empty every table between tests; the audit table's triggers allow that only through
    the purge switch. Tests of the triggers themselves turn it off (komu.audit.guard.purge_window(False))."""
    from komu.audit import guard

    guard.set_purge_allowed(True)
    yield
    guard.set_purge_allowed(False)


@pytest.fixture
def world(db: None) -> World:
    return build_world()


@pytest.fixture
def signed_in(client: Any, world: World) -> Any:
    """signed_in("principal_a") → a test client signed in (password + MFA) as that persona."""

    def _as(name: str) -> Any:
        login_verified(client, world.user(name))
        return client

    return _as
