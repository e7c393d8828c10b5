"""Komu's JSON API (/api/v1/). Thin like the HTML views: every endpoint calls the same selectors and
services as the screens, so scope, 404-for-out-of-scope and the audit trail are identical whichever way a
person comes in.

OpenAPI: /api/v1/openapi.json; interactive docs: /api/v1/docs. Errors are JSON with Japanese messages:
401 not signed in (or MFA not passed), 404 missing or out of scope (never 403 for scope), 422 invalid input.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from ninja import NinjaAPI, Query
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.renderers import JSONRenderer

from komu.access import roles
from komu.access.scope import Actor, get_actor
from komu.api import schemas
from komu.api.auth import api_auth
from komu.audit.models import AuditEvent
from komu.audit.selectors import audit_events_for, describe_action
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.directory import selectors as directory
from komu.directory.models import HomeroomClass, Role, School
from komu.students import selectors as students
from komu.students import services as student_services
from komu.students.selectors import StudentRow


class JapaneseJSONRenderer(JSONRenderer):
    # UTF-8 as it is: names like 𠮷 stay readable in logs and curl output instead of \ud842\udfb7 escapes.
    json_dumps_params: Mapping[str, Any] = {"ensure_ascii": False}


api = NinjaAPI(
    title="Komu API",
    version="1",
    description=(
        "校務 Komu の API です。画面と同じ権限・同じ監査記録で動きます。"
        "認証はブラウザのセッション（二要素認証済み）か、アカウント設定で発行した API トークン"
        "（`Authorization: Bearer <token>`）です。"
    ),
    urls_namespace="api",
    auth=api_auth,
    renderer=JapaneseJSONRenderer(),
)

NOT_FOUND = gettext_lazy(
    "見つかりません。URL の ID を確認してください（担当範囲の外のものも、このように表示されます）。"
)
UNAUTHENTICATED = gettext_lazy(
    "認証が必要です。API トークンを Authorization: Bearer で送るか、サインインしてください。"
)

# Documented on every endpoint, so clients (and the schema tests) know every status they can get back.
_READ_ERRORS: dict[int, Any] = {401: schemas.ErrorOut, 404: schemas.ErrorOut, 422: schemas.ValidationErrorOut}
_WRITE_ERRORS: dict[int, Any] = {**_READ_ERRORS, 400: schemas.ErrorOut, 403: schemas.ErrorOut}


# --- errors ---------------------------------------------------------------------------------------

# pydantic's reasons in Japanese, with what to do. {name} placeholders come from the error's ctx.
_ISSUE_MESSAGES = {
    "missing": gettext_lazy("必須の項目です。値を指定してください。"),
    "string_type": gettext_lazy("文字列で指定してください。"),
    "string_too_short": gettext_lazy("{min_length}文字以上で指定してください。"),
    "string_too_long": gettext_lazy("{max_length}文字以内で指定してください。"),
    "string_pattern_mismatch": gettext_lazy("使えない文字（改行・制御文字など）が含まれています。取り除いてください。"),
    "int_type": gettext_lazy("整数で指定してください。"),
    "int_parsing": gettext_lazy("整数で指定してください。"),
    "int_from_float": gettext_lazy("整数で指定してください。"),
    "greater_than_equal": gettext_lazy("{ge}以上の値を指定してください。"),
    "less_than_equal": gettext_lazy("{le}以下の値を指定してください。"),
    "bool_type": gettext_lazy("true か false で指定してください。"),
    "bool_parsing": gettext_lazy("true か false で指定してください。"),
    "date_type": gettext_lazy("日付は YYYY-MM-DD の形で指定してください（例：2017-04-02）。"),
    "date_parsing": gettext_lazy("日付は YYYY-MM-DD の形で指定してください（例：2017-04-02）。"),
    "date_from_datetime_parsing": gettext_lazy("日付は YYYY-MM-DD の形で指定してください（例：2017-04-02）。"),
    "date_from_datetime_inexact": gettext_lazy("日付だけを YYYY-MM-DD の形で指定してください（時刻は付けません）。"),
    "literal_error": gettext_lazy("次のいずれかを指定してください：{expected}"),
    "enum": gettext_lazy("次のいずれかを指定してください：{expected}"),
    "uuid_type": gettext_lazy("ID は UUID の形で指定してください。"),
    "uuid_parsing": gettext_lazy("ID は UUID の形で指定してください。"),
    "extra_forbidden": gettext_lazy("この項目は指定できません。項目名を確認してください。"),
    "dict_type": gettext_lazy("JSON のオブジェクトで指定してください。"),
    "model_type": gettext_lazy("JSON のオブジェクトで指定してください。"),
    "model_attributes_type": gettext_lazy("JSON のオブジェクトで指定してください。"),
    "json_invalid": gettext_lazy("JSON の形式が正しくありません。"),
}
_DEFAULT_ISSUE = gettext_lazy("値が正しくありません。API の説明（/api/v1/docs）で形式を確認してください。")


def japanese_issues(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """ninja/pydantic validation errors as {loc, msg, type} with Japanese messages, never the English ones."""
    issues = []
    for error in errors:
        kind = str(error.get("type", "value_error"))
        template = _ISSUE_MESSAGES.get(kind, _DEFAULT_ISSUE)
        try:
            context = {k: v for k, v in (error.get("ctx") or {}).items() if isinstance(k, str)}
            if "expected" in context:  # pydantic writes "'a', 'b' or 'c'": keep the values, drop the English
                context["expected"] = str(context["expected"]).replace(" or ", ", ")
            message = str(template).format(**context)
        except (KeyError, IndexError):
            message = str(_DEFAULT_ISSUE)
        loc = [part if isinstance(part, int) else str(part) for part in error.get("loc", ())]
        issues.append({"loc": loc, "msg": message, "type": kind})
    return issues


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = api.create_response(request, {"detail": str(UNAUTHENTICATED)}, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="komu"'
    return response


@api.exception_handler(NotFoundOrNoAccess)
@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Exception) -> HttpResponse:
    return api.create_response(request, {"detail": str(NOT_FOUND)}, status=404)


@api.exception_handler(PermissionDeniedError)
def _forbidden(request: HttpRequest, exc: PermissionDeniedError) -> HttpResponse:
    # Only for an action the role may not take on something it can see (e.g. a health note it cannot read);
    # anything outside the caller's scope has already answered 404.
    return api.create_response(request, {"detail": str(exc)}, status=403)


@api.exception_handler(NinjaValidationError)
def _invalid_request(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    return api.create_response(request, {"detail": japanese_issues(exc.errors)}, status=422)


@api.exception_handler(ValidationFailed)
def _invalid_data(request: HttpRequest, exc: ValidationFailed) -> HttpResponse:
    issues = [
        {"loc": ["body", "data", name], "msg": message, "type": "value_error"}
        for name, messages in exc.errors.items()
        for message in messages
    ] or [{"loc": ["body", "data"], "msg": str(exc), "type": "value_error"}]
    return api.create_response(request, {"detail": issues}, status=422)


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    message = str(exc)
    if exc.status_code == 400:
        # ninja's only 400: a body that is not JSON.
        message = _("リクエストの本文を JSON として読み取れません。JSON の形式を確認してください。")
    return api.create_response(request, {"detail": message}, status=exc.status_code)


# --- helpers --------------------------------------------------------------------------------------


def _page(qs: QuerySet[Any], page: schemas.PageIn) -> tuple[list[Any], int]:
    """One page of a scoped queryset and the total: two queries whatever the page size."""
    return list(qs[page.offset:page.offset + page.limit]), qs.count()


def _actor(request: HttpRequest) -> Actor:
    return get_actor(request.auth)  # type: ignore[attr-defined]


def _role_label(role: str) -> str:
    return str(dict(Role.choices).get(role, role))


def _school_out(school: School) -> dict[str, Any]:
    return {
        "id": school.pk, "code": school.code, "name": school.name, "school_type": school.school_type,
        "board_id": school.board_id, "board_code": school.board.code, "prefecture_code": school.prefecture_id,
        "is_active": school.is_active,
    }


def _class_out(klass: HomeroomClass) -> dict[str, Any]:
    return {
        "id": klass.pk, "school_id": klass.school_year.school_id, "year": klass.school_year.year,
        "grade_code": klass.grade_code, "name": klass.name, "label": str(klass), "kind": klass.kind,
    }


def _row_out(row: StudentRow) -> dict[str, Any]:
    return {
        "id": row.id, "shusseki_no": row.shusseki_no, "class_label": row.class_label,
        "family_name": row.family_name, "given_name": row.given_name,
        "family_name_kana": row.family_name_kana, "given_name_kana": row.given_name_kana,
        "sex": row.sex_code, "sex_label": row.sex, "needs_review": row.needs_review,
    }


def _student_out(detail: students.StudentDetail) -> dict[str, Any]:
    s = detail.student
    return {
        "id": s.pk, "school_id": s.school_id, "family_name": s.family_name, "given_name": s.given_name,
        "family_name_kana": s.family_name_kana, "given_name_kana": s.given_name_kana, "sex": s.sex,
        "sex_label": s.get_sex_display(), "birth_date": s.birth_date, "address": s.address,
        "needs_review": s.needs_review, "is_active": s.is_active,
        "memberships": [
            {"class_id": m.homeroom_class_id, "class_label": str(m.homeroom_class),
             "year": m.homeroom_class.school_year.year, "shusseki_no": m.shusseki_no}
            for m in detail.memberships
        ],
        "health_note": detail.health_note,
        "guardians": None if detail.guardians is None else [vars(g) for g in detail.guardians],
        "can_edit": detail.can_edit,
    }


# --- endpoints ------------------------------------------------------------------------------------


@api.get("/me", response={200: schemas.MeOut, **_READ_ERRORS}, tags=["利用者"], summary="自分の情報と役割")
def me(request: HttpRequest) -> dict[str, Any]:
    actor = _actor(request)
    user = actor.user
    return {
        "username": user.get_username(),
        "display_name": user.display_name,
        "kind": user.kind,
        "roles": [
            {"role": g.role, "role_label": _role_label(g.role), "org_code": g.org_code,
             "org_label": g.org_label, "school_id": g.school_id, "board_id": g.board_id,
             "class_id": g.class_id}
            for g in actor.grants
        ],
    }


@api.get("/schools", response={200: schemas.SchoolPageOut, **_READ_ERRORS}, tags=["学校・学級"],
         summary="担当範囲の学校")
def school_list(request: HttpRequest, page: Query[schemas.PageIn]) -> dict[str, Any]:
    items, count = _page(directory.school_list(actor=_actor(request)), page)
    return {"items": [_school_out(s) for s in items], "count": count}


@api.get("/schools/{school_id}", response={200: schemas.SchoolOut, **_READ_ERRORS}, tags=["学校・学級"],
         summary="学校")
def school_get(request: HttpRequest, school_id: int) -> dict[str, Any]:
    return _school_out(directory.school_get_for(actor=_actor(request), school_id=school_id))


@api.get("/schools/{school_id}/classes", response={200: list[schemas.ClassOut], **_READ_ERRORS},
         tags=["学校・学級"], summary="学校の学級（年度ごと）")
def school_classes(
    request: HttpRequest, school_id: int, filters: Query[schemas.YearIn]
) -> list[dict[str, Any]]:
    school = directory.school_get_for(actor=_actor(request), school_id=school_id)
    return [_class_out(c) for c in directory.classes_of_school(school=school, year=filters.year)]


@api.get("/classes/{class_id}/students", response={200: schemas.StudentListOut, **_READ_ERRORS},
         tags=["児童生徒"], summary="学級の名簿（出席番号順）",
         description="名簿を見たことは画面と同じくアクセス記録に残ります。担任は自分の学級だけを見られます。")
def class_students(request: HttpRequest, class_id: int) -> dict[str, Any]:
    """Listing a class is audited exactly as on the class list screen (students.list.viewed)."""
    rows = students.student_list(actor=_actor(request), homeroom_class_id=class_id)
    return {"items": [_row_out(r) for r in rows], "count": len(rows)}


@api.get("/students/{student_id}", response={200: schemas.StudentOut, **_READ_ERRORS}, tags=["児童生徒"],
         summary="児童生徒の記録",
         description="健康上の配慮（health_note）と保護者の連絡先（guardians）は、見る権限のない利用者には null です。"
                     "表示した項目はアクセス記録に残ります。")
def student_get(request: HttpRequest, student_id: uuid.UUID) -> dict[str, Any]:
    """health_note and guardians are null for callers who may not see them (students.student.viewed)."""
    return _student_out(students.student_get_for(actor=_actor(request), student_id=student_id))


@api.patch("/students/{student_id}", response={200: schemas.StudentOut, **_WRITE_ERRORS}, tags=["児童生徒"],
           summary="児童生徒の記録を変更",
           description="送った項目だけを変更します（編集画面と同じ規則・同じ記録）。セッションで呼ぶときは"
                       " X-CSRFToken ヘッダーが必要です。")
def student_patch(
    request: HttpRequest, student_id: uuid.UUID, data: schemas.StudentPatchIn
) -> dict[str, Any]:
    """Only the fields sent change. Same rules as the edit screen (students.student.updated is recorded)."""
    actor = _actor(request)
    sent = data.sent_fields()
    if not sent:
        raise ValidationFailed(_("変更する項目を1つ以上指定してください。"))
    values = {name: sent.get(name, "") for name in student_services.PERSONAL_STUDENT_FIELDS}
    values["sex"] = sent.get("sex", "unspecified")
    values["birth_date"] = sent.get("birth_date")
    student_services.student_update(actor=actor, student_id=student_id,
                                    data=student_services.StudentInput(**values), only=list(sent))
    return _student_out(students.student_get_for(actor=actor, student_id=student_id))


@api.get("/audit/events", response={200: schemas.AuditEventPageOut, **_READ_ERRORS}, tags=["監査"],
         summary="アクセス記録（新しい順）",
         description="アクセス記録を見る権限（校長・副校長・教育委員会・運用者）の範囲だけを返します。")
def audit_events(
    request: HttpRequest, page: Query[schemas.PageIn], filters: Query[schemas.AuditFilterIn]
) -> dict[str, Any]:
    """Who saw or changed what, within the caller's audit scope (audit.view); others get 404 as on screen."""
    actor = _actor(request)
    if not actor.has(roles.AUDIT_VIEW):
        raise NotFoundOrNoAccess(str(NOT_FOUND))
    items, count = _page(audit_events_for(actor=actor, object_id=filters.object.strip()), page)
    return {"items": [_event_out(e) for e in items], "count": count}


def _event_out(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id, "occurred_at": event.occurred_at, "actor_username": event.actor_username,
        "actor_role": event.actor_role, "actor_org": event.actor_org, "action": event.action,
        "action_label": describe_action(event.action), "object_type": event.object_type,
        "object_id": event.object_id, "fields": list(event.fields), "school_id": event.school_id,
        "board_id": event.board_id, "request_id": event.request_id, "client_ip": event.client_ip,
        "channel": event.channel,
    }
