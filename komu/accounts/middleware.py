from __future__ import annotations

import functools
from collections.abc import Callable
from urllib.parse import urlencode

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
