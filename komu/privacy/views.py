"""Screens of the breach response: the incidents, a new incident (from a lost printout's serial, from the audit
log, or from a school/class selection), the incident with its deadlines and the editable PPC report, the report's
print view, the guardians' letters, and the forced sign-out with password reset of a school's or a board's staff.

Reads through selectors, writes through services; out of scope answers 404."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from komu.access import roles
from komu.access.scope import Actor, get_actor
from komu.accounts.views import reauth_required
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.privacy import forms, retention, selectors, services
from komu.privacy.models import Incident
from komu.web.decorators import require_capability


def _crumbs(*items: tuple[str, str]) -> list[dict[str, str]]:
    return [{"label": _("漏えい等の事案"), "url": reverse("privacy:incident_list")}] + [
        {"label": label, "url": url} for label, url in items]


def _incident(actor: Actor, incident_id: Any) -> Incident:
    try:
        return services.get_incident(actor, incident_id)
    except NotFoundOrNoAccess:
        raise Http404 from None


@login_required
@require_capability(roles.PRIVACY_INCIDENTS)
def incident_list(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request.user)
    return render(request, "privacy/incident_list.html", {
        "rows": selectors.incident_rows(actor), "can_lockout": actor.has(roles.PRIVACY_FORCE_RESET),
        "breadcrumbs": [{"label": _("漏えい等の事案"), "url": ""}],
    })


def _apply_errors(form: forms.IncidentForm, error: ValidationFailed) -> None:
    placed = False
    for name, errs in error.errors.items():
        if name == "fields":
            name = "items"
        if name in form.fields:
            for message in errs:
                form.add_error(name, message)
                placed = True
    if not placed:
        form.add_error(None, str(error))


def _create_from(actor: Actor, form: forms.IncidentForm) -> Incident:
    d = form.cleaned_data
    source = d["source"]
    if source == Incident.Source.DISCLOSURE:
        incident = services.incident_create_from_lost_document(
            actor=actor, serial=d["serial"], found_at=d["found_at"], summary=d["summary"])
        if d["unlawful_purpose"] or d["encrypted"] or d["title"].strip() or d["kind"] != incident.kind:
            values: dict[str, Any] = {"unlawful_purpose": d["unlawful_purpose"], "encrypted": d["encrypted"]}
            if d["title"].strip():
                values["title"] = d["title"]
            incident = services.incident_update_report(actor=actor, incident_id=incident.pk, values=values)
        return incident
    school_id = int(d["school"]) if d.get("school") else None
    if source == Incident.Source.AUDIT:
        persons = services.persons_from_audit(actor, user_id=d["account"], start=d["start"], end=d["end"])
        detail = {"user_id": d["account"], "start": d["start"].isoformat(), "end": d["end"].isoformat()}
    else:
        assert school_id is not None
        persons = services.persons_from_query(actor, school_id=school_id, class_ids=[int(c) for c in d["classes"]],
                                              fields=d["items"])
        detail = {"school_id": school_id, "class_ids": ",".join(d["classes"])}
    data = services.IncidentInput(
        title=d["title"], kind=d["kind"], found_at=d["found_at"], unlawful_purpose=d["unlawful_purpose"],
        encrypted=d["encrypted"], summary=d["summary"], school_id=school_id,
    )
    return services.incident_create(actor=actor, data=data, persons=persons, source=source, source_detail=detail)


@login_required
@require_capability(roles.PRIVACY_INCIDENTS)
def incident_new(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request.user)
    choices = {"accounts": selectors.account_choices(actor), "schools": selectors.school_choices(actor),
               "classes": selectors.class_choices(actor)}
    initial = {"found_at": timezone.localtime().replace(second=0, microsecond=0),
               "serial": request.GET.get("serial", "")}
    form = forms.IncidentForm(request.POST or None, initial=initial, **choices)
    if request.method == "POST" and form.is_valid():
        try:
            incident = _create_from(actor, form)
        except NotFoundOrNoAccess:
            form.add_error(None, _("指定した学校・学級・アカウントが見つかりません。"))
        except (ValidationFailed, PermissionDeniedError) as error:
            if isinstance(error, ValidationFailed):
                _apply_errors(form, error)
            else:
                form.add_error(None, str(error))
        else:
            messages.success(request, _("事案を記録しました。対象者は%(n)s人です。") % {"n": incident.person_count})
            return redirect("privacy:incident_detail", incident_id=incident.pk)
    return render(request, "privacy/incident_new.html", {
        "form": form, "breadcrumbs": _crumbs((_("事案の記録"), "")),
    })


@login_required
@require_capability(roles.PRIVACY_INCIDENTS)
def incident_detail(request: HttpRequest, incident_id: str) -> HttpResponse:
    actor = get_actor(request.user)
    incident = _incident(actor, incident_id)
    form = forms.ReportForm(request.POST or None, initial={
        name: getattr(incident, name) for name in (*services.REPORT_FIELDS, "title", "unlawful_purpose",
                                                   "encrypted", "status")})
    if request.method == "POST" and form.is_valid():
        try:
            services.incident_update_report(actor=actor, incident_id=incident.pk, values=form.cleaned_data)
        except ValidationFailed as error:
            for name, errs in error.errors.items():
                for message in errs:
                    form.add_error(name if name in form.fields else None, message)
        else:
            messages.success(request, _("報告書の内容を保存しました。"))
            return redirect("privacy:incident_detail", incident_id=incident.pk)
    return render(request, "privacy/incident_detail.html", {
        "incident": incident, "form": form, "deadlines": selectors.deadlines(incident),
        "report_reasons": selectors.report_required(incident),
        "items": selectors.field_labels(list(incident.data_items)),
        "persons": selectors.affected_persons(actor, incident.pk),
        "can_lockout": actor.has(roles.PRIVACY_FORCE_RESET),
        "breadcrumbs": _crumbs((incident.title, "")),
    })


@login_required
@require_capability(roles.PRIVACY_INCIDENTS)
def incident_report_print(request: HttpRequest, incident_id: str) -> HttpResponse:
    """The PPC report draft as a print view (the browser prints it or saves it as PDF)."""
    actor = get_actor(request.user)
    incident = _incident(actor, incident_id)
    return render(request, "privacy/report_print.html", {
        "incident": incident, "deadlines": selectors.deadlines(incident),
        "items": selectors.field_labels(list(incident.data_items)),
        "report_reasons": selectors.report_required(incident), "today": timezone.localdate(),
    })


@login_required
@require_capability(roles.PRIVACY_INCIDENTS)
def incident_letters(request: HttpRequest, incident_id: str) -> HttpResponse:
    """One printable letter per affected pupil, addressed to the pupil's guardians."""
    actor = get_actor(request.user)
    incident = _incident(actor, incident_id)
    return render(request, "privacy/letters_print.html", {
        "incident": incident, "persons": selectors.affected_persons(actor, incident.pk, with_guardians=True),
        "today": timezone.localdate(),
    })


