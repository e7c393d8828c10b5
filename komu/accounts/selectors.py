"""Reads for the account pages: a person's own second factors and API tokens. Always the actor's own rows."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db.models import Count, F, QuerySet
from django.utils.translation import gettext as _
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from komu.accounts.models import ApiToken, User
from komu.core.errors import NotFoundOrNoAccess


@dataclass(frozen=True)
class DeviceRow:
    kind: str  # "totp" or "passkey": the value in device URLs
    pk: int
    name: str
    kind_label: str
    created_at: datetime.datetime | None
    last_used_at: datetime.datetime | None


@dataclass(frozen=True)
class SecurityOverview:
    devices: list[DeviceRow]
    recovery_codes_left: int
    has_recovery_device: bool

    @property
    def has_primary(self) -> bool:
        return bool(self.devices)


def devices_for(*, actor: User) -> list[DeviceRow]:
    rows = [
        DeviceRow("totp", d.pk, d.name, _("認証アプリ"), d.created_at, d.last_used_at)
        for d in TOTPDevice.objects.filter(user=actor, confirmed=True).order_by("pk")
    ]
    rows += [
        DeviceRow("passkey", d.pk, d.name, _("パスキー"), d.created_at, d.last_used_at)
        for d in WebAuthnCredential.objects.filter(user=actor, confirmed=True).order_by("pk")
    ]
    return rows


def recovery_codes_left(*, actor: User) -> int:
    row = StaticDevice.objects.filter(user=actor, confirmed=True).aggregate(n=Count("token_set"))
    return int(row["n"] or 0)


def security_overview(*, actor: User) -> SecurityOverview:
    return SecurityOverview(
        devices=devices_for(actor=actor),
        recovery_codes_left=recovery_codes_left(actor=actor),
        has_recovery_device=StaticDevice.objects.filter(user=actor, confirmed=True).exists(),
    )


def device_get_for(*, actor: User, kind: str, device_id: int) -> DeviceRow:
    for row in devices_for(actor=actor):
        if row.kind == kind and row.pk == device_id:
            return row
    raise NotFoundOrNoAccess(_("見つかりません。"))


def pending_totp_device(*, actor: User, device_id: int) -> TOTPDevice:
    device = TOTPDevice.objects.filter(user=actor, pk=device_id, confirmed=False).first()
    if device is None:
        raise NotFoundOrNoAccess(_("見つかりません。"))
    return device


def api_tokens_for(*, actor: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=actor).order_by(F("revoked_at").asc(nulls_first=True), "-created_at")
