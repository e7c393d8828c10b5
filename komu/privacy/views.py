"""Screens of the breach response."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from komu.access import roles
from komu.access.scope import get_actor
from komu.privacy import selectors
from komu.web.decorators import require_capability


@require_capability(roles.PRIVACY_INCIDENTS)
def incident_list(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request.user)
    return render(request, "privacy/incident_list.html", {"rows": selectors.incident_rows(actor)})
