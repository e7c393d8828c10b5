"""Who, in which role, from where, in which request: what every audit event carries."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.db import transaction

from komu.access.scope import forget_actor, get_actor
from komu.audit import context
from komu.audit.models import AuditEvent
from komu.audit.services import audit_record, audit_verify
from komu.testing.world import World

pytestmark = pytest.mark.urls("komu.audit.tests.urls")


def _probe(client: Any, **extra: Any) -> tuple[Any, AuditEvent]:
    response = client.get("/probe/", **extra)
    assert response.status_code == 200, response.content[:300]
    return response, AuditEvent.objects.get(pk=response.json()["event_id"])


# --- through a request ----------------------------------------------------------------------------


def test_an_event_records_the_person_their_role_and_organisation(signed_in: Callable[[str], Any],
                                                                 world: World) -> None:
    _response, event = _probe(signed_in("principal_a"))
    principal = world.user("principal_a")
    assert event.actor_id == str(principal.pk)
    assert event.actor_username == "principal_a"
    assert event.actor_role == "principal"
    assert event.actor_org == world.school_a.code
    assert event.channel == "web"
    assert event.school_id == world.school_a.pk


@pytest.mark.parametrize(
    ("persona", "role", "org"),
    [
        ("board_officer_b", "board_officer", "139002"),
        ("homeroom_a1", "homeroom_teacher", "school_a"),
        ("pref_analyst", "prefectural_analyst", "13"),
        ("operator", "operator", ""),
        ("guardian_a", "guardian", ""),
    ],
)
def test_each_role_is_recorded_with_its_organisation(signed_in: Callable[[str], Any], world: World,
                                                     persona: str, role: str, org: str) -> None:
    _, event = _probe(signed_in(persona))
    assert event.actor_role == role
    assert event.actor_org == (world.school_a.code if org == "school_a" else org)


def test_the_request_id_in_the_response_header_is_the_one_recorded(signed_in: Callable[[str], Any]) -> None:
    response, event = _probe(signed_in("teacher_a"))
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])
    assert event.request_id == response["X-Request-ID"]
    assert event.client_ip == "127.0.0.1"


def test_each_request_gets_its_own_id(signed_in: Callable[[str], Any]) -> None:
    client = signed_in("teacher_a")
    first, _ = _probe(client)
    second, _ = _probe(client)
    assert first["X-Request-ID"] != second["X-Request-ID"]


def test_a_well_formed_incoming_request_id_is_kept(signed_in: Callable[[str], Any]) -> None:
    response, event = _probe(signed_in("teacher_a"), headers={"X-Request-ID": "lb-2026.04.01_abc-123"})
    assert response["X-Request-ID"] == "lb-2026.04.01_abc-123"
    assert event.request_id == "lb-2026.04.01_abc-123"


@pytest.mark.parametrize(
    "incoming",
    ["short", "has space in it", "x" * 65, "semi;colon-123", "改行\r\nX-Injected: 1",
     "<script>alert(1)</script>"],
    ids=["too-short", "space", "too-long", "semicolon", "header-injection", "markup"],
)
def test_a_malformed_incoming_request_id_is_replaced(signed_in: Callable[[str], Any], incoming: str) -> None:
    response, event = _probe(signed_in("teacher_a"), headers={"X-Request-ID": incoming})
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])
    assert event.request_id == response["X-Request-ID"]


@pytest.mark.parametrize(
    ("remote_addr", "recorded"),
    [
        ("192.0.2.44", "192.0.2.44"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("::ffff:192.0.2.1", "::ffff:192.0.2.1"),
        ("not-an-address", None),
        ("", None),
    ],
)
def test_the_client_address_is_recorded_as_stored_and_the_chain_verifies(
    signed_in: Callable[[str], Any], remote_addr: str, recorded: str | None
) -> None:
    _, event = _probe(signed_in("teacher_a"), REMOTE_ADDR=remote_addr)
    assert event.client_ip == recorded
    assert audit_verify() == (1, None)


def test_the_request_context_ends_with_the_request(signed_in: Callable[[str], Any]) -> None:
    _probe(signed_in("principal_a"))
    after = context.current()
    assert after.channel == "cli"
    assert after.role == ""


# --- outside requests -----------------------------------------------------------------------------


def test_a_command_records_a_cli_context_and_the_system_actor(db: None) -> None:
    with transaction.atomic():
        event = audit_record(actor=None, action="tests.cli")
    assert event.channel == "cli"
    assert event.request_id.startswith("cli-")
    assert event.actor_username == "system"
    assert event.actor_role == ""
    assert event.client_ip is None


def test_a_context_set_directly_is_recorded(world: World) -> None:
    token = context.begin(context.RequestContext(request_id="task-000123", client_ip="192.0.2.9", channel="api"))
    try:
        context.set_acting_role("board_officer", "139001")
        with transaction.atomic():
            event = audit_record(actor=world.user("board_officer_a"), action="tests.api")
    finally:
        context.end(token)
    assert (event.request_id, event.client_ip, event.channel) == ("task-000123", "192.0.2.9", "api")
    assert (event.actor_role, event.actor_org) == ("board_officer", "139001")
    assert event.actor_username == "board_officer_a"


def test_the_role_recorded_is_the_first_person_resolved_in_the_request(world: World) -> None:
    """A service may look up another person's grants while serving a request; the event still names the
    requester's role."""
    principal, other = world.user("principal_a"), world.user("teacher_b")
    forget_actor(principal)
    forget_actor(other)
    token = context.begin(context.RequestContext(request_id="req-first-wins"))
    try:
        get_actor(principal)
        get_actor(other)
        with transaction.atomic():
            event = audit_record(actor=principal, action="tests.first")
    finally:
        context.end(token)
    assert (event.actor_role, event.actor_org) == ("principal", world.school_a.code)
