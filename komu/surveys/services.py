"""Writes of 照会・回答: building and publishing a survey (board), answering it (school) through the school's
決裁, reminding, reopening for correction. Each is atomic and audited ("surveys.survey.published", ...) in the
same transaction; every one checks the capability and the scope again.

The answer is a document type of the approvals engine ("surveys.answer", registered at the bottom of this file):
its content hash covers the values, so a change after 申請 voids the seals; the last seal submits it.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import zipfile
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from komu.access import roles
from komu.access.scope import Actor, get_in_scope, require, schools_for
from komu.approvals import registry
from komu.approvals import services as approvals
from komu.approvals.models import ApprovalRequest
from komu.audit.services import Scope, audit_record
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.directory.models import Role, School, StaffAssignment
from komu.notices.notifications import notify
from komu.security.blobs import blob_put
from komu.surveys import fields as rules
from komu.surveys import sources
from komu.surveys.models import Survey, SurveyAnswer, SurveyAnswerVersion, SurveyField, SurveyFile
from komu.surveys.presets import PRESETS

DOCUMENT_TYPE = "surveys.answer"
MAX_TITLE = 120
MAX_DESCRIPTION = 2000
MAX_REASON = 300
EDITABLE = (SurveyAnswer.Status.NOT_STARTED, SurveyAnswer.Status.DRAFT)


def _save(obj: models.Model) -> None:
    try:
        obj.full_clean()
    except ValidationError as exc:
        raise ValidationFailed("入力内容を確認してください。", errors=exc.message_dict) from exc
    obj.save()


def _board_scope(survey: Survey) -> Scope:
    return Scope(board_id=survey.board_id)


def _answer_scope(answer: SurveyAnswer) -> Scope:
    return Scope(school_id=answer.school_id, board_id=answer.survey.board_id)


def _today() -> datetime.date:
    return timezone.localdate()


def _active(qs: models.QuerySet[StaffAssignment]) -> models.QuerySet[StaffAssignment]:
    today = _today()
    return (qs.filter(Q(start_date__isnull=True) | Q(start_date__lte=today))
            .filter(Q(end_date__isnull=True) | Q(end_date__gte=today)).select_related("user"))


ANSWER_ROLES = [r for r, caps in roles.CAPABILITIES.items() if roles.SURVEYS_ANSWER in caps]


def school_answerers(school_ids: Iterable[int]) -> dict[int, list[Any]]:
    """Who answers for each school (school office, vice-principal, principal): the people reminders reach."""
    people: dict[int, list[Any]] = {}
    for a in _active(StaffAssignment.objects.filter(school_id__in=list(school_ids), role__in=ANSWER_ROLES)):
        if a.school_id is not None:
            people.setdefault(a.school_id, []).append(a.user)
    return people


def _board_officers(survey: Survey) -> list[Any]:
    return [a.user for a in _active(StaffAssignment.objects.filter(board_id=survey.board_id,
                                                                   role=Role.BOARD_OFFICER))]


# --- Building (board) -----------------------------------------------------------------------------------------

def _builder_board_ids(actor: Actor) -> set[int]:
    return {g.board_id for g in actor.grants_with(roles.SURVEYS_BUILD) if g.board_id is not None}


def _own_survey(actor: Actor, survey_id: Any, *, lock: bool = True) -> Survey:
    require(actor, roles.SURVEYS_BUILD)
    qs = Survey.objects.filter(board_id__in=_builder_board_ids(actor)).select_related("board")
    if lock:
        qs = qs.select_for_update()
    return get_in_scope(qs, pk=survey_id)


def _draft(actor: Actor, survey_id: Any) -> Survey:
    survey = _own_survey(actor, survey_id)
    if survey.status != Survey.Status.DRAFT:
        raise ValidationFailed("発出した照会の項目は変更できません。")
    return survey


def _clean_header(title: str, description: str, start: datetime.date | None, end: datetime.date | None) -> None:
    errors: dict[str, list[str]] = {}
    if not title.strip():
        errors["title"] = ["件名を入力してください。"]
    elif len(title) > MAX_TITLE:
        errors["title"] = [f"件名は{MAX_TITLE}文字以内で入力してください。"]
    if len(description) > MAX_DESCRIPTION:
        errors["description"] = [f"説明は{MAX_DESCRIPTION}文字以内で入力してください。"]
    if (start is None) != (end is None):
        errors["period_end"] = ["対象期間は開始日と終了日の両方を入力してください（どちらも空でもかまいません）。"]
    elif start is not None and end is not None and start > end:
        errors["period_end"] = ["対象期間の終了日は開始日以降にしてください。"]
    if errors:
        raise ValidationFailed("入力内容を確認してください。", errors=errors)


def _preset_period(period: str) -> tuple[datetime.date, datetime.date]:
    today = _today()
    if period == "month":
        start = today.replace(day=1)
        end = (start + datetime.timedelta(days=32)).replace(day=1) - datetime.timedelta(days=1)
        return start, end
    start = today - datetime.timedelta(days=today.weekday())
    return start, start + datetime.timedelta(days=6)


@transaction.atomic
def survey_create(
    *, actor: Actor, title: str, description: str = "", period_start: datetime.date | None = None,
    period_end: datetime.date | None = None, template_code: str = "",
) -> Survey:
    """A new draft survey of the actor's board, empty or made from a ready-made template (ひな形)."""
    require(actor, roles.SURVEYS_BUILD)
    boards = sorted(_builder_board_ids(actor))
    if not boards:
        raise PermissionDeniedError("照会を作成できるのは教育委員会の担当者です。")
    preset = PRESETS.get(template_code) if template_code else None
    if template_code and preset is None:
        raise ValidationFailed("そのひな形はありません。一覧から選んでください。")
    if preset is not None:
        title = title.strip() or preset.title
        description = description or preset.description
        if period_start is None and period_end is None:
            period_start, period_end = _preset_period(preset.period)
    title = title.strip()
    _clean_header(title, description, period_start, period_end)
    survey = Survey(board_id=boards[0], title=title, description=description.strip(), period_start=period_start,
                    period_end=period_end, template_code=template_code, created_by=actor.user)
    _save(survey)
    if preset is not None:
        SurveyField.objects.bulk_create([
            SurveyField(survey=survey, key=spec.key, position=i, label=spec.label, kind=spec.kind,
                        required=spec.required, help_text=spec.help_text, config=dict(spec.config),
                        source=spec.source)
            for i, spec in enumerate(preset.fields)
        ])
    audit_record(actor=actor.user, action="surveys.survey.created", obj=survey,
                 detail={"template": template_code, "fields": len(preset.fields) if preset else 0},
                 scope=_board_scope(survey))
    return survey


