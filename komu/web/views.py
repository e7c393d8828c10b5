from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from komu.access import roles
from komu.access.scope import get_actor
from komu.web import selectors
from komu.web.decorators import require_capability


def healthz(request: HttpRequest) -> HttpResponse:
    """200 when the database answers, 503 when it does not. For load balancers and monitoring."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        return JsonResponse({"status": "unavailable", "database": "unreachable"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


@login_required
def home(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request.user)
    today = timezone.localdate()
    if actor.is_guardian and not actor.has(roles.DIRECTORY_VIEW):
        from komu.students.selectors import children_of

        return render(request, "web/home_guardian.html", {"children": children_of(actor=actor), "today": today})
    return render(request, "web/home.html", {"page": selectors.home_for(actor=actor), "today": today})


@login_required
@require_capability(roles.STATS_VIEW)
def stats(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request.user)
    return render(request, "web/stats.html", {"rows": selectors.stats_for(actor=actor)})
