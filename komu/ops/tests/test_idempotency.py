from __future__ import annotations

import datetime
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client, override_settings
from django.utils import timezone

from komu.ops.idempotency import idempotency_purge
from komu.ops.models import IdempotentRequest
from komu.testing.world import World, login_verified

pytestmark = [pytest.mark.django_db, pytest.mark.urls("komu.ops.tests.idem_urls")]


@pytest.fixture
def teacher(client: Client, world: World) -> Client:
    login_verified(client, world.user("homeroom_a1"))
    return client


def test_a_resubmitted_form_is_applied_once_and_answered_with_the_same_redirect(teacher: Client) -> None:
    key = uuid.uuid4().hex
    first = teacher.post("/redirect/", {"_idempotency_key": key, "name": "x"})
    again = teacher.post("/redirect/", {"_idempotency_key": key, "name": "x"})
    assert first.status_code == again.status_code == 302
    assert again["Location"] == first["Location"]
    assert again["Idempotent-Replayed"] == "true"
    assert Group.objects.filter(name__startswith="g-").count() == 1
    other = teacher.post("/redirect/", {"_idempotency_key": uuid.uuid4().hex})
    assert other["Location"] != first["Location"]
    assert Group.objects.filter(name__startswith="g-").count() == 2


def test_a_retried_htmx_write_gets_the_stored_page_and_the_body_is_encrypted(teacher: Client) -> None:
    key = uuid.uuid4().hex
    first = teacher.post("/page/", HTTP_IDEMPOTENCY_KEY=key)
    again = teacher.post("/page/", HTTP_IDEMPOTENCY_KEY=key)
    assert first.content == again.content
    assert "作成しました" in again.content.decode()
    assert Group.objects.filter(name__startswith="p-").count() == 1
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT body FROM ops_idempotentrequest")
        (stored,) = cursor.fetchone()
    assert "作成しました" not in stored


def test_errors_are_not_kept_so_the_corrected_form_runs(teacher: Client) -> None:
    key = uuid.uuid4().hex
    assert teacher.post("/invalid/", {"_idempotency_key": key}).status_code == 400
    assert not IdempotentRequest.objects.exists()


def test_a_request_that_dies_mid_way_leaves_neither_its_write_nor_its_key(world: World) -> None:
    client = Client(raise_request_exception=False)
    login_verified(client, world.user("homeroom_a1"))
    key = uuid.uuid4().hex
    with override_settings(DEBUG=False):
        response = client.post("/fails/", {"_idempotency_key": key})
    assert response.status_code == 500
    assert not Group.objects.filter(name="half-done").exists()
    assert not IdempotentRequest.objects.exists()


def test_requests_without_a_key_or_signed_out_are_untouched(client: Client, world: World) -> None:
    client.post("/redirect/")
    client.post("/redirect/", {"_idempotency_key": uuid.uuid4().hex})  # anonymous: no per-person key
    assert not IdempotentRequest.objects.exists()
    login_verified(client, world.user("homeroom_a1"))
    client.post("/redirect/", {"_idempotency_key": "short"})
    assert not IdempotentRequest.objects.exists()
    assert Group.objects.filter(name__startswith="g-").count() == 3


def test_keys_are_per_person(client: Client, world: World) -> None:
    key = uuid.uuid4().hex
    login_verified(client, world.user("homeroom_a1"))
    client.post("/redirect/", {"_idempotency_key": key})
    other = Client()
    login_verified(other, world.user("principal_a"))
    other.post("/redirect/", {"_idempotency_key": key})
    assert Group.objects.filter(name__startswith="g-").count() == 2


def test_purge_forgets_keys_after_a_day(teacher: Client, monkeypatch: Any) -> None:
    teacher.post("/redirect/", {"_idempotency_key": uuid.uuid4().hex})
    assert idempotency_purge() == 0
    assert idempotency_purge(now=timezone.now() + datetime.timedelta(hours=25)) == 1