@transaction.atomic
def survey_update(
    *, actor: Actor, survey_id: Any, title: str, description: str, period_start: datetime.date | None,
    period_end: datetime.date | None,
) -> Survey:
    survey = _draft(actor, survey_id)
    title = title.strip()
    _clean_header(title, description, period_start, period_end)
    survey.title, survey.description = title, description.strip()
    survey.period_start, survey.period_end = period_start, period_end
    _save(survey)
    audit_record(actor=actor.user, action="surveys.survey.updated", obj=survey, scope=_board_scope(survey))
    return survey


@transaction.atomic
def field_add(
    *, actor: Actor, survey_id: Any, label: str, kind: str, required: bool = False, help_text: str = "",
    config: Mapping[str, Any] | None = None, source: str = "",
) -> SurveyField:
    """Add a question at the end. The kind's settings are checked by komu.surveys.fields.clean_config."""
    survey = _draft(actor, survey_id)
    errors: dict[str, list[str]] = {}
    label = label.strip()
    if not label:
        errors["label"] = ["項目名を入力してください。"]
    elif len(label) > 120:
        errors["label"] = ["項目名は120文字以内で入力してください。"]
    if len(help_text) > 300:
        errors["help_text"] = ["説明は300文字以内で入力してください。"]
    if source and source not in sources.SOURCES:
        errors["source"] = ["自動入力の元は一覧から選んでください。"]
    if source and kind != "number":
        errors["source"] = ["自動入力は数値の項目にだけ設定できます。"]
    try:
        cleaned = rules.clean_config(kind, config or {})
    except rules.DefinitionError as exc:
        errors.update({k: [v] for k, v in exc.errors.items()})
        cleaned = {}
    existing = list(survey.fields.order_by("position"))
    if len(existing) >= rules.MAX_FIELDS:
        errors["label"] = [f"項目は{rules.MAX_FIELDS}個までです。"]
    if errors:
        raise ValidationFailed("項目の内容を確認してください。", errors=errors)
    used = {f.key for f in existing}
    number = len(existing) + 1
    while f"q{number}" in used:
        number += 1
    survey_field = SurveyField(survey=survey, key=f"q{number}",
                               position=(existing[-1].position + 1) if existing else 0, label=label, kind=kind,
                               required=required, help_text=help_text.strip(), config=cleaned, source=source)
    _save(survey_field)
    audit_record(actor=actor.user, action="surveys.field.added", obj=survey,
                 detail={"field": survey_field.key, "kind": kind, "source": source}, scope=_board_scope(survey))
    return survey_field


