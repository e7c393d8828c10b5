"""学籍: emergency contacts, enrolment events, 出席番号 renumbering, and what the pupil record shows of them."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from komu.access.scope import get_actor
from komu.audit.models import AuditEvent
from komu.core.codes import make_school_code
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.security.tests.helpers import raw_value
from komu.students.models import (
    ClassMembership,
    EmergencyContact,
    EnrollmentEvent,
    EnrollmentKind,
    SchoolNumberingRule,
    SpecialNeedsPlacement,
    Student,
)
from komu.students.selectors import student_get_for
from komu.students.services import (
    EmergencyContactInput,
    emergency_contact_set,
    enrollment_event_record,
    shusseki_no_renumber,
    student_special_needs_set,
)
from komu.testing.world import World

pytestmark = pytest.mark.django_db

GRANDMOTHER = EmergencyContactInput(name="髙橋 トメ", relationship="祖母", phone="０９０−１１１１−２２２２",
                                    note="平日昼のみ")
WORKPLACE = EmergencyContactInput(name="髙橋 一郎", relationship="父の勤務先", phone="03-1234-5678")


def _codes(world: World) -> list[tuple[int, str]]:
    return [
        (m.shusseki_no, m.student.given_name_kana)
        for m in ClassMembership.objects.filter(homeroom_class=world.class_a1).select_related("student")
        .order_by("shusseki_no")
    ]


# --- Emergency contacts -----------------------------------------------------------------------------------------

def test_emergency_contacts_are_ordered_replaced_and_audited(world: World) -> None:
    student = world.students["a1_first"]
    actor = get_actor(world.user("principal_a"))
    emergency_contact_set(actor=actor, student_id=student.pk, contacts=[GRANDMOTHER, WORKPLACE])
    stored = list(EmergencyContact.objects.filter(student=student).order_by("priority"))
    assert [(c.priority, c.relationship, c.phone) for c in stored] == [
        (1, "祖母", "090-1111-2222"), (2, "父の勤務先", "03-1234-5678"),
    ]
    # Replacing with a reordered, shorter list leaves exactly that list.
    emergency_contact_set(actor=actor, student_id=student.pk, contacts=[WORKPLACE])
    stored = list(EmergencyContact.objects.filter(student=student).order_by("priority"))
    assert [(c.priority, c.name) for c in stored] == [(1, "髙橋 一郎")]
    events = list(AuditEvent.objects.filter(action="students.emergency_contact.replaced").order_by("id"))
    assert [e.detail["count"] for e in events] == [2, 1]
    assert [e.detail["removed"] for e in events] == [0, 2]
    assert all(e.object_id == str(student.pk) for e in events)
    assert "emergency_contact.phone" in events[0].fields


def test_emergency_contact_fields_are_encrypted_at_rest(world: World) -> None:
    student = world.students["a1_first"]
    [contact, _second] = emergency_contact_set(
        actor=get_actor(world.user("principal_a")), student_id=student.pk, contacts=[GRANDMOTHER, WORKPLACE]
    )
    for field, plain in (("name", "髙橋 トメ"), ("relationship", "祖母"), ("phone", "090-1111-2222"),
                         ("note", "平日昼のみ")):
        raw = raw_value(EmergencyContact, contact.pk, field)
        assert raw and plain not in str(raw)
    assert "09011112222" not in str(raw_value(EmergencyContact, contact.pk, "phone_index"))
    index = EmergencyContact._meta.get_field("phone_index")
    assert EmergencyContact.objects.filter(phone_index=index.lookup_value("09011112222")).get() == contact  # type: ignore[attr-defined]


def test_bad_emergency_contact_is_rejected_in_japanese_and_keeps_the_old_list(world: World) -> None:
    student = world.students["a1_first"]
    actor = get_actor(world.user("principal_a"))
    emergency_contact_set(actor=actor, student_id=student.pk, contacts=[GRANDMOTHER])
    bad = EmergencyContactInput(name="", relationship="祖父", phone="+81-90-1111-2222")
    with pytest.raises(ValidationFailed) as caught:
        emergency_contact_set(actor=actor, student_id=student.pk, contacts=[WORKPLACE, bad])
    problems = caught.value.errors["contacts.2"]
    assert "氏名を入力してください。" in problems
    assert any("電話番号" in p for p in problems)
    assert [c.relationship for c in EmergencyContact.objects.filter(student=student)] == ["祖母"]


@pytest.mark.parametrize("username, pupil", [("homeroom_a1", "a2_first"), ("teacher_b", "a1_first"),
                                             ("principal_b", "a1_first")])
def test_writes_outside_scope_answer_not_found(world: World, username: str, pupil: str) -> None:
    actor = get_actor(world.user(username))
    student = world.students[pupil]
    with pytest.raises(NotFoundOrNoAccess):
        emergency_contact_set(actor=actor, student_id=student.pk, contacts=[GRANDMOTHER])
    with pytest.raises(NotFoundOrNoAccess):
        enrollment_event_record(actor=actor, student_id=student.pk, kind=EnrollmentKind.TRANSFER_OUT,
                                date=timezone.localdate(), grade_code="P1", other_school_name="他校")
    assert not EmergencyContact.objects.exists() and not EnrollmentEvent.objects.exists()
    assert Student.objects.get(pk=student.pk).is_active


def test_renumbering_outside_scope_answers_not_found(world: World) -> None:
    for username, klass in (("homeroom_a1", world.class_a2), ("teacher_b", world.class_a1),
                            ("principal_b", world.class_a1)):
        with pytest.raises(NotFoundOrNoAccess):
            shusseki_no_renumber(actor=get_actor(world.user(username)), homeroom_class_id=klass.pk)
    assert not AuditEvent.objects.filter(action="students.shusseki_no.renumbered").exists()


# --- Enrolment events -------------------------------------------------------------------------------------------

def test_transfer_out_deactivates_the_pupil_and_is_audited(world: World) -> None:
    student = world.students["a1_second"]
    other = make_school_code("B1", world.school_b.prefecture_id, "2", "0000099")
    event = enrollment_event_record(
        actor=get_actor(world.user("principal_a")), student_id=student.pk, kind=EnrollmentKind.TRANSFER_OUT,
        date=timezone.localdate(), grade_code="P1", other_school_name="あおば市立第二小学校",
        other_school_code=other.lower(), reason="保護者の転勤のため",
    )
    assert event.other_school_code == other
    assert event.recorded_by == world.user("principal_a")
    assert not Student.objects.get(pk=student.pk).is_active
    assert "保護者の転勤" not in str(raw_value(EnrollmentEvent, event.pk, "reason"))
    audit = AuditEvent.objects.get(action="students.enrollment_event.recorded")
    assert audit.object_id == str(student.pk)
    assert audit.detail["deactivated"] is True and audit.detail["kind"] == "transfer_out"


def test_admission_keeps_the_pupil_active(world: World) -> None:
    student = world.students["a1_first"]
    enrollment_event_record(actor=get_actor(world.user("principal_a")), student_id=student.pk,
                            kind=EnrollmentKind.ADMISSION, date=datetime.date(2024, 4, 8), grade_code="P1")
    assert Student.objects.get(pk=student.pk).is_active


def test_bad_other_school_code_is_rejected_in_japanese(world: World) -> None:
    student = world.students["a1_second"]
    good = make_school_code("B1", world.school_b.prefecture_id, "2", "0000099")
    wrong_check_digit = good[:12] + str((int(good[12]) + 1) % 10)
    with pytest.raises(ValidationFailed) as caught:
        enrollment_event_record(
            actor=get_actor(world.user("principal_a")), student_id=student.pk, kind=EnrollmentKind.TRANSFER_OUT,
            date=timezone.localdate(), grade_code="P1", other_school_name="あおば市立第二小学校",
            other_school_code=wrong_check_digit,
        )
    [message] = caught.value.errors["other_school_code"]
    assert "チェックディジット" in message
    assert Student.objects.get(pk=student.pk).is_active
    assert not EnrollmentEvent.objects.exists()


def test_event_validation_messages(world: World) -> None:
    student = world.students["a1_first"]
    with pytest.raises(ValidationFailed) as caught:
        enrollment_event_record(
            actor=get_actor(world.user("principal_a")), student_id=student.pk, kind=EnrollmentKind.TRANSFER_IN,
            date=timezone.localdate() + datetime.timedelta(days=400), grade_code="J1",
        )
    errors = caught.value.errors
    assert "今年度より先" in errors["date"][0]
    assert "使えません" in errors["grade_code"][0]  # 中学1年 at an elementary school
    assert "学校名を入力" in errors["other_school_name"][0]


# --- 出席番号 ---------------------------------------------------------------------------------------------------

def _add_pupil(world: World, no: int, family_kana: str, given_kana: str, sex: str,
               birth: datetime.date) -> Student:
    student = Student(school=world.school_a, family_name="試験", given_name="太郎", family_name_kana=family_kana,
                      given_name_kana=given_kana, sex=sex, birth_date=birth)
    student.save()
    ClassMembership.objects.create(student=student, homeroom_class=world.class_a1, shusseki_no=no)
    return student


def test_renumber_by_kana_with_ties_by_given_kana_then_birth_date(world: World) -> None:
    # Class a1 holds タカハシ ヨシノ (1, female) and ヤマザキ カツタ (2, male).
    _add_pupil(world, 7, "アベ", "ユウ", "male", datetime.date(2017, 6, 1))
    _add_pupil(world, 3, "アベ", "ユウ", "female", datetime.date(2017, 5, 1))
    _add_pupil(world, 5, "アベ", "アイ", "female", datetime.date(2017, 9, 1))
    changed = shusseki_no_renumber(actor=get_actor(world.user("principal_a")), homeroom_class_id=world.class_a1.pk)
    assert _codes(world) == [(1, "アイ"), (2, "ユウ"), (3, "ユウ"), (4, "ヨシノ"), (5, "カツタ")]
    # The two アベ ユウ: the one born earlier (2017-05-01, recorded as female here) comes first.
    births = {m.shusseki_no: m.student.birth_date
              for m in ClassMembership.objects.filter(homeroom_class=world.class_a1).select_related("student")}
    assert births[2] == datetime.date(2017, 5, 1) and births[3] == datetime.date(2017, 6, 1)
    assert changed == 5
    event = AuditEvent.objects.get(action="students.shusseki_no.renumbered")
    assert event.detail == {"count": 5, "changed": 5, "order": "kana"}
    assert event.object_id == str(world.class_a1.pk)


def test_renumber_boys_then_girls(world: World) -> None:
    SchoolNumberingRule.objects.create(school=world.school_a, order=SchoolNumberingRule.Order.BOYS_FIRST)
    _add_pupil(world, 3, "アベ", "アイ", "female", datetime.date(2017, 9, 1))
    _add_pupil(world, 4, "ワタナベ", "ケン", "male", datetime.date(2017, 9, 1))
    shusseki_no_renumber(actor=get_actor(world.user("principal_a")), homeroom_class_id=world.class_a1.pk)
    assert _codes(world) == [(1, "カツタ"), (2, "ケン"), (3, "アイ"), (4, "ヨシノ")]
    # Running again changes nothing and says so.
    assert shusseki_no_renumber(
        actor=get_actor(world.user("principal_a")), homeroom_class_id=world.class_a1.pk
    ) == 0


# --- The pupil record -------------------------------------------------------------------------------------------

def test_detail_shows_contacts_and_history_only_with_their_capabilities(world: World) -> None:
    student = world.students["a1_first"]
    principal = get_actor(world.user("principal_a"))
    emergency_contact_set(actor=principal, student_id=student.pk, contacts=[GRANDMOTHER, WORKPLACE])
    enrollment_event_record(actor=principal, student_id=student.pk, kind=EnrollmentKind.ADMISSION,
                            date=datetime.date(2024, 4, 8), grade_code="P1", reason="新入学")

    detail = student_get_for(actor=get_actor(world.user("homeroom_a1")), student_id=student.pk)
    assert detail.emergency_contacts is not None
    assert [(c.priority, c.relationship) for c in detail.emergency_contacts] == [(1, "祖母"), (2, "父の勤務先")]
    assert [(h.kind_label, h.date, h.reason) for h in detail.history] == [("入学", datetime.date(2024, 4, 8), "新入学")]
    event = AuditEvent.objects.filter(action="students.student.viewed").latest("id")
    assert {"emergency_contact.phone", "enrollment_event.kind", "enrollment_event.reason"} <= set(event.fields)

    # A subject teacher reads the record without contacts and without the reason, and the event says so.
    detail = student_get_for(actor=get_actor(world.user("teacher_a")), student_id=student.pk)
    assert detail.emergency_contacts is None
    assert [(h.kind, h.reason) for h in detail.history] == [("admission", None)]
    event = AuditEvent.objects.filter(action="students.student.viewed").latest("id")
    assert "emergency_contact.phone" not in event.fields and "enrollment_event.reason" not in event.fields
    assert "enrollment_event.kind" in event.fields

    with pytest.raises(NotFoundOrNoAccess):
        student_get_for(actor=get_actor(world.user("teacher_b")), student_id=student.pk)


# --- 特別支援教育の形態 -----------------------------------------------------------------------------------------

def test_special_needs_placement_is_recorded_encrypted_and_audited(world: World) -> None:
    student = world.students["a1_first"]
    student_special_needs_set(actor=get_actor(world.user("principal_a")), student_id=student.pk,
                              placement=SpecialNeedsPlacement.RESOURCE_ROOM, category="言語障害（通級）")
    stored = Student.objects.get(pk=student.pk)
    assert stored.special_needs_placement == "resource_room"
    assert stored.special_needs_category == "言語障害（通級）"
    assert "言語障害" not in str(raw_value(Student, student.pk, "special_needs_category"))
    event = AuditEvent.objects.filter(action="students.student.updated").latest("id")
    assert sorted(event.fields) == ["special_needs_category", "special_needs_placement"]


def test_special_needs_placement_rules(world: World) -> None:
    student = world.students["a1_first"]
    # A board officer may edit pupils but not read sensitive data, so may not write the category either.
    with pytest.raises(PermissionDeniedError):
        student_special_needs_set(actor=get_actor(world.user("board_officer_a")), student_id=student.pk,
                                  placement=SpecialNeedsPlacement.SPECIAL_NEEDS_CLASS, category="知的障害")
    with pytest.raises(ValidationFailed) as caught:
        student_special_needs_set(actor=get_actor(world.user("principal_a")), student_id=student.pk,
                                  placement=SpecialNeedsPlacement.NONE, category="知的障害")
    assert "空欄" in caught.value.errors["special_needs_category"][0]
    with pytest.raises(NotFoundOrNoAccess):
        student_special_needs_set(actor=get_actor(world.user("principal_b")), student_id=student.pk,
                                  placement=SpecialNeedsPlacement.SPECIAL_NEEDS_CLASS)
    assert Student.objects.get(pk=student.pk).special_needs_placement == SpecialNeedsPlacement.NONE
