"""The aggregate: figures per field, the table of all answers, and downloads that open safely in Excel."""

from __future__ import annotations

import io

import openpyxl
import pytest

from komu.approvals import services as approvals
from komu.audit.models import AuditEvent
from komu.core.errors import NotFoundOrNoAccess
from komu.surveys import selectors, services
from komu.surveys.models import Survey, SurveyAnswer
from komu.testing.world import World

from .conftest import act, good_post


def submit(world: World, survey: Survey, school: object, **changes: str) -> None:
    answer = SurveyAnswer.objects.get(survey=survey, school=school)
    services.answer_request_approval(actor=act(world, "school_admin_a"), answer_id=answer.pk,
                                     data=good_post(**changes))
    answer.refresh_from_db()
    approvals.request_approve(actor=act(world, "vice_principal_a"), request_id=answer.approval_id)
    approvals.request_approve(actor=act(world, "principal_a"), request_id=answer.approval_id)


@pytest.fixture
def two_answers(published: Survey, world: World) -> Survey:
    """school_a submitted; school_a2's answer is typed in directly (it has no staff in the world)."""
    submit(world, published, world.school_a, f_q5="=HYPERLINK(\"x\")")
    other = SurveyAnswer.objects.get(survey=published, school=world.school_a2)
    other.status = SurveyAnswer.Status.SUBMITTED
    other.values = ('{"q1": 30, "q2": "センター方式", "q3": ["運動会"], "q4": [{"c1": 1, "c2": 2}, {"c1": 3, "c2": 4}],'
                    ' "q5": "＝SUM(A1)"}')
    other.save()
    return published


def test_summaries_add_up_the_submitted_answers(two_answers: Survey, world: World) -> None:
    results = selectors.results_for(actor=act(world, "board_officer_a"), survey_id=two_answers.pk)
    by_key = {s.spec.key: s for s in results.summaries}
    children = by_key["q1"]
    assert (children.total, children.mean, children.minimum, children.maximum) == (150, 75.0, 30, 120)
    assert [(b.label, b.value, b.percent) for b in by_key["q2"].bars] == [("自校方式", 1, 100), ("センター方式", 1, 100)]
    assert [(b.label, b.value) for b in by_key["q3"].bars] == [("運動会", 2), ("遠足", 1), ("学芸会", 0)]
    boys = dict(by_key["q4"].table)["男子"]
    assert [(b.label, b.value) for b in boys] == [("1年", 11), ("2年", 15)]
    assert results.submitted == 2 and len(results.rows) == 2
    assert "surveys.results.viewed" in AuditEvent.objects.values_list("action", flat=True)


def test_a_draft_is_listed_but_not_counted(published: Survey, world: World) -> None:
    answer = SurveyAnswer.objects.get(survey=published, school=world.school_a)
    services.answer_save(actor=act(world, "school_admin_a"), answer_id=answer.pk, data=good_post())
    results = selectors.results_for(actor=act(world, "board_officer_a"), survey_id=published.pk)
    assert results.submitted == 0 and {s.spec.key: s for s in results.summaries}["q1"].total is None
    assert any(row[2] == "作成中" and row[5] == "120" for row in results.rows)


def test_the_xlsx_has_one_row_per_school_and_no_formula(two_answers: Survey, world: World) -> None:
    download = selectors.results_export(actor=act(world, "board_officer_a"), survey_id=two_answers.pk, fmt="xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(download.data)).active
    assert sheet is not None
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    headers = rows[0]
    assert headers[:5] == ["学校コード", "学校名", "状態", "提出日時", "版"]
    assert "学年別・1年・男子" in headers
    notes = [r[headers.index("備考")] for r in rows[1:]]
    assert "'=HYPERLINK(\"x\")" in notes and "'＝SUM(A1)" in notes
    assert all(c.data_type == "s" for row in sheet.iter_rows() for c in row if c.value is not None)
    assert "surveys.results.exported" in AuditEvent.objects.values_list("action", flat=True)


def test_the_csv_has_a_bom_and_escapes_every_formula_trigger(two_answers: Survey, world: World) -> None:
    answer = SurveyAnswer.objects.get(survey=two_answers, school=world.school_a2)
    answer.values = ('{"q1": 30, "q2": "+1", "q3": ["-2"], "q4": [{"c1": 1, "c2": 2}, {"c1": 3, "c2": 4}],'
                     ' "q5": "@cmd"}')
    answer.save()
    answer = SurveyAnswer.objects.get(survey=two_answers, school=world.school_a)
    answer.values = answer.values.replace('"=HYPERLINK(\\"x\\")"', '"＝1+1"')
    answer.save()
    download = selectors.results_export(actor=act(world, "board_officer_a"), survey_id=two_answers.pk, fmt="csv")
    assert download.data.startswith(b"\xef\xbb\xbf")
    text = download.data.decode("utf-8-sig")
    assert "'+1" in text and "'@cmd" in text and "'-2" in text and "'＝1+1" in text
    assert "\r\n" in text


def test_another_board_gets_nothing(two_answers: Survey, world: World) -> None:
    for fmt in ("xlsx", "csv"):
        with pytest.raises(NotFoundOrNoAccess):
            selectors.results_export(actor=act(world, "board_officer_b"), survey_id=two_answers.pk, fmt=fmt)
    with pytest.raises(NotFoundOrNoAccess):
        selectors.results_for(actor=act(world, "principal_a"), survey_id=two_answers.pk)
