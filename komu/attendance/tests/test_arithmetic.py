"""The 出欠の記録 arithmetic, category by category and rule by rule (domain.md §3)."""

from __future__ import annotations

import datetime

from hypothesis import given
from hypothesis import strategies as st

from komu.attendance.arithmetic import (
    ABSENT,
    EARLY_LEAVE,
    LATE,
    LATE_AND_EARLY,
    MOURNING,
    OFFICIAL,
    SUSPENSION,
    DayMark,
    Rules,
    consecutive_absences,
    totals_for,
)

D = datetime.date
APRIL = [D(2026, 4, d) for d in (6, 7, 8, 9, 10, 13, 14, 15, 16, 17)]  # ten school days


def test_a_pupil_with_no_marks_was_present_every_day() -> None:
    t = totals_for(APRIL, {}, Rules())
    assert (t.lesson_days, t.excused_days, t.required_days, t.absent_days, t.present_days) == (10, 0, 10, 0, 10)


def test_absences_count_by_reason_within_the_required_days() -> None:
    marks = {APRIL[0]: DayMark(ABSENT, "illness"), APRIL[1]: DayMark(ABSENT, "accident"),
             APRIL[2]: DayMark(ABSENT, "other")}
    t = totals_for(APRIL, marks, Rules())
    assert t.absent_days == 3
    assert t.absent_by_reason == {"illness": 1, "accident": 1, "other": 1}
    assert t.present_days == 7


def test_suspension_and_mourning_reduce_the_required_days_not_attendance() -> None:
    marks = {APRIL[0]: DayMark(SUSPENSION), APRIL[1]: DayMark(SUSPENSION), APRIL[5]: DayMark(MOURNING, kinship_degree=1)}
    t = totals_for(APRIL, marks, Rules())
    assert t.excused_days == 3
    assert t.required_days == 7
    assert t.present_days == 7
    assert (t.suspension_days, t.mourning_days) == (2, 1)


def test_class_closure_days_are_excused_whatever_the_pupils_mark() -> None:
    marks = {APRIL[3]: DayMark(ABSENT, "illness")}
    t = totals_for(APRIL, marks, Rules(), closure_days=[APRIL[3], APRIL[4]])
    assert (t.closure_days, t.excused_days, t.absent_days, t.required_days, t.present_days) == (2, 2, 0, 8, 8)


def test_late_and_early_leave_are_present_for_the_day_count() -> None:
    marks = {APRIL[0]: DayMark(LATE), APRIL[1]: DayMark(EARLY_LEAVE), APRIL[2]: DayMark(LATE_AND_EARLY)}
    t = totals_for(APRIL, marks, Rules())
    assert (t.late, t.early_leave, t.present_days) == (2, 2, 10)


def test_official_absence_counts_as_present_by_default() -> None:
    t = totals_for(APRIL, {APRIL[0]: DayMark(OFFICIAL)}, Rules())
    assert (t.official_days, t.excused_days, t.present_days) == (1, 0, 10)


def test_a_school_may_count_official_absence_as_excused_instead() -> None:
    t = totals_for(APRIL, {APRIL[0]: DayMark(OFFICIAL)}, Rules(official_counts_as_present=False))
    assert (t.excused_days, t.required_days, t.present_days) == (1, 9, 9)


def test_six_lates_make_one_absence_where_the_school_says_so() -> None:
    marks = {day: DayMark(LATE) for day in APRIL[:6]} | {APRIL[6]: DayMark(EARLY_LEAVE)}
    t = totals_for(APRIL, marks, Rules(lates_per_absence=6))
    assert (t.late, t.early_leave, t.absent_from_lates, t.absent_days, t.present_days) == (6, 1, 1, 1, 9)
    assert totals_for(APRIL, marks, Rules()).absent_days == 0


def test_mourning_beyond_the_kinship_limit_is_an_absence() -> None:
    # Grandparent (2親等): 3 calendar days from the first day of mourning.
    marks = {day: DayMark(MOURNING, kinship_degree=2) for day in APRIL[:5]}  # Mon 6 – Fri 10
    t = totals_for(APRIL, marks, Rules())
    assert t.mourning_days == 3  # 6, 7, 8
    assert t.excused_days == 3
    assert t.absent_by_reason["other"] == 2  # 9, 10
    assert t.present_days == 5


def test_mourning_limit_counts_calendar_days_across_a_weekend() -> None:
    days = [APRIL[4], APRIL[5]]  # Fri 10, Mon 13
    marks = {day: DayMark(MOURNING, kinship_degree=2) for day in days}
    t = totals_for(days, marks, Rules())
    assert t.mourning_days == 1  # Monday is day 4 of a 3-day limit
    assert t.absent_days == 1


def test_suspension_not_excused_by_the_school_counts_as_absence() -> None:
    t = totals_for(APRIL, {APRIL[0]: DayMark(SUSPENSION)}, Rules(excused_kinds=frozenset({MOURNING})))
    assert (t.excused_days, t.absent_days) == (0, 1)


def test_marks_on_days_that_are_not_school_days_are_ignored() -> None:
    t = totals_for(APRIL, {D(2026, 4, 11): DayMark(ABSENT, "illness")}, Rules())
    assert t.absent_days == 0


def test_months_add_up_to_the_year() -> None:
    may = [D(2026, 5, d) for d in (7, 8, 11)]
    a = totals_for(APRIL, {APRIL[0]: DayMark(ABSENT, "illness")}, Rules())
    b = totals_for(may, {may[0]: DayMark(LATE)}, Rules())
    year = totals_for(APRIL + may, {APRIL[0]: DayMark(ABSENT, "illness"), may[0]: DayMark(LATE)}, Rules())
    assert (a + b).present_days == year.present_days
    assert (a + b).absent_by_reason == year.absent_by_reason


def test_consecutive_absences_end_on_the_last_day() -> None:
    marks = {day: DayMark(ABSENT, "illness") for day in APRIL[6:]}
    assert consecutive_absences(APRIL, marks) == 4
    assert consecutive_absences(APRIL[:6], marks) == 0


KINDS = st.sampled_from([ABSENT, LATE, EARLY_LEAVE, LATE_AND_EARLY, SUSPENSION, MOURNING, OFFICIAL, "present"])


@given(
    st.dictionaries(st.sampled_from(APRIL), st.tuples(KINDS, st.sampled_from(["illness", "accident", "other"]),
                                                        st.integers(1, 3))),
    st.integers(0, 6),
    st.booleans(),
)
def test_the_identities_of_the_record_always_hold(raw: dict, lates_per_absence: int, official_present: bool) -> None:
    marks = {day: DayMark(kind, reason if kind == ABSENT else "", degree) for day, (kind, reason, degree) in raw.items()}
    t = totals_for(APRIL, marks, Rules(lates_per_absence=lates_per_absence,
                                       official_counts_as_present=official_present))
    assert t.required_days == t.lesson_days - t.excused_days
    assert t.present_days == t.required_days - t.absent_days
    assert 0 <= t.present_days <= t.required_days <= t.lesson_days
    assert sum(t.absent_by_reason.values()) + t.absent_from_lates == t.absent_days
