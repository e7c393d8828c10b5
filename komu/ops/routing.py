"""Reads of dashboards and reports on a streaming-replication standby, everything else on the primary.

Only when KOMU_REPLICA_DATABASE_URL is set (settings add the "replica" alias and this router); without it nothing
changes. The middleware (komu.ops.middleware) opens a standby window around a GET of a view named in
settings.KOMU_STANDBY_VIEWS. Inside the window a read goes to the standby unless

- the request has written anything (read-your-own-writes: from the first write on, every read of the request
  goes to the primary, which holds that write; the standby may not have replayed it yet), or
- the read runs inside a transaction on the primary (an audit append reads the chain's last row there: a
  standby's copy may be behind, and the chain must continue from the true last row).

Writes always go to the primary: a standby is read-only and would refuse them anyway.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections

REPLICA_ALIAS = "replica"


@dataclass
class _Window:
    wrote: bool = False


_window: contextvars.ContextVar[_Window | None] = contextvars.ContextVar("komu_standby_window", default=None)


@contextlib.contextmanager
def standby_reads() -> Iterator[None]:
    """Let reads in this block go to the standby (until the block writes)."""
    token = _window.set(_Window())
    try:
        yield
    finally:
        _window.reset(token)


def begin_standby_reads() -> contextvars.Token[_Window | None]:
    return _window.set(_Window())


def end_standby_reads(token: contextvars.Token[_Window | None]) -> None:
    _window.reset(token)


def replica_configured() -> bool:
    return REPLICA_ALIAS in connections.settings


def note_write() -> None:
    window = _window.get()
    if window is not None:
        window.wrote = True


def _read_alias() -> str:
    window = _window.get()
    if window is None or window.wrote or not replica_configured():
        return DEFAULT_DB_ALIAS
    if connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return DEFAULT_DB_ALIAS
    return REPLICA_ALIAS


class StandbyRouter:
    """settings.DATABASE_ROUTERS when a standby is configured."""

    def db_for_read(self, model: type[Any], **hints: Any) -> str:
        return _read_alias()

    def db_for_write(self, model: type[Any], **hints: Any) -> str:
        note_write()
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        # The standby is a copy of the primary: objects from either may be related.
        return True

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool:
        # Only the primary is migrated; the standby receives the schema by replication.
        return db == DEFAULT_DB_ALIAS