@transaction.atomic
def field_delete(*, actor: Actor, survey_id: Any, field_id: Any) -> None:
    survey = _draft(actor, survey_id)
    survey_field = get_in_scope(survey.fields.all(), pk=field_id)
    key = survey_field.key
    survey_field.delete()
    audit_record(actor=actor.user, action="surveys.field.deleted", obj=survey, detail={"field": key},
                 scope=_board_scope(survey))


@transaction.atomic
def field_move(*, actor: Actor, survey_id: Any, field_id: Any, up: bool) -> None:
    """Swap a question with its neighbour above (up) or below."""
    survey = _draft(actor, survey_id)
    ordered = list(survey.fields.order_by("position", "pk"))
    index = next((i for i, f in enumerate(ordered) if str(f.pk) == str(field_id)), None)
    if index is None:
        raise NotFoundOrNoAccess("見つかりません。")
    other = index - 1 if up else index + 1
    if not 0 <= other < len(ordered):
        return
    ordered[index], ordered[other] = ordered[other], ordered[index]
    for position, item in enumerate(ordered):
        if item.position != position:
            item.position = position
            item.save(update_fields=["position"])
    audit_record(actor=actor.user, action="surveys.field.moved", obj=survey,
                 detail={"field": ordered[other].key, "up": up}, scope=_board_scope(survey))


def publishable_schools(actor: Actor) -> models.QuerySet[School]:
    """The schools a board officer may send a survey to: their board's, and a prefectural board's municipal
    boards' schools."""
    return schools_for(actor, roles.SURVEYS_BUILD).filter(is_active=True).select_related("board")


