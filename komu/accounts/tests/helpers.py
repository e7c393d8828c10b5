"""Helpers for the account tests: sign in through the real pages, read the authenticator app's code."""

from __future__ import annotations

import time
from typing import Any

from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from komu.accounts import mfa
from komu.accounts.models import User
from komu.testing.world import PASSWORD


def sign_in(
    client: Any, username: str, password: str = PASSWORD, ip: str = "192.0.2.10", **extra: Any
) -> Any:
    return client.post(
        reverse("accounts:login"), {"username": username, "password": password, **extra}, REMOTE_ADDR=ip
    )


def code_for(device: TOTPDevice, steps_ahead: int = 0) -> str:
    """The code the person's authenticator app shows now (or `steps_ahead` 30-second steps later: a code
    already used at this step is refused as a replay, so a second check in the same test takes the next step's
    code)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def totp_of(user: User) -> TOTPDevice:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()  # type: ignore[return-value]


def wait_out_throttle(device: Any) -> None:
    """django-otp backs off after a wrong code (1 s, 2 s, 4 s …): move the failure back instead of
    sleeping."""
    type(device).objects.filter(pk=device.pk).update(
        throttling_failure_timestamp=None, throttling_failure_count=0
    )


def fully_signed_in(client: Any, user: User, steps_ahead: int = 0) -> Any:
    """Password and second factor through the real pages."""
    sign_in(client, user.username)
    device = totp_of(user)
    response = client.post(
        reverse("accounts:mfa_verify"), {"method": "totp", "code": code_for(device, steps_ahead)}
    )
    assert response.status_code == 302, response.content.decode()
    return client


def fresh_reauth(client: Any) -> None:
    session = client.session
    session[mfa.SESSION_REAUTH_AT] = time.time()
    session.save()
