"""OneRoster screens: export for board and school administrators, import and API clients for the board."""

from __future__ import annotations

import datetime
import tempfile
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from komu.access import roles
from komu.access.scope import Actor, get_actor
from komu.accounts.views import reauth_required
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.oneroster import bundle, selectors, services
from komu.oneroster.export import SPOOL_BYTES
from komu.oneroster.forms import ClientForm, ExportForm, ImportForm
from komu.oneroster.importer import roster_import
from komu.web.decorators import require_capability


def _put_errors(form: forms.Form, exc: ValidationFailed) -> None:
    if not exc.errors:
        form.add_error(None, str(exc))
    for name, errors in exc.errors.items():
        for error in errors:
            form.add_error(name if name in form.fields else None, error)


def _targets(actor: Actor) -> list[tuple[str, str]]:
    choices = [(f"board:{b.code}", _("%(name)s の全学校（%(code)s）") % {"name": b.name, "code": b.code})
               for b in selectors.export_boards(actor=actor)]
    choices += [(f"school:{s.code}", f"{s.name}（{s.code}）") for s in selectors.export_schools(actor=actor)]
    return choices


def _crumbs(label: str) -> list[dict[str, str]]:
    return [{"label": _("OneRoster 連携"), "url": reverse("oneroster:export")}, {"label": label, "url": ""}]


@login_required
@require_capability(roles.ONEROSTER_EXPORT)
@reauth_required
def export(request: HttpRequest) -> HttpResponse:
    """Download the roster of a board or a school as a OneRoster 1.2 (Japan Profile) zip, bulk or delta. A bulk
    disclosure: step-up re-authentication first (domain.md §6, ASVS level 3)."""
    actor = get_actor(request.user)
    targets = _targets(actor)
    form = ExportForm(request.POST or None, targets=targets)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        kind, _sep, code = data["target"].partition(":")
        since: datetime.datetime | None = data["since"] if data["mode"] == "delta" else None
        try:
            scope = selectors.export_scope_for(actor=actor, board_code=code if kind == "board" else "",
                                               school_code=code if kind == "school" else "")
            result = services.roster_export(actor=actor, roster_scope=scope, since=since, reason=data["reason"])
        except NotFoundOrNoAccess:
            raise Http404 from None
        except PermissionDeniedError as exc:
            form.add_error(None, str(exc))
        except ValidationFailed as exc:
            _put_errors(form, exc)
        else:
            stamp = timezone.localtime().strftime("%Y%m%d%H%M")
            # The CSV files are spooled to disk; only the compressed zip is held (~100 bytes per pupil).
            with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as archive:
                try:
                    result.parts.write_zip(archive)
                finally:
                    result.parts.close()
                archive.seek(0)
                response = HttpResponse(archive.read(), content_type="application/zip")
            response["Content-Disposition"] = f'attachment; filename="oneroster_{code}_{result.mode}_{stamp}.zip"'
            response["Cache-Control"] = "no-store"
            return response
    return render(request, "oneroster/export.html", {
        "form": form, "has_targets": bool(targets), "breadcrumbs": _crumbs(_("名簿の出力（OneRoster）")),
        "can_import": actor.has(roles.ONEROSTER_IMPORT), "can_clients": actor.has(roles.ONEROSTER_CLIENTS),
    }, status=400 if form.errors else 200)


@login_required
@require_capability(roles.ONEROSTER_IMPORT)
def import_bundle(request: HttpRequest) -> HttpResponse:
    """Validate an uploaded OneRoster zip and (unless a dry run) apply it all or nothing."""
    actor = get_actor(request.user)
    form = ImportForm(request.POST or None, request.FILES or None)
    report = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["bundle"]
        if upload.size > bundle.MAX_FILE_BYTES:
            form.add_error("bundle", _("ファイルが大きすぎます（200MB まで）。"))
        else:
            try:
                files = bundle.read_zip(upload.read())
            except bundle.BundleReadError as exc:
                form.add_error("bundle", str(exc))
            else:
                try:
                    report = roster_import(actor=actor, files=files, dry_run=form.cleaned_data["dry_run"])
                except PermissionDeniedError as exc:
                    form.add_error(None, str(exc))
    return render(request, "oneroster/import.html", {
        "form": form, "report": report, "breadcrumbs": _crumbs(_("名簿の取込（OneRoster）")),
    }, status=400 if form.errors or (report is not None and report.errors) else 200)


@login_required
@require_capability(roles.ONEROSTER_CLIENTS)
@reauth_required
def clients(request: HttpRequest) -> HttpResponse:
    """Register learning portals' API clients for the board's schools; the secret is shown once."""
    actor = get_actor(request.user)
    boards = selectors.client_boards(actor=actor)
    if not boards:
        raise Http404
    board = boards[0]
    school_choices = [(str(s.pk), f"{s.name}（{s.code}）") for s in selectors.client_school_choices(board=board)]
    form = ClientForm(request.POST or None, schools=school_choices)
    issued = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            issued = services.client_create(actor=actor, board_id=board.pk, name=data["name"],
                                            school_ids=[int(s) for s in data["schools"]], scopes=data["scopes"],
                                            rate_limit_per_minute=data["rate_limit_per_minute"])
        except PermissionDeniedError as exc:
            form.add_error(None, str(exc))
        except ValidationFailed as exc:
            _put_errors(form, exc)
        else:
            form = ClientForm(schools=school_choices)
    context: dict[str, Any] = {
        "form": form, "board": board, "clients": selectors.client_list(actor=actor), "issued": issued,
        "token_url": request.build_absolute_uri(reverse("oneroster_token")),
        "base_url": request.build_absolute_uri("/ims/oneroster/rostering/v1p2"),
        "breadcrumbs": _crumbs(_("API 接続先（OneRoster）")),
    }
    return render(request, "oneroster/clients.html", context, status=400 if form.errors else 200)


@login_required
@require_capability(roles.ONEROSTER_CLIENTS)
@require_http_methods(["GET", "POST"])
def client_revoke(request: HttpRequest, client_id: int) -> HttpResponse:
    """Confirm (GET), then stop a client (POST): its tokens stop working at once."""
    actor = get_actor(request.user)
    try:
        if request.method == "GET":
            client = selectors.client_get_for(actor=actor, client_id=client_id)
            return render(request, "oneroster/client_revoke.html", {
                "client": client, "breadcrumbs": _crumbs(_("接続先の停止"))})
        client = services.client_revoke(actor=actor, client_id=client_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    messages.success(request, _("「%(name)s」の接続を停止しました。発行済みのトークンも使えなくなりました。") % {"name": client.name})
    return redirect("oneroster:clients")