@transaction.atomic
def survey_publish(
    *, actor: Actor, survey_id: Any, target: str, school_type: str = "", school_ids: Iterable[Any] = (),
    deadline: datetime.datetime | None, remind_before_days: int = 1,
) -> Survey:
    """発出: create one answer per recipient school and tell the people who answer for them."""
    survey = _own_survey(actor, survey_id)
    if survey.status != Survey.Status.DRAFT:
        raise ValidationFailed("この照会は既に発出されています。")
    errors: dict[str, list[str]] = {}
    specs = field_specs(survey)
    if not specs:
        errors["target"] = ["項目が1つもありません。項目を追加してから発出してください。"]
    if deadline is None:
        errors["deadline"] = ["回答期限を入力してください。"]
    elif deadline <= timezone.now():
        errors["deadline"] = ["回答期限は今より後の日時にしてください。"]
    if not 0 <= remind_before_days <= 14:
        errors["remind_before_days"] = ["期限前の自動督促は0〜14日前で指定してください（0は督促しない）。"]
    candidates = publishable_schools(actor)
    if target == "all":
        chosen = list(candidates)
        label = "所管の全校"
    elif target == "type":
        chosen = list(candidates.filter(school_type=school_type))
        label = str(dict(School._meta.get_field("school_type").choices or []).get(school_type, school_type))
    elif target == "list":
        wanted = {str(s) for s in school_ids}
        chosen = [s for s in candidates if str(s.pk) in wanted]
        if len(chosen) != len(wanted):
            errors["schools"] = ["選べない学校が含まれています。一覧から選び直してください。"]
        label = f"{len(chosen)}校を指定"
    else:
        chosen, label = [], ""
        errors["target"] = ["送付先を選んでください。"]
    if not chosen and "target" not in errors and "schools" not in errors:
        errors["target" if target != "list" else "schools"] = ["送付先の学校が1校もありません。"]
    if errors:
        raise ValidationFailed("発出できません。内容を確認してください。", errors=errors)
    assert deadline is not None
    now = timezone.now()
    survey.status = Survey.Status.PUBLISHED
    survey.deadline = deadline
    survey.published_at, survey.published_by = now, actor.user
    survey.target_label = label
    survey.remind_before_days = remind_before_days
    _save(survey)
    SurveyAnswer.objects.bulk_create([SurveyAnswer(survey=survey, school=school) for school in chosen],
                                     batch_size=500)
    audit_record(actor=actor.user, action="surveys.survey.published", obj=survey,
                 detail={"schools": len(chosen), "target": target, "deadline": deadline.isoformat()},
                 scope=_board_scope(survey))
    people = [u for users in school_answerers(s.pk for s in chosen).values() for u in users]
    notify(users=people, title=f"照会が届きました: {survey.title}（期限 {_deadline_text(survey)}）",
           url=reverse("surveys:index"), kind="surveys.invited")
    return survey


def _deadline_text(survey: Survey) -> str:
    return timezone.localtime(survey.deadline).strftime("%m/%d %H:%M") if survey.deadline else ""


def field_specs(survey: Survey) -> list[rules.FieldSpec]:
    return [rules.FieldSpec(key=f.key, label=f.label, kind=f.kind, required=f.required, help_text=f.help_text,
                            config=f.config, source=f.source)
            for f in survey.fields.order_by("position", "pk")]


# --- Reminders ------------------------------------------------------------------------------------------------

def _remind(survey: Survey, answers: list[SurveyAnswer], *, user: Any, automatic: bool, now: datetime.datetime) -> int:
    if not answers:
        return 0
    people = school_answerers(a.school_id for a in answers)
    late = survey.deadline is not None and now > survey.deadline
    title = (f"【督促】照会の回答期限を過ぎています: {survey.title}" if late
             else f"【督促】照会の回答期限が近づいています: {survey.title}（期限 {_deadline_text(survey)}）")
    notify(users=[u for a in answers for u in people.get(a.school_id, [])], title=title,
           url=reverse("surveys:index"), kind="surveys.reminder")
    for answer in answers:
        answer.last_reminded_at = now
        answer.reminder_count += 1
    SurveyAnswer.objects.bulk_update(answers, ["last_reminded_at", "reminder_count"], batch_size=500)
    audit_record(actor=user, action="surveys.survey.reminded", obj=survey,
                 detail={"schools": [a.school_id for a in answers], "automatic": automatic, "late": late},
                 scope=_board_scope(survey))
    return len(answers)


@transaction.atomic
def survey_remind(*, actor: Actor, survey_id: Any, answer_ids: Iterable[Any] | None = None) -> int:
    """督促: remind the schools that have not submitted (all of them, or the chosen ones). Returns how many."""
    survey = _own_survey(actor, survey_id)
    if survey.status != Survey.Status.PUBLISHED:
        raise ValidationFailed("発出中の照会だけ督促できます。")
    pending = survey.answers.exclude(status=SurveyAnswer.Status.SUBMITTED).select_for_update()
    if answer_ids is not None:
        pending = pending.filter(pk__in=[str(a) for a in answer_ids])
    answers = list(pending)
    if not answers:
        raise ValidationFailed("督促する学校がありません（すべて提出済みです）。")
    return _remind(survey, answers, user=actor.user, automatic=False, now=timezone.now())


