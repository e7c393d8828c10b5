from __future__ import annotations

import datetime
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.utils import timezone

from komu.attendance.models import DailyRegister, Mark, MarkKind
from komu.audit.models import AuditEvent
from komu.audit.services import audit_record, audit_verify
from komu.directory.models import HomeroomClass, SchoolYear
from komu.privacy import retention
from komu.privacy.models import RetentionRule, RetentionRun
from komu.students.models import EmergencyContact, EnrollmentEvent, EnrollmentKind, Guardian, Student
from komu.testing.world import World

pytestmark = pytest.mark.django_db

TODAY = datetime.date(2026, 11, 26)


def _left(world: World, key: str, on: datetime.date) -> Student:
    student = world.students[key]
    student.is_active = False
    student.save()
    EnrollmentEvent.objects.create(student=student, kind=EnrollmentKind.TRANSFER_OUT, date=on, grade_code="P1",
                                   recorded_by=world.user("school_admin_a"))
    EmergencyContact.objects.create(student=student, name="祖母", relationship="祖母", phone="03-0000-0000",
                                    priority=1)
    return student


def _old_register(world: World, year: int) -> None:
    school_year = SchoolYear.objects.create(school=world.school_a, year=year, start_date=datetime.date(year, 4, 1),
                                            end_date=datetime.date(year + 1, 3, 31))
    klass = HomeroomClass.objects.create(school_year=school_year, grade_code="P1", name=f"{year}年1組")
    user = world.user("homeroom_a1")
    Mark.objects.create(student=world.students["a2_first"], homeroom_class=klass, date=datetime.date(year, 6, 3),
                        kind=MarkKind.LATE, updated_by=user)
    DailyRegister.objects.create(homeroom_class=klass, date=datetime.date(year, 6, 3), entered_by=user,
                                 entered_at=timezone.now())


def _old_events(n: int, when: datetime.datetime) -> None:
    with transaction.atomic():
        for _ in range(n):
            audit_record(actor=None, action="test.old", object_type="x", object_id="1")
    # Backdate through the purge switch, then re-seal the chain as the events would have been sealed then.
    from komu.audit import guard
    from komu.audit.services import canonical_bytes
    from komu.security.keys import get_keyring

    events = list(AuditEvent.objects.order_by("id"))
    with guard.purge_window():  # rows are never updated: rewrite the table
        AuditEvent.objects.all().delete()
    prev = ""
    for event in events:
        if event.action == "test.old":
            event.occurred_at = when
        event.prev_mac = prev
        event.mac = get_keyring().audit_mac(canonical_bytes(event))
        event.save(force_insert=True)
        prev = event.mac


def test_schedule_is_data_with_the_legal_periods(world: World) -> None:
    periods = dict(RetentionRule.objects.values_list("key", "years"))
    assert periods == {"attendance_registers": 5, "yoroku_gakuseki": 20, "yoroku_guidance": 5,
                       "contacts_after_leaving": 1, "audit_log": 10}


def test_dry_run_counts_and_removes_nothing(world: World) -> None:
    _left(world, "a1_second", datetime.date(2024, 3, 25))
    _old_register(world, 2018)
    events = AuditEvent.objects.count()
    report = retention.retention_run(dry_run=True, today=TODAY)
    by_key = {r.key: r for r in report.results}
    assert by_key["contacts_after_leaving"].counts == {"emergency_contacts": 1}
    assert by_key["attendance_registers"].counts == {"marks": 1, "daily_registers": 1}
    assert EmergencyContact.objects.count() == 1 and Mark.objects.count() == 1
    assert AuditEvent.objects.count() == events and not RetentionRun.objects.exists()


