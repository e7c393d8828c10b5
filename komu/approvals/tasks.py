"""Background work of the approvals engine (django-tasks; the database worker runs it)."""

from __future__ import annotations

from django.conf import settings
from django_tasks import task

from komu.approvals import services


@task()
def send_reminders(older_than_days: int | None = None) -> int:
    """督促: e-mail approvers of requests waiting longer than the limit. Enqueue it daily (cron:
    `komu approvals remind --enqueue`) or run it in place (`komu approvals remind`)."""
    return services.approvals_remind(
        older_than_days=older_than_days, base_url=getattr(settings, "KOMU_BASE_URL", ""),
    )
