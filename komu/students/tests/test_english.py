"""English screens show the models' choice labels in English: the labels are gettext_lazy with Japanese msgids, so
Japanese screens read exactly as before, and the bulk files (written in Japanese) are still read in Japanese when
the person importing them uses the English screens."""

from __future__ import annotations

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
