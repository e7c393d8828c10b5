"""照会・回答 screens. Board: list, builder, publish, live progress (HTMX polling), reminders, one school's
answer with its versions, reopen, results and downloads. School: the surveys sent to it and its answer form.

Thin: reads through komu.surveys.selectors, writes through komu.surveys.services; anything out of scope is 404.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from komu.access import roles
from komu.access.scope import get_actor
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.core.htmx import is_htmx
from komu.surveys import selectors, services
from komu.surveys.forms import FieldForm, PublishForm, ReopenForm, SurveyHeaderForm
from komu.surveys.presets import PRESETS
from komu.web.decorators import require_capability


def _crumbs(*items: tuple[str, str]) -> list[dict[str, str]]:
    return [{"label": _("照会・回答"), "url": reverse("surveys:index")}] + [
        {"label": label, "url": url} for label, url in items]


def _form_errors(form: Any, exc: ValidationFailed) -> None:
    for name, problems in exc.errors.items():
        for problem in problems:
            form.add_error(name if name in form.fields else None, problem)
    if not exc.errors:
        form.add_error(None, str(exc))


@login_required
def index(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request.user)
    if not (actor.has(roles.SURVEYS_BUILD) or actor.has(roles.SURVEYS_ANSWER)):
        raise Http404
    return render(request, "surveys/index.html", {
        "board_rows": selectors.surveys_for_board(actor=actor),
        "school_rows": selectors.answers_for_school(actor=actor),
        "can_build": actor.has(roles.SURVEYS_BUILD),
        "can_answer": actor.has(roles.SURVEYS_ANSWER),
        "presets": list(PRESETS.values()),
        "breadcrumbs": _crumbs(),
    })


# --- Builder --------------------------------------------------------------------------------------------------

@login_required
@require_capability(roles.SURVEYS_BUILD)
def create(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request.user)
    form = SurveyHeaderForm(request.POST or None, initial={"template": request.GET.get("template", "")})
    if request.method == "POST" and form.is_valid():
        try:
            survey = services.survey_create(
                actor=actor, title=form.cleaned_data["title"], description=form.cleaned_data["description"],
                period_start=form.cleaned_data["period_start"], period_end=form.cleaned_data["period_end"],
                template_code=form.cleaned_data["template"],
            )
        except (ValidationFailed, PermissionDeniedError) as exc:
            if isinstance(exc, ValidationFailed):
                _form_errors(form, exc)
            else:
                form.add_error(None, str(exc))
        else:
            messages.success(request, _("照会「%(title)s」を作成しました。項目を確認してから発出してください。")
                             % {"title": survey.title})
            return redirect("surveys:edit", survey.pk)
    return render(request, "surveys/create.html", {
        "form": form, "breadcrumbs": _crumbs((_("照会を作成"), "")),
    })


def _board_survey(request: HttpRequest, survey_id: int) -> Any:
    try:
        return selectors.survey_get_for_board(actor=get_actor(request.user), survey_id=survey_id)
    except NotFoundOrNoAccess:
        raise Http404 from None


@login_required
@require_capability(roles.SURVEYS_BUILD)
def edit(request: HttpRequest, survey_id: int) -> HttpResponse:
    actor = get_actor(request.user)
    survey = _board_survey(request, survey_id)
    if survey.status != survey.Status.DRAFT:
        return redirect("surveys:progress", survey.pk)
    header = SurveyHeaderForm(request.POST or None, with_template=False, initial={
        "title": survey.title, "description": survey.description, "period_start": survey.period_start,
        "period_end": survey.period_end})
    if request.method == "POST" and header.is_valid():
        try:
            services.survey_update(actor=actor, survey_id=survey.pk, title=header.cleaned_data["title"],
                                   description=header.cleaned_data["description"],
                                   period_start=header.cleaned_data["period_start"],
                                   period_end=header.cleaned_data["period_end"])
        except ValidationFailed as exc:
            _form_errors(header, exc)
        else:
            messages.success(request, _("件名と対象期間を保存しました。"))
            return redirect("surveys:edit", survey.pk)
    return _builder(request, survey, header=header, field_form=FieldForm())


def _builder(request: HttpRequest, survey: Any, *, header: SurveyHeaderForm, field_form: FieldForm,
             status: int = 200) -> HttpResponse:
    fields = selectors.survey_fields(survey)
    return render(request, "surveys/edit.html", {
        "survey": survey, "header": header, "field_form": field_form,
        "items": list(zip(selectors.field_views(selectors.specs_of(survey), {}, {}), fields, strict=True)),
        "breadcrumbs": _crumbs((survey.title, "")),
    }, status=status)


@login_required
@require_capability(roles.SURVEYS_BUILD)
@require_POST
def field_add(request: HttpRequest, survey_id: int) -> HttpResponse:
    actor = get_actor(request.user)
    survey = _board_survey(request, survey_id)
    form = FieldForm(request.POST)
    if form.is_valid():
        try:
            services.field_add(actor=actor, survey_id=survey.pk, label=form.cleaned_data["label"],
                               kind=form.cleaned_data["kind"], required=form.cleaned_data["required"],
                               help_text=form.cleaned_data["help_text"], config=form.config(),
                               source=form.cleaned_data["source"])
        except ValidationFailed as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, _("項目「%(label)s」を追加しました。") % {"label": form.cleaned_data["label"]})
            return redirect(reverse("surveys:edit", args=[survey.pk]) + "#fields")
    header = SurveyHeaderForm(with_template=False, initial={"title": survey.title, "description": survey.description,
                                                            "period_start": survey.period_start,
                                                            "period_end": survey.period_end})
    return _builder(request, survey, header=header, field_form=form, status=422)


@login_required
@require_capability(roles.SURVEYS_BUILD)
@require_POST
def field_change(request: HttpRequest, survey_id: int, field_id: int) -> HttpResponse:
    actor = get_actor(request.user)
    action = request.POST.get("action", "")
    try:
        if action == "delete":
            services.field_delete(actor=actor, survey_id=survey_id, field_id=field_id)
            messages.success(request, _("項目を削除しました。"))
        elif action in ("up", "down"):
            services.field_move(actor=actor, survey_id=survey_id, field_id=field_id, up=action == "up")
        else:
            raise Http404
    except NotFoundOrNoAccess:
        raise Http404 from None
    except ValidationFailed as exc:
        messages.error(request, str(exc))
    return redirect(reverse("surveys:edit", args=[survey_id]) + "#fields")


@login_required
@require_capability(roles.SURVEYS_BUILD)
def publish(request: HttpRequest, survey_id: int) -> HttpResponse:
    actor = get_actor(request.user)
    survey = _board_survey(request, survey_id)
    if survey.status != survey.Status.DRAFT:
        return redirect("surveys:progress", survey.pk)
    schools = list(services.publishable_schools(actor).order_by("board__code", "school_type", "code"))
    form = PublishForm(request.POST or None, schools=[(str(s.pk), f"{s.name}（{s.board.name}）") for s in schools],
                       initial={"target": "all"})
    if request.method == "POST" and form.is_valid():
        try:
            services.survey_publish(
                actor=actor, survey_id=survey.pk, target=form.cleaned_data["target"],
                school_type=form.cleaned_data["school_type"], school_ids=form.cleaned_data["schools"],
                deadline=form.deadline(), remind_before_days=form.cleaned_data["remind_before_days"],
            )
        except ValidationFailed as exc:
            if "deadline" in exc.errors:
                exc.errors["deadline_date"] = exc.errors.pop("deadline")
            _form_errors(form, exc)
        else:
            messages.success(request, _("照会を発出しました。学校に通知しました。"))
            return redirect("surveys:progress", survey.pk)
    return render(request, "surveys/publish.html", {
        "survey": survey, "form": form, "school_count": len(schools),
        "field_count": len(selectors.survey_fields(survey)),
        "breadcrumbs": _crumbs((survey.title, reverse("surveys:edit", args=[survey.pk])), (_("発出"), "")),
    })


# --- Progress, reminders, results (board) ---------------------------------------------------------------------

@login_required
@require_capability(roles.SURVEYS_BUILD)
def progress(request: HttpRequest, survey_id: int) -> HttpResponse:
    actor = get_actor(request.user)
    only = request.GET.get("only", "")
    try:
        view = selectors.progress_for(actor=actor, survey_id=survey_id, only=only)
    except NotFoundOrNoAccess:
        raise Http404 from None
    template = "surveys/partials/progress_table.html" if is_htmx(request) else "surveys/progress.html"
    return render(request, template, {
        "progress": view, "survey": view.survey, "only": only,
        "breadcrumbs": _crumbs((view.survey.title, ""), ),
    })


@login_required
@require_capability(roles.SURVEYS_BUILD)
@require_POST
def remind(request: HttpRequest, survey_id: int) -> HttpResponse:
    actor = get_actor(request.user)
    chosen = [] if request.POST.get("all") else request.POST.getlist("answer")
    try:
        count = services.survey_remind(actor=actor, survey_id=survey_id, answer_ids=chosen or None)
    except NotFoundOrNoAccess:
        raise Http404 from None
    except ValidationFailed as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("%(n)d校に督促しました（画面の通知とメール）。") % {"n": count})
    return redirect("surveys:progress", survey_id)


@login_required
@require_capability(roles.SURVEYS_BUILD)
@require_POST
def close(request: HttpRequest, survey_id: int) -> HttpResponse:
    try:
        services.survey_close(actor=get_actor(request.user), survey_id=survey_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    except ValidationFailed as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("照会を締め切りました。これ以降、学校は回答できません。"))
    return redirect("surveys:progress", survey_id)


@login_required
@require_capability(roles.SURVEYS_BUILD)
def results(request: HttpRequest, survey_id: int) -> HttpResponse:
    try:
        view = selectors.results_for(actor=get_actor(request.user), survey_id=survey_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    return render(request, "surveys/results.html", {
        "results": view, "survey": view.survey,
        "numbers": [s for s in view.summaries if s.spec.kind == "number"],
        "others": [s for s in view.summaries if s.spec.kind != "number"],
        "breadcrumbs": _crumbs((view.survey.title, reverse("surveys:progress", args=[view.survey.pk])),
                               (_("集計"), "")),
    })


@login_required
@require_capability(roles.SURVEYS_BUILD)
def export(request: HttpRequest, survey_id: int, fmt: str) -> HttpResponse:
    try:
        download = selectors.results_export(actor=get_actor(request.user), survey_id=survey_id, fmt=fmt)
    except NotFoundOrNoAccess:
        raise Http404 from None
    response = HttpResponse(download.data, content_type=download.content_type)
    response["Content-Disposition"] = f'attachment; filename="{download.filename}"'
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_capability(roles.SURVEYS_BUILD)
def board_answer(request: HttpRequest, survey_id: int, answer_id: str) -> HttpResponse:
    actor = get_actor(request.user)
    form = ReopenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.answer_reopen(actor=actor, survey_id=survey_id, answer_id=answer_id,
                                   reason=form.cleaned_data["reason"])
        except NotFoundOrNoAccess:
            raise Http404 from None
        except ValidationFailed as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, _("学校に訂正を依頼しました。提出済みの版は履歴に残ります。"))
            return redirect("surveys:board_answer", survey_id, answer_id)
    try:
        detail = selectors.answer_get_for_board(actor=actor, survey_id=survey_id, answer_id=answer_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    return render(request, "surveys/board_answer.html", {
        "detail": detail, "survey": detail.survey, "form": form,
        "versions": [(v, selectors.field_views(selectors.specs_of(detail.survey), selectors.version_values(v),
                                               dict(v.prefilled))) for v in detail.versions],
        "breadcrumbs": _crumbs((detail.survey.title, reverse("surveys:progress", args=[survey_id])),
                               (detail.answer.school.name, "")),
    }, status=422 if form.errors else 200)


# --- Answering (school) ---------------------------------------------------------------------------------------

@login_required
@require_capability(roles.SURVEYS_ANSWER)
def answer(request: HttpRequest, answer_id: str) -> HttpResponse:
    actor = get_actor(request.user)
    errors: dict[str, list[str]] = {}
    message = ""
    if request.method == "POST":
        action = request.POST.get("action", "save")
        try:
            if action == "refill":
                changed = services.answer_refill(actor=actor, answer_id=answer_id)
                messages.success(request, _("記録から数え直しました（%(n)d項目が変わりました）。修正した項目はそのままです。")
                                 % {"n": len(changed)})
            elif action == "submit":
                services.answer_request_approval(actor=actor, answer_id=answer_id, data=request.POST,
                                                 uploads=request.FILES)
                messages.success(request, _("決裁に回しました。決裁が終わると教育委員会に提出されます。"))
            else:
                services.answer_save(actor=actor, answer_id=answer_id, data=request.POST, uploads=request.FILES)
                messages.success(request, _("一時保存しました。"))
        except NotFoundOrNoAccess:
            raise Http404 from None
        except ValidationFailed as exc:
            errors, message = exc.errors, str(exc)
        else:
            return redirect("surveys:answer", answer_id)
    try:
        detail = selectors.answer_get_for_school(actor=actor, answer_id=answer_id,
                                                 posted=request.POST if errors else None)
    except NotFoundOrNoAccess:
        raise Http404 from None
    for fv in detail.fields:
        fv.messages = [m for k, v in errors.items() if k == fv.name or k.startswith(fv.name + "__") for m in v]
    return render(request, "surveys/answer.html", {
        "detail": detail, "survey": detail.survey, "error_count": len(errors),
        "has_sources": any(fv.spec.source for fv in detail.fields),
        "error_message": message,
        "breadcrumbs": _crumbs((detail.survey.title, "")),
    }, status=422 if errors else 200)


@login_required
def download_file(request: HttpRequest, file_id: str) -> HttpResponseBase:
    actor = get_actor(request.user)
    if not (actor.has(roles.SURVEYS_BUILD) or actor.has(roles.SURVEYS_ANSWER)):
        raise Http404
    try:
        stored, data = selectors.file_get_for(actor=actor, file_id=file_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    except ValidationFailed as exc:
        return HttpResponse(str(exc), status=409, content_type="text/plain; charset=utf-8")
    response = StreamingHttpResponse(data, content_type=stored.mime)
    response["Content-Length"] = str(stored.size)
    response["Content-Disposition"] = "attachment; filename*=UTF-8''" + _quote(stored.filename)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    return response


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")
