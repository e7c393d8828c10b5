"""One middleware for operations: times every request for the metrics, writes one structured access line (route
name, method, status, duration, request id — never the path or query, which may carry a pupil's id or a name
typed into a search), and opens the standby read window for the dashboards and reports named in
settings.KOMU_STANDBY_VIEWS."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from komu.ops import metrics, routing

log = logging.getLogger("komu.request")

# The read-only dashboards and reports whose GETs may read from the standby (replication lag of a second is
# fine there). A view that writes still works: its first write sends the rest of its reads to the primary.
DEFAULT_STANDBY_VIEWS = frozenset(
    {
        "web:stats",
        "attendance:overview_home",
        "attendance:overview",
        "attendance:class_year",
        "attendance:monthly_index",
        "attendance:monthly_school",
    }
)


def standby_views() -> frozenset[str]:
    configured = getattr(settings, "KOMU_STANDBY_VIEWS", None)
    return frozenset(configured) if configured is not None else DEFAULT_STANDBY_VIEWS


class OpsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = self.get_response(request)
            status = response.status_code
            return response
        finally:
            token = getattr(request, "_komu_standby_token", None)
            if token is not None:
                routing.end_standby_reads(token)
            seconds = time.perf_counter() - started
            match = getattr(request, "resolver_match", None)
            route = match.view_name if match is not None and match.view_name else "unmatched"
            metrics.observe_request(route=route, method=request.method or "", status=status, seconds=seconds)
            log.info(
                "request",
                extra={
                    "route": route,
                    "method": request.method,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 1),
                    "standby": token is not None,
                },
            )

    def process_view(self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any) -> None:
        if request.method not in ("GET", "HEAD") or not routing.replica_configured():
            return
        match = request.resolver_match
        if match is not None and match.view_name in standby_views():
            request._komu_standby_token = routing.begin_standby_reads()  # type: ignore[attr-defined]
