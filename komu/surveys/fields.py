"""The kinds of survey field, as pure functions: checking a field's definition (the builder) and checking a
school's answer against it. No ORM here, so the rules are tested without a database and the aggregate
benchmark runs on the same code.

Values in an answer, per kind: number → int or None; text, single, date ("YYYY-MM-DD") → str ("" when empty);
multiple → list[str]; table → list of rows {column key: value}; file → {"id", "name", "size"} or None.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

KINDS = ("number", "text", "single", "multiple", "date", "table", "file")
COLUMN_KINDS = ("number", "text")
FILE_TYPES = {"pdf": "PDF", "xlsx": "Excel（XLSX）", "docx": "Word（DOCX）", "png": "PNG画像", "jpeg": "JPEG画像"}
MAX_FIELDS = 200
MAX_CHOICES = 30
MAX_COLUMNS = 10
MAX_ROWS = 50
MAX_TEXT = 2000
MAX_FILE_MB = 10
NUMBER_LIMIT = 10**12
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,19}$")


@dataclass(frozen=True)
class FieldSpec:
    """A survey field as the rules see it (built from a SurveyField row or from a template)."""

    key: str
    label: str
    kind: str
    required: bool = False
    help_text: str = ""
    config: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""

    @property
    def columns(self) -> list[dict[str, Any]]:
        return list(self.config.get("columns", []))

    @property
    def fixed_rows(self) -> list[str]:
        return list(self.config.get("rows", []))

    @property
    def choices(self) -> list[str]:
        return list(self.config.get("choices", []))


class DefinitionError(ValueError):
    """The builder's input does not make a usable field; `errors` maps form field names to messages."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def _int_or_none(value: Any, name: str, errors: dict[str, str], label: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        errors[name] = _("%(label)sは整数で入力してください。") % {"label": label}
        return None
    if abs(number) > NUMBER_LIMIT:
        errors[name] = _("%(label)sが大きすぎます。") % {"label": label}
        return None
    return number


def _lines(text: Any) -> list[str]:
    if isinstance(text, list):
        items = [str(x).strip() for x in text]
    else:
        items = [line.strip() for line in str(text or "").splitlines()]
    return [x for x in items if x]


