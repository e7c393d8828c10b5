"""出欠 screens: morning entry (the homeroom teacher's main screen), the class's year totals, the school calendar,
the school's rules and the principal's overview.

Morning entry works without JavaScript (each button posts the whole page form and the page comes back), and with
it (komu/attendance/static/attendance/entry.js): each change posts one pupil's mark to `row_save` with the version
it was based on and an idempotency key, and swaps in the row the server answers with — 200 saved, 400 not valid,
409 changed meanwhile (the row then shows the current value, who changed it and when).
Thin: reads through komu.attendance.selectors, writes through komu.attendance.services; out of scope is 404.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import path, register_converter, reverse
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from komu.access import roles
from komu.access.scope import Actor, get_actor
from komu.attendance.models import (
    AbsenceReason,
    CalendarDay,
    Disease,
    LongAbsenceCategory,
    MarkKind,
    SuspensionKind,
)
from komu.attendance.selectors import calendar as calendar_selectors
from komu.attendance.selectors import overview as overview_selectors
from komu.attendance.selectors import registers
from komu.attendance.services import calendar as calendar_services
from komu.attendance.services import long_absence, marks
from komu.attendance.services import rules as rules_services
from komu.attendance.services.marks import MarkConflict, MarkInput
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.directory.models import HomeroomClass
from komu.web.decorators import require_capability


class IsoDateConverter:
    """A date in a URL as YYYY-MM-DD (registered as "isodate" for every attendance URL)."""

    regex = r"\d{4}-\d{2}-\d{2}"

    def to_python(self, value: str) -> datetime.date:
        try:
            return datetime.date.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(value) from exc

    def to_url(self, value: datetime.date | str) -> str:
        return value.isoformat() if isinstance(value, datetime.date) else str(value)


register_converter(IsoDateConverter, "isodate")

# Kinds that need a detail before they can be saved: their button opens a panel first.
PANEL_KINDS = (MarkKind.ABSENT, MarkKind.SUSPENSION, MarkKind.MOURNING)
def _actor(request: HttpRequest) -> Actor:
    return get_actor(request.user)


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _parse_day(value: str | None) -> datetime.date | None:
    if not value:
        return None
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        return None


def _register_url(class_id: int, day: datetime.date) -> str:
    return reverse("attendance:register", kwargs={"class_id": class_id, "day": day})


# --- Parsing a posted mark -----------------------------------------------------------------------------------------

def _int_or_none(value: str, message: str | Promise) -> int | None:
    """The message is translated only when it is shown (a class's save parses 35 rows)."""
    value = value.strip()
    if not value:
        return None
    if not value.isascii() or not value.isdigit():
        raise ValidationFailed(str(message))
    return int(value)


_DEGREE_MESSAGE = gettext_lazy("忌引の親等（1親等・2親等・3親等）を選んでください。")
_RELOAD_MESSAGE = gettext_lazy("画面を再読み込みしてください。")


def _mark_input(get: Callable[[str], str], kind: str | None = None) -> MarkInput:
    kind = kind if kind is not None else get("kind")
    degree = _int_or_none(get("kinship_degree"), _DEGREE_MESSAGE)
    return MarkInput(
        kind=kind, absence_reason=get("absence_reason") if kind == MarkKind.ABSENT else "",
        suspension_kind=get("suspension_kind") if kind == MarkKind.SUSPENSION else "",
        disease=get("disease") if kind == MarkKind.SUSPENSION and get("suspension_kind") == SuspensionKind.INFECTIOUS
        else "",
        kinship_degree=degree if kind == MarkKind.MOURNING else None,
        detail=get("detail") if kind != MarkKind.PRESENT else "",
    )


def _first_error(exc: ValidationFailed) -> str:
    for errors in exc.errors.values():
        if errors:
            return errors[0]
    return str(exc)


def _save_one(actor: Actor, klass_id: int, day: datetime.date, student_id: uuid.UUID, data: MarkInput,
              version: int | None, amendment_reason: str, key: str = "") -> tuple[int, str, str]:
    """Apply one pupil's change; (HTTP status, error, conflict message). The service checks that the pupil is in
    the URL's class on the day (404 otherwise) within the save's own queries."""
    try:
        marks.mark_set(
            actor=actor, student_id=student_id, date=day, kind=data.kind, absence_reason=data.absence_reason,
            suspension_kind=data.suspension_kind, disease=data.disease, kinship_degree=data.kinship_degree,
            detail=data.detail, base_version=version, amendment_reason=amendment_reason, idempotency_key=key,
            class_id=klass_id,
        )
    except (NotFoundOrNoAccess, PermissionDeniedError):
        raise Http404 from None
    except ValidationFailed as exc:
        return 400, _first_error(exc), ""
    except MarkConflict as exc:
        return 409, "", str(exc)
    return 200, "", ""


# --- Morning entry -------------------------------------------------------------------------------------------------

@login_required
@require_capability(roles.ATTENDANCE_VIEW)
def entry_home(request: HttpRequest) -> HttpResponse:
    """出欠: a homeroom teacher goes straight to today's register; others pick a class and a day, and find the
    overview, the year totals, the calendar and the rules."""
    actor = _actor(request)
    today = timezone.localdate()
    day = _parse_day(request.GET.get("day")) or today
    class_param = request.GET.get("class", "")
    if class_param:
        if not class_param.isascii() or not class_param.isdigit():
            raise Http404
        return redirect("attendance:register", class_id=int(class_param), day=day)
    choices = registers.entry_classes_for(actor=actor, day=day)
    overview_schools = overview_selectors.overview_schools(actor)
    manageable = calendar_selectors.manageable_schools(actor=actor)
    if len(choices) == 1 and not overview_schools and not manageable and "list" not in request.GET:
        return redirect("attendance:register", class_id=choices[0].pk, day=day)
    viewable = registers.viewable_classes_by_school(actor=actor, day=day)
    schools = {c.school_year.school_id for c in [*choices, *viewable]}
    return render(request, "attendance/home.html", {
        "several_schools": len(schools) > 1,
        "day": day,
        "today": today,
        "choices": choices,
        "viewable": viewable,
        "overview_schools": overview_schools,
        "manageable": manageable,
    })


def _entry_context(request: HttpRequest, sheet: registers.EntrySheet) -> dict[str, Any]:
    actor = _actor(request)
    klass = sheet.homeroom_class
    today = timezone.localdate()
    return {
        "sheet": sheet,
        "klass": klass,
        "day": sheet.day,
        "today": today,
        "buttons": registers.ROW_BUTTONS,
        "absence_reasons": AbsenceReason.choices,
        "suspension_kinds": SuspensionKind.choices,
        "diseases": Disease.choices,
        "kinship": [(d, sheet.rules.bereavement_limits.get(str(d))) for d in marks.KINSHIP_DEGREES],
        "class_choices": registers.entry_classes_for(actor=actor, day=sheet.day),
        "min_day": sheet.school_year.start_date,
        "max_day": min(today, sheet.school_year.end_date),
        "breadcrumbs": [
            {"label": _("出欠"), "url": reverse("attendance:home") + "?list=1"},
            {"label": klass.display_label, "url": ""},
        ],
    }


def _render_entry(request: HttpRequest, class_id: int, day: datetime.date, *, status: int = 200,
                  row_messages: dict[uuid.UUID, tuple[str, str, str]] | None = None) -> HttpResponse:
    actor = _actor(request)
    try:
        sheet = registers.entry_sheet(actor=actor, class_id=class_id, day=day)
    except NotFoundOrNoAccess:
        raise Http404 from None
    for row in sheet.rows:
        if row_messages and row.student_id in row_messages:
            row.error, row.conflict, row.open_panel = row_messages[row.student_id]
    return render(request, "attendance/entry.html", _entry_context(request, sheet), status=status)


@login_required
@require_capability(roles.ATTENDANCE_RECORD)
def register(request: HttpRequest, class_id: int, day: datetime.date) -> HttpResponse:
    """The class's register for one day. GET shows it; POST (the page without JavaScript) applies the one button
    pressed — a pupil's mark (`set`, `period`) or 「出欠を確定」 (`confirm`) — and comes back to the page."""
    if request.method != "POST":
        return _render_entry(request, class_id, day)
    actor = _actor(request)
    post = request.POST
    amendment_reason = post.get("amendment_reason", "")
    if "confirm" in post:
        try:
            marks.register_confirm(actor=actor, class_id=class_id, date=day)
        except NotFoundOrNoAccess:
            raise Http404 from None
        except ValidationFailed as exc:
            messages.error(request, _first_error(exc))
        else:
            messages.success(request, _("出欠を確定しました。"))
        return redirect(_register_url(class_id, day))
    if "period" in post:
        return _period_from_page(request, actor, class_id, day, post.get("period", ""), amendment_reason)
    parts = post.get("set", "").split("|")
    if len(parts) < 2:
        messages.error(request, _("操作を受け付けられませんでした。もう一度ボタンを押してください。"))
        return redirect(_register_url(class_id, day))
    try:
        student_id = uuid.UUID(parts[0])
    except ValueError:
        raise Http404 from None
    kind, arg = parts[1], (parts[2] if len(parts) > 2 else "")
    sid = str(student_id)

    def field(name: str) -> str:
        # The pressed button carries the reason (欠席) or the degree (忌引); the rest are the row's fields.
        if name == "absence_reason":
            return arg if kind == MarkKind.ABSENT else ""
        if name == "kinship_degree":
            return arg if kind == MarkKind.MOURNING else ""
        return post.get(f"{name}-{sid}", "")

    try:
        data = _mark_input(field, kind)
        version = _int_or_none(post.get(f"version-{sid}", ""), _("画面を再読み込みしてから、もう一度操作してください。"))
    except ValidationFailed as exc:
        return _render_entry(request, class_id, day, status=400,
                             row_messages={student_id: (_first_error(exc), "", kind if kind in PANEL_KINDS else "")})
    try:
        marks.entry_class_get(actor=actor, class_id=class_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    status, error, conflict = _save_one(actor, class_id, day, student_id, data, version, amendment_reason)
    if status == 200:
        return HttpResponseRedirect(f"{_register_url(class_id, day)}#pupil-{sid}")
    panel = kind if status == 400 and kind in PANEL_KINDS else ""
    return _render_entry(request, class_id, day, status=status, row_messages={student_id: (error, conflict, panel)})


def _period_from_page(request: HttpRequest, actor: Actor, class_id: int, day: datetime.date, value: str,
                      amendment_reason: str) -> HttpResponse:
    parts = value.split("|")
    try:
        student_id = uuid.UUID(parts[0])
        period = int(parts[1])
        kind = parts[2]
    except (ValueError, IndexError):
        raise Http404 from None
    version = _int_or_none(request.POST.get(f"pversion-{student_id}-{period}", ""), "")
    status, error, conflict = _save_period(actor, class_id, day, student_id, period, kind, version,
                                           amendment_reason)
    if status == 200:
        return HttpResponseRedirect(f"{_register_url(class_id, day)}#pupil-{student_id}")
    return _render_entry(request, class_id, day, status=status, row_messages={student_id: (error, conflict, "")})


def _save_period(actor: Actor, class_id: int, day: datetime.date, student_id: uuid.UUID, period: int, kind: str,
                 version: int | None, amendment_reason: str) -> tuple[int, str, str]:
    if not registers.is_member(class_id=class_id, student_id=student_id):
        raise Http404
    try:
        marks.entry_class_get(actor=actor, class_id=class_id)
        marks.period_mark_set(actor=actor, student_id=student_id, date=day, period=period, kind=kind,
                              base_version=version, amendment_reason=amendment_reason)
    except NotFoundOrNoAccess:
        raise Http404 from None
    except ValidationFailed as exc:
        return 400, _first_error(exc), ""
    except MarkConflict as exc:
        return 409, "", str(exc)
    return 200, "", ""


def _row_response(request: HttpRequest, class_id: int, day: datetime.date, student_id: uuid.UUID, *,
                  status: int, error: str = "", conflict: str = "", panel: str = "",
                  pending: MarkInput | None = None, klass: HomeroomClass | None = None) -> HttpResponse:
    actor = _actor(request)
    try:
        sheet, row = registers.entry_row(actor=actor, class_id=class_id, day=day, student_id=student_id,
                                         klass=klass)
    except NotFoundOrNoAccess:
        raise Http404 from None
    row.error, row.conflict, row.open_panel = error, conflict, panel
    if pending is not None and panel:
        # Keep what the teacher chose in the panel, so fixing one field does not mean choosing everything again.
        row.suspension_kind, row.disease = pending.suspension_kind, pending.disease
        row.kinship_degree, row.detail = pending.kinship_degree, pending.detail
    context = _entry_context_for_row(sheet)
    context["row"] = row
    response = render(request, "attendance/partials/entry_row.html", context, status=status)
    # entry.js checks this header: a sign-in page (after the session ended) must not be swapped into a row.
    response["X-Komu-Row"] = str(student_id)
    return response


def _entry_context_for_row(sheet: registers.EntrySheet) -> dict[str, Any]:
    return {
        "sheet": sheet, "klass": sheet.homeroom_class, "day": sheet.day, "buttons": registers.ROW_BUTTONS,
        "absence_reasons": AbsenceReason.choices, "suspension_kinds": SuspensionKind.choices,
        "diseases": Disease.choices,
        "kinship": [(d, sheet.rules.bereavement_limits.get(str(d))) for d in marks.KINSHIP_DEGREES],
    }


@login_required
@require_capability(roles.ATTENDANCE_RECORD)
@require_POST
def row_save(request: HttpRequest, class_id: int, day: datetime.date, student_id: uuid.UUID) -> HttpResponse:
    """One pupil's mark from entry.js: kind and details, `version` (what the screen showed), `key` (idempotency),
    `amendment_reason` for a month in approval. Answers the re-rendered row: 200, 400 (with the message on the
    row) or 409 (the current value, who changed it, and that the change was not saved)."""
    actor = _actor(request)
    post = request.POST
    try:
        # The class the row is answered in, fetched once: the re-rendered row reuses it.
        klass = marks.entry_class_get(actor=actor, class_id=class_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    kind = post.get("kind", "")
    try:
        data = _mark_input(lambda name: post.get(name, ""), kind)
        version = _int_or_none(post.get("version", ""), _("画面を再読み込みしてから、もう一度操作してください。"))
    except ValidationFailed as exc:
        return _row_response(request, class_id, day, student_id, status=400, error=_first_error(exc),
                             panel=kind if kind in PANEL_KINDS else "", klass=klass)
    status, error, conflict = _save_one(actor, class_id, day, student_id, data, version,
                                        post.get("amendment_reason", ""), post.get("key", ""))
    panel = kind if status == 400 and kind in PANEL_KINDS else ""
    return _row_response(request, class_id, day, student_id, status=status, error=error, conflict=conflict,
                         panel=panel, pending=data, klass=klass)


@login_required
@require_capability(roles.ATTENDANCE_RECORD)
@require_POST
def period_save(request: HttpRequest, class_id: int, day: datetime.date, student_id: uuid.UUID,
                period: int) -> HttpResponse:
    """One period (時限) of one pupil, from entry.js; answers the row (the day's mark re-derived)."""
    actor = _actor(request)
    try:
        version = _int_or_none(request.POST.get("version", ""), _("画面を再読み込みしてから、もう一度操作してください。"))
    except ValidationFailed as exc:
        return _row_response(request, class_id, day, student_id, status=400, error=_first_error(exc))
    status, error, conflict = _save_period(actor, class_id, day, student_id, period, request.POST.get("kind", ""),
                                           version, request.POST.get("amendment_reason", ""))
    return _row_response(request, class_id, day, student_id, status=status, error=error, conflict=conflict)


@login_required
@require_capability(roles.ATTENDANCE_RECORD)
@require_POST
def confirm(request: HttpRequest, class_id: int, day: datetime.date) -> HttpResponse:
    """「出欠を確定」 from entry.js, with any changes still waiting to be saved (lists `student`, `kind`,
    `absence_reason`, `suspension_kind`, `disease`, `kinship_degree`, `detail`, `version`): the changes and the
    confirmation are one transaction. Answers the status bar; 409 when a change conflicted (nothing confirmed)."""
    actor = _actor(request)
    post = request.POST
    students = post.getlist("student")
    columns = {name: post.getlist(name) for name in
               ("kind", "absence_reason", "suspension_kind", "disease", "kinship_degree", "detail", "version")}
    if any(len(values) != len(students) for values in columns.values()):
        return HttpResponse(_("送信内容が正しくありません。画面を再読み込みしてください。"), status=400)
    rows: dict[uuid.UUID, tuple[MarkInput, int | None]] = {}
    error = ""
    for i, sid in enumerate(students):
        try:
            student_id = uuid.UUID(sid)
        except ValueError:
            raise Http404 from None
        try:
            data = _mark_input(lambda name, i=i: columns[name][i])  # type: ignore[misc]
            version = _int_or_none(columns["version"][i], _RELOAD_MESSAGE)
        except ValidationFailed as exc:
            error = _first_error(exc)
            break
        rows[student_id] = (data, version)
    result = None
    if not error:
        try:
            result = marks.register_save(actor=actor, class_id=class_id, date=day, rows=rows,
                                         amendment_reason=post.get("amendment_reason", ""), confirm=True)
        except NotFoundOrNoAccess:
            raise Http404 from None
        except ValidationFailed as exc:
            error = _first_error(exc)
    if not _is_htmx(request):
        if error:
            messages.error(request, error)
        elif result is not None and result.conflicts:
            messages.error(request, _("ほかの画面で変更された欄があるため、確定していません。内容を確かめてください。"))
        else:
            messages.success(request, _("出欠を確定しました。"))
        return redirect(_register_url(class_id, day))
    try:
        if result is not None:
            sheet = registers.entry_status(actor=actor, class_id=class_id, day=day, klass=result.homeroom_class,
                                           rules=result.rules, status=result.month_status, register=result.register)
        else:
            sheet = registers.entry_status(actor=actor, class_id=class_id, day=day)
    except NotFoundOrNoAccess:
        raise Http404 from None
    status = 400 if error else 409 if result is not None and result.conflicts else 200
    context = {"sheet": sheet, "klass": sheet.homeroom_class, "day": day, "confirm_error": error,
               "conflicts": len(result.conflicts) if result else 0, "just_saved": len(result.saved) if result else 0}
    response = render(request, "attendance/partials/entry_status.html", context, status=status)
    response["X-Komu-Status"] = "1"
    return response


# --- Year totals ---------------------------------------------------------------------------------------------------

@login_required
@require_capability(roles.ATTENDANCE_VIEW)
def class_year(request: HttpRequest, class_id: int) -> HttpResponse:
    """出欠の記録 of the class's pupils for the school year so far: the 指導要録 figures."""
    actor = _actor(request)
    try:
        year = registers.class_year_totals(actor=actor, class_id=class_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    klass = year.homeroom_class
    return render(request, "attendance/class_year.html", {
        "year": year,
        "klass": klass,
        "long_absence": overview_selectors.LONG_ABSENCE,
        "breadcrumbs": [
            {"label": _("出欠"), "url": reverse("attendance:home") + "?list=1"},
            {"label": klass.display_label, "url": _register_url(klass.pk, min(timezone.localdate(),
                                                                       klass.school_year.end_date))},
            {"label": _("年間の出欠の記録"), "url": ""},
        ],
    })


# --- School calendar -----------------------------------------------------------------------------------------------

class CalendarDayForm(forms.Form):
    date = forms.DateField(label=gettext_lazy("日付"), widget=forms.DateInput(attrs={"type": "date"}))
    kind = forms.ChoiceField(
        label=gettext_lazy("日の種類"), required=False,
        choices=[("", gettext_lazy("曜日の規則どおり（設定を消す）")), *CalendarDay.Kind.choices],
    )
    note = forms.CharField(label=gettext_lazy("備考（行事名など）"), required=False, max_length=100,
                           help_text=gettext_lazy("例：土曜授業（学習発表会）、開校記念日、台風による臨時休業"))


class ClosureForm(forms.Form):
    homeroom_class = forms.TypedChoiceField(label=gettext_lazy("学級"), coerce=int)
    start_date = forms.DateField(label=gettext_lazy("開始日"), widget=forms.DateInput(attrs={"type": "date"}))
    end_date = forms.DateField(label=gettext_lazy("終了日"), widget=forms.DateInput(attrs={"type": "date"}))
    disease = forms.ChoiceField(label=gettext_lazy("原因の感染症"), required=False,
                                choices=[("", gettext_lazy("（選ばない）")), *Disease.choices])
    note = forms.CharField(label=gettext_lazy("備考"), required=False, max_length=100)

    def __init__(self, *args: Any, classes: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["homeroom_class"].choices = [(c.pk, c.display_label) for c in classes]  # type: ignore[attr-defined]


def _put_errors(form: forms.Form, exc: ValidationFailed) -> None:
    if not exc.errors:
        form.add_error(None, str(exc))
    for name, errors in exc.errors.items():
        for error in errors:
            form.add_error(name if name in form.fields else None, error)


@login_required
@require_capability(roles.DIRECTORY_MANAGE)
def calendar_today(request: HttpRequest, school_id: int) -> HttpResponse:
    today = timezone.localdate()
    return redirect("attendance:calendar_month", school_id=school_id, year=today.year, month=today.month)


@login_required
@require_capability(roles.DIRECTORY_MANAGE)
def calendar_month(request: HttpRequest, school_id: int, year: int, month: int) -> HttpResponse:
    """One month of the school calendar: 授業日, national holidays, the school's own days off and extra school
    days, 臨時休業 and 学級閉鎖. POST sets one day (form `day`) or registers a 学級閉鎖 (form `closure`)."""
    if not (1 <= month <= 12 and 2000 <= year <= 2100):
        raise Http404
    actor = _actor(request)
    try:
        month_view = calendar_selectors.calendar_month(actor=actor, school_id=school_id, year=year, month=month)
    except NotFoundOrNoAccess:
        raise Http404 from None
    here = reverse("attendance:calendar_month", kwargs={"school_id": school_id, "year": year, "month": month})
    chosen = _parse_day(request.GET.get("date"))
    initial: dict[str, Any] = {}
    if chosen is not None:
        cell = next((c for c in month_view.days if c.date == chosen), None)
        initial = {"date": chosen, "kind": cell.kind if cell else "",
                   "note": cell.override.note if cell and cell.override else ""}
    day_form = CalendarDayForm(prefix="day", initial=initial)
    closure_form = ClosureForm(prefix="closure", classes=month_view.classes)
    status = 200
    if request.method == "POST":
        if "day-date" in request.POST:
            day_form = CalendarDayForm(request.POST, prefix="day")
            if day_form.is_valid():
                data = day_form.cleaned_data
                try:
                    calendar_services.calendar_day_set(actor=actor, school_id=school_id, date=data["date"],
                                                       kind=data["kind"], note=data["note"])
                except NotFoundOrNoAccess:
                    raise Http404 from None
                except ValidationFailed as exc:
                    _put_errors(day_form, exc)
                else:
                    messages.success(request, _("%(date)s を保存しました。") % {
                        "date": data["date"].strftime("%m月%d日").lstrip("0")})
                    return redirect(f"{here}#day-{data['date'].isoformat()}")
        else:
            closure_form = ClosureForm(request.POST, prefix="closure", classes=month_view.classes)
            if closure_form.is_valid():
                data = closure_form.cleaned_data
                try:
                    calendar_services.class_closure_create(
                        actor=actor, class_id=data["homeroom_class"], start_date=data["start_date"],
                        end_date=data["end_date"], disease=data["disease"], note=data["note"])
                except NotFoundOrNoAccess:
                    raise Http404 from None
                except ValidationFailed as exc:
                    _put_errors(closure_form, exc)
                else:
                    messages.success(request, _("学級閉鎖を登録しました。"))
                    return redirect(here)
        status = 400
    return render(request, "attendance/calendar.html", {
        "month": month_view,
        "school": month_view.school,
        "day_form": day_form,
        "closure_form": closure_form,
        "kinds": CalendarDay.Kind.choices,
        "weekday_headers": [calendar_selectors.WEEKDAY_LABELS[6], *calendar_selectors.WEEKDAY_LABELS[:6]],  # Sunday first
        "breadcrumbs": [
            {"label": _("出欠"), "url": reverse("attendance:home") + "?list=1"},
            {"label": _("学校カレンダー"), "url": ""},
        ],
    }, status=status)


@login_required
@require_capability(roles.DIRECTORY_MANAGE)
@require_POST
def closure_delete(request: HttpRequest, school_id: int, closure_id: int) -> HttpResponse:
    actor = _actor(request)
    try:
        calendar_services.class_closure_delete(actor=actor, closure_id=closure_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    except ValidationFailed as exc:
        messages.error(request, _first_error(exc))
    else:
        messages.success(request, _("学級閉鎖を取り消しました。"))
    back = request.POST.get("back", "")
    if back.startswith("/attendance/") and "//" not in back:
        return redirect(back)
    return redirect("attendance:calendar", school_id=school_id)


# --- School rules --------------------------------------------------------------------------------------------------

WEEKDAY_CHOICES = list(enumerate(calendar_selectors.WEEKDAY_LABELS))  # 0 = 月 (Monday), translated


class RulesForm(forms.Form):
    official_absence_counts_as_present = forms.BooleanField(
        label=gettext_lazy("公欠を出席として数える"), required=False,
        help_text=gettext_lazy("外すと、公欠の日は「出席停止・忌引等の日数」に入り、出席しなければならない日数から除きます。"),
    )
    lates_per_absence = forms.IntegerField(
        label=gettext_lazy("遅刻・早退の何回で欠席1日とするか"), min_value=0, max_value=30,
        help_text=gettext_lazy("0 は換算しません。例：6 と入力すると、遅刻と早退が合わせて6回で欠席1日と数えます。"),
    )
    bereavement_1 = forms.IntegerField(label=gettext_lazy("忌引の日数：1親等（父母・子）"), min_value=0, max_value=30)
    bereavement_2 = forms.IntegerField(label=gettext_lazy("忌引の日数：2親等（祖父母・兄弟姉妹）"), min_value=0,
                                       max_value=30)
    bereavement_3 = forms.IntegerField(label=gettext_lazy("忌引の日数：3親等（おじ・おば）"), min_value=0, max_value=30,
                                       help_text=gettext_lazy("最初の忌引の日から数えた暦の日数です。超えた日は欠席（その他）になります。"))
    excused_kinds = forms.MultipleChoiceField(
        label=gettext_lazy("「出席停止・忌引等の日数」に数える区分"), required=False,
        choices=[(MarkKind.SUSPENSION, gettext_lazy("出席停止")), (MarkKind.MOURNING, gettext_lazy("忌引"))],
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("外した区分の日は欠席（その他）として数えます。学級閉鎖の日は常に含みます。"),
    )
    weekdays = forms.TypedMultipleChoiceField(
        label=gettext_lazy("授業を行う曜日"), choices=WEEKDAY_CHOICES, coerce=int, widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("国民の祝日は自動で休日になります。土曜授業などは学校カレンダーで1日ずつ設定します。"),
        error_messages={"required": gettext_lazy("授業を行う曜日を1つ以上選んでください。")},
    )
    report_cutoff = forms.TimeField(
        label=gettext_lazy("保護者からの欠席連絡の締切時刻"), widget=forms.TimeInput(attrs={"type": "time"}),
        help_text=gettext_lazy("この時刻を過ぎた当日の連絡は、保護者の画面で受け付けず、学校へ電話するよう案内します。"),
    )
    per_period = forms.BooleanField(
        label=gettext_lazy("時限ごとに出欠を記録する（高等学校）"), required=False,
        help_text=gettext_lazy("1日の出欠は時限から決まります：全時限欠課で欠席、最初の時限から欠課で遅刻、最後の時限まで欠課で早退。"),
    )
    periods_per_day = forms.IntegerField(label=gettext_lazy("1日の時限数"), min_value=1, max_value=10)


@login_required
@require_capability(roles.DIRECTORY_MANAGE)
def school_rules(request: HttpRequest, school_id: int) -> HttpResponse:
    """出欠の規則 of one school."""
    actor = _actor(request)
    try:
        rules = calendar_selectors.rules_get(actor=actor, school_id=school_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    current = rules_services.rules_input_of(rules)
    initial = {
        "official_absence_counts_as_present": current.official_absence_counts_as_present,
        "lates_per_absence": current.lates_per_absence,
        **{f"bereavement_{d}": current.bereavement_limits.get(d, 0) for d in rules_services.KINSHIP_DEGREES},
        "excused_kinds": current.excused_kinds,
        "weekdays": current.weekdays,
        "report_cutoff": current.report_cutoff,
        "per_period": current.per_period,
        "periods_per_day": current.periods_per_day,
    }
    status = 200
    if request.method == "POST":
        form = RulesForm(request.POST)
        if form.is_valid():
            d = form.cleaned_data
            data = rules_services.RulesInput(
                official_absence_counts_as_present=d["official_absence_counts_as_present"],
                lates_per_absence=d["lates_per_absence"],
                bereavement_limits={deg: d[f"bereavement_{deg}"] for deg in rules_services.KINSHIP_DEGREES},
                excused_kinds=list(d["excused_kinds"]), weekdays=list(d["weekdays"]),
                report_cutoff=d["report_cutoff"], per_period=d["per_period"], periods_per_day=d["periods_per_day"],
            )
            try:
                rules_services.attendance_rules_update(actor=actor, school_id=school_id, data=data)
            except NotFoundOrNoAccess:
                raise Http404 from None
            except ValidationFailed as exc:
                _put_errors(form, exc)
            else:
                messages.success(request, _("出欠の規則を保存しました。"))
                return redirect("attendance:rules", school_id=school_id)
        status = 400
    else:
        form = RulesForm(initial=initial)
    return render(request, "attendance/rules.html", {
        "form": form,
        "school": rules.school,
        "breadcrumbs": [
            {"label": _("出欠"), "url": reverse("attendance:home") + "?list=1"},
            {"label": _("出欠の規則"), "url": ""},
        ],
    }, status=status)


# --- The principal's overview --------------------------------------------------------------------------------------

@login_required
@require_capability(roles.ATTENDANCE_VIEW)
def overview_home(request: HttpRequest) -> HttpResponse:
    schools = overview_selectors.overview_schools(_actor(request))
    if not schools:
        raise Http404
    if len(schools) == 1:
        return redirect("attendance:overview", school_id=schools[0].pk)
    return redirect(reverse("attendance:home") + "?list=1")


@login_required
@require_capability(roles.ATTENDANCE_VIEW)
def overview(request: HttpRequest, school_id: int) -> HttpResponse:
    """The school's attendance today: absences by class (table and chart), classes not entered, 出席停止 by
    disease this week, consecutive-absence alerts and 長期欠席."""
    actor = _actor(request)
    day = _parse_day(request.GET.get("day")) or timezone.localdate()
    try:
        data = overview_selectors.school_overview(actor=actor, school_id=school_id, day=day)
    except NotFoundOrNoAccess:
        raise Http404 from None
    return render(request, "attendance/overview.html", {
        "overview": data,
        "school": data.school,
        "day": day,
        "today": timezone.localdate(),
        "chart": data.chart if data.classes else None,
        "categories": LongAbsenceCategory.choices,
        "can_record": actor.has(roles.ATTENDANCE_RECORD),
        "alert_board": overview_selectors.ALERT_BOARD,
        "long_absence": overview_selectors.LONG_ABSENCE,
        "breadcrumbs": [
            {"label": _("出欠"), "url": reverse("attendance:home") + "?list=1"},
            {"label": _("%(school)s の出欠状況") % {"school": data.school.name}, "url": ""},
        ],
    })


@login_required
@require_capability(roles.ATTENDANCE_RECORD)
@require_POST
def long_absence_record(request: HttpRequest, school_id: int, student_id: uuid.UUID) -> HttpResponse:
    """Record the MEXT reason category of a pupil's 長期欠席 (from the overview)."""
    actor = _actor(request)
    year = _int_or_none(request.POST.get("year", ""), "")
    if year is None:
        raise Http404
    try:
        long_absence.long_absence_record_set(actor=actor, student_id=student_id, year=year,
                                             category=request.POST.get("category", ""))
    except NotFoundOrNoAccess:
        raise Http404 from None
    except ValidationFailed as exc:
        messages.error(request, _first_error(exc))
    else:
        messages.success(request, _("長期欠席の理由の区分を記録しました。"))
    return redirect(reverse("attendance:overview", kwargs={"school_id": school_id}) + "#long-absence")


urlpatterns = [
    path("", entry_home, name="home"),
    path("classes/<int:class_id>/<isodate:day>/", register, name="register"),
    path("classes/<int:class_id>/<isodate:day>/confirm/", confirm, name="confirm"),
    path("classes/<int:class_id>/<isodate:day>/pupils/<uuid:student_id>/", row_save, name="row"),
    path("classes/<int:class_id>/<isodate:day>/pupils/<uuid:student_id>/periods/<int:period>/", period_save,
         name="period"),
    path("classes/<int:class_id>/year/", class_year, name="class_year"),
    path("schools/<int:school_id>/calendar/", calendar_today, name="calendar"),
    path("schools/<int:school_id>/calendar/<int:year>/<int:month>/", calendar_month, name="calendar_month"),
    path("schools/<int:school_id>/closures/<int:closure_id>/delete/", closure_delete, name="closure_delete"),
    path("schools/<int:school_id>/rules/", school_rules, name="rules"),
    path("overview/", overview_home, name="overview_home"),
    path("schools/<int:school_id>/overview/", overview, name="overview"),
    path("schools/<int:school_id>/long-absence/<uuid:student_id>/", long_absence_record, name="long_absence"),
]
