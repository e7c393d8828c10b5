"""Measuring the indicators of komu.progress.indicators for one local school and month, from actual use.

Counts only: every query here aggregates (COUNT, or the times of acknowledged notices); nothing personal is read
or kept. Each function answers (numerator, denominator, value) or None when the source cannot say anything for
that month (the indicator then stays 未計測 for the school). Adding an indicator: add it to indicators.py and a
function to MEASURES here.
"""

from __future__ import annotations

import datetime
import statistics
from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.db.models import F, Q
from django.utils import timezone

from komu.directory.models import HomeroomClass, School, StaffAssignment

Figure = tuple[int, int, float | None]

# Audit action codes of personal-data documents leaving the system (printed or exported). Kept in step with
# the services that record them (komu.students exports, komu.attendance PDFs).
OUTPUT_ACTIONS = ("students.export.created", "attendance.register.printed", "attendance.annual_record.printed")


def month_bounds(month: datetime.date) -> tuple[datetime.date, datetime.date]:
    first = month.replace(day=1)
    nxt = (first + datetime.timedelta(days=32)).replace(day=1)
    return first, nxt


def _aware_bounds(month: datetime.date) -> tuple[datetime.datetime, datetime.datetime]:
    first, nxt = month_bounds(month)
    tz = timezone.get_current_timezone()
    return (datetime.datetime.combine(first, datetime.time.min, tzinfo=tz),
            datetime.datetime.combine(nxt, datetime.time.min, tzinfo=tz))


def comm_digital(school: School, month: datetime.date) -> Figure | None:
    from komu.notices.selectors import komu_send_counts, paper_send_counts

    komu = komu_send_counts(school_id=school.pk, month=month)["total"]
    paper = paper_send_counts(school_id=school.pk, month=month)["total"]
    return komu, komu + paper, None


def _paper(category: str) -> Callable[[School, datetime.date], Figure | None]:
    def measure(school: School, month: datetime.date) -> Figure | None:
        from komu.notices.selectors import paper_send_counts

        return paper_send_counts(school_id=school.pk, month=month).get(category, 0), 1, None

    return measure


def notice_ack_hours(school: School, month: datetime.date) -> Figure | None:
    from komu.notices.models import NoticeRecipient

    start, end = _aware_bounds(month)
    rows = NoticeRecipient.objects.filter(school=school, delivered_at__gte=start, delivered_at__lt=end,
                                          notice__ack_required=True)
    delivered = rows.count()
    hours = [(ack - sent).total_seconds() / 3600
             for sent, ack in rows.filter(acknowledged_at__isnull=False).values_list("delivered_at",
                                                                                     "acknowledged_at")
             if ack is not None]
    if not hours:
        return 0, delivered, None
    return len(hours), delivered, round(statistics.median(hours), 2)


def survey_on_time(school: School, month: datetime.date) -> Figure | None:
    from komu.surveys.models import SurveyAnswer

    start, end = _aware_bounds(month)
    now = timezone.now()
    answers = SurveyAnswer.objects.filter(school=school, survey__deadline__gte=start, survey__deadline__lt=end,
                                          survey__published_at__isnull=False)
    # An answer whose deadline has not passed yet and that is not in is neither on time nor late.
    counted = answers.filter(Q(survey__deadline__lt=now) | Q(submitted_at__isnull=False))
    total = counted.count()
    on_time = counted.filter(submitted_at__isnull=False,
                             submitted_at__lte=F("survey__deadline")).count()
    return on_time, total, None


def registers_electronic(school: School, month: datetime.date) -> Figure | None:
    from komu.attendance.models import MonthlyRegister

    first, nxt = month_bounds(month)
    if nxt > timezone.localdate():
        return None  # a month's register is submitted after the month ends: 未計測 until then
    classes = HomeroomClass.objects.filter(school_year__school=school, school_year__start_date__lte=first,
                                           school_year__end_date__gte=first)
    total = classes.count()
    approved = MonthlyRegister.objects.filter(
        homeroom_class__in=classes, year=first.year, month=first.month,
        status__in=[MonthlyRegister.Status.APPROVED, MonthlyRegister.Status.AMENDED, MonthlyRegister.Status.LOCKED],
    ).count()
    return approved, total, None


