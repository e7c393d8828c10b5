"""Second factors: TOTP, passkeys (WebAuthn) and single-use recovery codes."""

from __future__ import annotations

from typing import Any

from django_otp import devices_for_user


def has_confirmed_device(user: Any) -> bool:
    """True when the user has a TOTP device or a passkey (recovery codes alone do not count as enrolment)."""
    for device in devices_for_user(user, confirmed=True):
        if device.__class__.__name__ in {"TOTPDevice", "WebAuthnCredential"}:
            return True
    return False


def has_recovery_codes(user: Any) -> bool:
    from django_otp.plugins.otp_static.models import StaticDevice

    return StaticDevice.objects.filter(user=user, confirmed=True, token_set__isnull=False).exists()
