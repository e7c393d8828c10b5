"""REST binding: OAuth 2 client credentials, scopes, paging, filter, sort, fields, relation endpoints, spec
error payloads, rate limit, and a client of board A that never sees board B — not even with an OR."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from django.test import Client

from komu.access.scope import get_actor
from komu.audit.models import AuditEvent
from komu.core.errors import PermissionDeniedError, ValidationFailed
from komu.oneroster import query
from komu.oneroster.services import (
    SCOPE_CORE,
    SCOPE_DEMOGRAPHICS,
    SCOPE_ROSTER,
    IssuedClient,
    client_create,
    client_revoke,
)
from komu.students.models import Student
from komu.testing.world import World

BASE = "/ims/oneroster/rostering/v1p2"


@pytest.fixture(autouse=True)
def _no_roster_cache(settings: Any) -> None:
    settings.ONEROSTER_REST_CACHE_SECONDS = 0


def register(world: World, *, schools: list[Any] | None = None, scopes: tuple[str, ...] = (SCOPE_ROSTER,),
             rate: int = 600) -> IssuedClient:
    actor = get_actor(world.user("board_officer_a"))
    return client_create(actor=actor, board_id=world.board_a.pk, name="学習eポータル",
                         school_ids=[s.pk for s in (schools or [world.school_a, world.school_a2])],
                         scopes=scopes, rate_limit_per_minute=rate)


def bearer(client: Client, issued: IssuedClient, scope: str = "") -> dict[str, str]:
    basic = base64.b64encode(f"{issued.client.client_id}:{issued.secret}".encode()).decode()
    data = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    response = client.post("/ims/oneroster/token", data, HTTP_AUTHORIZATION=f"Basic {basic}")
    assert response.status_code == 200, response.content
    assert response.json()["token_type"] == "bearer"
    return {"HTTP_AUTHORIZATION": f"Bearer {response.json()['access_token']}"}


def get(client: Client, auth: dict[str, str], path: str, **params: str) -> Any:
    return client.get(BASE + path, params, **auth)


def test_a_registered_client_pages_through_its_schools_students_with_a_filter(client: Client, roster_world: World) -> None:
    auth = bearer(client, register(roster_world))
    response = get(client, auth, "/students", limit="2", offset="0", sort="familyName")
    assert response.status_code == 200
    assert response["X-Total-Count"] == "3"
    page = response.json()["users"]
    assert len(page) == 2
    assert 'rel="next"' in response["Link"] and 'rel="last"' in response["Link"]
    second = get(client, auth, "/students", limit="2", offset="2", sort="familyName").json()["users"]
    assert len(second) == 1 and second[0]["sourcedId"] not in {u["sourcedId"] for u in page}
    filtered = get(client, auth, "/students", filter="metadata.jp.kanaFamilyName='タカハシ'").json()["users"]
    assert [u["familyName"] for u in filtered] == ["髙橋"]
    assert filtered[0]["roles"][0]["role"] == "student"


def test_an_or_in_the_filter_cannot_reach_another_boards_pupils(client: Client, roster_world: World) -> None:
    auth = bearer(client, register(roster_world))
    b_pupil = str(roster_world.students["b1_first"].pk)
    response = get(client, auth, "/users", filter=f"sourcedId='{b_pupil}' OR familyName~''")
    ids = {u["sourcedId"] for u in response.json()["users"]}
    assert b_pupil not in ids and ids
    assert get(client, auth, f"/students/{b_pupil}").status_code == 404
    assert get(client, auth, f"/users/{b_pupil}").json()["imsx_codeMajor"] == "failure"


def test_a_client_sees_only_the_schools_it_was_registered_for(client: Client, roster_world: World) -> None:
    auth = bearer(client, register(roster_world, schools=[roster_world.school_a2]))
    assert get(client, auth, "/students").json()["users"] == []
    schools = get(client, auth, "/schools").json()["orgs"]
    assert [s["identifier"] for s in schools] == [roster_world.school_a2.code]


def test_a_board_officer_cannot_register_another_boards_schools(roster_world: World) -> None:
    actor = get_actor(roster_world.user("board_officer_a"))
    with pytest.raises(ValidationFailed):
        client_create(actor=actor, board_id=roster_world.board_a.pk, name="x", school_ids=[roster_world.school_b.pk],
                      scopes=[SCOPE_ROSTER])
    with pytest.raises(PermissionDeniedError):
        client_create(actor=actor, board_id=roster_world.board_b.pk, name="x",
                      school_ids=[roster_world.school_b.pk], scopes=[SCOPE_ROSTER])


def test_relation_endpoints(client: Client, roster_world: World) -> None:
    auth = bearer(client, register(roster_world))
    schools = get(client, auth, "/schools").json()["orgs"]
    school_a = next(s for s in schools if s["identifier"] == roster_world.school_a.code)
    pupils = get(client, auth, f"/schools/{school_a['sourcedId']}/students").json()["users"]
    assert len(pupils) == 3
    classes = get(client, auth, f"/schools/{school_a['sourcedId']}/classes").json()["classes"]
    class_a1 = next(c for c in classes if c["sourcedId"] == next(
        u for u in pupils if u["familyName"] == "髙橋")["metadata"]["jp.homeClass"])
    in_class = get(client, auth, f"/classes/{class_a1['sourcedId']}/students").json()["users"]
    assert sorted(u["familyName"] for u in in_class) == ["山﨑", "髙橋"]
    teachers = get(client, auth, f"/classes/{class_a1['sourcedId']}/teachers").json()["users"]
    assert [t["username"] for t in teachers] == ["homeroom_a1"]
    enrollments = get(client, auth, "/enrollments", filter="role='student'").json()["enrollments"]
    assert {e["metadata"]["jp.ShussekiNo"] for e in enrollments} == {"1", "2"}
    teacher = teachers[0]["sourcedId"]
    assert [c["title"] for c in get(client, auth, f"/teachers/{teacher}/classes").json()["classes"]] == ["1組"]


def test_single_items_and_fields(client: Client, roster_world: World) -> None:
    auth = bearer(client, register(roster_world))
    pupil = str(roster_world.students["a1_first"].pk)
    response = get(client, auth, f"/students/{pupil}", fields="sourcedId,givenName")
    assert response.json() == {"user": {"sourcedId": pupil, "givenName": "𠮷乃"}}
    listed = get(client, auth, "/users", fields="sourcedId,username").json()["users"]
    assert all(set(u) == {"sourcedId", "username"} for u in listed)


@pytest.mark.parametrize(("params", "status", "minor"), [
    ({"filter": "familyName=山田"}, 400, "invalid_filter_field"),
    ({"filter": "familyName='山田' XOR givenName='a'"}, 400, "invalid_filter_field"),
    ({"filter": "nosuchfield='1'"}, 400, "invalid_filter_field"),
    ({"sort": "nosuchfield"}, 400, "invalid_sort_field"),
    ({"fields": "sourcedId,nosuch"}, 400, "invalid_selection_field"),
    ({"limit": "-1"}, 422, "invaliddata"),
    ({"limit": "abc"}, 422, "invaliddata"),
    ({"orderBy": "up"}, 400, "invalid_sort_field"),
])
def test_bad_queries_answer_the_spec_error_payload(client: Client, roster_world: World, params: dict[str, str],
                                                     status: int, minor: str) -> None:
    auth = bearer(client, register(roster_world))
    response = get(client, auth, "/users", **params)
    assert response.status_code == status
    body = response.json()
    assert body["imsx_codeMajor"] == "failure" and body["imsx_severity"] == "error"
    assert body["imsx_CodeMinor"]["imsx_codeMinorField"][0]["imsx_codeMinorFieldValue"] == minor


def test_no_token_is_401_and_a_wrong_secret_gets_no_token(client: Client, roster_world: World) -> None:
    response = client.get(BASE + "/users")
    assert response.status_code == 401 and response.json()["imsx_codeMajor"] == "failure"
    assert client.get(BASE + "/users", HTTP_AUTHORIZATION="Bearer nope").status_code == 401
    issued = register(roster_world)
    wrong = client.post("/ims/oneroster/token", {"grant_type": "client_credentials",
                                                 "client_id": issued.client.client_id, "client_secret": "x"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"


def test_scopes_decide_what_a_token_reads(client: Client, roster_world: World) -> None:
    issued = register(roster_world, scopes=(SCOPE_CORE, SCOPE_DEMOGRAPHICS))
    core = bearer(client, issued, scope=SCOPE_CORE)
    assert get(client, core, "/users").status_code == 200
    assert get(client, core, "/enrollments").status_code == 403
    assert get(client, core, "/demographics").status_code == 403
    demo = bearer(client, issued, scope=SCOPE_DEMOGRAPHICS)
    body = get(client, demo, "/demographics").json()["demographics"]
    assert {d["sex"] for d in body} <= {"male", "female", "unspecified"} and len(body) == 3
    asked_too_much = client.post("/ims/oneroster/token", {
        "grant_type": "client_credentials", "client_id": issued.client.client_id, "client_secret": issued.secret,
        "scope": SCOPE_ROSTER})
    assert asked_too_much.status_code == 400 and asked_too_much.json()["error"] == "invalid_scope"


def test_rate_limit_answers_429(client: Client, roster_world: World) -> None:
    auth = bearer(client, register(roster_world, rate=2))
    assert get(client, auth, "/orgs").status_code == 200
    assert get(client, auth, "/orgs").status_code == 200
    response = get(client, auth, "/orgs")
    assert response.status_code == 429 and response["Retry-After"] == "60"
    assert response.json()["imsx_codeMajor"] == "failure"


def test_a_revoked_client_is_refused(client: Client, roster_world: World) -> None:
    issued = register(roster_world)
    auth = bearer(client, issued)
    client_revoke(actor=get_actor(roster_world.user("board_officer_a")), client_id=issued.client.pk)
    assert get(client, auth, "/users").status_code == 401


def test_reads_of_persons_are_audited(client: Client, roster_world: World) -> None:
    auth = bearer(client, register(roster_world))
    get(client, auth, "/students", limit="1", sort="familyName")
    event = AuditEvent.objects.filter(action="oneroster.api.read").latest("id")
    assert len(event.detail["person_ids"]) == 1
    assert event.detail["person_ids"][0] in {str(s.pk) for s in Student.objects.all()}


def test_openapi_document_lists_every_route(client: Client) -> None:
    document = client.get(BASE + "/openapi.json").json()
    assert document["openapi"].startswith("3.")
    for route in ("/students", "/schools/{sourcedId}/students", "/classes/{sourcedId}/teachers", "/demographics"):
        assert route in document["paths"]


@pytest.mark.parametrize(("text", "groups"), [
    ("a='1'", 1),
    ("a='1' AND b!='2'", 1),
    ("a='1' OR b>='2' AND c~'x'", 2),
    ("name='O''Brien'", 1),
])
def test_filter_grammar(text: str, groups: int) -> None:
    parsed = query.parse_filter(text)
    assert len(parsed.groups) == groups
    if "O''Brien" in text:
        assert parsed.groups[0][0].value == "O'Brien"


def test_filter_and_binds_tighter_than_or() -> None:
    parsed = query.parse_filter("a='1' OR b='2' AND c='3'")
    assert parsed.matches({"a": "1", "b": "0", "c": "0"})
    assert not parsed.matches({"a": "0", "b": "2", "c": "0"})
    assert parsed.matches({"a": "0", "b": "2", "c": "3"})


def test_comparisons_on_dates() -> None:
    parsed = query.parse_filter("dateLastModified>'2026-01-01T00:00:00.000Z'")
    assert parsed.matches({"dateLastModified": "2026-04-01T00:00:00.000Z"})
    assert not parsed.matches({"dateLastModified": "2025-12-31T00:00:00.000Z"})


def test_paging_past_the_end_and_the_last_page(client: Client, roster_world: World) -> None:
    auth = bearer(client, register(roster_world))
    beyond = get(client, auth, "/students", offset="50")
    assert beyond.status_code == 200 and beyond.json()["users"] == [] and beyond["X-Total-Count"] == "3"
    last = get(client, auth, "/students", limit="2", offset="2")
    assert 'rel="next"' not in last["Link"] and 'rel="prev"' in last["Link"] and "offset=0" in last["Link"]
    default = get(client, auth, "/students")
    assert "limit=100" in default["Link"]


def test_order_by_desc_and_a_quoted_value_with_and_inside(client: Client, roster_world: World) -> None:
    auth = bearer(client, register(roster_world))
    names = [u["familyName"] for u in get(client, auth, "/students", sort="familyName", orderBy="desc").json()["users"]]
    assert names == sorted(names, reverse=True)
    assert get(client, auth, "/students", filter="familyName='A AND B'").json()["users"] == []


def test_filter_on_a_nested_reference(client: Client, roster_world: World) -> None:
    auth = bearer(client, register(roster_world))
    schools = get(client, auth, "/schools").json()["orgs"]
    school_a = next(s for s in schools if s["identifier"] == roster_world.school_a.code)["sourcedId"]
    classes = get(client, auth, "/classes", filter=f"school.sourcedId='{school_a}'").json()["classes"]
    assert len(classes) == 2


def test_list_queries_do_not_grow_with_the_number_of_pupils(client: Client, roster_world: World) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from komu.students.models import ClassMembership

    auth = bearer(client, register(roster_world))
    get(client, auth, "/students")  # sourcedIds assigned once
    with CaptureQueriesContext(connection) as small:
        get(client, auth, "/students")
    for n in range(10):
        student = Student(school=roster_world.school_a, family_name="追加", given_name=f"{n}",
                          family_name_kana="ツイカ", given_name_kana="イチ")
        student.save()
        ClassMembership.objects.create(student=student, homeroom_class=roster_world.class_a2, shusseki_no=10 + n)
    get(client, auth, "/students")
    with CaptureQueriesContext(connection) as large:
        response = get(client, auth, "/students")
    assert response["X-Total-Count"] == "13"
    assert 0 < len(large.captured_queries) <= len(small.captured_queries)
