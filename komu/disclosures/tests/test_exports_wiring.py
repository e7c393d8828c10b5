"""The class-list exports (komu/students/exports.py, rosters:export_*) are disclosures: a serial in the file name,
the XLSX header/footer and a CSV note row; recorded in the disclosure log; contacts need step-up."""

from __future__ import annotations

import io
from typing import Any

import openpyxl
import pytest
from django.urls import reverse

from komu.access.scope import get_actor
from komu.disclosures.models import Disclosure
from komu.disclosures.services import StepUpRequired
from komu.students import exports
from komu.testing.world import World


def test_xlsx_export_carries_the_serial_in_header_and_footer_and_is_recorded(world: World) -> None:
    out = exports.class_export(actor=get_actor(world.user("homeroom_a1")), class_id=world.class_a1.pk,
                               kind="class_list", fields=exports.CLASS_LIST_FIELDS, fmt="xlsx", reason="名簿確認")
    assert out.content is not None and out.serial in out.filename
    sheet = openpyxl.load_workbook(io.BytesIO(out.content)).worksheets[0]
    assert out.serial in sheet.oddHeader.center.text and out.serial in sheet.oddFooter.center.text
    d = Disclosure.objects.get(serial=out.serial)
    assert d.medium == Disclosure.Medium.FILE and d.fields == list(exports.CLASS_LIST_FIELDS)
    assert len(d.person_ids) == 2


def test_refused_cp932_export_records_no_disclosure(world: World) -> None:
    out = exports.class_export(actor=get_actor(world.user("homeroom_a1")), class_id=world.class_a1.pk,
                               kind="class_list", fields=exports.CLASS_LIST_FIELDS, fmt="csv_cp932", reason="x")
    assert not out.ok and not Disclosure.objects.exists()


def test_registry_with_contacts_needs_step_up(world: World) -> None:
    with pytest.raises(StepUpRequired):
        exports.class_export(actor=get_actor(world.user("principal_a")), class_id=world.class_a1.pk,
                             kind="registry", fields=("name", "guardian_phone"), fmt="csv_utf8", reason="x")
    assert not Disclosure.objects.exists()


def test_export_view_sends_to_reauthentication_for_contacts(world: World, signed_in: Any) -> None:
    client = signed_in("principal_a")
    url = reverse("rosters:export_registry", args=[world.class_a1.pk])
    response = client.post(url, {"kind": "registry", "columns": ["name", "guardian_phone"], "format": "csv_utf8",
                                 "reason": "家庭訪問"})
    assert response.status_code == 302 and reverse("accounts:reauth") in response["Location"]
    assert not Disclosure.objects.exists()


def test_monthly_register_print_asks_a_reason_and_carries_the_serial(world: World, signed_in: Any,
                                                                    tmp_path: Any) -> None:
    import subprocess

    from django.utils import timezone

    today = timezone.localdate()
    base = f"/attendance/monthly/{world.class_a1.pk}/{today.year}/{today.month}/pdf/"
    client = signed_in("homeroom_a1")
    assert "印刷の目的" in client.get(base).content.decode()
    refused = client.get(base + "?reason=")
    assert refused.status_code == 400 and not Disclosure.objects.exists()
    response = client.get(base + "?reason=学期末の点検")
    assert response["Content-Type"] == "application/pdf"
    d = Disclosure.objects.get()
    assert response["X-Komu-Serial"] == d.serial and len(d.person_ids) == 2 and "attendance" in d.fields
    path = tmp_path / "m.pdf"
    path.write_bytes(response.content)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert d.serial in text
    assert signed_in("homeroom_a1").get(
        f"/attendance/monthly/{world.class_a2.pk}/{today.year}/{today.month}/pdf/").status_code == 404


def test_a_transfer_document_download_is_recorded_with_its_pupil(world: World, signed_in: Any) -> None:
    from komu.rosters.models import TransferPackage
    from komu.rosters.tests.test_transfers import prepare_pupil, send

    pupil = prepare_pupil(world)
    package = send(world, pupil)
    assert isinstance(package, TransferPackage)
    response = signed_in("principal_b").get(reverse("rosters:transfer_document", args=[package.pk, "zaigaku"]))
    assert response.status_code == 200 and response.content.startswith(b"%PDF-")
    d = Disclosure.objects.get(serial=response["X-Komu-Serial"])
    assert d.person_ids == [str(pupil.pk)] and d.school == world.school_b and d.fields == ["transfer_documents"]
    assert d.serial in response["Content-Disposition"]
