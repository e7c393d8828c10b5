"""Reads of 照会・回答, always starting from the actor.

A board officer reaches the surveys of their own board (and everything about them); a school's office,
vice-principal and principal reach the published surveys sent to their school and only their school's answer.
Anything else answers NotFoundOrNoAccess (→ 404). The board's reads of answers are audited: a table or a free
text may name pupils.
"""

from __future__ import annotations

import contextlib
import datetime
import json
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from komu.access import roles
from komu.access.scope import Actor, get_in_scope, schools_for
from komu.approvals import selectors as approval_selectors
from komu.audit.services import Scope, audit_record
from komu.core.errors import NotFoundOrNoAccess, ValidationFailed
from komu.core.tabular import write_csv, write_xlsx
from komu.security.blobs import BlobMissingError, BlobReader, blob_open
from komu.security.keys import DecryptionError
from komu.surveys import aggregate, services, sources
from komu.surveys import fields as rules
from komu.surveys.fields import FieldSpec
from komu.surveys.models import Survey, SurveyAnswer, SurveyAnswerVersion, SurveyField, SurveyFile
from komu.web.selectors import Task

Status = SurveyAnswer.Status


def _board_ids(actor: Actor) -> set[int]:
    return {g.board_id for g in actor.grants_with(roles.SURVEYS_BUILD) if g.board_id is not None}


def is_late(answer: SurveyAnswer, survey: Survey, now: datetime.datetime) -> bool:
    if survey.deadline is None:
        return False
    if answer.status == Status.SUBMITTED:
        return answer.submitted_at is not None and answer.submitted_at > survey.deadline
    return now > survey.deadline


# --- Board ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SurveyRow:
    survey: Survey
    total: int
    submitted: int
    in_approval: int

    @property
    def percent(self) -> int:
        return round(100 * self.submitted / self.total) if self.total else 0


def surveys_for_board(*, actor: Actor) -> list[SurveyRow]:
    if not actor.has(roles.SURVEYS_BUILD):
        return []
    qs = (Survey.objects.filter(board_id__in=_board_ids(actor)).select_related("board")
          .annotate(total=Count("answers"),
                    submitted=Count("answers", filter=Q(answers__status=Status.SUBMITTED)),
                    in_approval=Count("answers", filter=Q(answers__status=Status.IN_APPROVAL)))
          .order_by("-created_at"))
    return [SurveyRow(s, s.total, s.submitted, s.in_approval) for s in qs]


def survey_get_for_board(*, actor: Actor, survey_id: Any) -> Survey:
    if not actor.has(roles.SURVEYS_BUILD):
        raise NotFoundOrNoAccess("見つかりません。")
    return get_in_scope(Survey.objects.filter(board_id__in=_board_ids(actor)).select_related("board"), pk=survey_id)


def survey_fields(survey: Survey) -> list[SurveyField]:
    return list(survey.fields.order_by("position", "pk"))


def specs_of(survey: Survey) -> list[FieldSpec]:
    return services.field_specs(survey)


@dataclass(frozen=True)
class ProgressRow:
    answer: SurveyAnswer
    late: bool
    approval_step: str

    @property
    def state(self) -> str:
        return "late" if self.late and self.answer.status != Status.SUBMITTED else self.answer.status


@dataclass
class Progress:
    survey: Survey
    rows: list[ProgressRow]
    counts: dict[str, int]
    late: int
    checked_at: datetime.datetime

    @property
    def total(self) -> int:
        return len(self.rows)

    @property
    def percent(self) -> int:
        return round(100 * self.counts.get(Status.SUBMITTED, 0) / self.total) if self.total else 0


