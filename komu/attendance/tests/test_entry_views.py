"""The morning-entry screens: the register page, the row saves entry.js makes (200 / 400 / 409 with the row), the
page's own posts without JavaScript, confirming, and the year totals page."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from komu.attendance.models import DailyRegister, GuardianReport, Mark, MarkKind
from komu.attendance.services import marks
from komu.attendance.tests.entry_helpers import (  # noqa: F401
    _fast_password_hashing,
    a_saturday,
    a_school_day,
    actor,
    add_pupils,
    headers_htmx,
    set_today,
)
from komu.audit.models import AuditEvent
from komu.testing.world import World

pytestmark = pytest.mark.django_db


def _register_url(world: World, day: Any, klass: Any = None) -> str:
    return reverse("attendance:register", kwargs={"class_id": (klass or world.class_a1).pk, "day": day})


def _row_url(world: World, day: Any, pupil: str = "a1_first") -> str:
    return reverse("attendance:row", kwargs={"class_id": world.class_a1.pk, "day": day,
                                            "student_id": world.students[pupil].pk})


def test_a_homeroom_teacher_lands_on_todays_register_of_their_class(world: World, signed_in: Any) -> None:
    client = signed_in("homeroom_a1")
    response = client.get(reverse("attendance:home"))
    assert response.status_code == 302
    assert response["Location"].startswith(f"/attendance/classes/{world.class_a1.pk}/")


def test_the_register_lists_every_pupil_prefilled_present(world: World, signed_in: Any) -> None:
    day = a_school_day(world.class_a1)
    response = signed_in("homeroom_a1").get(_register_url(world, day))
    assert response.status_code == 200
    body = response.content.decode()
    assert body.count('class="entry-row entry-row--present') == 2
    assert "髙橋 𠮷乃" in body and "山﨑 葛󠄀太" in body
    assert body.count('aria-pressed="true"') == 2
    assert AuditEvent.objects.filter(action="attendance.register.viewed").count() == 1


@pytest.mark.parametrize("who", ["teacher_a", "nurse_a", "board_officer_a", "principal_b", "guardian_a"])
def test_the_register_is_not_found_for_those_who_cannot_record_the_class(world: World, signed_in: Any,
                                                                          who: str) -> None:
    response = signed_in(who).get(_register_url(world, a_school_day(world.class_a1)))
    assert response.status_code == 404


def test_a_homeroom_teacher_cannot_open_another_classs_register(world: World, signed_in: Any) -> None:
    response = signed_in("homeroom_a1").get(_register_url(world, a_school_day(world.class_a2), world.class_a2))
    assert response.status_code == 404


def test_a_principal_picks_any_class_of_the_school(world: World, signed_in: Any) -> None:
    client = signed_in("principal_a")
    day = a_school_day(world.class_a2)
    response = client.get(_register_url(world, day, world.class_a2))
    assert response.status_code == 200
    assert 'id="entry-class"' in response.content.decode()
    picked = client.get(reverse("attendance:home"), {"class": world.class_a1.pk, "day": day.isoformat()})
    assert picked["Location"] == _register_url(world, day)


def test_a_row_save_answers_the_re_rendered_row(world: World, signed_in: Any) -> None:
    day = a_school_day(world.class_a1)
    response = signed_in("homeroom_a1").post(
        _row_url(world, day), {"kind": "absent", "absence_reason": "illness", "version": "0", "key": "k1"},
        **headers_htmx(),
    )
    assert response.status_code == 200
    assert response["X-Komu-Row"] == str(world.students["a1_first"].pk)
    body = response.content.decode()
    assert body.lstrip().startswith("<li") and "entry-row--absent" in body and 'data-version="1"' in body
    assert "病気" in body
    assert Mark.objects.get(date=day).kind == MarkKind.ABSENT


def test_a_row_save_without_a_reason_answers_400_with_the_panel_open(world: World, signed_in: Any) -> None:
    day = a_school_day(world.class_a1)
    response = signed_in("homeroom_a1").post(_row_url(world, day), {"kind": "absent", "version": "0"},
                                              **headers_htmx())
    assert response.status_code == 400
    body = response.content.decode()
    assert "欠席の理由（病気・事故・その他）を選んでください。" in body
    assert 'data-panel-kind="absent">' in body  # neither hidden nor disabled
    assert not Mark.objects.exists()


def test_a_stale_row_save_answers_409_with_the_current_value_and_who_changed_it(world: World,
                                                                                  signed_in: Any) -> None:
    day = a_school_day(world.class_a1)
    marks.mark_set(actor=actor(world, "principal_a"), student_id=world.students["a1_first"].pk, date=day,
                   kind=MarkKind.LATE)
    response = signed_in("homeroom_a1").post(_row_url(world, day), {"kind": "official", "version": "0", "key": "k"},
                                              **headers_htmx())
    assert response.status_code == 409
    body = response.content.decode()
    assert "entry-row--late" in body and "is-conflict" in body
    assert "principal_a" in body and "「遅刻」に変更していました。あなたの変更は保存されていません。" in body
    assert Mark.objects.get(date=day).kind == MarkKind.LATE


def test_a_retried_row_save_is_answered_without_applying_it_twice(world: World, signed_in: Any) -> None:
    day = a_school_day(world.class_a1)
    client = signed_in("homeroom_a1")
    data = {"kind": "late", "version": "0", "key": "same-key"}
    assert client.post(_row_url(world, day), data, **headers_htmx()).status_code == 200
    again = client.post(_row_url(world, day), data, **headers_htmx())
    assert again.status_code == 200 and 'data-version="1"' in again.content.decode()
    assert AuditEvent.objects.filter(action="attendance.mark.set").count() == 1


def test_a_row_of_another_class_is_not_found(world: World, signed_in: Any) -> None:
    day = a_school_day(world.class_a1)
    url = reverse("attendance:row", kwargs={"class_id": world.class_a1.pk, "day": day,
                                           "student_id": world.students["a2_first"].pk})
    assert signed_in("principal_a").post(url, {"kind": "late", "version": "0"}, **headers_htmx()).status_code == 404
    url = reverse("attendance:row", kwargs={"class_id": world.class_a1.pk, "day": day, "student_id": uuid.uuid4()})
    assert signed_in("principal_a").post(url, {"kind": "late", "version": "0"}).status_code == 404


def test_without_javascript_a_button_posts_the_page_and_comes_back_to_the_row(world: World, signed_in: Any) -> None:
    day = a_school_day(world.class_a1)
    sid = str(world.students["a1_first"].pk)
    client = signed_in("homeroom_a1")
    response = client.post(_register_url(world, day), {"set": f"{sid}|late", f"version-{sid}": "0"})
    assert response.status_code == 302 and response["Location"].endswith(f"#pupil-{sid}")
    assert Mark.objects.get(date=day).kind == MarkKind.LATE
    # 欠席 first asks for the reason: the page comes back with the panel open on that row.
    again = client.post(_register_url(world, day), {"set": f"{sid}|absent", f"version-{sid}": "1"})
    assert again.status_code == 400
    assert "欠席の理由（病気・事故・その他）を選んでください。" in again.content.decode()
    done = client.post(_register_url(world, day), {"set": f"{sid}|absent|illness", f"version-{sid}": "1",
                                                   f"detail-{sid}": "発熱"})
    assert done.status_code == 302
    mark = Mark.objects.get(date=day)
    assert (mark.kind, mark.absence_reason, mark.detail) == (MarkKind.ABSENT, "illness", "発熱")


def test_without_javascript_a_stale_button_shows_the_conflict_on_the_page(world: World, signed_in: Any) -> None:
    day = a_school_day(world.class_a1)
    sid = str(world.students["a1_first"].pk)
    marks.mark_set(actor=actor(world, "principal_a"), student_id=sid, date=day, kind=MarkKind.OFFICIAL)
    response = signed_in("homeroom_a1").post(_register_url(world, day), {"set": f"{sid}|late", f"version-{sid}": "0"})
    assert response.status_code == 409
    assert "あなたの変更は保存されていません" in response.content.decode()


def test_confirming_from_the_page_creates_the_daily_register(
        world: World, signed_in: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = a_school_day(world.class_a1)
    set_today(monkeypatch, day)
    response = signed_in("homeroom_a1").post(_register_url(world, day), {"confirm": "1"})
    assert response.status_code == 302
    register = DailyRegister.objects.get()
    assert register.entered_by == world.user("homeroom_a1")


def test_confirming_with_waiting_changes_saves_them_in_the_same_request(world: World, signed_in: Any,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    day = a_school_day(world.class_a1)
    set_today(monkeypatch, day)
    first, second = world.students["a1_first"], world.students["a1_second"]
    url = reverse("attendance:confirm", kwargs={"class_id": world.class_a1.pk, "day": day})
    data = {
        "student": [str(first.pk), str(second.pk)], "kind": ["absent", "late"],
        "absence_reason": ["accident", ""], "suspension_kind": ["", ""], "disease": ["", ""],
        "kinship_degree": ["", ""], "detail": ["", ""], "version": ["0", "0"],
    }
    response = signed_in("homeroom_a1").post(url, data, **headers_htmx())
    assert response.status_code == 200 and response["X-Komu-Status"] == "1"
    assert "確定済み" in response.content.decode()
    assert {m.student_id: m.kind for m in Mark.objects.filter(date=day)} == {first.pk: "absent", second.pk: "late"}
    assert DailyRegister.objects.filter(date=day).exists()


def test_confirming_with_a_conflicting_change_confirms_nothing(
        world: World, signed_in: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = a_school_day(world.class_a1)
    set_today(monkeypatch, day)
    first = world.students["a1_first"]
    marks.mark_set(actor=actor(world, "principal_a"), student_id=first.pk, date=day, kind=MarkKind.OFFICIAL)
    url = reverse("attendance:confirm", kwargs={"class_id": world.class_a1.pk, "day": day})
    data = {"student": [str(first.pk)], "kind": ["late"], "absence_reason": [""], "suspension_kind": [""],
            "disease": [""], "kinship_degree": [""], "detail": [""], "version": ["0"]}
    response = signed_in("homeroom_a1").post(url, data, **headers_htmx())
    assert response.status_code == 409
    assert "ほかの画面で変更された欄が 1 件あるため確定していません" in response.content.decode()
    assert not DailyRegister.objects.exists()


def test_a_day_that_is_not_a_school_day_says_so_and_offers_no_buttons(world: World, signed_in: Any) -> None:
    response = signed_in("homeroom_a1").get(_register_url(world, a_saturday(world.class_a1)))
    assert response.status_code == 200
    body = response.content.decode()
    assert "この日は授業日ではありません" in body and 'name="set"' not in body


def test_a_guardians_report_shows_on_the_row_prefilled_and_marked(world: World, signed_in: Any) -> None:
    day = a_school_day(world.class_a1)
    user = world.user("guardian_a")
    GuardianReport.objects.create(
        student=world.students["a1_first"], guardian_user=user, login_id=user.username, date=day, kind="absent",
        reason_code="fever", reason_category="illness", submitted_at=day_at(day), content_hash="0" * 64,
    )
    body = signed_in("homeroom_a1").get(_register_url(world, day)).content.decode()
    assert "保護者連絡" in body and "発熱" in body
    assert "is-suggested" in body and "entry-row--absent" in body


def day_at(day: Any) -> Any:
    import datetime

    from django.utils import timezone

    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(7, 40)))


def test_the_register_page_makes_the_same_number_of_queries_for_any_class_size(
        world: World, signed_in: Any, django_assert_num_queries: Any) -> None:
    day = a_school_day(world.class_a1)
    client = signed_in("homeroom_a1")
    client.get(_register_url(world, day))  # warm the session and the rules row
    with CaptureQueriesContext(connection) as small:
        assert client.get(_register_url(world, day)).status_code == 200
    pupils = add_pupils(world.class_a1, 38)
    for i, pupil in enumerate(pupils[:10]):
        marks.mark_set(actor=actor(world, "homeroom_a1"), student_id=pupil.pk, date=day,
                       kind=MarkKind.ABSENT if i % 2 else MarkKind.LATE, absence_reason="illness" if i % 2 else "")
    with django_assert_num_queries(len(small.captured_queries)):
        response = client.get(_register_url(world, day))
    assert response.content.decode().count('class="entry-row ') == 40


def test_the_year_totals_page_lists_each_pupils_figures(world: World, signed_in: Any) -> None:
    day = a_school_day(world.class_a1)
    marks.mark_set(actor=actor(world, "homeroom_a1"), student_id=world.students["a1_first"].pk, date=day,
                   kind=MarkKind.ABSENT, absence_reason="illness")
    response = signed_in("homeroom_a1").get(reverse("attendance:class_year", kwargs={"class_id": world.class_a1.pk}))
    assert response.status_code == 200
    body = response.content.decode()
    assert "出席しなければならない日数" in body and "髙橋 𠮷乃" in body
    assert AuditEvent.objects.filter(action="attendance.year_totals.viewed").exists()
    assert signed_in("homeroom_a1").get(
        reverse("attendance:class_year", kwargs={"class_id": world.class_a2.pk})).status_code == 404


def test_the_nurse_reads_the_year_totals_but_does_not_record(world: World, signed_in: Any) -> None:
    client = signed_in("nurse_a")
    assert client.get(reverse("attendance:class_year", kwargs={"class_id": world.class_a1.pk})).status_code == 200
    assert client.post(_row_url(world, a_school_day(world.class_a1)), {"kind": "late"}).status_code == 404


# Query budgets for the hot paths of issue 4 (a teacher's tablet saving a class's morning). The numbers are the
# PostgreSQL counts (one more than SQLite: the audit chain's advisory lock); they include the middleware's session,
# user, MFA device and grants. A change that adds a query per save, or one per pupil, fails here.
ROW_SAVE_MAX_QUERIES = 22
CLASS_CONFIRM_MAX_QUERIES = 13


def test_a_row_save_in_a_class_of_35_stays_within_its_query_budget(world: World, signed_in: Any,
                                                                    django_assert_max_num_queries: Any) -> None:
    day = a_school_day(world.class_a1)
    add_pupils(world.class_a1, 33)
    client = signed_in("homeroom_a1")
    assert client.post(_row_url(world, day), {"kind": "late", "version": "0", "key": "q-0"},
                       **headers_htmx()).status_code == 200
    with django_assert_max_num_queries(ROW_SAVE_MAX_QUERIES):
        response = client.post(_row_url(world, day),
                               {"kind": "absent", "absence_reason": "illness", "version": "1", "key": "q-1"},
                               **headers_htmx())
    assert response.status_code == 200 and 'data-version="2"' in response.content.decode()
    # Still the whole of a save: the receipt, the change history and the audit event.
    assert Mark.objects.get(date=day).kind == MarkKind.ABSENT
    assert AuditEvent.objects.filter(action="attendance.mark.set").count() == 2


def test_a_whole_class_confirm_stays_within_its_query_budget(world: World, signed_in: Any, monkeypatch: Any,
                                                             django_assert_max_num_queries: Any) -> None:
    day = a_school_day(world.class_a1)
    set_today(monkeypatch, day)
    pupils = [world.students["a1_first"], world.students["a1_second"], *add_pupils(world.class_a1, 33)]
    client = signed_in("homeroom_a1")
    url = reverse("attendance:confirm", kwargs={"class_id": world.class_a1.pk, "day": day})

    def body(kind: str, reason: str) -> dict[str, list[str]]:
        n = len(pupils)
        return {"student": [str(p.pk) for p in pupils], "kind": [kind] * n, "absence_reason": [reason] * n,
                "suspension_kind": [""] * n, "disease": [""] * n, "kinship_degree": [""] * n, "detail": [""] * n,
                "version": [""] * n}

    assert client.post(url, body("late", ""), **headers_htmx()).status_code == 200
    with django_assert_max_num_queries(CLASS_CONFIRM_MAX_QUERIES):
        response = client.post(url, body("absent", "illness"), **headers_htmx())
    assert response.status_code == 200
    assert Mark.objects.filter(date=day, kind=MarkKind.ABSENT).count() == 35
    assert DailyRegister.objects.filter(homeroom_class=world.class_a1, date=day).exists()
