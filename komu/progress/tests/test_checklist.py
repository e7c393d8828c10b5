from __future__ import annotations

import datetime

import pytest

from komu.audit.models import AuditEvent
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.progress import services
from komu.progress.models import ChecklistAnswer, ChecklistItem, IndicatorValue, Rollup
from komu.progress.tests.conftest import act, put_value
from komu.testing.world import World

pytestmark = pytest.mark.django_db
YEAR = 2026


def test_the_fixture_holds_the_school_items_worth_1020_points(world: World) -> None:
    services.checklist_items_load()
    school_items = ChecklistItem.objects.filter(audience="school")
    assert sum(i.points for i in school_items) == 1020
    assert ChecklistItem.objects.filter(audience="board").exists()


def test_opening_prefills_levels_from_measured_indicators(world: World) -> None:
    put_value(world.school_a, datetime.date(YEAR, 5, 1), "absence_digital", 30, 40)
    put_value(world.school_a, datetime.date(YEAR, 6, 1), "letters_digital", 5, 5)
    response = services.checklist_response_open(actor=act(world, "principal_a"), year=YEAR,
                                                school_id=world.school_a.pk)
    by_indicator = {a.item.indicator: a for a in response.answers.select_related("item") if a.item.indicator}
    assert by_indicator["absence_digital"].prefilled_level == ChecklistAnswer.Level.MORE_THAN_HALF
    assert by_indicator["letters_digital"].level == ChecklistAnswer.Level.FULL
    assert by_indicator["survey_on_time"].prefilled_level is None  # nothing measured: no suggestion
    assert response.score == 30 + 20  # full letters item + two thirds of the absence item
    assert response.max_score == 1020
    assert AuditEvent.objects.filter(action="progress.checklist.opened").exists()


def test_a_principal_cannot_open_another_schools_checklist(world: World) -> None:
    with pytest.raises(NotFoundOrNoAccess):
        services.checklist_response_open(actor=act(world, "principal_a"), year=YEAR, school_id=world.school_b.pk)


def test_a_teacher_cannot_answer(world: World) -> None:
    with pytest.raises(PermissionDeniedError):
        services.checklist_response_open(actor=act(world, "teacher_a"), year=YEAR, school_id=world.school_a.pk)


def test_saving_checks_levels_and_fax_counterparties(world: World) -> None:
    principal = act(world, "principal_a")
    response = services.checklist_response_open(actor=principal, year=YEAR, school_id=world.school_a.pk)
    item = response.answers.first()
    assert item is not None
    with pytest.raises(ValidationFailed) as exc:
        services.checklist_response_save(actor=principal, response_id=response.pk, levels={item.item_id: 7},
                                         uses_fax=True, fax_counterparties=[], requires_seal=False,
                                         seal_documents=[])
    assert "fax_counterparties" in exc.value.errors and f"item_{item.item_id}" in exc.value.errors
    saved = services.checklist_response_save(actor=principal, response_id=response.pk,
                                             levels={item.item_id: 3}, uses_fax=True,
                                             fax_counterparties=["private", "board"], requires_seal=True,
                                             seal_documents=["consent"])
    assert saved.fax_counterparties == ["board", "private"] and saved.seal_documents == ["consent"]
    assert saved.score >= 30


def test_submitting_locks_the_year_and_feeds_the_rollup(world: World) -> None:
    principal = act(world, "principal_a")
    response = services.checklist_response_open(actor=principal, year=YEAR, school_id=world.school_a.pk)
    services.checklist_response_submit(actor=principal, response_id=response.pk)
    with pytest.raises(ValidationFailed):
        services.checklist_response_save(actor=principal, response_id=response.pk, levels={}, uses_fax=False,
                                         fax_counterparties=[], requires_seal=False, seal_documents=[])
    value = IndicatorValue.objects.get(school_code=world.school_a.code, indicator="checklist_score")
    assert value.month == datetime.date(YEAR, 4, 1) and value.denominator == 1020
    assert Rollup.objects.filter(level="board", key=world.board_a.code, indicator="checklist_score").exists()


def test_the_board_can_return_until_it_submits_upward(world: World) -> None:
    principal, board = act(world, "principal_a"), act(world, "board_officer_a")
    response = services.checklist_response_open(actor=principal, year=YEAR, school_id=world.school_a.pk)
    services.checklist_response_submit(actor=principal, response_id=response.pk)
    services.checklist_response_return(actor=board, response_id=response.pk)
    services.checklist_response_submit(actor=principal, response_id=response.pk)
    own = services.checklist_response_open(actor=board, year=YEAR, board_id=world.board_a.pk)
    services.checklist_response_submit(actor=board, response_id=own.pk)
    with pytest.raises(ValidationFailed):
        services.checklist_response_return(actor=board, response_id=response.pk)
    # The other board cannot even see school_a's answers.
    with pytest.raises(NotFoundOrNoAccess):
        services.checklist_response_return(actor=act(world, "board_officer_b"), response_id=response.pk)


def test_a_draft_school_answer_is_locked_once_its_board_submitted(world: World) -> None:
    board = act(world, "board_officer_a")
    own = services.checklist_response_open(actor=board, year=YEAR, board_id=world.board_a.pk)
    services.checklist_response_submit(actor=board, response_id=own.pk)
    school = services.checklist_response_open(actor=act(world, "principal_a"), year=YEAR,
                                              school_id=world.school_a.pk)
    assert services.response_locked(school)


def test_a_principal_cannot_answer_for_the_board(world: World) -> None:
    with pytest.raises((PermissionDeniedError, NotFoundOrNoAccess)):
        services.checklist_response_open(actor=act(world, "principal_a"), year=YEAR, board_id=world.board_a.pk)
