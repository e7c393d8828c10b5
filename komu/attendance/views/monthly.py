"""Monthly 出席簿 screens: the classes, a class's year, the month page (grid, totals, corrections, approval and
seals), submission, the PDFs (monthly register, annual 出欠の記録), and the school's year with the principal's
年度末確定 button. Reads through komu.attendance.selectors.monthly, writes through services.monthly; out of
scope is 404.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from komu.access import roles
from komu.access.scope import get_actor
from komu.approvals.views import DecisionForm
from komu.attendance import pdf
from komu.attendance.selectors import monthly as selectors
from komu.attendance.services import monthly as services
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.disclosures.models import Disclosure
from komu.disclosures.services import disclosure_record, watermark_text
from komu.disclosures.views import ask_reason
from komu.web.decorators import require_capability


def _crumbs(*items: tuple[str, str]) -> list[dict[str, str]]:
    return [{"label": _("月の出席簿"), "url": reverse("attendance:monthly_index")},
            *({"label": label, "url": url} for label, url in items)]


@login_required
@require_capability(roles.ATTENDANCE_VIEW)
def monthly_index(request: HttpRequest) -> HttpResponse:
    """The classes whose monthly registers the person reads; a homeroom teacher goes straight to their class."""
    actor = get_actor(request.user)
    classes = selectors.class_choices_for(actor=actor)
    if len(classes) == 1:
        return redirect("attendance:monthly_class", class_id=classes[0].pk)
    schools: dict[int, Any] = {}
    for klass in classes:
        schools.setdefault(klass.school_year_id, {"year": klass.school_year, "classes": []})["classes"].append(klass)
    return render(request, "attendance/monthly_index.html", {
        "groups": list(schools.values()),
        "breadcrumbs": _crumbs(),
    })


@login_required
@require_capability(roles.APPROVALS_USE)
def monthly_class(request: HttpRequest, class_id: int) -> HttpResponse:
    try:
        year = selectors.class_year_for(actor=get_actor(request.user), class_id=class_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    return render(request, "attendance/monthly_class.html", {
        "class_year": year,
        "breadcrumbs": _crumbs((str(year.klass), "")),
    })


def _month_context(request: HttpRequest, class_id: int, year: int, month: int, **extra: Any) -> dict[str, Any]:
    actor = get_actor(request.user)
    try:
        page = selectors.monthly_register_get_for(actor=actor, class_id=class_id, year=year, month=month)
    except NotFoundOrNoAccess:
        raise Http404 from None
    glyphs = pdf.unprintable(row.name for row in page.rows)
    return {
        "page": page,
        "glyph_note": glyphs.describe(),
        "decision_form": extra.pop("decision_form", None) or DecisionForm(),
        "breadcrumbs": _crumbs((str(page.klass), reverse("attendance:monthly_class", args=[page.klass.pk])),
                               (_("%(month)d月") % {"month": month}, "")),
        **extra,
    }


@login_required
@require_capability(roles.APPROVALS_USE)
def monthly(request: HttpRequest, class_id: int, year: int, month: int) -> HttpResponse:
    """The month of one class, as the paper register shows it, with its approval."""
    return render(request, "attendance/monthly.html", _month_context(request, class_id, year, month))


@login_required
@require_capability(roles.ATTENDANCE_RECORD)
@require_POST
def monthly_submit(request: HttpRequest, class_id: int, year: int, month: int) -> HttpResponse:
    try:
        services.monthly_register_submit(actor=get_actor(request.user), class_id=class_id, year=year, month=month)
    except NotFoundOrNoAccess:
        raise Http404 from None
    except (PermissionDeniedError, ValidationFailed) as exc:
        context = _month_context(request, class_id, year, month, submit_error=str(exc))
        return render(request, "attendance/monthly.html", context, status=400)
    messages.success(request, _("出席簿を提出しました。決裁が始まります。"))
    return redirect("attendance:monthly", class_id=class_id, year=year, month=month)


def _printer(request: HttpRequest) -> str:
    """Who printed: named on every page of the copy."""
    return str(getattr(request.user, "display_name", "") or request.user.get_username())


def _pdf_response(result: pdf.PdfResult, filename: str) -> HttpResponse:
    response = HttpResponse(result.content, content_type="application/pdf")
    # RFC 6266 with a UTF-8 name: the Japanese title survives in every current browser.
    response["Content-Disposition"] = f"inline; filename=\"register.pdf\"; filename*=UTF-8''{quote(filename)}"
    response["Cache-Control"] = "no-store"
    if result.glyphs.missing:
        response["X-Komu-Missing-Glyphs"] = " ".join(f"U+{ord(c):04X}" for c in sorted(result.glyphs.missing))
    return response


@login_required
@require_capability(roles.APPROVALS_USE)
def monthly_pdf(request: HttpRequest, class_id: int, year: int, month: int) -> HttpResponse:
    """The month's PDF (printing is audited like an export)."""
    actor = get_actor(request.user)
    back = reverse("attendance:monthly", args=[class_id, year, month])
    if "reason" not in request.GET:
        # Asked before anything is read (a printed copy is a disclosure, komu.disclosures); out of scope is
        # still 404 here.
        try:
            selectors.class_year_for(actor=actor, class_id=class_id)
        except NotFoundOrNoAccess:
            raise Http404 from None
        return ask_reason(request, document=_("出席簿（%(y)d年%(m)d月）") % {"y": year, "m": month}, back_url=back)
    try:
        page = selectors.monthly_register_print_for(actor=actor, class_id=class_id, year=year, month=month)
    except NotFoundOrNoAccess:
        raise Http404 from None
    try:
        disclosure = disclosure_record(
            actor=actor, document=f"出席簿 {page.klass} {year}年{month}月", school=page.school,
            person_ids=[row.student_id for row in page.rows], fields=["shusseki_no", "name", "attendance"],
            reason=request.GET["reason"], medium=Disclosure.Medium.PRINT,
        )
    except ValidationFailed as exc:
        return ask_reason(request, document=str(page.title), back_url=back, error=str(exc))
    result = pdf.monthly_register_pdf(page, printed_by=_printer(request), printed_at=disclosure.created_at,
                                      watermark=watermark_text(disclosure), serial=disclosure.serial)
    response = _pdf_response(result, f"出席簿_{page.klass}_{year}年{month}月_{disclosure.serial}.pdf")
    response["X-Komu-Serial"] = disclosure.serial
    return response


