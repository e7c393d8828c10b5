"""Directory screens: boards, schools, years, terms, classes, staff assignments and the operator's bulk load.

Thin: each view reads through `selectors`, writes through `services`, and turns NotFoundOrNoAccess into 404.
Every page works without JavaScript; with HTMX the school search and the class list update in place.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from pathlib import Path
from typing import Any

from django import forms as django_forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from komu.access import roles
from komu.access.scope import Actor, get_actor
from komu.core import wareki
from komu.core.errors import PermissionDeniedError, ValidationFailed
from komu.core.htmx import is_htmx
from komu.core.tabular import DEFAULT_MAX_BYTES
from komu.directory import forms, selectors, services
from komu.directory.models import SCHOOL_ROLES, Board, HomeroomClass, Role, School, SchoolYear
from komu.web.decorators import found_or_404, require_capability

PAGE_SIZE = 50
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SAMPLE_FILES = {kind: f"sample_{kind}.csv" for kind in services.LoadKind.values}


def _crumbs(*items: tuple[str, str]) -> list[dict[str, str]]:
    return [{"label": label, "url": url} for label, url in items]


def _school_crumbs(school: School, *more: tuple[str, str]) -> list[dict[str, str]]:
    return _crumbs(
        (_("学校・学級"), reverse("directory:schools")),
        (school.name, reverse("directory:school_detail", args=[school.pk])),
        *more,
    )


def _year_on_school_page(school_year: SchoolYear) -> HttpResponse:
    """Back to the school's page, showing the 年度 just changed."""
    return redirect(
        f"{reverse('directory:school_detail', args=[school_year.school_id])}?year={school_year.year}"
    )


def _show_errors(form: django_forms.Form, exc: ValidationFailed | PermissionDeniedError) -> None:
    """Put a service's messages next to the fields they concern; the rest above the form."""
    errors = getattr(exc, "errors", {}) or {}
    for key, field_messages in errors.items():
        for message in field_messages:
            form.add_error(key if key in form.fields else None, message)
    if not errors:
        form.add_error(None, str(exc))


# --- schools ---------------------------------------------------------------------------------------------------


@login_required
@require_capability(roles.DIRECTORY_VIEW)
@require_GET
def school_list(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request.user)
    search = forms.SchoolSearchForm(request.GET)
    query = school_type = ""
    if search.is_valid():
        query, school_type = search.cleaned_data["q"], search.cleaned_data["type"]
    board_id = request.GET.get("board", "")
    schools = selectors.school_list(
        actor=actor,
        query=query,
        school_type=school_type,
        board_id=int(board_id) if board_id.isdigit() else None,
    )
    page = Paginator(schools, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "search": search,
        "page_obj": page,
        "page_range": page.paginator.get_elided_page_range(page.number),
        "filtered": bool(query or school_type or board_id),
        "can_create": actor.has(roles.DIRECTORY_MANAGE) and selectors.manageable_boards(actor).exists(),
        "can_bulk_load": actor.has(roles.DIRECTORY_BULK_LOAD),
    }
    template = "directory/partials/school_results.html" if is_htmx(request) else "directory/school_list.html"
    response = render(request, template, context)
    # One URL answers a whole page or just the results: caches and the back button must keep them apart.
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
@require_capability(roles.DIRECTORY_VIEW)
@require_GET
@found_or_404
def school_detail(request: HttpRequest, school_id: int) -> HttpResponse:
    actor = get_actor(request.user)
    year_param = request.GET.get("year", "")
    detail = selectors.school_detail(
        actor=actor, school_id=school_id, year=int(year_param) if year_param.isdigit() else None
    )
    class_form = None
    if detail.can_manage and detail.year is not None:
        class_form = forms.HomeroomClassForm(school_type=detail.school.school_type, auto_id="new-class-%s")
    return render(
        request,
        "directory/school_detail.html",
        {
            "detail": detail,
            "school": detail.school,
            "class_form": class_form,
            "breadcrumbs": _crumbs((_("学校・学級"), reverse("directory:schools")), (detail.school.name, "")),
        },
    )


