"""Printing a class's contact list: reason asked, step-up for contacts, disclosure recorded with persons and
fields, watermark and serial on every page; the principal's register, returned/shredded, lost."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest
from django.urls import reverse

from komu.access.scope import get_actor
from komu.accounts import mfa
from komu.audit.models import AuditEvent
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.disclosures import selectors, services
from komu.disclosures.models import Disclosure
from komu.students.models import EmergencyContact
from komu.testing.world import World


def _pdf_text(content: bytes, tmp_path: Any) -> str:
    path = tmp_path / "doc.pdf"
    path.write_bytes(content)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True,
                          text=True).stdout


def _fresh(client: Any) -> None:
    session = client.session
    session[mfa.SESSION_REAUTH_AT] = time.time()
    session.save()


def test_contact_list_records_persons_fields_and_carries_the_serial_on_every_page(world: World, tmp_path: Any) -> None:
    s = world.students["a1_first"]
    EmergencyContact(student=s, priority=1, name="髙橋 一", relationship="祖父", phone="03-1111-2222").save()
    actor = get_actor(world.user("homeroom_a1"))
    out = services.class_document_print(actor=actor, class_id=world.class_a1.pk, kind="contacts",
                                        reason="避難訓練の確認", reauthenticated=True)
    d = out.disclosure
    assert d.medium == Disclosure.Medium.PRINT and d.status == Disclosure.Status.OUTSTANDING
    assert sorted(d.person_ids) == sorted([str(world.students["a1_first"].pk), str(world.students["a1_second"].pk)])
    assert "emergency_contacts" in d.fields and "guardian_phone" in d.fields
    assert d.serial in out.filename
    text = _pdf_text(out.content, tmp_path)
    assert d.serial in text and "03-1111-2222" in text and "090-1234-5678" in text
    assert "homeroom_a1" in text  # the printer's name (display name) in the watermark
    event = AuditEvent.objects.get(action="disclosures.disclosure.recorded")
    assert event.detail["serial"] == d.serial and event.detail["reason"] == "避難訓練の確認"


def test_contact_list_needs_a_fresh_reauthentication(world: World) -> None:
    actor = get_actor(world.user("homeroom_a1"))
    with pytest.raises(services.StepUpRequired):
        services.class_document_print(actor=actor, class_id=world.class_a1.pk, kind="contacts", reason="確認",
                                      reauthenticated=False)
    assert not Disclosure.objects.exists()
    # A small class list without contacts is not bulk.
    out = services.class_document_print(actor=actor, class_id=world.class_a1.pk, kind="class_list", reason="確認",
                                        reauthenticated=False)
    assert out.disclosure.fields == ["shusseki_no", "name", "kana", "sex"]


def test_a_reason_is_required_and_nothing_is_recorded_without_it(world: World) -> None:
    actor = get_actor(world.user("homeroom_a1"))
    with pytest.raises(ValidationFailed) as exc:
        services.class_document_print(actor=actor, class_id=world.class_a1.pk, kind="class_list", reason="  ",
                                      reauthenticated=True)
    assert "reason" in exc.value.errors
    assert not Disclosure.objects.exists()


def test_homeroom_teacher_cannot_print_another_class(world: World) -> None:
    actor = get_actor(world.user("homeroom_a1"))
    with pytest.raises(NotFoundOrNoAccess):
        services.class_document_print(actor=actor, class_id=world.class_a2.pk, kind="class_list", reason="x",
                                      reauthenticated=True)
    with pytest.raises(PermissionDeniedError):
        services.class_document_print(actor=get_actor(world.user("teacher_a")), class_id=world.class_a1.pk,
                                      kind="class_list", reason="x", reauthenticated=True)


def test_bulk_rule() -> None:
    assert not services.is_bulk(person_count=40)
    assert services.is_bulk(person_count=41)
    assert services.is_bulk(person_count=3, class_count=2)
    assert services.is_bulk(person_count=3, with_contacts=True)


def test_principal_closes_and_reports_lost_with_exact_persons(world: World) -> None:
    teacher = get_actor(world.user("homeroom_a1"))
    principal = get_actor(world.user("principal_a"))
    a = services.class_document_print(actor=teacher, class_id=world.class_a1.pk, kind="class_list", reason="x",
                                      reauthenticated=True).disclosure
    b = services.class_document_print(actor=teacher, class_id=world.class_a1.pk, kind="contacts", reason="y",
                                      reauthenticated=True).disclosure
    assert {d.serial for d in selectors.outstanding_for(actor=principal)} == {a.serial, b.serial}
    services.disclosure_close(actor=principal, serial=a.serial, status="shredded")
    with pytest.raises(ValidationFailed):
        services.disclosure_close(actor=principal, serial=a.serial, status="returned")
    services.disclosure_report_lost(actor=principal, serial=b.serial.lower())
    assert selectors.outstanding_for(actor=principal) == []
    contents = selectors.document_contents(actor=principal, serial=b.serial)
    assert {p.name for p in contents.persons} == {world.students["a1_first"].full_name,
                                                  world.students["a1_second"].full_name}
    assert "保護者電話番号" in contents.field_labels
    assert AuditEvent.objects.filter(action="disclosures.disclosure.contents_viewed").exists()
    # Another school's principal does not see the serial at all.
    with pytest.raises(NotFoundOrNoAccess):
        selectors.document_contents(actor=get_actor(world.user("principal_b")), serial=b.serial)
    with pytest.raises(PermissionDeniedError):
        services.disclosure_report_lost(actor=teacher, serial=b.serial)


def test_print_view_asks_for_reauth_then_answers_a_pdf(world: World, signed_in: Any) -> None:
    client = signed_in("homeroom_a1")
    url = reverse("disclosures:print_class", args=[world.class_a1.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"kind": "contacts", "reason": "避難訓練"})
    assert response.status_code == 302 and reverse("accounts:reauth") in response["Location"]
    _fresh(client)
    response = client.post(url, {"kind": "contacts", "reason": "避難訓練"})
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert Disclosure.objects.get(serial=response["X-Komu-Serial"])
    response = client.post(url, {"kind": "contacts", "reason": ""})
    assert response.status_code == 200 and "印刷の目的を入力してください" in response.content.decode()
    assert client.get(reverse("disclosures:print_class", args=[world.class_a2.pk])).status_code == 404


def test_register_and_lost_pages(world: World, signed_in: Any) -> None:
    teacher = get_actor(world.user("homeroom_a1"))
    d = services.class_document_print(actor=teacher, class_id=world.class_a1.pk, kind="contacts", reason="遠足",
                                      reauthenticated=True).disclosure
    client = signed_in("principal_a")
    page = client.get(reverse("disclosures:register")).content.decode()
    assert d.serial in page and "未回収の印刷物 1件" in page
    response = client.post(reverse("disclosures:report_lost", args=[d.serial]))
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert world.students["a1_first"].full_name in page and "2名の個人データが記載されていました" in page
    assert "緊急連絡先（氏名・続柄・電話番号）" in page
    assert client.get(reverse("disclosures:detail", args=["ZZZZZ-ZZZZZ"])).status_code == 404


def test_teacher_has_no_register(world: World, signed_in: Any) -> None:
    assert signed_in("homeroom_a1").get(reverse("disclosures:register")).status_code == 404


def test_home_task_and_register_query_count(world: World, signed_in: Any, django_assert_max_num_queries: Any) -> None:
    teacher = get_actor(world.user("homeroom_a1"))
    for _ in range(3):
        services.class_document_print(actor=teacher, class_id=world.class_a1.pk, kind="class_list", reason="x",
                                      reauthenticated=True)
    tasks = selectors.home_tasks(actor=get_actor(world.user("principal_a")))
    assert len(tasks) == 1 and "3件" in tasks[0].title and tasks[0].url == reverse("disclosures:register")
    assert selectors.home_tasks(actor=teacher) == []
    client = signed_in("principal_a")
    with django_assert_max_num_queries(20):
        assert client.get(reverse("disclosures:register")).status_code == 200
