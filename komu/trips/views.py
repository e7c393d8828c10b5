"""校外活動 screens: the list (trips I accompany, trips I manage), setting up and editing a trip, a trip's page (chaperones,
revocation, lost-phone code), the nurse's release of health notes, the chaperone's phone page (small HTML, no
JavaScript) and the lost-phone report (signed in, or with the code and no sign-in)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from komu.access import roles
from komu.access.scope import get_actor
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.trips import selectors, services
from komu.web.decorators import found_or_404, require_capability

_DT = {"type": "datetime-local"}
_DT_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]


class TripForm(forms.Form):
    title = forms.CharField(label=gettext_lazy("名称"), max_length=100,
                            help_text=gettext_lazy("例: 修学旅行（京都・奈良）"),
                            error_messages={"required": gettext_lazy("名称を入力してください（例: 修学旅行（京都・奈良））。")})
    starts_at = forms.DateTimeField(
        label=gettext_lazy("開始日時"), widget=forms.DateTimeInput(attrs=_DT, format="%Y-%m-%dT%H:%M"),
        input_formats=_DT_FORMATS, help_text=gettext_lazy("この日時から引率者のスマートフォンに連絡先が表示されます。"),
        error_messages={"required": gettext_lazy("開始日時を入力してください。"),
                        "invalid": gettext_lazy("開始日時を 2026-11-30 08:00 の形で入力してください。")})
    ends_at = forms.DateTimeField(
        label=gettext_lazy("終了日時"), widget=forms.DateTimeInput(attrs=_DT, format="%Y-%m-%dT%H:%M"),
        input_formats=_DT_FORMATS, help_text=gettext_lazy("この日時に表示が終わります（最長14日）。"),
        error_messages={"required": gettext_lazy("終了日時を入力してください。"),
                        "invalid": gettext_lazy("終了日時を 2026-12-01 18:00 の形で入力してください。")})
    classes = forms.MultipleChoiceField(label=gettext_lazy("参加する学級（学級全員）"), required=False,
                                        widget=forms.CheckboxSelectMultiple)
    students = forms.MultipleChoiceField(label=gettext_lazy("個別に参加する児童生徒"), required=False,
                                         widget=forms.CheckboxSelectMultiple,
                                         help_text=gettext_lazy("学級全員でないときは、参加する児童生徒を選んでください。"))
    chaperones = forms.MultipleChoiceField(label=gettext_lazy("引率者"), widget=forms.CheckboxSelectMultiple,
                                           error_messages={"required": gettext_lazy("引率者を1人以上選んでください。")})

    def __init__(self, *args: Any, choices: selectors.SetupChoices, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("classes", "students", "chaperones"):
            field = self.fields[name]
            assert isinstance(field, forms.MultipleChoiceField)
            field.choices = getattr(choices, name)

    def data_for_service(self) -> services.TripData:
        data = self.cleaned_data
        return services.TripData(title=data["title"], starts_at=data["starts_at"], ends_at=data["ends_at"],
                                 class_ids=data["classes"], student_ids=data["students"],
                                 chaperone_ids=data["chaperones"])


def _put_errors(form: forms.Form, exc: ValidationFailed) -> None:
    if not exc.errors:
        form.add_error(None, str(exc))
    for name, errors in exc.errors.items():
        for error in errors:
            form.add_error(name if name in form.fields else None, error)


@login_required
@require_capability(roles.TRIPS_ACCOMPANY)
def trip_list(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request.user)
    return render(request, "trips/list.html", {
        "mine": selectors.my_trips(actor=actor), "managed": list(selectors.trips_for(actor=actor)[:100]),
        "can_create": actor.has(roles.TRIPS_MANAGE), "now": timezone.now(),
        "breadcrumbs": [{"label": _("校外活動"), "url": ""}],
    })


@login_required
@require_capability(roles.TRIPS_MANAGE)
def trip_new(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request.user)
    choices = selectors.setup_choices(actor=actor)
    form = TripForm(request.POST or None, choices=choices)
    if request.method == "POST" and form.is_valid():
        data = form.data_for_service()
        try:
            trip = services.trip_create(
                actor=actor, title=data.title, starts_at=data.starts_at, ends_at=data.ends_at,
                class_ids=data.class_ids, student_ids=data.student_ids, chaperone_ids=data.chaperone_ids,
            )
        except ValidationFailed as exc:
            _put_errors(form, exc)
        except PermissionDeniedError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("校外活動「%(title)s」を登録しました。") % {"title": trip.title})
            return redirect("trips:detail", trip_id=trip.pk)
    return render(request, "trips/new.html", {
        "form": form, "submit_label": _("登録する"), "breadcrumbs": [{"label": _("校外活動"), "url": reverse("trips:list")},
                                      {"label": _("校外活動の登録"), "url": ""}],
    })


@login_required
@require_capability(roles.TRIPS_MANAGE)
@found_or_404
def trip_edit(request: HttpRequest, trip_id: int) -> HttpResponse:
    """The trip's form filled with what it has now; saved through trips.services.trip_update."""
    actor = get_actor(request.user)
    edit = selectors.trip_edit_form(actor=actor, trip_id=trip_id)
    trip = edit.trip
    if trip.ends_at <= timezone.now():
        messages.error(request, _("終了した校外活動は変更できません。"))
        return redirect("trips:detail", trip_id=trip.pk)
    form = TripForm(request.POST or None, initial=edit.initial,
                    choices=edit.choices(selectors.setup_choices(actor=actor)))
    if request.method == "POST" and form.is_valid():
        try:
            trip = services.trip_update(actor=actor, trip_id=trip.pk, data=form.data_for_service())
        except ValidationFailed as exc:
            _put_errors(form, exc)
        except PermissionDeniedError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("校外活動「%(title)s」を変更しました。") % {"title": trip.title})
            return redirect("trips:detail", trip_id=trip.pk)
    return render(request, "trips/edit.html", {
        "form": form, "trip": trip, "submit_label": _("変更を保存する"),
        "breadcrumbs": [{"label": _("校外活動"), "url": reverse("trips:list")},
                        {"label": trip.title, "url": reverse("trips:detail", args=[trip.pk])},
                        {"label": _("校外活動の編集"), "url": ""}],
    })


