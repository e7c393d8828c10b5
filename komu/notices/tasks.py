"""Background work of komu.notices (django-tasks; the database worker runs it)."""

from __future__ import annotations

from django_tasks import task

from komu.notices.notifications import notification_emails_send, notifications_digest_send
from komu.notices.services.notices import notices_remind_due


@task()
def remind_due(days_before: int = 1) -> int:
    """督促 before the deadline; enqueue daily (cron: `komu notices remind --enqueue`)."""
    return notices_remind_due(days_before=days_before)


@task()
def send_digest() -> int:
    """お知らせのまとめメール; enqueue daily (cron: `komu notices digest`)."""
    return notifications_digest_send()


@task()
def send_notification_emails(notification_ids: list[str]) -> int:
    """The immediate e-mails of notifications just created (queued by `notify` in the same transaction)."""
    return notification_emails_send(notification_ids)
