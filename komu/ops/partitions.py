"""Monthly partitions of the large tables on PostgreSQL: attendance marks (attendance migration 0003, by `date`) and
the audit log (audit migration 0003, by `occurred_at`, months in UTC).

- `partitions_ensure` creates the partitions of the current month and the months ahead (run daily by
  `komu partitions ensure` from a timer, or the `ensure_partitions` task). Should rows for a month have landed in
  the DEFAULT partition first, they are moved into the new month's partition in the same transaction.
- `partitions_drop_before` drops whole months of attendance marks before a date: retention without a DELETE of
  millions of rows.
- `audit_partitions_drop_before` is the ONLY way audit months go. The audit log is an HMAC chain that
  `komu audit verify` walks in id order, so it drops whole months entirely before the cut-off, oldest first, and
  only while they are exactly the oldest events of the chain (a prefix: never a gap, never the newest event). In
  the same transaction it records the chained `audit.retention.purged` event naming the last dropped id and its
  MAC — the anchor verification then starts from, exactly as the DELETE purge of komu.privacy.retention does.
  The append-only guard refuses DROP, DETACH, RENAME and TRUNCATE of audit partitions otherwise (event and
  TRUNCATE triggers of audit migration 0003); this function opens it with the purge switch of komu/audit/guard.py
  for its own transaction only.
- On SQLite (a trial) the tables are plain and every function here does nothing.
"""

from __future__ import annotations

import contextlib
import datetime
import re
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from komu.audit import guard
from komu.audit.services import _CHAIN_LOCK_KEY, PURGE_ACTION, audit_record

AUDIT_TABLE = "audit_auditevent"
# Table → partition column. Names are fixed here, never taken from input.
PARTITIONED = {"attendance_mark": "date", AUDIT_TABLE: "occurred_at"}
# Tables partitioned on a timestamp: their months are UTC months, bounds written with an explicit offset.
_TIMESTAMPED = {AUDIT_TABLE}
MONTHS_AHEAD = 3
_NAME = re.compile(r"^(?P<table>[a-z_]+)_y(?P<year>\d{4})m(?P<month>\d{2})$")


@dataclass(frozen=True)
class Partition:
    name: str
    start: datetime.date
    end: datetime.date


def month_add(day: datetime.date, months: int) -> datetime.date:
    index = day.year * 12 + day.month - 1 + months
    return datetime.date(index // 12, index % 12 + 1, 1)


def partition_name(table: str, month: datetime.date) -> str:
    return f"{table}_y{month.year}m{month.month:02d}"


def _bound(table: str, day: datetime.date) -> str:
    """The SQL literal of a month boundary: a date, or midnight UTC for a timestamp column."""
    return f"'{day.isoformat()} 00:00:00+00'" if table in _TIMESTAMPED else f"'{day.isoformat()}'"


def _month_of(table: str, column: str) -> str:
    return (
        f"date_trunc('month', {column} AT TIME ZONE 'UTC')"
        if table in _TIMESTAMPED
        else f"date_trunc('month', {column})"
    )


def is_partitioned(table: str) -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [table])
        row = cursor.fetchone()
    return bool(row and row[0] == "p")


def partitions_of(table: str) -> list[Partition]:
    """The monthly partitions of `table`, oldest first (the DEFAULT partition is not listed)."""
    if not is_partitioned(table):
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [table],
        )
        names = [row[0] for row in cursor.fetchall()]
    found = []
    for name in names:
        match = _NAME.match(name)
        if match and match["table"] == table:
            start = datetime.date(int(match["year"]), int(match["month"]), 1)
            found.append(Partition(name, start, month_add(start, 1)))
    return sorted(found, key=lambda p: p.start)


def partitions_ensure(*, today: datetime.date | None = None, months_ahead: int = MONTHS_AHEAD) -> list[str]:
    """Create the missing monthly partitions from this month to `months_ahead` months on. Returns their names."""
    created: list[str] = []
    this_month = (today or timezone.localdate()).replace(day=1)
    for table, column in PARTITIONED.items():
        if not is_partitioned(table):
            continue
        have = {p.start for p in partitions_of(table)}
        with connection.cursor() as cursor:
            # Months whose rows wait in DEFAULT (written before their month had a partition) get one too.
            cursor.execute(f"SELECT DISTINCT {_month_of(table, column)}::date FROM {table}_default")  # noqa: S608
            strays = {row[0] for row in cursor.fetchall()}
        wanted = {month_add(this_month, n) for n in range(months_ahead + 1)} | strays
        for month in sorted(wanted):
            if month in have:
                continue
            _create_month(table, column, month)
            created.append(partition_name(table, month))
    return created