@login_required
@require_capability(roles.TRIPS_ACCOMPANY)
@found_or_404
def trip_detail(request: HttpRequest, trip_id: int) -> HttpResponse:
    actor = get_actor(request.user)
    summary = selectors.trip_summary(actor=actor, trip_id=trip_id)
    return render(request, "trips/detail.html", {
        "s": summary, "trip": summary.trip, "can_revoke": actor.has(roles.TRIPS_REVOKE),
        "can_edit": summary.state != "after" and summary.manages,
        "can_report": actor.has(roles.PRIVACY_INCIDENTS),
        "can_release": actor.has(roles.TRIPS_HEALTH_RELEASE),
        "breadcrumbs": [{"label": _("校外活動"), "url": reverse("trips:list")},
                        {"label": summary.trip.title, "url": ""}],
    })


@login_required
@require_capability(roles.TRIPS_REVOKE)
@require_POST
@found_or_404
def chaperone_revoke(request: HttpRequest, trip_id: int, chaperone_id: int) -> HttpResponse:
    actor = get_actor(request.user)
    try:
        selectors.trip_get_for(actor=actor, trip_id=trip_id)
        services.trip_chaperone_revoke(actor=actor, chaperone_id=chaperone_id,
                                       reason=request.POST.get("reason", ""))
    except PermissionDeniedError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("引率者の閲覧を取り消しました。次の表示から連絡先は表示されません。"))
    return redirect("trips:detail", trip_id=trip_id)


@login_required
@require_capability(roles.TRIPS_REVOKE)
@require_POST
@found_or_404
def incident_report(request: HttpRequest, trip_id: int, incident_id: str) -> HttpResponse:
    """The principal drafts the PPC incident from a lost-phone report and continues on its page."""
    actor = get_actor(request.user)
    try:
        selectors.trip_get_for(actor=actor, trip_id=trip_id)
        privacy_id = services.trip_incident_draft_report(actor=actor, incident_id=incident_id)
    except (PermissionDeniedError, ValidationFailed) as exc:
        messages.error(request, str(exc))
        return redirect("trips:detail", trip_id=trip_id)
    return redirect("privacy:incident_detail", incident_id=privacy_id)


