"""転学: the old school sends a certified package, the receiving school (or its board first) takes it, and both
registers agree afterwards."""

from __future__ import annotations

import datetime
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from komu.access.scope import Actor, get_actor
from komu.attendance import calendar
from komu.attendance.models import Mark
from komu.audit.models import AuditEvent
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.demo.builder import build_demo
from komu.directory.models import Role, School, StaffAssignment
from komu.rosters.models import TransferDocument, TransferPackage
from komu.rosters.selectors import transfers as selectors
from komu.rosters.services import transfers
from komu.students import services as student_services
from komu.students.models import EnrollmentEvent, EnrollmentKind, GuardianLink, Student
from komu.testing.world import World

PDFTOTEXT = shutil.which("pdftotext")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def act(world: World, name: str) -> Actor:
    return get_actor(world.user(name))


def today() -> datetime.date:
    return timezone.localdate()


def prepare_pupil(world: World) -> Student:
    """髙橋 𠮷乃 of みどり市立第一小学校 1年1組: admitted in April, one 病気 absence, an emergency contact."""
    principal = world.user("principal_a")
    principal.display_name = "勅使河原 一郎"
    principal.save()
    pupil = world.students["a1_first"]
    year = world.class_a1.school_year
    admin = act(world, "principal_a")
    student_services.enrollment_event_record(actor=admin, student_id=pupil.pk, kind=EnrollmentKind.ADMISSION,
                                             date=year.start_date, grade_code="P1")
    student_services.emergency_contact_set(actor=admin, student_id=pupil.pk, contacts=[
        student_services.EmergencyContactInput(name="髙橋 和子", relationship="祖母", phone="03-1234-5678"),
    ])
    days = calendar.school_days(year, year.start_date, today() - datetime.timedelta(days=1))
    Mark.objects.create(student=pupil, homeroom_class=world.class_a1, date=days[0], kind="absent",
                        absence_reason="illness", updated_by=principal)
    return pupil


def send(world: World, pupil: Student, **kwargs: Any) -> TransferPackage:
    args: dict[str, Any] = {"to_school_id": world.school_b.pk, "reason": "転居のため"}
    args.update(kwargs)
    return transfers.transfer_send(actor=act(world, "principal_a"), student_id=pupil.pk, departure_date=today(),
                                   **args)


def pdf_text(content: bytes, tmp_path: Path) -> str:
    if PDFTOTEXT is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    path = tmp_path / "doc.pdf"
    path.write_bytes(content)
    return subprocess.run([PDFTOTEXT, "-layout", str(path), "-"], check=True, capture_output=True,
                          text=True).stdout


def test_a_transfer_completes_and_both_registers_agree(world: World) -> None:
    pupil = prepare_pupil(world)
    package = send(world, pupil)
    assert package.status == TransferPackage.Status.SENT and package.to_school == world.school_b

    pupil.refresh_from_db()
    assert pupil.is_active is False
    out = EnrollmentEvent.objects.get(student=pupil, kind=EnrollmentKind.TRANSFER_OUT)
    assert out.other_school_name == world.school_b.name and out.other_school_code == world.school_b.code
    assert out.date == today() and out.reason == "転居のため"

    record = package.data
    assert record["student"]["family_name"] == "髙橋" and record["student"]["given_name"] == "𠮷乃"
    assert record["guardians"][0]["relationship"] == "母" and record["guardians"][0]["phone"] == "090-1234-5678"
    assert record["emergency_contacts"][0]["relationship"] == "祖母"
    assert [e["kind"] for e in record["history"]] == ["admission", "transfer_out"]
    totals = record["attendance"]
    assert totals["absent_days"] == 1 and totals["lesson_days"] > 1
    assert totals["required_days"] == totals["lesson_days"] - totals["excused_days"]
    assert totals["present_days"] == totals["required_days"] - totals["absent_days"]
    assert record["from_school"]["principal"] == "勅使河原 一郎"

    new = transfers.transfer_accept(actor=act(world, "principal_b"), package_id=package.pk,
                                    transfer_in_date=today())
    assert new.school == world.school_b and new.is_active
    assert (new.family_name, new.given_name, new.family_name_kana) == ("髙橋", "𠮷乃", "タカハシ")
    assert new.birth_date == pupil.birth_date and new.address == pupil.address and new.sex == pupil.sex
    assert new.pending_grade_code == "P1" and new.pending_year == world.class_b1.school_year.year
    links = list(GuardianLink.objects.filter(student=new).select_related("guardian"))
    assert [(link.relationship, link.guardian.full_name, link.guardian.phone) for link in links] == [
        ("母", "髙橋 陽子", "090-1234-5678")]
    assert [c.name for c in new.emergency_contacts.all()] == ["髙橋 和子"]
    history = list(EnrollmentEvent.objects.filter(student=new).order_by("date", "created_at"))
    assert [e.kind for e in history] == ["admission", "transfer_in"]
    assert history[0].other_school_name == world.school_a.name
    assert history[1].other_school_name == world.school_a.name and history[1].other_school_code == world.school_a.code
    package.refresh_from_db()
    assert package.status == TransferPackage.Status.ACCEPTED and package.received_student == new
    # The package keeps exactly what was sent.
    assert package.data == record