def progress_for(*, actor: Actor, survey_id: Any, only: str = "") -> Progress:
    """The completion table: every recipient school with its state and times, late ones marked. Three queries."""
    survey = survey_get_for_board(actor=actor, survey_id=survey_id)
    now = timezone.now()
    answers = list(survey.answers.select_related("school", "approval").order_by("school__code")
                   .defer("values"))
    rows = []
    counts = dict.fromkeys(Status.values, 0)
    late = 0
    for answer in answers:
        counts[answer.status] += 1
        is_late_now = is_late(answer, survey, now)
        step = ""
        if answer.status == Status.IN_APPROVAL and answer.approval is not None:
            request = answer.approval
            if request.current_step < len(request.steps):
                step = approval_selectors.role_label(str(request.steps[request.current_step]["role"]))
        if is_late_now and answer.status != Status.SUBMITTED:
            late += 1
        rows.append(ProgressRow(answer, is_late_now, step))
    if only == "late":
        rows = [r for r in rows if r.late and r.answer.status != Status.SUBMITTED]
    elif only == "pending":
        rows = [r for r in rows if r.answer.status != Status.SUBMITTED]
    return Progress(survey, rows, counts, late, now)


def _records(survey: Survey, answers: list[SurveyAnswer]) -> list[aggregate.AnswerRecord]:
    return [aggregate.AnswerRecord(
        school_code=a.school.code, school_name=a.school.name, status=a.status, status_label=a.get_status_display(),
        submitted_at=timezone.localtime(a.submitted_at) if a.submitted_at else None, version=a.version,
        values=services.answer_values(a), prefilled=a.prefilled,
    ) for a in answers]


@dataclass
class Results:
    survey: Survey
    specs: list[FieldSpec]
    headers: list[str]
    rows: list[list[str]]
    summaries: list[aggregate.FieldSummary]
    submitted: int
    total: int
    answer_ids: list[Any] = field(default_factory=list)

    @property
    def linked_rows(self) -> list[tuple[Any, list[str]]]:
        return list(zip(self.answer_ids, self.rows, strict=True))


def _results(survey: Survey) -> Results:
    specs = specs_of(survey)
    answers = list(survey.answers.select_related("school").order_by("school__code"))
    records = _records(survey, answers)
    return Results(survey, specs, aggregate.headers(specs), aggregate.rows(specs, records),
                   aggregate.summarise(specs, records, submitted=Status.SUBMITTED),
                   sum(1 for a in answers if a.status == Status.SUBMITTED), len(answers), [a.pk for a in answers])


@transaction.atomic
def results_for(*, actor: Actor, survey_id: Any) -> Results:
    """集計: the table of all answers and the per-field summaries (audited: answers may name pupils)."""
    survey = survey_get_for_board(actor=actor, survey_id=survey_id)
    results = _results(survey)
    audit_record(actor=actor.user, action="surveys.results.viewed", obj=survey,
                 detail={"answers": results.total}, scope=Scope(board_id=survey.board_id))
    return results


@dataclass(frozen=True)
class Download:
    filename: str
    content_type: str
    data: bytes


@transaction.atomic
def results_export(*, actor: Actor, survey_id: Any, fmt: str) -> Download:
    """The results table as XLSX or CSV (UTF-8 with BOM), formula-safe, every cell a string (audited)."""
    if fmt not in ("xlsx", "csv"):
        raise NotFoundOrNoAccess("見つかりません。")
    survey = survey_get_for_board(actor=actor, survey_id=survey_id)
    results = _results(survey)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    if fmt == "xlsx":
        data = write_xlsx(results.rows, results.headers, sheet_title="回答一覧")
        content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        data = write_csv(results.rows, results.headers, encoding="utf-8-sig")
        content_type = "text/csv; charset=utf-8"
    audit_record(actor=actor.user, action="surveys.results.exported", obj=survey,
                 detail={"format": fmt, "answers": results.total, "bytes": len(data)},
                 scope=Scope(board_id=survey.board_id))
    return Download(f"survey-{survey.pk}-{stamp}.{fmt}", content_type, data)


# --- One answer -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    column: dict[str, Any]
    raw: str
    name: str


@dataclass
class FieldView:
    """One question as a page shows it: the value, whether Komu filled it in and whether the school changed it,
    and the raw text of each input (what was posted, when a save was refused)."""

    spec: FieldSpec
    value: Any
    prefilled: bool
    prefilled_value: Any
    edited: bool
    source_label: str
    display: str
    name: str
    raw: str = ""
    selected: list[str] = field(default_factory=list)
    rows: list[tuple[str, list[Cell]]] = field(default_factory=list)
    row_count: int = 0
    messages: list[str] = field(default_factory=list)

    @property
    def settings(self) -> str:
        return rules.describe(self.spec)


