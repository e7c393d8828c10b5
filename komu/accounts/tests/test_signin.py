"""Sign-in: password through django-axes, then the second factor for staff; lockout by login ID + address."""

from __future__ import annotations

import datetime
from typing import Any

from axes.models import AccessAttempt
from django.urls import reverse

from komu.accounts.models import User
from komu.accounts.tests.helpers import sign_in
from komu.audit.models import AuditEvent

LOGIN = reverse("accounts:login")
WRONG = "not-the-password"
SCHOOL_ADDRESS = "198.51.100.7"
HOME_ADDRESS = "203.0.113.44"


def _fail(client: Any, username: str, ip: str = SCHOOL_ADDRESS, times: int = 1) -> Any:
    response = None
    for _ in range(times):
        response = sign_in(client, username, WRONG, ip=ip)
    return response


def test_sign_in_page_is_japanese_and_fits_a_phone(client: Any, db: None) -> None:
    response = client.get(LOGIN)
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="ja">' in html
    assert 'name="viewport" content="width=device-width' in html
    assert 'autocomplete="username"' in html and 'autocomplete="current-password"' in html
    assert "ログインID" in html and "パスワード" in html


def test_staff_signing_in_with_a_password_is_sent_to_the_second_factor(client: Any, staff: User) -> None:
    response = sign_in(client, "t-tanaka")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:mfa_verify"))
    assert client.session.get("_auth_user_id") == str(staff.pk)


def test_a_password_only_staff_session_is_held_at_verification_on_every_page(
    client: Any, staff: User
) -> None:
    sign_in(client, "t-tanaka")
    for path in [
        "/",
        "/students/",
        reverse("accounts:security"),
        reverse("accounts:password_change"),
        reverse("accounts:api_tokens"),
        reverse("accounts:reauth"),
    ]:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith(reverse("accounts:mfa_verify")), path


def test_a_password_only_staff_session_gets_401_from_the_api(client: Any, staff: User) -> None:
    sign_in(client, "t-tanaka")
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 401
    assert response.json()["detail"] == "二要素認証が必要です。"


def test_staff_without_a_second_factor_is_sent_to_enrolment_for_every_page(
    client: Any, new_staff: User
) -> None:
    response = sign_in(client, "t-suzuki")
    assert response["Location"].startswith(reverse("accounts:mfa_enrol"))
    for path in ["/", "/students/", reverse("accounts:security")]:
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:mfa_enrol"))
    assert client.get("/api/v1/openapi.json").status_code == 401


def test_guardian_signs_in_with_a_password_alone(client: Any, guardian: User) -> None:
    response = sign_in(client, "g-sato")
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_unknown_login_id_and_wrong_password_get_the_same_answer(client: Any, staff: User) -> None:
    unknown = sign_in(client, "nobody-here", WRONG)
    wrong = sign_in(client, "t-tanaka", WRONG)
    assert unknown.status_code == wrong.status_code == 200
    message = "ログインIDまたはパスワードが正しくありません。"
    assert message in unknown.content.decode() and message in wrong.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_disabled_account_gets_the_same_answer_as_a_wrong_password(client: Any, staff: User) -> None:
    User.objects.filter(pk=staff.pk).update(is_active=False)
    response = sign_in(client, "t-tanaka")
    assert response.status_code == 200
    assert "ログインIDまたはパスワードが正しくありません。" in response.content.decode()


def test_full_width_login_id_from_a_japanese_ime_signs_in(client: Any, guardian: User) -> None:
    response = sign_in(client, "ｇ－ｓａｔｏ")
    assert response.status_code == 302 and response["Location"] == "/"