def test_accepting_twice_returns_the_same_pupil(world: World) -> None:
    package = send(world, prepare_pupil(world))
    first = transfers.transfer_accept(actor=act(world, "principal_b"), package_id=package.pk,
                                      transfer_in_date=today())
    second = transfers.transfer_accept(actor=act(world, "principal_b"), package_id=package.pk,
                                       transfer_in_date=today())
    assert first.pk == second.pk
    assert Student.objects.filter(school=world.school_b).count() == 2  # 鈴木 一郎 and the newcomer


def test_the_three_pdfs_are_japanese_certified_and_verify(world: World, tmp_path: Path) -> None:
    package = send(world, prepare_pupil(world), textbooks=["国語 光村図書 こくご一上"])
    documents = {d.kind: d for d in package.documents.all()}
    assert set(documents) == {"shido_yoroku", "zaigaku", "textbook"}
    for document in documents.values():
        content = transfers.document_bytes(document)
        assert content.startswith(b"%PDF-")
        assert transfers.transfer_document_verify(document)
        assert document.signed_by == world.user("principal_a")
        text = pdf_text(content, tmp_path)
        assert "髙橋" in text and "𠮷乃" in text
        assert "令和" in text and "勅使河原 一郎" in text and world.school_a.name in text
    assert "指導要録" in pdf_text(transfers.document_bytes(documents["shido_yoroku"]), tmp_path)
    assert "在学証明書" in pdf_text(transfers.document_bytes(documents["zaigaku"]), tmp_path)
    textbook = pdf_text(transfers.document_bytes(documents["textbook"]), tmp_path)
    assert "教科用図書給与証明書" in textbook and "こくご一上" in textbook


def test_a_tampered_document_or_signature_fails_verification(world: World) -> None:
    package = send(world, prepare_pupil(world))
    document = package.documents.get(kind=TransferDocument.Kind.ENROLLMENT_CERTIFICATE)
    content = transfers.document_bytes(document)
    from komu.security.blobs import blob_put

    # The row pointed at another file holding altered bytes (sealed for this row, so only the hash can tell).
    tampered = content.replace(b"/Author", b"/Autho2", 1)
    blob_put(document, tampered)
    assert not transfers.transfer_document_verify(document)
    document.refresh_from_db()
    assert transfers.transfer_document_verify(document)
    document.kind = TransferDocument.Kind.TEXTBOOK_CERTIFICATE  # the signature names the kind
    assert not transfers.transfer_document_verify(document)
    document.refresh_from_db()
    document.signature = document.signature[:-4] + "AAA="
    assert not transfers.transfer_document_verify(document)


