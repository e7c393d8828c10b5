"""The append-only triggers, on whichever database the suite runs (SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction

from komu.audit import guard
from komu.audit.models import AuditEvent
from komu.audit.tests.helpers import execute, record_events


@pytest.fixture
def purge_off() -> Iterator[None]:
    """The switch as it stands in production. The test session turns it on for table flushes
    (komu/conftest.py), so put it back afterwards."""
    guard.set_purge_allowed(False)
    try:
        yield
    finally:
        guard.set_purge_allowed(True)


def _rejected() -> AbstractContextManager[Any]:
    return pytest.raises(DatabaseError, match="append-only")


def test_an_update_is_rejected(db: None, purge_off: None) -> None:
    event = record_events(2)[0]
    with _rejected(), transaction.atomic():
        execute("UPDATE audit_auditevent SET action = %s WHERE id = %s", ["tests.edited", event.id])
    with _rejected(), transaction.atomic():
        AuditEvent.objects.filter(pk=event.id).update(detail={"count": 99})
    stored = AuditEvent.objects.get(pk=event.id)
    stored.action = "tests.edited"
    with _rejected(), transaction.atomic():
        stored.save()
    assert AuditEvent.objects.get(pk=event.id).action == event.action


def test_a_delete_is_rejected(db: None, purge_off: None) -> None:
    events = record_events(2)
    with _rejected(), transaction.atomic():
        execute("DELETE FROM audit_auditevent WHERE id = %s", [events[0].id])
    with _rejected(), transaction.atomic():
        AuditEvent.objects.all().delete()
    with _rejected(), transaction.atomic():
        AuditEvent.objects.get(pk=events[1].id).delete()
    assert AuditEvent.objects.count() == 2


def test_the_purge_switch_allows_removal_but_never_an_edit(db: None, purge_off: None) -> None:
    events = record_events(2)
    with guard.purge_window():
        with _rejected(), transaction.atomic():
            execute("UPDATE audit_auditevent SET action = %s WHERE id = %s", ["tests.edited", events[0].id])
        assert execute("DELETE FROM audit_auditevent WHERE id = %s", [events[0].id]) == 1
    assert not guard.purge_allowed()
    assert list(AuditEvent.objects.values_list("pk", flat=True)) == [events[1].id]
    with _rejected(), transaction.atomic():
        execute("DELETE FROM audit_auditevent WHERE id = %s", [events[1].id])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="TRUNCATE is a PostgreSQL statement")
def test_a_truncate_is_rejected_on_postgresql(db: None, purge_off: None) -> None:
    record_events(1)
    with _rejected(), transaction.atomic():
        execute("TRUNCATE audit_auditevent")
    assert AuditEvent.objects.count() == 1


def test_inserting_is_still_allowed_with_the_switch_off(db: None, purge_off: None) -> None:
    assert len(record_events(3)) == 3
