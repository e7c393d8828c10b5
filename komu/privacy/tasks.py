"""Background work of the privacy app (django-tasks; the database worker runs it)."""

from __future__ import annotations

from django_tasks import task

from komu.privacy import retention


@task()
def run_retention(dry_run: bool = False) -> int:
    """Apply the retention schedule (保存期間表); returns how many records were removed. Enqueue it daily or
    weekly (cron / systemd timer: `komu retention run`, or enqueue this task)."""
    return retention.retention_run(dry_run=dry_run).total
