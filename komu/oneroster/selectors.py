"""Reads for OneRoster: which schools an export or an API client covers, and a board's API clients."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.core.errors import NotFoundOrNoAccess
from komu.core.wareki import fiscal_year_of
from komu.directory.models import Board, Role, School
from komu.oneroster.build import Scope
from komu.oneroster.models import ApiClient


def export_schools(*, actor: Actor) -> QuerySet[School]:
    return scope.schools_for(actor, roles.ONEROSTER_EXPORT).order_by("code")


def export_boards(*, actor: Actor) -> QuerySet[Board]:
    """Boards an actor may export whole: those they serve as board officer (a prefectural board: also the
    municipal boards under it)."""
    ids = [g.board_id for g in actor.grants_with(roles.ONEROSTER_EXPORT) if g.role == Role.BOARD_OFFICER]
    return Board.objects.filter(Q(pk__in=ids) | Q(parent_id__in=ids)).order_by("code")


def export_scope_for(*, actor: Actor, board_code: str = "", school_code: str = "", year: int | None = None) -> Scope:
    """The schools of one board or one school (or all the actor may export), for one 年度. Out of scope: 404."""
    year = year or fiscal_year_of(timezone.localdate())
    schools = export_schools(actor=actor)
    if school_code:
        school = scope.get_in_scope(schools, code=school_code)
        return Scope(board_ids=(school.board_id,), school_ids=(school.pk,), year=year)
    if board_code:
        board = next((b for b in export_boards(actor=actor) if b.code == board_code), None)
        if board is None:
            raise NotFoundOrNoAccess("見つかりません。")
        chosen = list(School.objects.filter(board=board).values_list("pk", flat=True))
        return Scope(board_ids=(board.pk,), school_ids=tuple(chosen), year=year)
    pairs = list(schools.values_list("pk", "board_id"))
    if not pairs:
        raise NotFoundOrNoAccess("見つかりません。")
    return Scope(board_ids=tuple(sorted({b for _, b in pairs})), school_ids=tuple(p for p, _ in pairs), year=year)


def client_list(*, actor: Actor) -> list[ApiClient]:
    boards = [g.board_id for g in actor.grants_with(roles.ONEROSTER_CLIENTS) if g.board_id is not None]
    return list(ApiClient.objects.filter(board_id__in=boards).prefetch_related("schools").order_by("-created_at"))


def client_get_for(*, actor: Actor, client_id: Any) -> ApiClient:
    boards = [g.board_id for g in actor.grants_with(roles.ONEROSTER_CLIENTS) if g.board_id is not None]
    return scope.get_in_scope(ApiClient.objects.filter(board_id__in=boards), pk=client_id)


def client_scope(client: ApiClient, *, year: int | None = None) -> Scope:
    """An API client reaches only the schools it was registered for, and only while they belong to its board."""
    school_ids = tuple(client.schools.filter(board_id=client.board_id).order_by("pk").values_list("pk", flat=True))
    return Scope(board_ids=(client.board_id,), school_ids=school_ids,
                 year=year or fiscal_year_of(timezone.localdate()))


def client_boards(*, actor: Actor) -> list[Board]:
    """Boards whose API clients the actor registers (a board officer's own board)."""
    ids = [g.board_id for g in actor.grants_with(roles.ONEROSTER_CLIENTS) if g.board_id is not None]
    return list(Board.objects.filter(pk__in=ids).order_by("code"))


def client_school_choices(*, board: Board) -> list[School]:
    return list(School.objects.filter(board=board, is_active=True).order_by("code"))