def _create_month(table: str, column: str, month: datetime.date) -> None:
    name, end, default = partition_name(table, month), month_add(month, 1), f"{table}_default"
    start_sql, end_sql = _bound(table, month), _bound(table, end)
    bounds = f"FROM ({start_sql}) TO ({end_sql})"
    where = f"{column} >= {start_sql} AND {column} < {end_sql}"
    audit = table == AUDIT_TABLE
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {default} WHERE {where})")  # noqa: S608 - fixed names
        stray = bool(cursor.fetchone()[0])
        if not stray:
            cursor.execute(f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES {bounds}")
        else:
            # Rows of that month wait in DEFAULT: move them into the new partition while DEFAULT is detached. For
            # the audit log that DETACH and DELETE pass the append-only guard only through the purge switch; the
            # rows are moved as they are (same ids, same MACs), inside this one transaction.
            with guard.purge_window() if audit else contextlib.nullcontext():
                cursor.execute(f"ALTER TABLE {table} DETACH PARTITION {default}")
                cursor.execute(f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES {bounds}")
                cursor.execute(f"INSERT INTO {table} SELECT * FROM {default} WHERE {where}")  # noqa: S608
                cursor.execute(f"DELETE FROM {default} WHERE {where}")  # noqa: S608
                cursor.execute(f"ALTER TABLE {table} ATTACH PARTITION {default} DEFAULT")
        if audit:
            # A TRUNCATE trigger is a statement trigger: PostgreSQL does not clone it onto partitions, and
            # TRUNCATE of one partition does not fire the parent's. Each month gets its own.
            cursor.execute(
                f"CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON {name} "
                "FOR EACH STATEMENT EXECUTE FUNCTION komu_audit_append_only()"
            )


@dataclass(frozen=True)
class Dropped:
    name: str
    rows: int


def partitions_drop_before(table: str, cutoff: datetime.date) -> list[Dropped]:
    """Drop every monthly partition of `table` that ends on or before `cutoff`. Must run inside the caller's
    transaction (retention counts, drops and records its audit event together)."""
    if table == AUDIT_TABLE:
        raise ValueError(f"{table} is an HMAC chain: drop its months with audit_partitions_drop_before")
    if table not in PARTITIONED:
        raise ValueError(f"{table} is not a partitioned table")
    if not connection.in_atomic_block:
        raise RuntimeError("partitions_drop_before must run inside a transaction")
    dropped: list[Dropped] = []
    parts = [part for part in partitions_of(table) if part.end <= cutoff]
    if not parts:
        return dropped
    with connection.cursor() as cursor:
        # A table with deferred foreign-key checks still pending in this transaction cannot be dropped: run them
        # now (they pass or the whole retention fails), then defer again as Django's constraints expect.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for part in parts:
            cursor.execute(f"SELECT count(*) FROM {part.name}")  # noqa: S608 - names from the catalogue
            rows = int(cursor.fetchone()[0])
            cursor.execute(f"DROP TABLE {part.name}")
            dropped.append(Dropped(part.name, rows))
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    return dropped


@dataclass(frozen=True)
class AuditDrop:
    """What `audit_partitions_drop_before` dropped (or, in a dry run, would drop)."""

    partitions: list[Dropped]
    purged_from: int | None = None
    purged_through: int | None = None
    event_id: int | None = None

    @property
    def rows(self) -> int:
        return sum(d.rows for d in self.partitions)


def _audit_plan(cutoff: datetime.datetime) -> AuditDrop:
    """The longest run of oldest audit months, all ending by `cutoff`, whose rows are exactly the first events
    of the chain and not its newest one. Shrinks from the newest candidate month until that holds."""
    candidates = [
        p
        for p in partitions_of(AUDIT_TABLE)
        if datetime.datetime.combine(p.end, datetime.time.min, datetime.UTC) <= cutoff
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT min(id), max(id) FROM {AUDIT_TABLE}")  # noqa: S608 - fixed name
        first_id, last_id = cursor.fetchone()
        sizes = []
        for part in candidates:
            cursor.execute(f"SELECT count(*), max(id) FROM {part.name}")  # noqa: S608 - names from the catalogue
            count, top = cursor.fetchone()
            sizes.append((part, int(count), top))
        while sizes:
            rows = sum(count for _, count, _ in sizes)
            through = max((top for _, _, top in sizes if top is not None), default=None)
            if through is None:  # only empty months: nothing of the chain goes
                return AuditDrop([Dropped(p.name, 0) for p, _, _ in sizes])
            cursor.execute(f"SELECT count(*) FROM {AUDIT_TABLE} WHERE id <= %s", [through])  # noqa: S608
            if int(cursor.fetchone()[0]) == rows and through < last_id:
                return AuditDrop([Dropped(p.name, count) for p, count, _ in sizes], first_id, through)
            sizes.pop()
    return AuditDrop([])


def audit_partitions_drop_before(
    *, cutoff: datetime.datetime, actor: Any = None, dry_run: bool = False
) -> AuditDrop:
    """Retention of the audit log on PostgreSQL: drop the whole UTC months before `cutoff` that form a prefix of
    the chain (see the module's docstring) and record the anchor in a chained `audit.retention.purged` event, in
    one transaction. Events of a month that is only partly before the cut-off stay until the whole month is due;
    events in the DEFAULT partition stay until `partitions_ensure` has given them their month. Returns what was
    dropped (nothing on SQLite or an unpartitioned table)."""
    if not is_partitioned(AUDIT_TABLE):
        return AuditDrop([])
    with transaction.atomic():
        with connection.cursor() as cursor:
            # No event is appended while the plan is made and carried out (audit_record takes the same lock).
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
        plan = _audit_plan(cutoff)
        if dry_run or not plan.partitions:
            return plan
        anchor = None
        if plan.purged_through is not None:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT mac FROM {AUDIT_TABLE} WHERE id = %s", [plan.purged_through])  # noqa: S608
                anchor = cursor.fetchone()[0]
        with guard.purge_window(), connection.cursor() as cursor:
            for part in plan.partitions:
                cursor.execute(f"DROP TABLE {part.name}")
        if plan.purged_through is None:
            return plan
        event = audit_record(
            actor=actor,
            action=PURGE_ACTION,
            object_type="audit.auditevent",
            object_id=str(plan.purged_through),
            detail={
                "purged_from": plan.purged_from,
                "purged_through": plan.purged_through,
                "anchor_mac": anchor,
                "count": plan.rows,
                "before": cutoff.isoformat(),
                "partitions": {d.name: d.rows for d in plan.partitions},
            },
        )
    return AuditDrop(plan.partitions, plan.purged_from, plan.purged_through, event.id)
