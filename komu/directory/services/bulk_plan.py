"""The plan of a bulk load: what each row will do, the writes queued for applying, and reading the labels and
codes that people type into spreadsheets (種別, 障害種別, 役割, 学年)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from django.db import models
from django.utils import translation
from django.utils.translation import gettext as _

from komu.core import codes
from komu.core.codes import CodeError
from komu.core.tabular import TableIssue
from komu.directory.models import Board, HomeroomClass, Role
from komu.directory.services._common import Errors

# --- what a row does ------------------------------------------------------------------------------------

Action = Literal["create", "update", "unchanged"]


@dataclass(frozen=True)
class Change:
    """What applying one row does. ``line`` is None for a record the load implies (a 年度 for new classes)."""

    line: int | None
    action: Action
    target: str
    key: str
    label: str
    fields: tuple[str, ...] = ()

    @property
    def action_label(self) -> str:
        return {"create": _("新規"), "update": _("更新"), "unchanged": _("変更なし")}[self.action]


# --- the plan ------------------------------------------------------------------------------------------


@dataclass
class Stage:
    """Writes that may run together; later stages may point at records an earlier stage created."""

    creates: list[models.Model] = field(default_factory=list)
    updates: list[tuple[models.Model, tuple[str, ...]]] = field(default_factory=list)


class Plan:
    def __init__(self, filename: str, headers: dict[str, str | None]) -> None:
        self.filename = filename
        self.headers = headers  # model field → column heading the user will look for
        self.issues: list[TableIssue] = []
        self.changes: list[Change] = []
        self.stages: list[Stage] = [Stage(), Stage()]

    def issue(self, line: int | None, column: str | None, message: str, code: str = "invalid") -> None:
        self.issues.append(TableIssue(self.filename, line, column, message, code))

    def report_errors(self, line: int, errors: Errors) -> None:
        for key, messages in errors.items():
            for message in messages:
                self.issue(line, self.headers.get(key), message)

    def record(
        self,
        *,
        line: int | None,
        obj: models.Model,
        before: dict[str, Any] | None,
        tracked: Mapping[str, object],  # field → label (lazy translations are fine)
        target: str,
        key: str,
        label: str,
        stage: int = 0,
    ) -> None:
        """Queue ``obj`` for saving if it is new or changed, and note what happens to it in the report."""
        if before is None:
            self.stages[stage].creates.append(obj)
            self.changes.append(Change(line, "create", target, key, label))
            return
        changed = tuple(name for name in tracked if field_value(obj, name) != before[name])
        if changed:
            self.stages[stage].updates.append((obj, changed))
            self.changes.append(
                Change(line, "update", target, key, label, tuple(str(tracked[n]) for n in changed))
            )
        else:
            self.changes.append(Change(line, "unchanged", target, key, label))


def field_value(obj: models.Model, name: str) -> Any:
    """A field's value for comparison; a foreign key by its id (no query), or by identity when it points at a
    record this load is about to create and so has no id yet."""
    field_obj = obj._meta.get_field(name)
    if isinstance(field_obj, models.ForeignKey):
        related = field_obj.get_cached_value(obj, default=None)
        if related is not None and related.pk is None:
            return ("new", id(related))
        return getattr(obj, field_obj.attname)
    return getattr(obj, name)


def snapshot(obj: models.Model, tracked: Iterable[str]) -> dict[str, Any] | None:
    return {name: field_value(obj, name) for name in tracked} if obj.pk is not None else None


def fold(value: str) -> str:
    return "".join(unicodedata.normalize("NFKC", value).split()).replace("･", "・").casefold()


def choice(value: str, options: dict[str, str], what: str, accepted: Sequence[str]) -> str:
    """Map a label or code typed in a file to a stored value, or raise ValueError saying what is accepted."""
    found = options.get(fold(value))
    if found is None:
        raise ValueError(
            _("%(what)s「%(value)s」は使えません。%(accepted)sのいずれかを入力してください。")
            % {"what": what, "value": value, "accepted": "、".join(f"「{a}」" for a in accepted)}
        )
    return found


def ja(label: object) -> str:
    """A choice label in Japanese whatever the screen's language: the files name kinds and roles in Japanese."""
    with translation.override("ja"):
        return str(label)


