"""Writing audit events. Every service that touches personal data calls `audit_record` inside its transaction."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone

from komu.audit import context
from komu.audit.models import AuditEvent
from komu.security.keys import get_keyring

# PostgreSQL: one advisory lock serialises chain appends (SQLite's BEGIN IMMEDIATE already does).
_CHAIN_LOCK_KEY = 0x4B4F4D55  # "KOMU"


class AuditOutsideTransaction(RuntimeError):
    pass


def canonical_bytes(event: AuditEvent) -> bytes:
    """The exact bytes the MAC covers. Changing this is a format change: old chains would no longer verify."""
    payload = [
        event.id,
        event.occurred_at.isoformat(timespec="microseconds"),
        event.actor_id,
        event.actor_username,
        event.actor_role,
        event.actor_org,
        event.action,
        event.object_type,
        event.object_id,
        list(event.fields),
        event.detail,
        event.school_id,
        event.board_id,
        event.request_id,
        event.client_ip,
        event.channel,
        event.prev_mac,
    ]
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _clean_ip(value: str | None) -> str | None:
    """The client address exactly as the database will give it back, or None when it is not an address.

    The MAC covers the stored row, and the address field rewrites IPv6 on save (2001:DB8:0::1 → 2001:db8::1):
    sealing the raw text would make a true record look tampered. A malformed address (a misconfigured proxy
    header) must not fail the write it accompanies, so it is left out.
    """
    if not value:
        return None
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        return None
    prepared: str = AuditEvent._meta.get_field("client_ip").get_prep_value(value)
    return prepared


def _chain_head() -> tuple[int, str] | None:
    """The id and MAC of the newest event. On PostgreSQL the audit log is partitioned by month (migration 0003):
    planning "newest by id" over every month costs tens of milliseconds once there are years of partitions, so
    it goes through a PL/pgSQL function whose plan each database session caches."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT id, mac FROM komu_audit_chain_head()")
            row = cursor.fetchone()
        return (int(row[0]), str(row[1])) if row else None
    return AuditEvent.objects.order_by("-id").values_list("id", "mac").first()


@dataclass(frozen=True)
class Scope:
    school_id: int | None = None
    board_id: int | None = None


def audit_record(
    *,
    actor: Any,
    action: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str = "",
    fields: Iterable[str] = (),
    detail: Mapping[str, Any] | None = None,
    scope: Scope | None = None,
) -> AuditEvent:
    """Append one event to the chain. Must run inside the caller's transaction: the event and the change commit
    together or not at all."""
    if not connection.in_atomic_block:
        raise AuditOutsideTransaction(f"監査イベント {action} はトランザクションの中で記録してください。")
    ctx = context.current()
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
    last = _chain_head()
    next_id, prev_mac = (last[0] + 1, last[1]) if last else (1, "")
    is_user = actor is not None and getattr(actor, "is_authenticated", False)
    event = AuditEvent(
        id=next_id,
        occurred_at=timezone.now(),
        actor_id=str(actor.pk) if is_user else "",
        actor_username=actor.get_username() if is_user else "system",
        actor_role=ctx.role,
        actor_org=ctx.org,
        action=action,
        object_type=object_type,
        object_id=object_id,
        fields=sorted(set(fields)),
        detail=dict(detail or {}),
        school_id=scope.school_id if scope else None,
        board_id=scope.board_id if scope else None,
        request_id=ctx.request_id,
        client_ip=_clean_ip(ctx.client_ip),
        channel=ctx.channel,
        prev_mac=prev_mac,
    )
    event.mac = get_keyring().audit_mac(canonical_bytes(event))
    event.save(force_insert=True)
    return event


# Retention (komu.privacy.retention) removes the oldest events as one prefix and records, in a chained event of
# its own, the id and MAC of the last event removed.
PURGE_ACTION = "audit.retention.purged"


def _purge_anchor() -> tuple[int, str]:
    """Where verification starts: event 1 with no predecessor, or — when a retention purge removed the oldest
    events — the first kept event, whose predecessor's MAC the purge recorded. The purge event is itself in the
    chain after it, so the walk verifies its MAC: forging an anchor needs the MAC key, and removing more than
    the purge did leaves a start no purge event names."""
    first = AuditEvent.objects.order_by("id").values_list("id", flat=True).first()
    if first is None or first == 1:
        return 1, ""
    for detail in AuditEvent.objects.filter(action=PURGE_ACTION, id__gt=first).values_list("detail", flat=True):
        if isinstance(detail, dict) and detail.get("purged_through") == first - 1 and detail.get("anchor_mac"):
            return first, str(detail["anchor_mac"])
    return 1, ""


@dataclass(frozen=True)
class ChainBreak:
    event_id: int
    reason: str


def audit_verify(*, batch_size: int = 5000) -> tuple[int, ChainBreak | None]:
    """Walk the chain in order; return how many events verified and the first break, if any."""
    keyring = get_keyring()
    expected_prev = ""
    expected_id = 1
    checked = 0
    with transaction.atomic():
        expected_id, expected_prev = _purge_anchor()
        for event in AuditEvent.objects.order_by("id").iterator(chunk_size=batch_size):
            if event.id != expected_id:
                return checked, ChainBreak(
                    expected_id, f"イベント #{expected_id}〜#{event.id - 1} が欠落しています（削除または並べ替え）。"
                )
            if event.prev_mac != expected_prev:
                return checked, ChainBreak(event.id, "直前のイベントとの連鎖が切れています（削除または並べ替え）。")
            if not keyring.audit_mac_valid(canonical_bytes(event), event.mac):
                return checked, ChainBreak(event.id, "内容が記録時から変更されています（改ざん）。")
            expected_prev = event.mac
            expected_id = event.id + 1
            checked += 1
    return checked, None
