"""Second factors: TOTP, passkeys (WebAuthn) and single-use recovery codes, and the session state around them.

The session remembers three things between requests:
- that a guardian who turned MFA on still owes a second factor after the password (staff always owe one);
- when the person last re-authenticated (password + second factor): adding or removing a factor, issuing
recovery codes or an API token needs that within `KOMU_REAUTH_SECONDS`;
- when the password step of a re-authentication passed, so the second step (a code or a passkey) can finish
it.
"""

from __future__ import annotations

import re
import time
import unicodedata
from base64 import b32encode
from dataclasses import dataclass
from typing import Any

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.http import HttpRequest
from django_otp import devices_for_user

from komu.security.keys import get_keyring

SESSION_MFA_PENDING = "komu_mfa_pending"
SESSION_REAUTH_AT = "komu_reauth_at"
SESSION_REAUTH_PASSWORD_AT = "komu_reauth_password_at"

PRIMARY_DEVICE_CLASSES = frozenset({"TOTPDevice", "WebAuthnCredential"})

TOTP_CODE = re.compile(r"^[0-9]{6}$")
# django-otp's StaticToken.random_token(): 5 random bytes in lower-case base32, 8 characters.
RECOVERY_CODE = re.compile(r"^[a-z2-7]{8}$")
RECOVERY_CODE_COUNT = 10
RECOVERY_CODE_PURPOSE = "accounts.recovery_code"

# Separators people type or paste into codes: spaces (incl. the full-width one, folded by NFKC) and every dash
# look-alike a Japanese IME produces (domain.md §7.10).
_CODE_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212\u30fc\uff70]")


def has_confirmed_device(user: Any) -> bool:
    """True when the user has a TOTP device or a passkey (recovery codes alone do not count as enrolment)."""
    for device in devices_for_user(user, confirmed=True):
        if device.__class__.__name__ in PRIMARY_DEVICE_CLASSES:
            return True
    return False


def has_recovery_codes(user: Any) -> bool:
    from django_otp.plugins.otp_static.models import StaticDevice

    return bool(StaticDevice.objects.filter(user=user, confirmed=True, token_set__isnull=False).exists())


def second_factor_owed(request: HttpRequest) -> bool:
    """Whether this signed-in session must still pass a second factor before reaching any page."""
    user: Any = request.user  # OTPMiddleware adds is_verified()
    if not user.is_authenticated or user.is_verified():
        return False
    return bool(user.mfa_required or request.session.get(SESSION_MFA_PENDING))


# --- Codes --------------------------------------------------------------------------------------------------


def normalize_code(raw: str) -> str:
    """Fold what people type into the canonical code: full-width digits and letters from an IME become ASCII,
    separators go, letters are lower-cased (recovery codes are shown in lower case)."""
    return _CODE_SEPARATORS.sub("", unicodedata.normalize("NFKC", raw or "")).lower()


def recovery_code_digest(code: str) -> str:
    """What is stored for a recovery code: a keyed PRF of it (key outside the database), never the code
    itself.

    django-otp stores static tokens as given; storing the digest instead means a database dump yields no
    usable code. 16 hex characters fit StaticToken.token (max 16) and keep 64 bits, far more than the code's
    own 40.
    """
    return get_keyring().blind_index(RECOVERY_CODE_PURPOSE, normalize_code(code))[:16]


def format_recovery_code(code: str) -> str:
    """Shown as two groups of four ("abcd-efgh"): easier to copy by hand; the separator is ignored on
    entry."""
    return f"{code[:4]}-{code[4:]}"


def totp_secret_text(device: Any) -> str:
    """The base32 secret for typing into an authenticator app by hand, in groups of four."""
    secret = b32encode(device.bin_key).decode("ascii").rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


@dataclass(frozen=True)
class QrSvg:
    """An otpauth:// QR code as the pieces of an inline SVG; the template draws it, so no markup is marked
    safe."""

    size: str
    path: str


def qr_svg(text: str) -> QrSvg:
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, border=4)
    assert image.path is not None
    return QrSvg(size=str(image.units(image.pixel_size, text=False)), path=image.path.get("d", ""))


# --- Session state ------------------------------------------------------------------------------------------


def reauth_window_seconds() -> int:
    return int(getattr(settings, "KOMU_REAUTH_SECONDS", 300))


def _is_fresh(request: HttpRequest, key: str) -> bool:
    stamp = request.session.get(key)
    if not isinstance(stamp, int | float):
        return False
    age = time.time() - stamp
    return 0 <= age <= reauth_window_seconds()


def reauth_mark(request: HttpRequest) -> None:
    request.session[SESSION_REAUTH_AT] = time.time()
    request.session.pop(SESSION_REAUTH_PASSWORD_AT, None)


def reauth_is_fresh(request: HttpRequest) -> bool:
    return _is_fresh(request, SESSION_REAUTH_AT)


def reauth_seconds_left(request: HttpRequest) -> int:
    if not reauth_is_fresh(request):
        return 0
    return max(0, int(reauth_window_seconds() - (time.time() - request.session[SESSION_REAUTH_AT])))


def reauth_password_mark(request: HttpRequest) -> None:
    request.session[SESSION_REAUTH_PASSWORD_AT] = time.time()


def reauth_password_is_fresh(request: HttpRequest) -> bool:
    return _is_fresh(request, SESSION_REAUTH_PASSWORD_AT)


def signin_completed(request: HttpRequest) -> None:
    """Every factor the person has was just given: the session is fully signed in, and that counts as a fresh
    re-authentication (so enrolling and then saving recovery codes does not ask for the password again)."""
    request.session.pop(SESSION_MFA_PENDING, None)
    reauth_mark(request)
