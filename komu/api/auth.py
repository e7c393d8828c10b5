"""Who is calling the API: a bearer token (scripts) or the browser session (Komu's own pages).

Both end in the same access layer as the HTML views (komu.access.scope.get_actor), so a token sees exactly
what its owner sees on screen. A session counts only once the second factor was passed (staff: MFA is
mandatory for 校務 information); with a session, unsafe methods need the CSRF token like any form post. The
audit context is told that the request came through the API, and in which role, so the trail shows it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext_lazy
from ninja.errors import HttpError
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from komu.access.scope import get_actor
from komu.accounts import mfa
from komu.accounts.services import api_token_authenticate
from komu.audit import context

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
CSRF_FAILED = gettext_lazy("CSRF トークンが正しくありません。画面を再読み込みしてから、もう一度お試しください。")


def _mark_api_request(request: HttpRequest, user: Any) -> None:
    """Record channel "api" and the caller's acting role for every audit event of this request.

    RequestContextMiddleware resets the context when the request ends, so it cannot leak into another."""
    request.user = user
    primary = get_actor(user).primary
    current = context.current()
    context.begin(dataclasses.replace(
        current,
        channel="api",
        role=primary.role if primary else current.role,
        org=primary.org_code if primary else current.org,
    ))


class BearerTokenAuth(HttpBearer):
    """Authorization: Bearer <token>; the token is checked by komu.accounts.services.api_token_authenticate
    (SHA-256 lookup; revoked, expired and inactive owners refused)."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = api_token_authenticate(token)
        if user is None:
            return None
        _mark_api_request(request, user)
        return user


class VerifiedSessionAuth(APIKeyCookie):
    """The Django session of a signed-in browser. Staff must have passed MFA in this session."""

    param_name: str = settings.SESSION_COOKIE_NAME

    def __init__(self) -> None:
        # csrf=True also tells the interactive docs to send the CSRF token with their requests.
        super().__init__(csrf=True)

    def _get_key(self, request: HttpRequest) -> str | None:
        # CSRF is checked in authenticate(), once we know the session is what authenticates this request: a
        # script sending a bearer token has no session and no CSRF token to send.
        return request.COOKIES.get(self.param_name)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not user.is_active:
            return None
        # The same rule as MfaRequiredMiddleware (staff always; a guardian who turned MFA on), checked here too
        # so the API never depends on middleware order for it.
        if mfa.second_factor_owed(request):
            return None
        if request.method not in _SAFE_METHODS and check_csrf(request) is not None:
            raise HttpError(403, str(CSRF_FAILED))
        _mark_api_request(request, user)
        return user


api_auth = [BearerTokenAuth(), VerifiedSessionAuth()]
