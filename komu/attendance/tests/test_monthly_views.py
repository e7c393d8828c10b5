"""The monthly 出席簿 screens: scope (404 out of scope), submission, approval from the page, PDFs (audited),
constant queries, the principal's year close."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from komu.approvals.models import ApprovalRequest
from komu.attendance.models import MarkKind, MonthlyRegister
from komu.attendance.services import monthly
from komu.attendance.tests.test_monthly import approve_all_june, day, june, mark
from komu.audit.models import AuditEvent
from komu.students.models import ClassMembership, Student
from komu.testing.world import World


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def after_the_year(world: World, monkeypatch: pytest.MonkeyPatch) -> datetime.date:
    end = world.class_a1.school_year.end_date
    monkeypatch.setattr(monthly, "today", lambda: end)
    return end


def url(world: World, suffix: str = "") -> str:
    year, month = june(world)
    return f"/attendance/monthly/{world.class_a1.pk}/{year}/{month}/{suffix}"


def test_the_principal_sees_the_month_in_paper_symbols(world: World, signed_in: Any) -> None:
    mark(world, "a1_first", day(world, 1), MarkKind.ABSENT, "illness")
    response = signed_in("principal_a").get(url(world))
    assert response.status_code == 200
    body = response.content.decode()
    assert "出席簿 小学1年 1組 6月" in body
    assert "髙橋 𠮷乃" in body and 'title="欠席（病気）">病<' in body
    assert "出席しなければならない日数" in body and "学級計" in body
    assert "まだ提出されていません" in body


def test_a_principal_of_another_school_gets_404(world: World, signed_in: Any) -> None:
    client = signed_in("principal_b")
    assert client.get(url(world)).status_code == 404
    assert client.get(url(world, "pdf/")).status_code == 404
    assert client.get(f"/attendance/monthly/{world.class_a1.pk}/annual.pdf").status_code == 404
    assert client.get(f"/attendance/monthly/{world.class_a1.pk}/").status_code == 404
    assert not AuditEvent.objects.filter(action="attendance.register.printed").exists()


def test_a_month_outside_the_classes_year_is_404(world: World, signed_in: Any) -> None:
    year, _ = june(world)
    assert signed_in("principal_a").get(f"/attendance/monthly/{world.class_a1.pk}/{year + 3}/6/").status_code == 404


def test_the_month_page_makes_the_same_queries_for_two_or_twenty_pupils(
    world: World, signed_in: Any, django_assert_num_queries: Any,
) -> None:
    client = signed_in("principal_a")
    mark(world, "a1_first", day(world, 1), MarkKind.LATE)
    client.get(url(world))
    with CaptureQueriesContext(connection) as small:
        client.get(url(world))
    for no in range(3, 21):
        student = Student(school=world.school_a, family_name="生徒", given_name=f"{no}",
                          family_name_kana="セイト", given_name_kana="バン", birth_date=datetime.date(2019, 4, 2))
        student.save()
        ClassMembership.objects.create(student=student, homeroom_class=world.class_a1, shusseki_no=no)
    mark(world, "a1_first", day(world, 2), MarkKind.LATE)
    with django_assert_num_queries(len(small.captured_queries)):
        client.get(url(world))


def test_the_teacher_submits_and_the_vice_principal_approves_from_the_register(
    world: World, signed_in: Any, client: Any, after_the_year: datetime.date,
) -> None:
    teacher = signed_in("homeroom_a1")
    page = teacher.get(url(world)).content.decode()
    assert "この月の出席簿を提出する" in page
    response = teacher.post(url(world, "submit/"))
    assert response.status_code == 302
    register = MonthlyRegister.objects.get(homeroom_class=world.class_a1)
    assert register.status == MonthlyRegister.Status.SUBMITTED

    vice = signed_in("vice_principal_a")
    page = vice.get(url(world)).content.decode()
    assert "承認する（電子印を押す）" in page
    response = vice.post(f"/approvals/{register.approval_id}/approve/", {"next": url(world)})
    assert response["Location"] == url(world)
    page = vice.get(url(world)).content.decode()
    assert 'class="inkan"' in page and "決裁待ち" in page  # sealed by the vice-principal, waiting for 校長


def test_submitting_twice_explains_why(world: World, signed_in: Any, after_the_year: datetime.date) -> None:
    teacher = signed_in("homeroom_a1")
    teacher.post(url(world, "submit/"))
    response = teacher.post(url(world, "submit/"))
    assert response.status_code == 400
    assert "既に決裁中です" in response.content.decode()


def test_only_the_homeroom_teacher_submits(world: World, signed_in: Any, after_the_year: datetime.date) -> None:
    response = signed_in("principal_a").post(url(world, "submit/"))
    assert response.status_code == 400
    assert "担任です" in response.content.decode()
    assert not ApprovalRequest.objects.exists()


def test_printing_the_month_gives_a_pdf_and_is_audited(world: World, signed_in: Any) -> None:
    # A print asks its reason first (komu.disclosures), then is recorded under a serial.
    asked = signed_in("principal_a").get(url(world, "pdf/"))
    assert asked.status_code == 200 and "印刷の目的" in asked.content.decode()
    response = signed_in("principal_a").get(url(world, "pdf/") + "?reason=学期末の点検")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response["X-Komu-Serial"] in response["Content-Disposition"]
    assert response.content.startswith(b"%PDF-")
    assert "filename*=UTF-8''" in response["Content-Disposition"]
    event = AuditEvent.objects.get(action="attendance.register.printed")
    year, month = june(world)
    assert event.actor_username == "principal_a"
    assert event.detail["year"] == year and event.detail["month"] == month
    assert event.detail["class"] == "小学1年 1組" and event.school_id == world.school_a.pk


def test_printing_the_annual_record_is_audited(world: World, signed_in: Any) -> None:
    response = signed_in("homeroom_a1").get(f"/attendance/monthly/{world.class_a1.pk}/annual.pdf?reason=点検")
    assert response.status_code == 200 and response.content.startswith(b"%PDF-")
    assert AuditEvent.objects.filter(action="attendance.annual_record.printed", actor_username="homeroom_a1").exists()
    one = signed_in("homeroom_a1").get(
        f"/attendance/monthly/{world.class_a1.pk}/annual.pdf?reason=点検&student={world.students['b1_first'].pk}")
    assert one.status_code == 404


def test_a_superseded_revision_and_its_seals_stay_on_the_page(world: World, signed_in: Any,
                                                             after_the_year: datetime.date) -> None:
    register = approve_all_june(world)
    from komu.access.scope import get_actor

    monthly.register_amended(world.class_a1, day(world, 1), get_actor(world.user("homeroom_a1")))
    body = signed_in("principal_a").get(url(world)).content.decode()
    assert "再び決裁が必要です" in body
    assert "これまでの版" in body and "訂正により再決裁" in body
    assert body.count('class="inkan"') == 2
    assert register.approval_id is not None


def test_the_class_year_lists_every_month_with_its_status(world: World, signed_in: Any,
                                                         after_the_year: datetime.date) -> None:
    approve_all_june(world)
    body = signed_in("homeroom_a1").get(f"/attendance/monthly/{world.class_a1.pk}/").content.decode()
    assert body.count("/attendance/monthly/") >= 12 and "承認済み" in body


def test_the_homeroom_teacher_lands_on_their_class(world: World, signed_in: Any) -> None:
    response = signed_in("homeroom_a1").get("/attendance/monthly/")
    assert response["Location"] == f"/attendance/monthly/{world.class_a1.pk}/"


def test_the_principal_closes_the_year_from_the_school_page(world: World, signed_in: Any,
                                                          after_the_year: datetime.date) -> None:
    client = signed_in("principal_a")
    fiscal = world.class_a1.school_year.year
    page = client.get(f"/attendance/monthly/school/{world.school_a.pk}/{fiscal}/").content.decode()
    assert "まだ確定できません" in page
    school_year = world.class_a1.school_year
    for klass in school_year.classes.all():
        for year, month in monthly.fiscal_months(school_year):
            MonthlyRegister.objects.update_or_create(homeroom_class=klass, year=year, month=month,
                                                     defaults={"status": MonthlyRegister.Status.APPROVED})
    page = client.get(f"/attendance/monthly/school/{world.school_a.pk}/{fiscal}/").content.decode()
    assert "年度末確定をする" in page
    refused = client.post(f"/attendance/monthly/school/{world.school_a.pk}/{fiscal}/close/")
    assert refused.status_code == 400 and "確認のチェック" in refused.content.decode()
    response = client.post(f"/attendance/monthly/school/{world.school_a.pk}/{fiscal}/close/", {"confirm": "yes"})
    assert response.status_code == 302
    assert set(MonthlyRegister.objects.filter(homeroom_class__school_year=school_year)
               .values_list("status", flat=True)) == {MonthlyRegister.Status.LOCKED}
    assert "確定しています" in client.get(response["Location"]).content.decode()


def test_only_the_principal_has_the_close_button(world: World, signed_in: Any) -> None:
    fiscal = world.class_a1.school_year.year
    assert signed_in("vice_principal_a").post(
        f"/attendance/monthly/school/{world.school_a.pk}/{fiscal}/close/", {"confirm": "yes"}).status_code == 404