def test_run_removes_exactly_what_is_due_and_records_it(world: World) -> None:
    gone = _left(world, "a1_second", datetime.date(2024, 3, 25))  # left 2.5 years ago: contacts due
    recent = _left(world, "a2_first", datetime.date(2026, 3, 25))  # left 8 months ago: contacts kept
    ancient = _left(world, "b1_first", datetime.date(2005, 3, 25))  # left 21 years ago: the whole record goes
    _old_register(world, 2018)  # ended 31 March 2019: kept until 31 March 2024 → due
    _old_register(world, 2021)  # kept until 31 March 2027 → stays
    guardian_b = world.guardians["guardian_b"]
    report = retention.retention_run(today=TODAY)
    by_key = {r.key: r for r in report.results}
    assert by_key["contacts_after_leaving"].counts == {"emergency_contacts": 1}
    assert by_key["yoroku_gakuseki"].counts == {"students": 1, "guardians": 1}
    assert by_key["attendance_registers"].counts == {"marks": 1, "daily_registers": 1}
    assert "保持していません" in by_key["yoroku_guidance"].note
    assert not EmergencyContact.objects.filter(student=gone).exists()
    assert EmergencyContact.objects.filter(student=recent).exists()
    assert not Student.objects.filter(pk=ancient.pk).exists()
    assert Guardian.objects.filter(pk=guardian_b.pk).exists() is False  # went with the pupil's record
    assert Mark.objects.filter(homeroom_class__school_year__year=2021).count() == 1
    assert Mark.objects.filter(homeroom_class__school_year__year=2018).count() == 0
    run = RetentionRun.objects.get()
    assert {r["key"]: r["counts"] for r in run.results}["yoroku_gakuseki"] == {"students": 1, "guardians": 1}
    assert AuditEvent.objects.filter(action="privacy.retention.purged", object_id="contacts_after_leaving").exists()
    assert AuditEvent.objects.filter(action="attendance.retention.purged").exists()
    # Nothing more is due on a second run.
    again = retention.retention_run(today=TODAY)
    assert again.total == 0


def test_guardian_with_a_child_still_enrolled_keeps_contacts(world: World) -> None:
    from komu.students.models import GuardianLink

    _left(world, "a1_second", datetime.date(2024, 3, 25))
    guardian_a = world.guardians["guardian_a"]  # linked to a1_first, still enrolled
    GuardianLink.objects.create(guardian=guardian_a, student=world.students["a1_second"], relationship="母",
                                priority=1)
    retention.retention_run(today=TODAY)
    guardian_a.refresh_from_db()
    assert guardian_a.phone == "090-1234-5678"


def test_guardian_contacts_cleared_when_every_child_has_left(world: World) -> None:
    _left(world, "a1_first", datetime.date(2024, 3, 25))
    retention.retention_run(today=TODAY)
    guardian = Guardian.objects.get(pk=world.guardians["guardian_a"].pk)
    assert (guardian.phone, guardian.email, guardian.address) == ("", "", "")
    assert guardian.family_name == "髙橋"


def test_audit_purge_keeps_verify_passing(world: World) -> None:
    _old_events(5, timezone.now() - datetime.timedelta(days=365 * 12))
    with transaction.atomic():
        audit_record(actor=None, action="test.recent", object_type="x", object_id="2")
    assert audit_verify()[1] is None
    total = AuditEvent.objects.count()
    removed = retention.audit_purge_prefix(cutoff=timezone.now() - datetime.timedelta(days=365 * 10))
    assert removed >= 5
    assert not AuditEvent.objects.filter(action="test.old").exists()
    assert AuditEvent.objects.count() == total - removed + 1
    checked, broken = audit_verify()
    assert broken is None and checked == total - removed + 1
    out = StringIO()
    call_command("audit", "verify", stdout=out)
    assert "正常" in out.getvalue()
    # A second purge later starts from the new anchor and still verifies.
    with transaction.atomic():
        audit_record(actor=None, action="test.more", object_type="x", object_id="3")
    retention.audit_purge_prefix(cutoff=timezone.now() - datetime.timedelta(seconds=0))
    assert audit_verify()[1] is None


def test_removing_more_than_the_purge_did_is_still_detected(world: World) -> None:
    from komu.audit import guard

    _old_events(5, timezone.now() - datetime.timedelta(days=365 * 12))
    with transaction.atomic():
        for _ in range(3):
            audit_record(actor=None, action="test.recent", object_type="x", object_id="2")
    retention.audit_purge_prefix(cutoff=timezone.now() - datetime.timedelta(days=365 * 10))
    first = AuditEvent.objects.order_by("id").first()
    assert first is not None
    with guard.purge_window():
        AuditEvent.objects.filter(pk=first.pk).delete()
    assert audit_verify()[1] is not None
    with pytest.raises(CommandError):
        call_command("audit", "verify", stdout=StringIO())


