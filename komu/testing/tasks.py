"""Run what the database task queue holds, in the test's own process and transaction, as `komu db_worker` would.

The worker itself cannot run inside a test: it closes "old" connections between tasks, which would end the
test's transaction."""

from __future__ import annotations

from django_tasks_db.models import DBTaskResult


def run_queued_tasks() -> int:
    """Run every ready task once, oldest first; return how many ran. A failing task fails the test."""
    ran = 0
    for result in DBTaskResult.objects.ready().order_by("enqueued_at"):
        result.claim("tests")
        value = result.task.call(*result.task_result.args, **result.task_result.kwargs)
        result.set_successful(value)
        ran += 1
    return ran