def _school_form_page(request: HttpRequest, form: forms.SchoolForm, *, school: School | None) -> HttpResponse:
    title = _("学校の情報を変更") if school else _("学校を登録")
    crumbs = (
        _school_crumbs(school, (title, ""))
        if school
        else _crumbs((_("学校・学級"), reverse("directory:schools")), (title, ""))
    )
    return render(
        request,
        "directory/school_form.html",
        {"form": form, "school": school, "title": title, "breadcrumbs": crumbs},
    )


def _school_input(form: forms.SchoolForm) -> services.SchoolInput:
    data = form.cleaned_data
    return services.SchoolInput(
        code=data["code"],
        name=data["name"],
        board_id=data["board"].pk,
        address=data["address"],
        phone=data["phone"],
        is_active=data["is_active"],
    )


@login_required
@require_capability(roles.DIRECTORY_MANAGE)
@require_http_methods(["GET", "POST"])
@found_or_404
def school_create(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request.user)
    boards = selectors.manageable_boards(actor)
    if not boards.exists():
        raise Http404
    form = forms.SchoolForm(request.POST or None, boards=boards)
    if request.method == "POST" and form.is_valid():
        try:
            school = services.school_create(actor=actor, data=_school_input(form))
        except ValidationFailed as exc:
            _show_errors(form, exc)
        else:
            messages.success(request, _("「%(name)s」を登録しました。") % {"name": school.name})
            return redirect("directory:school_detail", school_id=school.pk)
    return _school_form_page(request, form, school=None)


