"""Passkeys through django-otp-webauthn's ceremonies as Komu narrows them, with a software authenticator."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp_webauthn.models import WebAuthnCredential

from komu.accounts import mfa
from komu.accounts.models import User
from komu.accounts.tests.helpers import fully_signed_in, sign_in
from komu.accounts.tests.soft_authenticator import SoftAuthenticator
from komu.audit.models import AuditEvent
from komu.testing.world import PASSWORD

REG_BEGIN = reverse("otp_webauthn:credential-registration-begin")
REG_COMPLETE = reverse("otp_webauthn:credential-registration-complete")
AUTH_BEGIN = reverse("otp_webauthn:credential-authentication-begin")
AUTH_COMPLETE = reverse("otp_webauthn:credential-authentication-complete")


def _json(client: Any, url: str, body: Any = None) -> Any:
    return client.post(url, data=json.dumps(body or {}), content_type="application/json")


def register_passkey(client: Any, authenticator: SoftAuthenticator) -> Any:
    begin = _json(client, REG_BEGIN)
    if begin.status_code != 200:
        return begin
    return _json(client, REG_COMPLETE, authenticator.register(begin.json()))


def use_passkey(client: Any, authenticator: SoftAuthenticator, next_url: str = "/") -> Any:
    begin = _json(client, AUTH_BEGIN)
    if begin.status_code != 200:
        return begin
    return _json(client, f"{AUTH_COMPLETE}?next={next_url}", authenticator.authenticate(begin.json()))


@pytest.fixture
def enrolled_with_passkey(client: Any, new_staff: User) -> SoftAuthenticator:
    """t-suzuki enrolled a passkey on first sign-in, then signed out."""
    authenticator = SoftAuthenticator()
    sign_in(client, "t-suzuki")
    assert register_passkey(client, authenticator).status_code == 200
    client.post(reverse("accounts:logout"))
    return authenticator


def test_a_passkey_never_signs_anyone_in_on_its_own(client: Any, db: None) -> None:
    response = _json(client, AUTH_BEGIN)
    assert response.status_code == 403
    assert response.json()["code"] == "passwordless_login_disabled"
    assert "ログインIDとパスワード" in response.json()["detail"]


def test_first_sign_in_can_enrol_a_passkey_instead_of_an_app(client: Any, new_staff: User) -> None:
    sign_in(client, "t-suzuki")
    page = client.get(reverse("accounts:mfa_enrol")).content.decode()
    assert 'id="passkey-register-button"' in page and 'id="otp_webauthn_config"' in page
    response = register_passkey(client, SoftAuthenticator())
    assert response.status_code == 200, response.content
    device = WebAuthnCredential.objects.get(user=new_staff)
    assert device.confirmed and device.name.startswith("パスキー")
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert client.get("/").status_code == 200
    assert AuditEvent.objects.filter(action="accounts.passkey.added", object_id=str(device.pk)).exists()
    # Recovery codes come next, without asking for the password again.
    codes = client.post(reverse("accounts:recovery_codes"), {"action": "issue", "next": "/"})
    assert codes.status_code == 200 and "印刷・保存してください" in codes.content.decode()


def test_a_passkey_completes_the_sign_in(client: Any, new_staff: User, enrolled_with_passkey: Any) -> None:
    response = sign_in(client, "t-suzuki")
    assert response["Location"].startswith(reverse("accounts:mfa_verify"))
    page = client.get(response["Location"]).content.decode()
    assert 'id="passkey-verification-button"' in page
    assert client.get("/")["Location"].startswith(reverse("accounts:mfa_verify"))

    done = use_passkey(client, enrolled_with_passkey, next_url="/students/")
    assert done.status_code == 200, done.content
    assert done.json()["redirect_url"] == "/students/"
    assert client.get("/").status_code == 200
    event = AuditEvent.objects.filter(action="accounts.mfa.verified").last()
    assert event is not None and event.detail["method"] == "passkey"


def test_another_persons_passkey_is_refused(
    client: Any, new_staff: User, staff: User, enrolled_with_passkey: Any
) -> None:
    sign_in(client, "t-tanaka")
    response = use_passkey(client, enrolled_with_passkey)
    assert response.status_code == 403
    assert client.get("/")["Location"].startswith(reverse("accounts:mfa_verify"))
    assert AuditEvent.objects.filter(action="accounts.mfa.failed", detail__method="passkey").exists()


def test_adding_a_passkey_later_needs_re_authentication(client: Any, staff: User) -> None:
    fully_signed_in(client, staff)
    session = client.session
    session[mfa.SESSION_REAUTH_AT] = time.time() - 301
    session.save()
    refused = _json(client, REG_BEGIN)
    assert refused.status_code == 403 and refused.json()["code"] == "reauth_required"
    page = client.get(reverse("accounts:security")).content.decode()
    assert "本人確認してパスキーを追加" in page and 'id="passkey-register-button"' not in page

    session = client.session
    session[mfa.SESSION_REAUTH_AT] = time.time()
    session.save()
    assert 'id="passkey-register-button"' in client.get(reverse("accounts:security")).content.decode()
    assert register_passkey(client, SoftAuthenticator()).status_code == 200
    assert WebAuthnCredential.objects.filter(user=staff).count() == 1


def test_a_passkey_is_the_second_step_of_re_authentication(
    client: Any, new_staff: User, enrolled_with_passkey: Any
) -> None:
    sign_in(client, "t-suzuki")
    use_passkey(client, enrolled_with_passkey)
    session = client.session
    session.pop(mfa.SESSION_REAUTH_AT)
    session.save()
    # Without the password step first, a passkey does not re-authenticate.
    refused = use_passkey(client, enrolled_with_passkey)
    assert refused.status_code == 403 and refused.json()["code"] == "reauth_password_required"
    assert mfa.SESSION_REAUTH_AT not in client.session

    reauth = reverse("accounts:reauth")
    step_two = client.post(reauth, {"step": "password", "password": PASSWORD, "next": "/accounts/security/"})
    assert 'id="passkey-verification-button"' in client.get(step_two["Location"]).content.decode()
    done = use_passkey(client, enrolled_with_passkey, next_url="/accounts/security/")
    assert done.status_code == 200 and done.json()["redirect_url"] == "/accounts/security/"
    assert mfa.SESSION_REAUTH_AT in client.session


def test_staff_with_only_a_passkey_cannot_remove_it(
    client: Any, new_staff: User, enrolled_with_passkey: Any
) -> None:
    sign_in(client, "t-suzuki")
    use_passkey(client, enrolled_with_passkey)
    device = WebAuthnCredential.objects.get(user=new_staff)
    client.post(reverse("accounts:device_remove", args=["passkey", device.pk]))
    assert WebAuthnCredential.objects.filter(pk=device.pk).exists()


def test_a_forged_passkey_answer_is_refused(client: Any, new_staff: User, enrolled_with_passkey: Any) -> None:
    sign_in(client, "t-suzuki")
    begin = _json(client, AUTH_BEGIN)
    answer = enrolled_with_passkey.authenticate(begin.json())
    answer["response"]["signature"] = SoftAuthenticator().authenticate(begin.json())["response"]["signature"]
    response = _json(client, f"{AUTH_COMPLETE}?next=/", answer)
    assert response.status_code == 422
    assert client.get("/")["Location"].startswith(reverse("accounts:mfa_verify"))
