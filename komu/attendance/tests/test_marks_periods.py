"""時限ごとの出欠: the derivation of the day's mark from the periods (pure), and period_mark_set."""

from __future__ import annotations

import pytest

from komu.attendance import calendar, periods
from komu.attendance.models import Mark, MarkKind, PeriodMark
from komu.attendance.services import marks
from komu.attendance.services.marks import MarkConflict
from komu.attendance.tests.entry_helpers import _fast_password_hashing, a_school_day, actor  # noqa: F401
from komu.core.errors import NotFoundOrNoAccess, ValidationFailed
from komu.testing.world import World

A, L, E, P = MarkKind.ABSENT, MarkKind.LATE, MarkKind.EARLY_LEAVE, MarkKind.PRESENT


@pytest.mark.parametrize(("day", "expected"), [
    ({}, P),
    ({1: A, 2: A, 3: A, 4: A, 5: A, 6: A}, A),
    ({1: A}, L),
    ({1: A, 2: A}, L),
    ({1: L}, L),
    ({6: A}, E),
    ({5: A, 6: A}, E),
    ({6: E}, E),
    ({1: A, 6: A}, MarkKind.LATE_AND_EARLY),
    ({1: L, 6: E}, MarkKind.LATE_AND_EARLY),
    ({3: A}, P),
    ({2: A, 4: A}, P),
    ({1: P, 2: P}, P),
    ({7: A, 0: A}, P),  # outside the day: ignored
])
def test_the_day_follows_from_the_periods(day: dict[int, str], expected: str) -> None:
    assert periods.derive_daily_kind(day, 6) == expected


def test_a_one_period_day_is_absent_or_attended() -> None:
    assert periods.derive_daily_kind({1: A}, 1) == A
    assert periods.derive_daily_kind({}, 1) == P
    assert periods.derive_daily_kind({1: L}, 1) == L


def test_a_day_needs_at_least_one_period() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        periods.derive_daily_kind({}, 0)


def test_absent_periods_count_only_missed_periods() -> None:
    assert periods.absent_periods({1: A, 2: L, 3: A, 9: A}, 6) == 2


@pytest.fixture
def per_period(world: World) -> World:
    rules = calendar.rules_for(world.school_a)
    rules.per_period = True
    rules.periods_per_day = 6
    rules.save()
    return world


def _period(world: World, period: int, kind: str, base_version: int | None = None) -> PeriodMark:
    return marks.period_mark_set(actor=actor(world, "homeroom_a1"), student_id=world.students["a1_first"].pk,
                                 date=a_school_day(world.class_a1), period=period, kind=kind,
                                 base_version=base_version)


def test_missing_the_first_periods_makes_the_day_late_and_missing_all_makes_it_absent(per_period: World) -> None:
    world = per_period
    day = a_school_day(world.class_a1)
    _period(world, 1, A)
    assert Mark.objects.get(date=day).kind == L
    _period(world, 6, A)
    assert Mark.objects.get(date=day).kind == MarkKind.LATE_AND_EARLY
    for p in (2, 3, 4, 5):
        _period(world, p, A)
    mark = Mark.objects.get(date=day)
    assert mark.kind == A and mark.absence_reason == "other"
    _period(world, 1, P)  # came for the first period only, then went home
    assert Mark.objects.get(date=day).kind == E
    assert PeriodMark.objects.get(period=1).version == 2


def test_periods_never_override_a_suspension(per_period: World) -> None:
    world = per_period
    day = a_school_day(world.class_a1)
    marks.mark_set(actor=actor(world, "homeroom_a1"), student_id=world.students["a1_first"].pk, date=day,
                   kind=MarkKind.SUSPENSION, suspension_kind="infectious", disease="influenza")
    _period(world, 1, A)
    assert Mark.objects.get(date=day).kind == MarkKind.SUSPENSION


def test_a_stale_period_save_is_refused(per_period: World) -> None:
    world = per_period
    _period(world, 2, A, base_version=0)
    with pytest.raises(MarkConflict):
        _period(world, 2, L, base_version=0)


def test_period_recording_needs_the_school_rule_and_a_real_period(world: World) -> None:
    with pytest.raises(ValidationFailed, match="時限ごとの出欠を記録しない設定です"):
        _period(world, 1, A)
    rules = calendar.rules_for(world.school_a)
    rules.per_period = True
    rules.save()
    with pytest.raises(ValidationFailed, match="時限は1〜6で指定してください"):
        _period(world, 7, A)
    with pytest.raises(ValidationFailed, match="出席・欠課・遅刻・早退"):
        _period(world, 1, MarkKind.OFFICIAL)


def test_period_marks_follow_the_recording_scope(per_period: World) -> None:
    world = per_period
    with pytest.raises(NotFoundOrNoAccess):
        marks.period_mark_set(actor=actor(world, "homeroom_a1"), student_id=world.students["a2_first"].pk,
                              date=a_school_day(world.class_a2), period=1, kind=A)
