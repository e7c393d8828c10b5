"""A URL configuration for the audit tests only: one view that records an event the way every service does."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.urls import path

from komu.access.scope import get_actor
from komu.audit.services import Scope, audit_record


def record_probe(request: HttpRequest) -> JsonResponse:
    # Views resolve the actor first; that is also what names the acting role in the audit context.
    actor = get_actor(request.user)
    primary = actor.primary
    with transaction.atomic():
        event = audit_record(
            actor=request.user, action="tests.audit.probe", object_type="tests.probe", object_id="1",
            scope=Scope(school_id=primary.school_id if primary else None),
        )
    return JsonResponse({"event_id": event.id})


urlpatterns = [path("probe/", record_probe)]
