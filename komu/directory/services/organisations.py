"""Boards of education (教育委員会) and schools (学校): create and change, validated and audited.

The value rules (`fill_board`, `fill_school`) are shared with the bulk load, so a row in a file and a form on a
screen are judged by the same code and give the same Japanese messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils.translation import gettext as _

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.audit.services import audit_record
from komu.core import codes
from komu.core.codes import CodeError
from komu.core.errors import PermissionDeniedError
from komu.core.text import TextError, normalize_phone
from komu.directory import selectors
from komu.directory.models import Board, HomeroomClass, School
from komu.directory.services._common import (
    Errors,
    add_error,
    audit_scope,
    clean_line,
    model_errors,
    raise_if,
    require_nationwide,
    user_of,
)

BOARD_FIELDS = ("code", "name", "kind", "parent")
SCHOOL_FIELDS = ("code", "name", "board", "address", "phone", "is_active")


def board_kind_for_code(code: str) -> str:
    """A prefecture's own board is numbered XX1000 (codes.PREFECTURAL_BOARD_NUMBER); every other is municipal."""
    return Board.Kind.PREFECTURAL if codes.is_prefectural_board_code(code) else Board.Kind.MUNICIPAL


def board_parent_error(board: Board, parent: Board | None) -> str | None:
    """Komu's boards form two levels, which is what a board officer's scope assumes (access.scope): a
    prefectural board has no parent, a municipal board's parent is its prefecture's board."""
    if parent is None:
        return None
    if board.kind == Board.Kind.PREFECTURAL:
        return _(
            "都道府県教育委員会には上位の教育委員会を指定できません。上位教育委員会コードを空にしてください。"
        )
    if parent.code == board.code:
        return _("自分自身を上位の教育委員会にすることはできません。")
    if parent.kind != Board.Kind.PREFECTURAL:
        return _(
            "上位の教育委員会「%(name)s」（%(code)s）は都道府県教育委員会ではありません。"
            "都道府県教育委員会のコードを指定してください。"
        ) % {"name": parent.name, "code": parent.code}
    if parent.prefecture_id != board.prefecture_id:
        return _(
            "上位の教育委員会「%(name)s」（%(code)s）は別の都道府県の教育委員会です。"
            "同じ都道府県の教育委員会を指定してください。"
        ) % {"name": parent.name, "code": parent.code}
    return None


def fill_board(board: Board, *, code: str, name: str, kind: str, errors: Errors) -> None:
    """Set a board's own values from user input; messages go to ``errors`` under the model's field names."""
    try:
        parsed = codes.validate_board_code(code)
    except CodeError as exc:
        add_error(errors, "code", exc.message)
    else:
        board.code = parsed.code
        board.prefecture_id = parsed.prefecture_code
        board.kind = kind or board_kind_for_code(parsed.code)
    if kind and kind not in Board.Kind.values:
        add_error(errors, "kind", _("種別は「都道府県教育委員会」か「市区町村教育委員会」を選んでください。"))
    board.name = clean_line(name, key="name", label=_("名称"), errors=errors, required=True)


@dataclass(frozen=True)
class BoardInput:
    code: str
    name: str
    kind: str = ""  # "" → from the code: XX1000 is the prefecture's own board
    parent_id: int | None = None


def _board_from(board: Board, data: BoardInput) -> Errors:
    errors: Errors = {}
    fill_board(board, code=data.code, name=data.name, kind=data.kind, errors=errors)
    parent = Board.objects.filter(pk=data.parent_id).first() if data.parent_id else None
    if data.parent_id and parent is None:
        add_error(errors, "parent", _("上位の教育委員会が見つかりません。選び直してください。"))
    board.parent = parent
    if "code" not in errors and "kind" not in errors and (message := board_parent_error(board, parent)):
        add_error(errors, "parent", message)
    if "code" not in errors and Board.objects.filter(code=board.code).exclude(pk=board.pk).exists():
        add_error(
            errors,
            "code",
            _("教育委員会コード「%(code)s」はすでに登録されています。コードを確認してください。")
            % {"code": board.code},
        )
    derived = {"prefecture"} if "code" in errors else set()
    for key, messages in model_errors(board, exclude={*errors, *derived}, check_unique=False).items():
        errors.setdefault(key, messages)
    return errors


@transaction.atomic
def board_create(*, actor: Actor, data: BoardInput) -> Board:
    require_nationwide(actor, roles.DIRECTORY_MANAGE)
    board = Board()
    raise_if(_board_from(board, data))
    board.save()
    audit_record(
        actor=user_of(actor),
        action="directory.board.created",
        obj=board,
        fields=BOARD_FIELDS,
        detail={"code": board.code},
        scope=audit_scope(board_id=board.pk),
    )
    return board


@transaction.atomic
def board_update(*, actor: Actor, board_id: int, data: BoardInput) -> Board:
    require_nationwide(actor, roles.DIRECTORY_MANAGE)
    board = selectors.board_get_for(actor=actor, board_id=board_id, capability=roles.DIRECTORY_MANAGE)
    before = {name: getattr(board, name) for name in ("code", "name", "kind", "parent_id")}
    raise_if(_board_from(board, data))
    if before["kind"] == Board.Kind.PREFECTURAL and board.kind != before["kind"] and board.children.exists():
        raise_if({"kind": [_("下位の教育委員会がある都道府県教育委員会の種別は変更できません。")]})
    changed = [name.removesuffix("_id") for name, value in before.items() if getattr(board, name) != value]
    board.save()
    audit_record(
        actor=user_of(actor),
        action="directory.board.updated",
        obj=board,
        fields=changed,
        detail={"code": board.code},
        scope=audit_scope(board_id=board.pk),
    )
    return board


