"""The record's own edit screens: emergency contacts in priority order, enrolment history, special-needs placement,
guardians — each through its service, 404 out of scope, errors next to the field, and audited."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.urls import reverse

from komu.access.scope import get_actor
from komu.audit.models import AuditEvent
from komu.core.errors import NotFoundOrNoAccess, ValidationFailed
from komu.students.models import EmergencyContact, EnrollmentEvent, GuardianLink, Student
from komu.students.services import GuardianInput, guardian_add, guardian_update
from komu.testing.world import World

pytestmark = pytest.mark.django_db


def _url(name: str, student: Student, **kwargs: Any) -> str:
    return reverse(f"students:{name}", kwargs={"student_id": student.pk, **kwargs})


def _contacts_post(rows: list[dict[str, str]]) -> dict[str, str]:
    data = {"contacts-TOTAL_FORMS": str(len(rows)), "contacts-INITIAL_FORMS": "0",
            "contacts-MIN_NUM_FORMS": "0", "contacts-MAX_NUM_FORMS": "10"}
    for i, row in enumerate(rows):
        for key, value in row.items():
            data[f"contacts-{i}-{key}"] = value
    return data


def test_record_shows_contacts_history_and_special_needs_with_edit_links(signed_in: Any, world: World) -> None:
    student = world.students["a1_first"]
    EmergencyContact(student=student, priority=1, name="髙橋 トメ", relationship="祖母", phone="090-1111-2222").save()
    body = signed_in("principal_a").get(_url("detail", student)).content.decode()
    for text in ("緊急連絡先", "髙橋 トメ", "学籍の異動", "特別支援教育", "保護者を追加"):
        assert text in body
    assert _url("emergency_contacts", student) in body and _url("enrollment_event_new", student) in body
    assert _url("special_needs", student) in body
    # A teacher reads the record but gets no edit links.
    body = signed_in("teacher_a").get(_url("detail", student)).content.decode()
    assert _url("enrollment_event_new", student) not in body


def test_emergency_contacts_are_saved_in_the_order_of_their_priority(signed_in: Any, world: World) -> None:
    student = world.students["a1_first"]
    client = signed_in("principal_a")
    assert client.get(_url("emergency_contacts", student)).status_code == 200
    response = client.post(_url("emergency_contacts", student), _contacts_post([
        {"order": "2", "name": "髙橋 一郎", "relationship": "父の勤務先", "phone": "03-1234-5678"},
        {"order": "1", "name": "髙橋 トメ", "relationship": "祖母", "phone": "０９０−１１１１−２２２２"},
        {"order": "", "name": "", "relationship": "", "phone": ""},
    ]))
    assert response.status_code == 302
    assert [(c.priority, c.relationship) for c in EmergencyContact.objects.filter(student=student)
            .order_by("priority")] == [(1, "祖母"), (2, "父の勤務先")]
    assert AuditEvent.objects.filter(action="students.emergency_contact.replaced").count() == 1


def test_emergency_contact_errors_show_on_their_row_and_nothing_is_saved(signed_in: Any, world: World) -> None:
    student = world.students["a1_first"]
    response = signed_in("principal_a").post(_url("emergency_contacts", student), _contacts_post([
        {"order": "1", "name": "髙橋 トメ", "relationship": "", "phone": "090-1111-2222"},
    ]))
    assert response.status_code == 200
    assert "続柄を入力してください" in response.content.decode()
    assert not EmergencyContact.objects.filter(student=student).exists()


def test_enrollment_event_is_recorded_from_the_form(signed_in: Any, world: World) -> None:
    student = world.students["a1_first"]
    client = signed_in("principal_a")
    assert client.get(_url("enrollment_event_new", student)).status_code == 200
    response = client.post(_url("enrollment_event_new", student), {
        "kind": "transfer_in", "date": "2026-09-01", "grade_code": "P1", "other_school_name": "あおば町立あおば小学校",
        "other_school_code": "", "reason": "転居のため",
    })
    assert response.status_code == 302
    event = EnrollmentEvent.objects.get(student=student)
    assert (event.kind, event.date, event.reason) == ("transfer_in", datetime.date(2026, 9, 1), "転居のため")
    response = client.post(_url("enrollment_event_new", student), {"kind": "transfer_out", "date": "2026-10-01",
                                                                    "grade_code": "P1"})
    assert response.status_code == 200
    assert "相手の学校名を入力してください" in response.content.decode()


def test_special_needs_screen_is_only_for_those_who_may_read_it(signed_in: Any, world: World) -> None:
    student = world.students["a1_first"]
    # The school office edits pupils but may not read 要配慮個人情報.
    assert signed_in("school_admin_a").get(_url("special_needs", student)).status_code == 404
    client = signed_in("principal_a")
    response = client.post(_url("special_needs", student), {"special_needs_placement": "resource_room",
                                                            "special_needs_category": "言語障害"})
    assert response.status_code == 302
    student.refresh_from_db()
    assert (student.special_needs_placement, student.special_needs_category) == ("resource_room", "言語障害")
    response = client.post(_url("special_needs", student), {"special_needs_placement": "none",
                                                            "special_needs_category": "言語障害"})
    assert "空欄にしてください" in response.content.decode()


def test_guardians_are_added_and_edited(signed_in: Any, world: World) -> None:
    student = world.students["a1_first"]
    client = signed_in("principal_a")
    response = client.post(_url("guardian_add", student), {
        "family_name": "髙橋", "given_name": "一郎", "family_name_kana": "たかはし", "given_name_kana": "イチロウ",
        "relationship": "父", "priority": "2", "phone": "090-2222-3333", "email": "ichiro@example.jp",
        "address": "架空県みどり市一丁目1-1",
    })
    assert response.status_code == 302
    link = GuardianLink.objects.get(student=student, relationship="父")
    assert (link.priority, link.guardian.family_name_kana, link.guardian.address) == (2, "タカハシ",
                                                                                      "架空県みどり市一丁目1-1")
    edit = _url("guardian_edit", student, guardian_id=link.guardian_id)
    assert "ichiro@example.jp" in client.get(edit).content.decode()
    response = client.post(edit, {"family_name": "髙橋", "given_name": "一郎", "relationship": "父", "priority": "1",
                                  "phone": "", "email": "not-an-address", "address": ""})
    assert "メールアドレスの形が正しくありません" in response.content.decode()
    response = client.post(edit, {"family_name": "髙橋", "given_name": "一郎", "relationship": "父", "priority": "1",
                                  "phone": "03-9999-0000", "email": "", "address": ""})
    assert response.status_code == 302
    link.refresh_from_db()
    assert (link.priority, link.guardian.phone) == (1, "03-9999-0000")
    assert AuditEvent.objects.filter(action="students.guardian.updated").count() == 1


def test_guardian_services_check_scope_and_input(world: World) -> None:
    actor = get_actor(world.user("principal_a"))
    data = GuardianInput(family_name="鈴木", given_name="健")
    with pytest.raises(NotFoundOrNoAccess):
        guardian_add(actor=actor, student_id=world.students["b1_first"].pk, data=data, relationship="父")
    with pytest.raises(ValidationFailed) as exc:
        guardian_add(actor=actor, student_id=world.students["a1_first"].pk, data=data, relationship="",
                     priority=0)
    assert set(exc.value.errors) == {"relationship", "priority"}
    # A guardian of another pupil cannot be edited through this pupil.
    with pytest.raises(NotFoundOrNoAccess):
        guardian_update(actor=actor, student_id=world.students["a2_first"].pk,
                        guardian_id=world.guardians["guardian_a"].pk, data=data, relationship="父", priority=1)


def test_record_screens_of_another_school_are_not_found(signed_in: Any, world: World) -> None:
    other = world.students["b1_first"]
    client = signed_in("principal_a")
    for name in ("emergency_contacts", "enrollment_event_new", "special_needs", "guardian_add"):
        assert client.get(_url(name, other)).status_code == 404
    assert client.post(_url("enrollment_event_new", other), {"kind": "withdrawal", "date": "2026-10-01",
                                                             "grade_code": "P1"}).status_code == 404
