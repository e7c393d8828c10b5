"""Scheduled operations work for the django-tasks worker."""

from __future__ import annotations

from django_tasks import task

from komu.ops import partitions


@task()
def ensure_partitions(months_ahead: int = partitions.MONTHS_AHEAD) -> list[str]:
    """Create next months' partitions ahead of time (a timer enqueues this, or runs `komu partitions ensure`)."""
    return partitions.partitions_ensure(months_ahead=months_ahead)
