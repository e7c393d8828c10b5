"""お知らせ: in-app notifications and their e-mails, per-person preferences, the daily digest."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from django.core import mail
from django.urls import reverse

from komu.access.scope import get_actor
from komu.audit.models import AuditEvent
from komu.core.errors import NotFoundOrNoAccess, ValidationFailed
from komu.notices import notifications
from komu.notices.models import Notification
from komu.testing.tasks import run_queued_tasks
from komu.testing.world import World


def _notify(world: World, *names: str, **kwargs: Any) -> int:
    params: dict[str, Any] = {"title": "事務連絡が届きました", "url": "/notices/inbox/", "kind": "notices.notice"}
    params.update(kwargs)
    return notifications.notify(users=[world.user(n) for n in names], **params)


def test_notify_creates_one_notification_per_person_and_queues_their_mails(world: World) -> None:
    created = _notify(world, "principal_a", "principal_a", "principal_b", body="本文です")
    assert created == 2
    assert Notification.objects.count() == 2
    # The sender's request does not mail anyone itself: the worker does, from the queue.
    assert mail.outbox == []
    assert set(Notification.objects.values_list("email_state", flat=True)) == {"pending"}
    assert run_queued_tasks() == 1
    assert sorted(m.to[0] for m in mail.outbox) == ["principal_a@example.jp", "principal_b@example.jp"]
    assert "本文です" in mail.outbox[0].body
    assert "/notices/inbox/" in mail.outbox[0].body
    assert set(Notification.objects.values_list("email_state", flat=True)) == {"sent"}
    # Mailed once: running the same task again (a retried worker) sends nothing more.
    assert notifications.notification_emails_send(Notification.objects.values_list("pk", flat=True)) == 0
    assert len(mail.outbox) == 2


def test_personal_notification_mail_carries_only_title_and_link(world: World) -> None:
    _notify(world, "guardian_a", title="お便りが届きました", body="髙橋𠮷乃さんの遠足について", personal=True)
    run_queued_tasks()
    assert len(mail.outbox) == 1
    assert "髙橋" not in mail.outbox[0].body
    assert "お便りが届きました" in mail.outbox[0].subject
    # The body stays readable in the app.
    assert Notification.objects.get().body == "髙橋𠮷乃さんの遠足について"


def test_no_mail_leaves_when_the_transaction_rolls_back(world: World) -> None:
    from django.db import transaction

    try:
        with transaction.atomic():
            _notify(world, "principal_a")
            raise RuntimeError("rollback")
    except RuntimeError:
        pass
    # The queued task rolled back with the notifications.
    assert run_queued_tasks() == 0
    assert mail.outbox == []
    assert Notification.objects.count() == 0


def test_a_backend_that_runs_tasks_at_once_gets_the_mails_only_after_commit(
    world: World, settings: Any, django_capture_on_commit_callbacks: Any,
) -> None:
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _notify(world, "principal_a")
        assert mail.outbox == []
    assert len(callbacks) == 1
    callbacks[0]()
    assert [m.to[0] for m in mail.outbox] == ["principal_a@example.jp"]


def test_preference_off_keeps_in_app_only(world: World) -> None:
    actor = get_actor(world.user("principal_a"))
    notifications.notification_preference_set(actor=actor, email_mode="off")
    assert AuditEvent.objects.filter(action="notices.notification_preference.changed").count() == 1
    _notify(world, "principal_a")
    assert run_queued_tasks() == 0
    assert mail.outbox == []
    assert notifications.notifications_unread_count(actor=actor) == 1


def test_digest_collects_pending_notifications_into_one_mail(world: World) -> None:
    actor = get_actor(world.user("principal_a"))
    notifications.notification_preference_set(actor=actor, email_mode="digest")
    _notify(world, "principal_a", title="一件目")
    _notify(world, "principal_a", title="二件目")
    assert run_queued_tasks() == 0
    assert mail.outbox == []
    assert notifications.notifications_digest_send() == 1
    assert "一件目" in mail.outbox[0].body and "二件目" in mail.outbox[0].body
    # Sent once: a second run has nothing left.
    assert notifications.notifications_digest_send() == 0


def test_invalid_preference_is_refused(world: World) -> None:
    with pytest.raises(ValidationFailed):
        notifications.notification_preference_set(actor=get_actor(world.user("principal_a")), email_mode="sms")


def test_one_cannot_open_another_persons_notification(world: World) -> None:
    _notify(world, "principal_b")
    other = Notification.objects.get()
    with pytest.raises(NotFoundOrNoAccess):
        notifications.notification_open(actor=get_actor(world.user("principal_a")), notification_id=other.pk)
    opened = notifications.notification_open(actor=get_actor(world.user("principal_b")), notification_id=other.pk)
    assert opened.read_at is not None
    assert notifications.notifications_unread_count(actor=get_actor(world.user("principal_b"))) == 0


def test_empty_title_is_refused(world: World) -> None:
    with pytest.raises(ValueError):
        _notify(world, "principal_a", title="  ")


def test_notification_pages(world: World, signed_in: Any) -> None:
    _notify(world, "principal_a", title="新しい通知")
    client = signed_in("principal_a")
    page = client.get(reverse("notices:notification_list"))
    assert page.status_code == 200
    assert "新しい通知" in page.content.decode()
    n = Notification.objects.get()
    assert client.get(reverse("notices:notification_open", args=[n.pk])).status_code == 302
    other = signed_in("principal_b")
    assert other.get(reverse("notices:notification_open", args=[n.pk])).status_code == 404
    client = signed_in("principal_a")
    response = client.post(reverse("notices:notification_settings"), {"email_mode": "digest"})
    assert response.status_code == 302
    bad = client.post(reverse("notices:notification_settings"), {"email_mode": "sms"})
    assert bad.status_code == 200
    assert "メール通知の受け取り方を選んでください" in bad.content.decode()


def test_links_in_e_mails_use_the_public_address_set_in_the_environment() -> None:
    # Settings are read once per process: a fresh one, as the production units start it, with KOMU_BASE_URL set.
    code = "import django; django.setup(); from komu.notices import notifications as n; print(n._absolute('/notices/inbox/'))"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "komu.settings", "KOMU_BASE_URL": "https://komu.example-city.lg.jp/"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "https://komu.example-city.lg.jp/notices/inbox/"
