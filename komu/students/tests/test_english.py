"""English screens show the models' choice labels in English: the labels are gettext_lazy with Japanese msgids, so
Japanese screens read exactly as before, and the bulk files (written in Japanese) are still read in Japanese when
the person importing them uses the English screens."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

from komu.directory.models import Board, Role
from komu.directory.services.bulk_plan import BOARD_KINDS, STAFF_ROLES, choice, ja
from komu.students.models import EnrollmentKind, Sex, SpecialNeedsPlacement
from komu.testing.world import World


def test_choice_labels_follow_the_language() -> None:
    with translation.override("en"):
        assert str(EnrollmentKind.TRANSFER_IN.label) == "Transfer in"
        assert str(SpecialNeedsPlacement.RESOURCE_ROOM.label) == "Resource room (tsūkyū) instruction"
        assert str(Sex.FEMALE.label) == "Female"
        assert str(Role.HOMEROOM_TEACHER.label) == "Homeroom teacher"
        assert str(Board.Kind.MUNICIPAL.label) == "Municipal Board of Education"
    with translation.override("ja"):
        assert str(EnrollmentKind.TRANSFER_IN.label) == "転入学"
        assert str(SpecialNeedsPlacement.RESOURCE_ROOM.label) == "通級による指導"
        assert str(Role.HOMEROOM_TEACHER.label) == "学級担任"


def test_bulk_files_keep_japanese_names_on_english_screens() -> None:
    with translation.override("en"):
        assert ja(Role.PRINCIPAL.label) == "校長"
        assert choice("校長", STAFF_ROLES, "役割", []) == Role.PRINCIPAL
        assert choice("市区町村教育委員会", BOARD_KINDS, "種別", []) == Board.Kind.MUNICIPAL


@pytest.mark.django_db
def test_english_roster_names_the_role_and_sex_in_english(signed_in: Any, world: World) -> None:
    client = signed_in("homeroom_a1")
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    html = client.get(reverse("students:list"), {"class": world.class_a1.pk}).content.decode()
    assert "Homeroom teacher" in html and "学級担任" not in html
    assert "Female" in html and "Male" in html
    assert '<td class="is-nowrap">女</td>' not in html


@pytest.mark.django_db
def test_japanese_roster_is_unchanged(signed_in: Any, world: World) -> None:
    client = signed_in("homeroom_a1")
    html = client.get(reverse("students:list"), {"class": world.class_a1.pk}).content.decode()
    assert "学級担任" in html and "Homeroom teacher" not in html
    assert '<td class="is-nowrap">女</td>' in html


@pytest.mark.django_db
def test_auto_proposal_matches_the_japanese_category_on_english_screens(world: World) -> None:
    # The pupil's category is free text recorded in Japanese; the class kind's label is translated on English
    # screens, so the proposal must match the kind by its Japanese name.
    from komu.access.scope import get_actor
    from komu.directory.models import HomeroomClass
    from komu.students.services import placement_auto_propose
    from komu.students.tests.test_placement import _entrant, _next_year

    year = _next_year(world)
    intellectual = HomeroomClass.objects.create(
        school_year=year,
        grade_code="P1",
        name="ひまわり",
        kind=HomeroomClass.Kind.SPECIAL_NEEDS,
        special_needs_category=HomeroomClass.SpecialNeedsCategory.INTELLECTUAL,
    )
    autism = HomeroomClass.objects.create(
        school_year=year,
        grade_code="P1",
        name="たんぽぽ",
        kind=HomeroomClass.Kind.SPECIAL_NEEDS,
        special_needs_category=HomeroomClass.SpecialNeedsCategory.AUTISM_EMOTIONAL,
    )
    pupils = [
        _entrant(
            world.school_a,
            year.year,
            f"支援{i}",
            "一",
            kana,
            "ハジメ",
            special_needs_placement=SpecialNeedsPlacement.SPECIAL_NEEDS_CLASS,
            special_needs_category=category,
        )
        for i, (kana, category) in enumerate(
            [("アイダ", "自閉症・情緒障害"), ("イトウ", "自閉症・情緒障害"), ("ウエダ", "")]
        )
    ]
    with translation.override("en"):
        assert str(HomeroomClass.SpecialNeedsCategory.AUTISM_EMOTIONAL.label) != "自閉症・情緒障害"
        proposal = placement_auto_propose(
            actor=get_actor(world.user("school_admin_a")),
            school_id=world.school_a.pk,
            year=year.year,
            grade_code="P1",
        )
    target = {m.student_id: m.homeroom_class_id for m in proposal.moves}
    assert [target[str(p.pk)] for p in pupils] == [autism.pk, autism.pk, intellectual.pk]


@pytest.fixture(autouse=True)
def _japanese_after_each_test() -> Iterator[None]:
    # A request with the English cookie leaves English active in this thread (LocaleMiddleware activates it and
    # nothing switches back), which would leak into the next test.
    yield
    translation.activate(settings.LANGUAGE_CODE)


def _stand_in_grade_catalogue(monkeypatch: pytest.MonkeyPatch) -> None:
    # The English catalogue is filled separately; a stand-in for the grade labels shows which texts go through it.
    monkeypatch.setattr("komu.core.codes.gettext", lambda message: {"小学1年": "Grade 1"}.get(message, message))


def _english_homeroom_client(signed_in: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A homeroom teacher who chose English, with a stand-in catalogue for the grades."""
    _stand_in_grade_catalogue(monkeypatch)
    client = signed_in("homeroom_a1")
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


@pytest.mark.django_db
def test_english_class_list_names_the_grade_from_the_catalogue(
    signed_in: Any, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _english_homeroom_client(signed_in, monkeypatch)
    html = client.get(reverse("students:list"), {"class": world.class_a1.pk}).content.decode()
    assert "Grade 1 1組" in html
    assert "小学1年" not in html


@pytest.mark.django_db
def test_english_pupil_detail_names_the_class_from_the_catalogue(
    signed_in: Any, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _english_homeroom_client(signed_in, monkeypatch)
    student = world.students["a1_first"]
    html = client.get(reverse("students:detail", args=[student.pk])).content.decode()
    assert "Grade 1 1組" in html
    assert "小学1年" not in html


@pytest.mark.django_db
def test_the_api_keeps_japanese_class_labels_when_english_is_chosen(
    signed_in: Any, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _english_homeroom_client(signed_in, monkeypatch)
    items = client.get(f"/api/v1/classes/{world.class_a1.pk}/students").json()["items"]
    assert items and {item["class_label"] for item in items} == {"小学1年 1組"}


def test_a_class_is_shown_in_the_screen_language_and_stays_japanese_as_text(monkeypatch: pytest.MonkeyPatch) -> None:
    from komu.directory.models import HomeroomClass

    _stand_in_grade_catalogue(monkeypatch)
    klass = HomeroomClass(grade_code="P1", name="1組")
    with translation.override("en"):
        assert klass.display_label == "Grade 1 1組"
        assert str(klass) == "小学1年 1組"
