"""The JSON API, read as sentences: how callers authenticate, that scope and audit match the screens exactly,
and that errors are the documented JSON with Japanese messages."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from komu.accounts.services import api_token_issue
from komu.audit.models import AuditEvent
from komu.students.models import ClassMembership, Student
from komu.testing.world import World

pytestmark = pytest.mark.django_db

API = "/api/v1"


def token_client(world: World, persona: str, **issue: Any) -> Client:
    raw = api_token_issue(actor=world.user(persona), name="テスト", expires_at=issue.get("expires_at")).raw
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def patch(client: Client, url: str, body: Any, **extra: Any) -> Any:
    return client.patch(url, data=json.dumps(body), content_type="application/json", **extra)


# --- authentication --------------------------------------------------------------------------------------------


def test_a_bearer_token_authenticates_as_its_owner(world: World) -> None:
    response = token_client(world, "homeroom_a1").get(f"{API}/me")
    assert response.status_code == 200
    body = response.json()
    assert body["username"] == "homeroom_a1"
    assert body["roles"] == [{
        "role": "homeroom_teacher", "role_label": "学級担任", "org_code": world.school_a.code,
        "org_label": f"{world.school_a} {world.class_a1}", "school_id": world.school_a.pk, "board_id": None,
        "class_id": world.class_a1.pk,
    }]


def test_no_credentials_answer_401_in_japanese(world: World) -> None:
    response = Client().get(f"{API}/me")
    assert response.status_code == 401
    assert "認証が必要です" in response.json()["detail"]
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer komu_not-a-real-token", "Bearer ", "Basic dXNlcjpwYXNz", "komu_x"])
def test_unknown_or_malformed_tokens_answer_401(world: World, header: str) -> None:
    assert Client(HTTP_AUTHORIZATION=header).get(f"{API}/me").status_code == 401


def test_revoked_and_expired_tokens_answer_401(world: World) -> None:
    from komu.accounts.models import ApiToken

    expired = token_client(world, "principal_a", expires_at=timezone.now() + datetime.timedelta(seconds=1))
    ApiToken.objects.update(expires_at=timezone.now() - datetime.timedelta(minutes=1))
    assert expired.get(f"{API}/me").status_code == 401
    revoked = token_client(world, "principal_a")
    ApiToken.objects.update(revoked_at=timezone.now())
    assert revoked.get(f"{API}/me").status_code == 401


def test_a_session_counts_only_after_the_second_factor(client: Client, world: World) -> None:
    client.force_login(world.user("principal_a"))  # password only
    assert client.get(f"{API}/me").status_code == 401


def test_a_verified_session_authenticates(signed_in: Any, world: World) -> None:
    response = signed_in("principal_a").get(f"{API}/me")
    assert response.status_code == 200
    assert response.json()["username"] == "principal_a"


def test_guardians_use_the_session_without_mfa(client: Client, world: World) -> None:
    client.force_login(world.user("guardian_a"))
    response = client.get(f"{API}/students/{world.students['a1_first'].pk}")
    assert response.status_code == 200


def test_a_session_patch_needs_the_csrf_token(world: World) -> None:
    from komu.testing.world import login_verified

    browser = Client(enforce_csrf_checks=True)
    login_verified(browser, world.user("principal_a"))
    url = f"{API}/students/{world.students['a1_first'].pk}"
    refused = patch(browser, url, {"address": "CSRF なし"})
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    browser.get(reverse("students:detail", kwargs={"student_id": world.students["a1_first"].pk}))
    token = browser.cookies["csrftoken"].value
    accepted = patch(browser, url, {"address": "CSRF あり"}, HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 200
    assert accepted.json()["address"] == "CSRF あり"


def test_a_token_patch_needs_no_csrf_token(world: World) -> None:
    client = token_client(world, "principal_a")
    client.handler.enforce_csrf_checks = True
    response = patch(client, f"{API}/students/{world.students['a1_first'].pk}", {"address": "トークン"})
    assert response.status_code == 200


# --- scope: the same as the screens ----------------------------------------------------------------------------

PERSONAS = ["homeroom_a1", "teacher_a", "nurse_a", "principal_a", "principal_b", "board_officer_a",
            "school_admin_a", "guardian_a", "guardian_b", "operator", "pref_analyst"]


@pytest.mark.parametrize("persona", PERSONAS)
def test_api_and_screens_reach_exactly_the_same_pupils(signed_in: Any, world: World, persona: str) -> None:
    screen = signed_in(persona)
    api = token_client(world, persona)
    for student in world.students.values():
        ui = screen.get(reverse("students:detail", kwargs={"student_id": student.pk})).status_code
        via_api = api.get(f"{API}/students/{student.pk}")
        assert (ui, via_api.status_code) in {(200, 200), (404, 404)}, (persona, student)
        if via_api.status_code == 200:
            html = screen.get(reverse("students:detail", kwargs={"student_id": student.pk})).content.decode()
            shown = via_api.json()
            assert (shown["health_note"] is not None) == ("健康上の配慮" in html)
            assert (shown["guardians"] is not None) == ("保護者の連絡先" in html)


@pytest.mark.parametrize("persona", PERSONAS)
def test_api_and_screens_list_exactly_the_same_classes(signed_in: Any, world: World, persona: str) -> None:
    screen = signed_in(persona)
    api = token_client(world, persona)
    for klass in (world.class_a1, world.class_a2, world.class_b1):
        ui = screen.get(reverse("students:list"), {"class": klass.pk})
        via_api = api.get(f"{API}/classes/{klass.pk}/students")
        if ui.status_code == 302:  # a guardian is sent to their children's page: no class list at all
            assert via_api.status_code == 404
            continue
        assert (ui.status_code, via_api.status_code) in {(200, 200), (404, 404)}, (persona, klass)
        if ui.status_code == 200:
            assert [str(r.id) for r in ui.context["rows"]] == [i["id"] for i in via_api.json()["items"]]


def test_out_of_scope_and_missing_are_the_same_404(world: World) -> None:
    client = token_client(world, "principal_a")
    outside = client.get(f"{API}/students/{world.students['b1_first'].pk}")
    missing = client.get(f"{API}/students/00000000-0000-4000-8000-000000000000")
    assert outside.status_code == missing.status_code == 404
    assert outside.json() == missing.json()
    assert client.get(f"{API}/schools/{world.school_b.pk}").status_code == 404
    assert client.get(f"{API}/schools/{world.school_b.pk}/classes").status_code == 404
    assert client.get(f"{API}/classes/{world.class_b1.pk}/students").status_code == 404
    assert client.get(f"{API}/schools/999999").status_code == 404


def test_schools_are_listed_within_scope_and_paginated(world: World) -> None:
    officer = token_client(world, "board_officer_a")
    page = officer.get(f"{API}/schools", {"limit": 1}).json()
    assert page["count"] == 2
    assert [s["id"] for s in page["items"]] == [world.school_a.pk]
    second = officer.get(f"{API}/schools", {"limit": 1, "offset": 1}).json()
    assert [s["id"] for s in second["items"]] == [world.school_a2.pk]
    assert token_client(world, "guardian_a").get(f"{API}/schools").json() == {"items": [], "count": 0}


def test_classes_of_a_school(world: World) -> None:
    classes = token_client(world, "teacher_a").get(f"{API}/schools/{world.school_a.pk}/classes").json()
    assert [(c["id"], c["label"]) for c in classes] == [(world.class_a1.pk, "小学1年 1組"),
                                                        (world.class_a2.pk, "小学1年 2組")]


def test_audit_events_need_audit_view(world: World) -> None:
    assert token_client(world, "teacher_a").get(f"{API}/audit/events").status_code == 404
    assert token_client(world, "principal_a").get(f"{API}/audit/events").status_code == 200


def test_audit_events_stay_within_the_viewers_scope(world: World) -> None:
    token_client(world, "principal_b").get(f"{API}/students/{world.students['b1_first'].pk}")
    token_client(world, "principal_a").get(f"{API}/students/{world.students['a1_first'].pk}")
    seen_by_a = token_client(world, "principal_a").get(f"{API}/audit/events").json()["items"]
    viewed = [e["object_id"] for e in seen_by_a if e["action"] == "students.student.viewed"]
    assert viewed == [str(world.students["a1_first"].pk)]


# --- audit: the same events as the screens ---------------------------------------------------------------------


def test_reading_a_record_through_the_api_is_audited_as_api(world: World) -> None:
    student = world.students["a1_first"]
    token_client(world, "nurse_a").get(f"{API}/students/{student.pk}")
    event = AuditEvent.objects.get(action="students.student.viewed")
    assert (event.actor_username, event.object_id, event.channel) == ("nurse_a", str(student.pk), "api")
    assert event.actor_role == "school_nurse"
    assert "health_note" in event.fields


def test_listing_a_class_through_the_api_is_audited(world: World) -> None:
    token_client(world, "homeroom_a1").get(f"{API}/classes/{world.class_a1.pk}/students")
    event = AuditEvent.objects.get(action="students.list.viewed")
    assert event.object_id == str(world.class_a1.pk)
    assert event.channel == "api"
    assert event.detail["count"] == 2


def test_the_audit_filter_finds_who_saw_a_pupil(world: World) -> None:
    student = world.students["a1_first"]
    token_client(world, "nurse_a").get(f"{API}/students/{student.pk}")
    found = token_client(world, "principal_a").get(f"{API}/audit/events", {"object": str(student.pk)}).json()
    assert [(e["actor_username"], e["action_label"]) for e in found["items"]] == [
        ("nurse_a", "児童生徒の記録を表示")
    ]


# --- writing ---------------------------------------------------------------------------------------------------


def test_patch_changes_only_the_fields_sent_and_is_audited(world: World) -> None:
    student = world.students["a1_first"]
    response = patch(token_client(world, "principal_a"), f"{API}/students/{student.pk}",
                     {"given_name_kana": "よしの", "birth_date": "2017-05-01"})
    assert response.status_code == 200
    assert response.json()["given_name_kana"] == "ヨシノ"
    assert response.json()["birth_date"] == "2017-05-01"
    student.refresh_from_db()
    assert student.health_note == "卵アレルギー" and student.address == "架空県みどり市一丁目1-1"
    event = AuditEvent.objects.get(action="students.student.updated")
    assert event.fields == ["birth_date"] and event.channel == "api"


def test_patch_by_someone_who_may_only_read_is_404(world: World) -> None:
    response = patch(token_client(world, "homeroom_a1"), f"{API}/students/{world.students['a1_first'].pk}",
                     {"address": "x"})
    assert response.status_code == 404


def test_patching_the_health_note_without_reading_rights_is_refused(world: World) -> None:
    response = patch(token_client(world, "board_officer_a"), f"{API}/students/{world.students['a1_first'].pk}",
                     {"health_note": "なし"})
    assert response.status_code == 403
    assert response.json()["detail"] == "健康上の配慮を変更する権限がありません。"


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"family_name_kana": "Takahashi"}, "family_name_kana", "カタカナ"),
        ({"birth_date": "令和元年"}, "birth_date", "YYYY-MM-DD"),
        ({"sex": "x"}, "sex", "次のいずれか"),
        ({"family_name": ""}, "family_name", "1文字以上"),
        ({"nickname": "x"}, "nickname", "指定できません"),
        ({"address": "あ" * 201}, "address", "200文字以内"),
    ],
)
def test_invalid_input_is_422_with_japanese_messages(world: World, body: dict[str, Any], field: str,
                                                     words: str) -> None:
    response = patch(token_client(world, "principal_a"), f"{API}/students/{world.students['a1_first'].pk}", body)
    assert response.status_code == 422
    [issue] = response.json()["detail"]
    assert issue["loc"][-1] == field
    assert words in issue["msg"]
    assert not AuditEvent.objects.filter(action="students.student.updated").exists()


def test_an_empty_patch_says_what_to_send(world: World) -> None:
    response = patch(token_client(world, "principal_a"), f"{API}/students/{world.students['a1_first'].pk}", {})
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"] == "変更する項目を1つ以上指定してください。"


def test_a_body_that_is_not_json_is_400_in_japanese(world: World) -> None:
    client = token_client(world, "principal_a")
    response = client.patch(f"{API}/students/{world.students['a1_first'].pk}", data="{not json",
                            content_type="application/json")
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]


def test_query_parameters_out_of_range_are_422(world: World) -> None:
    response = token_client(world, "principal_a").get(f"{API}/schools", {"limit": 0, "offset": -1})
    assert response.status_code == 422
    assert {tuple(i["loc"]) for i in response.json()["detail"]} == {("query", "limit"), ("query", "offset")}
    assert all(i["msg"].endswith("の値を指定してください。") for i in response.json()["detail"])


def test_names_come_back_exactly_as_stored(world: World) -> None:
    rows = token_client(world, "homeroom_a1").get(f"{API}/classes/{world.class_a1.pk}/students").json()["items"]
    assert [(r["family_name"], r["given_name"]) for r in rows] == [("髙橋", "𠮷乃"), ("山﨑", "葛󠄀太")]


# --- cost ------------------------------------------------------------------------------------------------------


def test_class_list_endpoint_costs_the_same_queries_for_2_or_35_pupils(
    world: World, django_assert_num_queries: Any
) -> None:
    client = token_client(world, "homeroom_a1")
    url = f"{API}/classes/{world.class_a1.pk}/students"
    client.get(url)  # the first use of a token also records when it was last used
    with CaptureQueriesContext(connection) as small:
        assert client.get(url).status_code == 200
    for no in range(3, 36):
        pupil = Student(school=world.school_a, family_name="青木", given_name="一", family_name_kana="アオキ",
                        given_name_kana="ハジメ")
        pupil.save()
        ClassMembership.objects.create(student=pupil, homeroom_class=world.class_a1, shusseki_no=no)
    with django_assert_num_queries(len(small.captured_queries)):
        response = client.get(url)
    assert response.json()["count"] == 35


def test_audit_events_endpoint_costs_the_same_queries_for_any_page_size(
    world: World, django_assert_num_queries: Any
) -> None:
    client = token_client(world, "principal_a")
    for _ in range(3):
        client.get(f"{API}/students/{world.students['a1_first'].pk}")
    with CaptureQueriesContext(connection) as small:
        client.get(f"{API}/audit/events", {"limit": 1})
    with django_assert_num_queries(len(small.captured_queries)):
        response = client.get(f"{API}/audit/events", {"limit": 50})
    assert len(response.json()["items"]) >= 3


def test_openapi_and_docs_are_served(world: World) -> None:
    schema = Client().get(f"{API}/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/v1/me", "/api/v1/students/{student_id}", "/api/v1/audit/events"} <= set(paths)
    docs = Client().get(f"{API}/docs")
    assert docs.status_code == 200
    assert b"cdn.jsdelivr" not in docs.content  # Swagger UI comes from our own static files
