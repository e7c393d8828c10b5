"""Operations endpoints: /metrics (Prometheus), /readyz (readiness), and the page shown when the database is
unreachable (settings' handler500 turns a database outage into a 503 with Retry-After instead of an error)."""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import sys

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, InterfaceError, OperationalError, connections
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST

from komu.ops import metrics

log = logging.getLogger("komu.ops")

# How long the oldest waiting task may wait before the instance reports itself not ready (no worker running).
QUEUE_STALL_SECONDS = int(os.environ.get("KOMU_READY_QUEUE_STALL_SECONDS", "600"))
RETRY_AFTER_SECONDS = 15


def _metrics_allowed(request: HttpRequest) -> bool:
    """Loopback, the networks in KOMU_METRICS_ALLOWED_NETWORKS, or the bearer token KOMU_METRICS_TOKEN."""
    token = os.environ.get("KOMU_METRICS_TOKEN", "")
    auth = request.headers.get("Authorization", "")
    if token and auth.startswith("Bearer ") and secrets.compare_digest(auth[7:].strip(), token):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if address.is_loopback:
        return True
    for net in getattr(settings, "KOMU_METRICS_ALLOWED_NETWORKS", []):
        try:
            if address in ipaddress.ip_network(net, strict=False):
                return True
        except ValueError:
            continue
    return False


@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    # Anyone else gets the same 404 as for a page that does not exist: the endpoint is not advertised.
    if not _metrics_allowed(request):
        raise Http404
    return HttpResponse(metrics.render_latest(), content_type=CONTENT_TYPE_LATEST)


def _check_database() -> str | None:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        return "unreachable"
    return None


def _check_queue() -> tuple[str | None, int]:
    from django_tasks_db.models import DBTaskResult

    try:
        ready = DBTaskResult.objects.using("default").ready()
        depth = ready.count()
        oldest = ready.order_by("enqueued_at").values_list("enqueued_at", flat=True).first()
    except DatabaseError:
        return "unreachable", 0
    if oldest is not None and (timezone.now() - oldest).total_seconds() > QUEUE_STALL_SECONDS:
        return "stalled", depth
    return None, depth


def _check_keys() -> str | None:
    from komu.security.keys import get_keyring

    try:
        keyring = get_keyring()
        keyring.audit_mac(b"komu-readiness")
    except ImproperlyConfigured:
        return "unusable"
    except OSError:
        return "unreadable"
    return None


@never_cache
def readyz(request: HttpRequest) -> HttpResponse:
    """200 when this instance can serve: database reachable, key file loads, the task queue is moving. The
    answer names each check's state, never a path or a secret."""
    database = _check_database()
    keys = _check_keys()
    queue, depth = _check_queue() if database is None else ("unreachable", 0)
    checks = {"database": database or "ok", "key_file": keys or "ok", "task_queue": queue or "ok"}
    ready = database is None and keys is None and queue is None
    return JsonResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks, "task_queue_depth": depth},
        status=200 if ready else 503,
    )


def database_outage(exc: BaseException | None) -> bool:
    return isinstance(exc, (OperationalError, InterfaceError))


def unavailable_response() -> HttpResponse:
    # Rendered without the request context: the context processors read the database, which is down.
    html = render_to_string("ops/unavailable.html", {"retry_after": RETRY_AFTER_SECONDS})
    response = HttpResponse(html, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: a database outage is a 503 'try again shortly'; anything else the plain 500 page."""
    exc = sys.exc_info()[1]
    if database_outage(exc):
        log.warning("database unavailable", extra={"event": "database_outage"})
        for alias in connections:
            # Drop the broken connection now, so the next request opens a fresh one when the database is back.
            connections[alias].close_if_unusable_or_obsolete()
        return unavailable_response()
    html = render_to_string("ops/server_error.html", {})
    return HttpResponse(html, status=500)
