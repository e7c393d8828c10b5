"""Which classes a person may list, and what a record shows them."""

from __future__ import annotations

import pytest

from komu.access.scope import get_actor
from komu.core.errors import NotFoundOrNoAccess
from komu.students import selectors
from komu.testing.world import World

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("homeroom_a1", {"class_a1"}),
        ("teacher_a", {"class_a1", "class_a2"}),
        ("principal_b", {"class_b1"}),
        ("board_officer_b", {"class_b1"}),
        ("guardian_a", set()),
        ("operator", set()),
        ("national_analyst", set()),
    ],
)
def test_listable_classes_follow_the_role(world: World, persona: str, expected: set[str]) -> None:
    actor = get_actor(world.user(persona))
    names = {"class_a1": world.class_a1.pk, "class_a2": world.class_a2.pk, "class_b1": world.class_b1.pk}
    listable = set(selectors.listable_classes_for(actor).filter(pk__in=names.values()).values_list("pk", flat=True))
    assert listable == {names[n] for n in expected}


def test_listing_another_class_raises_not_found(world: World) -> None:
    with pytest.raises(NotFoundOrNoAccess):
        selectors.student_list(actor=get_actor(world.user("homeroom_a1")), homeroom_class_id=world.class_a2.pk)


def test_rows_carry_both_the_sex_label_and_code(world: World) -> None:
    rows = selectors.student_list(actor=get_actor(world.user("homeroom_a1")), homeroom_class_id=world.class_a1.pk)
    assert [(r.shusseki_no, r.sex, r.sex_code) for r in rows] == [(1, "女", "female"), (2, "男", "male")]


def test_record_says_who_may_edit(world: World) -> None:
    student = world.students["a1_first"]
    assert selectors.student_get_for(actor=get_actor(world.user("principal_a")), student_id=student.pk).can_edit
    assert not selectors.student_get_for(actor=get_actor(world.user("nurse_a")), student_id=student.pk).can_edit


def test_edit_access_offers_the_health_note_only_to_those_who_may_read_it(world: World) -> None:
    student = world.students["a1_first"]
    principal = selectors.student_edit_access(actor=get_actor(world.user("principal_a")), student_id=student.pk)
    officer = selectors.student_edit_access(actor=get_actor(world.user("board_officer_a")), student_id=student.pk)
    assert principal.health_note is True
    assert officer.health_note is False
    with pytest.raises(NotFoundOrNoAccess):
        selectors.student_edit_access(actor=get_actor(world.user("teacher_a")), student_id=student.pk)
