"""Screens of komu.notices. Thin: reads through selectors / notifications, writes through services."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from komu.access.scope import get_actor
from komu.core.errors import NotFoundOrNoAccess, ValidationFailed
from komu.notices import notifications
from komu.notices.models import NotificationPreference

# --- お知らせ -----------------------------------------------------------------------------------------------------


@login_required
def notification_list(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request.user)
    unread_only = request.GET.get("unread") == "1"
    rows = notifications.notifications_for(actor=actor, unread_only=unread_only, limit=100)
    return render(request, "notices/notification_list.html", {
        "rows": rows, "unread_only": unread_only,
        "unread_count": notifications.notifications_unread_count(actor=actor),
    })


@login_required
def notification_open(request: HttpRequest, notification_id: str) -> HttpResponse:
    try:
        notification = notifications.notification_open(actor=get_actor(request.user), notification_id=notification_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    if not url_has_allowed_host_and_scheme(notification.url, allowed_hosts={request.get_host()}):
        return redirect("notices:notification_list")
    return redirect(notification.url)


@login_required
@require_POST
def notification_read_all(request: HttpRequest) -> HttpResponse:
    count = notifications.notifications_mark_all_read(actor=get_actor(request.user))
    messages.success(request, _("%(count)d 件のお知らせを既読にしました。") % {"count": count})
    return redirect("notices:notification_list")


class PreferenceForm(forms.Form):
    email_mode = forms.ChoiceField(
        label=gettext_lazy("メールでの受け取り方"), widget=forms.RadioSelect,
        choices=NotificationPreference.EmailMode.choices,
        error_messages={"required": gettext_lazy("メール通知の受け取り方を選んでください。"),
                        "invalid_choice": gettext_lazy("メール通知の受け取り方を選んでください。")},
    )


@login_required
@require_http_methods(["GET", "POST"])
def notification_settings(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request.user)
    if request.method == "POST":
        form = PreferenceForm(request.POST)
        if form.is_valid():
            try:
                notifications.notification_preference_set(actor=actor, email_mode=form.cleaned_data["email_mode"])
            except ValidationFailed as exc:
                form.add_error("email_mode", str(exc))
            else:
                messages.success(request, _("通知の設定を保存しました。"))
                return redirect("notices:notification_settings")
    else:
        form = PreferenceForm(initial={"email_mode": notifications.notification_preference_get(actor=actor)})
    return render(request, "notices/notification_settings.html", {"form": form})
