"""年次更新 (year roll-over) with its preview, and the school's 出席番号の付け方 (numbering rule).

Thin: the preview is read through selectors.rollover_plan_get (which records the read of names); applying goes
through services.rollover_apply (one transaction, audited, refused a second time).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from komu.access import roles
from komu.access.scope import get_actor
from komu.core import codes
from komu.core.errors import NotFoundOrNoAccess, ValidationFailed
from komu.core.wareki import fiscal_year_of
from komu.directory.models import School
from komu.students import selectors, services
from komu.students.forms import NumberingRuleForm, RolloverForm
from komu.web.decorators import require_capability


def _int(value: Any) -> int | None:
    text = str(value or "")
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


def _school(schools: list[School], raw: Any) -> School | None:
    school_id = _int(raw)
    if school_id is None:
        return schools[0] if len(schools) == 1 else None
    for school in schools:
        if school.pk == school_id:
            return school
    raise Http404


@login_required
@require_capability(roles.YEAR_ROLLOVER)
def rollover(request: HttpRequest) -> HttpResponse:
    """年次更新: GET shows the preview for the chosen options; POST applies it once confirmed."""
    actor = get_actor(request.user)
    params = request.POST if request.method == "POST" else request.GET
    schools = selectors.placement_schools(actor=actor, capability=roles.YEAR_ROLLOVER)
    school = _school(schools, params.get("school"))
    crumbs = [{"label": _("児童生徒"), "url": reverse("students:list")}, {"label": _("年次更新"), "url": ""}]
    if school is None:
        return render(request, "students/rollover.html", {"schools": schools, "plan": None, "breadcrumbs": crumbs})
    current = fiscal_year_of(timezone.localdate())
    from_year = _int(params.get("from_year")) or selectors.rollover_default_from_year(actor=actor,
                                                                                     school_id=school.pk)
    if not 2000 <= from_year <= 2100:
        raise Http404
    grades = codes.grades_for_school_type(school.school_type)
    grade_choices = [(g, codes.grade_display(g)) for g in grades[:-1]]
    reform = frozenset(g for g in params.getlist("reform") if g in grades[:-1])
    if request.method == "POST":
        form = RolloverForm(request.POST, grade_choices=grade_choices)
        if form.is_valid():
            options = services.RolloverOptions(
                graduation_date=form.cleaned_data["graduation_date"],
                reform_grades=frozenset(form.cleaned_data["reform"]), digest=form.cleaned_data["digest"],
            )
            try:
                result = services.rollover_apply(actor=actor, school_id=school.pk, from_year=from_year,
                                                 plan_options=options)
            except NotFoundOrNoAccess:
                raise Http404 from None
            except ValidationFailed as exc:
                if not exc.errors:
                    form.add_error(None, str(exc))
                for name, errors in exc.errors.items():
                    for error in errors:
                        form.add_error(name if name in form.fields else None, error)
            else:
                messages.success(request, _(
                    "年次更新を実行しました。進級 %(promoted)d 名（うち学級編制待ち %(pending)d 名）、卒業 %(graduated)d 名、"
                    "作成した学級 %(created)d。"
                ) % {"promoted": result.promoted, "pending": result.pending, "graduated": result.graduated,
                     "created": result.classes_created})
                query = urlencode({"school": school.pk, "from_year": from_year})
                return redirect(f"{reverse('students:rollover')}?{query}")
    else:
        form = None
    try:
        plan = selectors.rollover_plan_get(actor=actor, school_id=school.pk, from_year=from_year,
                                           reform_grades=reform)
    except NotFoundOrNoAccess:
        raise Http404 from None
    except ValidationFailed as exc:
        return render(request, "students/rollover.html", {
            "schools": schools, "school": school, "plan": None, "missing": str(exc), "from_year": from_year,
            "year_choices": sorted({current - 1, current, from_year}),
            "breadcrumbs": crumbs,
        })
    if form is None:
        form = RolloverForm(
            initial={"graduation_date": plan.graduation_default, "reform": sorted(reform), "digest": plan.digest},
            grade_choices=grade_choices,
        )
    return render(request, "students/rollover.html", {
        "schools": schools, "school": school, "plan": plan, "form": form, "from_year": from_year,
        "year_choices": sorted({current - 1, current, from_year}),
        "reform": reform, "grade_choices": grade_choices, "breadcrumbs": crumbs,
    })


@login_required
@require_capability(roles.STUDENTS_EDIT)
def numbering_rule(request: HttpRequest) -> HttpResponse:
    """出席番号の付け方: the school's rule, and each class of this and next 年度 with a "renumber" button."""
    actor = get_actor(request.user)
    params = request.POST if request.method == "POST" else request.GET
    schools = selectors.numbering_schools(actor=actor)
    school = _school(schools, params.get("school"))
    crumbs = [{"label": _("児童生徒"), "url": reverse("students:list")},
              {"label": _("出席番号の付け方"), "url": ""}]
    if school is None:
        return render(request, "students/numbering_rule.html", {"schools": schools, "school": None,
                                                                "breadcrumbs": crumbs})
    current = selectors.numbering_rule_get(actor=actor, school_id=school.pk)
    if request.method == "POST":
        form = NumberingRuleForm(request.POST)
        if form.is_valid():
            try:
                services.numbering_rule_set(actor=actor, school_id=school.pk, order=form.cleaned_data["order"])
            except NotFoundOrNoAccess:
                raise Http404 from None
            except ValidationFailed as exc:
                for errors in exc.errors.values():
                    for error in errors:
                        form.add_error("order", error)
            else:
                messages.success(request, _("出席番号の付け方を保存しました。番号を付け直す学級では「番号を付け直す」を押してください。"))
                return redirect(f"{reverse('students:numbering_rule')}?school={school.pk}")
    else:
        form = NumberingRuleForm(initial={"order": current})
    return render(request, "students/numbering_rule.html", {
        "schools": schools, "school": school, "form": form,
        "classes": selectors.class_choices_for(actor=actor, school_id=school.pk),
        "breadcrumbs": crumbs,
    })