def test_without_a_known_school_the_package_waits_at_the_board_which_designates_it(world: World) -> None:
    pupil = prepare_pupil(world)
    package = send(world, pupil, to_school_id=None, to_board_id=world.board_b.pk, to_school_name="")
    assert package.status == TransferPackage.Status.AT_BOARD and package.to_school is None
    out = EnrollmentEvent.objects.get(student=pupil, kind=EnrollmentKind.TRANSFER_OUT)
    assert world.board_b.name in out.other_school_name

    # The receiving school does not see it yet; another board cannot route it.
    with pytest.raises(NotFoundOrNoAccess):
        transfers.transfer_accept(actor=act(world, "principal_b"), package_id=package.pk, transfer_in_date=today())
    with pytest.raises(NotFoundOrNoAccess):
        transfers.transfer_route(actor=act(world, "board_officer_a"), package_id=package.pk,
                                 to_school_id=world.school_b.pk)
    with pytest.raises(ValidationFailed):
        transfers.transfer_route(actor=act(world, "board_officer_b"), package_id=package.pk,
                                 to_school_id=world.school_a.pk)

    transfers.transfer_route(actor=act(world, "board_officer_b"), package_id=package.pk,
                             to_school_id=world.school_b.pk)
    package.refresh_from_db()
    assert package.status == TransferPackage.Status.SENT and package.to_school == world.school_b
    out.refresh_from_db()
    assert out.other_school_name == world.school_b.name
    assert AuditEvent.objects.filter(action="rosters.transfer.routed", object_id=str(package.pk)).exists()
    new = transfers.transfer_accept(actor=act(world, "principal_b"), package_id=package.pk,
                                    transfer_in_date=today())
    assert new.school == world.school_b


def test_only_the_principal_or_vice_principal_certifies(world: World) -> None:
    pupil = prepare_pupil(world)
    with pytest.raises(PermissionDeniedError):
        transfers.transfer_send(actor=act(world, "school_admin_a"), student_id=pupil.pk, departure_date=today(),
                                to_school_id=world.school_b.pk, reason="転居のため")
    package = transfers.transfer_send(actor=act(world, "vice_principal_a"), student_id=pupil.pk,
                                      departure_date=today(), to_school_id=world.school_b.pk, reason="転居のため")
    event = AuditEvent.objects.get(action="rosters.transfer.sent", object_id=str(package.pk))
    assert event.detail["certified_as"] == "vice_principal"


def test_pupils_of_other_schools_are_not_found(world: World) -> None:
    with pytest.raises(NotFoundOrNoAccess):
        transfers.transfer_send(actor=act(world, "principal_b"), student_id=world.students["a1_first"].pk,
                                departure_date=today(), to_school_id=world.school_a.pk, reason="転居のため")
    package = send(world, prepare_pupil(world))
    for outsider in ("principal_a", "teacher_b", "board_officer_a"):
        with pytest.raises(NotFoundOrNoAccess):
            transfers.transfer_accept(actor=act(world, outsider), package_id=package.pk, transfer_in_date=today())
    with pytest.raises(NotFoundOrNoAccess):
        selectors.transfer_get_for(actor=act(world, "teacher_b"), package_id=package.pk)


def test_bad_input_is_refused_with_nothing_written(world: World) -> None:
    pupil = prepare_pupil(world)
    with pytest.raises(ValidationFailed) as caught:
        send(world, pupil, reason="  ", to_school_id=world.school_a.pk)
    assert set(caught.value.errors) == {"reason", "to_school"}
    with pytest.raises(ValidationFailed):
        send(world, pupil, to_school_id=None)
    pupil.refresh_from_db()
    assert pupil.is_active and not TransferPackage.objects.exists()
    assert not EnrollmentEvent.objects.filter(student=pupil, kind=EnrollmentKind.TRANSFER_OUT).exists()
    send(world, pupil)
    with pytest.raises(ValidationFailed):
        send(world, pupil)
    package = TransferPackage.objects.get()
    with pytest.raises(ValidationFailed):
        transfers.transfer_accept(actor=act(world, "principal_b"), package_id=package.pk,
                                  transfer_in_date=today() - datetime.timedelta(days=1))
    assert Student.objects.filter(school=world.school_b).count() == 1


