"""The chaperone's phone page (komu.trips): a 40-pupil trip, each pupil with a guardian and two emergency
contacts and some released health notes. Measured: the page as a phone gets it (middleware, session, MFA check,
window and revocation check, decryption, audit event, template) and its size in bytes — beside a baseline in the
same run: decrypting the same rows with plain ORM queries and no check, audit or template.

`KOMU_BENCH_TRIP_PUPILS` changes the number of pupils (default 40).
"""

from __future__ import annotations

import datetime
import gzip
import os
from typing import Any

from django.utils import timezone

from bench.timing import best_of


def _world(n: int) -> tuple[Any, Any]:
    from komu.accounts.models import User
    from komu.core.codes import make_school_code
    from komu.core.wareki import fiscal_year_bounds, fiscal_year_of
    from komu.directory.models import (
        Board,
        HomeroomClass,
        Prefecture,
        Role,
        School,
        SchoolYear,
        StaffAssignment,
    )
    from komu.students.models import ClassMembership, EmergencyContact, Guardian, GuardianLink, Student
    from komu.trips.models import Trip, TripChaperone, TripHealthRelease, TripParticipant

    prefecture = Prefecture.objects.get(code="27")
    board, _ = Board.objects.get_or_create(code="279903", defaults={
        "name": "ベンチ町教育委員会", "kind": Board.Kind.MUNICIPAL, "prefecture": prefecture})
    school, _ = School.objects.get_or_create(
        code=make_school_code("B1", "27", "2", "9100001"),
        defaults={"name": "ベンチ町立旅行小学校", "school_type": "B1", "board": board, "prefecture": prefecture})
    year = fiscal_year_of(timezone.localdate())
    start, end = fiscal_year_bounds(year)
    school_year, _ = SchoolYear.objects.get_or_create(school=school, year=year,
                                                      defaults={"start_date": start, "end_date": end})
    klass, _ = HomeroomClass.objects.get_or_create(school_year=school_year, grade_code="P6", name="1組")
    teacher, created = User.objects.get_or_create(username="bench-trip-teacher", defaults={"display_name": "引率"})
    if created:
        StaffAssignment.objects.create(user=teacher, role=Role.TEACHER, school=school)
    now = timezone.now()
    trip = Trip.objects.create(school=school, title="修学旅行（ベンチ）", starts_at=now - datetime.timedelta(hours=1),
                               ends_at=now + datetime.timedelta(days=2), created_by=teacher)
    TripChaperone.objects.create(trip=trip, user=teacher)
    for i in range(n):
        s = Student(school=school, family_name="山田", given_name=f"太郎{i}", family_name_kana="ヤマダ",
                    given_name_kana="タロウ")
        s.save()
        ClassMembership.objects.create(student=s, homeroom_class=klass, shusseki_no=i + 1)
        g = Guardian(family_name="山田", given_name="花子", phone=f"090-0000-{i:04d}")
        g.save()
        GuardianLink.objects.create(guardian=g, student=s, relationship="母")
        for p in (1, 2):
            EmergencyContact(student=s, priority=p, name="山田 一郎", relationship="祖父",
                             phone=f"048-000-{i:02d}{p:02d}").save()
        TripParticipant.objects.create(trip=trip, student=s)
        if i % 5 == 0:
            TripHealthRelease(trip=trip, student=s, note="卵アレルギー", released_by=teacher).save()
    return trip, teacher


def _baseline(trip: Any) -> None:
    from komu.students.models import EmergencyContact, GuardianLink, Student

    ids = list(trip.participants.values_list("student_id", flat=True))
    for s in Student.objects.filter(pk__in=ids):
        _ = s.full_name, s.full_kana
    for link in GuardianLink.objects.filter(student_id__in=ids).select_related("guardian"):
        _ = link.guardian.full_name, link.guardian.phone
    for ec in EmergencyContact.objects.filter(student_id__in=ids):
        _ = ec.name, ec.relationship, ec.phone


def run() -> list[str]:
    from django.test import Client
    from django.test.utils import override_settings
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from komu.testing.world import login_verified

    n = int(os.environ.get("KOMU_BENCH_TRIP_PUPILS", "40"))
    trip, teacher = _world(n)
    TOTPDevice.objects.get_or_create(user=teacher, name="bench", defaults={"confirmed": True})
    client = Client()
    size = gz = 0
    with override_settings(ALLOWED_HOSTS=["testserver"]):
        login_verified(client, teacher)

        def page() -> None:
            nonlocal size, gz
            response = client.get(f"/trips/{trip.pk}/contacts/")
            assert response.status_code == 200, response.status_code
            size = len(response.content)
            gz = len(gzip.compress(response.content))

        page_s = best_of(5, page)
    base_s = best_of(5, lambda: _baseline(trip))
    return [
        f"trips: chaperone's phone page, {n} pupils: {page_s * 1000:.0f} ms, {size / 1024:.1f} KiB "
        f"({gz / 1024:.1f} KiB gzipped, no script)  |  baseline plain decryption of the same rows: "
        f"{base_s * 1000:.0f} ms  |  ratio {page_s / base_s:.2f}",
    ]


