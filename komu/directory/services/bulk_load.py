"""Bulk load of boards, schools, classes and staff assignments from a CSV or XLSX file (operators only).

All or nothing, in three steps inside one transaction:

1. read — `komu.core.tabular.read_table` decodes the file (UTF-8, UTF-8 with BOM, CP932, XLSX), checks headings
   and cells, and reports repeats of a code within the file after normalisation;
2. plan — every row is resolved against the database and the other rows of the same file and checked by the
   same rules as the screens (`fill_board`, `fill_school`, `fill_class`, the models' full_clean); the plan says
   for each row whether it creates, updates or leaves a record unchanged (upsert by code);
3. apply — only when no row has an error and this is not a dry run; one audit event records the load.

A column missing from the file leaves that value alone; a column present but blank clears it. So loading the
same file twice changes nothing the second time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from komu.access import roles
from komu.access.scope import Actor, require
from komu.audit.services import audit_record
from komu.core import codes
from komu.core.tabular import Column, TableIssue, TableSchema, read_table
from komu.core.text import normalize_phone
from komu.directory.services._common import user_of
from komu.directory.services.bulk_plan import Action, Change, Plan, Stage
from komu.directory.services.bulk_rows import PLANNERS
from komu.directory.services.staff import normalize_login_id

BATCH_SIZE = 1000


class LoadKind(models.TextChoices):
    BOARDS = "boards", gettext_lazy("教育委員会")
    SCHOOLS = "schools", gettext_lazy("学校")
    CLASSES = "classes", gettext_lazy("学級")
    STAFF = "staff", gettext_lazy("教職員の配置")


def _school_code(value: str) -> str:
    return codes.validate_school_code(value).code


def _board_code(value: str) -> str:
    return codes.validate_board_code(value).code


# Headings are what users see in the sample files and the upload page; aliases are headings in common use.
SCHEMAS: dict[str, TableSchema] = {
    LoadKind.BOARDS: TableSchema(
        (
            Column("教育委員会コード", "code", required=True, unique=True, clean=_board_code),
            Column("名称", "name", required=True, aliases=("教育委員会名",), max_length=100),
            Column("種別", "kind"),
            Column(
                "上位教育委員会コード", "parent_code", aliases=("上位の教育委員会コード",), clean=_board_code
            ),
        )
    ),
    LoadKind.SCHOOLS: TableSchema(
        (
            Column("学校コード", "code", required=True, unique=True, clean=_school_code),
            Column("学校名", "name", required=True, max_length=100),
            Column(
                "教育委員会コード", "board_code", required=True, aliases=("設置者コード",), clean=_board_code
            ),
            Column("所在地", "address", aliases=("住所",), max_length=200),
            Column(
                "電話番号",
                "phone",
                aliases=("代表電話", "代表電話番号"),
                max_length=20,
                clean=normalize_phone,
            ),
        )
    ),
    LoadKind.CLASSES: TableSchema(
        (
            Column("学校コード", "school_code", required=True, clean=_school_code),
            Column("年度", "year", required=True, kind="integer"),
            Column("学年", "grade", required=True),
            Column("学級名", "name", required=True, max_length=30),
            Column("種別", "kind", aliases=("学級種別",)),
            Column("障害種別", "category"),
            Column("並び順", "sort_order", kind="integer"),
        )
    ),
    LoadKind.STAFF: TableSchema(
        (
            Column("ログインID", "login_id", required=True, max_length=150, clean=normalize_login_id),
            Column("役割", "role", required=True),
            Column("学校コード", "school_code", clean=_school_code),
            Column("教育委員会コード", "board_code", clean=_board_code),
            Column("都道府県コード", "prefecture_code"),
            Column("年度", "year", kind="integer"),
            Column("学年", "grade"),
            Column("学級名", "class_name", aliases=("学級",), max_length=30),
            Column("開始日", "start_date", kind="date"),
            Column("終了日", "end_date", kind="date"),
        )
    ),
}


def bulk_load_schema(kind: str) -> TableSchema:
    """The columns a file of this kind may have (for the upload page's guide and the samples)."""
    return SCHEMAS[LoadKind(kind)]


# --- the report ------------------------------------------------------------------------------------------------


@dataclass
class LoadReport:
    kind: str
    filename: str
    dry_run: bool
    rows: int = 0  # data rows in the file
    error_rows: int = 0  # of which have at least one error
    format: str | None = None
    encoding: str | None = None
    errors: list[TableIssue] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    applied: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def count(self, action: Action) -> int:
        return sum(1 for change in self.changes if change.action == action)

    @property
    def created(self) -> int:
        return self.count("create")

    @property
    def updated(self) -> int:
        return self.count("update")

    @property
    def unchanged(self) -> int:
        return self.count("unchanged")

    @property
    def kind_label(self) -> str:
        return str(LoadKind(self.kind).label)

    @property
    def encoding_label(self) -> str:
        return {"utf-8": "UTF-8", "utf-8-sig": _("UTF-8（BOM付き）"), "cp932": "Shift_JIS（CP932）"}.get(
            self.encoding or "", "XLSX" if self.format == "xlsx" else ""
        )


# --- applying --------------------------------------------------------------------------------------------------


def _apply(stages: Sequence[Stage]) -> None:
    now = timezone.now()
    for stage in stages:
        by_model: dict[type[models.Model], list[models.Model]] = {}
        for obj in stage.creates:
            by_model.setdefault(type(obj), []).append(obj)
        for model, objs in by_model.items():
            model._default_manager.bulk_create(objs, batch_size=BATCH_SIZE)
        grouped: dict[tuple[type[models.Model], tuple[str, ...]], list[models.Model]] = {}
        for obj, changed in stage.updates:
            if hasattr(obj, "updated_at"):
                obj.updated_at = now
                changed = (*changed, "updated_at")
            grouped.setdefault((type(obj), changed), []).append(obj)
        for (model, changed), objs in grouped.items():
            model._default_manager.bulk_update(objs, list(changed), batch_size=BATCH_SIZE)


# Issues komu.core.tabular raises about the file as a whole (its heading line included), not about a data row.
_FILE_LEVEL_CODES = frozenset(
    {
        "file_too_large",
        "unsupported_format",
        "encoding",
        "csv_syntax",
        "too_many_columns",
        "too_many_rows",
        "too_many_errors",
        "header_unknown",
        "header_duplicate",
        "header_missing",
        "header_control_char",
    }
)


def _with_instructions(issue: TableIssue) -> TableIssue:
    """tabular reports a repeated code without saying what to do; a bulk load's user needs the next step."""
    if issue.code == "duplicate_value":
        advice = _("同じコードは1行にまとめ、どちらかの行を削除してください。")
        return TableIssue(issue.file, issue.line, issue.column, f"{issue.message}{advice}", issue.code)
    return issue


def bulk_load(*, actor: Actor, kind: str, data: bytes, filename: str, dry_run: bool) -> LoadReport:
    """Check every row of the file and, only if all are valid and this is no dry run, apply them together.

    Returns the report either way; errors never raise. A failure while writing (the database refusing a row)
    rolls back the whole load and propagates.
    """
    require(actor, roles.DIRECTORY_BULK_LOAD)
    kind = LoadKind(kind)
    report = LoadReport(kind=kind, filename=filename, dry_run=dry_run)
    table = read_table(data, filename=filename, schema=SCHEMAS[kind])
    report.format, report.encoding = table.format, table.encoding
    planner, headers = PLANNERS[kind]
    with transaction.atomic():
        plan = Plan(filename, headers)
        # Rows that failed the file checks are not in table.rows; the valid ones are still planned so that one
        # pass reports every error.
        planner(table.rows, plan)
        report.errors = sorted(
            (_with_instructions(i) for i in [*table.errors, *plan.issues]),
            key=lambda i: (i.line or 0, i.column or ""),
        )
        report.changes = plan.changes
        row_issues = {i.line for i in report.errors if i.line is not None and i.code not in _FILE_LEVEL_CODES}
        report.rows = len({row.line for row in table.rows} | row_issues)
        report.error_rows = len(row_issues)
        if report.errors or dry_run:
            return report
        _apply(plan.stages)
        audit_record(
            actor=user_of(actor),
            action="directory.bulk_loaded",
            object_type="directory.bulk_load",
            object_id=hashlib.sha256(data).hexdigest()[:32],
            detail={
                "kind": kind.value,
                "file": filename[:200],
                "rows": len(table.rows),
                "format": table.format,
                "created": report.created,
                "updated": report.updated,
                "unchanged": report.unchanged,
            },
        )
        report.applied = True
    return report
