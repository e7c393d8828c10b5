"""時限ごとの出欠 (high schools): the day's mark follows from the periods by one rule. Pure: no ORM, no clock.

    absent every period                                   → 欠席
    absent (or late to) the first period(s), then present → 遅刻
    present, then absent (or left early from) the last    → 早退
    both of the above                                     → 遅刻・早退
    absent only from periods in the middle of the day     → 出席 (the 欠課 count per period is what counts for
                                                            credits; the day itself was attended)
"""

from __future__ import annotations

from collections.abc import Mapping

from komu.attendance import arithmetic

# What a teacher records for one period. 出席 is stored too (a period set back to present keeps its row, so its
# version only grows and a stale save can always be recognised).
PERIOD_KINDS = (arithmetic.PRESENT, arithmetic.ABSENT, arithmetic.LATE, arithmetic.EARLY_LEAVE)

# Daily kinds that the periods decide. 出席停止, 忌引 and 公欠 are decisions about the whole day: a period grid
# never overrides them.
DERIVED_KINDS = frozenset(
    {arithmetic.PRESENT, arithmetic.ABSENT, arithmetic.LATE, arithmetic.EARLY_LEAVE, arithmetic.LATE_AND_EARLY}
)


def derive_daily_kind(periods: Mapping[int, str], periods_per_day: int) -> str:
    """The day's kind from the periods' kinds (period number → kind; a missing period was attended).

    Periods outside 1..periods_per_day are ignored (a school that shortened its day keeps old rows)."""
    if periods_per_day < 1:
        raise ValueError("periods_per_day must be at least 1")
    kinds = {p: k for p, k in periods.items() if 1 <= p <= periods_per_day}
    attended = [p for p in range(1, periods_per_day + 1) if kinds.get(p) != arithmetic.ABSENT]
    if not attended:
        return arithmetic.ABSENT
    first, last = attended[0], attended[-1]
    late = first > 1 or kinds.get(first) == arithmetic.LATE
    early = last < periods_per_day or kinds.get(last) == arithmetic.EARLY_LEAVE
    if late and early:
        return arithmetic.LATE_AND_EARLY
    if late:
        return arithmetic.LATE
    if early:
        return arithmetic.EARLY_LEAVE
    return arithmetic.PRESENT


def absent_periods(periods: Mapping[int, str], periods_per_day: int) -> int:
    """欠課時数 of the day: periods missed (absent). Late and early leave are attended periods."""
    return sum(1 for p, k in periods.items() if 1 <= p <= periods_per_day and k == arithmetic.ABSENT)
