"""The guardian report screens, read as sentences: a guardian reports from the form through the confirmation to
the receipt and sees the school's read receipt in the history; the cut-off is explained; a teacher's list, its
poll, acknowledging and the phone form; other people's children and classes answer 404; list pages cost the same
number of queries however many reports they show."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from komu.attendance.models import GuardianReport, Mark, MarkKind, MarkSource
from komu.attendance.selectors import reports as selectors
from komu.attendance.services import reports as services
from komu.attendance.tests.test_reports_services import (
    actor,
    add_sibling,
    at,
    events,
    fever,
    frozen,
    school_days,
)
from komu.students.models import ClassMembership, Guardian, GuardianLink, Student
from komu.testing.world import World, make_user

pytestmark = pytest.mark.django_db

FORM = reverse("attendance:guardian_report")
HISTORY = reverse("attendance:guardian_history")
LIST = reverse("attendance:reports")
POLL = reverse("attendance:reports_poll")
ACK = reverse("attendance:reports_acknowledge")
PHONE = reverse("attendance:phone_report")


def form_data(world: World, day: datetime.date, *children: str, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "school": world.school_a.pk, "children": [str(world.students[c].pk) for c in (children or ("a1_first",))],
        "date": day.isoformat(), "kind": "absent", "reason": "fever", "symptoms": ["fever", "cough"],
        "note": "熱が38度あります。", "expected_time": "",
    }
    data.update(extra)
    return data


def add_class_pupils(world: World, count: int) -> list[Student]:
    pupils = []
    for no in range(3, 3 + count):
        student = Student(school=world.school_a, family_name="青木", given_name=f"太郎{no}",
                          family_name_kana="アオキ", given_name_kana="タロウ", birth_date=datetime.date(2017, 5, 1))
        student.save()
        ClassMembership.objects.create(student=student, homeroom_class=world.class_a1, shusseki_no=no)
        pupils.append(student)
    return pupils


# --- the guardian's screens ------------------------------------------------------------------------------------


def test_a_guardian_reports_through_confirmation_to_a_receipt(signed_in: Any, world: World) -> None:
    day = school_days(world)[0]
    with frozen(at(day, 7, 40)):
        client = signed_in("guardian_a")
        page = client.get(FORM)
        assert page.status_code == 200
        body = page.content.decode()
        assert "髙橋 𠮷乃" in body and "発熱" in body and "8:00 まで" in body
        assert "山﨑" not in body  # not her child
        confirm = client.post(FORM, form_data(world, day, action="confirm"))
        assert confirm.status_code == 200
        assert "送信内容の確認" in confirm.content.decode() and "熱が38度あります。" in confirm.content.decode()
        assert not GuardianReport.objects.exists()  # nothing is sent before the guardian confirms
        sent = client.post(FORM, form_data(world, day, action="send"))
    [report] = GuardianReport.objects.all()
    assert sent.status_code == 302 and sent["Location"].endswith(f"?r={report.pk}")
    assert report.client_ip == "127.0.0.1" and report.login_id == "guardian_a"
    with frozen(at(day, 7, 41)):
        receipt = client.get(sent["Location"])
    text = receipt.content.decode()
    assert selectors.receipt_number(report.pk) in text and "07:40" in text and "学校に届きました" in text


def test_going_back_from_the_confirmation_keeps_what_was_entered(signed_in: Any, world: World) -> None:
    day = school_days(world)[0]
    with frozen(at(day, 7, 0)):
        response = signed_in("guardian_a").post(FORM, form_data(world, day, action="edit"))
    form = response.context["form"]
    assert form.initial["children"] == [str(world.students["a1_first"].pk)]
    assert form.initial["symptoms"] == ["fever", "cough"]
    assert "熱が38度あります。" in response.content.decode()


def test_a_guardian_reports_for_siblings_at_once(signed_in: Any, world: World) -> None:
    add_sibling(world)
    day = school_days(world)[0]
    with frozen(at(day, 7, 0)):
        response = signed_in("guardian_a").post(FORM, form_data(world, day, "a1_first", "a1_second",
                                                                action="send"))
    assert response.status_code == 302
    assert response["Location"].count("r=") == 2
    assert GuardianReport.objects.count() == 2


def test_reporting_for_someone_elses_child_answers_404(signed_in: Any, world: World) -> None:
    day = school_days(world)[0]
    with frozen(at(day, 7, 0)):
        client = signed_in("guardian_a")
        for action in ("confirm", "send", "edit"):
            for stranger in ("a1_second", "b1_first"):
                data = form_data(world, day, action=action)
                data["children"] = [str(world.students["a1_first"].pk), str(world.students[stranger].pk)]
                assert client.post(FORM, data).status_code == 404
        assert client.get(FORM, {"school": world.school_b.pk}).status_code == 404
    assert not GuardianReport.objects.exists()


def test_after_the_cutoff_the_page_says_to_phone_and_why(signed_in: Any, world: World) -> None:
    world.school_a.phone = "03-1234-5678"
    world.school_a.save()
    day, tomorrow = school_days(world, 2)
    with frozen(at(day, 8, 10)):
        client = signed_in("guardian_a")
        body = client.get(FORM).content.decode()
        assert "今日の連絡の受付は 8:00 で終わりました" in body
        assert "朝の出欠確認を始めている" in body and 'href="tel:03-1234-5678"' in body
        assert f'value="{day.isoformat()}"' not in body and f'value="{tomorrow.isoformat()}"' in body
        # A page loaded before 8:00 and sent after it is refused with the same explanation.
        response = client.post(FORM, form_data(world, day, action="send"))
        assert "この日は連絡できません" in response.content.decode()
    assert not GuardianReport.objects.exists()


def test_staff_cannot_open_the_guardian_pages(signed_in: Any, world: World) -> None:
    client = signed_in("homeroom_a1")
    assert client.get(FORM).status_code == 404
    assert client.get(HISTORY).status_code == 404


def test_the_history_shows_sent_then_read_and_allows_withdrawal_before_the_cutoff(signed_in: Any,
                                                                                    world: World) -> None:
    day = school_days(world)[0]
    with frozen(at(day, 7, 0)):
        [report] = services.guardian_report_submit(actor=actor(world, "guardian_a"), data=fever(world, day))
        client = signed_in("guardian_a")
        body = client.get(HISTORY).content.decode()
        assert "送信済み（学校の確認待ち）" in body and "取り消す（当日 8:00 まで）" in body
    with frozen(at(day, 7, 20)):  # within the session's 30-minute idle limit
        services.guardian_report_acknowledge(actor=actor(world, "homeroom_a1"), report_ids=[report.pk])
        body = client.get(HISTORY).content.decode()
        assert "学校が確認しました" in body and "7:20" in body
        withdraw_url = reverse("attendance:guardian_withdraw", kwargs={"report_id": report.pk})
        assert "この連絡を取り消しますか" in client.get(withdraw_url).content.decode()
        response = client.post(withdraw_url)
        assert response.status_code == 302
        assert "取り消し済み" in client.get(HISTORY).content.decode()
    assert GuardianReport.objects.get(pk=report.pk).withdrawn_at is not None


def test_withdrawal_after_the_cutoff_is_refused_on_the_page(signed_in: Any, world: World) -> None:
    day = school_days(world)[0]
    with frozen(at(day, 7, 0)):
        [report] = services.guardian_report_submit(actor=actor(world, "guardian_a"), data=fever(world, day))
    with frozen(at(day, 8, 30)):
        client = signed_in("guardian_a")
        assert "取り消す（" not in client.get(HISTORY).content.decode()
        response = client.post(reverse("attendance:guardian_withdraw", kwargs={"report_id": report.pk}))
        assert response.status_code == 200 and "電話" in response.content.decode()
    assert GuardianReport.objects.get(pk=report.pk).withdrawn_at is None


def test_another_guardian_cannot_see_or_withdraw_a_report(signed_in: Any, world: World) -> None:
    day = school_days(world)[0]
    with frozen(at(day, 7, 0)):
        [report] = services.guardian_report_submit(actor=actor(world, "guardian_a"), data=fever(world, day))
        client = signed_in("guardian_b")
        assert client.get(reverse("attendance:guardian_withdraw", kwargs={"report_id": report.pk})).status_code == 404
        assert client.post(reverse("attendance:guardian_withdraw", kwargs={"report_id": report.pk})).status_code == 404
        assert client.get(reverse("attendance:guardian_receipt"), {"r": str(report.pk)}).status_code == 404
        assert client.get(reverse("attendance:guardian_receipt"), {"r": "nonsense"}).status_code == 404
        assert "髙橋" not in client.get(HISTORY).content.decode()


def test_guardian_pages_cost_the_same_queries_for_one_or_three_children(
    signed_in: Any, world: World, django_assert_num_queries: Any
) -> None:
    day = school_days(world)[0]
    with frozen(at(day, 7, 0)):
        services.guardian_report_submit(actor=actor(world, "guardian_a"), data=fever(world, day))
        client = signed_in("guardian_a")
        client.get(FORM)
        client.get(HISTORY)
        with CaptureQueriesContext(connection) as form_small:
            client.get(FORM)
        with CaptureQueriesContext(connection) as history_small:
            client.get(HISTORY)
        for pupil in add_class_pupils(world, 2):
            GuardianLink.objects.create(guardian=world.guardians["guardian_a"], student=pupil, relationship="母")
            services.guardian_report_submit(actor=actor(world, "guardian_a"), data=services.ReportInput(
                student_ids=[pupil.pk], date=day, kind="late", reason_code="hospital"))
        from komu.access.scope import forget_actor

        forget_actor(world.user("guardian_a"))
        with django_assert_num_queries(len(form_small.captured_queries)):
            response = client.get(FORM)
        assert len(response.context["options"].children) == 3
        with django_assert_num_queries(len(history_small.captured_queries)):
            response = client.get(HISTORY)
        assert len(response.context["rows"]) == 3


# --- the teacher's screens --------------------------------------------------------------------------------------


def test_the_homeroom_teacher_sees_todays_reports_with_symptoms_and_a_badge(signed_in: Any, world: World) -> None:
    day = school_days(world)[0]
    with frozen(at(day, 7, 40)):
        services.guardian_report_submit(actor=actor(world, "guardian_a"), data=fever(world, day))
    with frozen(at(day, 8, 0)):
        response = signed_in("homeroom_a1").get(LIST)
    body = response.content.decode()
    assert response.status_code == 200
    assert "𠮷乃" in body and "発熱、せき" in body and "熱が38度あります。" in body and "07:40" in body
    assert "未確認 1 件" in body and 'hx-trigger="every 30s"' in body
    assert len(events("attendance.guardian_report.viewed")) == 1


def test_the_list_is_404_for_other_classes_and_people_without_attendance(signed_in: Any, world: World) -> None:
    client = signed_in("homeroom_a1")
    assert client.get(LIST, {"class": world.class_a2.pk}).status_code == 404
    assert client.get(LIST, {"class": world.class_b1.pk}).status_code == 404
    assert client.get(LIST, {"class": "x"}).status_code == 404
    assert client.get(POLL, {"class": world.class_b1.pk}).status_code == 404
    assert signed_in("teacher_a").get(LIST).status_code == 404
    assert signed_in("guardian_a").get(LIST).status_code == 404


def test_the_poll_answers_204_until_something_changes(signed_in: Any, world: World) -> None:
    day = school_days(world)[0]
    with frozen(at(day, 7, 0)):
        client = signed_in("homeroom_a1")
        token = client.get(LIST).context["reports"].token
        params = {"class": world.class_a1.pk, "date": day.isoformat(), "since": token}
        assert client.get(POLL, params, HTTP_HX_REQUEST="true").status_code == 204
        services.guardian_report_submit(actor=actor(world, "guardian_a"), data=fever(world, day))
        response = client.get(POLL, params, HTTP_HX_REQUEST="true")
        assert response.status_code == 200
        assert "𠮷乃" in response.content.decode() and "<html" not in response.content.decode()
        params["since"] = response.context["reports"].token
        assert client.get(POLL, params, HTTP_HX_REQUEST="true").status_code == 204
    # Only the renderings that showed health data were audited, not the idle polls.
    assert len(events("attendance.guardian_report.viewed")) == 1


def test_acknowledging_from_the_list_reaches_the_guardians_history(signed_in: Any, world: World) -> None:
    add_sibling(world)
    day = school_days(world)[0]
    with frozen(at(day, 7, 0)):
        reports = services.guardian_report_submit(actor=actor(world, "guardian_a"),
                                                  data=fever(world, day, "a1_first", "a1_second"))
    with frozen(at(day, 8, 3)):
        client = signed_in("homeroom_a1")
        response = client.post(ACK, {"class": world.class_a1.pk, "date": day.isoformat(),
                                     "report": [str(reports[0].pk)]}, HTTP_HX_REQUEST="true")
        assert response.status_code == 200 and "未確認 1 件" in response.content.decode()
        response = client.post(ACK, {"class": world.class_a1.pk, "date": day.isoformat(),
                                     "report": [str(r.pk) for r in reports]})
        assert response.status_code == 302
    assert all(r.read_at for r in GuardianReport.objects.all())
    assert len(events("attendance.guardian_report.read")) == 2
    with frozen(at(day, 8, 5)):
        body = signed_in("guardian_a").get(HISTORY).content.decode()
    assert body.count("学校が確認しました") == 2


def test_opening_a_report_marks_it_read_and_shows_the_proof(signed_in: Any, world: World) -> None:
    day = school_days(world)[0]
    with frozen(at(day, 7, 0)):
        [report] = services.guardian_report_submit(actor=actor(world, "guardian_a"), data=fever(world, day))
        url = reverse("attendance:report_detail", kwargs={"report_id": report.pk})
        assert signed_in("principal_b").get(url).status_code == 404
        body = signed_in("homeroom_a1").get(url).content.decode()
    assert "guardian_a" in body and report.content_hash in body and "送信時の内容と一致しています" in body
    assert "発熱、せき" in body
    assert GuardianReport.objects.get(pk=report.pk).read_by == world.user("homeroom_a1")


def test_a_teacher_applies_a_report_that_waited(signed_in: Any, world: World) -> None:
    from komu.attendance.services.marks import mark_set

    day = school_days(world)[0]
    pupil = world.students["a1_first"]
    with frozen(at(day, 7, 0)):
        mark_set(actor=actor(world, "homeroom_a1"), student_id=pupil.pk, date=day, kind=MarkKind.LATE)
        [report] = services.guardian_report_submit(actor=actor(world, "guardian_a"), data=fever(world, day))
        client = signed_in("homeroom_a1")
        assert "出席簿に未反映" in client.get(LIST).content.decode()
        response = client.post(reverse("attendance:report_apply", kwargs={"report_id": report.pk}))
    assert response.status_code == 302
    mark = Mark.objects.get(student=pupil, date=day)
    assert (mark.kind, mark.source) == (MarkKind.ABSENT, MarkSource.GUARDIAN)


def test_the_phone_form_records_a_phone_report(signed_in: Any, world: World) -> None:
    day = school_days(world)[0]
    pupil = world.students["a1_second"]
    with frozen(at(day, 8, 15)):
        client = signed_in("homeroom_a1")
        page = client.get(PHONE, {"class": world.class_a1.pk, "student": str(pupil.pk)})
        assert page.status_code == 200 and "山﨑" in page.content.decode()
        bad = client.post(PHONE, {"class": world.class_a1.pk, "student": str(pupil.pk), "date": day.isoformat(),
                                  "kind": "absent", "reason_category": ""})
        assert "病気・事故・その他" in bad.content.decode()
        response = client.post(PHONE, {"class": world.class_a1.pk, "student": str(pupil.pk),
                                       "date": day.isoformat(), "kind": "absent", "reason_category": "illness",
                                       "note": "熱"})
        assert response.status_code == 302
        stranger = client.post(PHONE, {"class": world.class_a1.pk, "student": str(world.students["a2_first"].pk),
                                       "date": day.isoformat(), "kind": "late"})
        assert stranger.status_code == 200 and "選び直してください" in stranger.content.decode()
        assert client.get(PHONE, {"class": world.class_a2.pk}).status_code == 404
    assert Mark.objects.get(student=pupil, date=day).source == MarkSource.PHONE
    assert signed_in("nurse_a").get(PHONE, {"class": world.class_a1.pk}).status_code == 404


def test_the_teacher_list_costs_the_same_queries_for_one_or_many_reports(
    signed_in: Any, world: World, django_assert_num_queries: Any
) -> None:
    day = school_days(world)[0]
    pupils = add_class_pupils(world, 6)
    guardian = Guardian(family_name="青木", given_name="花")
    guardian.save()
    with frozen(at(day, 7, 0)):
        services.guardian_report_submit(actor=actor(world, "guardian_a"), data=fever(world, day))
        client = signed_in("homeroom_a1")
        client.get(LIST)
        with CaptureQueriesContext(connection) as small:
            assert client.get(LIST).status_code == 200
        user = make_user("aoki_parent", kind="guardian")
        guardian.user = user
        guardian.save()
        for pupil in pupils:
            GuardianLink.objects.create(guardian=guardian, student=pupil, relationship="母")
        from komu.access.scope import get_actor

        services.guardian_report_submit(actor=get_actor(user), data=services.ReportInput(
            student_ids=[p.pk for p in pupils], date=day, kind="absent", reason_code="cold",
            symptom_codes=["cough"], note="せき"))
        with django_assert_num_queries(len(small.captured_queries)):
            response = client.get(LIST)
    assert len(response.context["reports"].rows) == 7
