"""Screens: export (board and school administrators), import and API clients (board officer)."""

from __future__ import annotations

import io
import time
import zipfile
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from komu.access.scope import get_actor
from komu.accounts import mfa
from komu.audit.models import AuditEvent
from komu.oneroster.models import ApiClient
from komu.oneroster.selectors import export_scope_for
from komu.oneroster.services import SCOPE_ROSTER, client_create, roster_export, zip_files
from komu.students.models import Student
from komu.testing.world import World


@pytest.fixture
def signed_in_fresh(signed_in: Any) -> Any:
    """Signed in and re-authenticated a moment ago (export and client registration ask for it)."""

    def _as(name: str) -> Any:
        client = signed_in(name)
        session = client.session
        session[mfa.SESSION_REAUTH_AT] = time.time()
        session.save()
        return client

    return _as


def test_export_asks_for_reauthentication_first(signed_in: Any, roster_world: World) -> None:
    response = signed_in("board_officer_a").get(reverse("oneroster:export"))
    assert response.status_code == 302 and "reauth" in response["Location"]


def test_board_officer_downloads_the_board_zip(signed_in_fresh: Any, roster_world: World) -> None:
    client = signed_in_fresh("board_officer_a")
    page = client.get(reverse("oneroster:export"))
    assert page.status_code == 200
    assert "出力の目的" in page.content.decode()
    response = client.post(reverse("oneroster:export"), {
        "target": f"board:{roster_world.board_a.code}", "mode": "bulk", "reason": "学習eポータル登録"})
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    assert "manifest.csv" in names and "enrollments.csv" in names
    assert AuditEvent.objects.filter(action="oneroster.export.created").exists()


def test_export_without_reason_shows_the_error_next_to_the_field(signed_in_fresh: Any, roster_world: World) -> None:
    client = signed_in_fresh("principal_a")
    response = client.post(reverse("oneroster:export"), {"target": f"school:{roster_world.school_a.code}",
                                                         "mode": "delta", "reason": ""})
    assert response.status_code == 400
    body = response.content.decode()
    assert "出力の目的を入力してください" in body and "差分では起点の日時を入力してください" in body


def test_a_principal_cannot_pick_another_school(signed_in_fresh: Any, roster_world: World) -> None:
    client = signed_in_fresh("principal_a")
    page = client.get(reverse("oneroster:export")).content.decode()
    assert roster_world.school_a.code in page and roster_world.school_b.code not in page
    response = client.post(reverse("oneroster:export"), {"target": f"school:{roster_world.school_b.code}",
                                                         "mode": "bulk", "reason": "x"})
    assert response.status_code == 400


def test_teachers_do_not_have_the_pages(signed_in: Any, roster_world: World) -> None:
    client = signed_in("teacher_a")
    for name in ("oneroster:export", "oneroster:import", "oneroster:clients"):
        assert client.get(reverse(name)).status_code == 404


def test_import_page_lists_errors_by_file_line_and_column(signed_in: Any, roster_world: World) -> None:
    actor = get_actor(roster_world.user("board_officer_a"))
    files = roster_export(actor=actor, roster_scope=export_scope_for(actor=actor, board_code=roster_world.board_a.code),
                          since=None, reason="x").files
    broken = files["users.csv"].decode().split("\r\n")
    cells = broken[1].split(",")
    cells[7] = ""  # familyName
    broken[1] = ",".join(cells)
    bad = zip_files({**files, "users.csv": "\r\n".join(broken).encode()})
    client = signed_in("board_officer_a")
    response = client.post(reverse("oneroster:import"), {
        "bundle": SimpleUploadedFile("or.zip", bad, content_type="application/zip"), "dry_run": "on"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "何も登録していません" in body and "users.csv" in body and "familyName" in body


def test_import_dry_run_of_a_good_bundle(signed_in: Any, roster_world: World) -> None:
    actor = get_actor(roster_world.user("board_officer_a"))
    files = roster_export(actor=actor, roster_scope=export_scope_for(actor=actor, board_code=roster_world.board_a.code),
                          since=None, reason="x").files
    before = Student.objects.count()
    client = signed_in("board_officer_a")
    response = client.post(reverse("oneroster:import"), {
        "bundle": SimpleUploadedFile("or.zip", zip_files(files), content_type="application/zip"), "dry_run": "on"})
    assert response.status_code == 200
    assert "誤りはありません" in response.content.decode()
    assert Student.objects.count() == before


def test_import_refuses_a_non_zip(signed_in: Any, roster_world: World) -> None:
    client = signed_in("board_officer_a")
    response = client.post(reverse("oneroster:import"), {
        "bundle": SimpleUploadedFile("or.zip", b"hello", content_type="application/zip")})
    assert response.status_code == 400 and "ZIP ファイルとして読めません" in response.content.decode()


def test_board_officer_registers_a_client_and_sees_the_secret_once(signed_in_fresh: Any, roster_world: World) -> None:
    client = signed_in_fresh("board_officer_a")
    response = client.post(reverse("oneroster:clients"), {
        "name": "学習eポータル", "schools": [str(roster_world.school_a.pk)], "scopes": [SCOPE_ROSTER],
        "rate_limit_per_minute": "600"})
    assert response.status_code == 200
    body = response.content.decode()
    registered = ApiClient.objects.get()
    assert registered.client_id in body and "今しか表示されません" in body
    again = client.get(reverse("oneroster:clients")).content.decode()
    assert registered.client_id in again and "今しか表示されません" not in again


def test_board_officer_revokes_after_confirming(signed_in_fresh: Any, roster_world: World) -> None:
    issued = client_create(actor=get_actor(roster_world.user("board_officer_a")), board_id=roster_world.board_a.pk,
                           name="x", school_ids=[roster_world.school_a.pk], scopes=[SCOPE_ROSTER])
    client = signed_in_fresh("board_officer_a")
    url = reverse("oneroster:client_revoke", args=[issued.client.pk])
    assert "停止します" in client.get(url).content.decode()
    assert client.post(url).status_code == 302
    issued.client.refresh_from_db()
    assert issued.client.revoked_at is not None


def test_another_boards_client_is_not_found(signed_in_fresh: Any, roster_world: World) -> None:
    issued = client_create(actor=get_actor(roster_world.user("board_officer_a")), board_id=roster_world.board_a.pk,
                           name="みどり市のポータル", school_ids=[roster_world.school_a.pk], scopes=[SCOPE_ROSTER])
    client = signed_in_fresh("board_officer_b")
    assert client.post(reverse("oneroster:client_revoke", args=[issued.client.pk])).status_code == 404
    assert issued.client.name not in client.get(reverse("oneroster:clients")).content.decode()
