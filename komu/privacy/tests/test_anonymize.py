from __future__ import annotations

from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.test import Client, override_settings
from django.urls import reverse

from komu.accounts.models import User
from komu.audit.models import AuditEvent
from komu.audit.services import audit_verify
from komu.demo.builder import build_demo
from komu.privacy.anonymize import Replacements, anonymize
from komu.students.models import ClassMembership, EmergencyContact, Guardian, Student


@pytest.fixture(scope="module")
def demo(django_db_setup: Any, django_db_blocker: Any) -> Iterator[None]:
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            build_demo(seed=7)
            yield
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


def _personal() -> tuple[set[str], set[str], dict[Any, Any]]:
    names, phones, births = set(), set(), {}
    for s in Student.objects.all():
        names.add(f"{s.family_name}{s.given_name}")
        births[s.pk] = s.birth_date
    for g in Guardian.objects.all():
        names.add(f"{g.family_name}{g.given_name}")
        if g.phone:
            phones.add(g.phone)
    for c in EmergencyContact.objects.all():
        phones.add(c.phone)
    return names, phones, births


def _cohort(day: Any) -> int:
    return int(day.year if (day.month, day.day) >= (4, 2) else day.year - 1)


@pytest.mark.django_db
def test_anonymize_the_demo(demo: None) -> None:
    names, phones, births = _personal()
    assert names and phones
    first = Student.objects.order_by("pk").first()
    assert first is not None
    with override_settings(DEBUG=True):  # a development database: no flag needed
        anonymize(password="dev-pass-123")
    new_names, new_phones, new_births = _personal()
    assert not names & new_names, "an original name remains"
    assert not phones & new_phones, "an original phone number remains"
    # Birth dates moved, within the same school cohort.
    assert any(births[k] != new_births[k] for k in births)
    assert all(_cohort(births[k]) == _cohort(new_births[k]) for k in births if births[k])
    # Kanji and kana still belong together: the same fake family name always has the same kana.
    kana_of: dict[str, str] = {}
    for s in Student.objects.all():
        assert kana_of.setdefault(s.family_name, s.family_name_kana) == s.family_name_kana
    # The audit log is re-sealed and verifies; its details are gone.
    checked, broken = audit_verify()
    assert broken is None and checked == AuditEvent.objects.count()
    assert not AuditEvent.objects.exclude(action="privacy.database.anonymized").exclude(detail={}).exists()
    assert AuditEvent.objects.order_by("-id").first().action == "privacy.database.anonymized"  # type: ignore[union-attr]
    # The app still works: a principal signs in with the development password and pages render.
    user = User.objects.get(username="demo-principal")
    assert user.check_password("dev-pass-123")
    client = Client()
    client.force_login(user)
    response = client.get(reverse("web:home"))
    assert response.status_code == 302  # second factor to enrol again: devices were removed
    assert "mfa" in response["Location"]
    from django_otp.plugins.otp_totp.models import TOTPDevice

    assert not TOTPDevice.objects.exists()
    device = TOTPDevice.objects.create(user=user, name="dev", confirmed=True)
    session = client.session
    from django_otp import DEVICE_ID_SESSION_KEY

    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    assert client.get(reverse("web:home")).status_code == 200
    from komu.directory.models import StaffAssignment

    school_id = StaffAssignment.objects.filter(user=user, school__isnull=False).values_list("school_id", flat=True)[0]
    membership = ClassMembership.objects.filter(student__school_id=school_id).select_related(
        "student", "homeroom_class").first()
    assert membership is not None
    page = client.get(reverse("students:list"), {"school": school_id, "klass": membership.homeroom_class_id})
    assert page.status_code == 200 and membership.student.family_name in page.content.decode()
    detail = client.get(reverse("students:detail", args=[membership.student_id]))
    assert detail.status_code == 200 and membership.student.given_name in detail.content.decode()


@pytest.mark.django_db
def test_refuses_a_production_looking_database(world: Any) -> None:
    with override_settings(DEBUG=False), pytest.raises(CommandError, match="--i-understand-this-is-a-copy"):
        call_command("anonymize", stdout=StringIO())
    assert "髙橋" in {s.family_name for s in Student.objects.all()}


@pytest.mark.django_db
def test_command_runs_on_a_copy_with_the_flag(world: Any) -> None:
    out = StringIO()
    with override_settings(DEBUG=False):
        call_command("anonymize", "--i-understand-this-is-a-copy", stdout=out)
    assert "匿名化しました" in out.getvalue()
    assert "髙橋" not in {s.family_name for s in Student.objects.all()}


def test_replacements_are_consistent_within_a_run() -> None:
    r = Replacements(1)
    assert r.family("髙橋") == r.family("髙橋") and r.digits("090-1234-5678") == r.digits("090-1234-5678")
    assert r.digits("090-1234-5678") != "090-1234-5678" and r.digits("090-1234-5678")[:1] == "0"
    assert r.email("A@x.jp") == r.email("a@x.jp")
    import datetime

    moved = r.date(datetime.date(2017, 4, 2))
    assert datetime.date(2017, 4, 2) <= moved <= datetime.date(2018, 4, 1)


@pytest.mark.django_db
def test_attachments_become_placeholders_that_open_and_the_originals_are_counted_not_deleted(world: Any) -> None:
    from komu.access.scope import get_actor
    from komu.notices.models import Attachment, Notice
    from komu.notices.services import notices as svc
    from komu.notices.services.attachments import Upload
    from komu.notices.tests.helpers import PDF
    from komu.security.blobs import blob_read, blob_storage

    svc.notice_send(actor=get_actor(world.user("board_officer_a")), data=svc.NoticeInput(
        kind=Notice.Kind.JIMU_RENRAKU, title="診断書の送付", body="確認してください。", ack_required=False,
        attachments=(Upload("髙橋一郎_診断書.pdf", PDF),)))
    before = Attachment.objects.get()
    out = StringIO()
    with override_settings(DEBUG=True):
        call_command("anonymize", stdout=out)
    after = Attachment.objects.get()
    assert after.filename == "匿名化した添付ファイル1.pdf" and after.content_type == "application/pdf"
    assert after.blob != before.blob and after.blob_key != before.blob_key
    content = blob_read(after, sha256=after.sha256, size=after.size)
    assert content.startswith(b"%PDF") and content != PDF and after.size == len(content)
    # The original file is left where it was (the store may not be the copy's own) and the command says so.
    assert blob_storage().exists(before.blob)
    assert "添付ファイル: 1 件" in out.getvalue() and "元の添付ファイル 1 件" in out.getvalue()
    assert "髙橋一郎" not in out.getvalue()
