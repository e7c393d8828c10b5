from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from komu.access import roles
from komu.access.scope import get_actor
from komu.audit.selectors import audit_events_for, describe_action
from komu.web.decorators import require_capability


@login_required
@require_capability(roles.AUDIT_VIEW)
def trail(request: HttpRequest) -> HttpResponse:
    """Who did what to whose record, within the viewer's scope; filter by one pupil to see who looked at them."""
    actor = get_actor(request.user)
    object_id = request.GET.get("object", "").strip()[:64]
    if not object_id.isprintable():
        # Object ids are UUIDs or numbers; a control character (PostgreSQL refuses NUL) simply matches nothing.
        object_id = "\uFFFD"
    events = audit_events_for(actor=actor, object_id=object_id)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    rows = [(e, describe_action(e.action)) for e in page.object_list]
    return render(request, "audit/trail.html", {"page_obj": page, "rows": rows, "object_id": object_id})
