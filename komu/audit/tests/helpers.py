"""Tampering with the audit table the way an attacker with database access would, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import datetime
import importlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from django.db import connection, transaction

from komu.audit.guard import purge_window
from komu.audit.models import AuditEvent
from komu.audit.services import Scope, audit_record, canonical_bytes
from komu.security.keys import get_keyring

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


def redate(when: Callable[[AuditEvent], datetime.datetime | None]) -> None:
    """Give events another `occurred_at` (when(event), or None to keep it) and re-seal the whole chain as it would
    have been sealed then. Rows are never updated: the table is rewritten through the purge switch, so on
    PostgreSQL each row lands in its month's partition, or in DEFAULT when its month has none."""
    events = list(AuditEvent.objects.order_by("id"))
    with transaction.atomic(), purge_window():
        AuditEvent.objects.all().delete()
        prev = ""
        for event in events:
            event.occurred_at = when(event) or event.occurred_at
            event.prev_mac = prev
            event.mac = get_keyring().audit_mac(canonical_bytes(event))
            event.save(force_insert=True)
            prev = event.mac
