"""The audit chain: each event seals the one before it; `komu audit verify` finds any edit, gap or swap."""

from __future__ import annotations

import itertools
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, transaction

from komu.audit import context, guard
from komu.audit.guard import purge_window
from komu.audit.models import AuditEvent
from komu.audit.services import AuditOutsideTransaction, audit_record, audit_verify, canonical_bytes
from komu.audit.tests.helpers import execute, record_events, triggers_disabled
from komu.security.keys import get_keyring


def _verify_fails_at(event_id: int) -> str:
    """Run `komu audit verify`, expect it to fail naming `event_id`, and return its message."""
    with pytest.raises(CommandError) as failure:
        call_command("audit", "verify")
    message = str(failure.value)
    assert re.search(rf"イベント #{event_id} —", message), message
    return message


# --- recording ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_recording_outside_a_transaction_is_refused() -> None:
    with pytest.raises(AuditOutsideTransaction, match="トランザクションの中で記録してください"):
        audit_record(actor=None, action="tests.outside")
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_event_rolls_back_with_the_change_it_records() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(actor=None, action="tests.rolled_back")
        raise RuntimeError("the write it accompanies failed")
    assert not AuditEvent.objects.exists()
    with transaction.atomic():
        audit_record(actor=None, action="tests.committed")
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["tests.committed"]


def test_events_form_a_chain(db: None) -> None:
    events = record_events(4)
    ring = get_keyring()
    assert [e.id for e in events] == list(range(events[0].id, events[0].id + 4))
    assert events[0].prev_mac == ""
    for before, after in itertools.pairwise(events):
        assert after.prev_mac == before.mac
    for event in AuditEvent.objects.order_by("id"):
        assert ring.audit_mac_valid(canonical_bytes(event), event.mac)


def test_an_event_holds_names_of_fields_never_their_values(db: None) -> None:
    with transaction.atomic():
        event = audit_record(actor=None, action="students.student.viewed", object_type="students.student",
                             object_id="x", fields=["health_note", "family_name", "health_note"])
    assert event.fields == ["family_name", "health_note"]
    assert event.actor_username == "system"


# --- verification ---------------------------------------------------------------------------------


def test_verify_passes_on_an_intact_chain(db: None) -> None:
    record_events(5)
    out = StringIO()
    call_command("audit", "verify", stdout=out)
    assert "監査ログは正常です（5 件を検証）" in out.getvalue()


def test_verify_passes_on_an_empty_log(db: None) -> None:
    out = StringIO()
    call_command("audit", "verify", stdout=out)
    assert "0 件を検証" in out.getvalue()


def test_verify_passes_with_addresses_the_database_rewrites(db: None) -> None:
    # PostgreSQL's inet and Django's address field both canonicalise IPv6: the seal must cover what is stored.
    for address in ["2001:DB8:0:0:0:0:0:1", "2001:0db8::0001", "::ffff:192.0.2.1", "192.0.2.1", "::1"]:
        token = context.begin(context.RequestContext(request_id=f"req-{address}"[:64], client_ip=address))
        try:
            with transaction.atomic():
                audit_record(actor=None, action="tests.address")
        finally:
            context.end(token)
    assert audit_verify() == (5, None)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("action", "students.student.created"),
        ("actor_username", "someone_else"),
        ("object_id", "obj-999"),
        ("school_id", 12345),
        ("request_id", "forged-request-id"),
        ("client_ip", "198.51.100.1"),
        ("detail", '{"count": 999, "memo": "閲覧・変更"}'),
        ("fields", "[]"),
    ],
)
def test_verify_names_an_edited_event(db: None, column: str, value: object) -> None:
    events = record_events(5)
    target = events[2]
    with triggers_disabled():
        assert execute(f"UPDATE audit_auditevent SET {column} = %s WHERE id = %s", [value, target.id]) == 1
    message = _verify_fails_at(target.id)
    assert "改ざん" in message
    assert "それまでの 2 件は正常" in message


def test_verify_names_an_event_whose_time_was_moved(db: None) -> None:
    events = record_events(3)
    moved = AuditEvent.objects.get(pk=events[1].id).occurred_at.replace(year=2020)
    with triggers_disabled():
        AuditEvent.objects.filter(pk=events[1].id).update(occurred_at=moved)
    _verify_fails_at(events[1].id)


def test_verify_names_an_event_re_sealed_without_the_key(db: None) -> None:
    """Editing the content and recomputing a MAC with a key of one's own does not help: the key is not in the
    database."""
    events = record_events(3)
    with triggers_disabled():
        execute("UPDATE audit_auditevent SET action = %s, mac = %s WHERE id = %s",
                ["tests.forged", "00" * 32, events[1].id])
    _verify_fails_at(events[1].id)


def test_verify_names_a_deleted_event(db: None) -> None:
    events = record_events(5)
    with purge_window():
        assert execute("DELETE FROM audit_auditevent WHERE id = %s", [events[2].id]) == 1
    message = _verify_fails_at(events[2].id)
    assert "欠落" in message


def test_verify_names_the_first_event_when_it_was_deleted(db: None) -> None:
    events = record_events(3)
    with triggers_disabled():
        execute("DELETE FROM audit_auditevent WHERE id = %s", [events[0].id])
    _verify_fails_at(events[0].id)


def test_verify_names_the_first_of_two_swapped_events(db: None) -> None:
    events = record_events(5)
    a, b = events[1].id, events[2].id
    with triggers_disabled():
        execute("UPDATE audit_auditevent SET id = %s WHERE id = %s", [-1, a])
        execute("UPDATE audit_auditevent SET id = %s WHERE id = %s", [a, b])
        execute("UPDATE audit_auditevent SET id = %s WHERE id = %s", [b, -1])
    assert AuditEvent.objects.get(pk=a).action == events[2].action
    message = _verify_fails_at(a)
    assert "連鎖が切れています" in message


def test_verify_names_a_deleted_event_even_when_the_rest_were_renumbered(db: None) -> None:
    events = record_events(4)
    with triggers_disabled():
        execute("DELETE FROM audit_auditevent WHERE id = %s", [events[1].id])
        for event in events[2:]:
            execute("UPDATE audit_auditevent SET id = %s WHERE id = %s", [event.id - 1, event.id])
    _verify_fails_at(events[1].id)


def test_recording_goes_on_after_a_break_and_verify_still_reports_the_first(db: None) -> None:
    events = record_events(3)
    with triggers_disabled():
        execute("UPDATE audit_auditevent SET action = %s WHERE id = %s", ["tests.edited", events[0].id])
    record_events(2)
    _verify_fails_at(events[0].id)


def test_tampering_helpers_leave_the_triggers_in_place(db: None) -> None:
    """The tamper tests switch the triggers off; this checks they are back on afterwards."""
    events = record_events(1)
    with triggers_disabled():
        pass
    guard.set_purge_allowed(False)
    try:
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            execute("UPDATE audit_auditevent SET action = %s WHERE id = %s", ["tests.x", events[0].id])
    finally:
        guard.set_purge_allowed(True)
