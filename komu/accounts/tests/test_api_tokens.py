"""API tokens: shown once, stored as SHA-256, optionally expiring, revocable; issuing needs
re-authentication."""

from __future__ import annotations

import datetime
import hashlib
import re
from typing import Any

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from komu.accounts import mfa, services
from komu.accounts.models import ApiToken, User
from komu.accounts.tests.helpers import fresh_reauth, fully_signed_in, sign_in
from komu.audit.models import AuditEvent
from komu.core.errors import NotFoundOrNoAccess, ValidationFailed

TOKENS = reverse("accounts:api_tokens")


def test_a_token_is_stored_only_as_its_sha256_with_a_display_prefix(staff: User) -> None:
    issued = services.api_token_issue(actor=staff, name="出欠集計スクリプト", expires_at=None)
    assert issued.raw.startswith("komu_") and len(issued.raw) > 40
    token = ApiToken.objects.get(pk=issued.token.pk)
    assert token.token_hash == hashlib.sha256(issued.raw.encode()).hexdigest()
    assert issued.raw.startswith(f"komu_{token.prefix}")
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apitoken")
        assert issued.raw not in repr(cursor.fetchall())
    assert AuditEvent.objects.filter(action="accounts.api_token.issued", object_id=str(token.pk)).exists()


def test_a_valid_token_authenticates_its_owner_and_records_its_use(staff: User) -> None:
    issued = services.api_token_issue(actor=staff, name="集計", expires_at=None)
    assert services.api_token_authenticate(issued.raw) == staff
    used = ApiToken.objects.get(pk=issued.token.pk).last_used_at
    assert used is not None and timezone.now() - used < datetime.timedelta(minutes=1)
    assert services.api_token_authenticate(f" {issued.raw}\n") == staff


@pytest.mark.parametrize("raw", ["", "komu_", "komu_not-a-real-token", "Bearer x", "x" * 500])
def test_an_unknown_or_malformed_token_authenticates_nobody(staff: User, raw: str) -> None:
    services.api_token_issue(actor=staff, name="集計", expires_at=None)
    assert services.api_token_authenticate(raw) is None


def test_an_expired_token_authenticates_nobody(staff: User) -> None:
    issued = services.api_token_issue(
        actor=staff, name="集計", expires_at=timezone.now() + datetime.timedelta(days=30)
    )
    ApiToken.objects.filter(pk=issued.token.pk).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    assert services.api_token_authenticate(issued.raw) is None


def test_a_revoked_token_authenticates_nobody(staff: User) -> None:
    issued = services.api_token_issue(actor=staff, name="集計", expires_at=None)
    services.api_token_revoke(actor=staff, token_id=issued.token.pk)
    assert services.api_token_authenticate(issued.raw) is None
    assert AuditEvent.objects.filter(action="accounts.api_token.revoked").count() == 1


def test_a_disabled_owner_makes_the_token_useless(staff: User) -> None:
    issued = services.api_token_issue(actor=staff, name="集計", expires_at=None)
    User.objects.filter(pk=staff.pk).update(is_active=False)
    assert services.api_token_authenticate(issued.raw) is None


def test_a_token_needs_a_purpose_and_a_future_expiry(staff: User) -> None:
    with pytest.raises(ValidationFailed) as failure:
        services.api_token_issue(
            actor=staff, name=" ", expires_at=timezone.now() - datetime.timedelta(days=1)
        )
    assert set(failure.value.errors) == {"name", "expires_at"}


def test_nobody_revokes_another_persons_token(staff: User, new_staff: User) -> None:
    issued = services.api_token_issue(actor=new_staff, name="集計", expires_at=None)
    with pytest.raises(NotFoundOrNoAccess):
        services.api_token_revoke(actor=staff, token_id=issued.token.pk)
    assert services.api_token_authenticate(issued.raw) == new_staff


def test_issuing_on_the_page_needs_re_authentication_and_shows_the_token_once(
    client: Any, staff: User
) -> None:
    fully_signed_in(client, staff)
    session = client.session
    session.pop(mfa.SESSION_REAUTH_AT)
    session.save()
    page = client.get(TOKENS).content.decode()
    assert "本人確認して発行" in page and 'name="name"' not in page
    response = client.post(TOKENS, {"name": "集計", "expires_in": "90"})
    assert response["Location"].startswith(reverse("accounts:reauth"))
    assert not ApiToken.objects.exists()

    fresh_reauth(client)
    response = client.post(TOKENS, {"name": "出欠集計スクリプト", "expires_in": "90"})
    html = response.content.decode()
    raw = re.search(r"komu_[A-Za-z0-9_-]{40,}", html)
    assert response.status_code == 200 and raw
    assert "no-store" in response["Cache-Control"]
    token = ApiToken.objects.get()
    assert token.expires_at is not None
    assert datetime.timedelta(days=89) < token.expires_at - timezone.now() <= datetime.timedelta(days=90)
    listing = client.get(TOKENS).content.decode()
    assert "出欠集計スクリプト" in listing and raw.group(0) not in listing
    assert f"komu_{token.prefix}…" in listing


def test_revoking_on_the_page(client: Any, staff: User, new_staff: User) -> None:
    mine = services.api_token_issue(actor=staff, name="集計", expires_at=None)
    theirs = services.api_token_issue(actor=new_staff, name="別の人", expires_at=None)
    fully_signed_in(client, staff)
    response = client.post(reverse("accounts:api_token_revoke", args=[mine.token.pk]))
    assert response["Location"] == TOKENS
    assert services.api_token_authenticate(mine.raw) is None
    assert client.post(reverse("accounts:api_token_revoke", args=[theirs.token.pk])).status_code == 404
    assert client.get(reverse("accounts:api_token_revoke", args=[mine.token.pk])).status_code == 405


def test_guardians_have_no_api_tokens_page(client: Any, guardian: User) -> None:
    sign_in(client, "g-sato")
    assert client.get(TOKENS).status_code == 404


def test_the_tokens_page_costs_the_same_queries_for_one_or_many_tokens(
    client: Any, staff: User, django_assert_num_queries: Any
) -> None:
    from django.test.utils import CaptureQueriesContext

    services.api_token_issue(actor=staff, name="集計 1", expires_at=None)
    fully_signed_in(client, staff)
    client.get(TOKENS)
    with CaptureQueriesContext(connection) as one:
        client.get(TOKENS)
    for n in range(2, 12):
        services.api_token_issue(actor=staff, name=f"集計 {n}", expires_at=None)
    with django_assert_num_queries(len(one.captured_queries)):
        assert client.get(TOKENS).status_code == 200
