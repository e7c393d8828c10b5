"""The OneRoster 1.2 REST binding's query parameters: limit, offset, sort, orderBy, filter and fields. Pure.

Filter grammar (1.2 §3.4): `field op 'value'` with op one of = != > >= < <= ~ (contains), predicates joined by
AND or OR (AND binds tighter). Values are quoted with single quotes; a quote inside a value is doubled.
Comparison is on the JSON value as text (dates and datetimes are ISO 8601, so text order is time order).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
_OPS = ("!=", ">=", "<=", "=", ">", "<", "~")
_PREDICATE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(!=|>=|<=|=|>|<|~)\s*'((?:[^']|'')*)'\s*")
_JOIN = re.compile(r"\s+(AND|OR)\s+")


class QueryError(ValueError):
    """A bad parameter: `status` (400 or 422) and the spec's minor code name what was wrong."""

    def __init__(self, message: str, *, status: int = 400, minor: str = "invaliddata") -> None:
        super().__init__(message)
        self.status = status
        self.minor = minor


@dataclass(frozen=True)
class Predicate:
    field: str
    op: str
    value: str

    def matches(self, obj: Mapping[str, Any]) -> bool:
        found = lookup(obj, self.field)
        values = found if isinstance(found, list) else [found]
        return any(self._one(_text(v)) for v in values)

    def _one(self, text: str) -> bool:
        if self.op == "~":
            return self.value.casefold() in text.casefold()
        return {
            "=": text == self.value, "!=": text != self.value, ">": text > self.value,
            ">=": text >= self.value, "<": text < self.value, "<=": text <= self.value,
        }[self.op]


@dataclass(frozen=True)
class Filter:
    """OR of ANDs."""

    groups: tuple[tuple[Predicate, ...], ...]

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return any(all(p.matches(obj) for p in group) for group in self.groups)

    @property
    def fields(self) -> set[str]:
        return {p.field for group in self.groups for p in group}


@dataclass(frozen=True)
class Query:
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    sort: str = ""
    descending: bool = False
    filter: Filter | None = None
    fields: tuple[str, ...] = ()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, dict):
        return str(value.get("sourcedId", ""))
    return str(value)


def lookup(obj: Mapping[str, Any], path: str) -> Any:
    """A field by name; dotted names reach into nested objects (`org.sourcedId`, `metadata.jp.homeClass`)."""
    if path in obj:
        return obj[path]
    head, _, rest = path.partition(".")
    inner = obj.get(head)
    if not rest:
        return None
    if isinstance(inner, dict):
        return lookup(inner, rest)
    if isinstance(inner, list):
        return [lookup(item, rest) for item in inner if isinstance(item, dict)]
    return None


def parse_filter(text: str) -> Filter:
    if len(text) > 2000:
        raise QueryError("filter が長すぎます（2000文字まで）。", minor="invalid_filter_field")
    groups: list[tuple[Predicate, ...]] = []
    current: list[Predicate] = []
    position = 0
    while True:
        match = _PREDICATE.match(text, position)
        if match is None:
            raise QueryError(
                f"filter の {position + 1}文字目から読めません。field=演算子'値' の形（例 familyName='山田'）で、"
                "AND または OR でつないでください。", minor="invalid_filter_field")
        current.append(Predicate(match.group(1), match.group(2), match.group(3).replace("''", "'")))
        position = match.end()
        if position == len(text):
            break
        join = _JOIN.match(text, position - 1) or _JOIN.match(text, position)
        if join is None:
            raise QueryError(f"filter の {position + 1}文字目: 条件は AND か OR でつないでください。",
                             minor="invalid_filter_field")
        if join.group(1) == "OR":
            groups.append(tuple(current))
            current = []
        position = join.end()
    groups.append(tuple(current))
    return Filter(tuple(groups))


def _int(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise QueryError(f"{name} は {low} 以上の整数にしてください。", status=422)
    value = int(raw)
    if not low <= value <= high:
        raise QueryError(f"{name} は {low}〜{high} にしてください。", status=422)
    return value


def parse_query(params: Mapping[str, str]) -> Query:
    limit = _int(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _int(params, "offset", 0, 0, 10**9)
    order = params.get("orderBy", "asc") or "asc"
    if order not in ("asc", "desc"):
        raise QueryError("orderBy は asc か desc にしてください。", minor="invalid_sort_field")
    raw_filter = params.get("filter", "")
    fields = tuple(f.strip() for f in params.get("fields", "").split(",") if f.strip())
    return Query(limit=limit, offset=offset, sort=params.get("sort", "").strip(), descending=order == "desc",
                 filter=parse_filter(raw_filter) if raw_filter else None, fields=fields)


def apply_query(objects: Sequence[dict[str, Any]], query: Query, *, known_fields: set[str]) -> tuple[int, list[dict[str, Any]]]:
    """Filter, sort and page (fields are checked here, selected by select_fields); (total after filter, page)."""
    if query.filter is not None:
        unknown = sorted(f for f in query.filter.fields if f.split(".", 1)[0] not in known_fields)
        if unknown:
            raise QueryError(f"filter の項目「{unknown[0]}」はありません。", minor="invalid_filter_field")
        objects = [o for o in objects if query.filter.matches(o)]
    if query.sort:
        if query.sort.split(".", 1)[0] not in known_fields:
            raise QueryError(f"sort の項目「{query.sort}」はありません。", minor="invalid_sort_field")
        objects = sorted(objects, key=lambda o: _text(lookup(o, query.sort)), reverse=query.descending)
    elif query.descending:
        objects = list(reversed(objects))
    if query.fields:
        unknown = [f for f in query.fields if f not in known_fields]
        if unknown:
            raise QueryError(f"fields の項目「{unknown[0]}」はありません。", minor="invalid_selection_field")
    return len(objects), list(objects[query.offset:query.offset + query.limit])


def select_fields(page: Sequence[dict[str, Any]], query: Query) -> list[dict[str, Any]]:
    if not query.fields:
        return list(page)
    return [{f: o[f] for f in query.fields if f in o} for o in page]
