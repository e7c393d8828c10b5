"""The screens: the board builds, publishes, watches, reminds, reads and downloads; the school answers."""

from __future__ import annotations

import datetime
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

from komu.surveys.models import Survey, SurveyAnswer
from komu.testing.world import World

from .conftest import build_survey, good_post


def test_the_board_creates_a_survey_from_a_template(world: World, signed_in: Any) -> None:
    client = signed_in("board_officer_a")
    assert "ひな形から作成" in client.get("/surveys/").content.decode()
    response = client.post("/surveys/new/", {"template": "infectious_weekly", "title": ""})
    survey = Survey.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/surveys/{survey.pk}/edit/"
    body = client.get(f"/surveys/{survey.pk}/edit/").content.decode()
    assert "出席停止（インフルエンザ）" in body and "出席停止（インフルエンザ）の人数" in body


def test_adding_a_bad_field_shows_the_message_next_to_it(world: World, signed_in: Any) -> None:
    survey = build_survey(world)
    response = signed_in("board_officer_a").post(f"/surveys/{survey.pk}/fields/", {
        "label": "方式", "kind": "single", "choices": "ひとつだけ"})
    assert response.status_code == 422
    assert "選択肢を2つ以上" in response.content.decode()


def test_publishing_from_the_screen(world: World, signed_in: Any) -> None:
    survey = build_survey(world)
    client = signed_in("board_officer_a")
    response = client.post(f"/surveys/{survey.pk}/publish/", {
        "target": "all", "deadline_date": "2000-01-01", "deadline_time": "17:00", "remind_before_days": "1"})
    assert response.status_code == 200 and "今より後の日時" in response.content.decode()
    response = client.post(f"/surveys/{survey.pk}/publish/", {
        "target": "all", "deadline_date": "2099-01-01", "deadline_time": "17:00", "remind_before_days": "1"})
    assert response.status_code == 302 and survey.answers.count() == 2


def test_the_progress_page_and_its_polled_table(published: Survey, world: World, signed_in: Any,
                                                django_assert_num_queries: Any) -> None:
    client = signed_in("board_officer_a")
    body = client.get(f"/surveys/{published.pk}/").content.decode()
    assert 'hx-trigger="every 30s"' in body and "みどり市立第一中学校" in body and "未着手" in body
    client.get(f"/surveys/{published.pk}/", HTTP_HX_REQUEST="true")
    with CaptureQueriesContext(connection) as one:
        partial = client.get(f"/surveys/{published.pk}/", HTTP_HX_REQUEST="true")
    assert "<html" not in partial.content.decode() and "提出 0 / 2校" in partial.content.decode()
    SurveyAnswer.objects.filter(survey=published).update(status=SurveyAnswer.Status.DRAFT)
    with django_assert_num_queries(len(one.captured_queries)):
        client.get(f"/surveys/{published.pk}/", HTTP_HX_REQUEST="true")


def test_the_board_reminds_and_downloads(published: Survey, world: World, signed_in: Any) -> None:
    client = signed_in("board_officer_a")
    response = client.post(f"/surveys/{published.pk}/remind/", {"all": "1"}, follow=True)
    assert "2校に督促しました" in response.content.decode()
    xlsx = client.get(f"/surveys/{published.pk}/results.xlsx")
    assert xlsx.status_code == 200 and xlsx["Content-Type"].startswith("application/vnd.openxmlformats")
    csv = client.get(f"/surveys/{published.pk}/results.csv")
    assert csv.content.startswith(b"\xef\xbb\xbf")
    assert client.get(f"/surveys/{published.pk}/results.exe").status_code == 404
    assert "項目ごとの集計" in client.get(f"/surveys/{published.pk}/results/").content.decode()


def test_the_school_answers_on_the_screen(published: Survey, world: World, signed_in: Any) -> None:
    answer = SurveyAnswer.objects.get(survey=published, school=world.school_a)
    client = signed_in("school_admin_a")
    assert published.title in client.get("/surveys/").content.decode()
    url = f"/surveys/answers/{answer.pk}/"
    response = client.post(url, {"action": "save", "f_q1": "99999"})
    assert response.status_code == 422
    body = response.content.decode()
    assert "2000以下で入力してください" in body and 'value="99999"' in body
    response = client.post(url, {**good_post(), "action": "submit"})
    assert response.status_code == 302
    answer.refresh_from_db()
    assert answer.status == SurveyAnswer.Status.IN_APPROVAL
    assert "決裁中です" in client.get(url).content.decode()
    # The vice-principal, who seals it, reads it too.
    assert signed_in("vice_principal_a").get(url).status_code == 200