def clean_config(kind: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The stored config of a field of `kind` from the builder's raw input; DefinitionError when unusable."""
    errors: dict[str, str] = {}
    config: dict[str, Any] = {}
    if kind not in KINDS:
        raise DefinitionError({"kind": _("項目の種類を選んでください。")})
    if kind == "number":
        low = _int_or_none(raw.get("min"), "min", errors, _("最小値"))
        high = _int_or_none(raw.get("max"), "max", errors, _("最大値"))
        if low is not None and high is not None and low > high:
            errors["max"] = _("最大値は最小値以上にしてください。")
        config = {"min": low, "max": high, "unit": str(raw.get("unit") or "").strip()[:10]}
    elif kind == "text":
        limit = _int_or_none(raw.get("max_length"), "max_length", errors, _("最大文字数")) or 200
        if not 1 <= limit <= MAX_TEXT:
            errors["max_length"] = _("最大文字数は1〜%(n)dの範囲で入力してください。") % {"n": MAX_TEXT}
        config = {"max_length": limit}
    elif kind in ("single", "multiple"):
        choices = _lines(raw.get("choices"))
        if len(choices) < 2:
            errors["choices"] = _("選択肢を2つ以上、1行に1つずつ入力してください。")
        elif len(choices) > MAX_CHOICES:
            errors["choices"] = _("選択肢は%(n)d個までです。") % {"n": MAX_CHOICES}
        elif len(set(choices)) != len(choices):
            errors["choices"] = _("同じ選択肢が2回あります。選択肢は重ならないようにしてください。")
        elif any(len(c) > 60 for c in choices):
            errors["choices"] = _("選択肢は1つ60文字以内にしてください。")
        config = {"choices": choices}
    elif kind == "table":
        columns = []
        for i, line in enumerate(_lines(raw.get("columns"))):
            label, _sep, col_kind = line.partition(":")
            col_kind = (col_kind.strip() or "number").lower()
            col_kind = {"数値": "number", "文字": "text"}.get(col_kind, col_kind)
            if col_kind not in COLUMN_KINDS:
                errors["columns"] = _("列の種類は「数値」か「文字」で指定してください（例: 人数:数値）。")
            columns.append({"key": f"c{i + 1}", "label": label.strip()[:60], "kind": col_kind})
        if not columns:
            errors["columns"] = _("列を1行に1つずつ入力してください（例: 人数:数値）。")
        elif len(columns) > MAX_COLUMNS:
            errors["columns"] = _("列は%(n)d列までです。") % {"n": MAX_COLUMNS}
        rows = _lines(raw.get("rows"))
        if len(rows) > MAX_ROWS:
            errors["rows"] = _("行は%(n)d行までです。") % {"n": MAX_ROWS}
        max_rows = _int_or_none(raw.get("max_rows"), "max_rows", errors, _("最大行数")) or 20
        if not rows and not 1 <= max_rows <= MAX_ROWS:
            errors["max_rows"] = _("最大行数は1〜%(n)dの範囲で入力してください。") % {"n": MAX_ROWS}
        config = {"columns": columns, "rows": rows, "max_rows": len(rows) if rows else max_rows}
    elif kind == "file":
        types = [t for t in (raw.get("types") or []) if t in FILE_TYPES]
        if not types:
            errors["types"] = _("受け付けるファイルの形式を1つ以上選んでください。")
        max_mb = _int_or_none(raw.get("max_mb"), "max_mb", errors, _("最大サイズ")) or 5
        if not 1 <= max_mb <= MAX_FILE_MB:
            errors["max_mb"] = _("最大サイズは1〜%(n)dMBの範囲で入力してください。") % {"n": MAX_FILE_MB}
        config = {"types": types, "max_mb": max_mb}
    if errors:
        raise DefinitionError(errors)
    return config


def valid_key(key: str) -> bool:
    return bool(_KEY.match(key))


# --- Answers ---------------------------------------------------------------------------------------------------

def empty_value(spec: FieldSpec) -> Any:
    if spec.kind == "number" or spec.kind == "file":
        return None
    if spec.kind == "multiple":
        return []
    if spec.kind == "table":
        return [dict.fromkeys((c["key"] for c in spec.columns), None) for _r in spec.fixed_rows]
    return ""


def is_empty(spec: FieldSpec, value: Any) -> bool:
    if spec.kind == "table":
        return not any(v not in (None, "") for row in (value or []) for v in row.values())
    return value in (None, "", [])


def _number(text: str, *, low: int | None, high: int | None, label: str) -> tuple[int | None, str]:
    text = text.strip().translate(_FULLWIDTH_DIGITS).replace(",", "")
    if text == "":
        return None, ""
    if not re.fullmatch(r"-?\d{1,13}", text):
        return None, _("%(label)sは整数で入力してください（例: 12）。") % {"label": label}
    number = int(text)
    if low is not None and number < low:
        return None, _("%(label)sは%(n)d以上で入力してください。") % {"label": label, "n": low}
    if high is not None and number > high:
        return None, _("%(label)sは%(n)d以下で入力してください。") % {"label": label, "n": high}
    return number, ""


_FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９－，", "0123456789-,")


def input_name(spec: FieldSpec, row: int | None = None, column: str | None = None) -> str:
    if row is None:
        return f"f_{spec.key}"
    return f"f_{spec.key}__{row}__{column}"


def parse_answer(
    specs: Sequence[FieldSpec], data: Any, *, require: bool, files: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Read a posted answer form (`data.get`/`data.getlist`, like a QueryDict) into values, with a message per
    bad input keyed by the input's name. `require` enforces required fields (on asking for approval, not on
    saving a draft). File fields keep the value in `files` (the stored file already attached), if any."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    files = files or {}
    for spec in specs:
        name = input_name(spec)
        config = spec.config
        if spec.kind == "number":
            values[spec.key], message = _number(
                str(data.get(name, "")), low=config.get("min"), high=config.get("max"), label=spec.label)
            if message:
                errors[name] = message
        elif spec.kind in ("text", "date", "single"):
            text = str(data.get(name, "")).strip()
            if spec.kind == "text" and len(text) > int(config.get("max_length", 200)):
                errors[name] = _("%(label)sは%(n)d文字以内で入力してください（いま%(m)d文字）。") % {
                    "label": spec.label, "n": int(config.get("max_length", 200)), "m": len(text)}
            if spec.kind == "date" and text:
                try:
                    text = datetime.date.fromisoformat(text).isoformat()
                except ValueError:
                    errors[name] = _("%(label)sは日付を正しく入力してください（例: 2026-11-26）。") % {
                        "label": spec.label}
            if spec.kind == "single" and text and text not in spec.choices:
                errors[name] = _("%(label)sは選択肢から選んでください。") % {"label": spec.label}
            values[spec.key] = text
        elif spec.kind == "multiple":
            picked = [str(x) for x in data.getlist(name)]
            if any(x not in spec.choices for x in picked):
                errors[name] = _("%(label)sは選択肢から選んでください。") % {"label": spec.label}
            values[spec.key] = [c for c in spec.choices if c in picked]
        elif spec.kind == "table":
            values[spec.key] = _parse_table(spec, data, errors)
        elif spec.kind == "file":
            values[spec.key] = files.get(spec.key)
        if require and spec.required and name not in errors and is_empty(spec, values.get(spec.key)):
            errors[name] = _("%(label)sは必須です。入力してください。") % {"label": spec.label}
    return values, errors


def _parse_table(spec: FieldSpec, data: Any, errors: dict[str, str]) -> list[dict[str, Any]]:
    fixed = spec.fixed_rows
    if fixed:
        count = len(fixed)
    else:
        try:
            count = int(str(data.get(f"{input_name(spec)}__rows", "0")))
        except ValueError:
            count = 0
        count = max(0, min(count, int(spec.config.get("max_rows", MAX_ROWS))))
    rows: list[dict[str, Any]] = []
    for r in range(count):
        row: dict[str, Any] = {}
        for column in spec.columns:
            name = input_name(spec, r, column["key"])
            raw = str(data.get(name, ""))
            label = f"{spec.label}（{fixed[r] if fixed else r + 1}・{column['label']}）"
            if column["kind"] == "number":
                row[column["key"]], message = _number(raw, low=0, high=None, label=label)
            else:
                row[column["key"]] = raw.strip()[:200]
                message = "" if len(raw.strip()) <= 200 else _("%(label)sは200文字以内で入力してください。") % {
                    "label": label}
            if message:
                errors[name] = message
        if fixed or any(v not in (None, "") for v in row.values()):
            rows.append(row)  # free tables drop rows left entirely blank
    return rows


def display(spec: FieldSpec, value: Any) -> str:
    """One cell of the results table and the downloads."""
    if value is None or value == "" or value == []:
        return ""
    if spec.kind == "number":
        return str(value)
    if spec.kind == "multiple":
        return "、".join(str(v) for v in value)
    if spec.kind == "table":
        labels = spec.fixed_rows
        parts = []
        for i, row in enumerate(value):
            cells = " ".join(f"{c['label']}={'' if row.get(c['key']) is None else row.get(c['key'])}"
                             for c in spec.columns)
            parts.append(f"{labels[i] if i < len(labels) else i + 1}: {cells}")
        return " / ".join(parts)
    if spec.kind == "file":
        return str(value.get("name", ""))
    return str(value)


def table_columns(spec: FieldSpec) -> list[tuple[str, int, str]]:
    """A fixed table spread over one download column per (row, column): (heading, row index, column key)."""
    return [(f"{spec.label}・{row}・{column['label']}", i, column["key"])
            for i, row in enumerate(spec.fixed_rows) for column in spec.columns]


def describe(spec: FieldSpec) -> str:
    """The settings of a field in a few words, for the builder's list."""
    config = spec.config
    if spec.kind == "number":
        low, high = config.get("min"), config.get("max")
        span = f"{'' if low is None else low}〜{'' if high is None else high}"
        return (_("範囲 %(span)s") % {"span": span} if low is not None or high is not None else "") + (
            f" {config.get('unit')}" if config.get("unit") else "")
    if spec.kind == "text":
        return _("%(n)d文字まで") % {"n": int(config.get("max_length", 200))}
    if spec.kind in ("single", "multiple"):
        return "、".join(spec.choices)
    if spec.kind == "table":
        columns = "、".join(c["label"] for c in spec.columns)
        rows = (_("行: %(rows)s") % {"rows": "、".join(spec.fixed_rows)} if spec.fixed_rows
                else _("行は自由（%(n)d行まで）") % {"n": int(config.get("max_rows", MAX_ROWS))})
        return _("列: %(columns)s／%(rows)s") % {"columns": columns, "rows": rows}
    if spec.kind == "file":
        return _("%(types)s・%(mb)dMBまで") % {
            "types": "・".join(FILE_TYPES.get(t, t) for t in config.get("types", [])), "mb": int(config.get("max_mb", 5))}
    return ""
