"""Prometheus metrics: request latency by route, and figures read from the database at scrape time (the task
queue's depth, imports and approvals by status).

Under gunicorn each worker is its own process: set PROMETHEUS_MULTIPROC_DIR (an empty folder, cleared when the
service starts — deploy/systemd/komu-web@.service does, one folder per instance) and the endpoint adds up every
worker's histograms.
Labels are route names (`attendance:row`), methods and status classes — never a path, a query or anything a
person typed, so no personal data reaches the metrics.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

from django.db import DatabaseError
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector

REQUEST_LATENCY = Histogram(
    "komu_http_request_duration_seconds",
    "Time from request to response, by route name, method and status class.",
    ["route", "method", "status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)


def observe_request(*, route: str, method: str, status: int, seconds: float) -> None:
    REQUEST_LATENCY.labels(route=route, method=method, status=f"{status // 100}xx").observe(seconds)


def _count_by(model: Any, field: str) -> Iterable[tuple[str, int]]:
    from django.db.models import Count

    rows = model.objects.using("default").values_list(field).annotate(n=Count("pk")).order_by()
    return [(str(value), int(n)) for value, n in rows]


class DatabaseCollector(Collector):
    """Figures read at scrape time from the primary, so every process reports the same truth."""

    def collect(self) -> Iterator[Metric]:
        from django.utils import timezone
        from django_tasks_db.models import DBTaskResult

        from komu.approvals.models import ApprovalRequest
        from komu.rosters.models import GakureiboImport

        up = GaugeMetricFamily("komu_database_up", "1 when the primary database answered the scrape.")
        try:
            depth = DBTaskResult.objects.using("default").ready().count()
            running = DBTaskResult.objects.using("default").running().count()
            oldest = (
                DBTaskResult.objects.using("default").ready().order_by("enqueued_at")
                .values_list("enqueued_at", flat=True).first()
            )
            imports = _count_by(GakureiboImport, "status")
            approvals = _count_by(ApprovalRequest, "status")
        except DatabaseError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        queue = GaugeMetricFamily("komu_task_queue_depth", "Background tasks ready and waiting for a worker.")
        queue.add_metric([], depth)
        yield queue
        run = GaugeMetricFamily("komu_task_running", "Background tasks a worker is running now.")
        run.add_metric([], running)
        yield run
        age = GaugeMetricFamily("komu_task_queue_oldest_seconds", "Age of the oldest waiting task (0 when none).")
        age.add_metric([], (timezone.now() - oldest).total_seconds() if oldest else 0.0)
        yield age
        imp = GaugeMetricFamily("komu_gakureibo_imports", "学齢簿 imports by status.", labels=["status"])
        for status, n in imports:
            imp.add_metric([status], n)
        yield imp
        appr = GaugeMetricFamily("komu_approval_requests", "Approval requests (決裁) by status.", labels=["status"])
        for status, n in approvals:
            appr.add_metric([status], n)
        yield appr


def render_latest() -> bytes:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        for collector in (REQUEST_LATENCY,):
            registry.register(collector)
    registry.register(DatabaseCollector())
    return generate_latest(registry)


__all__ = ["REGISTRY", "observe_request", "render_latest"]