@transaction.atomic
def surveys_remind_due(*, now: datetime.datetime | None = None) -> int:
    """Automatic reminders (run daily by `komu surveys remind` or its task): once, N days before the deadline,
    to every school that has not submitted; after the deadline, once a day to each late school."""
    now = now or timezone.now()
    count = 0
    for survey in Survey.objects.select_for_update().filter(status=Survey.Status.PUBLISHED,
                                                              deadline__isnull=False):
        assert survey.deadline is not None
        pending = survey.answers.exclude(status=SurveyAnswer.Status.SUBMITTED)
        if now > survey.deadline:
            due = list(pending.filter(Q(last_reminded_at__isnull=True)
                                      | Q(last_reminded_at__lte=now - datetime.timedelta(hours=23))))
            count += _remind(survey, due, user=None, automatic=True, now=now)
        elif (survey.remind_before_days and survey.reminded_before_at is None
              and now >= survey.deadline - datetime.timedelta(days=survey.remind_before_days)):
            count += _remind(survey, list(pending), user=None, automatic=True, now=now)
            survey.reminded_before_at = now
            survey.save(update_fields=["reminded_before_at", "updated_at"])
    return count


@transaction.atomic
def survey_close(*, actor: Actor, survey_id: Any) -> Survey:
    """締切: no more answers or corrections; reminders stop. Answers not yet submitted stay as they are."""
    survey = _own_survey(actor, survey_id)
    if survey.status != Survey.Status.PUBLISHED:
        raise ValidationFailed("発出中の照会だけ締め切れます。")
    survey.status = Survey.Status.CLOSED
    _save(survey)
    pending = survey.answers.exclude(status=SurveyAnswer.Status.SUBMITTED).count()
    audit_record(actor=actor.user, action="surveys.survey.closed", obj=survey, detail={"not_submitted": pending},
                 scope=_board_scope(survey))
    return survey


# --- Answering (school) ---------------------------------------------------------------------------------------

def _answer_for_school(actor: Actor, answer_id: Any) -> SurveyAnswer:
    require(actor, roles.SURVEYS_ANSWER)
    schools = schools_for(actor, roles.SURVEYS_ANSWER)
    qs = (SurveyAnswer.objects.select_for_update()
          .filter(school__in=schools, survey__status__in=[Survey.Status.PUBLISHED, Survey.Status.CLOSED]))
    answer = get_in_scope(qs, pk=answer_id)
    answer.survey = Survey.objects.select_related("board").get(pk=answer.survey_id)
    return answer


def answer_values(answer: SurveyAnswer) -> dict[str, Any]:
    return json.loads(answer.values) if answer.values else {}


def proposal_for(answer: SurveyAnswer, specs: list[rules.FieldSpec]) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the form shows: the saved values, or (never saved) empty values with every bound figure filled in
    from the school's data. Returns (values, prefilled)."""
    if answer.status != SurveyAnswer.Status.NOT_STARTED:
        return answer_values(answer), dict(answer.prefilled)
    bound = [s.source for s in specs if s.source]
    figures = sources.figures_for(answer.school, start=answer.survey.period_start, end=answer.survey.period_end,
                                  codes=bound) if bound else {}
    values = {s.key: rules.empty_value(s) for s in specs}
    prefilled = {s.key: figures[s.source] for s in specs if s.source in figures}
    values.update(prefilled)
    return values, prefilled