def rosters_as_data(school: School, month: datetime.date) -> Figure | None:
    from komu.rosters.models import RosterEntry
    from komu.students.models import EnrollmentEvent, EnrollmentKind

    first, nxt = month_bounds(month)
    admitted = EnrollmentEvent.objects.filter(student__school=school, kind=EnrollmentKind.ADMISSION,
                                              date__gte=first, date__lt=nxt).values("student_id")
    total = admitted.count()
    as_data = RosterEntry.objects.filter(state=RosterEntry.State.ACCEPTED, student_id__in=admitted).count()
    return as_data, total, None


def absence_digital(school: School, month: datetime.date) -> Figure | None:
    from komu.attendance.models import Mark, MarkSource

    first, nxt = month_bounds(month)
    marks = Mark.objects.filter(homeroom_class__school_year__school=school, date__gte=first, date__lt=nxt)
    app = marks.filter(source=MarkSource.GUARDIAN).count()
    phone = marks.filter(source=MarkSource.PHONE).count()
    return app, app + phone, None


def letters_digital(school: School, month: datetime.date) -> Figure | None:
    from komu.notices.selectors import komu_send_counts, paper_send_counts

    letters = komu_send_counts(school_id=school.pk, month=month)["letters"]
    paper = paper_send_counts(school_id=school.pk, month=month).get("guardian", 0)
    return letters, letters + paper, None


def staff_mfa(school: School, month: datetime.date) -> Figure | None:
    from django_otp.plugins.otp_totp.models import TOTPDevice
    from django_otp_webauthn.models import WebAuthnCredential

    first, nxt = month_bounds(month)
    today = timezone.localdate()
    if not first <= today < nxt:
        return None  # enrolment is a state, not a history: only the current month can be measured
    staff = StaffAssignment.objects.filter(school=school).filter(
        Q(start_date__isnull=True) | Q(start_date__lte=today)).filter(
        Q(end_date__isnull=True) | Q(end_date__gte=today)).values("user_id")
    users = get_user_model().objects.filter(pk__in=staff, is_active=True)
    total = users.count()
    enrolled = users.filter(
        Q(pk__in=TOTPDevice.objects.filter(confirmed=True).values("user_id"))
        | Q(pk__in=WebAuthnCredential.objects.filter(confirmed=True).values("user_id"))
    ).count()
    return enrolled, total, None


def personal_data_outputs(school: School, month: datetime.date) -> Figure | None:
    from komu.audit.models import AuditEvent

    start, end = _aware_bounds(month)
    n = AuditEvent.objects.filter(school_id=school.pk, action__in=OUTPUT_ACTIONS, occurred_at__gte=start,
                                  occurred_at__lt=end).count()
    return n, 1, None


MEASURES: dict[str, Callable[[School, datetime.date], Figure | None]] = {
    "comm_digital": comm_digital,
    **{f"paper_{code}": _paper(code) for code in
       ("lunch_centre", "private", "government", "guardian", "other")},
    "notice_ack_hours": notice_ack_hours,
    "survey_on_time": survey_on_time,
    "registers_electronic": registers_electronic,
    "rosters_as_data": rosters_as_data,
    "absence_digital": absence_digital,
    "letters_digital": letters_digital,
    "staff_mfa": staff_mfa,
    "personal_data_outputs": personal_data_outputs,
}


def measure_school(school: School, month: datetime.date) -> dict[str, Figure]:
    out: dict[str, Figure] = {}
    for code, fn in MEASURES.items():
        figure = fn(school, month)
        if figure is not None:
            out[code] = figure
    return out