# --- schools ---------------------------------------------------------------------------------------------------


def fill_school(
    school: School,
    *,
    code: str,
    name: str,
    board: Board | None,
    address: str | None = None,
    phone: str | None = None,
    errors: Errors,
) -> None:
    """Set a school's values; ``None`` leaves a value as it is. 学校種 and 都道府県 come from the 学校コード."""
    try:
        parsed = codes.validate_school_code(code)
    except CodeError as exc:
        add_error(errors, "code", exc.message)
    else:
        school.code = parsed.code
        school.school_type = parsed.school_type
        school.prefecture_id = parsed.prefecture_code
        if board is not None and board.prefecture_id != parsed.prefecture_code:
            add_error(
                errors,
                "code",
                _(
                    "学校コードの都道府県（%(code_prefecture)s）が、設置者「%(board)s」の都道府県"
                    "（%(board_prefecture)s）と一致しません。学校コードの3〜4桁目か、設置者を確認してください。"
                )
                % {
                    "code_prefecture": f"{parsed.prefecture_code} {parsed.prefecture_name}",
                    "board": board.name,
                    "board_prefecture": f"{board.prefecture_id} {codes.prefecture_name(board.prefecture_id)}",
                },
            )
    if board is not None:
        school.board = board
    school.name = clean_line(name, key="name", label=_("学校名"), errors=errors, required=True)
    if address is not None:
        school.address = clean_line(address, key="address", label=_("所在地"), errors=errors)
    if phone is not None:
        phone = phone.strip()
        try:
            school.phone = normalize_phone(phone, _("代表電話")) if phone else ""
        except TextError as exc:
            add_error(errors, "phone", exc.message)


@dataclass(frozen=True)
class SchoolInput:
    code: str
    name: str
    board_id: int
    address: str = ""
    phone: str = ""
    is_active: bool = True


def _school_from(school: School, data: SchoolInput, board: Board) -> Errors:
    errors: Errors = {}
    fill_school(
        school,
        code=data.code,
        name=data.name,
        board=board,
        address=data.address,
        phone=data.phone,
        errors=errors,
    )
    school.is_active = data.is_active
    if "code" not in errors and School.objects.filter(code=school.code).exclude(pk=school.pk).exists():
        add_error(
            errors,
            "code",
            _("学校コード「%(code)s」はすでに登録されています。学校コードを確認してください。")
            % {"code": school.code},
        )
    derived = {"prefecture", "school_type"} if "code" in errors else set()
    for key, messages in model_errors(
        school, exclude={*errors, *derived, "board"}, check_unique=False
    ).items():
        errors.setdefault(key, messages)
    return errors


@transaction.atomic
def school_create(*, actor: Actor, data: SchoolInput) -> School:
    """A board officer founds schools under their boards; the operator anywhere."""
    board = scope.get_in_scope(selectors.manageable_boards(actor), pk=data.board_id)
    school = School()
    raise_if(_school_from(school, data, board))
    school.save()
    audit_record(
        actor=user_of(actor),
        action="directory.school.created",
        obj=school,
        fields=SCHOOL_FIELDS,
        detail={"code": school.code},
        scope=audit_scope(school_id=school.pk, board_id=board.pk),
    )
    return school


@transaction.atomic
def school_update(*, actor: Actor, school_id: int, data: SchoolInput) -> School:
    """School managers change their school's name, address and phone; its 学校コード, 設置者 and whether it is
    open are changed by whoever could have founded it (its board, or the operator)."""
    school = selectors.school_get_for(actor=actor, school_id=school_id, capability=roles.DIRECTORY_MANAGE)
    before = {
        name: getattr(school, name) for name in ("code", "name", "board_id", "address", "phone", "is_active")
    }
    boards = selectors.manageable_boards(actor)
    board = scope.get_in_scope(boards, pk=data.board_id) if data.board_id != school.board_id else school.board
    errors = _school_from(school, data, board)
    identity_changed = any(
        getattr(school, name) != before[name] for name in ("code", "board_id", "is_active")
    )
    if identity_changed and not boards.filter(pk=before["board_id"]).exists():
        raise PermissionDeniedError(
            _("学校コード・設置者・運営状況の変更は、教育委員会の担当者に依頼してください。")
        )
    if (
        "code" not in errors
        and school.code[:2] != before["code"][:2]
        and HomeroomClass.objects.filter(school_year__school=school).exists()
    ):
        add_error(
            errors, "code", _("学級が登録されているため、学校種（学校コードの先頭2文字）は変更できません。")
        )
    raise_if(errors)
    changed = [name.removesuffix("_id") for name, value in before.items() if getattr(school, name) != value]
    school.save()
    audit_record(
        actor=user_of(actor),
        action="directory.school.updated",
        obj=school,
        fields=changed,
        detail={"code": school.code},
        scope=audit_scope(school_id=school.pk, board_id=school.board_id),
    )
    return school
