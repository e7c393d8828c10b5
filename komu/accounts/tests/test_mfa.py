"""The second factor at sign-in: TOTP, recovery codes, throttling, and the first-sign-in enrolment."""

from __future__ import annotations

import re
from typing import Any

from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from komu.accounts import mfa, services
from komu.accounts.models import User
from komu.accounts.tests.helpers import code_for, sign_in, totp_of, wait_out_throttle
from komu.audit.models import AuditEvent

VERIFY = reverse("accounts:mfa_verify")
ENROL = reverse("accounts:mfa_enrol")


def _to_full_width(digits: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) for c in digits)


def test_a_valid_code_from_the_authenticator_app_reaches_the_home_page(client: Any, staff: User) -> None:
    sign_in(client, "t-tanaka")
    page = client.get(VERIFY)
    assert page.status_code == 200
    assert "確認コード（6桁）" in page.content.decode()
    response = client.post(VERIFY, {"method": "totp", "code": code_for(totp_of(staff)), "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200
    assert client.session[DEVICE_ID_SESSION_KEY] == totp_of(staff).persistent_id
    event = AuditEvent.objects.get(action="accounts.mfa.verified")
    assert event.detail["method"] == "totp"


def test_a_wrong_code_stays_on_the_verification_page(client: Any, staff: User) -> None:
    sign_in(client, "t-tanaka")
    wrong = f"{(int(code_for(totp_of(staff))) + 1) % 1_000_000:06d}"
    response = client.post(VERIFY, {"method": "totp", "code": wrong})
    assert response.status_code == 200
    assert "確認コードが正しくありません。" in response.content.decode()
    assert DEVICE_ID_SESSION_KEY not in client.session
    assert client.get("/")["Location"].startswith(VERIFY)
    assert AuditEvent.objects.filter(action="accounts.mfa.failed").count() == 1


def test_after_a_wrong_code_django_otp_throttles_and_the_page_says_how_long(
    client: Any, staff: User, settings: Any
) -> None:
    # django-otp waits factor × 2^(n-1) seconds after n failures; a long factor keeps a slow test machine from
    # outliving the wait between the two posts.
    settings.OTP_TOTP_THROTTLE_FACTOR = 60
    sign_in(client, "t-tanaka")
    client.post(
        VERIFY, {"method": "totp", "code": "000000" if code_for(totp_of(staff)) != "000000" else "111111"}
    )
    response = client.post(VERIFY, {"method": "totp", "code": code_for(totp_of(staff))})
    page = response.content.decode()
    assert response.status_code == 200
    assert "一時的に確認を止めています" in page and "秒たってから" in page
    assert DEVICE_ID_SESSION_KEY not in client.session
    wait_out_throttle(totp_of(staff))
    response = client.post(VERIFY, {"method": "totp", "code": code_for(totp_of(staff))})
    assert response.status_code == 302


def test_a_code_typed_with_full_width_digits_and_a_space_is_accepted(client: Any, staff: User) -> None:
    sign_in(client, "t-tanaka")
    code = _to_full_width(code_for(totp_of(staff)))
    response = client.post(VERIFY, {"method": "totp", "code": f"{code[:3]}\u3000{code[3:]}"})
    assert response.status_code == 302


def test_a_recovery_code_signs_in_once_only(client: Any, staff: User) -> None:
    codes = services.recovery_codes_issue(actor=staff)
    sign_in(client, "t-tanaka")
    response = client.post(VERIFY, {"method": "recovery", "recovery_code": codes[0].upper()})
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    client.post(reverse("accounts:logout"))

    sign_in(client, "t-tanaka")
    response = client.post(VERIFY, {"method": "recovery", "recovery_code": codes[0]})
    assert response.status_code == 200
    assert "すでに使われています" in response.content.decode()
    assert client.get("/")["Location"].startswith(VERIFY)
    assert StaticToken.objects.filter(device__user=staff).count() == 9


def test_recovery_codes_are_kept_only_as_keyed_digests(staff: User) -> None:
    codes = services.recovery_codes_issue(actor=staff)
    assert len(codes) == 10 and all(re.fullmatch(r"[a-z2-7]{4}-[a-z2-7]{4}", c) for c in codes)
    stored = set(StaticToken.objects.filter(device__user=staff).values_list("token", flat=True))
    plain = {c.replace("-", "") for c in codes}
    assert not stored & plain
    assert stored == {mfa.recovery_code_digest(c) for c in codes}


def test_issuing_recovery_codes_again_voids_the_old_ones(staff: User) -> None:
    first = services.recovery_codes_issue(actor=staff)
    services.recovery_codes_issue(actor=staff)
    stored = set(StaticToken.objects.filter(device__user=staff).values_list("token", flat=True))
    assert not stored & {mfa.recovery_code_digest(c) for c in first}


def test_the_verification_page_offers_recovery_codes_when_there_are_some(client: Any, staff: User) -> None:
    sign_in(client, "t-tanaka")
    assert "復旧コード（8文字）" not in client.get(VERIFY).content.decode()
    services.recovery_codes_issue(actor=staff)
    assert "復旧コード（8文字）" in client.get(VERIFY).content.decode()


def test_a_guardian_who_turned_mfa_on_must_verify_too(client: Any, guardian: User) -> None:
    TOTPDevice.objects.create(user=guardian, name="スマホ", confirmed=True)
    response = sign_in(client, "g-sato")
    assert response["Location"].startswith(VERIFY)
    assert client.get("/")["Location"].startswith(VERIFY)
    client.post(VERIFY, {"method": "totp", "code": code_for(totp_of(guardian))})
    assert client.get("/").status_code == 200


# --- First sign-in: enrolment
# -------------------------------------------------------------------------------------


def test_first_sign_in_enrols_an_authenticator_app_and_hands_out_recovery_codes(
    client: Any, new_staff: User
) -> None:
    response = sign_in(client, "t-suzuki", next="/students/")
    assert response["Location"] == f"{ENROL}?next=%2Fstudents%2F"

    page = client.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200
    device = TOTPDevice.objects.get(user=new_staff, confirmed=False)
    assert "<svg" in html and 'role="img"' in html and '<path d="M' in html
    assert mfa.totp_secret_text(device) in html
    assert "パスキー" in html

    # Reloading shows the same secret rather than making another device.
    client.get(response["Location"])
    assert TOTPDevice.objects.filter(user=new_staff).count() == 1

    wrong = client.post(ENROL, {"code": "12345", "name": "", "next": "/students/"})
    assert wrong.status_code == 200
    assert "6桁の数字を入力してください" in wrong.content.decode()

    done = client.post(ENROL, {"code": code_for(device), "name": "仕事用スマホ", "next": "/students/"})
    html = done.content.decode()
    assert done.status_code == 200
    assert "印刷・保存してください" in html
    assert len(re.findall(r"<li><code lang=\"en\">[a-z2-7]{4}-[a-z2-7]{4}</code></li>", html)) == 10
    assert "no-store" in done["Cache-Control"]
    device.refresh_from_db()
    assert device.confirmed and device.name == "仕事用スマホ"
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id

    unchecked = client.post(
        reverse("accounts:recovery_codes"), {"action": "acknowledge", "next": "/students/"}
    )
    assert unchecked["Location"].startswith(reverse("accounts:recovery_codes"))
    acknowledged = client.post(
        reverse("accounts:recovery_codes"),
        {"action": "acknowledge", "acknowledged": "on", "next": "/students/"},
    )
    assert acknowledged["Location"] == "/students/"
    assert client.get("/").status_code == 200
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {
        "accounts.totp_device.added",
        "accounts.totp_device.confirmed",
        "accounts.recovery_codes.issued",
    } <= actions


def test_a_wrong_enrolment_code_does_not_confirm_the_device(client: Any, new_staff: User) -> None:
    sign_in(client, "t-suzuki")
    client.get(ENROL)
    device = TOTPDevice.objects.get(user=new_staff)
    wrong = f"{(int(code_for(device)) + 5) % 1_000_000:06d}"
    response = client.post(ENROL, {"code": wrong, "name": ""})
    assert response.status_code == 200
    assert "確認コードが正しくありません" in response.content.decode()
    device.refresh_from_db()
    assert not device.confirmed
    assert client.get("/")["Location"].startswith(ENROL)
    wait_out_throttle(device)
    assert client.post(ENROL, {"code": code_for(device), "name": ""}).status_code == 200
    device.refresh_from_db()
    assert device.confirmed


def test_an_enrolled_and_verified_person_is_not_shown_enrolment_again(client: Any, staff: User) -> None:
    sign_in(client, "t-tanaka")
    assert client.get(ENROL)["Location"].startswith(VERIFY)
    client.post(VERIFY, {"method": "totp", "code": code_for(totp_of(staff))})
    assert client.get(ENROL)["Location"] == "/"
    assert TOTPDevice.objects.filter(user=staff).count() == 1
