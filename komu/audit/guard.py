"""The append-only guard on the audit table.

Triggers on both databases reject UPDATE and DELETE of audit events. The only way past them is a purge switch
that the process sets for itself (retention of expired partitions, and the test suite's table flush). On SQLite
the trigger asks the connection's function komu_audit_purge(); a connection without that function — any other
program opening the file — gets an error, so the trigger still blocks. On PostgreSQL the trigger reads the
session setting komu.audit_purge.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from django.db import connections

_purge_allowed = False


def purge_allowed() -> bool:
    return _purge_allowed


def _apply(connection: Any) -> None:
    if connection.vendor == "postgresql" and connection.connection is not None:
        with connection.connection.cursor() as cursor:
            cursor.execute("SELECT set_config('komu.audit_purge', %s, false)", ["on" if _purge_allowed else "off"])


def on_connection_created(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_function("komu_audit_purge", 0, lambda: 1 if _purge_allowed else 0)
    else:
        _apply(connection)


def set_purge_allowed(value: bool) -> None:
    global _purge_allowed
    _purge_allowed = value
    for alias in connections:
        conn = connections[alias]
        if conn.connection is not None:
            _apply(conn)


@contextlib.contextmanager
def purge_window() -> Iterator[None]:
    previous = _purge_allowed
    set_purge_allowed(True)
    try:
        yield
    finally:
        set_purge_allowed(previous)