def _raw(value: Any) -> str:
    return "" if value is None else str(value)


def field_views(
    specs: list[FieldSpec], values: dict[str, Any], prefilled: dict[str, Any], posted: Any = None,
) -> list[FieldView]:
    views = []
    for s in specs:
        value = values.get(s.key)
        name = rules.input_name(s)
        view = FieldView(s, value, s.key in prefilled, prefilled.get(s.key),
                         s.key in prefilled and value != prefilled.get(s.key),
                         sources.label_of(s.source) if s.source else "", rules.display(s, value), name)
        if s.kind == "multiple":
            view.selected = [str(x) for x in (posted.getlist(name) if posted is not None else (value or []))]
        elif s.kind == "table":
            table = value or []
            labels = s.fixed_rows
            max_rows = int(s.config.get("max_rows", rules.MAX_ROWS))
            count = len(labels) if labels else min(max_rows, max(len(table) + 2, 3))
            if posted is not None and not labels:
                with contextlib.suppress(ValueError):
                    count = max(1, min(max_rows, int(str(posted.get(f"{name}__rows", count)))))
            view.row_count = count
            for r in range(count):
                row = table[r] if r < len(table) else {}
                cells = []
                for column in s.columns:
                    cell = rules.input_name(s, r, column["key"])
                    raw = str(posted.get(cell, "")) if posted is not None else _raw(row.get(column["key"]))
                    cells.append(Cell(column, raw, cell))
                view.rows.append((labels[r] if labels else str(r + 1), cells))
        elif s.kind != "file":
            view.raw = str(posted.get(name, "")) if posted is not None else _raw(value)
        views.append(view)
    return views


@dataclass
class AnswerDetail:
    answer: SurveyAnswer
    survey: Survey
    fields: list[FieldView]
    versions: list[SurveyAnswerVersion]
    late: bool
    editable: bool
    history: Any  # approvals SubjectHistory


def _detail(answer: SurveyAnswer, survey: Survey, values: dict[str, Any], prefilled: dict[str, Any],
            posted: Any = None) -> AnswerDetail:
    specs = specs_of(survey)
    return AnswerDetail(
        answer, survey, field_views(specs, values, prefilled, posted),
        list(answer.versions.select_related("reopened_by").order_by("-version")),
        is_late(answer, survey, timezone.now()),
        answer.status in services.EDITABLE and survey.status == Survey.Status.PUBLISHED,
        approval_selectors.subject_history(answer),
    )


def answers_for_school(*, actor: Actor) -> list[tuple[SurveyAnswer, bool]]:
    """The surveys sent to the actor's schools, open ones first, each with its lateness."""
    if not actor.has(roles.SURVEYS_ANSWER):
        return []
    now = timezone.now()
    answers = list(
        SurveyAnswer.objects.filter(school__in=schools_for(actor, roles.SURVEYS_ANSWER),
                                    survey__status__in=[Survey.Status.PUBLISHED, Survey.Status.CLOSED])
        .select_related("survey", "survey__board", "school").defer("values").order_by("survey__deadline")
    )
    answers.sort(key=lambda a: (a.status == Status.SUBMITTED, a.survey.deadline or now))
    return [(a, is_late(a, a.survey, now)) for a in answers]


def _school_answers(actor: Actor) -> QuerySet[SurveyAnswer]:
    return SurveyAnswer.objects.filter(
        school__in=schools_for(actor, roles.SURVEYS_ANSWER),
        survey__status__in=[Survey.Status.PUBLISHED, Survey.Status.CLOSED],
    ).select_related("survey", "survey__board", "school")


