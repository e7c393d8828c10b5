"""Monthly partitions of the large tables on PostgreSQL (attendance marks; see the attendance migration 0003).

- `partitions_ensure` creates the partitions of the current month and the months ahead (run monthly by
  `komu partitions ensure` from a timer, or the `ensure_partitions` task). Should rows for a month have landed in
  the DEFAULT partition first, they are moved into the new month's partition in the same transaction.
- `partitions_drop_before` drops whole months before a date: retention without a DELETE of millions of rows.
- On SQLite (a trial) the tables are plain and every function here does nothing.

The audit log is NOT partitioned: dropping a month of it would cut the start off the HMAC chain that
`komu audit verify` walks from event #1, and DROP/DETACH of a partition passes by the append-only triggers.
docs/operations.md explains the choice.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

# Table → partition column. Names are fixed here, never taken from input.
PARTITIONED = {"attendance_mark": "date"}
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
            "WHERE i.inhparent = %s::regclass", [table])
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
            cursor.execute(f"SELECT DISTINCT date_trunc('month', {column})::date FROM {table}_default")  # noqa: S608
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
    bounds = f"FROM ('{month.isoformat()}') TO ('{end.isoformat()}')"
    where = f"{column} >= '{month.isoformat()}' AND {column} < '{end.isoformat()}'"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {default} WHERE {where})")  # noqa: S608 - fixed names
        stray = bool(cursor.fetchone()[0])
        if not stray:
            cursor.execute(f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES {bounds}")
            return
        # Rows of that month wait in DEFAULT: move them into the new partition while DEFAULT is detached.
        cursor.execute(f"ALTER TABLE {table} DETACH PARTITION {default}")
        cursor.execute(f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES {bounds}")
        cursor.execute(f"INSERT INTO {table} SELECT * FROM {default} WHERE {where}")  # noqa: S608
        cursor.execute(f"DELETE FROM {default} WHERE {where}")  # noqa: S608
        cursor.execute(f"ALTER TABLE {table} ATTACH PARTITION {default} DEFAULT")


@dataclass(frozen=True)
class Dropped:
    name: str
    rows: int


def partitions_drop_before(table: str, cutoff: datetime.date) -> list[Dropped]:
    """Drop every monthly partition of `table` that ends on or before `cutoff`. Must run inside the caller's
    transaction (retention counts, drops and records its audit event together)."""
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