def test_command_dry_run_and_run(world: World) -> None:
    _left(world, "a1_second", datetime.date(2020, 3, 25))
    out = StringIO()
    call_command("retention", "run", "--dry-run", stdout=out)
    assert "緊急連絡先 1" in out.getvalue() and "何も削除していません" in out.getvalue()
    assert EmergencyContact.objects.count() == 1
    call_command("retention", "run", stdout=out)
    assert EmergencyContact.objects.count() == 0 and RetentionRun.objects.count() == 1
    call_command("retention", "show", stdout=out)
    assert "監査ログ: 10年" in out.getvalue()


def test_disabled_rule_is_skipped(world: World) -> None:
    RetentionRule.objects.filter(key="contacts_after_leaving").update(enabled=False)
    _left(world, "a1_second", datetime.date(2020, 3, 25))
    retention.retention_run(today=TODAY)
    assert EmergencyContact.objects.count() == 1


def test_the_scheduled_task_runs_the_schedule(world: World) -> None:
    from komu.privacy import tasks

    _left(world, "a1_second", datetime.date(2020, 3, 25))
    assert tasks.run_retention.call(dry_run=True) == 1 and EmergencyContact.objects.count() == 1
    assert tasks.run_retention.call() == 1 and EmergencyContact.objects.count() == 0
    assert RetentionRun.objects.count() == 1


def test_schedule_page_for_the_operator_edits_with_legal_minimums(signed_in: Any, world: World) -> None:
    from django.urls import reverse

    url = reverse("privacy:retention")
    assert signed_in("principal_a").get(url).status_code == 404
    client = signed_in("operator")
    assert "指導要録（学籍に関する記録）" in client.get(url).content.decode()
    refused = client.post(url, {"key": "yoroku_gakuseki", "years": "10", "enabled": "on"})
    assert refused.status_code == 400 and "20年" in refused.content.decode()
    assert client.post(url, {"key": "audit_log", "years": "7"}).status_code == 302
    rule = RetentionRule.objects.get(key="audit_log")
    assert (rule.years, rule.enabled) == (7, False)
    assert AuditEvent.objects.filter(action="privacy.retention.rule_updated", object_id="audit_log").exists()


def test_on_postgresql_the_audit_rule_drops_whole_months(world: World) -> None:
    from django.db import connection

    from komu.audit.tests.helpers import redate
    from komu.ops import partitions

    if connection.vendor != "postgresql":
        pytest.skip("the audit log is partitioned on PostgreSQL only; SQLite deletes rows (tests above)")
    old = datetime.datetime(2014, 6, 3, tzinfo=datetime.UTC)
    with transaction.atomic():
        for _ in range(3):
            audit_record(actor=None, action="test.old", object_type="x", object_id="1")
    old_ids = set(AuditEvent.objects.filter(action="test.old").values_list("id", flat=True))
    # Everything up to the old events is dated 2014 (the world's own events come first in the chain).
    last_old = max(old_ids)
    redate(lambda e: old if e.id <= last_old else None)
    partitions.partitions_ensure(today=datetime.date(2014, 6, 1), months_ahead=0)
    with transaction.atomic():
        audit_record(actor=None, action="test.recent", object_type="x", object_id="2")
    due = AuditEvent.objects.filter(id__lte=last_old).count()
    dry = retention.retention_run(dry_run=True, today=TODAY)
    assert {r.key: r.counts for r in dry.results}["audit_log"] == {"audit_events": due}
    report = retention.retention_run(today=TODAY)
    audit = {r.key: r for r in report.results}["audit_log"]
    assert audit.counts == {"audit_events": due} and "y2014m06" in audit.note
    assert "audit_auditevent_y2014m06" not in {p.name for p in partitions.partitions_of("audit_auditevent")}
    event = AuditEvent.objects.get(action="audit.retention.purged")
    assert event.detail["purged_through"] == last_old and event.detail["partitions"] == {
        "audit_auditevent_y2014m06": due}
    assert audit_verify()[1] is None
