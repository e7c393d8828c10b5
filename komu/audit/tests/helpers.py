"""Tampering with the audit table the way an attacker with database access would, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator, Sequence
from typing import Any

from django.db import connection, transaction

from komu.audit.models import AuditEvent
from komu.audit.services import Scope, audit_record

_TRIGGERS = importlib.import_module("komu.audit.migrations.0002_append_only")


@contextlib.contextmanager
def triggers_disabled() -> Iterator[None]:
    """Switch the append-only triggers off for the block and back on after it."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("DROP TRIGGER audit_event_no_update")
            cursor.execute("DROP TRIGGER audit_event_no_delete")
        else:
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                for sql in _TRIGGERS.SQLITE:
                    cursor.execute(sql)
            else:
                cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")


def execute(sql: str, params: Sequence[Any] = ()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return int(cursor.rowcount)


def record_events(count: int, *, actor: Any = None) -> list[AuditEvent]:
    """`count` varied events, each in its own transaction like separate requests."""
    events = []
    for n in range(count):
        with transaction.atomic():
            events.append(audit_record(
                actor=actor, action=f"tests.event.{n}", object_type="students.student", object_id=f"obj-{n}",
                fields=["family_name", "health_note"][: n % 3], detail={"count": n, "memo": "閲覧・変更"},
                scope=Scope(school_id=n, board_id=None),
            ))
    return events
