"""Passkeys: django-otp-webauthn's ceremony views, narrowed to Komu's rules.

- A passkey is a second factor after the password, never a way to sign in alone: sign-in keeps going through
  authenticate(), so django-axes lockout and the sign-in audit trail apply to everyone (passwordless login
  refused).
- Registering a passkey is "adding a device": it needs a fresh re-authentication, except for a staff member's
  mandatory first enrolment (no second factor yet, so there is nothing to re-authenticate with).
- Registration and use are audited; a first enrolment or a passkey sign-in completes the sign-in.

These views are mounted at /webauthn/ under the package's namespace and URL names ("otp_webauthn:…"), so the
package's template tags and JavaScript work unchanged (komu/urls.py includes komu.accounts.webauthn_urls).
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext_lazy as _
from django_otp import login as otp_login
from django_otp_webauthn import exceptions
from django_otp_webauthn.models import AbstractWebAuthnCredential
from django_otp_webauthn.utils import rewrite_exceptions
from django_otp_webauthn.views import (
    BeginCredentialAuthenticationView,
    BeginCredentialRegistrationView,
    CompleteCredentialAuthenticationView,
    CompleteCredentialRegistrationView,
)

from komu.accounts import mfa, services

_log = logging.getLogger("django_otp_webauthn")


class ReauthRequired(exceptions.OTPWebAuthnApiError):  # type: ignore[misc]
    status_code = 403
    default_code = "reauth_required"
    default_detail = _(
        "パスキーを追加するには、先に本人確認（パスワードと確認コード）をしてください。"
        "本人確認の有効時間が過ぎた場合は、もう一度行ってください。"
    )


class PasswordStepFirst(exceptions.OTPWebAuthnApiError):  # type: ignore[misc]
    status_code = 403
    default_code = "reauth_password_required"
    default_detail = _("本人確認の画面で、先にパスワードを入力してください。")


class SignInFirst(exceptions.OTPWebAuthnApiError):  # type: ignore[misc]
    status_code = 403
    default_code = "passwordless_login_disabled"
    default_detail = _("先にログインIDとパスワードでログインしてください。")


def registration_allowed(request: HttpRequest) -> bool:
    user: Any = request.user
    if not user.is_authenticated:
        return False
    first_enrolment = user.mfa_required and not mfa.has_confirmed_device(user)
    return first_enrolment or mfa.reauth_is_fresh(request)


class _RegistrationRules:
    request: HttpRequest

    def check_can_register(self) -> None:
        if not registration_allowed(self.request):
            raise ReauthRequired()


class BeginRegistrationView(_RegistrationRules, BeginCredentialRegistrationView):  # type: ignore[misc]
    pass


class CompleteRegistrationView(_RegistrationRules, CompleteCredentialRegistrationView):  # type: ignore[misc]
    def post(self, *args: Any, **kwargs: Any) -> HttpResponse:
        request = self.request
        user = self.get_user()
        # The package's own post(), with the credential saved inside services.passkey_add's transaction. The
        # state is popped (and the session saved) before anything else, so a failed attempt can never be
        # replayed.
        state = self.get_state()
        helper = self.get_helper()
        data = request.data  # type: ignore[attr-defined]  # parsed JSON, set by the package's dispatch()
        first_device = not mfa.has_confirmed_device(user)
        with rewrite_exceptions(logger=_log):
            device = services.passkey_add(
                actor=user,
                register=lambda: helper.register_complete(user=user, state=state, data=data),
            )
        if not user.is_verified():
            otp_login(request, device)
        if first_device:
            # Password at sign-in plus the passkey just created: the first enrolment completes the sign-in.
            mfa.signin_completed(request)
        messages.success(
            request,
            _("パスキーを登録しました。")
            if not first_device
            else _(
                "パスキーを登録しました。最後に、パスキーを使えないときのための復旧コードを発行してください。"
            ),
        )
        return JsonResponse({"id": device.pk})


class _AuthenticationRules:
    request: HttpRequest

    def get_user(self) -> Any:
        user = self.request.user
        return user if user.is_authenticated else None

    def check_can_authenticate(self) -> None:
        user = self.get_user()
        if user is None or not user.is_active:
            raise SignInFirst()


class BeginAuthenticationView(_AuthenticationRules, BeginCredentialAuthenticationView):  # type: ignore[misc]
    pass


class CompleteAuthenticationView(_AuthenticationRules, CompleteCredentialAuthenticationView):  # type: ignore[misc]
    def _purpose(self) -> str:
        return "reauth" if self.request.user.is_verified() else "signin"  # type: ignore[union-attr]

    def complete_auth(self, device: AbstractWebAuthnCredential) -> Any:
        request = self.request
        user = request.user
        purpose = self._purpose()
        if purpose == "reauth" and not mfa.reauth_password_is_fresh(request):
            # A verified session may only use a passkey here as the second step of re-authentication.
            raise PasswordStepFirst()
        services.passkey_verified(actor=user, device=device, purpose=purpose)  # type: ignore[arg-type]
        otp_login(request, device)
        if purpose == "signin":
            mfa.signin_completed(request)
        else:
            mfa.reauth_mark(request)
        return user

    def post(self, *args: Any, **kwargs: Any) -> HttpResponse:
        purpose = self._purpose() if self.request.user.is_authenticated else "signin"
        try:
            return super().post(*args, **kwargs)  # type: ignore[no-any-return]
        except exceptions.OTPWebAuthnApiError as exc:
            if self.request.user.is_authenticated:
                services.passkey_rejected(actor=self.request.user, purpose=purpose, reason=exc.code)
            raise