_MAGIC = {
    "pdf": (b"%PDF-",),
    "png": (b"\x89PNG\r\n\x1a\n",),
    "jpeg": (b"\xff\xd8\xff",),
}
_MIME = {"pdf": "application/pdf", "png": "image/png", "jpeg": "image/jpeg",
         "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}


def sniff(data: bytes) -> str:
    """The file's type from its content (not its name): pdf, png, jpeg, xlsx, docx, or ""."""
    for kind, signatures in _MAGIC.items():
        if data.startswith(signatures):
            return kind
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, ValueError):
            return ""
        if "[Content_Types].xml" in names:
            if "xl/workbook.xml" in names:
                return "xlsx"
            if "word/document.xml" in names:
                return "docx"
    return ""


def _attach(actor: Actor, answer: SurveyAnswer, spec: rules.FieldSpec, upload: Any) -> dict[str, Any]:
    limit = int(spec.config.get("max_mb", 5)) * 1024 * 1024
    name = str(getattr(upload, "name", "") or "file")[:200]
    if upload.size > limit:
        raise ValidationFailed("ファイルを確認してください。", errors={rules.input_name(spec): [
            f"{spec.label}: ファイルが大きすぎます（上限 {spec.config.get('max_mb', 5)}MB）。"]})
    data = upload.read(limit + 1)
    kind = sniff(data)
    allowed = list(spec.config.get("types", []))
    if kind not in allowed:
        shown = "・".join(rules.FILE_TYPES[t] for t in allowed)
        raise ValidationFailed("ファイルを確認してください。", errors={rules.input_name(spec): [
            f"{spec.label}: このファイルの形式は受け付けていません（受け付ける形式: {shown}）。"]})
    stored = SurveyFile(answer=answer, field_key=spec.key, filename=name, mime=_MIME[kind], size=len(data),
                        sha256=hashlib.sha256(data).hexdigest(), uploaded_by=actor.user)
    # The encrypted file is written first: a rolled-back answer leaves an orphan for `komu blobs gc`, never a
    # row naming a file that is not there.
    blob_put(stored, data)
    _save(stored)
    return {"id": str(stored.pk), "name": name, "size": len(data), "sha256": stored.sha256}


def _store(actor: Actor, answer: SurveyAnswer, data: Any, uploads: Mapping[str, Any], *, require_all: bool) -> None:
    if answer.survey.status != Survey.Status.PUBLISHED:
        raise ValidationFailed("この照会は締め切られています。回答は変更できません。")
    if answer.status not in EDITABLE:
        raise ValidationFailed("この回答はいま編集できません（決裁中または提出済みです）。")
    specs = field_specs(answer.survey)
    current, prefilled = proposal_for(answer, specs)
    kept: dict[str, Any] = {}
    for spec in specs:
        if spec.kind == "file":
            previous = current.get(spec.key)
            kept[spec.key] = None if data.get(f"{rules.input_name(spec)}__clear") else previous
    values, errors = rules.parse_answer(specs, data, require=False, files=kept)
    if errors:
        raise ValidationFailed("入力内容を確認してください。", errors={k: [v] for k, v in errors.items()})
    for spec in specs:
        upload = uploads.get(rules.input_name(spec))
        if spec.kind == "file" and upload is not None:
            values[spec.key] = _attach(actor, answer, spec, upload)
    if require_all:
        _values, errors = rules.parse_answer(specs, data, require=True, files=values)
        missing = {k: [v] for k, v in errors.items()}
        if missing:
            raise ValidationFailed("必須の項目が入力されていません。", errors=missing)
    now = timezone.now()
    if answer.status == SurveyAnswer.Status.NOT_STARTED:
        answer.started_at = now
        answer.prefilled = prefilled
    answer.status = SurveyAnswer.Status.DRAFT
    answer.values = json.dumps(values, ensure_ascii=False, sort_keys=True)
    answer.saved_at, answer.saved_by = now, actor.user
    _save(answer)


def edited_keys(answer_prefilled: Mapping[str, Any], values: Mapping[str, Any]) -> list[str]:
    """The bound fields whose figure the school changed."""
    return sorted(k for k, v in answer_prefilled.items() if values.get(k) != v)