def test_cancelling_enrols_the_pupil_again(world: World) -> None:
    pupil = prepare_pupil(world)
    package = send(world, pupil)
    with pytest.raises(ValidationFailed):
        transfers.transfer_cancel(actor=act(world, "principal_a"), package_id=package.pk, reason="")
    transfers.transfer_cancel(actor=act(world, "principal_a"), package_id=package.pk, reason="転居の取りやめ")
    pupil.refresh_from_db()
    package.refresh_from_db()
    assert pupil.is_active and package.status == TransferPackage.Status.CANCELLED
    assert not EnrollmentEvent.objects.filter(student=pupil, kind=EnrollmentKind.TRANSFER_OUT).exists()
    assert package.data["cancelled"]["reason"] == "転居の取りやめ"
    with pytest.raises(NotFoundOrNoAccess):
        selectors.transfer_get_for(actor=act(world, "principal_b"), package_id=package.pk)


def test_every_step_is_audited(world: World) -> None:
    package = send(world, prepare_pupil(world))
    selectors.transfer_get_for(actor=act(world, "principal_b"), package_id=package.pk)
    selectors.transfer_document_get_for(actor=act(world, "principal_b"), package_id=package.pk, kind="zaigaku")
    transfers.transfer_accept(actor=act(world, "principal_b"), package_id=package.pk, transfer_in_date=today())
    actions = set(AuditEvent.objects.filter(object_id=str(package.pk)).values_list("action", flat=True))
    assert {"rosters.transfer.sent", "rosters.transfer.viewed", "rosters.transfer.document_downloaded",
            "rosters.transfer.accepted"} <= actions
    sent = AuditEvent.objects.get(action="rosters.transfer.sent")
    assert sent.detail["student_id"] == str(world.students["a1_first"].pk)
    assert set(sent.detail["documents"]) == {"shido_yoroku", "zaigaku", "textbook"}


def test_todo_counts_for_the_home_page(world: World) -> None:
    send(world, prepare_pupil(world))
    assert selectors.transfer_todo_for(actor=act(world, "principal_b")).incoming == 1
    assert selectors.transfer_todo_for(actor=act(world, "principal_a")).incoming == 0
    send(world, world.students["a1_second"], to_school_id=None, to_board_id=world.board_b.pk)
    assert selectors.transfer_todo_for(actor=act(world, "board_officer_b")).at_board == 1


# --- Views -----------------------------------------------------------------------------------------------------

def test_the_screens_walk_through_a_transfer(world: World, signed_in: Any) -> None:
    pupil = prepare_pupil(world)
    client = signed_in("principal_a")
    form = client.get(reverse("rosters:transfer_new", args=[pupil.pk]))
    assert form.status_code == 200 and "髙橋" in form.content.decode()
    response = client.post(reverse("rosters:transfer_new", args=[pupil.pk]), {
        "departure_date": today().isoformat(), "destination": "school", "to_school": world.school_b.pk,
        "reason": "転居のため", "textbooks": "",
    })
    package = TransferPackage.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("rosters:transfer_detail",
                                                                           args=[package.pk])
    listing = client.get(reverse("rosters:transfer_list"))
    assert "髙橋" in listing.content.decode()

    client = signed_in("principal_b")
    detail = client.get(reverse("rosters:transfer_detail", args=[package.pk]))
    page = detail.content.decode()
    assert detail.status_code == 200 and "電子署名: 有効" in page and "受け入れる" in page
    # 転入学日 offered: the day after the 転学日 (the old school's last day).
    day_after = (today() + datetime.timedelta(days=1)).isoformat()
    assert f'name="transfer_in_date" value="{day_after}"' in page
    pdf = client.get(reverse("rosters:transfer_document", args=[package.pk, "shido_yoroku"]))
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    accepted = client.post(reverse("rosters:transfer_accept", args=[package.pk]),
                           {"transfer_in_date": today().isoformat()})
    assert accepted.status_code == 302
    package.refresh_from_db()
    assert package.status == TransferPackage.Status.ACCEPTED


def test_screens_of_another_school_answer_404(world: World, signed_in: Any) -> None:
    package = send(world, prepare_pupil(world))
    client = signed_in("teacher_b")
    assert client.get(reverse("rosters:transfer_detail", args=[package.pk])).status_code == 404
    client = signed_in("school_admin_a")
    assert client.get(reverse("rosters:transfer_new", args=[world.students["b1_first"].pk])).status_code == 404
    assert client.get(reverse("rosters:transfer_document", args=[package.pk, "nonsense"])).status_code == 404


