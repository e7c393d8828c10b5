from __future__ import annotations

import functools
import time
from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

from komu.accounts import mfa

# Paths anyone may reach before the second factor: static files, language switch, health check, and the
# passkey ceremonies (komu.accounts.webauthn applies its own rules to those).
_OPEN_PREFIXES = ("/webauthn/", "/static/", "/i18n/", "/healthz")


@functools.cache
def _open_account_paths() -> tuple[frozenset[str], str]:
    """The sign-in steps themselves. Only these account pages: the rest of /accounts/ (security settings,
    password change, API tokens) would let a password-only session change the account."""
    exact = frozenset(reverse(f"accounts:{name}") for name in ("login", "logout", "mfa_verify", "mfa_enrol"))
    return exact, reverse("accounts:password_reset")


def _is_open(path: str) -> bool:
    if path.startswith(_OPEN_PREFIXES):
        return True
    exact, reset_prefix = _open_account_paths()
    return path in exact or path.startswith(reset_prefix)


class MfaRequiredMiddleware:
    """Staff must pass a second factor before any page: enrol on first sign-in, verify on every later one.
    A guardian who turned MFA on owes it too (the sign-in view marks the session).

    API requests with a bearer token are authenticated by the API layer and never reach a session here.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if mfa.second_factor_owed(request) and not _is_open(request.path):
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": "二要素認証が必要です。"}, status=401)
            user = request.user
            target = "accounts:mfa_verify" if mfa.has_confirmed_device(user) else "accounts:mfa_enrol"
            return redirect(f"{reverse(target)}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)


# The session key holding when the idle deadline was last pushed back (seconds since the epoch).
SEEN_KEY = "_komu_seen"


class IdleSessionMiddleware:
    """The 30-minute idle limit without a session write on every request.

    Django renews a session's expiry only when it saves the session. Saving on every request (the setting
    SESSION_SAVE_EVERY_REQUEST) costs a database write and a transaction per page and per attendance tap; here a
    request renews the deadline only when the last renewal is at least KOMU_SESSION_REFRESH_SECONDS (60) old, so
    an idle session ends between 29 and 30 minutes after the last request.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.interval = settings.KOMU_SESSION_REFRESH_SECONDS

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        session = getattr(request, "session", None)
        # Only sessions that exist and still exist after the view (sign-out flushes them).
        if session is not None and session.session_key and not session.is_empty():
            now = int(time.time())
            seen = session.get(SEEN_KEY)
            if not isinstance(seen, int) or now - seen >= self.interval:
                session[SEEN_KEY] = now
        return response
