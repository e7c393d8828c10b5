"""Run by test_faults.py in a process of its own against the test's PostgreSQL: `session USERNAME` signs the demo
homeroom teacher in (password and second factor, as login_verified does) and prints the session cookie, a pupil
of the class without a mark on a past school day, and the row URL the morning-entry screen posts to."""

from __future__ import annotations

import json
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "komu.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402


def session(username: str) -> None:
    from komu.accounts.models import User
    from komu.attendance import calendar
    from komu.attendance.models import Mark, MarkChange
    from komu.directory.models import StaffAssignment
    from komu.students.models import ClassMembership
    from komu.testing.world import login_verified

    user = User.objects.get(username=username)
    assignment = StaffAssignment.objects.filter(user=user, homeroom_class__isnull=False).select_related(
        "homeroom_class__school_year").first()
    assert assignment is not None and assignment.homeroom_class is not None
    klass = assignment.homeroom_class
    today = timezone.localdate()
    days = [d for d in calendar.school_days(klass.school_year, klass.school_year.start_date, today) if d < today]
    day = days[-3]
    taken = set(Mark.objects.filter(homeroom_class=klass, date=day).values_list("student_id", flat=True))
    taken |= set(MarkChange.objects.filter(homeroom_class=klass, date=day).values_list("student_id", flat=True))
    membership = next(m for m in ClassMembership.objects.filter(homeroom_class=klass).order_by("shusseki_no")
                      if m.student_id not in taken)
    client = Client()
    login_verified(client, user)
    register = reverse("attendance:register", args=[klass.pk, day])
    page = client.get(register)
    assert page.status_code == 200, page.status_code
    print(json.dumps({
        "sessionid": client.cookies[settings.SESSION_COOKIE_NAME].value,
        "register": register,
        "row": reverse("attendance:row", args=[klass.pk, day, membership.student_id]),
        "student_id": str(membership.student_id),
        "day": day.isoformat(),
    }))


if __name__ == "__main__":
    {"session": session}[sys.argv[1]](*sys.argv[2:])