def answer_get_for_school(*, actor: Actor, answer_id: Any, posted: Any = None) -> AnswerDetail:
    """The school's own answer (or one a delegate approver is asked to seal), with the figures proposed from the
    school's data when it has never been saved."""
    try:
        answer = get_in_scope(_school_answers(actor), pk=answer_id)
    except NotFoundOrNoAccess:
        candidate = get_in_scope(SurveyAnswer.objects.select_related("survey", "survey__board", "school"),
                                 pk=answer_id)
        if not approval_selectors.may_review_subject(actor, candidate):
            raise
        answer = candidate
    values, prefilled = services.proposal_for(answer, specs_of(answer.survey))
    return _detail(answer, answer.survey, values, prefilled, posted)


@transaction.atomic
def answer_get_for_board(*, actor: Actor, survey_id: Any, answer_id: Any) -> AnswerDetail:
    """One school's answer as the board reads it (audited), with which figures were prefilled and edited."""
    survey = survey_get_for_board(actor=actor, survey_id=survey_id)
    answer = get_in_scope(survey.answers.select_related("school"), pk=answer_id)
    audit_record(actor=actor.user, action="surveys.answer.viewed", obj=answer,
                 detail={"version": answer.version}, scope=Scope(school_id=answer.school_id, board_id=survey.board_id))
    return _detail(answer, survey, services.answer_values(answer), dict(answer.prefilled))


def version_values(version: SurveyAnswerVersion) -> dict[str, Any]:
    return json.loads(version.values) if version.values else {}


@transaction.atomic
def file_get_for(*, actor: Actor, file_id: Any) -> tuple[SurveyFile, BlobReader]:
    """An uploaded file and its decrypted bytes as a stream: for its school's answerers, or the board that asked
    (audited either way). The file is opened before the event is recorded: a missing or damaged file is a
    ValidationFailed, not a half-sent download."""
    qs = SurveyFile.objects.select_related("answer", "answer__survey")
    scope = Q(answer__school__in=schools_for(actor, roles.SURVEYS_ANSWER)) if actor.has(roles.SURVEYS_ANSWER) \
        else Q(pk__in=[])
    if actor.has(roles.SURVEYS_BUILD):
        scope |= Q(answer__survey__board_id__in=_board_ids(actor))
    stored = get_in_scope(qs.filter(scope), pk=file_id)
    try:
        reader = blob_open(stored, sha256=stored.sha256, size=stored.size)
    except (BlobMissingError, DecryptionError) as exc:
        raise ValidationFailed(_("添付ファイルが壊れています。送信元に連絡してください。")) from exc
    audit_record(actor=actor.user, action="surveys.file.downloaded", obj=stored.answer,
                 detail={"file": str(stored.pk), "sha256": stored.sha256},
                 scope=Scope(school_id=stored.answer.school_id, board_id=stored.answer.survey.board_id))
    return stored, reader


# --- Home page ------------------------------------------------------------------------------------------------

def home_tasks(*, actor: Actor) -> list[Task]:
    """School: each survey not yet submitted (urgent when late or due within a day). Board: surveys past their
    deadline with schools still missing."""
    tasks: list[Task] = []
    now = timezone.now()
    for answer, late in answers_for_school(actor=actor):
        if answer.status in (Status.SUBMITTED, Status.IN_APPROVAL):
            continue
        deadline = answer.survey.deadline
        when = timezone.localtime(deadline).strftime("%m/%d %H:%M") if deadline else ""
        tasks.append(Task(
            _("照会に回答してください: %(title)s") % {"title": answer.survey.title},
            _("%(board)s・期限 %(when)s・%(state)s") % {"board": answer.survey.board.name, "when": when,
                                                     "state": answer.get_status_display()},
            reverse("surveys:answer", args=[answer.pk]),
            urgent=late or (deadline is not None and deadline - now <= datetime.timedelta(days=1)),
        ))
    for row in surveys_for_board(actor=actor):
        survey = row.survey
        if survey.status == Survey.Status.PUBLISHED and survey.deadline and now > survey.deadline \
                and row.submitted < row.total:
            tasks.append(Task(
                _("照会の未提出校があります: %(title)s") % {"title": survey.title},
                _("%(n)d校中%(m)d校が未提出（期限切れ）") % {"n": row.total, "m": row.total - row.submitted},
                reverse("surveys:progress", args=[survey.pk]), urgent=True,
            ))
    return tasks
