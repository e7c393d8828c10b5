"""Guardian absence reports, both sides.

Guardian (phone first): the report form → a confirmation of exactly what will be sent → the receipt with 受付番号;
the history with read receipts and withdrawal before the cut-off. Staff: the class's reports for a day (polled
every 30 s; the poll answers 204 while nothing changed, so an idle screen decrypts and audits nothing), one
report with its proof of intent, acknowledging, applying a report that waited, and a report taken by phone.

Thin: reads through komu.attendance.selectors.reports, writes through komu.attendance.services.reports; anything
out of scope answers 404.
"""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from komu.access import roles
from komu.access.scope import Actor, get_actor
from komu.attendance.models import AbsenceReason, GuardianReport
from komu.attendance.selectors import reports as selectors
from komu.attendance.services import reports as services
from komu.core.errors import KomuError, NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.core.htmx import is_htmx
from komu.students import selectors as student_selectors
from komu.web.decorators import require_capability

# --- guardian: forms ----------------------------------------------------------------------------------------------


def _child_label(child: selectors.ChildChoice) -> str:
    name = f"{child.family_name} {child.given_name}"
    return f"{name}（{child.class_label}）" if child.class_label else name


class ReportForm(forms.Form):
    """The report form for the children at one school. Choices come from the school's rules; the service checks
    everything again (a form is parsing only)."""

    children = forms.MultipleChoiceField(
        label=gettext_lazy("お子さま"), widget=forms.CheckboxSelectMultiple,
        error_messages={"required": gettext_lazy("連絡するお子さまを選んでください。"),
                        "invalid_choice": gettext_lazy("お子さまを選び直してください。")},
    )
    date = forms.ChoiceField(
        label=gettext_lazy("日付"), widget=forms.RadioSelect,
        error_messages={"required": gettext_lazy("日付を選んでください。"),
                        "invalid_choice": gettext_lazy("この日は連絡できません。日付を選び直してください。")},
    )
    kind = forms.ChoiceField(
        label=gettext_lazy("連絡の種類"), widget=forms.RadioSelect, choices=GuardianReport.Kind.choices,
        error_messages={"required": gettext_lazy("「欠席」「遅刻」「早退」のどれかを選んでください。"),
                        "invalid_choice": gettext_lazy("「欠席」「遅刻」「早退」のどれかを選んでください。")},
    )
    reason = forms.ChoiceField(
        label=gettext_lazy("理由"), widget=forms.RadioSelect,
        error_messages={"required": gettext_lazy("理由を選んでください。"),
                        "invalid_choice": gettext_lazy("理由を選び直してください。")},
    )
    symptoms = forms.MultipleChoiceField(
        label=gettext_lazy("症状（あてはまるものすべて）"), widget=forms.CheckboxSelectMultiple, required=False,
        help_text=gettext_lazy("体調が悪いときは選んでください。感染症の広がりを学校が早く知るために使います。"),
        error_messages={"invalid_choice": gettext_lazy("症状は一覧から選んでください。")},
    )
    expected_time = forms.TimeField(
        label=gettext_lazy("登校する時刻・早退する時刻"), required=False,
        widget=forms.TimeInput(attrs={"type": "time", "step": 300}, format="%H:%M"),
        help_text=gettext_lazy("遅刻・早退のときだけ。わからなければ空けておいてください。"),
        error_messages={"invalid": gettext_lazy("時刻は 9:30 のように入力してください。")},
    )
    note = forms.CharField(
        label=gettext_lazy("学校への連絡（任意）"), required=False, max_length=services.NOTE_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"max_length": gettext_lazy("連絡は%(limit_value)d文字以内で入力してください。")},
    )

    def __init__(self, options: selectors.SchoolReportOptions, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.options = options
        # Formatted per request: a lazy string formatted at import would freeze the language of that moment.
        self.fields["note"].help_text = _("例：病院に寄ってから登校します。（%(n)d文字まで）") % {"n": services.NOTE_MAX}
        children = options.children
        self.fields["children"].choices = [(str(c.id), _child_label(c)) for c in children]  # type: ignore[attr-defined]
        self.fields["date"].choices = [(d.date.isoformat(), d.label) for d in options.days]  # type: ignore[attr-defined]
        self.fields["reason"].choices = [(r["code"], r["label"]) for r in options.reasons]  # type: ignore[attr-defined]
        self.fields["symptoms"].choices = [(s["code"], s["label"]) for s in options.symptoms]  # type: ignore[attr-defined]
        if not self.is_bound:
            if len(children) == 1:
                self.initial["children"] = [str(children[0].id)]
            if options.days:
                self.initial["date"] = options.days[0].date.isoformat()

    def to_input(self) -> services.ReportInput:
        data = self.cleaned_data
        return services.ReportInput(
            student_ids=data["children"], date=datetime.date.fromisoformat(data["date"]), kind=data["kind"],
            reason_code=data["reason"], symptom_codes=data["symptoms"], note=data["note"],
            expected_time=data["expected_time"],
        )


# Service error keys → form fields.
_FIELD_OF = {"student_ids": "children", "date": "date", "kind": "kind", "reason_code": "reason",
             "symptom_codes": "symptoms", "note": "note", "expected_time": "expected_time"}


def _put_errors(form: forms.Form, exc: ValidationFailed, fields: dict[str, str]) -> None:
    if not exc.errors:
        form.add_error(None, str(exc))
    for key, errors in exc.errors.items():
        name = fields.get(key, key)
        for error in errors:
            form.add_error(name if name in form.fields else None, error)


def _pick_school(options: list[selectors.SchoolReportOptions], raw: str | None) -> selectors.SchoolReportOptions:
    if raw:
        for option in options:
            if str(option.school.pk) == raw:
                return option
        raise Http404
    return options[0]


def _guardian_breadcrumbs(label: str) -> list[dict[str, str]]:
    return [{"label": _("ホーム"), "url": reverse("web:home")}, {"label": label, "url": ""}]


# --- guardian: screens -----------------------------------------------------------------------------------------


@login_required
@require_capability(roles.ATTENDANCE_REPORT)
@require_http_methods(["GET", "POST"])
def report_form(request: HttpRequest) -> HttpResponse:
    """欠席・遅刻・早退の連絡: the form (GET, or POST action=edit), the confirmation (POST action=confirm) and the
    submission (POST action=send), which redirects to the receipt."""
    actor = get_actor(request.user)
    all_options = selectors.guardian_report_options(actor=actor)
    context: dict[str, Any] = {
        "breadcrumbs": _guardian_breadcrumbs(_("欠席・遅刻・早退の連絡")),
        "all_options": all_options,
    }
    if not all_options:
        return render(request, "attendance/guardian_report_form.html", context)
    options = _pick_school(all_options, request.POST.get("school") or request.GET.get("school"))
    context["options"] = options
    if request.method == "GET":
        context["form"] = ReportForm(options)
        return render(request, "attendance/guardian_report_form.html", context)

    own = {str(c.id) for c in options.children}
    if any(child not in own for child in request.POST.getlist("children")):
        # Someone else's child (or one at another school) is not a wrong choice but a page that does not exist.
        raise Http404
    form = ReportForm(options, request.POST)
    context["form"] = form
    action = request.POST.get("action", "confirm")
    if action == "edit" or not form.is_valid():
        if action == "edit":
            # Back from the confirmation: show the values again without error markers.
            form = ReportForm(options, initial=request.POST.copy())
            form.initial["children"] = request.POST.getlist("children")
            form.initial["symptoms"] = request.POST.getlist("symptoms")
            context["form"] = form
        return render(request, "attendance/guardian_report_form.html", context)
    data = form.to_input()
    try:
        if action == "send":
            reports = services.guardian_report_submit(actor=actor, data=data)
            query = urlencode([("r", str(r.pk)) for r in reports])
            return redirect(f"{reverse('attendance:guardian_receipt')}?{query}")
        checked = services.guardian_report_check(actor=actor, data=data)
    except NotFoundOrNoAccess:
        raise Http404 from None
    except (ValidationFailed, PermissionDeniedError) as exc:
        if isinstance(exc, ValidationFailed):
            _put_errors(form, exc, _FIELD_OF)
        else:
            form.add_error(None, str(exc))
        return render(request, "attendance/guardian_report_form.html", context)
    context.update(checked=checked, day_label=selectors.day_label(checked.date, selectors.school_today()),
                   children=[c for c in options.children if str(c.id) in form.cleaned_data["children"]])
    context["breadcrumbs"] = _guardian_breadcrumbs(_("送信内容の確認"))
    return render(request, "attendance/guardian_report_confirm.html", context)


@login_required
@require_capability(roles.ATTENDANCE_REPORT)
@require_GET
def receipt(request: HttpRequest) -> HttpResponse:
    """受付完了: what the school received, each with its 受付番号 and time."""
    actor = get_actor(request.user)
    try:
        rows = selectors.guardian_receipt(actor=actor, report_ids=request.GET.getlist("r"))
    except NotFoundOrNoAccess:
        raise Http404 from None
    return render(request, "attendance/guardian_receipt.html", {
        "rows": rows, "breadcrumbs": _guardian_breadcrumbs(_("受付完了")),
    })


@login_required
@require_capability(roles.ATTENDANCE_REPORT)
@require_GET
def history(request: HttpRequest) -> HttpResponse:
    """連絡の履歴: each report with its status — 送信済み → 学校が確認しました (or 取り消し)."""
    actor = get_actor(request.user)
    return render(request, "attendance/guardian_history.html", {
        "rows": selectors.guardian_report_history(actor=actor),
        "history_days": selectors.HISTORY_DAYS,
        "breadcrumbs": _guardian_breadcrumbs(_("連絡の履歴")),
    })


@login_required
@require_capability(roles.ATTENDANCE_REPORT)
@require_http_methods(["GET", "POST"])
def withdraw(request: HttpRequest, report_id: str) -> HttpResponse:
    """取り消し: GET asks "are you sure?" with what will be withdrawn; POST withdraws."""
    actor = get_actor(request.user)
    try:
        [row] = selectors.guardian_receipt(actor=actor, report_ids=[report_id])
    except NotFoundOrNoAccess:
        raise Http404 from None
    if not row.sent_by_me:
        raise Http404
    error = ""
    if request.method == "POST":
        try:
            services.guardian_report_withdraw(actor=actor, report_id=report_id)
        except NotFoundOrNoAccess:
            raise Http404 from None
        except ValidationFailed as exc:
            error = str(exc)
        else:
            messages.success(request, _("連絡を取り消しました（受付番号 %(no)s）。") % {"no": row.receipt_no})
            return redirect("attendance:guardian_history")
    return render(request, "attendance/guardian_withdraw.html", {
        "row": row, "error": error,
        "breadcrumbs": [
            {"label": _("ホーム"), "url": reverse("web:home")},
            {"label": _("連絡の履歴"), "url": reverse("attendance:guardian_history")},
            {"label": _("取り消し"), "url": ""},
        ],
    })


# --- staff: the class's reports --------------------------------------------------------------------------------


class _ListQuery(forms.Form):
    klass = forms.IntegerField(required=False, min_value=1)
    date = forms.DateField(required=False, input_formats=["%Y-%m-%d"])

    def __init__(self, data: Any) -> None:
        values = data.copy()
        if "class" in values:
            values["klass"] = values["class"]
        super().__init__(values)


def _list_target(actor: Actor, params: Any) -> tuple[list[Any], Any, datetime.date]:
    """The class and day a list request names: the only class when there is one, today by default."""
    query = _ListQuery(params)
    if not query.is_valid():
        raise Http404
    day = query.cleaned_data["date"] or selectors.school_today()
    choices = selectors.report_class_choices(actor=actor, day=day)
    class_id = query.cleaned_data["klass"]
    if class_id is None:
        if not choices:
            return choices, None, day
        class_id = choices[0].pk
    try:
        homeroom_class = selectors.report_class_get(actor=actor, class_id=class_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    return choices, homeroom_class, day


def _list_context(actor: Actor, homeroom_class: Any, day: datetime.date) -> dict[str, Any]:
    reports = selectors.class_report_list(actor=actor, class_id=homeroom_class.pk, day=day)
    return {
        "reports": reports,
        "query": urlencode({"class": homeroom_class.pk, "date": day.isoformat()}),
        "is_today": day == selectors.school_today(),
    }


@login_required
@require_capability(roles.ATTENDANCE_VIEW)
@require_GET
def report_list(request: HttpRequest) -> HttpResponse:
    """保護者からの連絡: one class's reports for one day (today by default), newest state every 30 s."""
    actor = get_actor(request.user)
    choices, homeroom_class, day = _list_target(actor, request.GET)
    context: dict[str, Any] = {
        "class_choices": choices, "homeroom_class": homeroom_class, "day": day,
        "today": selectors.school_today(),
        "breadcrumbs": [{"label": _("ホーム"), "url": reverse("web:home")},
                        {"label": _("保護者からの連絡"), "url": ""}],
    }
    if homeroom_class is not None:
        context.update(_list_context(actor, homeroom_class, day))
    return render(request, "attendance/guardian_reports.html", context)


@login_required
@require_capability(roles.ATTENDANCE_VIEW)
@require_GET
def report_list_poll(request: HttpRequest) -> HttpResponse:
    """The list's polling partial: 204 (nothing to swap) while the token the page holds is current."""
    actor = get_actor(request.user)
    _choices, homeroom_class, day = _list_target(actor, request.GET)
    if homeroom_class is None:
        raise Http404
    since = request.GET.get("since", "")
    if since and since == selectors.class_reports_token(actor=actor, class_id=homeroom_class.pk, day=day):
        return HttpResponse(status=204)
    return render(request, "attendance/partials/guardian_reports_list.html",
                  _list_context(actor, homeroom_class, day))


def _back_to_list(request: HttpRequest, actor: Actor, params: Any) -> HttpResponse:
    _choices, homeroom_class, day = _list_target(actor, params)
    if homeroom_class is None:
        raise Http404
    if is_htmx(request):
        return render(request, "attendance/partials/guardian_reports_list.html",
                      _list_context(actor, homeroom_class, day))
    return redirect(f"{reverse('attendance:reports')}?{urlencode({'class': homeroom_class.pk, 'date': day})}")


@login_required
@require_capability(roles.ATTENDANCE_RECORD)
@require_POST
def report_acknowledge(request: HttpRequest) -> HttpResponse:
    """確認済みにする: one report (report=<id>) or several; answers with the refreshed list."""
    actor = get_actor(request.user)
    try:
        done = services.guardian_report_acknowledge(actor=actor, report_ids=request.POST.getlist("report"))
    except (NotFoundOrNoAccess, PermissionDeniedError):
        raise Http404 from None
    if not is_htmx(request) and done:
        messages.success(request, _("%(n)d 件の連絡を確認済みにしました。") % {"n": len(done)})
    return _back_to_list(request, actor, request.POST)


@login_required
@require_capability(roles.ATTENDANCE_RECORD)
@require_POST
def report_apply(request: HttpRequest, report_id: str) -> HttpResponse:
    """出席簿に反映: a report that waited because staff had already marked the day."""
    actor = get_actor(request.user)
    try:
        services.guardian_report_apply(actor=actor, report_id=report_id)
    except (NotFoundOrNoAccess, PermissionDeniedError):
        raise Http404 from None
    except KomuError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("連絡の内容を出席簿に反映しました。"))
    return redirect("attendance:report_detail", report_id=report_id)


@login_required
@require_capability(roles.ATTENDANCE_VIEW)
@require_GET
def report_detail(request: HttpRequest, report_id: str) -> HttpResponse:
    """One report with its proof of intent. Opening it as someone who records the class's attendance marks it
    read (the guardian's 「学校が確認しました」)."""
    actor = get_actor(request.user)
    try:
        detail = selectors.report_get_for(actor=actor, report_id=report_id)
        if detail.can_acknowledge and detail.row.read_at is None and detail.row.withdrawn_at is None:
            services.guardian_report_acknowledge(actor=actor, report_ids=[detail.row.id])
            detail = selectors.report_get_for(actor=actor, report_id=report_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    list_url = reverse("attendance:reports")
    if detail.homeroom_class is not None:
        list_url += "?" + urlencode({"class": str(detail.homeroom_class.pk), "date": detail.row.date.isoformat()})
    return render(request, "attendance/guardian_report_detail.html", {
        "detail": detail, "row": detail.row, "list_url": list_url,
        "breadcrumbs": [{"label": _("保護者からの連絡"), "url": list_url},
                        {"label": _("受付番号 %(no)s") % {"no": detail.row.receipt_no}, "url": ""}],
    })


# --- staff: a report taken by phone ----------------------------------------------------------------------------


class PhoneReportForm(forms.Form):
    student = forms.ChoiceField(
        label=gettext_lazy("児童生徒"),
        error_messages={"required": gettext_lazy("児童生徒を選んでください。"),
                        "invalid_choice": gettext_lazy("児童生徒を選び直してください。")},
    )
    date = forms.DateField(
        label=gettext_lazy("日付"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d"],
        error_messages={"required": gettext_lazy("日付を入力してください。"),
                        "invalid": gettext_lazy("日付は 2026-05-12 のように入力してください。")},
    )
    kind = forms.ChoiceField(
        label=gettext_lazy("連絡の種類"), widget=forms.RadioSelect, choices=GuardianReport.Kind.choices,
        error_messages={"required": gettext_lazy("「欠席」「遅刻」「早退」のどれかを選んでください。")},
    )
    reason_category = forms.ChoiceField(
        label=gettext_lazy("欠席の理由"), widget=forms.RadioSelect, required=False,
        choices=AbsenceReason.choices, help_text=gettext_lazy("欠席のときだけ選んでください。"),
    )
    expected_time = forms.TimeField(
        label=gettext_lazy("登校・早退の予定時刻"), required=False,
        widget=forms.TimeInput(attrs={"type": "time", "step": 300}, format="%H:%M"),
        help_text=gettext_lazy("遅刻・早退のときだけ。"),
        error_messages={"invalid": gettext_lazy("時刻は 9:30 のように入力してください。")},
    )
    note = forms.CharField(
        label=gettext_lazy("メモ（任意）"), required=False, max_length=services.PHONE_NOTE_MAX,
        help_text=gettext_lazy("例：熱 38.2℃、病院に行く（出席簿の備考に残ります）"),
        error_messages={"max_length": gettext_lazy("メモは%(limit_value)d文字以内で入力してください。")},
    )

    def __init__(self, pupils: list[Any], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["student"].choices = [("", _("選んでください"))] + [  # type: ignore[attr-defined]
            (str(p.id), f"{p.shusseki_no or ''} {p.family_name} {p.given_name}".strip()) for p in pupils
        ]


_PHONE_FIELD_OF = {"student_id": "student", "date": "date", "kind": "kind", "reason_category": "reason_category",
                   "absence_reason": "reason_category", "note": "note", "detail": "note"}


@login_required
@require_capability(roles.ATTENDANCE_RECORD)
@require_http_methods(["GET", "POST"])
def phone_report(request: HttpRequest) -> HttpResponse:
    """電話で連絡を受けた: the call goes into the register at once, recorded as a phone report."""
    actor = get_actor(request.user)
    params = request.POST if request.method == "POST" else request.GET
    _choices, homeroom_class, day = _list_target(actor, params)
    if homeroom_class is None:
        raise Http404
    try:
        pupils = student_selectors.student_list(actor=actor, homeroom_class_id=homeroom_class.pk)
    except NotFoundOrNoAccess:
        raise Http404 from None
    list_url = f"{reverse('attendance:reports')}?{urlencode({'class': homeroom_class.pk, 'date': day})}"
    if request.method == "POST":
        form = PhoneReportForm(pupils, request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.phone_report_record(actor=actor, data=services.PhoneReportInput(
                    student_id=data["student"], date=data["date"], kind=data["kind"],
                    reason_category=data["reason_category"], note=data["note"],
                    expected_time=data["expected_time"],
                ))
            except NotFoundOrNoAccess:
                raise Http404 from None
            except ValidationFailed as exc:
                _put_errors(form, exc, _PHONE_FIELD_OF)
            except KomuError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, _("電話での連絡を出席簿に記録しました。"))
                return redirect(list_url)
    else:
        initial: dict[str, Any] = {"date": day, "kind": GuardianReport.Kind.ABSENT}
        if request.GET.get("student"):
            initial["student"] = request.GET["student"]
        form = PhoneReportForm(pupils, initial=initial)
    return render(request, "attendance/guardian_phone_report.html", {
        "form": form, "homeroom_class": homeroom_class, "day": day, "list_url": list_url,
        "breadcrumbs": [{"label": _("保護者からの連絡"), "url": list_url},
                        {"label": _("電話で連絡を受けた"), "url": ""}],
    })


urlpatterns = [
    path("guardian/report/", report_form, name="guardian_report"),
    path("guardian/receipt/", receipt, name="guardian_receipt"),
    path("guardian/history/", history, name="guardian_history"),
    path("guardian/reports/<uuid:report_id>/withdraw/", withdraw, name="guardian_withdraw"),
    path("reports/", report_list, name="reports"),
    path("reports/poll/", report_list_poll, name="reports_poll"),
    path("reports/acknowledge/", report_acknowledge, name="reports_acknowledge"),
    path("reports/phone/", phone_report, name="phone_report"),
    path("reports/<uuid:report_id>/", report_detail, name="report_detail"),
    path("reports/<uuid:report_id>/apply/", report_apply, name="report_apply"),
]
