"""Deployment shape, tested: a PostgreSQL 15 primary and a streaming-replication standby on loopback ports; the
dashboards read from the standby, writes never go there, and a request that wrote reads its own write."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from komu.ops.tests import pgcluster
from komu.ops.tests.stack import ROOT, komu, komu_env


@pytest.fixture
def replicated(tmp_path: Path) -> Iterator[tuple[pgcluster.Clusters, dict[str, str]]]:
    clusters = pgcluster.Clusters()
    try:
        primary = clusters.init_primary()
        primary.psql("CREATE DATABASE komu")
        env = komu_env(tmp_path / "var", primary.url())
        migrated = komu(env, "migrate", "--noinput")
        assert migrated.returncode == 0, migrated.stderr[-3000:]
        setup = subprocess.run([sys.executable, "-m", "komu.ops.tests.replica_probe", "setup"], env=env, cwd=ROOT,
                               capture_output=True, text=True, timeout=300, check=False)
        assert setup.returncode == 0, setup.stderr[-3000:]
        clusters.add_standby()
        clusters.wait_replayed()
        if not Path(pgcluster.PGBOUNCER).exists():
            pytest.skip("pgbouncer is not installed (apt-get install pgbouncer; .ci/run does)")
        # As deployed: the app reaches both through PgBouncer in session pooling.
        bouncer = clusters.add_bouncer()
        yield clusters, komu_env(tmp_path / "var", bouncer.url("komu"), bouncer.url("komu_standby"))
    finally:
        clusters.close()


@pytest.mark.clusters
def test_dashboards_read_from_the_standby_and_writes_stay_on_the_primary(
    replicated: tuple[pgcluster.Clusters, dict[str, str]],
) -> None:
    clusters, env = replicated
    assert clusters.standby is not None
    assert clusters.standby.psql("SELECT pg_is_in_recovery()") == "t"
    assert clusters.primary.psql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") == "1"
    result = subprocess.run([sys.executable, "-m", "komu.ops.tests.replica_probe", "probe"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["standby_in_recovery"] is True
    # With replay paused the standby lacks the row just written: a read that misses it came from the standby.
    assert found["outside_window_reads_primary"] is True
    assert found["window_reads_standby"] is True
    assert found["read_your_own_write"] is True
    assert found["after_write_reads_primary"] is True
    assert found["atomic_reads_primary"] is True
    assert found["dashboard_status"] == 200
    assert found["dashboard_reads_on_standby"] > 0
    assert found["dashboard_writes_on_standby"] == 0
    assert found["save_status"] == 200
    assert found["save_statements_on_standby"] == 0
    assert found["save_written_on_primary"] is True
    assert found["standby_refuses_writes"] is True

    # The background worker comes up in the same shape and runs a task (the monthly partitions) on the primary.
    enqueued = komu(env, "shell", "-v", "0", "-c",
                    "from komu.ops.tasks import ensure_partitions; print(ensure_partitions.enqueue().id)")
    assert enqueued.returncode == 0, enqueued.stderr[-2000:]
    task_id = enqueued.stdout.strip().splitlines()[-1]
    worker = komu(env, "db_worker", "--batch", "--no-startup-delay", "--no-reload", timeout=180)
    assert worker.returncode == 0, worker.stderr[-2000:]
    assert clusters.primary.psql(
        f"SELECT status FROM django_tasks_database_dbtaskresult WHERE id = '{uuid.UUID(task_id)}'", db="komu"
    ) == "SUCCESSFUL"


def test_nothing_changes_without_a_replica_setting() -> None:
    from django.conf import settings
    from django.db import connections

    from komu.ops import routing

    if os.environ.get("KOMU_REPLICA_DATABASE_URL"):
        pytest.skip("a replica is configured for this run")
    assert "replica" not in settings.DATABASES
    assert not getattr(settings, "DATABASE_ROUTERS", [])
    assert not routing.replica_configured()
    assert list(connections) == ["default"]
