from __future__ import annotations

import json
import logging
from typing import Any
from unittest import mock

import pytest
from django.db import OperationalError
from django.test import Client, override_settings

from komu.ops import logs


@pytest.mark.django_db
def test_readyz_reports_each_check(client: Client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"] == {"database": "ok", "key_file": "ok", "task_queue": "ok"}


@pytest.mark.django_db
def test_readyz_not_ready_when_the_key_file_is_unusable(client: Client, tmp_path: Any) -> None:
    bad = tmp_path / "keys.json"
    bad.write_text("{}")
    bad.chmod(0o600)
    with override_settings(KOMU_KEY_FILE=bad, KOMU_CREATE_KEY_FILE=False):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["key_file"] == "unusable"
    assert str(bad) not in response.content.decode()


@pytest.mark.django_db
def test_readyz_not_ready_when_tasks_wait_too_long(client: Client) -> None:
    from datetime import timedelta

    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    from komu.attendance.tasks import purge_expired_registers

    result = purge_expired_registers.enqueue()
    DBTaskResult.objects.filter(id=result.id).update(enqueued_at=timezone.now() - timedelta(hours=1))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["task_queue"] == "stalled"
    assert response.json()["task_queue_depth"] == 1


@pytest.mark.django_db
def test_metrics_on_loopback_with_latency_queue_and_counts(client: Client) -> None:
    client.get("/healthz")
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    text = response.content.decode()
    assert 'komu_http_request_duration_seconds_bucket{le="0.01",method="GET",route="healthz",status="2xx"}' in text
    assert "komu_task_queue_depth 0.0" in text
    assert "komu_database_up 1.0" in text
    assert "# TYPE komu_approval_requests gauge" in text
    assert "# TYPE komu_gakureibo_imports gauge" in text


@pytest.mark.django_db
def test_probes_and_metrics_answer_plain_http_while_pages_redirect_to_https() -> None:
    with override_settings(SECURE_SSL_REDIRECT=True):
        client = Client()
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
        page = client.get("/")
    assert page.status_code == 301
    assert page["Location"].startswith("https://")


@pytest.mark.django_db
def test_metrics_hidden_from_other_addresses_unless_allowed(client: Client) -> None:
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 404
    with override_settings(KOMU_METRICS_ALLOWED_NETWORKS=["203.0.113.0/24"]):
        assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 200
    with mock.patch.dict("os.environ", {"KOMU_METRICS_TOKEN": "s3cret-token"}):
        assert client.get("/metrics", REMOTE_ADDR="203.0.113.9",
                          HTTP_AUTHORIZATION="Bearer s3cret-token").status_code == 200
        assert client.get("/metrics", REMOTE_ADDR="203.0.113.9",
                          HTTP_AUTHORIZATION="Bearer wrong").status_code == 404


@override_settings(DEBUG=False)
def test_database_outage_answers_503_page(world: Any) -> None:
    client = Client(raise_request_exception=False)
    with mock.patch("komu.accounts.mfa.second_factor_owed", side_effect=OperationalError("connection refused")):
        response = client.get("/")
    assert response.status_code == 503
    assert response["Retry-After"] == "15"
    body = response.content.decode()
    assert "ただいま利用できません" in body
    assert "二重に保存されることはありません" in body


@override_settings(DEBUG=False)
def test_other_errors_stay_500(world: Any) -> None:
    client = Client(raise_request_exception=False)
    with mock.patch("komu.accounts.mfa.second_factor_owed", side_effect=RuntimeError("bug")):
        response = client.get("/")
    assert response.status_code == 500
    assert "エラーが発生しました" in response.content.decode()


def test_json_log_lines_carry_request_id_but_no_path_or_query() -> None:
    from komu.audit import context

    formatter = logs.JsonFormatter()
    token = context.begin(context.RequestContext(request_id="req-12345678"))
    try:
        record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "%s: %s",
                                   ("Not Found", "/students/?q=山田太郎"), None)
        logs.RequestIdFilter().filter(record)
        line = json.loads(formatter.format(record))
    finally:
        context.end(token)
    assert line["request_id"] == "req-12345678"
    assert line["message"] == "Not Found"
    assert "山田" not in json.dumps(line, ensure_ascii=False)
    custom = logging.LogRecord("komu.request", logging.INFO, __file__, 1, "request", None, None)
    custom.route = "attendance:row"
    custom.password = "secret"
    line = json.loads(formatter.format(custom))
    assert line["route"] == "attendance:row"
    assert "password" not in line
