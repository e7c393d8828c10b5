"""Monthly partitions of attendance marks on PostgreSQL (the CI's PostgreSQL run); SQLite keeps a plain table."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection, transaction

from komu.attendance.models import Mark, MarkKind
from komu.attendance.services import retention
from komu.attendance.tests.entry_helpers import _fast_password_hashing  # noqa: F401
from komu.attendance.tests.test_retention import _old_year
from komu.audit.models import AuditEvent
from komu.ops import partitions
from komu.testing.world import World

pytestmark = pytest.mark.django_db


@pytest.fixture
def postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("declarative partitioning is PostgreSQL's; SQLite keeps the plain table (checked below)")


def rows_in(name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {name}")
        return int(cursor.fetchone()[0])


def test_sqlite_keeps_a_plain_table_and_nothing_happens() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    assert not partitions.is_partitioned("attendance_mark")
    assert partitions.partitions_ensure() == []
    with transaction.atomic():
        assert partitions.partitions_drop_before("attendance_mark", datetime.date(2100, 1, 1)) == []


def test_marks_are_partitioned_by_month_and_months_are_made_ahead(postgres_only: None) -> None:
    assert partitions.is_partitioned("attendance_mark")
    created = partitions.partitions_ensure(today=datetime.date(2035, 1, 15), months_ahead=2)
    marks = [name for name in created if name.startswith("attendance_mark_")]
    assert marks == ["attendance_mark_y2035m01", "attendance_mark_y2035m02", "attendance_mark_y2035m03"]
    # The audit log's months are made ahead by the same run (komu/audit/tests/test_partitions.py checks them).
    assert "audit_auditevent_y2035m03" in created
    assert partitions.partitions_ensure(today=datetime.date(2035, 1, 15), months_ahead=2) == []
    names = [p.name for p in partitions.partitions_of("attendance_mark")]
    assert names == sorted(names, key=lambda n: n[-7:])


def test_rows_waiting_in_default_move_into_their_new_month(postgres_only: None, world: World) -> None:
    klass = world.class_a1
    student = world.students["a1_first"]
    mark = Mark.objects.create(student=student, homeroom_class=klass, date=datetime.date(2036, 5, 12),
                               kind=MarkKind.LATE, updated_by=world.user("homeroom_a1"))
    assert rows_in("attendance_mark_default") >= 1
    created = partitions.partitions_ensure(today=datetime.date(2036, 5, 1), months_ahead=0)
    assert "attendance_mark_y2036m05" in created
    assert rows_in("attendance_mark_y2036m05") == 1
    assert not Mark.objects.filter(date=datetime.date(2036, 5, 12)).exclude(pk=mark.pk).exists()
    assert Mark.objects.get(pk=mark.pk).detail == ""  # the encrypted column still opens: same table, same row id


def test_retention_drops_whole_months_and_records_it(postgres_only: None, world: World) -> None:
    _old_year(world, world.school_a, 2014, "a1_first")
    _old_year(world, world.school_b, 2015, "b1_first")
    partitions.partitions_ensure(today=datetime.date(2014, 6, 1), months_ahead=0)
    partitions.partitions_ensure(today=datetime.date(2015, 6, 1), months_ahead=0)
    assert rows_in("attendance_mark_y2014m06") == 1
    report = retention.attendance_purge(before_year=2016, today=datetime.date(2026, 11, 26))
    assert dict(report.dropped_partitions) == {"attendance_mark_y2014m06": 1, "attendance_mark_y2015m06": 1}
    assert sum(y.counts["marks"] for y in report.years) == 2
    assert not Mark.objects.filter(date__year__in=[2014, 2015]).exists()
    assert "attendance_mark_y2014m06" not in {p.name for p in partitions.partitions_of("attendance_mark")}
    event = AuditEvent.objects.get(action="attendance.retention.partitions_dropped")
    assert event.detail["partitions"] == {"attendance_mark_y2014m06": 1, "attendance_mark_y2015m06": 1}


def test_drop_refuses_unknown_tables_and_the_audit_chain() -> None:
    with pytest.raises(ValueError, match="not a partitioned table"):
        partitions.partitions_drop_before("students_student", datetime.date(2000, 1, 1))
    # Audit months go only through audit_partitions_drop_before, which keeps the chain's anchor.
    with pytest.raises(ValueError, match="audit_partitions_drop_before"):
        partitions.partitions_drop_before("audit_auditevent", datetime.date(2000, 1, 1))


@pytest.mark.django_db(transaction=True)
def test_drop_refuses_outside_a_transaction() -> None:
    with pytest.raises(RuntimeError, match="inside a transaction"):
        partitions.partitions_drop_before("attendance_mark", datetime.date(2000, 1, 1))
