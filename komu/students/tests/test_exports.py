"""名簿の出力: CSV (UTF-8 with BOM or CP932) and XLSX, formula-safe, asked for a reason, audited, within scope."""

from __future__ import annotations

import csv
import io
from typing import Any

import openpyxl
import pytest
from django.urls import reverse

from komu.access.scope import Actor, get_actor
from komu.audit.models import AuditEvent
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.students import exports
from komu.students.models import Student
from komu.testing.world import World


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def act(world: World, name: str) -> Actor:
    return get_actor(world.user(name))


def rename(student: Student, **names: str) -> None:
    for key, value in names.items():
        setattr(student, key, value)
    student.save()


def export(world: World, *, who: str = "homeroom_a1", fields: tuple[str, ...] = exports.CLASS_LIST_FIELDS,
           fmt: str = "csv_utf8", kind: str = "class_list", klass: Any = None,
           reason: str = "家庭訪問の準備", reauthenticated: bool = True) -> exports.ExportOutcome:
    # Guardians' contacts need a fresh re-authentication (step-up); komu/disclosures/tests covers the refusal.
    return exports.class_export(actor=act(world, who), class_id=(klass or world.class_a1).pk, kind=kind,
                                fields=fields, fmt=fmt, reason=reason, reauthenticated=reauthenticated)


def rows_of(content: bytes, encoding: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode(encoding))))


def test_utf8_csv_has_a_bom_and_the_names_exactly(world: World) -> None:
    outcome = export(world)
    assert outcome.ok and outcome.content is not None
    assert outcome.content.startswith(b"\xef\xbb\xbf")
    rows = rows_of(outcome.content, "utf-8-sig")
    assert rows[0] == ["出席番号", "氏名", "ふりがな", "性別", "生年月日"]
    assert rows[1][:3] == ["1", "髙橋 𠮷乃", "タカハシ ヨシノ"]
    assert rows[2][1] == "山﨑 葛\U000e0100太"
    assert outcome.filename.endswith(".csv") and outcome.rows == 2


def test_cp932_round_trips_taka_and_saki(world: World) -> None:
    rename(world.students["a1_first"], given_name="陽菜")
    rename(world.students["a1_second"], given_name="太郎")
    outcome = export(world, fmt="csv_cp932")
    assert outcome.ok and outcome.content is not None
    assert not outcome.content.startswith(b"\xef\xbb\xbf")
    rows = rows_of(outcome.content, "cp932")
    assert [r[1] for r in rows[1:-1]] == ["髙橋 陽菜", "山﨑 太郎"]
    assert rows[-1][0].startswith("# ") and outcome.serial in rows[-1][0]  # the disclosure note row


def test_cp932_refuses_yoshi_and_lists_the_row_never_writing_a_question_mark(world: World) -> None:
    outcome = export(world, fmt="csv_cp932")
    assert not outcome.ok and outcome.content is None
    assert [(p.row, p.shusseki_no, p.column) for p in outcome.problems] == [(2, "1", "氏名"), (3, "2", "氏名")]
    assert "𠮷" in outcome.problems[0].chars and "U+20BB7" in outcome.problems[0].chars
    refused = AuditEvent.objects.get(action="students.export.refused")
    assert refused.detail["problem_rows"] == [2, 3] and refused.detail["person_ids"] == []
    assert not AuditEvent.objects.filter(action="students.export.created").exists()


def test_cells_that_would_run_as_formulas_are_escaped(world: World) -> None:
    first, second = world.students["a1_first"], world.students["a1_second"]
    rename(first, family_name="=HYPERLINK(\"http://x\")", given_name="+1", address="@SUM(A1)")
    rename(second, family_name="-2", given_name="＝1", address="ok")
    outcome = export(world, who="principal_a", kind="registry", fields=("name", "address"))
    assert outcome.content is not None
    rows = rows_of(outcome.content, "utf-8-sig")
    assert rows[1] == ["'=HYPERLINK(\"http://x\") +1", "'@SUM(A1)"]
    assert rows[2] == ["'-2 ＝1", "ok"]
    xlsx = export(world, who="principal_a", kind="registry", fields=("name", "address"), fmt="xlsx")
    assert xlsx.content is not None
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None
    assert sheet["A2"].value == "'=HYPERLINK(\"http://x\") +1" and sheet["A2"].data_type == "s"


def test_full_width_equals_at_the_start_is_escaped(world: World) -> None:
    rename(world.students["a1_first"], address="＝1+1")
    outcome = export(world, who="principal_a", kind="registry", fields=("address",))
    assert rows_of(outcome.content or b"", "utf-8-sig")[1] == ["'＝1+1"]


