"""`komu demo logins` and `komu demo totp` against a loaded demo (built once for the module)."""

from __future__ import annotations

import re
from base64 import b32encode

import pytest
from django.core.management import CommandError
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from komu.accounts.models import User
from komu.demo.builder import DEMO_PASSWORD, KEY_PERSONAS
from komu.demo.selectors import demo_totp_code
from komu.demo.tests.conftest import run_demo
from komu.students.models import Student

pytestmark = pytest.mark.usefixtures("loaded_demo", "db")


def test_demo_refuses_to_load_a_second_time() -> None:
    students = Student.objects.count()
    with pytest.raises(CommandError, match="既にデータがあります"):
        run_demo()
    assert "作成しませんでした" in run_demo("--if-empty")
    assert Student.objects.count() == students


def test_logins_lists_every_key_persona_first_with_password_secret_and_uri() -> None:
    output = run_demo("logins")
    assert f"全員共通のパスワード: {DEMO_PASSWORD}" in output
    assert "komu demo totp" in output
    positions = [output.index(f"  {name} ") for name in KEY_PERSONAS]
    assert positions == sorted(positions), "key personas are listed first, in their order"
    device = TOTPDevice.objects.get(user__username="demo-principal")
    secret = b32encode(device.bin_key).decode()
    assert secret in output
    assert re.search(rf"demo-principal: otpauth://totp/Komu%3Ademo-principal\?secret={secret}", output)
    assert "校長" in output and "こもれび市立第一小学校" in output
    assert "demo-e2-principal" not in output  # the rest only with --all, which the output mentions
    assert "--all" in output


def test_logins_never_prints_a_persons_name() -> None:
    output = run_demo("logins", "--all")
    names = {u.display_name for u in User.objects.all()} | {s.full_name for s in Student.objects.all()[:50]}
    assert not [n for n in names if n and n in output]


def test_logins_all_lists_every_demo_account() -> None:
    output = run_demo("logins", "--all")
    for username in User.objects.values_list("username", flat=True):
        assert f"  {username} " in output


def test_totp_prints_a_code_that_the_device_accepts() -> None:
    code = run_demo("totp", "demo-principal").strip()
    assert re.fullmatch(r"\d{6}", code)
    assert TOTPDevice.objects.get(user__username="demo-principal").verify_token(code)


def test_totp_after_a_sign_in_prints_the_next_code_which_is_still_accepted() -> None:
    device = TOTPDevice.objects.get(user__username="demo-homeroom")
    assert device.verify_token(run_demo("totp", "demo-homeroom").strip())
    again = run_demo("totp", "demo-homeroom").strip()
    assert TOTPDevice.objects.get(pk=device.pk).verify_token(again)


def test_totp_code_is_what_an_authenticator_app_shows_at_that_moment() -> None:
    device = TOTPDevice.objects.get(user__username="demo-board")
    moment = 1_800_000_015.0  # 15 s into a 30 s step
    calculator = TOTP(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
    calculator.time = moment
    result = demo_totp_code(username="demo-board", now=moment)
    assert result.code == f"{calculator.token():06d}"
    assert result.seconds_left == 15
    assert not result.next_step


def test_totp_refuses_an_account_the_demo_did_not_create() -> None:
    # Even one named like a demo account: only accounts recorded by the loader qualify.
    impostor = User.objects.create(username="demo-impostor", kind=User.Kind.STAFF)
    TOTPDevice.objects.create(user=impostor, name="実端末", confirmed=True)
    for username in ("demo-impostor", "nobody"):
        with pytest.raises(CommandError, match="デモで作成された利用者ではありません"):
            run_demo("totp", username)


def test_totp_explains_that_demo_guardians_have_no_authenticator() -> None:
    with pytest.raises(CommandError, match="TOTP"):
        run_demo("totp", "demo-guardian")