def test_out_of_scope_pages_answer_404(published: Survey, world: World, signed_in: Any) -> None:
    answer = SurveyAnswer.objects.get(survey=published, school=world.school_a)
    other = signed_in("board_officer_b")
    for path in (f"/surveys/{published.pk}/", f"/surveys/{published.pk}/results/",
                 f"/surveys/{published.pk}/results.xlsx", f"/surveys/{published.pk}/answers/{answer.pk}/",
                 f"/surveys/{published.pk}/edit/"):
        assert other.get(path).status_code == 404, path
    assert signed_in("principal_b").get(f"/surveys/answers/{answer.pk}/").status_code == 404
    assert signed_in("homeroom_a1").get("/surveys/").status_code == 404
    assert signed_in("homeroom_a1").get(f"/surveys/answers/{answer.pk}/").status_code == 404
    assert signed_in("principal_a").get(f"/surveys/{published.pk}/").status_code == 404


def test_the_board_reads_an_answer_and_reopens_it(published: Survey, world: World, signed_in: Any) -> None:
    answer = SurveyAnswer.objects.get(survey=published, school=world.school_a)
    answer.status = SurveyAnswer.Status.SUBMITTED
    answer.values = '{"q1": 5}'
    from django.utils import timezone

    answer.submitted_at = timezone.now()
    answer.save()
    client = signed_in("board_officer_a")
    url = f"/surveys/{published.pk}/answers/{answer.pk}/"
    assert "訂正を依頼する" in client.get(url).content.decode()
    assert client.post(url, {"reason": ""}).status_code == 422
    response = client.post(url, {"reason": "児童数を確認してください"}, follow=True)
    body = response.content.decode()
    assert "以前に提出された版" in body and "児童数を確認してください" in body


def test_home_tasks_list_what_the_school_must_answer(published: Survey, world: World) -> None:
    from komu.surveys import selectors

    from .conftest import act

    tasks = selectors.home_tasks(actor=act(world, "principal_a"))
    assert [t.title for t in tasks] == [f"照会に回答してください: {published.title}"]
    assert selectors.home_tasks(actor=act(world, "homeroom_a1")) == []
    assert selectors.home_tasks(actor=act(world, "board_officer_a")) == []
    Survey.objects.filter(pk=published.pk).update(deadline=published.deadline - datetime.timedelta(days=5))
    late = selectors.home_tasks(actor=act(world, "board_officer_a"))
    assert [t.detail for t in late] == ["2校中2校が未提出（期限切れ）"] and late[0].urgent
    assert selectors.home_tasks(actor=act(world, "principal_a"))[0].urgent


def test_the_board_closes_a_survey_from_the_progress_page(published: Survey, world: World, signed_in: Any) -> None:
    client = signed_in("board_officer_a")
    assert "この照会を締め切る" in client.get(f"/surveys/{published.pk}/").content.decode()
    response = client.post(f"/surveys/{published.pk}/close/", follow=True)
    assert "照会を締め切りました" in response.content.decode()
    published.refresh_from_db()
    assert published.status == Survey.Status.CLOSED
    assert signed_in("board_officer_b").post(f"/surveys/{published.pk}/close/").status_code == 404


def test_the_lists_make_the_same_queries_for_one_or_many_surveys(world: World, signed_in: Any,
                                                                  django_assert_num_queries: Any) -> None:
    from .conftest import publish

    publish(world, build_survey(world))
    for name in ("board_officer_a", "principal_a"):
        client = signed_in(name)
        client.get("/surveys/")
        with CaptureQueriesContext(connection) as one:
            client.get("/surveys/")
        counts = len(one.captured_queries)
        publish(world, build_survey(world, title=f"{name}の2件目"))
        with django_assert_num_queries(counts):
            client.get("/surveys/")


def test_the_answer_form_draws_every_kind_of_field(world: World, signed_in: Any) -> None:
    from komu.surveys import services

    from .conftest import act, publish

    survey = build_survey(world)
    board = act(world, "board_officer_a")
    services.field_add(actor=board, survey_id=survey.pk, label="欠席者の一覧", kind="table",
                       config={"columns": "学年:文字\n人数:数値", "max_rows": "5"})
    services.field_add(actor=board, survey_id=survey.pk, label="計画書", kind="file",
                       config={"types": ["pdf", "xlsx"], "max_mb": "2"})
    services.field_add(actor=board, survey_id=survey.pk, label="実施日", kind="date")
    publish(world, survey)
    answer = SurveyAnswer.objects.get(survey=survey, school=world.school_a)
    body = signed_in("principal_a").get(f"/surveys/answers/{answer.pk}/").content.decode()
    assert 'name="f_q4__1__c2"' in body  # fixed rows: 2年・女子
    assert 'name="f_q6__rows" value="3"' in body and 'name="f_q6__2__c2"' in body  # free rows: three blank
    assert 'type="file" name="f_q7"' in body and "PDF・Excel（XLSX）・2MBまで" in body
    assert 'type="date" name="f_q8"' in body
    assert 'type="radio" class="radio" name="f_q2"' in body and 'type="checkbox" class="checkbox" name="f_q3"' in body
