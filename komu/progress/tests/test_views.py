from __future__ import annotations

import csv
import datetime
import io
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from komu.progress import services
from komu.progress.tests.conftest import MemberKey, act, member_payload, put_value
from komu.testing.world import World, login_verified

pytestmark = pytest.mark.django_db
OCT = datetime.date(2026, 10, 1)


@pytest.fixture
def data(world: World) -> World:
    for month in (datetime.date(2026, 9, 1), OCT):
        put_value(world.school_a, month, "comm_digital", 30, 40)
        put_value(world.school_a2, month, "comm_digital", 5, 20)
        put_value(world.school_b, month, "comm_digital", 12, 12)
        put_value(world.school_a, month, "absence_digital", 3, 15)  # a small class: counts must be hidden
        put_value(world.school_b, month, "personal_data_outputs", 4, 1)
    services.rollups_refresh(months=[datetime.date(2026, 9, 1), OCT])
    return world


def _client(world: World, name: str) -> Client:
    client = Client()
    login_verified(client, world.user(name))
    return client


def test_a_board_sees_its_schools_against_prefecture_and_nation(data: World) -> None:
    response = _client(data, "board_officer_a").get(reverse("progress:dashboard") + "?month=2026-10", follow=True)
    assert response.status_code == 200
    body = response.content.decode()
    for name in ("みどり市教育委員会", "東京都", "全国", "みどり市立第一小学校", "みどり市立第一中学校", "<svg"):
        assert name in body
    assert "あおば町立あおば小学校" not in body
    assert "未計測" in body  # indicators without a source row


def test_a_board_cannot_open_another_boards_school(data: World) -> None:
    client = _client(data, "board_officer_a")
    assert client.get(reverse("progress:unit", args=["school", data.school_b.code])).status_code == 404
    assert client.get(reverse("progress:unit", args=["board", data.board_b.code])).status_code == 404
    assert client.get(reverse("progress:unit", args=["school", data.school_a.code])).status_code == 200


def test_analysts_see_aggregates_only(data: World) -> None:
    client = _client(data, "national_analyst")
    assert client.get(reverse("progress:dashboard") + "?month=2026-10").status_code == 200
    assert client.get(reverse("progress:unit", args=["board", data.board_a.code])).status_code == 200
    assert client.get(reverse("progress:unit", args=["school", data.school_a.code])).status_code == 404
    pref = _client(data, "pref_analyst").get(reverse("progress:dashboard") + "?month=2026-10", follow=True)
    assert "みどり市教育委員会" in pref.content.decode()


def test_a_principal_sees_the_schools_position(data: World) -> None:
    response = _client(data, "principal_a").get(reverse("progress:dashboard") + "?month=2026-10", follow=True)
    body = response.content.decode()
    assert "この学校の位置" in body and "3校中 2位" in body


def test_a_teacher_has_no_dashboard(data: World) -> None:
    assert _client(data, "teacher_a").get(reverse("progress:dashboard")).status_code == 404


def test_the_map_colours_every_prefecture(data: World) -> None:
    response = _client(data, "national_analyst").get(reverse("progress:map") + "?month=2026-10")
    body = response.content.decode()
    assert response.status_code == 200
    # (30+5+12)/(40+20+12) = 65.3 %: the fourth of five classes (60–80).
    tokyo = body.split("<title>東京都: 65.3%</title>")[1].split("</g>")[0]
    assert 'fill="#5ec962"' in tokyo
    assert "<title>大阪府: 未計測</title>" in body
    assert body.count("<g><title>") == 47


def test_open_data_is_public_and_suppresses_small_counts(data: World) -> None:
    client = Client()
    assert client.get(reverse("progress:open") + "?month=2026-10").status_code == 200
    response = client.get(reverse("progress:open_file", args=["school", "2026-10", "csv"]))
    assert response.status_code == 200
    text = response.content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    absence = next(r for r in rows if r["code"] == data.school_a.code and r["indicator"] == "absence_digital")
    assert absence["numerator"] == "" and absence["denominator"] == "" and absence["value"] == "20.0"
    outputs = next(r for r in rows if r["code"] == data.school_b.code and r["indicator"] == "personal_data_outputs")
    assert outputs["numerator"] == "" and "秘匿" in outputs["note"]
    comm = next(r for r in rows if r["code"] == data.school_a.code and r["indicator"] == "comm_digital")
    assert (comm["numerator"], comm["denominator"], comm["value"]) == ("30", "40", "75.0")


def test_the_api_and_dictionary_answer_json(data: World) -> None:
    client = Client()
    response = client.get(reverse("progress:api_values") + "?level=prefecture&month=2026-10&indicator=comm_digital")
    payload: dict[str, Any] = response.json()
    assert payload["rows"][0]["code"] == "13" and "CC BY 4.0" in payload["licence"]
    assert client.get(reverse("progress:api_values") + "?level=people").status_code == 400
    dictionary = client.get(reverse("progress:open_dictionary")).json()
    assert {c["name"] for c in dictionary["columns"]} >= {"numerator", "value", "note"}
    assert client.get(reverse("progress:indicator", args=["staff_mfa"])).status_code == 200
    assert client.get(reverse("progress:indicator", args=["nothing"])).status_code == 404