def test_the_registry_carries_guardians_and_the_export_is_audited(world: World) -> None:
    outcome = export(world, kind="registry", fields=("shusseki_no", "name", "guardian_name",
                                                     "guardian_relationship", "guardian_phone"), fmt="xlsx")
    assert outcome.content is not None
    sheet = openpyxl.load_workbook(io.BytesIO(outcome.content)).active
    assert sheet is not None
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0] == ["出席番号", "氏名", "保護者氏名", "続柄", "保護者電話番号"]
    assert values[1] == ["1", "髙橋 𠮷乃", "髙橋 陽子", "母", "090-1234-5678"]
    event = AuditEvent.objects.get(action="students.export.created")
    assert event.actor_username == "homeroom_a1"
    assert event.detail["reason"] == "家庭訪問の準備"
    assert sorted(event.detail["person_ids"]) == sorted(
        str(world.students[k].pk) for k in ("a1_first", "a1_second"))
    assert set(event.fields) == {"shusseki_no", "name", "guardian_name", "guardian_relationship", "guardian_phone"}
    assert event.school_id == world.school_a.pk


def test_a_reason_and_known_fields_are_required(world: World) -> None:
    with pytest.raises(ValidationFailed) as caught:
        export(world, reason="  ")
    assert "reason" in caught.value.errors
    with pytest.raises(ValidationFailed) as caught:
        export(world, fields=("name", "address"))  # address is not on a class list
    assert "fields" in caught.value.errors
    with pytest.raises(ValidationFailed):
        export(world, fields=())
    with pytest.raises(ValidationFailed):
        export(world, fmt="pdf")
    assert not AuditEvent.objects.filter(action__startswith="students.export").exists()


def test_a_homeroom_teacher_exports_only_their_own_class(world: World) -> None:
    with pytest.raises(NotFoundOrNoAccess):
        export(world, klass=world.class_a2)
    with pytest.raises(NotFoundOrNoAccess):
        export(world, who="principal_b")
    with pytest.raises(NotFoundOrNoAccess):
        export(world, who="board_officer_b")
    with pytest.raises(PermissionDeniedError):
        export(world, who="teacher_a")
    assert export(world, who="principal_a", klass=world.class_a2).rows == 1
    assert export(world, who="board_officer_a").rows == 2
    assert [k.pk for k in exports.export_class_choices_for(actor=act(world, "homeroom_a1"))] == [world.class_a1.pk]


def test_inactive_pupils_are_not_exported(world: World) -> None:
    rename(world.students["a1_second"], is_active=False)  # type: ignore[arg-type]
    assert export(world).rows == 1


# --- Views (komu/rosters/views/transfers.py) -----------------------------------------------------------------

def test_the_export_screen_downloads_a_file(world: World, signed_in: Any) -> None:
    client = signed_in("homeroom_a1")
    url = reverse("rosters:export_class", args=[world.class_a1.pk])
    page = client.get(url)
    assert page.status_code == 200 and "出力の目的" in page.content.decode()
    response = client.post(url, {"kind": "class_list", "columns": list(exports.CLASS_LIST_FIELDS),
                                 "format": "csv_utf8", "reason": "家庭訪問の準備"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf")
    assert "attachment" in response["Content-Disposition"]


def test_the_export_screen_lists_cp932_problems_and_offers_utf8(world: World, signed_in: Any) -> None:
    client = signed_in("homeroom_a1")
    url = reverse("rosters:export_class", args=[world.class_a1.pk])
    response = client.post(url, {"kind": "class_list", "columns": list(exports.CLASS_LIST_FIELDS),
                                 "format": "csv_cp932", "reason": "家庭訪問の準備"})
    page = response.content.decode()
    assert response.status_code == 200 and "U+20BB7" in page and "UTF-8 で出力する" in page
    missing_reason = client.post(url, {"kind": "class_list", "columns": ["name"], "format": "csv_utf8",
                                       "reason": ""})
    assert missing_reason.status_code == 400 and "例: 家庭訪問の準備" in missing_reason.content.decode()


def test_the_export_screen_of_another_class_answers_404(world: World, signed_in: Any) -> None:
    client = signed_in("homeroom_a1")
    assert client.get(reverse("rosters:export_class", args=[world.class_a2.pk])).status_code == 404
    client = signed_in("teacher_a")
    assert client.get(reverse("rosters:export_class", args=[world.class_a1.pk])).status_code == 404


def test_the_export_index_lists_only_exportable_classes(world: World, signed_in: Any) -> None:
    page = signed_in("homeroom_a1").get(reverse("rosters:export_index")).content.decode()
    assert reverse("rosters:export_class", args=[world.class_a1.pk]) in page
    assert reverse("rosters:export_class", args=[world.class_a2.pk]) not in page
