"""The aggregate of a survey as pure functions: one row per school, per-field summaries, and the download's
table. No ORM here: the selector feeds it decrypted answers, the benchmark feeds it 500 × 50 made-up ones.

Summaries count submitted answers only (a draft is not yet the school's answer); the table lists every school.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from komu.surveys import fields as rules
from komu.surveys.fields import FieldSpec


@dataclass(frozen=True)
class AnswerRecord:
    school_code: str
    school_name: str
    status: str  # SurveyAnswer.Status value
    status_label: str
    submitted_at: datetime.datetime | None
    version: int
    values: Mapping[str, Any]
    prefilled: Mapping[str, Any]


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    percent: int  # of the largest bar, for the width


@dataclass
class FieldSummary:
    spec: FieldSpec
    answered: int = 0
    total: int | None = None
    mean: float | None = None
    minimum: int | None = None
    maximum: int | None = None
    bars: list[Bar] = field(default_factory=list)
    # A fixed table: per numeric column, the sum of each row over the schools.
    table: list[tuple[str, list[Bar]]] = field(default_factory=list)
    prefilled: int = 0
    edited: int = 0
    percent: int = 0  # a number's total as a share of the largest total among the numbers, for its bar


def _bars(counts: Sequence[tuple[str, int]]) -> list[Bar]:
    top = max((v for _l, v in counts), default=0)
    return [Bar(label, value, round(100 * value / top) if top else 0) for label, value in counts]


def summarise(specs: Sequence[FieldSpec], answers: Sequence[AnswerRecord], *, submitted: str) -> list[FieldSummary]:
    counted = [a for a in answers if a.status == submitted]
    summaries = []
    for spec in specs:
        summary = FieldSummary(spec)
        present = [a.values.get(spec.key) for a in counted if not rules.is_empty(spec, a.values.get(spec.key))]
        summary.answered = len(present)
        if spec.source:
            bound = [a for a in counted if spec.key in a.prefilled]
            summary.prefilled = len(bound)
            summary.edited = sum(1 for a in bound if a.values.get(spec.key) != a.prefilled[spec.key])
        if spec.kind == "number":
            numbers = [int(str(v)) for v in present]
            if numbers:
                summary.total = sum(numbers)
                summary.mean = round(summary.total / len(numbers), 2)
                summary.minimum, summary.maximum = min(numbers), max(numbers)
        elif spec.kind in ("single", "multiple"):
            counts = dict.fromkeys(spec.choices, 0)
            for value in present:
                for choice in (value if isinstance(value, list) else [value]):
                    if choice in counts:
                        counts[choice] += 1
            summary.bars = _bars(list(counts.items()))
        elif spec.kind == "table" and spec.fixed_rows:
            for column in spec.columns:
                if column["kind"] != "number":
                    continue
                sums = [0] * len(spec.fixed_rows)
                for value in present:
                    for i, row in enumerate(list(value or [])[: len(sums)]):
                        sums[i] += int(row.get(column["key"]) or 0)
                summary.table.append((column["label"], _bars(list(zip(spec.fixed_rows, sums, strict=True)))))
        summaries.append(summary)
    top = max((abs(x.total) for x in summaries if x.total is not None), default=0)
    for x in summaries:
        if x.total is not None and top:
            x.percent = round(100 * abs(x.total) / top)
    return summaries


EDITED_HEADING = "自動入力から修正した項目"


def headers(specs: Sequence[FieldSpec]) -> list[str]:
    result = ["学校コード", "学校名", "状態", "提出日時", "版"]
    for spec in specs:
        if spec.kind == "table" and spec.fixed_rows:
            result.extend(heading for heading, _r, _c in rules.table_columns(spec))
        else:
            result.append(spec.label)
    result.append(EDITED_HEADING)
    return result


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def rows(specs: Sequence[FieldSpec], answers: Sequence[AnswerRecord]) -> list[list[str]]:
    """One row per school, every cell a string (the writers escape formulas and never guess types)."""
    labels = {s.key: s.label for s in specs}
    result = []
    for a in answers:
        when = a.submitted_at.strftime("%Y-%m-%d %H:%M") if a.submitted_at else ""
        row = [a.school_code, a.school_name, a.status_label, when, str(a.version)]
        for spec in specs:
            value = a.values.get(spec.key)
            if spec.kind == "table" and spec.fixed_rows:
                table = value or []
                for _heading, r, c in rules.table_columns(spec):
                    row.append(_cell(table[r].get(c)) if r < len(table) else "")
            else:
                row.append(rules.display(spec, value))
        edited = [labels[k] for k, v in sorted(a.prefilled.items()) if k in labels and a.values.get(k) != v]
        row.append("、".join(edited))
        result.append(row)
    return result
