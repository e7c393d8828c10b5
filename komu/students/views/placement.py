"""学級編制: place pupils awaiting a class (accepted entrants, transfer-ins, re-formed grades) into a 年度's classes
— by ticking them and choosing a class, by dragging (static/students/placement.js posts the same form), or by an
automatic proposal shown before it is applied — and renumber a class by the school's rule.

Thin: reads through komu.students.selectors (scoped, audited), writes through komu.students.services.
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
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from komu.access import roles
from komu.access.scope import Actor, get_actor
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.core.wareki import fiscal_year_of
from komu.directory.models import School
from komu.students import selectors, services
from komu.students.forms import PlacementForm
from komu.web.decorators import require_capability

_MIN_YEAR = 2000
_MAX_YEAR = 2100


def _int(value: Any) -> int | None:
    text = str(value or "")
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


def _chosen_school(actor: Actor, raw: Any) -> tuple[School | None, list[School]]:
    schools = selectors.placement_schools(actor=actor)
    school_id = _int(raw)
    if school_id is None:
        return (schools[0] if len(schools) == 1 else None), schools
    for school in schools:
        if school.pk == school_id:
            return school, schools
    raise Http404


def _year(raw: Any, school: School) -> int:
    year = _int(raw)
    if year is None:
        return selectors.placement_default_year(school=school)
    if not _MIN_YEAR <= year <= _MAX_YEAR:
        raise Http404
    return year


def _board_url(school_id: int, year: int, grade: str) -> str:
    return f"{reverse('students:placement')}?{urlencode({'school': school_id, 'year': year, 'grade': grade})}"


def _error_lines(exc: ValidationFailed) -> list[str]:
    lines = [line for errors in exc.errors.values() for line in errors]
    return lines or [str(exc)]


@login_required
@require_capability(roles.CLASS_PLACEMENT)
def placement(request: HttpRequest) -> HttpResponse:
    """学級編制: pupils awaiting a class beside the 年度's classes of one grade; POST places the ticked pupils."""
    actor = get_actor(request.user)
    params = request.POST if request.method == "POST" else request.GET
    school, schools = _chosen_school(actor, params.get("school"))
    if school is None:
        return render(request, "students/placement.html", {"schools": schools, "board": None,
                                                           "breadcrumbs": _crumbs()})
    year = _year(params.get("year"), school)
    form = PlacementForm(request.POST if request.method == "POST" else None)
    errors: list[str] = []
    if request.method == "POST":
        student_ids = request.POST.getlist("student")
        if not student_ids:
            errors.append(_("学級に入れる児童生徒にチェックを入れてください。"))
        if form.is_valid() and student_ids:
            try:
                result = services.placement_assign(actor=actor, student_ids=student_ids,
                                                   homeroom_class_id=form.cleaned_data["homeroom_class"])
            except NotFoundOrNoAccess:
                raise Http404 from None
            except (ValidationFailed, PermissionDeniedError) as exc:
                errors.extend(_error_lines(exc) if isinstance(exc, ValidationFailed) else [str(exc)])
            else:
                messages.success(request, _("%(placed)d 名を学級に入れ、%(moved)d 名の学級を変更しました。出席番号を付け直しました。")
                                 % {"placed": result.placed, "moved": result.moved})
                return redirect(_board_url(school.pk, year, str(params.get("grade", ""))))
    try:
        board = selectors.placement_board(actor=actor, school_id=school.pk, year=year,
                                          grade_code=str(params.get("grade", "")))
    except NotFoundOrNoAccess:
        raise Http404 from None
    current = fiscal_year_of(timezone.localdate())
    return render(request, "students/placement.html", {
        "schools": schools,
        "board": board,
        "form": form,
        "errors": errors,
        "ticked": set(request.POST.getlist("student")) if request.method == "POST" else set(),
        "year_choices": sorted({current, current + 1, year}),
        "breadcrumbs": _crumbs(),
    })


def _crumbs(*extra: dict[str, str]) -> list[dict[str, str]]:
    return [{"label": _("児童生徒"), "url": reverse("students:list")},
            {"label": _("学級編制"), "url": reverse("students:placement") if extra else ""}, *extra]


def _moves(raw: list[str]) -> list[services.PlacementMove]:
    moves = []
    for item in raw:
        student_id, _sep, class_id = item.partition(":")
        number = _int(class_id)
        if not student_id or number is None:
            raise Http404
        moves.append(services.PlacementMove(student_id=student_id, homeroom_class_id=number))
    return moves


@login_required
@require_capability(roles.CLASS_PLACEMENT)
def placement_auto(request: HttpRequest) -> HttpResponse:
    """自動で振り分ける: GET shows the proposal (nothing written), POST applies exactly what was shown."""
    actor = get_actor(request.user)
    params = request.POST if request.method == "POST" else request.GET
    school, _schools = _chosen_school(actor, params.get("school"))
    if school is None:
        return redirect("students:placement")
    year = _year(params.get("year"), school)
    grade = str(params.get("grade", ""))
    errors: list[str] = []
    if request.method == "POST":
        try:
            result = services.placement_apply_proposal(actor=actor, school_id=school.pk, year=year, grade_code=grade,
                                                       moves=_moves(request.POST.getlist("move")))
        except NotFoundOrNoAccess:
            raise Http404 from None
        except ValidationFailed as exc:
            errors = _error_lines(exc)
        else:
            messages.success(request, _("案のとおり %(placed)d 名を学級に入れ、出席番号を付けました。")
                             % {"placed": result.placed})
            return redirect(_board_url(school.pk, year, grade))
    try:
        board = selectors.placement_board(actor=actor, school_id=school.pk, year=year, grade_code=grade)
        proposal = services.placement_auto_propose(actor=actor, school_id=school.pk, year=year,
                                                   grade_code=board.grade_code)
    except NotFoundOrNoAccess:
        raise Http404 from None
    pending = board.pending_by_id
    return render(request, "students/placement_auto.html", {
        "board": board,
        "proposal": proposal,
        "groups": selectors.placement_proposal_view(board=board, proposal=proposal),
        "unplaced": [pending[i] for i in proposal.unplaced if i in pending],
        "errors": errors,
        "back_url": _board_url(school.pk, year, board.grade_code),
        "breadcrumbs": _crumbs({"label": _("自動で振り分ける"), "url": ""}),
    })


@login_required
@require_POST
@require_capability(roles.STUDENTS_EDIT)
def renumber_class(request: HttpRequest, class_id: int) -> HttpResponse:
    """番号を付け直す: renumber one class by the school's rule, then go back where the button was."""
    actor = get_actor(request.user)
    try:
        changed = services.shusseki_no_renumber(actor=actor, homeroom_class_id=class_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    except PermissionDeniedError as exc:
        messages.error(request, str(exc))
    else:
        if changed:
            messages.success(request, _("出席番号を付け直しました（%(n)d 名の番号が変わりました）。") % {"n": changed})
        else:
            messages.info(request, _("出席番号はすでに規則どおりです。変更はありません。"))
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        target = f"{reverse('students:list')}?class={class_id}"
    return redirect(target)
