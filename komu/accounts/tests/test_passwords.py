"""Password reset by e-mail (found through the blind index, no oracle) and password change."""

from __future__ import annotations

import re
from typing import Any

from axes.models import AccessAttempt
from django.core import mail
from django.test import Client
from django.urls import reverse

from komu.accounts import services
from komu.accounts.models import User
from komu.accounts.tests.helpers import fully_signed_in, sign_in
from komu.audit.models import AuditEvent
from komu.testing.world import PASSWORD

RESET = reverse("accounts:password_reset")
NEW_PASSWORD = "Sakura-no-hana-2027"


def _link(message: Any) -> str:
    match = re.search(r"https?://testserver(/accounts/password-reset/\S+/\S+/)", message.body)
    assert match, message.body
    return match.group(1)


def test_the_reset_mail_finds_the_encrypted_address_through_the_blind_index(client: Any, staff: User) -> None:
    response = client.post(RESET, {"email": "  T-Tanaka@Example.JP "})
    assert response["Location"] == reverse("accounts:password_reset_done")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["t-tanaka@example.jp"]
    assert "パスワード" in message.subject
    assert "t-tanaka" in message.body
    event = AuditEvent.objects.get(action="accounts.password.reset_requested")
    assert event.object_id == str(staff.pk) and event.actor_id == ""


def test_an_unknown_address_gets_exactly_the_same_answer_and_no_mail(client: Any, staff: User) -> None:
    known = client.post(RESET, {"email": "t-tanaka@example.jp"})
    unknown = client.post(RESET, {"email": "nobody@example.jp"})
    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"]
    assert len(mail.outbox) == 1
    done = client.get(unknown["Location"]).content.decode()
    assert "登録されていれば" in done


def test_a_disabled_account_gets_no_reset_mail(client: Any, staff: User) -> None:
    User.objects.filter(pk=staff.pk).update(is_active=False)
    client.post(RESET, {"email": "t-tanaka@example.jp"})
    assert mail.outbox == []


def test_the_reset_link_sets_a_new_password_once(client: Any, staff: User) -> None:
    client.post(RESET, {"email": "t-tanaka@example.jp"})
    link = _link(mail.outbox[0])
    form_page = client.get(link, follow=True)
    assert "新しいパスワードの設定" in form_page.content.decode()
    set_url = form_page.redirect_chain[-1][0]
    weak = client.post(set_url, {"new_password1": "12345678", "new_password2": "12345678"})
    assert weak.status_code == 200
    done = client.post(set_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done["Location"] == reverse("accounts:password_reset_complete")
    staff.refresh_from_db()
    assert staff.check_password(NEW_PASSWORD)
    assert AuditEvent.objects.get(action="accounts.password.changed").detail == {"via": "reset"}
    # The link is spent.
    again = Client().get(link, follow=True)
    assert "このリンクは使えません" in again.content.decode()


def test_a_reset_lifts_the_lockout_of_that_login_id(client: Any, staff: User) -> None:
    for _ in range(5):
        sign_in(client, "t-tanaka", "wrong")
    assert AccessAttempt.objects.filter(username="t-tanaka").exists()
    client.post(RESET, {"email": "t-tanaka@example.jp"})
    form_page = client.get(_link(mail.outbox[0]), follow=True)
    client.post(
        form_page.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert not AccessAttempt.objects.filter(username="t-tanaka").exists()
    assert sign_in(client, "t-tanaka", NEW_PASSWORD).status_code == 302


def test_an_account_created_without_a_password_sets_its_first_one_by_mail(client: Any, db: None) -> None:
    user = services.user_create(
        actor=None,
        username="g-yamada",
        kind=User.Kind.GUARDIAN,
        display_name="山田 花",
        email="yamada@example.jp",
    )
    assert not user.has_usable_password()
    client.post(RESET, {"email": "yamada@example.jp"})
    assert len(mail.outbox) == 1


def test_password_change_needs_the_current_password_and_ends_other_sessions(client: Any, staff: User) -> None:
    other_device = Client()
    fully_signed_in(other_device, staff)
    fully_signed_in(client, staff, steps_ahead=1)
    url = reverse("accounts:password_change")
    wrong = client.post(
        url, {"old_password": "nope", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert wrong.status_code == 200
    response = client.post(
        url, {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert response["Location"] == reverse("accounts:security")
    assert client.get(reverse("accounts:security")).status_code == 200
    assert other_device.get("/")["Location"].startswith(reverse("accounts:login"))
    assert AuditEvent.objects.get(action="accounts.password.changed").detail == {"via": "change"}
