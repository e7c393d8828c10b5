"""The arithmetic of the 指導要録 出欠の記録 (domain.md §3). Pure functions: no ORM, no dates from the clock.

    授業日数                 = school days in the period
    出席停止・忌引等の日数   = days of 出席停止, 忌引 (within the kinship limit), 学級閉鎖, and other kinds the school
                               counts as excused (and 公欠 when the school does not count it as present)
    出席しなければならない日数 = 授業日数 − 出席停止・忌引等の日数
    欠席日数                 = absences within the required days (病気 + 事故 + その他), plus the school's
                               "N 遅刻/早退 = 1 欠席" conversion when it has one
    出席日数                 = 出席しなければならない日数 − 欠席日数
    遅刻, 早退               counted separately; a 遅刻 or 早退 is present for the day count.

Local rules (公欠 as present, the conversion, bereavement limits, which kinds are excused) come in `Rules`.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

PRESENT = "present"
ABSENT = "absent"
LATE = "late"
EARLY_LEAVE = "early_leave"
LATE_AND_EARLY = "late_early"
SUSPENSION = "suspension"
MOURNING = "mourning"
OFFICIAL = "official"

REASONS = ("illness", "accident", "other")


@dataclass(frozen=True)
class DayMark:
    kind: str
    absence_reason: str = ""
    kinship_degree: int | None = None


@dataclass(frozen=True)
class Rules:
    official_counts_as_present: bool = True
    lates_per_absence: int = 0
    excused_kinds: frozenset[str] = frozenset({SUSPENSION, MOURNING})
    # 親等 → days of 忌引, counted in calendar days from the first day of mourning (holidays included).
    bereavement_limits: Mapping[int, int] = field(default_factory=lambda: {1: 7, 2: 3, 3: 1})


@dataclass
class Totals:
    lesson_days: int = 0
    excused_days: int = 0
    absent_days: int = 0
    absent_by_reason: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    absent_from_lates: int = 0
    late: int = 0
    early_leave: int = 0
    suspension_days: int = 0
    mourning_days: int = 0
    closure_days: int = 0
    official_days: int = 0

    @property
    def required_days(self) -> int:
        return self.lesson_days - self.excused_days

    @property
    def present_days(self) -> int:
        return self.required_days - self.absent_days

    def __add__(self, other: Totals) -> Totals:
        return Totals(
            lesson_days=self.lesson_days + other.lesson_days,
            excused_days=self.excused_days + other.excused_days,
            absent_days=self.absent_days + other.absent_days,
            absent_by_reason={r: self.absent_by_reason[r] + other.absent_by_reason[r] for r in REASONS},
            absent_from_lates=self.absent_from_lates + other.absent_from_lates,
            late=self.late + other.late,
            early_leave=self.early_leave + other.early_leave,
            suspension_days=self.suspension_days + other.suspension_days,
            mourning_days=self.mourning_days + other.mourning_days,
            closure_days=self.closure_days + other.closure_days,
            official_days=self.official_days + other.official_days,
        )


def _mourning_excused(days: list[datetime.date], marks: Mapping[datetime.date, DayMark], rules: Rules) -> set[
        datetime.date]:
    """Mourning days within the kinship limit. A run starts at the first mourning day after a non-mourning day;
    a degree without a configured limit has no limit."""
    excused: set[datetime.date] = set()
    run_start: datetime.date | None = None
    for day in days:
        mark = marks.get(day)
        if mark is None or mark.kind != MOURNING:
            run_start = None
            continue
        if run_start is None:
            run_start = day
        limit = rules.bereavement_limits.get(mark.kinship_degree or 0)
        if limit is None or (day - run_start).days < limit:
            excused.add(day)
    return excused


def totals_for(
    school_days: Iterable[datetime.date],
    marks: Mapping[datetime.date, DayMark],
    rules: Rules,
    closure_days: Iterable[datetime.date] = (),
) -> Totals:
    """Totals for one pupil over a period. `school_days` are the pupil's 授業日 in the period (days enrolled in the
    class); `closure_days` the class's 学級閉鎖 days. Marks on days that are not school days are ignored."""
    days = sorted(set(school_days))
    closed = set(closure_days)
    mourning_ok = _mourning_excused(days, marks, rules)
    t = Totals(lesson_days=len(days))
    for day in days:
        if day in closed:
            t.closure_days += 1
            t.excused_days += 1
            continue
        mark = marks.get(day)
        kind = mark.kind if mark else PRESENT
        if kind == MOURNING:
            if day in mourning_ok:
                t.mourning_days += 1
                if MOURNING in rules.excused_kinds:
                    t.excused_days += 1
                    continue
            # Beyond the limit (or not excused by the school): an absence for other reasons.
            t.absent_days += 1
            t.absent_by_reason["other"] += 1
        elif kind == SUSPENSION:
            t.suspension_days += 1
            if SUSPENSION in rules.excused_kinds:
                t.excused_days += 1
            else:
                t.absent_days += 1
                t.absent_by_reason["other"] += 1
        elif kind == OFFICIAL:
            t.official_days += 1
            if not rules.official_counts_as_present:
                t.excused_days += 1
        elif kind == ABSENT:
            reason = mark.absence_reason if mark and mark.absence_reason in REASONS else "other"
            t.absent_days += 1
            t.absent_by_reason[reason] += 1
        elif kind == LATE:
            t.late += 1
        elif kind == EARLY_LEAVE:
            t.early_leave += 1
        elif kind == LATE_AND_EARLY:
            t.late += 1
            t.early_leave += 1
        elif kind in rules.excused_kinds:
            t.excused_days += 1
    if rules.lates_per_absence > 0:
        converted = (t.late + t.early_leave) // rules.lates_per_absence
        # Never more absences than required days that were counted present.
        converted = min(converted, t.required_days - t.absent_days)
        t.absent_from_lates = converted
        t.absent_days += converted
    return t


def consecutive_absences(days: Iterable[datetime.date], marks: Mapping[datetime.date, DayMark]) -> int:
    """The run of 欠席 ending on the last school day given (for the 3- and 7-day alerts)."""
    run = 0
    for day in sorted(days, reverse=True):
        mark = marks.get(day)
        if mark is not None and mark.kind == ABSENT:
            run += 1
        else:
            break
    return run
