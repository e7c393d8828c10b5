"""Run by test_replica.py in a process of its own, with KOMU_DATABASE_URL (primary) and KOMU_REPLICA_DATABASE_URL
(standby) set: checks the routing against real streaming replication and prints one JSON line of findings.

`python -m komu.ops.tests.replica_probe setup` builds the shared test world on the primary; `probe` checks."""

from __future__ import annotations

import json
import os
import sys
import uuid
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "komu.settings")
django.setup()

from django.contrib.auth.models import Group  # noqa: E402
from django.db import connections, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402

from komu.ops import routing  # noqa: E402

WRITES = ("insert", "update", "delete", "create", "alter", "drop", "truncate")


class Recorder:
    def __init__(self) -> None:
        self.statements: list[tuple[str, str]] = []

    def wrapper(self, alias: str) -> Any:
        def wrap(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            self.statements.append((alias, sql.strip().split(None, 1)[0].lower()))
            return execute(sql, params, many, context)

        return wrap

    def count(self, alias: str, kinds: tuple[str, ...] | None = None) -> int:
        return sum(1 for a, kind in self.statements if a == alias and (kinds is None or kind in kinds))


def record(callable_: Any) -> Recorder:
    rec = Recorder()
    with connections["default"].execute_wrapper(rec.wrapper("default")), \
            connections["replica"].execute_wrapper(rec.wrapper("replica")):
        callable_()
    return rec


def setup() -> None:
    from komu.testing.world import build_world

    world = build_world()
    print(json.dumps({"school_a": world.school_a.pk, "class_a1": world.class_a1.pk}))


def probe() -> None:
    from komu.accounts.models import User
    from komu.attendance.models import Mark
    from komu.directory.models import School
    from komu.students.models import ClassMembership
    from komu.testing.world import login_verified

    out: dict[str, Any] = {}
    with connections["replica"].cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery()")
        out["standby_in_recovery"] = cursor.fetchone()[0]
        # Hold replay: from here the standby does not see new writes on the primary.
        cursor.execute("SELECT pg_wal_replay_pause()")
    try:
        marker = f"probe-{uuid.uuid4().hex[:8]}"
        Group.objects.create(name=marker)  # on the primary, outside any window
        out["outside_window_reads_primary"] = Group.objects.filter(name=marker).exists()
        with routing.standby_reads():
            out["window_reads_standby"] = not Group.objects.filter(name=marker).exists()
            own = f"own-{uuid.uuid4().hex[:8]}"
            Group.objects.create(name=own)
            out["read_your_own_write"] = Group.objects.filter(name=own).exists()
            out["after_write_reads_primary"] = Group.objects.filter(name=marker).exists()
        with routing.standby_reads(), transaction.atomic():
            out["atomic_reads_primary"] = Group.objects.filter(name=marker).exists()

        # The dashboard through the whole stack, as the principal opens it.
        principal = User.objects.get(username="principal_a")
        school = School.objects.get(name="みどり市立第一小学校")
        client = Client()
        login_verified(client, principal)
        responses: dict[str, int] = {}

        def dashboard() -> None:
            responses["overview"] = client.get(reverse("attendance:overview", args=[school.pk])).status_code

        rec = record(dashboard)
        out["dashboard_status"] = responses["overview"]
        out["dashboard_reads_on_standby"] = rec.count("replica", ("select",))
        out["dashboard_writes_on_standby"] = rec.count("replica", WRITES)
        out["dashboard_statements_on_primary"] = rec.count("default")

        # A save (not a dashboard) never touches the standby.
        membership = ClassMembership.objects.filter(homeroom_class__school_year__school=school).select_related(
            "homeroom_class").first()
        assert membership is not None
        klass = membership.homeroom_class
        from komu.attendance import calendar

        day = calendar.school_days(klass.school_year, klass.school_year.start_date,
                                   klass.school_year.end_date)[20]
        homeroom = User.objects.get(username="homeroom_a1")
        client2 = Client()
        login_verified(client2, homeroom)

        def save() -> None:
            url = reverse("attendance:row", args=[klass.pk, day, membership.student_id])
            responses["save"] = client2.post(url, {"kind": "late", "version": "0", "key": uuid.uuid4().hex},
                                             HTTP_HX_REQUEST="true").status_code

        rec = record(save)
        out["save_status"] = responses["save"]
        out["save_statements_on_standby"] = rec.count("replica")
        out["save_written_on_primary"] = Mark.objects.filter(student_id=membership.student_id, date=day).exists()
        try:
            with connections["replica"].cursor() as cursor:
                cursor.execute("CREATE TABLE komu_probe_should_fail (id int)")
            out["standby_refuses_writes"] = False
        except Exception as exc:  # any refusal will do; its text names read-only
            out["standby_refuses_writes"] = "read-only" in str(exc)
    finally:
        with connections["replica"].cursor() as cursor:
            cursor.execute("SELECT pg_wal_replay_resume()")
    print(json.dumps(out))


if __name__ == "__main__":
    {"setup": setup, "probe": probe}[sys.argv[1]]()
