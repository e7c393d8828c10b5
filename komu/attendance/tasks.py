"""Scheduled work of the attendance app, run by the django-tasks worker (settings.TASKS).

`purge_expired_registers` is the retention rule of 学校教育法施行規則 §28: enqueue it once a year after 31 March
(e.g. from cron: `komu attendance purge` does the same in the foreground), and it removes the registers of every
school year whose five years have passed, recording what it removed in the audit log.
"""

from __future__ import annotations

from typing import Any

from django_tasks import task

from komu.attendance.services import retention
from komu.audit import context


@task()
def purge_expired_registers(before_year: int | None = None) -> dict[str, Any]:
    """Purge the registers of school years before `before_year` (default: every year whose retention has
    ended). Returns the counts, which the task result keeps."""
    year = before_year if before_year is not None else retention.latest_purgeable_before_year()
    token = context.begin(context.RequestContext(request_id="task-attendance-purge", channel="task", role="",
                                                 org="komu attendance purge"))
    try:
        report = retention.attendance_purge(before_year=year)
    finally:
        context.end(token)
    return {
        "before_year": report.before_year,
        "years": [{"school": y.school_code, "year": y.year, "counts": y.counts} for y in report.years],
        "receipts": report.receipts,
    }