def test_the_board_designates_the_school_on_screen(world: World, signed_in: Any) -> None:
    package = send(world, prepare_pupil(world), to_school_id=None, to_board_id=world.board_b.pk)
    client = signed_in("board_officer_b")
    listing = client.get(reverse("rosters:transfer_list"))
    assert "髙橋" in listing.content.decode()
    page = client.get(reverse("rosters:transfer_detail", args=[package.pk])).content.decode()
    assert world.school_b.name in page
    response = client.post(reverse("rosters:transfer_route", args=[package.pk]), {"to_school": world.school_b.pk})
    assert response.status_code == 302
    package.refresh_from_db()
    assert package.status == TransferPackage.Status.SENT


def test_a_wrong_date_on_accept_is_shown_next_to_the_field(world: World, signed_in: Any) -> None:
    package = send(world, prepare_pupil(world))
    client = signed_in("principal_b")
    response = client.post(reverse("rosters:transfer_accept", args=[package.pk]),
                           {"transfer_in_date": (today() - datetime.timedelta(days=3)).isoformat()})
    assert response.status_code == 400 and "転入学日は転学日" in response.content.decode()
    package.refresh_from_db()
    assert package.status == TransferPackage.Status.SENT


def test_the_old_school_cancels_on_screen(world: World, signed_in: Any) -> None:
    pupil = prepare_pupil(world)
    package = send(world, pupil)
    client = signed_in("principal_a")
    page = client.get(reverse("rosters:transfer_detail", args=[package.pk])).content.decode()
    assert "転学を取り消す" in page and "受け入れる" not in page
    response = client.post(reverse("rosters:transfer_cancel", args=[package.pk]), {"reason": "転居の取りやめ"})
    assert response.status_code == 302
    pupil.refresh_from_db()
    assert pupil.is_active


def test_the_school_office_sees_that_the_principal_must_send(world: World, signed_in: Any) -> None:
    pupil = prepare_pupil(world)
    client = signed_in("school_admin_a")
    page = client.get(reverse("rosters:transfer_new", args=[pupil.pk])).content.decode()
    assert "校長・副校長に開いてもらってください" in page


def test_the_transfer_list_costs_the_same_queries_for_more_packages(
    world: World, signed_in: Any, django_assert_max_num_queries: Any,
) -> None:
    send(world, prepare_pupil(world))
    client = signed_in("principal_b")
    url = reverse("rosters:transfer_list")
    client.get(url)
    with CaptureQueriesContext(connection) as one:
        client.get(url)
    send(world, world.students["a1_second"])
    with django_assert_max_num_queries(len(one.captured_queries)):
        response = client.get(url)
    page = response.content.decode()
    assert "髙橋" in page and "山﨑" in page


def test_a_transfer_completes_between_two_demo_schools(db: None, tmp_path: Path) -> None:
    """The demo municipality as a new user sees it: real-looking pupils with guardians, contacts and marks."""
    build_demo(seed=7)
    principals = {a.school_id: a.user for a in StaffAssignment.objects.filter(role=Role.PRINCIPAL)}
    primary = [s for s in School.objects.filter(school_type="B1").order_by("code") if s.pk in principals]
    old_school, new_school = primary[0], primary[1]
    pupil = (Student.objects.filter(school=old_school, is_active=True, guardian_links__isnull=False)
             .order_by("created_at").first())
    assert pupil is not None
    package = transfers.transfer_send(actor=get_actor(principals[old_school.pk]), student_id=pupil.pk,
                                      departure_date=today(), to_school_id=new_school.pk, reason="転居のため")
    assert all(transfers.transfer_document_verify(d) for d in package.documents.all())
    new = transfers.transfer_accept(actor=get_actor(principals[new_school.pk]), package_id=package.pk,
                                    transfer_in_date=today())
    assert (new.family_name, new.given_name) == (pupil.family_name, pupil.given_name)
    assert new.guardian_links.count() == pupil.guardian_links.count()
    assert new.emergency_contacts.count() == pupil.emergency_contacts.count()
    text = pdf_text(transfers.document_bytes(package.documents.get(kind="zaigaku")), tmp_path)
    assert pupil.family_name in text and old_school.name in text