@transaction.atomic
def answer_save(*, actor: Actor, answer_id: Any, data: Any, uploads: Mapping[str, Any] | None = None) -> SurveyAnswer:
    """一時保存: keep the answer as a draft. Formats and ranges are checked, required fields not yet."""
    answer = _answer_for_school(actor, answer_id)
    _store(actor, answer, data, uploads or {}, require_all=False)
    values = answer_values(answer)
    audit_record(actor=actor.user, action="surveys.answer.saved", obj=answer,
                 detail={"version": answer.version, "edited": edited_keys(answer.prefilled, values)},
                 scope=_answer_scope(answer))
    return answer


@transaction.atomic
def answer_refill(*, actor: Actor, answer_id: Any) -> list[str]:
    """記録から取り直す: count the bound figures again (new 出席停止 since the draft was saved). A figure the school
    left as proposed takes the new count; one it edited keeps the school's value, now compared with the new
    count. Returns the keys whose value changed."""
    answer = _answer_for_school(actor, answer_id)
    if answer.survey.status != Survey.Status.PUBLISHED or answer.status != SurveyAnswer.Status.DRAFT:
        raise ValidationFailed("作成中の回答だけ、記録から取り直せます。")
    specs = [s for s in field_specs(answer.survey) if s.source]
    figures = sources.figures_for(answer.school, start=answer.survey.period_start, end=answer.survey.period_end,
                                  codes=[s.source for s in specs])
    values = answer_values(answer)
    prefilled = dict(answer.prefilled)
    changed = []
    for spec in specs:
        new = figures.get(spec.source)
        if new is None:
            continue
        untouched = spec.key not in prefilled or values.get(spec.key) == prefilled[spec.key]
        if untouched and values.get(spec.key) != new:
            values[spec.key] = new
            changed.append(spec.key)
        prefilled[spec.key] = new
    answer.values = json.dumps(values, ensure_ascii=False, sort_keys=True)
    answer.prefilled = prefilled
    answer.saved_at, answer.saved_by = timezone.now(), actor.user
    _save(answer)
    audit_record(actor=actor.user, action="surveys.answer.refilled", obj=answer,
                 detail={"changed": changed, "edited": edited_keys(prefilled, values)}, scope=_answer_scope(answer))
    return changed


@transaction.atomic
def answer_request_approval(
    *, actor: Actor, answer_id: Any, data: Any, uploads: Mapping[str, Any] | None = None,
) -> SurveyAnswer:
    """決裁に回す: save with every required field, then open a request through the school's chain for survey
    answers (e.g. 教頭 → 校長). The last seal submits the answer to the board."""
    answer = _answer_for_school(actor, answer_id)
    _store(actor, answer, data, uploads or {}, require_all=True)
    request = approvals.request_submit(actor=actor, document_type=DOCUMENT_TYPE, subject=answer,
                                       school=answer.school)
    answer.status = SurveyAnswer.Status.IN_APPROVAL
    answer.approval = request
    _save(answer)
    audit_record(actor=actor.user, action="surveys.answer.approval_requested", obj=answer,
                 detail={"request": request.pk, "version": answer.version, "content_hash": request.content_hash},
                 scope=_answer_scope(answer))
    # The first approver learns of it at once (the engine's own reminders follow if it waits).
    first = str(request.steps[0]["role"]) if request.steps else ""
    approvers = [a.user for a in _active(StaffAssignment.objects.filter(school=answer.school, role=first))
                 if a.user_id != actor.user.pk]
    notify(users=approvers, title=f"決裁してください: {request.title}",
           url=reverse("approvals:detail", args=[request.pk]), kind="surveys.approval")
    return answer


