"""student_update: partial updates, the health-note rule, validation in Japanese, and its audit event."""

from __future__ import annotations

import dataclasses
import datetime

import pytest

from komu.access.scope import get_actor
from komu.audit.models import AuditEvent
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.students.services import StudentInput, student_update
from komu.testing.world import World

pytestmark = pytest.mark.django_db


def _input(**overrides: object) -> StudentInput:
    base = StudentInput(family_name="髙橋", given_name="𠮷乃", family_name_kana="タカハシ", given_name_kana="ヨシノ",
                        sex="female", birth_date=datetime.date(2017, 4, 3), address="架空県", health_note="")
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


def test_partial_update_changes_only_the_named_fields(world: World) -> None:
    student = world.students["a1_first"]
    actor = get_actor(world.user("principal_a"))
    student_update(actor=actor, student_id=student.pk, data=_input(address="新しい住所", given_name="別名"),
                   only=["address"])
    student.refresh_from_db()
    assert student.address == "新しい住所"
    assert student.given_name == "𠮷乃"
    assert student.health_note == "卵アレルギー"
    event = AuditEvent.objects.get(action="students.student.updated")
    assert event.fields == ["address"]
    assert event.object_id == str(student.pk)


def test_only_those_who_may_read_the_health_note_may_write_it(world: World) -> None:
    student = world.students["a1_first"]
    officer = get_actor(world.user("board_officer_a"))
    with pytest.raises(PermissionDeniedError):
        student_update(actor=officer, student_id=student.pk, data=_input(health_note="なし"), only=["health_note"])
    principal = get_actor(world.user("principal_a"))
    student_update(actor=principal, student_id=student.pk, data=_input(health_note="なし"), only=["health_note"])
    student.refresh_from_db()
    assert student.health_note == "なし"


def test_out_of_scope_pupils_are_not_found(world: World) -> None:
    with pytest.raises(NotFoundOrNoAccess):
        student_update(actor=get_actor(world.user("principal_b")), student_id=world.students["a1_first"].pk,
                       data=_input())
    with pytest.raises(NotFoundOrNoAccess):  # can see the pupil, but may not edit
        student_update(actor=get_actor(world.user("homeroom_a1")), student_id=world.students["a1_first"].pk,
                       data=_input())


def test_invalid_values_are_all_reported_in_japanese(world: World) -> None:
    actor = get_actor(world.user("principal_a"))
    with pytest.raises(ValidationFailed) as caught:
        student_update(actor=actor, student_id=world.students["a1_first"].pk, data=_input(
            family_name=" ", given_name_kana="Yoshino", sex="x", birth_date=datetime.date(2999, 1, 1),
            address="一\x00丁目",
        ))
    errors = caught.value.errors
    assert errors["family_name"] == ["姓を入力してください。"]
    assert "カタカナ" in errors["given_name_kana"][0]
    assert "性別" in errors["sex"][0]
    assert "今日までの日付" in errors["birth_date"][0]
    assert "制御文字" in errors["address"][0]
    assert not AuditEvent.objects.filter(action="students.student.updated").exists()


def test_a_name_with_legacy_gaiji_is_kept_and_flagged(world: World) -> None:
    student = world.students["a1_second"]
    student_update(actor=get_actor(world.user("principal_a")), student_id=student.pk,
                   data=_input(given_name="\ue000太"), only=["given_name"])
    student.refresh_from_db()
    assert student.given_name == "\ue000太"
    assert student.needs_review is True


def test_unknown_field_names_are_a_programming_error(world: World) -> None:
    with pytest.raises(ValueError, match="unknown fields"):
        student_update(actor=get_actor(world.user("principal_a")), student_id=world.students["a1_first"].pk,
                       data=_input(), only=["school"])
