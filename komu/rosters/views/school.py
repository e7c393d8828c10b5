"""School screens of the 入学者名簿: the inbox of received rosters and amendments, one roster with every row
validated (opening it records 開封), accepting it after a confirmation of what will be created, and taking an
amendment (反映) shown as a labelled diff.

Thin: reads through komu.rosters.selectors.rosters, writes through komu.rosters.services.rosters; a roster of
another school answers 404.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from komu.access import roles
from komu.access.scope import get_actor
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.rosters.records import RECORD_LABELS
from komu.rosters.selectors import rosters as selectors
from komu.rosters.services import rosters as services
from komu.web.decorators import require_capability


@login_required
@require_capability(roles.ROSTERS_RECEIVE)
def school_inbox(request: HttpRequest) -> HttpResponse:
    """受信箱: rosters from the board, unopened first in attention, and amendments awaiting 反映."""
    actor = get_actor(request.user)
    inbox = selectors.school_inbox(actor=actor)
    return render(request, "rosters/school_inbox.html", {
        "inbox": inbox, "breadcrumbs": [{"label": _("入学者名簿"), "url": ""}],
    })


@login_required
@require_capability(roles.ROSTERS_RECEIVE)
def school_roster(request: HttpRequest, roster_id: int) -> HttpResponse:
    """One roster: opening it records 開封 (once); every row is shown with its errors and warnings."""
    actor = get_actor(request.user)
    try:
        services.roster_open(actor=actor, roster_id=roster_id)
        detail = selectors.roster_detail(actor=actor, roster_id=roster_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    return render(request, "rosters/school_roster.html", {
        "detail": detail, "roster": detail.roster,
        "breadcrumbs": [{"label": _("入学者名簿"), "url": reverse("rosters:school_inbox")},
                        {"label": detail.roster.school.name, "url": ""}],
    })


@login_required
@require_capability(roles.ROSTERS_RECEIVE)
def school_roster_accept(request: HttpRequest, roster_id: int) -> HttpResponse:
    """受け入れ: GET shows what will be created (N pupils, M guardians, 年度 and grade); POST accepts."""
    actor = get_actor(request.user)
    try:
        detail = selectors.roster_detail(actor=actor, roster_id=roster_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    error = ""
    problems: list[str] = []
    if request.method == "POST":
        try:
            result = services.roster_accept(actor=actor, roster_id=roster_id)
        except NotFoundOrNoAccess:
            raise Http404 from None
        except PermissionDeniedError as exc:
            error = str(exc)
        except ValidationFailed as exc:
            error = str(exc)
            problems = exc.errors.get("entries", [])
        else:
            if result.already_accepted:
                messages.info(request, _("この名簿は受け入れ済みです。"))
            else:
                messages.success(request, _(
                    "受け入れました：児童 %(pupils)d 名、保護者 %(guardians)d 名を登録しました。学級編制で学級に振り分けてください。"
                ) % {"pupils": result.pupils, "guardians": result.guardians})
            return redirect("rosters:school_roster", roster_id=roster_id)
    return render(request, "rosters/school_roster_accept.html", {
        "detail": detail, "roster": detail.roster, "error": error, "problems": problems,
        "breadcrumbs": [{"label": _("入学者名簿"), "url": reverse("rosters:school_inbox")},
                        {"label": detail.roster.school.name,
                         "url": reverse("rosters:school_roster", kwargs={"roster_id": roster_id})},
                        {"label": _("受け入れ"), "url": ""}],
    })


def _back_to_roster(request: HttpRequest) -> HttpResponse:
    """After a refused action on an amendment: the roster page the form was on, else the inbox."""
    roster_id = request.POST.get("roster") or ""
    if roster_id.isdigit():
        return redirect("rosters:school_roster", roster_id=int(roster_id))
    return redirect("rosters:school_inbox")


@login_required
@require_capability(roles.ROSTERS_RECEIVE)
@require_POST
def school_amendment_accept(request: HttpRequest, amendment_id: uuid.UUID) -> HttpResponse:
    """反映: take one amendment (a change, an addition or a removal) into the roster and the registry."""
    actor = get_actor(request.user)
    try:
        amendment = services.roster_amendment_accept(actor=actor, amendment_id=amendment_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    except (ValidationFailed, PermissionDeniedError) as exc:
        messages.error(request, str(exc))
        return _back_to_roster(request)
    problems = amendment.problems
    if problems:
        labels = {**RECORD_LABELS, **services.FLAG_LABELS}
        messages.warning(request, _("変更を反映しましたが、次の項目は反映できませんでした: %(items)s") % {
            "items": " ".join(f"{_(labels.get(key, key))}: {text}" for key, text in problems.items())
        })
    else:
        messages.success(request, _("変更を反映しました。"))
    return redirect("rosters:school_roster", roster_id=amendment.roster_id)


@login_required
@require_capability(roles.ROSTERS_RECEIVE)
@require_POST
def school_amendment_unapplied_resolve(request: HttpRequest, amendment_id: uuid.UUID) -> HttpResponse:
    """対応済みにする: the school says how it handled the parts of a change the registry could not take."""
    actor = get_actor(request.user)
    try:
        amendment = services.roster_amendment_unapplied_resolve(
            actor=actor, amendment_id=amendment_id, note=request.POST.get("note", "")
        )
    except NotFoundOrNoAccess:
        raise Http404 from None
    except (ValidationFailed, PermissionDeniedError) as exc:
        errors = exc.errors if isinstance(exc, ValidationFailed) else {}
        messages.error(request, " ".join(errors.get("note") or [str(exc)]))
        return _back_to_roster(request)
    messages.success(request, _("対応済みにしました。"))
    return redirect("rosters:school_roster", roster_id=amendment.roster_id)


urlpatterns: list[URLPattern] = [
    path("inbox/", school_inbox, name="school_inbox"),
    path("inbox/<int:roster_id>/", school_roster, name="school_roster"),
    path("inbox/<int:roster_id>/accept/", school_roster_accept, name="school_roster_accept"),
    path("inbox/amendments/<uuid:amendment_id>/accept/", school_amendment_accept, name="school_amendment_accept"),
    path("inbox/amendments/<uuid:amendment_id>/resolve/", school_amendment_unapplied_resolve,
         name="school_amendment_unapplied_resolve"),
]
