"""The audit log partitioned by month on PostgreSQL (audit migration 0003): retention drops whole months only
through komu.ops.partitions.audit_partitions_drop_before, which keeps `komu audit verify` green; anything else that
would drop, detach or truncate a month is refused. SQLite keeps the plain table."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from contextlib import AbstractContextManager
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from komu.audit import guard
from komu.audit.management.commands.audit import ddl_guard_installed
from komu.audit.models import AuditEvent
from komu.audit.services import PURGE_ACTION, audit_verify
from komu.audit.tests.helpers import execute, record_events, redate
from komu.ops import partitions

pytestmark = pytest.mark.django_db
TABLE = partitions.AUDIT_TABLE
UTC = datetime.UTC


@pytest.fixture
def postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip(
            "declarative partitioning and event triggers are PostgreSQL's; SQLite keeps the plain table"
        )


@pytest.fixture
def purge_off() -> Iterator[None]:
    """The switch as it stands in production (the test session turns it on for table flushes)."""
    guard.set_purge_allowed(False)
    try:
        yield
    finally:
        guard.set_purge_allowed(True)


def _rejected() -> AbstractContextManager[Any]:
    return pytest.raises(DatabaseError, match="append-only")


def rows_in(name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {name}")
        return int(cursor.fetchone()[0])


def truncate_guarded(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = %s::regclass "
            "AND tgname = 'audit_event_no_truncate')",
            [name],
        )
        return bool(cursor.fetchone()[0])


def old_and_recent(old: int, month: datetime.date, recent: int = 2) -> list[AuditEvent]:
    """`old` events in `month` (UTC) given their own partition, then `recent` events now."""
    events = record_events(old + recent)
    old_ids = {e.id for e in events[:old]}
    redate(
        lambda e: (
            datetime.datetime(month.year, month.month, 3, 12, 0, tzinfo=UTC) if e.id in old_ids else None
        )
    )
    partitions.partitions_ensure(today=month, months_ahead=0)
    return events


def test_sqlite_keeps_the_plain_audit_table() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    record_events(2)
    assert not partitions.is_partitioned(TABLE)
    dropped = partitions.audit_partitions_drop_before(cutoff=datetime.datetime(2100, 1, 1, tzinfo=UTC))
    assert dropped.partitions == [] and AuditEvent.objects.count() == 2


def test_the_audit_table_is_partitioned_after_migrate(postgres_only: None) -> None:
    assert partitions.is_partitioned(TABLE)
    this_month = datetime.datetime.now(UTC).date().replace(day=1)
    names = [p.name for p in partitions.partitions_of(TABLE)]
    assert partitions.partition_name(TABLE, this_month) in names
    for name in [TABLE, *names, f"{TABLE}_default"]:
        assert truncate_guarded(name), name
    assert ddl_guard_installed()
    out = StringIO()
    call_command("audit", "ddl-guard", stdout=out)
    assert "有効" in out.getvalue()
    # The chain still works on it: events are recorded, land in this month's partition and verify.
    record_events(3)
    assert rows_in(partitions.partition_name(TABLE, this_month)) == AuditEvent.objects.count()
    assert audit_verify()[1] is None


def test_ensure_creates_audit_months_ahead_with_their_guard(postgres_only: None) -> None:
    created = partitions.partitions_ensure(today=datetime.date(2035, 1, 15), months_ahead=1)
    assert f"{TABLE}_y2035m01" in created and f"{TABLE}_y2035m02" in created
    assert "attendance_mark_y2035m01" in created
    assert truncate_guarded(f"{TABLE}_y2035m02")
    assert partitions.partitions_ensure(today=datetime.date(2035, 1, 15), months_ahead=1) == []


def test_an_event_for_a_month_without_partition_waits_in_default_until_ensure(
    postgres_only: None, purge_off: None
) -> None:
    events = record_events(3)
    redate(lambda e: datetime.datetime(2036, 5, 20, tzinfo=UTC) if e.id == events[0].id else None)
    assert rows_in(f"{TABLE}_default") == 1
    created = partitions.partitions_ensure(today=datetime.date(2036, 5, 1), months_ahead=0)
    assert f"{TABLE}_y2036m05" in created
    assert rows_in(f"{TABLE}_default") == 0 and rows_in(f"{TABLE}_y2036m05") == 1
    assert truncate_guarded(f"{TABLE}_default") and truncate_guarded(f"{TABLE}_y2036m05")
    assert audit_verify() == (3, None)  # moved as it was: same id, same MAC
    assert not guard.purge_allowed()


def test_dropping_an_old_month_through_the_service_keeps_verify_green(
    postgres_only: None, purge_off: None
) -> None:
    events = old_and_recent(4, datetime.date(2015, 3, 1))
    assert rows_in(f"{TABLE}_y2015m03") == 4
    anchor = AuditEvent.objects.get(pk=events[3].id).mac
    assert audit_verify() == (6, None)
    cutoff = datetime.datetime(2016, 1, 1, tzinfo=UTC)
    planned = partitions.audit_partitions_drop_before(cutoff=cutoff, dry_run=True)
    assert planned.rows == 4 and AuditEvent.objects.count() == 6
    dropped = partitions.audit_partitions_drop_before(cutoff=cutoff)
    assert [(d.name, d.rows) for d in dropped.partitions] == [(f"{TABLE}_y2015m03", 4)]
    assert f"{TABLE}_y2015m03" not in {p.name for p in partitions.partitions_of(TABLE)}
    event = AuditEvent.objects.get(action=PURGE_ACTION)
    assert event.id == dropped.event_id
    assert event.detail["purged_from"] == events[0].id and event.detail["purged_through"] == events[3].id
    assert event.detail["anchor_mac"] == anchor
    assert event.detail["partitions"] == {f"{TABLE}_y2015m03": 4}
    assert AuditEvent.objects.order_by("id").first().id == events[4].id  # type: ignore[union-attr]
    assert audit_verify() == (3, None)
    assert not guard.purge_allowed()
    # Nothing more is due: the run is idempotent and records nothing the second time.
    assert partitions.audit_partitions_drop_before(cutoff=cutoff).partitions == []
    assert AuditEvent.objects.filter(action=PURGE_ACTION).count() == 1


def test_months_that_are_not_a_prefix_of_the_chain_stay(postgres_only: None, purge_off: None) -> None:
    events = record_events(4)
    # Event 2 is dated after the cut-off while 1 and 3 sit in an old month: dropping it would leave a gap.
    when = {
        events[0].id: datetime.datetime(2015, 3, 3, tzinfo=UTC),
        events[2].id: datetime.datetime(2015, 3, 4, tzinfo=UTC),
        events[1].id: datetime.datetime(2017, 1, 1, tzinfo=UTC),
    }
    redate(lambda e: when.get(e.id))
    partitions.partitions_ensure(today=datetime.date(2015, 3, 1), months_ahead=0)
    partitions.partitions_ensure(today=datetime.date(2017, 1, 1), months_ahead=0)
    dropped = partitions.audit_partitions_drop_before(cutoff=datetime.datetime(2016, 1, 1, tzinfo=UTC))
    assert dropped.partitions == [] and AuditEvent.objects.count() == 4
    assert not AuditEvent.objects.filter(action=PURGE_ACTION).exists()
    assert audit_verify() == (4, None)


def test_the_newest_event_never_goes(postgres_only: None, purge_off: None) -> None:
    record_events(3)
    redate(lambda e: datetime.datetime(2015, 3, 3, tzinfo=UTC))
    partitions.partitions_ensure(today=datetime.date(2015, 3, 1), months_ahead=0)
    dropped = partitions.audit_partitions_drop_before(cutoff=datetime.datetime(2016, 1, 1, tzinfo=UTC))
    assert dropped.partitions == [] and AuditEvent.objects.count() == 3


@pytest.mark.parametrize(
    "statement",
    [
        "DROP TABLE {part}",
        "ALTER TABLE audit_auditevent DETACH PARTITION {part}",
        "ALTER TABLE {part} RENAME TO audit_renamed",
        "TRUNCATE {part}",
        "TRUNCATE audit_auditevent",
        "DROP TABLE audit_auditevent",
        "DROP TRIGGER audit_event_append_only ON audit_auditevent",
        "DELETE FROM {part}",
        "UPDATE {part} SET action = 'tests.edited'",
    ],
)
def test_raw_ddl_on_an_audit_partition_is_refused(
    postgres_only: None, purge_off: None, statement: str
) -> None:
    old_and_recent(2, datetime.date(2015, 3, 1))
    part = f"{TABLE}_y2015m03"
    with _rejected(), transaction.atomic():
        execute(statement.format(part=part))
    assert rows_in(part) == 2 and AuditEvent.objects.count() == 4
    assert part in {p.name for p in partitions.partitions_of(TABLE)}
    assert audit_verify() == (4, None)


def test_the_generic_drop_refuses_the_audit_table() -> None:
    with pytest.raises(ValueError, match="audit_partitions_drop_before"), transaction.atomic():
        partitions.partitions_drop_before(TABLE, datetime.date(2000, 1, 1))


@pytest.mark.django_db(transaction=True)
def test_the_migration_converts_a_populated_table_both_ways() -> None:
    """audit/0003 on a table that already holds events (and back): rows, ids and MACs survive, the chain verifies,
    and the guard is in place after each step. On SQLite both steps do nothing and the same holds."""
    from django.db.migrations.executor import MigrationExecutor

    events = record_events(5)
    redate(lambda e: datetime.datetime(2019, 7, 1, tzinfo=UTC) if e.id == events[0].id else None)
    macs = list(AuditEvent.objects.order_by("id").values_list("id", "mac"))

    def migrate_to(name: str) -> None:
        executor = MigrationExecutor(connection)
        executor.migrate([("audit", name)])

    pg = connection.vendor == "postgresql"
    try:
        migrate_to("0002_append_only")
        assert not partitions.is_partitioned(TABLE)
        assert list(AuditEvent.objects.order_by("id").values_list("id", "mac")) == macs
        assert audit_verify() == (5, None)
        if pg:
            assert not ddl_guard_installed()
    finally:
        migrate_to("0003_event_partitions")
    assert partitions.is_partitioned(TABLE) == pg
    assert list(AuditEvent.objects.order_by("id").values_list("id", "mac")) == macs
    assert audit_verify() == (5, None)
    if pg:
        assert ddl_guard_installed()
        assert rows_in(f"{TABLE}_y2019m07") == 1  # the month that had events got its partition
    record_events(1)
    assert audit_verify() == (6, None)
