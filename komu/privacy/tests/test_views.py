from __future__ import annotations

import time
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from komu.access.scope import get_actor
from komu.accounts import mfa
from komu.accounts.models import ApiToken, User
from komu.audit.models import AuditEvent
from komu.privacy import services
from komu.privacy.models import Incident
from komu.testing.world import World, login_verified

pytestmark = pytest.mark.django_db


def _incident(world: World) -> Incident:
    return services.incident_create(
        actor=get_actor(world.user("principal_a")),
        data=services.IncidentInput(title="校外学習で名簿を紛失", summary="遠足の帰りに名簿の所在が不明になった。"),
        persons={world.students["a1_first"].pk: ["family_name", "given_name", "phone"],
                 world.students["a1_second"].pk: ["family_name", "given_name", "phone"]},
    )


def test_list_is_for_principals_and_boards_only(signed_in: Any, world: World) -> None:
    _incident(world)
    page = signed_in("principal_a").get(reverse("privacy:incident_list"))
    assert page.status_code == 200 and "校外学習で名簿を紛失" in page.content.decode()
    assert signed_in("teacher_a").get(reverse("privacy:incident_list")).status_code == 404


def test_empty_list_says_so(signed_in: Any) -> None:
    page = signed_in("principal_b").get(reverse("privacy:incident_list"))
    assert "記録された事案はありません" in page.content.decode()


def test_new_incident_from_a_class_selection(signed_in: Any, world: World) -> None:
    client = signed_in("principal_a")
    assert client.get(reverse("privacy:incident_new")).status_code == 200
    response = client.post(reverse("privacy:incident_new"), {
        "source": "query", "title": "1組の名簿の紛失", "kind": "lost_document",
        "found_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"), "school": str(world.school_a.pk),
        "classes": [str(world.class_a1.pk)], "items": ["family_name", "guardian_phone"],
    })
    incident = Incident.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("privacy:incident_detail",
                                                                           args=[incident.pk])
    assert incident.person_count == 2 and incident.source == "query"


def test_new_incident_form_errors_in_japanese(signed_in: Any) -> None:
    response = signed_in("principal_a").post(reverse("privacy:incident_new"), {"source": "disclosure",
                                                                              "kind": "other", "found_at": ""})
    body = response.content.decode()
    assert response.status_code == 200 and "通し番号を入力してください" in body and "発覚日時を入力してください" in body
    assert not Incident.objects.exists()


def test_detail_shows_deadlines_persons_and_saves_the_report(signed_in: Any, world: World) -> None:
    incident = _incident(world)
    client = signed_in("principal_a")
    body = client.get(reverse("privacy:incident_detail", args=[incident.pk])).content.decode()
    assert "速報（目安：3日目）" in body and "確報（30日以内）" in body and "髙橋 𠮷乃" in body
    response = client.post(reverse("privacy:incident_detail", args=[incident.pk]), {
        "title": incident.title, "cause": "引率者が名簿をバスに置き忘れた", "status": "open",
        "unlawful_purpose": "on"})
    assert response.status_code == 302
    body = client.get(reverse("privacy:incident_detail", args=[incident.pk])).content.decode()
    assert "確報（60日以内）" in body
    report = client.get(reverse("privacy:incident_report", args=[incident.pk])).content.decode()
    for item in ("概要", "漏えい等が発生し又はおそれがある個人データの項目", "本人の数", "原因",
                 "二次被害又はそのおそれの有無", "本人への対応", "公表", "再発防止"):
        assert item in report
    assert "引率者が名簿をバスに置き忘れた" in report and "2人" in report


def test_letters_one_per_pupil_addressed_to_the_guardian(signed_in: Any, world: World) -> None:
    incident = _incident(world)
    body = signed_in("principal_a").get(reverse("privacy:incident_letters", args=[incident.pk])).content.decode()
    assert body.count('class="card privacy-letter"') == 2 and "髙橋 陽子様" in body


def test_detail_out_of_scope_is_404(signed_in: Any, world: World) -> None:
    incident = _incident(world)
    client = signed_in("principal_b")
    for name in ("privacy:incident_detail", "privacy:incident_report", "privacy:incident_letters"):
        assert client.get(reverse(name, args=[incident.pk])).status_code == 404
    assert client.get(reverse("privacy:incident_detail", args=["not-a-uuid"])).status_code == 404


def _client_for(user: User) -> Client:
    client = Client()
    login_verified(client, user)
    return client


def test_lockout_needs_reauth_then_signs_out_exactly_the_school_staff(world: World) -> None:
    clients = {name: _client_for(world.user(name)) for name in
               ("teacher_a", "nurse_a", "homeroom_a1", "teacher_b", "guardian_a", "board_officer_a")}
    for client in clients.values():
        assert client.get(reverse("web:home")).status_code == 200
    ApiToken.objects.create(user=world.user("teacher_a"), name="script", prefix="abcd", token_hash="x" * 64)
    principal = _client_for(world.user("principal_a"))
    url = reverse("privacy:staff_lockout")
    assert principal.get(url).status_code == 302  # re-authentication first
    session = principal.session
    session[mfa.SESSION_REAUTH_AT] = time.time()
    session.save()
    assert principal.get(url).status_code == 200
    # Another school is not among the choices: the form refuses it.
    assert principal.post(url, {"target": f"school:{world.school_b.pk}", "reason": "x",
                                "confirm": "on"}).status_code == 200
    assert _client_for(world.user("teacher_b")).get(reverse("web:home")).status_code == 200
    response = principal.post(url, {"target": f"school:{world.school_a.pk}", "reason": "端末の盗難",
                                    "confirm": "on"})
    assert response.status_code == 302
    for name in ("teacher_a", "nurse_a", "homeroom_a1"):
        assert clients[name].get(reverse("web:home")).status_code == 302, name
        assert not world.user(name).__class__.objects.get(pk=world.user(name).pk).has_usable_password()
    for name in ("teacher_b", "guardian_a", "board_officer_a"):
        assert clients[name].get(reverse("web:home")).status_code == 200, name
    assert principal.get(reverse("privacy:incident_list")).status_code == 200
    assert User.objects.get(pk=world.user("principal_a").pk).has_usable_password()
    assert ApiToken.objects.get().revoked_at is not None
    event = AuditEvent.objects.get(action="privacy.staff.locked_out")
    assert event.school_id == world.school_a.pk and event.detail["accounts"] == 5
    assert Session.objects.exists()


def test_lockout_is_not_for_vice_principals(signed_in: Any) -> None:
    assert signed_in("vice_principal_a").get(reverse("privacy:staff_lockout")).status_code == 404
