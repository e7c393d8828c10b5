"""Background work of 照会・回答 (django-tasks; the database worker runs it)."""

from __future__ import annotations

from django_tasks import task

from komu.surveys import services


@task()
def send_reminders() -> int:
    """督促: remind the schools that have not answered — once N days before the deadline, then daily once it has
    passed. Enqueue it daily (cron: `komu surveys remind --enqueue`) or run it in place (`komu surveys remind`)."""
    return services.surveys_remind_due()
