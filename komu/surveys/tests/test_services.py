"""Building, publishing, answering through the school's 決裁, reminding and reopening a survey."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from komu.approvals import services as approvals
from komu.audit.models import AuditEvent
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.notices.models import Notification
from komu.surveys import selectors, services
from komu.surveys.models import Survey, SurveyAnswer
from komu.testing.world import World

from .conftest import Posted, act, build_survey, good_post, publish


def actions() -> list[str]:
    return list(AuditEvent.objects.order_by("pk").values_list("action", flat=True))


def answer_of(world: World, survey: Survey, school: Any = None) -> SurveyAnswer:
    return SurveyAnswer.objects.get(survey=survey, school=school or world.school_a)


def through_the_chain(world: World, answer: SurveyAnswer, **changes: Any) -> SurveyAnswer:
    services.answer_request_approval(actor=act(world, "school_admin_a"), answer_id=answer.pk,
                                     data=good_post(**changes))
    answer.refresh_from_db()
    approvals.request_approve(actor=act(world, "vice_principal_a"), request_id=answer.approval_id)
    approvals.request_approve(actor=act(world, "principal_a"), request_id=answer.approval_id)
    answer.refresh_from_db()
    return answer


def test_a_board_officer_builds_a_draft_and_it_is_audited(world: World) -> None:
    survey = build_survey(world)
    assert survey.board == world.board_a and survey.status == Survey.Status.DRAFT
    assert [f.key for f in survey.fields.order_by("position")] == ["q1", "q2", "q3", "q4", "q5"]
    assert "surveys.survey.created" in actions() and actions().count("surveys.field.added") == 5


def test_a_field_with_bad_settings_is_not_added(world: World) -> None:
    survey = build_survey(world)
    with pytest.raises(ValidationFailed) as exc:
        services.field_add(actor=act(world, "board_officer_a"), survey_id=survey.pk, label="", kind="number",
                           config={"min": "5", "max": "1"})
    assert set(exc.value.errors) == {"label", "max"}
    with pytest.raises(ValidationFailed) as exc:
        services.field_add(actor=act(world, "board_officer_a"), survey_id=survey.pk, label="備考", kind="text",
                           source="closures")
    assert "数値の項目" in exc.value.errors["source"][0]
    assert survey.fields.count() == 5


def test_fields_move_and_delete(world: World) -> None:
    survey = build_survey(world)
    board = act(world, "board_officer_a")
    second = survey.fields.get(key="q2")
    services.field_move(actor=board, survey_id=survey.pk, field_id=second.pk, up=True)
    assert [f.key for f in survey.fields.order_by("position")][:2] == ["q2", "q1"]
    services.field_delete(actor=board, survey_id=survey.pk, field_id=second.pk)
    assert not survey.fields.filter(key="q2").exists()


def test_a_school_cannot_build_and_another_board_cannot_see_the_survey(world: World) -> None:
    with pytest.raises(PermissionDeniedError):
        services.survey_create(actor=act(world, "principal_a"), title="x")
    survey = build_survey(world)
    with pytest.raises(NotFoundOrNoAccess):
        services.field_add(actor=act(world, "board_officer_b"), survey_id=survey.pk, label="x", kind="date")
    with pytest.raises(NotFoundOrNoAccess):
        selectors.survey_get_for_board(actor=act(world, "board_officer_b"), survey_id=survey.pk)


def test_publishing_creates_one_answer_per_school_and_notifies_their_answerers(world: World) -> None:
    survey = publish(world, build_survey(world))
    assert set(survey.answers.values_list("school__code", flat=True)) == {world.school_a.code, world.school_a2.code}
    notified = set(Notification.objects.filter(kind="surveys.invited").values_list("user__username", flat=True))
    assert notified == {"school_admin_a", "principal_a", "vice_principal_a"}
    with pytest.raises(ValidationFailed):
        services.field_add(actor=act(world, "board_officer_a"), survey_id=survey.pk, label="x", kind="date")
    assert "surveys.survey.published" in actions()


def test_publishing_to_a_type_or_a_list_and_refusals(world: World) -> None:
    board = act(world, "board_officer_a")
    survey = build_survey(world)
    with pytest.raises(ValidationFailed) as exc:
        services.survey_publish(actor=board, survey_id=survey.pk, target="all",
                                deadline=timezone.now() - datetime.timedelta(hours=1))
    assert "deadline" in exc.value.errors
    with pytest.raises(ValidationFailed) as exc:
        services.survey_publish(actor=board, survey_id=survey.pk, target="list", school_ids=[world.school_b.pk],
                                deadline=timezone.now() + datetime.timedelta(days=1))
    assert "schools" in exc.value.errors
    services.survey_publish(actor=board, survey_id=survey.pk, target="type", school_type="C1",
                            deadline=timezone.now() + datetime.timedelta(days=1))
    assert list(survey.answers.values_list("school", flat=True)) == [world.school_a2.pk]


def test_a_prefectural_board_reaches_its_municipal_boards_schools(world: World) -> None:
    from komu.directory.models import Role, StaffAssignment
    from komu.testing.world import make_user

    officer = make_user("pref_officer")
    StaffAssignment.objects.create(user=officer, role=Role.BOARD_OFFICER, board=world.pref_board)
    world.users["pref_officer"] = officer
    actor = act(world, "pref_officer")
    survey = services.survey_create(actor=actor, title="県の照会", template_code="infectious_weekly")
    services.survey_publish(actor=actor, survey_id=survey.pk, target="all",
                            deadline=timezone.now() + datetime.timedelta(days=2))
    assert survey.answers.count() == 3


def test_a_draft_keeps_bad_input_out_and_required_fields_wait(published: Survey, world: World) -> None:
    answer = answer_of(world, published)
    admin = act(world, "school_admin_a")
    with pytest.raises(ValidationFailed) as exc:
        services.answer_save(actor=admin, answer_id=answer.pk, data=Posted({"f_q1": "5000"}))
    assert "2000以下" in exc.value.errors["f_q1"][0]
    answer.refresh_from_db()
    assert answer.status == SurveyAnswer.Status.NOT_STARTED and answer.values == ""
    services.answer_save(actor=admin, answer_id=answer.pk, data=Posted({"f_q1": "5"}))
    answer.refresh_from_db()
    assert answer.status == SurveyAnswer.Status.DRAFT and services.answer_values(answer)["q1"] == 5
    with pytest.raises(ValidationFailed) as exc:
        services.answer_request_approval(actor=admin, answer_id=answer.pk, data=Posted({"f_q1": "5"}))
    assert "f_q2" in exc.value.errors
    answer.refresh_from_db()
    assert answer.status == SurveyAnswer.Status.DRAFT and answer.approval is None


def test_the_answer_goes_through_vice_principal_and_principal_and_is_submitted(published: Survey,
                                                                               world: World) -> None:
    answer = answer_of(world, published)
    services.answer_request_approval(actor=act(world, "school_admin_a"), answer_id=answer.pk, data=good_post())
    answer.refresh_from_db()
    assert answer.status == SurveyAnswer.Status.IN_APPROVAL
    assert [s["role"] for s in answer.approval.steps] == ["vice_principal", "principal"]  # type: ignore[union-attr]
    assert list(Notification.objects.filter(kind="surveys.approval").values_list("user__username", flat=True)) == [
        "vice_principal_a"]
    with pytest.raises(ValidationFailed):
        services.answer_save(actor=act(world, "school_admin_a"), answer_id=answer.pk, data=good_post())
    approvals.request_approve(actor=act(world, "vice_principal_a"), request_id=answer.approval_id)
    answer.refresh_from_db()
    assert answer.status == SurveyAnswer.Status.IN_APPROVAL
    approvals.request_approve(actor=act(world, "principal_a"), request_id=answer.approval_id)
    answer.refresh_from_db()
    assert answer.status == SurveyAnswer.Status.SUBMITTED and answer.submitted_at is not None
    assert Notification.objects.filter(kind="surveys.submitted", user=world.user("board_officer_a")).exists()
    assert {"surveys.answer.approval_requested", "surveys.answer.submitted"} <= set(actions())


def test_a_returned_answer_is_a_draft_again(published: Survey, world: World) -> None:
    answer = answer_of(world, published)
    services.answer_request_approval(actor=act(world, "school_admin_a"), answer_id=answer.pk, data=good_post())
    answer.refresh_from_db()
    approvals.request_return(actor=act(world, "vice_principal_a"), request_id=answer.approval_id,
                             comment="児童数を確認してください")
    answer.refresh_from_db()
    assert answer.status == SurveyAnswer.Status.DRAFT
    services.answer_save(actor=act(world, "school_admin_a"), answer_id=answer.pk, data=good_post(f_q1="121"))


def test_reopening_keeps_the_submitted_version(published: Survey, world: World) -> None:
    answer = through_the_chain(world, answer_of(world, published))
    board = act(world, "board_officer_a")
    with pytest.raises(ValidationFailed):
        services.answer_reopen(actor=board, survey_id=published.pk, answer_id=answer.pk, reason="")
    services.answer_reopen(actor=board, survey_id=published.pk, answer_id=answer.pk, reason="1年の人数が違います")
    answer.refresh_from_db()
    assert answer.status == SurveyAnswer.Status.DRAFT and answer.version == 2
    old = answer.versions.get()
    assert old.version == 1 and selectors.version_values(old)["q1"] == 120 and old.reason == "1年の人数が違います"
    answer = through_the_chain(world, answer, f_q1="119")
    assert answer.status == SurveyAnswer.Status.SUBMITTED and services.answer_values(answer)["q1"] == 119
    detail = selectors.answer_get_for_board(actor=board, survey_id=published.pk, answer_id=answer.pk)
    assert [v.version for v in detail.versions] == [1]
    assert "surveys.answer.reopened" in actions()
    with pytest.raises(NotFoundOrNoAccess):
        services.answer_reopen(actor=act(world, "board_officer_b"), survey_id=published.pk, answer_id=answer.pk,
                               reason="x")


def test_a_school_reaches_only_its_own_answer(published: Survey, world: World) -> None:
    mine = answer_of(world, published)
    other = answer_of(world, published, world.school_a2)
    with pytest.raises(NotFoundOrNoAccess):
        services.answer_save(actor=act(world, "school_admin_a"), answer_id=other.pk, data=good_post())
    with pytest.raises(NotFoundOrNoAccess):
        selectors.answer_get_for_school(actor=act(world, "principal_b"), answer_id=mine.pk)
    with pytest.raises(NotFoundOrNoAccess):
        selectors.answer_get_for_school(actor=act(world, "homeroom_a1"), answer_id=mine.pk)
    assert [a.pk for a, _late in selectors.answers_for_school(actor=act(world, "principal_a"))] == [mine.pk]
    assert selectors.answers_for_school(actor=act(world, "principal_b")) == []


def test_reminders_reach_only_schools_that_have_not_submitted(published: Survey, world: World) -> None:
    through_the_chain(world, answer_of(world, published))
    board = act(world, "board_officer_a")
    assert services.survey_remind(actor=board, survey_id=published.pk) == 1
    other = answer_of(world, published, world.school_a2)
    assert other.reminder_count == 1 and other.last_reminded_at is not None
    assert not Notification.objects.filter(kind="surveys.reminder").exists()  # school_a2 has no staff here
    assert "surveys.survey.reminded" in actions()


def test_automatic_reminders_before_and_after_the_deadline(world: World) -> None:
    survey = publish(world, build_survey(world), days=2)
    now = timezone.now()
    assert services.surveys_remind_due(now=now) == 0  # two days ahead, reminder is one day before
    assert services.surveys_remind_due(now=now + datetime.timedelta(days=1, hours=1)) == 2
    assert services.surveys_remind_due(now=now + datetime.timedelta(days=1, hours=2)) == 0  # once before
    late = now + datetime.timedelta(days=3)
    assert services.surveys_remind_due(now=late) == 2
    assert services.surveys_remind_due(now=late + datetime.timedelta(hours=1)) == 0  # once a day
    assert Notification.objects.filter(kind="surveys.reminder", user=world.user("principal_a")).count() == 2
    assert survey.answers.filter(reminder_count=2).count() == 2


def test_a_file_is_checked_by_its_content(world: World) -> None:
    board = act(world, "board_officer_a")
    survey = services.survey_create(actor=board, title="資料の提出")
    services.field_add(actor=board, survey_id=survey.pk, label="計画書", kind="file", config={"types": ["pdf"],
                                                                                         "max_mb": "1"})
    publish(world, survey)
    answer = answer_of(world, survey)
    admin = act(world, "school_admin_a")
    fake = SimpleUploadedFile("plan.pdf", b"MZ\x90\x00 not a pdf", content_type="application/pdf")
    with pytest.raises(ValidationFailed) as exc:
        services.answer_save(actor=admin, answer_id=answer.pk, data=Posted(), uploads={"f_q1": fake})
    assert "形式は受け付けていません" in exc.value.errors["f_q1"][0]
    big = SimpleUploadedFile("plan.pdf", b"%PDF-1.4" + b"0" * (1024 * 1024), content_type="application/pdf")
    with pytest.raises(ValidationFailed):
        services.answer_save(actor=admin, answer_id=answer.pk, data=Posted(), uploads={"f_q1": big})
    good = SimpleUploadedFile("計画.pdf", b"%PDF-1.4 small", content_type="application/octet-stream")
    services.answer_save(actor=admin, answer_id=answer.pk, data=Posted(), uploads={"f_q1": good})
    answer.refresh_from_db()
    stored = services.answer_values(answer)["q1"]
    assert stored["name"] == "計画.pdf"
    got, data = selectors.file_get_for(actor=board, file_id=stored["id"])
    assert got.mime == "application/pdf" and b"".join(data) == b"%PDF-1.4 small"
    with pytest.raises(NotFoundOrNoAccess):
        selectors.file_get_for(actor=act(world, "board_officer_b"), file_id=stored["id"])
    assert "surveys.file.downloaded" in actions()
    services.answer_save(actor=admin, answer_id=answer.pk, data=Posted({"f_q1__clear": "1"}))
    answer.refresh_from_db()
    assert services.answer_values(answer)["q1"] is None


def test_closing_stops_answers_and_reminders(published: Survey, world: World) -> None:
    board = act(world, "board_officer_a")
    with pytest.raises(NotFoundOrNoAccess):
        services.survey_close(actor=act(world, "board_officer_b"), survey_id=published.pk)
    services.survey_close(actor=board, survey_id=published.pk)
    answer = answer_of(world, published)
    with pytest.raises(ValidationFailed) as exc:
        services.answer_save(actor=act(world, "school_admin_a"), answer_id=answer.pk, data=good_post())
    assert "締め切られています" in str(exc.value)
    assert not selectors.answer_get_for_school(actor=act(world, "principal_a"), answer_id=answer.pk).editable
    Survey.objects.filter(pk=published.pk).update(deadline=timezone.now() - datetime.timedelta(days=1))
    assert services.surveys_remind_due() == 0
    with pytest.raises(ValidationFailed):
        services.survey_remind(actor=board, survey_id=published.pk)
    assert "surveys.survey.closed" in actions()
