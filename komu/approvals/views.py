"""決裁 screens: the inbox, one request with its seals and history, approve / return / withdraw, one-click
verification of every seal, and the school's chains and delegations (principal and vice-principal).

Thin: reads through komu.approvals.selectors, writes through komu.approvals.services; anything out of scope is 404.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from komu.access import roles
from komu.access.scope import get_actor
from komu.approvals import registry, selectors, services
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.web.decorators import require_capability


class DecisionForm(forms.Form):
    comment = forms.CharField(
        label=gettext_lazy("コメント"), required=False, max_length=services.MAX_COMMENT,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("差し戻すときは理由を必ず書いてください。申請者に表示されます。"),
    )


class ChainForm(forms.Form):
    """Up to five ordered steps; an empty step ends the chain."""

    def __init__(self, *args: Any, initial_roles: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [("", _("（なし）"))] + [(r, selectors.role_label(r)) for r in selectors.CHAIN_ROLES]
        initial_roles = initial_roles or []
        for i in range(services.MAX_STEPS):
            self.fields[f"step_{i}"] = forms.ChoiceField(
                label=_("%(n)d段目") % {"n": i + 1}, choices=choices, required=i == 0,
                initial=initial_roles[i] if i < len(initial_roles) else "",
            )

    def step_roles(self) -> list[str]:
        return [self.cleaned_data[f"step_{i}"] for i in range(services.MAX_STEPS) if self.cleaned_data.get(f"step_{i}")]


class DelegationForm(forms.Form):
    delegator = forms.ChoiceField(label=gettext_lazy("元の決裁者（不在になる人）"))
    delegate = forms.ChoiceField(label=gettext_lazy("代決者"))
    start_date = forms.DateField(label=gettext_lazy("開始日"), widget=forms.DateInput(attrs={"type": "date"}))
    end_date = forms.DateField(label=gettext_lazy("終了日"), widget=forms.DateInput(attrs={"type": "date"}))
    document_type = forms.ChoiceField(label=gettext_lazy("文書の種類"), required=False)

    def __init__(self, *args: Any, staff: list[selectors.StaffChoice], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        people = [("", _("選んでください"))] + [(str(s.user_id), s.label) for s in staff]
        for name in ("delegator", "delegate"):
            field = self.fields[name]
            assert isinstance(field, forms.ChoiceField)
            field.choices = people
        kinds = self.fields["document_type"]
        assert isinstance(kinds, forms.ChoiceField)
        kinds.choices = [("", _("すべての文書"))] + [(d.code, d.display_label) for d in registry.all_types()]


def _next_or(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return fallback


@login_required
@require_capability(roles.APPROVALS_USE)
def inbox(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request.user)
    return render(request, "approvals/inbox.html", {
        "inbox": selectors.inbox_for(actor=actor),
        "can_configure": actor.has(roles.APPROVALS_CONFIGURE),
        "breadcrumbs": [{"label": _("決裁"), "url": ""}],
    })


def _detail_context(request: HttpRequest, request_id: int, **extra: Any) -> dict[str, Any]:
    actor = get_actor(request.user)
    try:
        detail = selectors.request_get_for(actor=actor, request_id=request_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    return {
        "detail": detail,
        "form": extra.pop("form", None) or DecisionForm(),
        "breadcrumbs": [{"label": _("決裁"), "url": reverse("approvals:inbox")},
                        {"label": detail.request.title, "url": ""}],
        **extra,
    }


@login_required
@require_capability(roles.APPROVALS_USE)
def detail(request: HttpRequest, request_id: int) -> HttpResponse:
    return render(request, "approvals/detail.html", _detail_context(request, request_id))


def _decide(request: HttpRequest, request_id: int, action: str) -> HttpResponse:
    actor = get_actor(request.user)
    form = DecisionForm(request.POST)
    fallback = reverse("approvals:detail", args=[request_id])
    if not form.is_valid():
        return render(request, "approvals/detail.html", _detail_context(request, request_id, form=form), status=400)
    comment = form.cleaned_data["comment"]
    try:
        if action == "approve":
            done = services.request_approve(actor=actor, request_id=request_id, comment=comment)
            msg = (_("承認しました（電子印を押しました）。決裁が完了しました。") if done.status == done.Status.APPROVED
                   else _("承認しました（電子印を押しました）。次の決裁者に回りました。"))
        elif action == "return":
            services.request_return(actor=actor, request_id=request_id, comment=comment)
            msg = _("差し戻しました。申請者に理由が表示されます。")
        else:
            services.request_withdraw(actor=actor, request_id=request_id, comment=comment)
            msg = _("申請を取り下げました。")
    except NotFoundOrNoAccess:
        raise Http404 from None
    except (PermissionDeniedError, ValidationFailed) as exc:
        if isinstance(exc, ValidationFailed):
            for message_list in exc.errors.values():
                for message in message_list:
                    form.add_error("comment" if "comment" in form.fields else None, message)
            if not exc.errors:
                form.add_error(None, str(exc))
        else:
            form.add_error(None, str(exc))
        return render(request, "approvals/detail.html", _detail_context(request, request_id, form=form), status=400)
    messages.success(request, msg)
    return redirect(_next_or(request, fallback))


@login_required
@require_capability(roles.APPROVALS_USE)
@require_POST
def approve(request: HttpRequest, request_id: int) -> HttpResponse:
    return _decide(request, request_id, "approve")


@login_required
@require_capability(roles.APPROVALS_USE)
@require_POST
def send_back(request: HttpRequest, request_id: int) -> HttpResponse:
    return _decide(request, request_id, "return")


@login_required
@require_capability(roles.APPROVALS_USE)
@require_POST
def withdraw(request: HttpRequest, request_id: int) -> HttpResponse:
    return _decide(request, request_id, "withdraw")


@login_required
@require_capability(roles.APPROVALS_USE)
@require_POST
def verify(request: HttpRequest, request_id: int) -> HttpResponse:
    """「検証」: every seal of the document, 有効/無効 with the reason. htmx swaps in the result; without
    JavaScript the whole page comes back with it."""
    actor = get_actor(request.user)
    try:
        checks = selectors.request_verify_for(actor=actor, request_id=request_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    if request.headers.get("HX-Request"):
        return render(request, "approvals/partials/verify_result.html", {"checks": checks})
    return render(request, "approvals/detail.html", _detail_context(request, request_id, checks=checks))


# --- Settings --------------------------------------------------------------------------------------------------

@login_required
@require_capability(roles.APPROVALS_CONFIGURE)
def settings_index(request: HttpRequest) -> HttpResponse:
    schools = list(selectors.configurable_schools(get_actor(request.user)))
    if len(schools) == 1:
        return redirect("approvals:settings_school", school_id=schools[0].pk)
    return render(request, "approvals/settings_index.html", {
        "schools": schools,
        "breadcrumbs": [{"label": _("決裁"), "url": reverse("approvals:inbox")}, {"label": _("決裁の設定"), "url": ""}],
    })


def _settings_context(request: HttpRequest, school_id: int, **extra: Any) -> dict[str, Any]:
    actor = get_actor(request.user)
    try:
        school, chains = selectors.chain_settings_for(actor=actor, school_id=school_id)
        staff = selectors.staff_choices(actor=actor, school_id=school_id)
        delegations = selectors.delegations_for(actor=actor, school_id=school_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    chain_forms = extra.pop("chain_forms", {})
    return {
        "school": school,
        "chains": [(c, chain_forms.get(c.document_type) or ChainForm(initial_roles=c.roles, prefix=c.document_type))
                   for c in chains],
        "delegations": delegations,
        "delegation_form": extra.pop("delegation_form", None) or DelegationForm(
            staff=staff, initial={"start_date": timezone.localdate()}
        ),
        "today": timezone.localdate(),
        "breadcrumbs": [{"label": _("決裁"), "url": reverse("approvals:inbox")},
                        {"label": _("決裁の設定（%(school)s）") % {"school": school.name}, "url": ""}],
        **extra,
    }


@login_required
@require_capability(roles.APPROVALS_CONFIGURE)
def settings_school(request: HttpRequest, school_id: int) -> HttpResponse:
    return render(request, "approvals/settings.html", _settings_context(request, school_id))


@login_required
@require_capability(roles.APPROVALS_CONFIGURE)
@require_POST
def chain_edit(request: HttpRequest, school_id: int, document_type: str) -> HttpResponse:
    actor = get_actor(request.user)
    form = ChainForm(request.POST, prefix=document_type)
    if form.is_valid():
        try:
            services.chain_update(actor=actor, school_id=school_id, document_type=document_type,
                                  step_roles=form.step_roles())
        except NotFoundOrNoAccess:
            raise Http404 from None
        except ValidationFailed as exc:
            for message in exc.errors.get("steps", [str(exc)]):
                form.add_error(None, message)
        else:
            messages.success(request, _("決裁ルートを保存しました。これからの申請に使われます。"))
            return redirect("approvals:settings_school", school_id=school_id)
    context = _settings_context(request, school_id, chain_forms={document_type: form})
    return render(request, "approvals/settings.html", context, status=400)


@login_required
@require_capability(roles.APPROVALS_CONFIGURE)
@require_POST
def delegation_add(request: HttpRequest, school_id: int) -> HttpResponse:
    actor = get_actor(request.user)
    try:
        staff = selectors.staff_choices(actor=actor, school_id=school_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    form = DelegationForm(request.POST, staff=staff)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.delegation_create(
                actor=actor, school_id=school_id, delegator_id=data["delegator"], delegate_id=data["delegate"],
                start_date=data["start_date"], end_date=data["end_date"], document_type=data["document_type"],
            )
        except NotFoundOrNoAccess:
            raise Http404 from None
        except ValidationFailed as exc:
            for name, errors in exc.errors.items():
                for message in errors:
                    form.add_error(name if name in form.fields else None, message)
        else:
            messages.success(request, _("代決を設定しました。"))
            return redirect("approvals:settings_school", school_id=school_id)
    return render(request, "approvals/settings.html",
                  _settings_context(request, school_id, delegation_form=form), status=400)


@login_required
@require_capability(roles.APPROVALS_CONFIGURE)
@require_POST
def delegation_end(request: HttpRequest, school_id: int, delegation_id: int) -> HttpResponse:
    try:
        services.delegation_end(actor=get_actor(request.user), delegation_id=delegation_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    messages.success(request, _("代決を終了しました。"))
    return redirect("approvals:settings_school", school_id=school_id)