@login_required
@require_capability(roles.ATTENDANCE_VIEW)
def annual_pdf(request: HttpRequest, class_id: int) -> HttpResponse:
    """指導要録「出欠の記録」 of the class's pupils (or one pupil: ?student=<id>) for the class's year."""
    actor = get_actor(request.user)
    student = request.GET.get("student") or None
    back = reverse("attendance:monthly_class", args=[class_id])
    if "reason" not in request.GET:
        try:
            selectors.class_year_for(actor=actor, class_id=class_id)
        except NotFoundOrNoAccess:
            raise Http404 from None
        return ask_reason(request, document=_("出欠の記録（指導要録）"), back_url=back)
    try:
        record = selectors.annual_record_print_for(actor=actor, class_id=class_id, student_id=student)
    except NotFoundOrNoAccess:
        raise Http404 from None
    try:
        disclosure = disclosure_record(
            actor=actor, document=f"出欠の記録 {record.klass} {record.fiscal_year}年度", school=record.school,
            person_ids=[p.student_id for p in record.pupils], fields=["shusseki_no", "name", "attendance",
                                                                      "attendance_notes"],
            reason=request.GET["reason"], medium=Disclosure.Medium.PRINT,
        )
    except ValidationFailed as exc:
        return ask_reason(request, document=_("出欠の記録（指導要録）"), back_url=back, error=str(exc))
    result = pdf.annual_record_pdf(record, printed_by=_printer(request), printed_at=disclosure.created_at,
                                   watermark=watermark_text(disclosure), serial=disclosure.serial)
    response = _pdf_response(result, f"出欠の記録_{record.klass}_{record.fiscal_year}年度_{disclosure.serial}.pdf")
    response["X-Komu-Serial"] = disclosure.serial
    return response


@login_required
@require_capability(roles.ATTENDANCE_VIEW)
def monthly_school(request: HttpRequest, school_id: int, fiscal_year: int, **extra: Any) -> HttpResponse:
    """A school's registers for the year, class × month, and (for the principal) 年度末確定."""
    try:
        overview = selectors.school_year_overview_for(actor=get_actor(request.user), school_id=school_id,
                                                      fiscal_year=fiscal_year)
    except NotFoundOrNoAccess:
        raise Http404 from None
    return render(request, "attendance/monthly_school.html", {
        "overview": overview,
        "breadcrumbs": _crumbs((overview.school.name, "")),
        **extra,
    }, status=400 if extra.get("close_error") else 200)


@login_required
@require_capability(roles.ATTENDANCE_CLOSE_YEAR)
@require_POST
def year_close(request: HttpRequest, school_id: int, fiscal_year: int) -> HttpResponse:
    actor = get_actor(request.user)
    try:
        overview = selectors.school_year_overview_for(actor=actor, school_id=school_id, fiscal_year=fiscal_year)
    except NotFoundOrNoAccess:
        raise Http404 from None
    if request.POST.get("confirm") != "yes":
        return monthly_school(request, school_id, fiscal_year,
                              close_error=_("確認のチェックを入れてから確定してください。"))
    try:
        result = services.attendance_year_close(actor=actor, school=overview.school, fiscal_year=fiscal_year)
    except NotFoundOrNoAccess:
        raise Http404 from None
    except ValidationFailed as exc:
        return monthly_school(request, school_id, fiscal_year, close_error=str(exc))
    messages.success(request, _("%(year)d年度の出席簿を確定しました（%(n)d件）。これ以後は変更できません。") % {
        "year": fiscal_year, "n": result.locked})
    return redirect("attendance:monthly_school", school_id=school_id, fiscal_year=fiscal_year)


urlpatterns = [
    path("monthly/", monthly_index, name="monthly_index"),
    path("monthly/<int:class_id>/", monthly_class, name="monthly_class"),
    path("monthly/<int:class_id>/<int:year>/<int:month>/", monthly, name="monthly"),
    path("monthly/<int:class_id>/<int:year>/<int:month>/submit/", monthly_submit, name="monthly_submit"),
    path("monthly/<int:class_id>/<int:year>/<int:month>/pdf/", monthly_pdf, name="monthly_pdf"),
    path("monthly/<int:class_id>/annual.pdf", annual_pdf, name="annual_pdf"),
    path("monthly/school/<int:school_id>/<int:fiscal_year>/", monthly_school, name="monthly_school"),
    path("monthly/school/<int:school_id>/<int:fiscal_year>/close/", year_close, name="year_close"),
]
