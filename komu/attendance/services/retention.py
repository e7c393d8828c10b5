"""Retention of the 出席簿: kept 5 years after the school year ends (学校教育法施行規則 §28), then purged.

What a purge removes for each school year that ended more than five years ago: the daily marks, period marks,
the change history, the guardians' absence reports of the year, the daily and monthly registers with the monthly
registers' approval requests (their seals and snapshots), and the 長期欠席 reason records. The calendar and the school's
rules stay (they hold no personal data). Each school year purged is recorded as one audit event with its counts;
a dry run counts and records nothing.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from komu.approvals.models import ApprovalRequest
from komu.attendance.models import (
    DailyRegister,
    GuardianReport,
    LongAbsenceRecord,
    Mark,
    MarkChange,
    MonthlyRegister,
    PeriodMark,
    SaveReceipt,
)
from komu.audit.services import Scope, audit_record
from komu.core.errors import ValidationFailed
from komu.directory.models import SchoolYear
from komu.ops import partitions

RETENTION_YEARS = 5
# A tablet retries a lost save within minutes; a receipt older than this can no longer be asked about.
RECEIPT_DAYS = 7

# What is purged (in deletion order, see _querysets), with the label the command prints.
LABELS = {
    "marks": "出欠の記録",
    "period_marks": "時限ごとの出欠",
    "mark_changes": "訂正履歴",
    "guardian_reports": "保護者からの欠席等の連絡",
    "approval_requests": "月の出席簿の決裁（電子印の記録を含む）",
    "daily_registers": "日々の出席簿",
    "monthly_registers": "月の出席簿",
    "long_absence_records": "長期欠席の理由",
}


@dataclass
class YearPurge:
    school_id: int
    school_code: str
    school_name: str
    year: int
    end_date: datetime.date
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class PurgeReport:
    before_year: int
    dry_run: bool
    years: list[YearPurge] = field(default_factory=list)
    receipts: int = 0
    # PostgreSQL: monthly partitions of marks dropped whole (name, rows).
    dropped_partitions: list[tuple[str, int]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(y.total for y in self.years)


def retention_end(school_year: SchoolYear) -> datetime.date:
    """The last day the year's registers must be kept: five years after the year ends."""
    end = school_year.end_date
    try:
        return end.replace(year=end.year + RETENTION_YEARS)
    except ValueError:  # 29 February
        return end.replace(year=end.year + RETENTION_YEARS, day=28)


def latest_purgeable_before_year(today: datetime.date | None = None) -> int:
    """The `before_year` that purges every year whose retention has ended and nothing else (a school year Y ends
    31 March Y+1 and is kept until 31 March Y+6)."""
    today = today or timezone.localdate()
    # Year Y is purgeable when 31 March (Y + 1 + 5) < today.
    year = today.year - RETENTION_YEARS - 1
    if datetime.date(year + 1 + RETENTION_YEARS, 3, 31) >= today:
        year -= 1
    return year + 1


def _querysets(school_year: SchoolYear) -> list[tuple[str, QuerySet[Any]]]:
    in_year = {"homeroom_class__school_year": school_year}
    # The approval requests point at their register by content type and id, not by a foreign key: resolve the
    # ids before the registers go.
    register_ids = [str(pk) for pk in MonthlyRegister.objects.filter(**in_year).values_list("pk", flat=True)]
    return [
        ("marks", Mark.objects.filter(**in_year)),
        ("period_marks", PeriodMark.objects.filter(**in_year)),
        ("mark_changes", MarkChange.objects.filter(**in_year)),
        # A report of a pupil of this school about a day of this year (the marks pointing at it are gone above).
        ("guardian_reports", GuardianReport.objects.filter(
            student__school_id=school_year.school_id, date__range=(school_year.start_date, school_year.end_date))),
        ("approval_requests", ApprovalRequest.objects.filter(
            content_type=ContentType.objects.get_for_model(MonthlyRegister), object_id__in=register_ids)),
        ("daily_registers", DailyRegister.objects.filter(**in_year)),
        ("monthly_registers", MonthlyRegister.objects.filter(**in_year)),
        ("long_absence_records", LongAbsenceRecord.objects.filter(school_year=school_year)),
    ]


def _partition_cutoff(before_year: int) -> datetime.date:
    """Marks dated before this day belong to purged school years only: the first day of the earliest year kept
    (no later than 1 April of `before_year`). Months ending by then may be dropped whole."""
    april = datetime.date(before_year, 4, 1)
    first_kept = (
        SchoolYear.objects.filter(year__gte=before_year).order_by("start_date")
        .values_list("start_date", flat=True).first()
    )
    return min(first_kept, april) if first_kept else april


def _drop_mark_partitions(before_year: int, actor_user: object, report: PurgeReport) -> None:
    dropped = partitions.partitions_drop_before("attendance_mark", _partition_cutoff(before_year))
    report.dropped_partitions = [(d.name, d.rows) for d in dropped]
    if dropped:
        audit_record(
            actor=actor_user, action="attendance.retention.partitions_dropped", object_type="attendance.mark",
            detail={"before_year": before_year, "partitions": {d.name: d.rows for d in dropped}},
        )


def attendance_purge(*, before_year: int, dry_run: bool = False, actor_user: object = None,
                     today: datetime.date | None = None) -> PurgeReport:
    """Remove the registers of every school year before `before_year` whose retention has ended. Refuses (and
    removes nothing) when a year before `before_year` is still within its five years. Also drops idempotency
    receipts older than a week. Returns what was (or, with dry_run, would be) removed."""
    today = today or timezone.localdate()
    years = list(
        SchoolYear.objects.filter(year__lt=before_year).select_related("school").order_by("school__code", "year")
    )
    kept = [y for y in years if retention_end(y) >= today]
    if kept:
        first = kept[0]
        raise ValidationFailed(
            f"{first.school.name}の{first.year}年度の出席簿は{retention_end(first):%Y年%m月%d日}まで保存期間です。"
            f"--before-year には{latest_purgeable_before_year(today)}以下を指定してください。何も削除していません。"
        )
    report = PurgeReport(before_year=before_year, dry_run=dry_run)
    receipt_cutoff = timezone.now() - datetime.timedelta(days=RECEIPT_DAYS)
    with transaction.atomic():
        plans = []
        for school_year in years:
            entry = YearPurge(school_year.school_id, school_year.school.code, school_year.school.name,
                              school_year.year, school_year.end_date)
            querysets = _querysets(school_year)
            for key, qs in querysets:
                entry.counts[key] = qs.count()
            if entry.total == 0:
                continue
            report.years.append(entry)
            plans.append((school_year, entry, querysets))
        if not dry_run and plans:
            # PostgreSQL: whole months of marks go by DROP of their partition; the DELETEs below find the rest.
            _drop_mark_partitions(before_year, actor_user, report)
        for school_year, entry, querysets in plans:
            if dry_run:
                continue
            for _, qs in querysets:
                qs.delete()
            audit_record(
                actor=actor_user, action="attendance.retention.purged", obj=school_year,
                detail={"school": school_year.school.code, "year": school_year.year, "counts": entry.counts,
                        "kept_until": retention_end(school_year).isoformat()},
                scope=Scope(school_id=school_year.school_id, board_id=school_year.school.board_id),
            )
        receipts = SaveReceipt.objects.filter(created_at__lt=receipt_cutoff)
        report.receipts = receipts.count()
        if not dry_run and report.receipts:
            receipts.delete()
    return report
