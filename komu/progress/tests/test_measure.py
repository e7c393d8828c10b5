from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from komu.audit.models import AuditEvent
from komu.notices.models import PaperSend
from komu.progress import services
from komu.progress.models import IndicatorValue, Rollup
from komu.progress.tests.conftest import act, put_value
from komu.testing.world import World

pytestmark = pytest.mark.django_db


def _this_month() -> datetime.date:
    return timezone.localdate().replace(day=1)


def test_measuring_counts_paper_sends_and_mfa_of_each_school(world: World) -> None:
    month = _this_month()
    PaperSend.objects.create(school=world.school_a, channel="fax", counterparty="private", document_kind="発注書",
                             sent_on=timezone.localdate(), recorded_by=world.user("school_admin_a"))
    services.indicators_measure(actor=None, month=month)
    comm = IndicatorValue.objects.get(school_code=world.school_a.code, month=month, indicator="comm_digital")
    assert (comm.numerator, comm.denominator) == (0, 1)
    private = IndicatorValue.objects.get(school_code=world.school_a.code, month=month, indicator="paper_private")
    assert private.numerator == 1
    mfa = IndicatorValue.objects.get(school_code=world.school_a.code, month=month, indicator="staff_mfa")
    # Every persona of the world has a TOTP device: all school_a staff are enrolled.
    assert mfa.numerator == mfa.denominator > 0
    nation = Rollup.objects.get(level="nation", key="JP", month=month, indicator="paper_private")
    assert (nation.numerator, nation.schools) == (1, 3)
    assert AuditEvent.objects.filter(action="progress.indicators.measured").exists()


def test_mfa_is_not_measured_for_a_past_month(world: World) -> None:
    past = (_this_month() - datetime.timedelta(days=1)).replace(day=1)
    services.indicators_measure(actor=None, month=past)
    assert not IndicatorValue.objects.filter(month=past, indicator="staff_mfa").exists()
    assert IndicatorValue.objects.filter(month=past, indicator="comm_digital").exists()


def test_a_future_month_is_refused(world: World) -> None:
    future = (_this_month() + datetime.timedelta(days=40)).replace(day=1)
    with pytest.raises(services.ValidationFailed):
        services.indicators_measure(actor=None, month=future)


def test_only_the_operator_may_start_a_measurement(world: World) -> None:
    with pytest.raises(services.PermissionDeniedError):
        services.indicators_measure(actor=act(world, "principal_a"), month=_this_month())
    assert services.indicators_measure(actor=act(world, "operator"), month=_this_month()) > 0


def test_rollups_sum_numerators_and_weight_medians(world: World) -> None:
    month = datetime.date(2026, 9, 1)
    put_value(world.school_a, month, "comm_digital", 3, 4)
    put_value(world.school_a2, month, "comm_digital", 1, 6)
    put_value(world.school_b, month, "comm_digital", 5, 10)
    put_value(world.school_a, month, "notice_ack_hours", 2, 2, 10.0)
    put_value(world.school_b, month, "notice_ack_hours", 6, 6, 2.0)
    services.rollups_refresh(months=[month])
    board_a = Rollup.objects.get(level="board", key=world.board_a.code, month=month, indicator="comm_digital")
    assert (board_a.numerator, board_a.denominator, board_a.schools) == (4, 10, 2)
    pref = Rollup.objects.get(level="prefecture", key="13", month=month, indicator="comm_digital")
    assert (pref.numerator, pref.denominator) == (9, 20)
    ack = Rollup.objects.get(level="nation", key="JP", month=month, indicator="notice_ack_hours")
    assert ack.weighted_value / ack.weight == pytest.approx((2 * 10 + 6 * 2) / 8)


def test_refreshing_one_month_leaves_the_others_alone(world: World) -> None:
    sept, octo = datetime.date(2026, 9, 1), datetime.date(2026, 10, 1)
    put_value(world.school_a, sept, "comm_digital", 1, 2)
    put_value(world.school_a, octo, "comm_digital", 2, 2)
    services.rollups_refresh(months=[sept, octo])
    put_value(world.school_a, octo, "comm_digital", 0, 2)
    services.rollups_refresh(months=[octo])
    assert Rollup.objects.get(level="nation", month=sept, indicator="comm_digital").numerator == 1
    assert Rollup.objects.get(level="nation", month=octo, indicator="comm_digital").numerator == 0


def test_absence_reports_count_app_against_phone(world: World) -> None:
    from komu.attendance.models import Mark, MarkSource

    today = timezone.localdate()
    teacher = world.user("homeroom_a1")
    for key, source in (("a1_first", MarkSource.GUARDIAN), ("a1_second", MarkSource.PHONE)):
        mark = Mark(student=world.students[key], homeroom_class=world.class_a1, date=today, kind="absent",
                    absence_reason="illness", source=source, updated_by=teacher)
        mark.save()
    services.indicators_measure(actor=None, month=_this_month())
    value = IndicatorValue.objects.get(school_code=world.school_a.code, month=_this_month(),
                                       indicator="absence_digital")
    assert (value.numerator, value.denominator) == (1, 2)


def test_a_board_officer_measures_its_own_schools_only(world: World) -> None:
    services.indicators_measure_own(actor=act(world, "board_officer_a"))
    measured = set(IndicatorValue.objects.values_list("school_code", flat=True))
    assert measured == {world.school_a.code, world.school_a2.code}
    with pytest.raises(services.PermissionDeniedError):
        services.indicators_measure_own(actor=act(world, "national_analyst"))


def test_registers_are_measured_once_the_month_is_over(world: World) -> None:
    from komu.attendance.models import MonthlyRegister

    if _this_month().month == 4:
        pytest.skip("in April the previous month belongs to last 年度, which the world has no classes for")
    services.indicators_measure(actor=None, month=_this_month())
    assert not IndicatorValue.objects.filter(month=_this_month(), indicator="registers_electronic").exists()
    previous = (_this_month() - datetime.timedelta(days=1)).replace(day=1)
    MonthlyRegister.objects.create(homeroom_class=world.class_a1, year=previous.year, month=previous.month,
                                   status=MonthlyRegister.Status.APPROVED)
    services.indicators_measure_own(actor=act(world, "principal_a"))
    value = IndicatorValue.objects.get(school_code=world.school_a.code, month=previous,
                                       indicator="registers_electronic")
    assert (value.numerator, value.denominator) == (1, 2)  # 1組 approved of the school's two classes
