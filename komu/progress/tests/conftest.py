from __future__ import annotations

import base64
import datetime
import json
import uuid
from typing import Any

import pytest
import tink
from django.utils import timezone
from tink import json_proto_keyset_format, signature

from komu.access.scope import Actor, forget_actor, get_actor
from komu.progress import services
from komu.progress.models import IndicatorValue
from komu.testing.world import World

signature.register()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _own_cache(settings: Any) -> None:
    # Open-data files are cached under the rollups' ids; a rolled-back test reuses ids, so each test gets an
    # empty cache of its own.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": f"progress-{uuid.uuid4().hex}"}}


def act(world: World, name: str) -> Actor:
    user = world.user(name)
    forget_actor(user)
    return get_actor(user)


class MemberKey:
    """A second deployment's Ed25519 key, made here so a test can sign as that deployment."""

    def __init__(self) -> None:
        self.handle = tink.new_keyset_handle(signature.signature_key_templates.ED25519)
        self.public = json_proto_keyset_format.serialize_without_secret(self.handle.public_keyset_handle())
        self.signer = self.handle.primitive(signature.PublicKeySign)

    def envelope(self, payload: dict[str, Any], *, tamper: bool = False) -> bytes:
        raw = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
        sig = base64.b64encode(self.signer.sign(services.SIGNING_CONTEXT + raw)).decode()
        if tamper:
            raw = raw.replace(b'"numerator_marker"', b'"x"').replace(b"[9,", b"[99,")
        return json.dumps({"key_id": services.key_fingerprint(self.public),
                           "payload": base64.b64encode(raw).decode(), "signature": sig}).encode()


def member_payload(*, sequence: int = 1, month: str = "2026-10", nonce: str = "", schools: int = 12,
                   created: datetime.datetime | None = None) -> dict[str, Any]:
    return {
        "version": 1, "month": month, "sequence": sequence,
        "created_at": (created or timezone.now()).isoformat(), "nonce": nonce or f"nonce-{sequence:08d}",
        "schools": [
            {"code": f"B127{i:09d}", "name": f"連携市立第{i}小学校", "board_code": "279001",
             "board_name": "連携市教育委員会", "prefecture": "27",
             "values": {"comm_digital": [9, 12, None], "absence_digital": [30, 40, None]}}
            for i in range(schools)
        ],
    }


def put_value(school: Any, month: datetime.date, indicator: str, num: int, den: int,
              value: float | None = None) -> None:
    IndicatorValue.objects.update_or_create(
        school_code=school.code, month=month, indicator=indicator,
        defaults={"school_name": school.name, "board_code": school.board.code, "board_name": school.board.name,
                  "prefecture_code": school.prefecture_id, "numerator": num, "denominator": den, "value": value,
                  "measured_at": timezone.now()})