def test_the_checklist_pages_save_and_submit(data: World) -> None:
    client = _client(data, "principal_a")
    assert client.get(reverse("progress:checklist")).status_code == 200
    response = client.post(reverse("progress:checklist"), {"school_id": data.school_a.pk})
    assert response.status_code == 302
    edit_url = response["Location"]
    page = client.get(edit_url)
    assert "完全にデジタル化" in page.content.decode()
    bad = client.post(edit_url, {"uses_fax": "1", "requires_seal": "0"})
    assert bad.status_code == 400 and "相手先を1つ以上" in bad.content.decode()
    ok = client.post(edit_url, {"uses_fax": "1", "fax_counterparties": ["private"], "requires_seal": "0",
                                "submit": "1"})
    assert ok.status_code == 302
    assert "提出済み" in client.get(edit_url).content.decode()
    other = _client(data, "principal_b")
    assert other.get(edit_url).status_code == 404


def test_the_hub_endpoint_answers_by_status(data: World) -> None:
    key = MemberKey()
    services.federation_member_register(actor=act(data, "operator"), code="m1", name="連携市", public_keyset=key.public)
    client = Client(enforce_csrf_checks=True)
    url = reverse("progress:federation_receive")
    assert client.post(url, key.envelope(member_payload()), content_type="application/json").status_code == 200
    tampered = key.envelope(member_payload(sequence=2), tamper=True)
    assert client.post(url, tampered, content_type="application/json").status_code == 403
    assert client.get(url).status_code == 405


def test_measure_now_and_the_checklist_score_on_the_board_dashboard(data: World) -> None:
    from django.utils import timezone

    board = _client(data, "board_officer_a")
    response = board.post(reverse("progress:measure_now"), {"next": "/progress/"})
    assert response.status_code == 302 and response["Location"] == "/progress/"
    principal = act(data, "principal_a")
    year = services.fiscal_year_now()
    own = services.checklist_response_open(actor=principal, year=year, school_id=data.school_a.pk)
    services.checklist_response_submit(actor=principal, response_id=own.pk)
    page = board.get(reverse("progress:dashboard") + f"?month={timezone.localdate():%Y-%m}&indicator=checklist_score",
                     follow=True).content.decode()
    assert "みどり市立第一小学校" in page
    row = page.split('class="progress-own"')[1].split("</tr>")[0]
    assert "校務DXチェックリストの得点率" in row and "未計測" not in row.split("</th>", 1)[1].split("</td>", 2)[1]
    assert _client(data, "teacher_a").post(reverse("progress:measure_now")).status_code == 404


def test_the_operator_registers_a_member_on_the_federation_page(data: World) -> None:
    client = _client(data, "operator")
    url = reverse("progress:federation_members")
    assert client.get(url).status_code == 200
    bad = client.post(url, {"code": "x y", "name": "", "public_keyset": "{}"})
    assert bad.status_code == 400 and "識別子は半角英数字" in bad.content.decode()
    ok = client.post(url, {"code": "city-a", "name": "A市", "public_keyset": MemberKey().public})
    assert ok.status_code == 302
    assert "A市" in client.get(url).content.decode()
    assert _client(data, "board_officer_a").get(url).status_code == 404


def test_positions_count_ties_and_lower_is_better(world: World) -> None:
    from komu.progress import selectors

    for school, (num, den, hours) in zip((world.school_a, world.school_a2, world.school_b),
                                         ((1, 3, 5.0), (2, 6, 2.0), (3, 3, 9.0)), strict=True):
        put_value(school, OCT, "comm_digital", num, den)
        put_value(school, OCT, "notice_ack_hours", 10, 10, hours)
    unit = selectors.Unit("school", world.school_a.code, "", prefecture_code="13", board_code=world.board_a.code)
    ratio = {p.scope_label: (p.rank, p.of) for p in selectors.school_positions(unit, OCT, "comm_digital")}
    assert ratio["教育委員会内"] == (1, 2)  # 1/3 ties with 2/6
    assert ratio["全国"] == (2, 3)
    median = {p.scope_label: (p.rank, p.of) for p in selectors.school_positions(unit, OCT, "notice_ack_hours")}
    assert median["全国"] == (2, 3)  # 2 h is faster than 5 h


def test_a_board_officer_finds_its_board_highlighted_in_the_prefecture_ranking(data: World) -> None:
    page = _client(data, "board_officer_a").get(
        reverse("progress:unit", args=["prefecture", "13"]) + "?month=2026-10").content.decode()
    ranking = page.split('id="rank-title"')[1]
    own_row = ranking.split('<tr class="progress-own">')[1].split("</tr>")[0]
    assert "みどり市教育委員会" in own_row
    assert 'href="/progress/units/board/139002/' not in ranking  # another board's page is not linked
    assert "あおば町教育委員会" in ranking


def test_an_open_file_follows_a_refresh_of_its_month(data: World) -> None:
    client = Client()
    url = reverse("progress:open_file", args=["prefecture", "2026-10", "csv"])
    first = client.get(url).content.decode("utf-8-sig")
    assert ",comm_digital,47,72,65.3," in first
    put_value(data.school_b, OCT, "comm_digital", 0, 12)
    services.rollups_refresh(months=[OCT])
    second = client.get(url).content.decode("utf-8-sig")
    assert ",comm_digital,35,72,48.6," in second
    assert client.get(reverse("progress:open_file", args=["prefecture", "2026-10", "json"])).json()["rows"]
