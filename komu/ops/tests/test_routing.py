"""The router's rules without a standby (the real replication is test_replica.py, `make test-replica`)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from django.test import RequestFactory

from komu.ops import middleware, routing


@pytest.fixture
def replica_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routing, "replica_configured", lambda: True)


def test_reads_outside_a_window_stay_on_the_primary(replica_on: None) -> None:
    router = routing.StandbyRouter()
    assert router.db_for_read(Group) == "default"
    assert router.db_for_write(Group) == "default"


def test_a_window_reads_the_standby_until_the_first_write(replica_on: None) -> None:
    router = routing.StandbyRouter()
    with routing.standby_reads():
        assert router.db_for_read(Group) == "replica"
        assert router.db_for_write(Group) == "default"
        assert router.db_for_read(Group) == "default"  # read-your-own-writes
    with routing.standby_reads():
        assert router.db_for_read(Group) == "replica"  # a new request starts afresh


@pytest.mark.django_db
def test_reads_inside_a_primary_transaction_stay_on_the_primary(replica_on: None) -> None:
    router = routing.StandbyRouter()
    with routing.standby_reads(), transaction.atomic():
        assert router.db_for_read(Group) == "default"


def test_without_a_replica_the_window_changes_nothing() -> None:
    router = routing.StandbyRouter()
    with routing.standby_reads():
        assert router.db_for_read(Group) == "default"


def test_only_the_primary_is_migrated() -> None:
    router = routing.StandbyRouter()
    assert router.allow_migrate("default", "attendance") is True
    assert router.allow_migrate("replica", "attendance") is False


def _view_request(method: str, view_name: str) -> Any:
    request = RequestFactory().generic(method, "/")
    request.resolver_match = type("Match", (), {"view_name": view_name})()
    return request


def test_the_middleware_opens_a_window_only_for_gets_of_dashboards(replica_on: None) -> None:
    mw = middleware.OpsMiddleware(lambda request: None)  # type: ignore[arg-type, return-value]
    get = _view_request("GET", "attendance:overview")
    mw.process_view(get, None, (), {})
    assert getattr(get, "_komu_standby_token", None) is not None
    routing.end_standby_reads(get._komu_standby_token)
    post = _view_request("POST", "attendance:overview")
    mw.process_view(post, None, (), {})
    assert getattr(post, "_komu_standby_token", None) is None
    form = _view_request("GET", "attendance:register")
    mw.process_view(form, None, (), {})
    assert getattr(form, "_komu_standby_token", None) is None
