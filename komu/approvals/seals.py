"""電子印: what an approval signs, how a seal is checked, and the text of its 印影.

A seal is an Ed25519 signature (Tink, key `seal_signing` in the key file, outside the database) over a canonical
JSON payload: the request, its revision, the document type and subject, the content hash the approver saw, the
step, the approver's identity and role, on whose behalf (代決), and the time. Anyone holding the public keyset
(`komu keys public`) can check a seal outside Komu: verify the signature over `canonical_bytes(payload)`.

Pure functions over model instances: no queries here (callers fetch; services and selectors decide).
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from komu.directory.models import Role
from komu.security.keys import get_keyring

if TYPE_CHECKING:
    from komu.approvals.models import ApprovalAction, ApprovalRequest

SEAL_FORMAT = "komu-seal/1"


def canonical_bytes(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes a seal signs. Changing this is a format change: stored seals would stop verifying."""
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _person(user: Any) -> dict[str, str]:
    return {"id": str(user.pk), "username": user.get_username(), "display_name": user.display_name or ""}


def payload_for(
    *, request: ApprovalRequest, step: int, approver: Any, role: str, on_behalf_of: Any | None,
    at: datetime.datetime,
) -> dict[str, Any]:
    return {
        "format": SEAL_FORMAT,
        "request": request.pk,
        "revision": request.revision,
        "document_type": request.document_type,
        "subject": request.object_id,
        "content_hash": request.content_hash,
        "step": step,
        "approver": {**_person(approver), "role": role},
        "on_behalf_of": _person(on_behalf_of) if on_behalf_of is not None else None,
        "at": at.astimezone(datetime.UTC).isoformat(timespec="microseconds"),
    }


def sign(payload: Mapping[str, Any]) -> str:
    return get_keyring().seal_sign(canonical_bytes(payload))


def signature_valid(payload: Mapping[str, Any], signature: str) -> bool:
    return get_keyring().seal_valid(canonical_bytes(payload), signature)


@dataclass(frozen=True)
class SealCheck:
    """The verdict on one seal, for the screen (有効/無効 with the reason) and the command."""

    action_id: int
    request_id: int
    revision: int
    step: int
    role: str
    approver: str
    on_behalf_of: str
    at: datetime.datetime
    valid: bool
    reason: str

    @property
    def role_label(self) -> str:
        return str(dict(Role.choices).get(self.role, self.role))


def _mismatch(action: ApprovalAction, request: ApprovalRequest) -> str:
    """The first field where the signed payload and the stored records disagree, or "" when none does."""
    payload = action.seal_payload or {}
    approver = payload.get("approver") or {}
    behalf = payload.get("on_behalf_of") or {}
    expected = {
        "request": (payload.get("request"), request.pk),
        "revision": (payload.get("revision"), request.revision),
        "document_type": (payload.get("document_type"), request.document_type),
        "subject": (payload.get("subject"), request.object_id),
        "content_hash": (payload.get("content_hash"), request.content_hash),
        "step": (payload.get("step"), action.step),
        "approver": (approver.get("id"), str(action.actor_id) if action.actor_id else None),
        "role": (approver.get("role"), action.actor_role),
        "on_behalf_of": (behalf.get("id"), str(action.on_behalf_of_id) if action.on_behalf_of_id else None),
        "action content_hash": (payload.get("content_hash"), action.content_hash),
    }
    for name, (signed, stored) in expected.items():
        if signed != stored:
            return name
    return ""


def check(
    action: ApprovalAction, request: ApprovalRequest, *, content_hash: str | None, is_current: bool,
) -> SealCheck:
    """Check one seal: the signature over its payload, the payload against the records, and the content the
    approver sealed against `content_hash` — the subject's live content for the current request, or the stored
    snapshot of an earlier revision (None when the subject or snapshot is gone)."""
    payload = action.seal_payload or {}
    approver = payload.get("approver") or {}
    behalf = payload.get("on_behalf_of") or {}
    signed_at = _parse_time(payload.get("at")) or action.at

    def verdict(valid: bool, reason: str) -> SealCheck:
        return SealCheck(
            action_id=action.pk, request_id=request.pk, revision=request.revision, step=action.step,
            role=str(approver.get("role") or action.actor_role), approver=str(approver.get("display_name") or
                                                                              approver.get("username") or ""),
            on_behalf_of=str(behalf.get("display_name") or behalf.get("username") or ""),
            at=signed_at, valid=valid, reason=reason,
        )

    if not action.signature or not payload:
        return verdict(False, "電子署名がありません。")
    if payload.get("format") != SEAL_FORMAT or not signature_valid(payload, action.signature):
        return verdict(False, "電子署名が一致しません。署名の対象か署名そのものが書き換えられています。")
    field_name = _mismatch(action, request)
    if field_name:
        return verdict(False, f"署名の対象と決裁の記録が一致しません（{field_name}）。記録が書き換えられています。")
    sealed = str(payload["content_hash"])
    if content_hash is None:
        what = "文書" if is_current else "申請時の内容の記録"
        return verdict(False, f"署名は正しいものの、照合する{what}が見つかりません。")
    if content_hash != sealed:
        if is_current:
            return verdict(False, (
                f"承認後に内容が変更されています（現在の内容 {content_hash[:12]}… ≠ 承認時 {sealed[:12]}…）。"
                "訂正の手続きを経ずに記録が変えられた可能性があります。"
            ))
        return verdict(False, f"第{request.revision}版の申請時の内容の記録が書き換えられています。")
    if is_current:
        return verdict(True, "署名は正しく、現在の内容と一致しています。")
    return verdict(True, f"署名は正しく、第{request.revision}版の申請時の内容と一致しています（その後の訂正で置き換えられた版です）。")


def _parse_time(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if timezone.is_aware(parsed) else None


# --- 印影 ------------------------------------------------------------------------------------------------------

# A variation selector belongs to the character before it (葛 + U+E0100 is one glyph on a seal).
_CLUSTER = re.compile(r".[\ufe00-\ufe0f\U000e0100-\U000e01ef]?", re.DOTALL)
_SPACES = re.compile(r"[\s\u3000]+")


def seal_name(display_name: str, username: str = "") -> str:
    """The name a 認印 shows: the family name, i.e. the part of the display name before the first space
    (Japanese staff names are entered 「山田 花子」). Without a space the whole name is used."""
    name = _SPACES.split(display_name.strip(), maxsplit=1)[0] if display_name.strip() else username
    return name


def seal_columns(name: str) -> list[list[str]]:
    """The name's characters in vertical columns, first column rightmost as Japanese is set: one column up to
    three characters, two columns for four to six, three beyond (an unusually long name stays legible)."""
    cells = _CLUSTER.findall(name)[:9]
    if not cells:
        return []
    per_column = 3 if len(cells) <= 3 else (len(cells) + 1) // 2 if len(cells) <= 6 else 3
    return [cells[i:i + per_column] for i in range(0, len(cells), per_column)]
