from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

from komu.accounts import mfa

# Paths a signed-in but not yet MFA-verified staff member may reach: the sign-in steps themselves.
_OPEN_PREFIXES = ("/accounts/", "/webauthn/", "/static/", "/i18n/", "/healthz")


class MfaRequiredMiddleware:
    """Staff must pass a second factor before any page: enrol on first sign-in, verify on every later one.

    API requests with a bearer token are authenticated by the API layer and never reach a session here.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and user.mfa_required
            and not user.is_verified()  # type: ignore[union-attr]
            and not request.path.startswith(_OPEN_PREFIXES)
        ):
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": "二要素認証が必要です。"}, status=401)
            target = "accounts:mfa_verify" if mfa.has_confirmed_device(user) else "accounts:mfa_enrol"
            return redirect(f"{reverse(target)}?next={request.get_full_path()}")
        return self.get_response(request)