@transaction.atomic
def answer_reopen(*, actor: Actor, survey_id: Any, answer_id: Any, reason: str) -> SurveyAnswer:
    """再提出の依頼: the board sends a submitted answer back for correction; the submitted version is kept and
    stays viewable, the school corrects a new version and it goes through 決裁 again."""
    survey = _own_survey(actor, survey_id, lock=False)
    answer = get_in_scope(survey.answers.select_for_update(), pk=answer_id)
    reason = " ".join(reason.split())
    if not reason:
        raise ValidationFailed("入力内容を確認してください。", errors={"reason": ["訂正を求める理由を入力してください。"]})
    if len(reason) > MAX_REASON:
        raise ValidationFailed("入力内容を確認してください。",
                               errors={"reason": [f"理由は{MAX_REASON}文字以内で入力してください。"]})
    if answer.status != SurveyAnswer.Status.SUBMITTED or answer.submitted_at is None:
        raise ValidationFailed("提出済みの回答だけ再提出を依頼できます。")
    now = timezone.now()
    version = SurveyAnswerVersion(answer=answer, version=answer.version, values=answer.values,
                                  prefilled=answer.prefilled, submitted_at=answer.submitted_at, reopened_at=now,
                                  reopened_by=actor.user, reason=reason)
    _save(version)
    answer.version += 1
    answer.status = SurveyAnswer.Status.DRAFT
    answer.submitted_at = None
    answer.approval = None
    _save(answer)
    audit_record(actor=actor.user, action="surveys.answer.reopened", obj=answer,
                 detail={"version": version.version, "reason": reason}, scope=_answer_scope(answer))
    people = school_answerers([answer.school_id]).get(answer.school_id, [])
    notify(users=people, title=f"照会の回答の訂正を依頼されました: {survey.title}",
           url=reverse("surveys:answer", args=[answer.pk]), kind="surveys.reopened", body=reason, personal=True)
    return answer


# --- The approvals engine's view of an answer ----------------------------------------------------------------

def _content(answer: SurveyAnswer) -> registry.Content:
    return registry.content_of({
        "survey": answer.survey_id, "school": answer.school.code, "version": answer.version,
        "values": answer_values(answer),
    })


def _title(answer: SurveyAnswer) -> str:
    return f"照会回答: {answer.survey.title}（{answer.school.name}）"


def _url(answer: SurveyAnswer) -> str:
    return reverse("surveys:answer", args=[answer.pk])


def _set(answer: SurveyAnswer, request: ApprovalRequest, user: Any, status: str, action: str) -> None:
    if answer.approval_id != request.pk or answer.status != SurveyAnswer.Status.IN_APPROVAL:
        return  # an old request finishing late changes nothing
    answer.status = status
    if status == SurveyAnswer.Status.SUBMITTED:
        answer.submitted_at = timezone.now()
    answer.save(update_fields=["status", "submitted_at", "updated_at"])
    audit_record(actor=user, action=action, obj=answer, detail={"request": request.pk, "version": answer.version},
                 scope=_answer_scope(answer))


def _on_approved(answer: SurveyAnswer, request: ApprovalRequest, user: Any) -> None:
    _set(answer, request, user, SurveyAnswer.Status.SUBMITTED, "surveys.answer.submitted")
    if answer.status == SurveyAnswer.Status.SUBMITTED:
        notify(users=_board_officers(answer.survey), title=f"照会の回答が提出されました: {answer.survey.title}"
               f"（{answer.school.name}）", url=reverse("surveys:progress", args=[answer.survey_id]),
               kind="surveys.submitted")


def _back_to_draft(answer: SurveyAnswer, request: ApprovalRequest, user: Any) -> None:
    action = ("surveys.answer.returned" if request.status == ApprovalRequest.Status.RETURNED
              else "surveys.answer.withdrawn")
    _set(answer, request, user, SurveyAnswer.Status.DRAFT, action)


registry.register(registry.DocumentType(
    code=DOCUMENT_TYPE,
    label="照会への回答",
    model=SurveyAnswer,
    content=_content,
    title=_title,
    url=_url,
    on_approved=_on_approved,
    on_returned=_back_to_draft,
    on_withdrawn=_back_to_draft,
))
