"""One demo municipality per test module that asks for it.

Building takes a second or more, so `loaded_demo` builds it once per module inside an outer transaction that
is rolled back when the module ends. Each test still runs in its own savepoint (pytest-django's `db`), so a
write by one test (a TOTP code marked as used) never reaches the next, and modules that start from an empty
database are unaffected.
"""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import transaction

from komu.demo.builder import DemoSummary, build_demo

SEED = 7


@pytest.fixture(scope="module")
def loaded_demo(django_db_setup: Any, django_db_blocker: Any) -> Iterator[DemoSummary]:
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            yield build_demo(seed=SEED)
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


def run_demo(*args: str, **options: Any) -> str:
    """`komu demo …` as the console runs it; returns what it printed on stdout."""
    out = StringIO()
    call_command("demo", *args, stdout=out, stderr=StringIO(), **options)
    return out.getvalue()