def test_sign_ins_are_audited_and_a_failure_names_no_actor(client: Any, staff: User) -> None:
    sign_in(client, "t-tanaka", WRONG)
    sign_in(client, "t-tanaka")
    failed = AuditEvent.objects.get(action="accounts.signin.failed")
    assert failed.actor_id == "" and failed.actor_username == "system"
    assert failed.detail == {"username": "t-tanaka", "locked_out": False}
    succeeded = AuditEvent.objects.get(action="accounts.signin.succeeded")
    assert succeeded.actor_id == str(staff.pk)
    assert succeeded.detail == {"next_step": "mfa_verify"}


# --- Lockout (django-axes: 5 failures per login ID + address, 15 minutes)
# ----------------------------------------


def test_five_wrong_passwords_lock_that_login_id_from_that_address(client: Any, staff: User) -> None:
    assert _fail(client, "t-tanaka", times=4).status_code == 200
    locked = _fail(client, "t-tanaka")
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "ログインを一時的に停止しています" in page
    assert "15 分" in page
    assert reverse("accounts:password_reset") in page
    # Even the right password is refused while the lock lasts.
    again = sign_in(client, "t-tanaka", ip=SCHOOL_ADDRESS)
    assert again.status_code == 429
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="accounts.signin.failed", detail__locked_out=True).exists()


def test_a_locked_login_id_does_not_lock_out_a_colleague_at_the_same_school(
    client: Any, staff: User, new_staff: User
) -> None:
    _fail(client, "t-tanaka", times=5)
    response = sign_in(client, "t-suzuki", ip=SCHOOL_ADDRESS)
    assert response.status_code == 302
    assert client.session.get("_auth_user_id") == str(new_staff.pk)


def test_a_locked_login_id_can_still_sign_in_from_another_address(client: Any, staff: User) -> None:
    _fail(client, "t-tanaka", times=5)
    response = sign_in(client, "t-tanaka", ip=HOME_ADDRESS)
    assert response.status_code == 302
    assert client.session.get("_auth_user_id") == str(staff.pk)


def test_the_lock_ends_after_the_cool_off(client: Any, staff: User) -> None:
    _fail(client, "t-tanaka", times=5)
    assert sign_in(client, "t-tanaka", ip=SCHOOL_ADDRESS).status_code == 429
    # Sixteen minutes pass.
    earlier = datetime.timedelta(minutes=16)
    for attempt in AccessAttempt.objects.all():
        AccessAttempt.objects.filter(pk=attempt.pk).update(attempt_time=attempt.attempt_time - earlier)
    response = sign_in(client, "t-tanaka", ip=SCHOOL_ADDRESS)
    assert response.status_code == 302
    assert client.session.get("_auth_user_id") == str(staff.pk)


def test_an_unknown_login_id_locks_exactly_like_a_real_one(client: Any, db: None) -> None:
    assert _fail(client, "nobody-here", times=5).status_code == 429


# --- next, logout
# -------------------------------------------------------------------------------------------------


def test_the_page_asked_for_is_kept_through_the_second_factor(client: Any, guardian: User) -> None:
    response = client.get("/students/children/")
    assert response["Location"].startswith(LOGIN)
    response = sign_in(client, "g-sato", next="/students/children/")
    assert response["Location"] == "/students/children/"


def test_next_never_leads_off_site(client: Any, guardian: User) -> None:
    response = sign_in(client, "g-sato", next="https://evil.example/phish")
    assert response["Location"] == "/"


def test_logout_needs_a_post_and_ends_the_session(client: Any, guardian: User) -> None:
    sign_in(client, "g-sato")
    assert client.get(reverse("accounts:logout")).status_code == 405
    response = client.post(reverse("accounts:logout"))
    assert response.status_code == 302 and response["Location"] == LOGIN
    assert "_auth_user_id" not in client.session
    assert client.get("/")["Location"].startswith(LOGIN)
    assert AuditEvent.objects.filter(action="accounts.signout").count() == 1


def test_logout_is_protected_by_csrf(guardian: User) -> None:
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(guardian)
    assert strict.post(reverse("accounts:logout")).status_code == 403
    assert "_auth_user_id" in strict.session
