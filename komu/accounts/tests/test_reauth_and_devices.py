"""Changing how an account is protected needs a fresh re-authentication; staff keep at least one factor."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import pytest
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from komu.accounts import mfa, services
from komu.accounts.models import User
from komu.accounts.tests.helpers import code_for, fresh_reauth, fully_signed_in, sign_in, totp_of
from komu.audit.models import AuditEvent
from komu.core.errors import NotFoundOrNoAccess, ValidationFailed
from komu.testing.world import PASSWORD

REAUTH = reverse("accounts:reauth")
TOTP_ADD = reverse("accounts:totp_add")
SECURITY = reverse("accounts:security")


def _remove_url(device: TOTPDevice) -> str:
    return reverse("accounts:device_remove", args=["totp", device.pk])


def test_adding_an_authenticator_app_asks_for_re_authentication_first(client: Any, staff: User) -> None:
    fully_signed_in(client, staff)
    # Signing in counts as a fresh re-authentication; five minutes later it no longer does.
    session = client.session
    session[mfa.SESSION_REAUTH_AT] = time.time() - 301
    session.save()
    response = client.get(TOTP_ADD)
    assert response.status_code == 302
    assert response["Location"] == f"{REAUTH}?next={quote(TOTP_ADD, safe='')}"
    assert not TOTPDevice.objects.filter(user=staff, confirmed=False).exists()


def test_re_authentication_is_password_then_code_and_opens_the_door_for_five_minutes(
    client: Any, staff: User
) -> None:
    fully_signed_in(client, staff)
    session = client.session
    session.pop(mfa.SESSION_REAUTH_AT)
    session.save()

    page = client.get(f"{REAUTH}?next={TOTP_ADD}")
    assert page.status_code == 200 and 'name="password"' in page.content.decode()
    wrong = client.post(REAUTH, {"step": "password", "password": "wrong", "next": TOTP_ADD})
    assert "パスワードが正しくありません" in wrong.content.decode()

    step_two = client.post(REAUTH, {"step": "password", "password": PASSWORD, "next": TOTP_ADD})
    assert step_two["Location"].startswith(REAUTH)
    page = client.get(step_two["Location"])
    assert "確認コード（6桁）" in page.content.decode()
    # The password alone does not open the door.
    assert client.get(TOTP_ADD)["Location"].startswith(REAUTH)

    done = client.post(
        REAUTH, {"step": "factor", "method": "totp", "code": code_for(totp_of(staff), 1), "next": TOTP_ADD}
    )
    assert done["Location"] == TOTP_ADD
    assert mfa.SESSION_REAUTH_AT in client.session
    assert AuditEvent.objects.filter(action="accounts.reauth.succeeded").exists()

    page = client.get(TOTP_ADD)
    assert page.status_code == 200
    new_device = TOTPDevice.objects.get(user=staff, confirmed=False)
    added = client.post(TOTP_ADD, {"code": code_for(new_device), "name": "予備のタブレット"})
    assert added.status_code == 200  # first recovery codes are shown with the new device
    assert "印刷・保存してください" in added.content.decode()
    assert TOTPDevice.objects.filter(user=staff, confirmed=True).count() == 2


def test_re_authentication_expires(client: Any, staff: User) -> None:
    fully_signed_in(client, staff)
    fresh_reauth(client)
    assert client.get(TOTP_ADD).status_code == 200
    session = client.session
    session[mfa.SESSION_REAUTH_AT] = time.time() - 301
    session.save()
    assert client.get(TOTP_ADD)["Location"].startswith(REAUTH)
    assert client.get(_remove_url(totp_of(staff)))["Location"].startswith(REAUTH)


def test_removing_a_device_asks_for_re_authentication(client: Any, staff: User) -> None:
    second = TOTPDevice.objects.create(user=staff, name="予備", confirmed=True)
    fully_signed_in(client, staff)
    session = client.session
    session.pop(mfa.SESSION_REAUTH_AT)
    session.save()
    response = client.post(_remove_url(second))
    assert response["Location"].startswith(REAUTH)
    assert TOTPDevice.objects.filter(pk=second.pk).exists()


def test_staff_can_never_remove_their_last_second_factor(client: Any, staff: User) -> None:
    fully_signed_in(client, staff)
    fresh_reauth(client)
    only = totp_of(staff)
    page = client.get(_remove_url(only))
    assert "最後の認証アプリ・パスキーなので削除できません" in page.content.decode()
    response = client.post(_remove_url(only), follow=True)
    assert "最後の認証アプリまたはパスキーは削除できません" in response.content.decode()
    assert TOTPDevice.objects.filter(pk=only.pk).exists()
    with pytest.raises(ValidationFailed):
        services.device_remove(actor=staff, kind="totp", device_id=only.pk)


def test_staff_removes_one_of_two_and_stays_signed_in(client: Any, staff: User) -> None:
    first = totp_of(staff)
    second = TOTPDevice.objects.create(user=staff, name="予備", confirmed=True)
    fully_signed_in(client, staff)
    fresh_reauth(client)
    assert client.session[DEVICE_ID_SESSION_KEY] == first.persistent_id
    response = client.post(_remove_url(first))
    assert response["Location"] == SECURITY
    assert not TOTPDevice.objects.filter(pk=first.pk).exists()
    # The session was verified with the removed app: it carries over to the remaining one.
    assert client.session[DEVICE_ID_SESSION_KEY] == second.persistent_id
    assert client.get(SECURITY).status_code == 200
    event = AuditEvent.objects.get(action="accounts.device.removed")
    assert event.detail == {"kind": "totp", "mfa_disabled": False}


def test_nobody_can_remove_another_persons_device(client: Any, staff: User, new_staff: User) -> None:
    theirs = TOTPDevice.objects.create(user=new_staff, name="鈴木のスマホ", confirmed=True)
    fully_signed_in(client, staff)
    fresh_reauth(client)
    assert client.get(_remove_url(theirs)).status_code == 404
    assert client.post(_remove_url(theirs)).status_code == 404
    with pytest.raises(NotFoundOrNoAccess):
        services.device_remove(actor=staff, kind="totp", device_id=theirs.pk)
    assert TOTPDevice.objects.filter(pk=theirs.pk).exists()


def test_a_guardian_turns_mfa_on_and_off(client: Any, guardian: User) -> None:
    sign_in(client, "g-sato")
    session = client.session
    session.pop(mfa.SESSION_REAUTH_AT)
    session.save()
    assert client.get(TOTP_ADD)["Location"].startswith(REAUTH)
    # Without a second factor, re-authentication is the password alone.
    response = client.post(REAUTH, {"step": "password", "password": PASSWORD, "next": TOTP_ADD})
    assert response["Location"] == TOTP_ADD
    client.get(TOTP_ADD)
    device = TOTPDevice.objects.get(user=guardian)
    shown = client.post(TOTP_ADD, {"code": code_for(device), "name": ""})
    assert "印刷・保存してください" in shown.content.decode()
    assert StaticDevice.objects.filter(user=guardian).exists()

    fresh_reauth(client)
    response = client.post(_remove_url(totp_of(guardian)), follow=True)
    assert "二要素認証はオフになりました" in response.content.decode()
    assert not TOTPDevice.objects.filter(user=guardian).exists()
    assert not StaticDevice.objects.filter(user=guardian).exists()
    assert AuditEvent.objects.get(action="accounts.device.removed").detail["mfa_disabled"] is True
    # Next sign-in is password only again.
    client.post(reverse("accounts:logout"))
    assert sign_in(client, "g-sato")["Location"] == "/"


def test_new_recovery_codes_need_re_authentication(client: Any, staff: User) -> None:
    fully_signed_in(client, staff)
    session = client.session
    session.pop(mfa.SESSION_REAUTH_AT)
    session.save()
    url = reverse("accounts:recovery_codes")
    response = client.post(url, {"action": "issue"})
    assert response["Location"].startswith(REAUTH)
    assert not StaticDevice.objects.filter(user=staff).exists()
    fresh_reauth(client)
    response = client.post(url, {"action": "issue"})
    assert response.status_code == 200 and "印刷・保存してください" in response.content.decode()


def test_a_recovery_code_completes_re_authentication(client: Any, staff: User) -> None:
    codes = services.recovery_codes_issue(actor=staff)
    fully_signed_in(client, staff)
    session = client.session
    session.pop(mfa.SESSION_REAUTH_AT)
    session.save()
    client.post(REAUTH, {"step": "password", "password": PASSWORD, "next": SECURITY})
    response = client.post(
        REAUTH, {"step": "factor", "method": "recovery", "recovery_code": codes[3], "next": SECURITY}
    )
    assert response["Location"] == SECURITY
    assert time.time() - client.session[mfa.SESSION_REAUTH_AT] < 60


def test_the_security_page_lists_factors_and_what_can_be_done(client: Any, staff: User) -> None:
    services.recovery_codes_issue(actor=staff)
    fully_signed_in(client, staff)
    html = client.get(SECURITY).content.decode()
    assert "テスト端末" in html and "認証アプリ" in html
    assert "残り 10 個" in html
    assert "最後の1つは削除できません" in html
    for name in ("totp_add", "recovery_codes", "password_change", "api_tokens"):
        assert reverse(f"accounts:{name}") in html


def test_the_security_page_costs_the_same_queries_for_one_or_many_factors(
    client: Any, staff: User, django_assert_num_queries: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    fully_signed_in(client, staff)
    client.get(SECURITY)
    with CaptureQueriesContext(connection) as one:
        client.get(SECURITY)
    for n in range(5):
        TOTPDevice.objects.create(user=staff, name=f"予備 {n}", confirmed=True)
    with django_assert_num_queries(len(one.captured_queries)):
        assert client.get(SECURITY).status_code == 200
