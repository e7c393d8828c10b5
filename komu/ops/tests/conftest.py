"""The replica and fault tests start their own PostgreSQL clusters and servers: slow, so they run only when
asked (`make test-replica`, which CI runs) — KOMU_TEST_CLUSTERS=1 — and never in the plain `make test`."""

from __future__ import annotations

import os

import pytest

from komu.ops.tests import pgcluster


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "clusters: starts its own PostgreSQL clusters (make test-replica)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = os.environ.get("KOMU_TEST_CLUSTERS") == "1"
    missing = pgcluster.available()
    for item in items:
        if "clusters" not in item.keywords:
            continue
        if not wanted:
            item.add_marker(pytest.mark.skip(reason="starts PostgreSQL clusters: run with `make test-replica`"))
        elif missing:
            item.add_marker(pytest.mark.skip(reason=missing))
