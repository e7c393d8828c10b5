"""Sessions end after 30 idle minutes; accounts are created through user_create."""

from __future__ import annotations

import datetime
import time
from typing import Any

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.urls import reverse
from django.utils import timezone

from komu.access.scope import get_actor
from komu.accounts import middleware, services
from komu.accounts.models import User
from komu.accounts.tests.helpers import fully_signed_in
from komu.audit.models import AuditEvent
from komu.core.errors import PermissionDeniedError, ValidationFailed
from komu.testing.world import World


def _session_row(client: Any) -> Session:
    return Session.objects.get(session_key=client.session.session_key)


def test_the_idle_limit_is_thirty_minutes_renewed_at_most_once_a_minute() -> None:
    assert settings.SESSION_COOKIE_AGE == 30 * 60
    assert settings.KOMU_SESSION_REFRESH_SECONDS == 60
    assert "komu.accounts.middleware.IdleSessionMiddleware" in settings.MIDDLEWARE
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE is True


def test_a_request_a_minute_after_the_last_renewal_pushes_the_idle_deadline_back(
    client: Any, staff: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    fully_signed_in(client, staff)
    client.get(reverse("accounts:security"))
    Session.objects.filter(session_key=client.session.session_key).update(
        expire_date=timezone.now() + datetime.timedelta(minutes=1)
    )
    # Within the minute: no write, the deadline stays where it was.
    assert client.get(reverse("accounts:security")).status_code == 200
    assert _session_row(client).expire_date - timezone.now() <= datetime.timedelta(minutes=1)
    later = time.time() + 61
    monkeypatch.setattr(middleware.time, "time", lambda: later)
    assert client.get(reverse("accounts:security")).status_code == 200
    remaining = _session_row(client).expire_date - timezone.now()
    assert datetime.timedelta(minutes=29) < remaining <= datetime.timedelta(minutes=30)


def test_an_idle_session_is_signed_out(client: Any, staff: User) -> None:
    fully_signed_in(client, staff)
    Session.objects.filter(session_key=client.session.session_key).update(
        expire_date=timezone.now() - datetime.timedelta(seconds=1)
    )
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_user_create_encrypts_personal_fields_and_audits(world: World) -> None:
    actor = get_actor(world.user("school_admin_a"))
    user = services.user_create(
        actor=actor,
        username="ｔ－ｙａｍａｄａ",
        kind=User.Kind.STAFF,
        display_name="山田 太郎",
        email="yamada@example.jp",
        password="Kochira-no-2027",
    )
    assert user.username == "t-yamada"
    assert user.check_password("Kochira-no-2027")
    assert user.email_index == User._meta.get_field("email_index").lookup_value("YAMADA@example.jp")
    event = AuditEvent.objects.get(action="accounts.user.created")
    assert event.actor_id == str(world.user("school_admin_a").pk)
    assert event.fields == ["display_name", "email"]
    assert "山田" not in str(event.detail)


def test_user_create_reports_every_problem_in_japanese(world: World) -> None:
    actor = get_actor(world.user("school_admin_a"))
    with pytest.raises(ValidationFailed) as failure:
        services.user_create(
            actor=actor,
            username="principal_a",
            kind="teacher",
            display_name="",
            email="not-an-address",
            password="123",
        )
    assert set(failure.value.errors) == {"username", "kind", "email", "password"}
    assert "すでに使われています" in failure.value.errors["username"][0]


def test_only_people_who_manage_staff_create_accounts(world: World) -> None:
    with pytest.raises(PermissionDeniedError):
        services.user_create(
            actor=get_actor(world.user("teacher_a")),
            username="x-new",
            kind=User.Kind.STAFF,
            display_name="新任",
            email="",
        )