@login_required
@require_capability(roles.DIRECTORY_MANAGE)
@require_http_methods(["GET", "POST"])
@found_or_404
def school_edit(request: HttpRequest, school_id: int) -> HttpResponse:
    actor = get_actor(request.user)
    school = selectors.school_get_for(actor=actor, school_id=school_id, capability=roles.DIRECTORY_MANAGE)
    manageable = selectors.manageable_boards(actor)
    identity_editable = manageable.filter(pk=school.board_id).exists()
    boards = manageable if identity_editable else Board.objects.filter(pk=school.board_id)
    initial = {
        "code": school.code,
        "name": school.name,
        "board": school.board,
        "address": school.address,
        "phone": school.phone,
        "is_active": school.is_active,
    }
    form = forms.SchoolForm(
        request.POST or None, initial=initial, boards=boards, identity_editable=identity_editable
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.school_update(actor=actor, school_id=school.pk, data=_school_input(form))
        except (ValidationFailed, PermissionDeniedError) as exc:
            _show_errors(form, exc)
        else:
            messages.success(request, _("学校の情報を保存しました。"))
            return redirect("directory:school_detail", school_id=school.pk)
    return _school_form_page(request, form, school=school)


# --- years and terms -------------------------------------------------------------------------------------------


@login_required
@require_capability(roles.DIRECTORY_MANAGE)
@require_http_methods(["GET", "POST"])
@found_or_404
def year_create(request: HttpRequest, school_id: int) -> HttpResponse:
    actor = get_actor(request.user)
    school = selectors.school_get_for(actor=actor, school_id=school_id, capability=roles.DIRECTORY_MANAGE)
    current = wareki.fiscal_year_of(timezone.localdate())
    taken = set(school.years.values_list("year", flat=True))
    suggested = next(y for y in (current, current + 1, *range(current + 2, current + 10)) if y not in taken)
    form = forms.SchoolYearForm(request.POST or None, initial={"year": suggested})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            school_year = services.school_year_create(
                actor=actor,
                school_id=school.pk,
                year=data["year"],
                start_date=data["start_date"],
                end_date=data["end_date"],
            )
        except ValidationFailed as exc:
            _show_errors(form, exc)
        else:
            messages.success(
                request,
                _("%(year)sを登録しました。続けて学期と学級を登録してください。")
                % {"year": school_year.title},
            )
            return _year_on_school_page(school_year)
    title = _("年度を登録")
    return render(
        request,
        "directory/year_form.html",
        {
            "form": form,
            "school": school,
            "title": title,
            "breadcrumbs": _school_crumbs(school, (title, "")),
        },
    )


@login_required
@require_capability(roles.DIRECTORY_MANAGE)
@require_http_methods(["GET", "POST"])
@found_or_404
def terms_edit(request: HttpRequest, year_id: int) -> HttpResponse:
    actor = get_actor(request.user)
    school_year = selectors.school_year_get_for(
        actor=actor, school_year_id=year_id, capability=roles.DIRECTORY_MANAGE
    )
    school = school_year.school
    terms = list(school_year.terms.order_by("number"))
    initial: dict[str, Any] = {"count": len(terms) if len(terms) in (2, 3) else 3}
    for term in terms:
        initial.update(
            {
                f"term{term.number}_name": term.name,
                f"term{term.number}_start": term.start_date,
                f"term{term.number}_end": term.end_date,
            }
        )
    form = forms.TermsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        count = int(data["count"])
        terms_input = [
            services.TermInput(
                start_date=data[f"term{n}_start"], end_date=data[f"term{n}_end"], name=data[f"term{n}_name"]
            )
            for n in range(1, count + 1)
        ]
        try:
            services.terms_set(actor=actor, school_year_id=school_year.pk, terms=terms_input)
        except ValidationFailed as exc:
            _show_errors(form, exc)
        else:
            messages.success(request, _("%(year)sの学期を保存しました。") % {"year": school_year.title})
            return _year_on_school_page(school_year)
    title = _("学期を設定")
    return render(
        request,
        "directory/terms_form.html",
        {
            "form": form,
            "school": school,
            "school_year": school_year,
            "title": title,
            "breadcrumbs": _school_crumbs(school, (f"{title}（{school_year.title}）", "")),
        },
    )


# --- classes ---------------------------------------------------------------------------------------------------


def _class_input(form: forms.HomeroomClassForm) -> services.ClassInput:
    data = form.cleaned_data
    return services.ClassInput(
        grade_code=data["grade_code"],
        name=data["name"],
        kind=data["kind"],
        special_needs_category=data["special_needs_category"],
        sort_order=data["sort_order"] or 0,
    )


def _classes_partial(
    request: HttpRequest,
    actor: Actor,
    school_year: SchoolYear,
    form: forms.HomeroomClassForm,
    *,
    added: HomeroomClass | None = None,
) -> HttpResponse:
    names_visible = selectors.may_see_staff_names(actor, school_year.school)
    return render(
        request,
        "directory/partials/classes.html",
        {
            "school": school_year.school,
            "school_year": school_year,
            "grades": selectors.year_classes(school_year=school_year, with_names=names_visible),
            "names_visible": names_visible,
            "class_form": form,
            "can_manage": True,
            "added": added,
        },
    )


@login_required
@require_capability(roles.DIRECTORY_MANAGE)
@require_http_methods(["GET", "POST"])
@found_or_404
def class_create(request: HttpRequest, year_id: int) -> HttpResponse:
    """Add a class. The school page posts here inline with HTMX (the class list is swapped in place); without
    JavaScript this is an ordinary form page."""
    actor = get_actor(request.user)
    school_year = selectors.school_year_get_for(
        actor=actor, school_year_id=year_id, capability=roles.DIRECTORY_MANAGE
    )
    school = school_year.school
    auto_id = "new-class-%s" if is_htmx(request) else "id_%s"
    form = forms.HomeroomClassForm(request.POST or None, school_type=school.school_type, auto_id=auto_id)
    if request.method == "POST" and form.is_valid():
        try:
            klass = services.homeroom_class_create(
                actor=actor, school_year_id=school_year.pk, data=_class_input(form)
            )
        except ValidationFailed as exc:
            _show_errors(form, exc)
        else:
            if is_htmx(request):
                fresh = forms.HomeroomClassForm(
                    school_type=school.school_type, auto_id=auto_id, initial={"grade_code": klass.grade_code}
                )
                return _classes_partial(request, actor, school_year, fresh, added=klass)
            messages.success(request, _("%(klass)s を登録しました。") % {"klass": klass.display_label})
            return _year_on_school_page(school_year)
    if is_htmx(request):
        return _classes_partial(request, actor, school_year, form)
    title = _("学級を登録")
    return render(
        request,
        "directory/class_form.html",
        {
            "form": form,
            "school": school,
            "school_year": school_year,
            "title": title,
            "breadcrumbs": _school_crumbs(school, (f"{title}（{school_year.title}）", "")),
        },
    )


@login_required
@require_capability(roles.DIRECTORY_MANAGE)
@require_http_methods(["GET", "POST"])
@found_or_404
def class_edit(request: HttpRequest, class_id: int) -> HttpResponse:
    actor = get_actor(request.user)
    klass = selectors.homeroom_class_get_for(
        actor=actor, class_id=class_id, capability=roles.DIRECTORY_MANAGE
    )
    school_year = klass.school_year
    school = school_year.school
    initial = {
        "grade_code": klass.grade_code,
        "name": klass.name,
        "kind": klass.kind,
        "special_needs_category": klass.special_needs_category,
        "sort_order": klass.sort_order,
    }
    form = forms.HomeroomClassForm(request.POST or None, initial=initial, school_type=school.school_type)
    if request.method == "POST" and form.is_valid():
        try:
            services.homeroom_class_update(actor=actor, class_id=klass.pk, data=_class_input(form))
        except ValidationFailed as exc:
            _show_errors(form, exc)
        else:
            messages.success(request, _("学級の情報を保存しました。"))
            return _year_on_school_page(school_year)
    title = _("学級を変更")
    return render(
        request,
        "directory/class_form.html",
        {
            "form": form,
            "school": school,
            "school_year": school_year,
            "title": title,
            "klass": klass,
            "breadcrumbs": _school_crumbs(school, (f"{title}（{klass}）", "")),
        },
    )


# --- staff assignments -----------------------------------------------------------------------------------------


def _staff_form_page(
    request: HttpRequest, form: forms.StaffAssignForm, *, school: School | None, board: Board | None
) -> HttpResponse:
    title = _("教職員を配置")
    if school is not None:
        crumbs = _school_crumbs(school, (title, ""))
        cancel = reverse("directory:school_detail", args=[school.pk])
    else:
        assert board is not None
        crumbs = _crumbs(
            (_("教育委員会"), reverse("directory:boards")),
            (board.name, reverse("directory:board_detail", args=[board.pk])),
            (title, ""),
        )
        cancel = reverse("directory:board_detail", args=[board.pk])
    return render(
        request,
        "directory/staff_form.html",
        {
            "form": form,
            "school": school,
            "board": board,
            "title": title,
            "breadcrumbs": crumbs,
            "cancel": cancel,
            "place_name": school.name if school is not None else board.name if board is not None else "",
        },
    )


def _staff_assign_page(
    request: HttpRequest,
    actor: Actor,
    form: forms.StaffAssignForm,
    *,
    school: School | None,
    board: Board | None,
) -> HttpResponse:
    """Assign staff to a school or (board officers) to a board: the form, and on a valid post the service."""
    if request.method != "POST" or not form.is_valid():
        return _staff_form_page(request, form, school=school, board=board)
    data = form.cleaned_data
    klass = data.get("homeroom_class")
    staff_input = services.StaffInput(
        login_id=data["login_id"],
        role=data["role"],
        school_id=school.pk if school else None,
        board_id=board.pk if board else None,
        homeroom_class_id=klass.pk if klass else None,
        start_date=data["start_date"],
    )
    try:
        assignment = services.staff_assignment_create(actor=actor, data=staff_input)
    except (ValidationFailed, PermissionDeniedError) as exc:
        _show_errors(form, exc)
        return _staff_form_page(request, form, school=school, board=board)
    messages.success(
        request,
        _("%(user)s を「%(role)s」として配置しました。")
        % {"user": assignment.user.username, "role": assignment.get_role_display()},
    )
    return (
        redirect("directory:school_detail", school_id=school.pk)
        if school
        else redirect("directory:board_detail", board_id=board.pk if board else 0)
    )


@login_required
@require_capability(roles.STAFF_MANAGE)
@require_http_methods(["GET", "POST"])
@found_or_404
def staff_assign(request: HttpRequest, school_id: int) -> HttpResponse:
    actor = get_actor(request.user)
    school = selectors.school_get_for(actor=actor, school_id=school_id, capability=roles.STAFF_MANAGE)
    grantable = [r for r in selectors.grantable_roles(actor, school=school) if r in SCHOOL_ROLES]
    if not grantable:
        raise Http404
    form = forms.StaffAssignForm(
        request.POST or None, roles=grantable, classes=selectors.classes_of_school(school=school)
    )
    return _staff_assign_page(request, actor, form, school=school, board=None)


@login_required
@require_capability(roles.STAFF_MANAGE)
@require_http_methods(["GET", "POST"])
@found_or_404
def board_staff_assign(request: HttpRequest, board_id: int) -> HttpResponse:
    actor = get_actor(request.user)
    board = selectors.board_get_for(actor=actor, board_id=board_id, capability=roles.STAFF_MANAGE)
    if not selectors.may_grant(actor, Role.BOARD_OFFICER, board=board):
        raise Http404
    form = forms.StaffAssignForm(request.POST or None, roles=[Role.BOARD_OFFICER])
    return _staff_assign_page(request, actor, form, school=None, board=board)


@login_required
@require_capability(roles.STAFF_MANAGE)
@require_http_methods(["GET", "POST"])
@found_or_404
def staff_end(request: HttpRequest, assignment_id: int) -> HttpResponse:
    actor = get_actor(request.user)
    assignment = selectors.staff_assignment_get_for(actor=actor, assignment_id=assignment_id)
    form = forms.StaffEndForm(request.POST or None)
    if assignment.school_id:
        back = reverse("directory:school_detail", args=[assignment.school_id])
    else:
        back = reverse("directory:board_detail", args=[assignment.board_id])
    if request.method == "POST" and form.is_valid():
        try:
            services.staff_assignment_end(
                actor=actor, assignment_id=assignment.pk, end_date=form.cleaned_data["end_date"]
            )
        except ValidationFailed as exc:
            _show_errors(form, exc)
        else:
            messages.success(
                request,
                _("%(user)s の「%(role)s」の配置を終了しました。")
                % {"user": assignment.user.username, "role": assignment.get_role_display()},
            )
            return redirect(back)
    title = _("配置を終了")
    place = assignment.school or assignment.board
    crumbs = (
        _school_crumbs(assignment.school, (title, ""))
        if assignment.school
        else _crumbs((_("教育委員会"), reverse("directory:boards")), (str(place), back), (title, ""))
    )
    return render(
        request,
        "directory/staff_end.html",
        {
            "form": form,
            "assignment": assignment,
            "title": title,
            "breadcrumbs": crumbs,
            "cancel": back,
        },
    )


# --- boards ----------------------------------------------------------------------------------------------------


@login_required
@require_capability(roles.DIRECTORY_VIEW)
@require_GET
def board_list(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request.user)
    search = forms.BoardSearchForm(request.GET)
    query = search.cleaned_data["q"] if search.is_valid() else ""
    page = Paginator(selectors.board_list(actor=actor, query=query), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "directory/board_list.html",
        {
            "search": search,
            "page_obj": page,
            "page_range": page.paginator.get_elided_page_range(page.number),
            "filtered": bool(query),
            "can_create": selectors.is_nationwide_manager(actor),
            "breadcrumbs": _crumbs((_("学校・学級"), reverse("directory:schools")), (_("教育委員会"), "")),
        },
    )


@login_required
@require_capability(roles.DIRECTORY_VIEW)
@require_GET
@found_or_404
def board_detail(request: HttpRequest, board_id: int) -> HttpResponse:
    actor = get_actor(request.user)
    detail = selectors.board_detail(actor=actor, board_id=board_id)
    return render(
        request,
        "directory/board_detail.html",
        {
            "detail": detail,
            "board": detail.board,
            "breadcrumbs": _crumbs((_("教育委員会"), reverse("directory:boards")), (detail.board.name, "")),
        },
    )


def _board_input(form: forms.BoardForm) -> services.BoardInput:
    data = form.cleaned_data
    parent = data["parent"]
    return services.BoardInput(
        code=data["code"], name=data["name"], kind=data["kind"], parent_id=parent.pk if parent else None
    )


def _board_form_page(request: HttpRequest, form: forms.BoardForm, board: Board | None) -> HttpResponse:
    title = _("教育委員会の情報を変更") if board else _("教育委員会を登録")
    crumbs = [(_("教育委員会"), reverse("directory:boards"))]
    if board:
        crumbs.append((board.name, reverse("directory:board_detail", args=[board.pk])))
    return render(
        request,
        "directory/board_form.html",
        {
            "form": form,
            "board": board,
            "title": title,
            "breadcrumbs": _crumbs(*crumbs, (title, "")),
        },
    )


@login_required
@require_capability(roles.DIRECTORY_MANAGE)
@require_http_methods(["GET", "POST"])
def board_create(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request.user)
    if not selectors.is_nationwide_manager(actor):
        raise Http404
    form = forms.BoardForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            board = services.board_create(actor=actor, data=_board_input(form))
        except ValidationFailed as exc:
            _show_errors(form, exc)
        else:
            messages.success(request, _("「%(name)s」を登録しました。") % {"name": board.name})
            return redirect("directory:board_detail", board_id=board.pk)
    return _board_form_page(request, form, None)


@login_required
@require_capability(roles.DIRECTORY_MANAGE)
@require_http_methods(["GET", "POST"])
@found_or_404
def board_edit(request: HttpRequest, board_id: int) -> HttpResponse:
    actor = get_actor(request.user)
    if not selectors.is_nationwide_manager(actor):
        raise Http404
    board = selectors.board_get_for(actor=actor, board_id=board_id, capability=roles.DIRECTORY_MANAGE)
    initial = {"code": board.code, "name": board.name, "kind": board.kind, "parent": board.parent}
    form = forms.BoardForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.board_update(actor=actor, board_id=board.pk, data=_board_input(form))
        except ValidationFailed as exc:
            _show_errors(form, exc)
        else:
            messages.success(request, _("教育委員会の情報を保存しました。"))
            return redirect("directory:board_detail", board_id=board.pk)
    return _board_form_page(request, form, board)


# --- bulk load -------------------------------------------------------------------------------------------------

# The uploaded file waits on disk between the preview and "apply", named by a random token held in the
# uploader's session: only that session can apply it, and it is checked again from scratch when applied.
_STASH_SESSION_KEY = "directory_bulk_load"
_STASH_MAX_AGE = 24 * 60 * 60


def _stash_dir() -> Path:
    path = Path(settings.MEDIA_ROOT) / "directory-bulk-load"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _sweep_stash(directory: Path) -> None:
    cutoff = time.time() - _STASH_MAX_AGE
    for old in directory.glob("*.upload"):
        if old.stat().st_mtime < cutoff:
            old.unlink(missing_ok=True)


def _stash(request: HttpRequest, *, data: bytes, kind: str, filename: str) -> str:
    directory = _stash_dir()
    _sweep_stash(directory)
    _drop_stash(request)
    token = secrets.token_urlsafe(24)
    fd = os.open(directory / f"{token}.upload", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    request.session[_STASH_SESSION_KEY] = {
        "token": token,
        "kind": kind,
        "filename": filename,
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    return token


def _drop_stash(request: HttpRequest) -> None:
    stash = request.session.pop(_STASH_SESSION_KEY, None)
    if stash:
        (_stash_dir() / f"{stash['token']}.upload").unlink(missing_ok=True)


def _stashed(request: HttpRequest, token: str) -> tuple[bytes, str, str] | None:
    stash = request.session.get(_STASH_SESSION_KEY)
    if not stash or not secrets.compare_digest(stash["token"], token):
        return None
    path = _stash_dir() / f"{stash['token']}.upload"
    if not path.exists():
        return None
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != stash["sha256"]:
        return None
    return data, stash["kind"], stash["filename"]


def _bulk_page(
    request: HttpRequest, form: forms.BulkLoadForm, report: services.LoadReport | None = None, token: str = ""
) -> HttpResponse:
    return render(
        request,
        "directory/bulk_load.html",
        {
            "form": form,
            "report": report,
            "token": token,
            "guide": [
                (
                    label,
                    "、".join(c.header for c in services.bulk_load_schema(kind).columns),
                    reverse("directory:bulk_load_sample", args=[kind]),
                )
                for kind, label in services.LoadKind.choices
            ],
        },
    )


@login_required
@require_capability(roles.DIRECTORY_BULK_LOAD)
@require_http_methods(["GET", "POST"])
def bulk_load(request: HttpRequest) -> HttpResponse:
    """Upload → a dry run shows every error (file, line, column) or what would change → "apply"."""
    actor = get_actor(request.user)
    form = forms.BulkLoadForm(
        request.POST or None, request.FILES or None, initial={"kind": services.LoadKind.SCHOOLS}
    )
    if request.method != "POST" or not form.is_valid():
        return _bulk_page(request, form)
    upload = form.cleaned_data["file"]
    if upload.size > DEFAULT_MAX_BYTES:  # refuse before reading it into memory; read_table checks again
        form.add_error(
            "file",
            _("ファイルが大きすぎます。%(mb)dMB以下に分けてください。")
            % {"mb": DEFAULT_MAX_BYTES // (1024 * 1024)},
        )
        return _bulk_page(request, form)
    data = upload.read()
    filename = Path(upload.name or "upload").name
    kind = form.cleaned_data["kind"]
    report = services.bulk_load(actor=actor, kind=kind, data=data, filename=filename, dry_run=True)
    token = _stash(request, data=data, kind=kind, filename=filename) if report.ok else ""
    return _bulk_page(request, form, report, token)


@login_required
@require_capability(roles.DIRECTORY_BULK_LOAD)
@require_POST
def bulk_load_apply(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request.user)
    stashed = _stashed(request, request.POST.get("token", ""))
    if stashed is None:
        messages.error(
            request, _("確認したファイルが見つかりません。もう一度ファイルを選んで確認してください。")
        )
        return redirect("directory:bulk_load")
    data, kind, filename = stashed
    report = services.bulk_load(actor=actor, kind=kind, data=data, filename=filename, dry_run=False)
    if report.applied:
        _drop_stash(request)
        messages.success(
            request,
            _(
                "%(file)s を登録しました（新規 %(created)d 件、更新 %(updated)d 件、変更なし "
                "%(unchanged)d 件）。"
            )
            % {
                "file": filename,
                "created": report.created,
                "updated": report.updated,
                "unchanged": report.unchanged,
            },
        )
        return redirect("directory:bulk_load")
    # The database changed since the preview (someone registered a code meanwhile): show the new errors.
    form = forms.BulkLoadForm(initial={"kind": kind})
    return _bulk_page(request, form, report)


@login_required
@require_capability(roles.DIRECTORY_BULK_LOAD)
@require_GET
def bulk_load_sample(request: HttpRequest, kind: str) -> HttpResponse:
    if kind not in SAMPLE_FILES:
        raise Http404
    path = FIXTURES / SAMPLE_FILES[kind]
    response = HttpResponse(path.read_bytes(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{path.name}"'
    return response