@login_required
@require_capability(roles.TRIPS_HEALTH_RELEASE)
@found_or_404
def health(request: HttpRequest, trip_id: int) -> HttpResponse:
    """The nurse chooses which participants' health notes the chaperones see, editing the text for the trip."""
    actor = get_actor(request.user)
    if request.method == "POST":
        try:
            services.trip_health_release_set(
                actor=actor, trip_id=trip_id, student_id=request.POST.get("student", ""),
                note=request.POST.get("note", "") if request.POST.get("action") == "release" else None,
            )
        except (ValidationFailed, PermissionDeniedError) as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, _("公開内容を保存しました。"))
        return redirect("trips:health", trip_id=trip_id)
    trip, lines = selectors.health_candidates(actor=actor, trip_id=trip_id)
    return render(request, "trips/health.html", {
        "trip": trip, "lines": lines, "released": sum(1 for x in lines if x.released is not None),
        "breadcrumbs": [{"label": _("校外活動"), "url": reverse("trips:list")},
                        {"label": trip.title, "url": reverse("trips:detail", args=[trip.pk])},
                        {"label": _("健康上の配慮の公開"), "url": ""}],
    })


@never_cache
@login_required
@require_capability(roles.TRIPS_ACCOMPANY)
@found_or_404
def sheet(request: HttpRequest, trip_id: int) -> HttpResponse:
    """The chaperone's phone page: checked on this request (window, revocation), audited; never cached."""
    actor = get_actor(request.user)
    try:
        data = selectors.chaperone_sheet(actor=actor, trip_id=trip_id)
    except selectors.AccessRefused as exc:
        return render(request, "trips/sheet_refused.html", {"message": str(exc), "trip": exc.trip,
                                                            "reason": exc.reason}, status=403)
    response = render(request, "trips/sheet.html", {"sheet": data, "now": timezone.now()})
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_capability(roles.TRIPS_ACCOMPANY)
@require_POST
@found_or_404
def lost_self(request: HttpRequest, trip_id: int) -> HttpResponse:
    """「スマートフォンを紛失した」 from any signed-in device: revokes my access to this trip and records it."""
    actor = get_actor(request.user)
    try:
        services.trip_phone_lost_report(actor=actor, trip_id=trip_id, note=request.POST.get("note", ""))
    except PermissionDeniedError as exc:
        messages.error(request, str(exc))
        return redirect("trips:list")
    messages.success(request, _("紛失を届け出ました。この校外活動の連絡先はあなたのアカウントでは表示されなくなりました。管理職に連絡してください。"))
    return redirect("trips:list")


@login_required
@require_capability(roles.TRIPS_ACCOMPANY)
@require_POST
@found_or_404
def issue_code(request: HttpRequest, trip_id: int) -> HttpResponse:
    actor = get_actor(request.user)
    try:
        code = services.trip_lost_code_issue(actor=actor, trip_id=trip_id)
    except PermissionDeniedError as exc:
        messages.error(request, str(exc))
        return redirect("trips:list")
    response = render(request, "trips/code.html", {
        "code": code, "lost_url": request.build_absolute_uri(reverse("trips:lost_code")),
        "breadcrumbs": [{"label": _("校外活動"), "url": reverse("trips:list")},
                        {"label": _("紛失届コード"), "url": ""}],
    })
    response["Cache-Control"] = "no-store"
    return response


class LostCodeForm(forms.Form):
    code = forms.CharField(label=gettext_lazy("紛失届コード"), max_length=20,
                           help_text=gettext_lazy("引率前に受け取った12文字のコード（例: ABCD-EFGH-2345）"),
                           error_messages={"required": gettext_lazy("紛失届コードを入力してください。")})
    note = forms.CharField(label=gettext_lazy("状況（任意）"), required=False, max_length=500,
                           widget=forms.Textarea(attrs={"rows": 3}))


@never_cache
def lost_code(request: HttpRequest) -> HttpResponse:
    """No sign-in needed (the phone is gone): the code revokes that chaperone's access at once."""
    form = LostCodeForm(request.POST or None)
    done = False
    if request.method == "POST" and form.is_valid():
        try:
            services.trip_phone_lost_report_by_code(code=form.cleaned_data["code"], note=form.cleaned_data["note"])
        except NotFoundOrNoAccess:
            form.add_error("code", _("このコードは使えません。入力を確かめるか、学校の管理職に電話で連絡してください。"))
        else:
            done = True
    return render(request, "trips/lost_code.html", {"form": form, "done": done})


