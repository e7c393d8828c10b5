"""Board screens of the 学齢簿: the register of a 年度 (counts by designated school, filters, pages, bulk
就学校指定), one child's record with designation and status, sending rosters to schools, and the per-school
status of what was sent.

Thin: reads through komu.rosters.selectors.rosters, writes through komu.rosters.services; out of scope is 404.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from komu.access import roles
from komu.access.scope import Actor, get_actor
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.directory.models import Board
from komu.rosters.forms import (
    BulkDesignateForm,
    DesignateForm,
    EntrantForm,
    EntryFilterForm,
    NewEntrantForm,
    SendForm,
    StatusForm,
)
from komu.rosters.selectors import rosters as selectors
from komu.rosters.services import gakureibo as gakureibo_services
from komu.rosters.services import rosters as roster_services
from komu.web.decorators import require_capability

_ENTRANT_FIELDS = [f for f in EntrantForm.base_fields if f != "reason"]


def _board_and_year(request: HttpRequest, actor: Actor) -> tuple[Board, int, list[Board]]:
    """The board (``?board=``, or the only one) and 年度 (``?year=``, or next April's) a page works on."""
    boards = selectors.gakureibo_boards_for(actor=actor)
    raw_board = request.GET.get("board") or request.POST.get("board")
    if raw_board:
        try:
            board = selectors.gakureibo_board_get(actor=actor, board_id=raw_board)
        except NotFoundOrNoAccess:
            raise Http404 from None
    elif boards:
        board = boards[0]
    else:
        raise Http404
    raw_year = request.GET.get("year") or request.POST.get("year") or ""
    year = int(raw_year) if raw_year.isascii() and raw_year.isdigit() and 2000 <= int(raw_year) <= 2200 \
        else selectors.gakureibo_default_year()
    return board, year, boards


def _list_url(board: Board, year: int, **extra: Any) -> str:
    return f"{reverse('rosters:board_entries')}?{urlencode({'board': board.pk, 'year': year, **extra})}"


def _school_choices(actor: Actor, board: Board) -> list[tuple[Any, Any]]:
    own = [(c.id, f"{c.name}") for c in selectors.designation_choices(actor=actor, board=board) if c.own_board]
    other = [(c.id, f"{c.name}") for c in selectors.designation_choices(actor=actor, board=board)
             if not c.own_board]
    choices: list[tuple[Any, Any]] = []
    if own:
        choices.append((_("この教育委員会の学校"), own))
    if other:
        choices.append((_("他の教育委員会の学校（区域外就学）"), other))
    return choices


def _put_errors(form: Any, exc: ValidationFailed) -> None:
    if not exc.errors:
        form.add_error(None, str(exc))
    for name, errors in exc.errors.items():
        for error in errors:
            form.add_error(name if name in form.fields else None, error)


def _base_context(board: Board, year: int, boards: list[Board]) -> dict[str, Any]:
    return {"board": board, "year": year, "boards": boards,
            "years": [], "query": urlencode({"board": board.pk, "year": year})}


@login_required
@require_capability(roles.GAKUREIBO_MANAGE)
def board_entries(request: HttpRequest) -> HttpResponse:
    """学齢簿: the 年度's children with counts by designated school, filters, pages and bulk designation."""
    actor = get_actor(request.user)
    board, year, boards = _board_and_year(request, actor)
    filters_form = EntryFilterForm(request.GET)
    filters_form.is_valid()
    data = filters_form.cleaned_data
    only = data.get("only") or ""
    school_id = data.get("school")
    filters = selectors.EntryFilters(
        school_id=school_id, undesignated=only == "undesignated", needs_review=only == "needs_review",
        out_of_district=only == "out_of_district", special_needs=only == "special_needs",
        status=only if only in ("moved_out", "deferred") else "", kana=data.get("kana") or "",
    )
    summary = selectors.gakureibo_summary(actor=actor, board=board, fiscal_year=year)
    page = selectors.gakureibo_entry_page(actor=actor, board=board, fiscal_year=year, filters=filters,
                                          page=data.get("page") or 1)
    choices = _school_choices(actor, board)
    filtering = bool(only or school_id or filters.kana)
    return render(request, "rosters/board_entries.html", {
        **_base_context(board, year, boards),
        "years": selectors.gakureibo_years(actor=actor, board=board),
        "summary": summary, "page_obj": page, "rows": page.object_list,
        "page_range": page.paginator.get_elided_page_range(page.number),
        "filters_form": filters_form, "filtering": filtering, "school_filter": school_id,
        "bulk_form": BulkDesignateForm(school_choices=choices),
        "next_url": request.get_full_path(),
        "breadcrumbs": [{"label": _("学齢簿"), "url": ""}],
    })


@login_required
@require_capability(roles.GAKUREIBO_MANAGE)
@require_POST
def board_bulk_designate(request: HttpRequest) -> HttpResponse:
    """Bulk 就学校指定: the checked children → the chosen school."""
    actor = get_actor(request.user)
    board, year, _boards = _board_and_year(request, actor)
    form = BulkDesignateForm(request.POST, school_choices=_school_choices(actor, board))
    back = request.POST.get("next") or ""
    if not back.startswith(reverse("rosters:board_entries")):
        back = _list_url(board, year)
    if not form.is_valid():
        for field_errors in form.errors.values():
            for message in field_errors:
                messages.error(request, str(message))
        return redirect(back)
    try:
        changed = gakureibo_services.gakureibo_entries_designate(
            actor=actor, board_id=board.pk, entry_ids=form.cleaned_data["entries"],
            school_id=form.cleaned_data["school"],
        )
    except NotFoundOrNoAccess:
        raise Http404 from None
    except ValidationFailed as exc:
        for problems in exc.errors.values():
            for problem in problems:
                messages.error(request, problem)
        if not exc.errors:
            messages.error(request, str(exc))
        return redirect(back)
    messages.success(request, _("%(n)d 名の就学校を指定しました。") % {"n": changed})
    return redirect(back)


def _input(cleaned: dict[str, Any]) -> gakureibo_services.EntrantInput:
    values: dict[str, Any] = {name: cleaned.get(name) if name in ("birth_date", "entry_date")
                              else (cleaned.get(name) or "") for name in _ENTRANT_FIELDS}
    return gakureibo_services.EntrantInput(**values)


@login_required
@require_capability(roles.GAKUREIBO_MANAGE)
def board_entry_new(request: HttpRequest) -> HttpResponse:
    """Add a child to the 学齢簿 by hand."""
    actor = get_actor(request.user)
    board, year, boards = _board_and_year(request, actor)
    choices = _school_choices(actor, board)
    if request.method == "POST":
        form = NewEntrantForm(request.POST, school_choices=choices)
        if form.is_valid():
            try:
                entry = gakureibo_services.gakureibo_entry_create(
                    actor=actor, board_id=board.pk, fiscal_year=year, data=_input(form.cleaned_data),
                    designated_school_id=form.cleaned_data.get("designated_school"),
                    special_needs=form.cleaned_data.get("special_needs") or False,
                )
            except NotFoundOrNoAccess:
                raise Http404 from None
            except ValidationFailed as exc:
                _put_errors(form, exc)
            else:
                messages.success(request, _("学齢簿に追加しました。"))
                if entry.needs_review:
                    messages.warning(request, _("外字・ふりがな・生年月日に確認が必要な点があります。記載を確認してください。"))
                return redirect("rosters:board_entry_edit", entry_id=entry.pk)
    else:
        form = NewEntrantForm(school_choices=choices)
    return render(request, "rosters/board_entry_form.html", {
        **_base_context(board, year, boards), "form": form, "creating": True,
        "breadcrumbs": [{"label": _("学齢簿"), "url": _list_url(board, year)}, {"label": _("児童を追加"), "url": ""}],
    })


def _entry_context(request: HttpRequest, actor: Actor, entry_id: uuid.UUID) -> dict[str, Any]:
    try:
        detail = selectors.gakureibo_entry_get(actor=actor, entry_id=entry_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    entry = detail.entry
    board = entry.board
    return {"detail": detail, "entry": entry, "board": board, "year": entry.fiscal_year,
            "query": urlencode({"board": board.pk, "year": entry.fiscal_year}),
            "choices": _school_choices(actor, board)}


def _render_entry(request: HttpRequest, ctx: dict[str, Any], *, form: Any = None, designate_form: Any = None,
                  status_form: Any = None) -> HttpResponse:
    detail, entry = ctx["detail"], ctx["entry"]
    if form is None:
        form = EntrantForm(initial={**detail.record, "birth_date": detail.record["birth_date"],
                                    "entry_date": detail.record["entry_date"]})
    if designate_form is None:
        designate_form = DesignateForm(initial={"school": entry.designated_school_id,
                                                "special_needs": entry.special_needs},
                                       school_choices=ctx["choices"], prefix="designate")
    if status_form is None:
        status_form = StatusForm(initial={"status": entry.status}, prefix="status")
    name = f"{detail.record['family_name']} {detail.record['given_name']}".strip()
    return render(request, "rosters/board_entry_form.html", {
        **ctx, "form": form, "designate_form": designate_form, "status_form": status_form, "creating": False,
        "name": name,
        "breadcrumbs": [{"label": _("学齢簿"), "url": _list_url(ctx["board"], ctx["year"])}, {"label": name, "url": ""}],
    })


@login_required
@require_capability(roles.GAKUREIBO_MANAGE)
def board_entry_edit(request: HttpRequest, entry_id: uuid.UUID) -> HttpResponse:
    """One child: correct the record; designation and status have their own forms on the same page."""
    actor = get_actor(request.user)
    ctx = _entry_context(request, actor, entry_id)
    if request.method == "POST":
        form = EntrantForm(request.POST)
        if form.is_valid():
            try:
                gakureibo_services.gakureibo_entry_update(actor=actor, entry_id=entry_id,
                                                          data=_input(form.cleaned_data),
                                                          reason=form.cleaned_data.get("reason") or "")
            except NotFoundOrNoAccess:
                raise Http404 from None
            except ValidationFailed as exc:
                _put_errors(form, exc)
            else:
                messages.success(request, _("記載事項を保存しました。送付済みの名簿があれば、学校に変更として届きます。"))
                return redirect("rosters:board_entry_edit", entry_id=entry_id)
        return _render_entry(request, ctx, form=form)
    return _render_entry(request, ctx)


@login_required
@require_capability(roles.GAKUREIBO_MANAGE)
@require_POST
def board_entry_designate(request: HttpRequest, entry_id: uuid.UUID) -> HttpResponse:
    actor = get_actor(request.user)
    ctx = _entry_context(request, actor, entry_id)
    form = DesignateForm(request.POST, school_choices=ctx["choices"], prefix="designate")
    if form.is_valid():
        try:
            gakureibo_services.gakureibo_entry_designate(
                actor=actor, entry_id=entry_id, school_id=form.cleaned_data["school"],
                special_needs=form.cleaned_data["special_needs"], reason=form.cleaned_data.get("reason") or "",
            )
        except NotFoundOrNoAccess:
            raise Http404 from None
        except ValidationFailed as exc:
            _put_errors(form, exc)
        else:
            messages.success(request, _("就学校の指定を保存しました。"))
            return redirect("rosters:board_entry_edit", entry_id=entry_id)
    return _render_entry(request, ctx, designate_form=form)


@login_required
@require_capability(roles.GAKUREIBO_MANAGE)
@require_POST
def board_entry_status(request: HttpRequest, entry_id: uuid.UUID) -> HttpResponse:
    actor = get_actor(request.user)
    ctx = _entry_context(request, actor, entry_id)
    form = StatusForm(request.POST, prefix="status")
    if form.is_valid():
        try:
            gakureibo_services.gakureibo_entry_status_set(actor=actor, entry_id=entry_id,
                                                          status=form.cleaned_data["status"],
                                                          reason=form.cleaned_data.get("reason") or "")
        except NotFoundOrNoAccess:
            raise Http404 from None
        except ValidationFailed as exc:
            _put_errors(form, exc)
        else:
            messages.success(request, _("状態を保存しました。"))
            return redirect("rosters:board_entry_edit", entry_id=entry_id)
    return _render_entry(request, ctx, status_form=form)


@login_required
@require_capability(roles.GAKUREIBO_MANAGE)
@require_POST
def board_entry_review(request: HttpRequest, entry_id: uuid.UUID) -> HttpResponse:
    """The officer checked a flagged row and confirms it as it is."""
    actor = get_actor(request.user)
    try:
        gakureibo_services.gakureibo_entry_review_clear(actor=actor, entry_id=entry_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    messages.success(request, _("確認済みにしました。"))
    return redirect("rosters:board_entry_edit", entry_id=entry_id)


@login_required
@require_capability(roles.GAKUREIBO_MANAGE)
def board_send(request: HttpRequest) -> HttpResponse:
    """名簿の送付: choose schools (all or some) and the deadline, confirm, send."""
    actor = get_actor(request.user)
    board, year, boards = _board_and_year(request, actor)
    preview = selectors.roster_send_preview(actor=actor, board=board, fiscal_year=year)
    school_choices = [(str(r.school.pk), r.school.name) for r in preview.rows]
    confirming = False
    chosen: list[Any] = []
    if request.method == "POST":
        form = SendForm(request.POST, school_choices=school_choices)
        if form.is_valid():
            chosen_ids = {int(v) for v in form.cleaned_data["schools"]}
            chosen = [r for r in preview.rows if r.school.pk in chosen_ids]
            problem = roster_services.deadline_problem(year, form.cleaned_data["deadline"])
            if problem:
                form.add_error("deadline", problem)
            elif not form.cleaned_data.get("confirm"):
                confirming = True
            else:
                try:
                    result = roster_services.roster_send(
                        actor=actor, board_id=board.pk, fiscal_year=year, school_ids=chosen_ids,
                        deadline=form.cleaned_data["deadline"],
                    )
                except NotFoundOrNoAccess:
                    raise Http404 from None
                except (ValidationFailed, PermissionDeniedError) as exc:
                    if isinstance(exc, ValidationFailed):
                        _put_errors(form, exc)
                    else:
                        form.add_error(None, str(exc))
                else:
                    messages.success(request, _(
                        "送付しました：新しい名簿 %(created)d 校（%(entries)d 名）、送付済みの名簿への変更 %(amend)d 件。"
                    ) % {"created": result.rosters_created, "entries": result.entries_sent,
                         "amend": result.amendments})
                    return redirect(f"{reverse('rosters:board_status')}?{urlencode({'board': board.pk, 'year': year})}")
    else:
        form = SendForm(initial={"schools": [c[0] for c in school_choices],
                                 "deadline": roster_services.default_deadline(year)},
                        school_choices=school_choices)
    return render(request, "rosters/board_send.html", {
        **_base_context(board, year, boards), "preview": preview, "form": form, "confirming": confirming,
        "chosen": chosen, "chosen_count": sum(r.count for r in chosen),
        "chosen_review": sum(r.needs_review for r in chosen),
        "breadcrumbs": [{"label": _("学齢簿"), "url": _list_url(board, year)}, {"label": _("名簿の送付"), "url": ""}],
    })


@login_required
@require_capability(roles.GAKUREIBO_MANAGE)
def board_status(request: HttpRequest) -> HttpResponse:
    """送付状況: per school, sent / opened / accepted with dates, and amendments not yet taken."""
    actor = get_actor(request.user)
    board, year, boards = _board_and_year(request, actor)
    rows = selectors.roster_board_status(actor=actor, board=board, fiscal_year=year)
    return render(request, "rosters/board_status.html", {
        **_base_context(board, year, boards), "rows": rows,
        "years": selectors.gakureibo_years(actor=actor, board=board),
        "counts": {
            "sent": len(rows), "opened": sum(1 for r in rows if r.roster.opened_at),
            "accepted": sum(1 for r in rows if r.roster.accepted_at),
            "pending": sum(r.pending_amendments for r in rows),
        },
        "breadcrumbs": [{"label": _("学齢簿"), "url": _list_url(board, year)}, {"label": _("送付状況"), "url": ""}],
    })


urlpatterns: list[URLPattern] = [
    path("gakureibo/", board_entries, name="board_entries"),
    path("gakureibo/new/", board_entry_new, name="board_entry_new"),
    path("gakureibo/designate/", board_bulk_designate, name="board_bulk_designate"),
    path("gakureibo/send/", board_send, name="board_send"),
    path("gakureibo/status/", board_status, name="board_status"),
    path("gakureibo/<uuid:entry_id>/", board_entry_edit, name="board_entry_edit"),
    path("gakureibo/<uuid:entry_id>/designate/", board_entry_designate, name="board_entry_designate"),
    path("gakureibo/<uuid:entry_id>/status/", board_entry_status, name="board_entry_status"),
    path("gakureibo/<uuid:entry_id>/review/", board_entry_review, name="board_entry_review"),
]