def options(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {fold(name): value for name, value in pairs}


BOARD_KINDS = options(
    [
        *((ja(label), value) for value, label in Board.Kind.choices),
        *((value, value) for value in Board.Kind.values),
        ("都道府県", Board.Kind.PREFECTURAL),
        ("市区町村", Board.Kind.MUNICIPAL),
        ("市町村", Board.Kind.MUNICIPAL),
    ]
)
CLASS_KINDS = options(
    [
        *((ja(label), value) for value, label in HomeroomClass.Kind.choices),
        *((value, value) for value in HomeroomClass.Kind.values),
        ("通常", HomeroomClass.Kind.REGULAR),
        ("通常学級", HomeroomClass.Kind.REGULAR),
        ("特別支援", HomeroomClass.Kind.SPECIAL_NEEDS),
    ]
)
CATEGORIES = options(
    [
        *((ja(label), value) for value, label in HomeroomClass.SpecialNeedsCategory.choices),
        *(
            (f"{ja(label)}者", value) for value, label in HomeroomClass.SpecialNeedsCategory.choices
        ),  # 知的障害者 (§81)
        *((value, value) for value in HomeroomClass.SpecialNeedsCategory.values),
        ("病弱", HomeroomClass.SpecialNeedsCategory.HEALTH),
        ("身体虚弱", HomeroomClass.SpecialNeedsCategory.HEALTH),
    ]
)
STAFF_ROLES = options(
    [
        *((ja(label), value) for value, label in Role.choices if value != Role.GUARDIAN),
        *((value, value) for value in Role.values if value != Role.GUARDIAN),
    ]
)

# Plain year numbers (1年, 1) name different grades at different school types; where they are ambiguous (特別支援
# 学校 has 小学部 and 中学部) the file must use the MEXT code.
_NUMBERED_GRADES: dict[str, tuple[str, ...]] = {
    "A1": ("E1", "E2", "E3"),
    "A2": ("E1", "E2", "E3"),
    "B1": ("P1", "P2", "P3", "P4", "P5", "P6"),
    "C1": ("J1", "J2", "J3"),
    "C2": ("P1", "P2", "P3", "P4", "P5", "P6", "J1", "J2", "J3"),  # 義務教育学校 counts 1年〜9年
    "D1": ("H1", "H2", "H3"),
    "D2": ("J1", "J2", "J3", "H1", "H2", "H3"),  # 中等教育学校 counts 1年〜6年
}
_GRADE_LABELS = {fold(label): code for code, label in codes.GRADES.items()} | {
    fold(f"{prefix}{n}"): f"{letter}{n}"
    for prefix, letter, top in (("小", "P", 6), ("中", "J", 3), ("高", "H", 3))
    for n in range(1, top + 1)
}


def parse_grade(value: str, school_type: str) -> str:
    """学年 as a MEXT code (P1), its label (小学1年, 小1) or, where the 学校種 makes it unambiguous, a number
    (1, 1年, 1年生). Raises CodeError naming the codes this 学校種 uses."""
    folded = fold(value).upper()
    code = folded if folded in codes.GRADES else _GRADE_LABELS.get(folded.casefold())
    if code is None:
        number = folded.removesuffix("年生").removesuffix("年")
        numbered = _NUMBERED_GRADES.get(school_type)
        if number.isdigit() and numbered is not None and 1 <= int(number) <= len(numbered):
            code = numbered[int(number) - 1]
    allowed = codes.grades_for_school_type(school_type)
    if code is None or code not in allowed:
        label = codes.SCHOOL_TYPES[school_type]
        choices = "、".join(allowed) if allowed else _("なし")
        raise CodeError(
            _(
                "学年「%(value)s」は%(type)sでは使えません。%(type)sの学年コード（%(choices)s）で入力してください。"
            )
            % {"value": value, "type": label, "choices": choices},
            code="grade_for_school_type",
        )
    return code
