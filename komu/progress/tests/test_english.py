"""English screens name the built-in indicators and the built-in checklist's groups and items through the
catalogue; what other systems read (open data, its dictionary) and what is stored stay Japanese, and checklist
texts that came from another file are shown as typed."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import translation

from komu.progress import checklist_texts, indicators, services
from komu.progress.models import ChecklistItem
from komu.progress.tests.conftest import put_value
from komu.testing.world import World, login_verified

OCT = datetime.date(2026, 10, 1)
SOURCE = Path(indicators.__file__).read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def _japanese_after_each_test() -> Iterator[None]:
    # A request with the English cookie leaves English active in this thread (LocaleMiddleware activates it and
    # nothing switches back), which would leak into the next test.
    yield
    translation.activate(settings.LANGUAGE_CODE)


def _english(message: str) -> str:
    return f"EN[{message}]"


def _english_client(world: World | None = None, persona: str = "") -> Client:
    client = Client()
    if world is not None:
        login_verified(client, world.user(persona))
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def test_every_indicator_name_and_unit_is_a_literal_msgid() -> None:
    # makemessages reads only literals: an f-string name would never reach the catalogue.
    for ind in indicators.INDICATORS.values():
        assert f'gettext_noop("{ind.label}")' in SOURCE, ind.code
        assert ind.unit == "%" or f'gettext_noop("{ind.unit}")' in SOURCE, ind.code


def test_every_indicator_definition_is_a_literal_msgid() -> None:
    for ind in indicators.INDICATORS.values():
        for text in (ind.counts, ind.source):
            # Adjacent literals are one msgid; compare with the source's literals joined the same way.
            assert text in SOURCE.replace('"\n' + " " * 21 + '"', ""), (ind.code, text)


def test_the_per_counterparty_names_are_unchanged() -> None:
    for code, label in indicators.PAPER_COUNTERPARTIES:
        assert indicators.INDICATORS[f"paper_{code}"].label == f"FAX・紙での送付（{label}）"
        assert indicators.INDICATORS[f"paper_{code}"].counts == (
            f"その月に学校が相手先区分「{label}」へFAXまたは紙で送ったと記録した件数。")


def test_the_built_in_checklist_texts_are_those_of_the_fixture() -> None:
    data = json.loads(services.FIXTURE.read_text(encoding="utf-8"))
    assert {item["group"] for item in data["items"]} == checklist_texts.GROUPS
    assert {item["text"] for item in data["items"]} == checklist_texts.ITEMS


def test_a_checklist_text_is_translated_only_when_it_is_built_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checklist_texts, "gettext", _english)
    assert checklist_texts.display("C 教職員間の連絡") == "EN[C 教職員間の連絡]"
    assert checklist_texts.display("学校") == "学校"  # typed by whoever loaded another edition


@pytest.mark.django_db
def test_english_indicator_pages_name_the_indicators_from_the_catalogue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(indicators, "gettext", _english)
    client = _english_client()
    body = client.get(reverse("progress:indicators")).content.decode()
    assert "EN[校務連絡のデジタル化率]" in body and "EN[件/校]" in body
    assert ">校務連絡のデジタル化率<" not in body
    detail = client.get(reverse("progress:indicator", args=["notice_ack_hours"])).content.decode()
    assert "EN[通知の受領までの時間（中央値）]" in detail and "EN[時間]" in detail
    ind = indicators.INDICATORS["notice_ack_hours"]
    assert f"EN[{ind.counts}]" in detail and f"EN[{ind.source}]" in detail


@pytest.mark.django_db
def test_english_dashboard_names_the_indicators_from_the_catalogue(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_value(world.school_a, OCT, "comm_digital", 30, 40)
    services.rollups_refresh(months=[OCT])
    monkeypatch.setattr(indicators, "gettext", _english)
    body = _english_client(world, "board_officer_a").get(
        reverse("progress:dashboard") + "?month=2026-10&indicator=comm_digital", follow=True
    ).content.decode()
    assert "EN[校務連絡のデジタル化率]" in body
    assert ">校務連絡のデジタル化率<" not in body


@pytest.mark.django_db
def test_open_data_keeps_the_japanese_names_on_english_screens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(indicators, "gettext", _english)
    dictionary = _english_client().get(reverse("progress:open_dictionary")).json()
    labels = {i["code"]: (i["label"], i["unit"]) for i in dictionary["indicators"]}
    assert labels["comm_digital"] == ("校務連絡のデジタル化率", "%")
    assert labels["paper_guardian"] == ("FAX・紙での送付（保護者）", "件/校")


@pytest.mark.django_db
def test_english_checklist_shows_built_in_items_from_the_catalogue_and_others_as_typed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    services.checklist_items_load()
    typed = ChecklistItem.objects.filter(audience=ChecklistItem.Audience.SCHOOL).order_by("order").last()
    assert typed is not None
    ChecklistItem.objects.filter(pk=typed.pk).update(text="学校独自の項目")
    monkeypatch.setattr(checklist_texts, "gettext", _english)
    client = _english_client(world, "principal_a")
    edit_url = client.post(reverse("progress:checklist"), {"school_id": world.school_a.pk})["Location"]
    body = client.get(edit_url).content.decode()
    assert "EN[A 教師と保護者間の連絡]" in body
    assert "EN[欠席・遅刻・早退の連絡の受付]" in body
    assert "学校独自の項目" in body and "EN[学校独自の項目]" not in body
    assert ChecklistItem.objects.get(pk=typed.pk).group == "D その他の校務"  # stored as loaded