@login_required
@require_capability(roles.PRIVACY_FORCE_RESET)
@reauth_required
def staff_lockout(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request.user)
    form = forms.LockoutForm(request.POST or None, targets=selectors.lockout_targets(actor))
    incident_id = request.GET.get("incident") or request.POST.get("incident") or None
    if request.method == "POST" and form.is_valid():
        kind, _sep, pk = form.cleaned_data["target"].partition(":")
        try:
            result = services.staff_lockout(
                actor=actor, school_id=int(pk) if kind == "school" else None,
                board_id=int(pk) if kind == "board" else None, reason=form.cleaned_data["reason"],
                incident_id=incident_id)
        except NotFoundOrNoAccess:
            raise Http404 from None
        except ValidationFailed as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _(
                "%(accounts)s件のアカウントをサインアウトさせ、パスワードを無効にしました（セッション%(sessions)s件、"
                "APIトークン%(tokens)s件を失効）。各教職員はパスワード再設定メールから新しいパスワードを設定します。")
                % {"accounts": result.accounts, "sessions": result.sessions, "tokens": result.api_tokens})
            if incident_id:
                return redirect("privacy:incident_detail", incident_id=incident_id)
            return redirect("privacy:incident_list")
    return render(request, "privacy/lockout.html", {
        "form": form, "incident_id": incident_id or "", "breadcrumbs": _crumbs((_("強制サインアウトとパスワード再設定"), "")),
    })


@login_required
@require_capability(roles.SYSTEM_OPERATE)
def retention_schedule(request: HttpRequest) -> HttpResponse:
    """保存期間表: the periods, whether each is removed automatically, and the last runs."""
    actor = get_actor(request.user)
    error_key, error = "", ""
    if request.method == "POST":
        key = request.POST.get("key", "")
        try:
            years = int(request.POST.get("years", ""))
        except ValueError:
            error_key, error = key, _("保存年数を数字で入力してください。")
        else:
            try:
                retention.retention_rule_update(actor=actor, key=key, years=years,
                                                enabled=request.POST.get("enabled") == "on")
            except ValidationFailed as exc:
                error_key, error = key, str(exc)
            else:
                messages.success(request, _("保存期間表を更新しました。"))
                return redirect("privacy:retention")
    return render(request, "privacy/retention.html", {
        "rules": retention.schedule(), "runs": retention.last_runs(10), "error_key": error_key, "error": error,
        "breadcrumbs": [{"label": _("保存期間表"), "url": ""}],
    }, status=400 if error else 200)
