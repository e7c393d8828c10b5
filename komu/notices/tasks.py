"""Background work of komu.notices (django-tasks; the database worker runs it)."""

from __future__ import annotations

from django_tasks import task

from komu.notices.notifications import notifications_digest_send
from komu.notices.services.notices import notices_remind_due


@task()
def remind_due(days_before: int = 1) -> int:
    """督促 before the deadline; enqueue daily (cron: `komu notices remind --enqueue`)."""
    return notices_remind_due(days_before=days_before)


@task()
def send_digest() -> int:
    """お知らせのまとめメール; enqueue daily (cron: `komu notices digest`)."""
    return notifications_digest_send()
