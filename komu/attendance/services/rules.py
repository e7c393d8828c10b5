"""Each school's attendance rules (domain.md §3: local rules vary and must be configurable per school).

The rules that change the arithmetic (公欠, the 遅刻/早退 conversion, 忌引 limits, what counts as 出席停止・忌引等,
the weekdays that are 授業日) apply to every month of the year, including months already sealed; so they can be
changed only while no register of the current year has been submitted. The cut-off time of guardian reports and
per-period recording can change at any time.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from komu.access.scope import Actor
from komu.attendance import calendar
from komu.attendance.models import AttendanceRules, MarkKind, MonthlyRegister
from komu.attendance.services.calendar import manageable_school
from komu.audit.services import Scope, audit_record
from komu.core.errors import ValidationFailed

MAX_LATES_PER_ABSENCE = 30
MAX_BEREAVEMENT_DAYS = 30
MAX_PERIODS = 10
KINSHIP_DEGREES = (1, 2, 3)
# The kinds a school may count as 出席停止・忌引等 (公欠 has its own switch).
EXCUSABLE_KINDS = (MarkKind.SUSPENSION, MarkKind.MOURNING)
# Fields whose change alters the totals of months already computed.
ARITHMETIC_FIELDS = ("official_absence_counts_as_present", "lates_per_absence", "bereavement_limits",
                     "excused_kinds", "weekdays")


@dataclass
class RulesInput:
    official_absence_counts_as_present: bool = True
    lates_per_absence: int = 0
    bereavement_limits: dict[int, int] = field(default_factory=lambda: {1: 7, 2: 3, 3: 1})
    excused_kinds: list[str] = field(default_factory=lambda: [MarkKind.SUSPENSION, MarkKind.MOURNING])
    weekdays: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    report_cutoff: datetime.time = datetime.time(8, 0)
    per_period: bool = False
    periods_per_day: int = 6


def rules_input_of(rules: AttendanceRules) -> RulesInput:
    """The stored rules as a form's initial values."""
    return RulesInput(
        official_absence_counts_as_present=rules.official_absence_counts_as_present,
        lates_per_absence=rules.lates_per_absence,
        bereavement_limits={int(k): int(v) for k, v in dict(rules.bereavement_limits).items()},
        excused_kinds=[str(k) for k in rules.excused_kinds],
        weekdays=sorted(int(d) for d in rules.weekdays),
        report_cutoff=rules.report_cutoff,
        per_period=rules.per_period,
        periods_per_day=rules.periods_per_day,
    )


def _clean(data: RulesInput) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    if not 0 <= data.lates_per_absence <= MAX_LATES_PER_ABSENCE:
        errors["lates_per_absence"] = [
            f"遅刻・早退の換算は0（換算しない）から{MAX_LATES_PER_ABSENCE}までの数で入力してください。"
        ]
    limits: dict[str, int] = {}
    for degree in KINSHIP_DEGREES:
        days = data.bereavement_limits.get(degree)
        if days is None or not 0 <= days <= MAX_BEREAVEMENT_DAYS:
            errors.setdefault(f"bereavement_{degree}", []).append(
                f"{degree}親等の忌引の日数を0〜{MAX_BEREAVEMENT_DAYS}日で入力してください。"
            )
        else:
            limits[str(degree)] = days
    unknown_degrees = set(data.bereavement_limits) - set(KINSHIP_DEGREES)
    if unknown_degrees:
        errors.setdefault("bereavement_1", []).append("忌引の日数は1〜3親等について指定してください。")
    if any(k not in EXCUSABLE_KINDS for k in data.excused_kinds):
        errors["excused_kinds"] = ["出席停止・忌引等に数える区分は「出席停止」「忌引」から選んでください。"]
    weekdays = sorted(set(data.weekdays))
    if not weekdays or any(not 0 <= d <= 6 for d in weekdays):
        errors["weekdays"] = ["授業を行う曜日を1つ以上選んでください。"]
    if not 1 <= data.periods_per_day <= MAX_PERIODS:
        errors["periods_per_day"] = [f"1日の時限数は1〜{MAX_PERIODS}で入力してください。"]
    if errors:
        raise ValidationFailed(next(iter(errors.values()))[0], errors=errors)
    return {
        "official_absence_counts_as_present": data.official_absence_counts_as_present,
        "lates_per_absence": data.lates_per_absence,
        "bereavement_limits": limits,
        "excused_kinds": [k for k in EXCUSABLE_KINDS if k in data.excused_kinds],
        "weekdays": weekdays,
        "report_cutoff": data.report_cutoff.replace(second=0, microsecond=0),
        "per_period": data.per_period,
        "periods_per_day": data.periods_per_day,
    }


def _registers_frozen(rules: AttendanceRules) -> bool:
    today = timezone.localdate()
    return MonthlyRegister.objects.filter(
        homeroom_class__school_year__school=rules.school,
        homeroom_class__school_year__end_date__gte=today,
    ).exclude(status=MonthlyRegister.Status.OPEN).exists()


@transaction.atomic
def attendance_rules_update(*, actor: Actor, school_id: int | str, data: RulesInput) -> AttendanceRules:
    """Change the school's rules. Refused for the arithmetic while a register of this year has been submitted
    (ValidationFailed says what to do)."""
    school = manageable_school(actor, school_id)
    values = _clean(data)
    rules = calendar.rules_for(school)
    rules = AttendanceRules.objects.select_for_update().get(pk=rules.pk)
    changed = {name: value for name, value in values.items() if getattr(rules, name) != value}
    if not changed:
        return rules
    frozen_change = [name for name in changed if name in ARITHMETIC_FIELDS]
    if frozen_change and _registers_frozen(rules):
        raise ValidationFailed(
            "今年度の出席簿が既に提出・承認されているため、集計に関わる規則（公欠・遅刻の換算・忌引の日数・"
            "出席停止・忌引等の区分・授業の曜日）は変更できません。年度の初め、出席簿の提出前に変更してください。"
        )
    old = {name: _plain(getattr(rules, name)) for name in changed}
    for name, value in changed.items():
        setattr(rules, name, value)
    rules.full_clean(exclude=["school"], validate_constraints=False)
    rules.save()
    audit_record(
        actor=actor.user, action="attendance.rules.updated", obj=rules, fields=sorted(changed),
        detail={"old": old, "new": {name: _plain(value) for name, value in changed.items()}},
        scope=Scope(school_id=school.pk, board_id=school.board_id),
    )
    return rules


def _plain(value: Any) -> Any:
    if isinstance(value, datetime.time):
        return value.strftime("%H:%M")
    return value
