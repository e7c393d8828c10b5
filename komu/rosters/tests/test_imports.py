"""学齢簿の取込: upload → dry run → apply, through the services, on the database (domain.md §7 cases that reach it)."""

from __future__ import annotations

import csv
import io
import time
import uuid
import zipfile
from typing import Any

import openpyxl
import pytest
from django.core.cache import cache
from django.urls import reverse

from komu.access.scope import Actor, forget_actor, get_actor
from komu.audit.models import AuditEvent
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.rosters.models import GakureiboEntry, GakureiboImport
from komu.rosters.services import imports
from komu.rosters.services.imports import (
    ImportFailed,
    gakureibo_import_apply,
    gakureibo_import_create,
    gakureibo_import_discard,
    gakureibo_import_get_for,
    gakureibo_import_progress,
    gakureibo_import_report,
    gakureibo_import_validate,
)
from komu.testing.world import World

FY = 2027  # entrants born 2020-04-02 … 2021-04-01

HEADERS = [
    "個人番号", "氏名（姓）", "氏名（名）", "ふりがな（姓）", "ふりがな（名）", "性別", "生年月日", "住所",
    "保護者氏名（姓）", "保護者氏名（名）", "続柄", "保護者電話番号", "就学予定校コード", "学級種別", "区域外就学",
]


def row(person_id: str = "000000000000101", **over: str) -> dict[str, str]:
    values = {
        "個人番号": person_id, "氏名（姓）": "山田", "氏名（名）": "太郎", "ふりがな（姓）": "やまだ",
        "ふりがな（名）": "たろう", "性別": "男", "生年月日": "2020-06-15", "住所": "みどり市一丁目1番",
        "保護者氏名（姓）": "山田", "保護者氏名（名）": "花子", "続柄": "母", "保護者電話番号": "090-1234-5678",
        "就学予定校コード": "", "学級種別": "普通", "区域外就学": "無",
    }
    values.update(over)
    return values


def csv_bytes(rows: list[dict[str, str]], *, encoding: str = "utf-8", headers: list[str] = HEADERS) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers)
    for r in rows:
        writer.writerow([r.get(h, "") for h in headers])
    return out.getvalue().encode(encoding)


def officer(world: World, name: str = "board_officer_a") -> Actor:
    user = world.user(name)
    forget_actor(user)
    return get_actor(user)


def upload(world: World, data: bytes, *, filename: str = "gakureibo.csv", name: str = "board_officer_a",
           board: Any = None) -> GakureiboImport:
    return gakureibo_import_create(
        actor=officer(world, name), board=board or world.board_a, fiscal_year=FY, filename=filename, data=data
    )


def validated(world: World, data: bytes, **kwargs: Any) -> GakureiboImport:
    imp = upload(world, data, **kwargs)
    return gakureibo_import_validate(import_id=imp.pk)


def run_import(world: World, data: bytes) -> GakureiboImport:
    imp = validated(world, data)
    assert imp.status == GakureiboImport.Status.VALIDATED, imp.data
    return gakureibo_import_apply(actor=officer(world), import_id=imp.pk)


def entries(world: World) -> list[GakureiboEntry]:
    return list(GakureiboEntry.objects.filter(board=world.board_a, fiscal_year=FY).order_by("created_at"))


def by_person(world: World) -> dict[str, GakureiboEntry]:
    return {e.person_id: e for e in entries(world)}


# --- upload -------------------------------------------------------------------------------------------------


def test_upload_stores_the_file_encrypted_with_its_digest_and_audits(world: World) -> None:
    data = csv_bytes([row()])
    imp = upload(world, data)
    imp.refresh_from_db()
    assert imp.status == GakureiboImport.Status.QUEUED
    assert imp.size == len(data)
    assert imp.content and imp.content != ""  # decrypted by the field
    raw = GakureiboImport.objects.filter(pk=imp.pk).values_list("content", flat=True).get()
    assert "山田" not in raw and raw != imp.content  # ciphertext at rest
    event = AuditEvent.objects.filter(action="rosters.gakureibo_import.uploaded").get()
    assert event.object_id == str(imp.pk) and event.detail["sha256"] == imp.sha256


def test_upload_refuses_a_file_over_the_byte_limit_before_parsing(world: World, monkeypatch: Any) -> None:
    monkeypatch.setattr(imports, "MAX_FILE_BYTES", 100)
    monkeypatch.setattr(imports, "parse_gakureibo", lambda *a, **k: pytest.fail("parsed"))
    with pytest.raises(ValidationFailed) as info:
        upload(world, b"x" * 101)
    assert "大きすぎます" in info.value.errors["file"][0]
    assert not GakureiboImport.objects.exists()


def test_upload_refuses_an_empty_file_and_a_bad_layout(world: World) -> None:
    with pytest.raises(ValidationFailed) as info:
        gakureibo_import_create(actor=officer(world), board=world.board_a, fiscal_year=FY, filename="a.csv",
                                data=b"", layout="excel")
    assert set(info.value.errors) == {"file", "layout"}


def test_another_boards_officer_cannot_upload_or_see_an_import(world: World) -> None:
    with pytest.raises(NotFoundOrNoAccess):
        upload(world, csv_bytes([row()]), name="board_officer_b")
    imp = upload(world, csv_bytes([row()]))
    with pytest.raises(NotFoundOrNoAccess):
        gakureibo_import_get_for(actor=officer(world, "board_officer_b"), import_id=imp.pk)
    with pytest.raises(NotFoundOrNoAccess):
        gakureibo_import_discard(actor=officer(world, "board_officer_b"), import_id=imp.pk)


def test_a_principal_cannot_import(world: World) -> None:
    with pytest.raises(PermissionDeniedError):
        upload(world, csv_bytes([row()]), name="principal_a")


# --- dry run ------------------------------------------------------------------------------------------------


def test_dry_run_counts_new_rows_and_writes_nothing_to_the_gakureibo(world: World) -> None:
    imp = validated(world, csv_bytes([row(), row("000000000000102", **{"氏名（名）": "次郎"})]))
    assert imp.status == GakureiboImport.Status.VALIDATED
    report = imp.data
    assert report["counts"] == {"new": 2, "changed": 0, "unchanged": 0}
    assert report["rows"] == 2 and imp.progress_done == imp.progress_total == 2
    assert [c["kind"] for c in report["changes"]] == ["new", "new"]
    assert not GakureiboEntry.objects.exists()
    assert AuditEvent.objects.filter(action="rosters.gakureibo_import.validated").count() == 1


def test_dry_run_reports_errors_with_file_line_column_value_and_keeps_no_copy(world: World) -> None:
    imp = validated(world, csv_bytes([row(), row("000000000000102", **{"生年月日": "2020/13/45"})]))
    assert imp.status == GakureiboImport.Status.FAILED
    assert imp.error_count >= 1 and imp.content == ""
    error = imp.data["errors"][0]
    assert error["file"] == "gakureibo.csv" and error["line"] == 3 and error["column"] == "生年月日"
    assert error["value"] == "2020/13/45"  # as the file has it, for the officer to find
    assert error["message"]
    with pytest.raises(ValidationFailed):
        gakureibo_import_apply(actor=officer(world), import_id=imp.pk)


def test_dry_run_compares_with_the_database(world: World) -> None:
    run_import(world, csv_bytes([row(), row("000000000000102", **{"氏名（名）": "次郎"})]))
    imp = validated(world, csv_bytes([
        row(),  # unchanged
        row("000000000000102", **{"氏名（名）": "二郎"}),  # changed
        row("000000000000103", **{"氏名（名）": "三郎"}),  # new
    ]))
    report = imp.data
    assert report["counts"] == {"new": 1, "changed": 1, "unchanged": 1}
    changed = next(c for c in report["changes"] if c["kind"] == "changed")
    assert changed["diff"] == {"given_name": ["次郎", "二郎"]}


def test_duplicate_against_the_database_after_normalisation_is_an_update_not_a_new_child(world: World) -> None:
    run_import(world, csv_bytes([row("000000000000101")]))
    # Full-width digits: the same person id after NFKC.
    imp = validated(world, csv_bytes([row("００００００００００００１０１", **{"住所": "みどり市二丁目"})]))
    assert imp.data["counts"] == {"new": 0, "changed": 1, "unchanged": 0}


def test_same_child_under_another_person_id_is_warned(world: World) -> None:
    run_import(world, csv_bytes([row("000000000000101")]))
    imp = validated(world, csv_bytes([row("000000000000999", **{"ふりがな（姓）": "ヤマダ"})]))
    codes = [w["code"] for w in imp.data["warnings"]]
    assert "duplicate_in_database" in codes
    gakureibo_import_apply(actor=officer(world), import_id=imp.pk)
    assert by_person(world)["000000000000999"].needs_review


def test_unknown_school_code_is_a_warning_and_a_known_one_designates_the_school(world: World) -> None:
    from komu.core.codes import make_school_code

    unknown = make_school_code("B1", "13", "1", "0999999")
    data = csv_bytes([
        row("000000000000101", **{"就学予定校コード": world.school_a.code}),
        row("000000000000102", **{"就学予定校コード": unknown, "氏名（名）": "次郎"}),
    ])
    imp = validated(world, data)
    warning = next(w for w in imp.data["warnings"] if w["code"] == "school_unknown")
    assert warning["value"] == unknown and "画面で指定" in warning["message"]
    gakureibo_import_apply(actor=officer(world), import_id=imp.pk)
    people = by_person(world)
    assert people["000000000000101"].designated_school_id == world.school_a.pk
    assert people["000000000000102"].designated_school_id is None
    assert people["000000000000102"].needs_review and not people["000000000000101"].needs_review


# --- §7 cases reaching the database --------------------------------------------------------------------------


def test_cp932_excel_csv_with_itaiji_and_reiwa_dates_is_stored_exactly(world: World) -> None:
    data = csv_bytes([
        row("000000000000101", **{"氏名（姓）": "髙橋", "生年月日": "令和2年6月15日"}),
        row("000000000000102", **{"氏名（姓）": "山﨑", "氏名（名）": "次郎", "生年月日": "R2.7.1"}),
    ], encoding="cp932")
    imp = run_import(world, data)
    assert imp.status == GakureiboImport.Status.APPLIED
    people = by_person(world)
    assert people["000000000000101"].data["family_name"] == "髙橋"
    assert people["000000000000101"].data["birth_date"] == "2020-06-15"
    assert people["000000000000102"].data["family_name"] == "山﨑"
    assert people["000000000000102"].data["birth_date"] == "2020-07-01"


def test_utf8_with_bom_is_read(world: World) -> None:
    run_import(world, b"\xef\xbb\xbf" + csv_bytes([row()]))
    assert by_person(world)["000000000000101"].data["given_name"] == "太郎"


def test_nfd_and_half_width_kana_are_stored_normalised_and_found_by_the_kana_index(world: World) -> None:
    import unicodedata

    nfd = unicodedata.normalize("NFD", "がっこう")
    run_import(world, csv_bytes([row(**{"ふりがな（姓）": nfd, "ふりがな（名）": "ﾀﾛｳ"})]))
    entry = by_person(world)["000000000000101"]
    assert entry.data["family_name_kana"] == "ガッコウ" and entry.data["given_name_kana"] == "タロウ"
    index = GakureiboEntry._meta.get_field("kana_index").lookup_value("がっこう たろう")
    assert GakureiboEntry.objects.filter(kana_index=index).get().pk == entry.pk


def test_private_use_gaiji_is_kept_and_flagged_for_review(world: World) -> None:
    run_import(world, csv_bytes([row(**{"氏名（姓）": "山\ue000"})]))
    entry = by_person(world)["000000000000101"]
    assert entry.data["family_name"] == "山\ue000" and entry.needs_review


def test_missing_kana_is_warned_and_flagged(world: World) -> None:
    imp = validated(world, csv_bytes([row(**{"ふりがな（姓）": "", "ふりがな（名）": ""})]))
    assert imp.warning_count == 1 and imp.data["warnings"][0]["code"] == "kana_missing"
    gakureibo_import_apply(actor=officer(world), import_id=imp.pk)
    assert by_person(world)["000000000000101"].needs_review


def test_full_width_ids_duplicated_within_the_file_are_refused(world: World) -> None:
    imp = validated(world, csv_bytes([row("123"), row("１２３", **{"氏名（名）": "次郎"})]))
    assert imp.status == GakureiboImport.Status.FAILED
    assert imp.data["errors"][0]["code"] == "duplicate_value"
    assert not GakureiboEntry.objects.exists()


def test_excel_damaged_ids_are_warned(world: World) -> None:
    imp = validated(world, csv_bytes([row("0012345"), row("12345", **{"氏名（名）": "次郎"}),
                                      row("0012346", **{"氏名（名）": "三郎"})]))
    assert imp.status == GakureiboImport.Status.VALIDATED
    assert [w["code"] for w in imp.data["warnings"]] == ["person_id_short"]


def test_control_characters_are_rejected(world: World) -> None:
    imp = validated(world, csv_bytes([row(**{"氏名（名）": "太\u202e郎"})]))
    assert imp.status == GakureiboImport.Status.FAILED
    assert imp.data["errors"][0]["code"] == "control_char"


def test_zip_bomb_is_refused(world: World) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (20 * 1024 * 1024))
    imp = validated(world, buffer.getvalue(), filename="bomb.xlsx")
    assert imp.status == GakureiboImport.Status.FAILED
    assert imp.data["errors"][0]["code"] == "xlsx_ratio"


def test_xlsx_with_text_ids_is_imported(world: World) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADERS)
    sheet.append([row().get(h, "") for h in HEADERS])
    buffer = io.BytesIO()
    book.save(buffer)
    run_import(world, buffer.getvalue())
    assert list(by_person(world)) == ["000000000000101"]


# --- apply ----------------------------------------------------------------------------------------------------


def test_apply_writes_encrypted_entries_the_orm_reads_back(world: World) -> None:
    imp = run_import(world, csv_bytes([row(**{"就学予定校コード": world.school_a.code, "学級種別": "特別支援",
                                              "区域外就学": "有"})]))
    assert imp.status == GakureiboImport.Status.APPLIED and imp.content == ""
    entry = entries(world)[0]
    assert entry.data["family_name"] == "山田" and entry.data["family_name_kana"] == "ヤマダ"
    assert entry.special_needs and entry.out_of_district and entry.last_import_id == imp.pk
    assert entry.designated_school_id == world.school_a.pk
    raw = GakureiboEntry.objects.filter(pk=entry.pk).values_list("record", flat=True).get()
    assert "山田" not in raw
    index = GakureiboEntry._meta.get_field("person_index").lookup_value("000000000000101")
    assert entry.person_index == index
    # The ORM can save it again unchanged and read it back (ciphertext bound to the right row).
    entry.needs_review = True
    entry.save()
    entry.refresh_from_db()
    assert entry.data["given_name"] == "太郎"


def test_importing_the_same_file_twice_changes_nothing_the_second_time(world: World) -> None:
    data = csv_bytes([row(), row("000000000000102", **{"氏名（名）": "次郎"})])
    run_import(world, data)
    before = {e.pk: (e.updated_at, GakureiboEntry.objects.filter(pk=e.pk).values_list("record", flat=True).get())
              for e in entries(world)}
    per_row_events = AuditEvent.objects.filter(action="rosters.gakureibo_entry.imported").count()
    second = run_import(world, data)
    assert second.data["applied"]["unchanged"] == 2 and second.data["applied"]["new"] == 0
    after = {e.pk: (e.updated_at, GakureiboEntry.objects.filter(pk=e.pk).values_list("record", flat=True).get())
             for e in entries(world)}
    assert after == before
    assert AuditEvent.objects.filter(action="rosters.gakureibo_entry.imported").count() == per_row_events
    summaries = AuditEvent.objects.filter(action="rosters.gakureibo_import.applied").order_by("id")
    assert [e.detail["unchanged"] for e in summaries] == [0, 2]
    assert summaries.last().detail["sha256"] == second.sha256  # type: ignore[union-attr]


def test_changed_rows_are_updated_in_place(world: World) -> None:
    run_import(world, csv_bytes([row(), row("000000000000102", **{"氏名（名）": "次郎"})]))
    ids = {p: e.pk for p, e in by_person(world).items()}
    imp = run_import(world, csv_bytes([
        row(**{"就学予定校コード": world.school_a.code}),
        row("000000000000102", **{"氏名（名）": "二郎"}),
    ]))
    people = by_person(world)
    assert {p: e.pk for p, e in people.items()} == ids
    assert people["000000000000102"].data["given_name"] == "二郎"
    assert people["000000000000101"].designated_school_id == world.school_a.pk
    assert people["000000000000102"].last_import_id == imp.pk
    event = AuditEvent.objects.filter(action="rosters.gakureibo_entry.imported").order_by("-id").first()
    assert event is not None and sorted(event.detail["updated"]) == sorted(str(i) for i in ids.values())
    assert imp.data["applied"]["changed"] == 2


def test_a_blank_school_code_keeps_the_school_designated_on_screen(world: World) -> None:
    run_import(world, csv_bytes([row()]))
    GakureiboEntry.objects.update(designated_school=world.school_a)
    run_import(world, csv_bytes([row(**{"住所": "みどり市三丁目"})]))
    assert entries(world)[0].designated_school_id == world.school_a.pk


def test_audit_has_one_event_per_batch_and_a_summary(world: World, monkeypatch: Any) -> None:
    monkeypatch.setattr(imports, "BATCH_SIZE", 2)
    run_import(world, csv_bytes([row(f"00000000000010{i}", **{"氏名（名）": f"太郎{i}"}) for i in range(5)]))
    batches = AuditEvent.objects.filter(action="rosters.gakureibo_entry.imported").order_by("id")
    assert [len(e.detail["created"]) for e in batches] == [2, 2, 1]
    created = {i for e in batches for i in e.detail["created"]}
    assert created == {str(e.pk) for e in entries(world)}
    summary = AuditEvent.objects.get(action="rosters.gakureibo_import.applied")
    assert summary.detail["new"] == 5 and summary.board_id == world.board_a.pk


def test_a_failure_halfway_leaves_nothing_and_marks_the_import_failed(world: World, monkeypatch: Any) -> None:
    monkeypatch.setattr(imports, "BATCH_SIZE", 2)
    imp = validated(world, csv_bytes([row(f"00000000000010{i}", **{"氏名（名）": f"太郎{i}"}) for i in range(5)]))
    from komu.audit.services import audit_record as real_audit
    calls = {"n": 0}

    def crash_on_second_batch(**kwargs: Any) -> Any:
        if kwargs["action"] == "rosters.gakureibo_entry.imported":
            calls["n"] += 1
            if calls["n"] == 2:
                raise RuntimeError("killed")
        return real_audit(**kwargs)

    monkeypatch.setattr(imports, "audit_record", crash_on_second_batch)
    with pytest.raises(ImportFailed) as info:
        gakureibo_import_apply(actor=officer(world), import_id=imp.pk)
    assert "何も反映していません" in str(info.value)
    assert not GakureiboEntry.objects.exists()
    assert not AuditEvent.objects.filter(action="rosters.gakureibo_entry.imported").exists()
    imp.refresh_from_db()
    assert imp.status == GakureiboImport.Status.FAILED and imp.content == ""
    assert "何も反映していません" in imp.data["failure"]
    assert AuditEvent.objects.filter(action="rosters.gakureibo_import.apply_failed").count() == 1


def test_apply_needs_a_validated_import_of_the_same_file(world: World) -> None:
    imp = upload(world, csv_bytes([row()]))
    with pytest.raises(ValidationFailed):
        gakureibo_import_apply(actor=officer(world), import_id=imp.pk)  # not validated yet
    imp = gakureibo_import_validate(import_id=imp.pk)
    GakureiboImport.objects.filter(pk=imp.pk).update(sha256="0" * 64)  # another file than the one checked
    with pytest.raises(ImportFailed):
        gakureibo_import_apply(actor=officer(world), import_id=imp.pk)
    assert not GakureiboEntry.objects.exists()


def test_apply_twice_is_refused(world: World) -> None:
    imp = run_import(world, csv_bytes([row()]))
    with pytest.raises(ValidationFailed):
        gakureibo_import_apply(actor=officer(world), import_id=imp.pk)


def test_another_boards_officer_cannot_apply(world: World) -> None:
    imp = validated(world, csv_bytes([row()]))
    with pytest.raises(NotFoundOrNoAccess):
        gakureibo_import_apply(actor=officer(world, "board_officer_b"), import_id=imp.pk)
    assert not GakureiboEntry.objects.exists()


def test_progress_is_read_from_the_cache_while_applying_and_from_the_database_after(world: World) -> None:
    imp = validated(world, csv_bytes([row()]))
    GakureiboImport.objects.filter(pk=imp.pk).update(status=GakureiboImport.Status.APPLYING)
    cache.set(imports._progress_key(imp.pk), {"status": "applying", "done": 7, "total": 10, "at": time.time()})
    progress = gakureibo_import_progress(imp=imp)
    assert (progress.done, progress.total, progress.percent, progress.finished) == (7, 10, 70, False)
    GakureiboImport.objects.filter(pk=imp.pk).update(status=GakureiboImport.Status.VALIDATED)
    progress = gakureibo_import_progress(imp=imp)
    assert progress.finished and progress.done == 1


def test_apply_reports_progress_per_batch(world: World, monkeypatch: Any) -> None:
    monkeypatch.setattr(imports, "BATCH_SIZE", 2)
    imp = validated(world, csv_bytes([row(f"00000000000010{i}", **{"氏名（名）": f"太郎{i}"}) for i in range(3)]))
    seen: list[tuple[int, int]] = []
    gakureibo_import_apply(actor=officer(world), import_id=imp.pk, on_progress=lambda d, t: seen.append((d, t)))
    assert seen == [(2, 3), (3, 3)]


def test_discard_deletes_the_file_and_audits(world: World) -> None:
    imp = validated(world, csv_bytes([row()]))
    imp = gakureibo_import_discard(actor=officer(world), import_id=imp.pk)
    imp.refresh_from_db()
    assert imp.status == GakureiboImport.Status.DISCARDED and imp.content == ""
    assert AuditEvent.objects.filter(action="rosters.gakureibo_import.discarded").count() == 1
    with pytest.raises(ValidationFailed):
        gakureibo_import_apply(actor=officer(world), import_id=imp.pk)


def test_reading_the_report_is_audited(world: World) -> None:
    imp = validated(world, csv_bytes([row()]))
    _imp, report = gakureibo_import_report(actor=officer(world), import_id=imp.pk)
    assert report["counts"]["new"] == 1
    assert AuditEvent.objects.filter(action="rosters.gakureibo_import.report_viewed").count() == 1


def test_a_malformed_id_is_not_found(world: World) -> None:
    with pytest.raises(NotFoundOrNoAccess):
        gakureibo_import_get_for(actor=officer(world), import_id="nope")
    with pytest.raises(NotFoundOrNoAccess):
        gakureibo_import_get_for(actor=officer(world), import_id=uuid.uuid4())


def test_record_of_matches_record_from_entrant() -> None:
    from komu.interop.gakureibo import parse_gakureibo
    from komu.rosters.records import record_from_entrant, record_json

    data = csv_bytes([row(**{"氏名（姓）": "髙橋"}), row("000000000000102", **{"ふりがな（名）": ""})])
    parsed = parse_gakureibo(data, filename="a.csv", layout="komu", fiscal_year=FY)
    assert parsed.rows
    for entrant in parsed.rows:
        assert imports._record_of(entrant) == record_from_entrant(entrant)
        assert imports._prepare(entrant).text == record_json(record_from_entrant(entrant))


def test_raw_insert_matches_what_the_orm_computes(world: World) -> None:
    """The import writes rows with the driver; the ORM must read them, and saving through the ORM must
    compute the same blind indexes and keep the record readable (associated data bound to the row)."""
    import unicodedata

    run_import(world, csv_bytes([
        row(**{"氏名（姓）": "髙橋", "ふりがな（姓）": unicodedata.normalize("NFD", "たかはし"),
               "ふりがな（名）": "ﾀﾛｳ　ｼﾞﾛｳ"}),
        row("a00000000000102", **{"ふりがな（姓）": "", "ふりがな（名）": "じろう"}),
    ]))
    for entry in entries(world):
        stored = (entry.person_index, entry.kana_index, entry.created_at, entry.status, entry.source)
        record = entry.data
        entry.record = json_copy(record)  # a changed value: the ORM re-encrypts and recomputes the indexes
        entry.save()
        entry = GakureiboEntry.objects.get(pk=entry.pk)
        assert (entry.person_index, entry.kana_index, entry.created_at, entry.status, entry.source) == stored
        assert entry.data == record
    kana_index = GakureiboEntry._meta.get_field("kana_index").lookup_value("タカハシ タロウ ジロウ")
    assert GakureiboEntry.objects.filter(kana_index=kana_index).count() == 1


def json_copy(record: dict[str, Any]) -> str:
    import json

    return json.dumps(record, ensure_ascii=False, indent=1)


def test_a_change_to_a_child_on_a_sent_roster_becomes_an_amendment(world: World) -> None:
    from komu.rosters.models import RosterAmendment
    from komu.rosters.services.rosters import roster_send

    school = world.school_a.code
    run_import(world, csv_bytes([row(**{"就学予定校コード": school})]))
    roster_send(actor=officer(world), board_id=world.board_a.pk, fiscal_year=FY)
    imp = run_import(world, csv_bytes([
        row(**{"就学予定校コード": school, "住所": "みどり市二丁目2番"}),
        row("000000000000102", **{"就学予定校コード": school, "氏名（名）": "次郎"}),  # a new child, same school
    ]))
    kinds = sorted(RosterAmendment.objects.values_list("kind", flat=True))
    assert kinds == ["added", "changed"]
    assert imp.data["applied"]["amended"] == 2
    changed = RosterAmendment.objects.get(kind="changed")
    assert changed.changes["address"][1] == "みどり市二丁目2番"


# --- screens --------------------------------------------------------------------------------------------------


@pytest.fixture
def immediate_tasks(settings: Any) -> None:
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


def _upload_view(client: Any, world: World, data: bytes, name: str = "gakureibo.csv") -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    return client.post(reverse("rosters:import_upload") + f"?board={world.board_a.pk}", {
        "board": world.board_a.pk, "fiscal_year": FY, "layout": "auto",
        "file": SimpleUploadedFile(name, data, content_type="text/csv"),
    })


def test_upload_page_shows_the_layout_and_the_next_year(signed_in: Any, world: World) -> None:
    from django.urls import reverse

    from komu.rosters.selectors.rosters import gakureibo_default_year

    response = signed_in("board_officer_a").get(reverse("rosters:import_upload"))
    body = response.content.decode()
    assert response.status_code == 200
    assert "個人番号" in body and "就学予定校コード" in body and reverse("rosters:import_template") in body
    assert f'value="{gakureibo_default_year()}"' in body


def test_template_csv_has_the_komu_headings_with_a_bom(signed_in: Any, world: World) -> None:
    from django.urls import reverse

    response = signed_in("board_officer_a").get(reverse("rosters:import_template"))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf")
    assert response.content.decode("utf-8-sig").split("\r\n")[0].split(",")[:3] == [
        "個人番号", "氏名（姓）", "氏名（名）"]


@pytest.mark.usefixtures("immediate_tasks")
def test_upload_check_and_apply_through_the_screens(signed_in: Any, world: World) -> None:
    from django.urls import reverse

    client = signed_in("board_officer_a")
    data = csv_bytes([row(**{"氏名（姓）": "髙橋"}), row("000000000000102", **{"氏名（名）": "次郎",
                                                                          "ふりがな（名）": ""})], encoding="cp932")
    response = _upload_view(client, world, data)
    assert response.status_code == 302
    imp = GakureiboImport.objects.get()
    assert response["Location"] == reverse("rosters:import_detail", kwargs={"import_id": imp.pk})
    page = client.get(response["Location"]).content.decode()
    assert "検証済み" in page and "取り込む" in page and "新しく載る子ども" in page
    assert "ふりがな" in page and "髙橋" in page  # the warning table and the sample of changes
    assert "hx-trigger" not in page  # finished: nothing to poll
    response = client.post(reverse("rosters:import_apply", kwargs={"import_id": imp.pk}))
    assert response.status_code == 302
    imp.refresh_from_db()
    assert imp.status == GakureiboImport.Status.APPLIED
    assert GakureiboEntry.objects.count() == 2
    page = client.get(reverse("rosters:import_detail", kwargs={"import_id": imp.pk})).content.decode()
    assert "学齢簿に反映しました" in page
    listing = client.get(reverse("rosters:import_list")).content.decode()
    assert "gakureibo.csv" in listing and "取込完了" in listing


@pytest.mark.usefixtures("immediate_tasks")
def test_a_file_with_errors_shows_where_and_offers_no_apply(signed_in: Any, world: World) -> None:
    client = signed_in("board_officer_a")
    _upload_view(client, world, csv_bytes([row(**{"生年月日": "2020-02-30"})]))
    imp = GakureiboImport.objects.get()
    from django.urls import reverse

    page = client.get(reverse("rosters:import_detail", kwargs={"import_id": imp.pk})).content.decode()
    assert "エラー 1 件" in page and "生年月日" in page and "2行目" not in page  # line shown in its own column
    assert 'action="' + reverse("rosters:import_apply", kwargs={"import_id": imp.pk}) not in page
    response = client.post(reverse("rosters:import_apply", kwargs={"import_id": imp.pk}))
    assert response.status_code == 302 and not GakureiboEntry.objects.exists()


def test_a_running_import_is_polled_every_second(signed_in: Any, world: World) -> None:
    from django.urls import reverse

    client = signed_in("board_officer_a")
    imp = upload(world, csv_bytes([row()]))  # queued: the default (database) task backend has no worker here
    page = client.get(reverse("rosters:import_detail", kwargs={"import_id": imp.pk})).content.decode()
    assert 'hx-trigger="every 1s"' in page and "<progress" in page and 'aria-live="polite"' in page
    gakureibo_import_validate(import_id=imp.pk)
    response = client.get(reverse("rosters:import_progress", kwargs={"import_id": imp.pk}) + "?running=1",
                          HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and response["HX-Refresh"] == "true"
    assert "hx-trigger" not in response.content.decode()


def test_upload_without_a_file_says_what_to_do(signed_in: Any, world: World) -> None:
    from django.urls import reverse

    response = signed_in("board_officer_a").post(reverse("rosters:import_upload"),
                                                 {"board": world.board_a.pk, "fiscal_year": FY, "layout": "auto"})
    assert response.status_code == 400
    assert "取り込むファイルを選んでください" in response.content.decode()
    assert not GakureiboImport.objects.exists()


def test_another_boards_officer_gets_404_on_every_import_page(signed_in: Any, world: World) -> None:
    from django.urls import reverse

    imp = validated(world, csv_bytes([row()]))
    client = signed_in("board_officer_b")
    for name in ("rosters:import_detail", "rosters:import_progress"):
        assert client.get(reverse(name, kwargs={"import_id": imp.pk})).status_code == 404
    for name in ("rosters:import_apply", "rosters:import_discard"):
        assert client.post(reverse(name, kwargs={"import_id": imp.pk})).status_code == 404
    assert client.get(reverse("rosters:import_list") + f"?board={world.board_a.pk}").status_code == 404
    assert not GakureiboEntry.objects.exists()
    imp.refresh_from_db()
    assert imp.status == GakureiboImport.Status.VALIDATED


def test_school_staff_do_not_have_the_import_pages(signed_in: Any, world: World) -> None:
    from django.urls import reverse

    client = signed_in("principal_a")
    assert client.get(reverse("rosters:import_list")).status_code == 404
    assert client.get(reverse("rosters:import_upload")).status_code == 404


def test_discard_through_the_screen(signed_in: Any, world: World) -> None:
    from django.urls import reverse

    imp = validated(world, csv_bytes([row()]))
    response = signed_in("board_officer_a").post(reverse("rosters:import_discard", kwargs={"import_id": imp.pk}))
    assert response.status_code == 302
    imp.refresh_from_db()
    assert imp.status == GakureiboImport.Status.DISCARDED and imp.content == ""


def test_import_list_is_empty_at_first(signed_in: Any, world: World) -> None:
    from django.urls import reverse

    body = signed_in("board_officer_a").get(reverse("rosters:import_list")).content.decode()
    assert "まだ取り込んだファイルはありません" in body


def test_imports_awaiting_apply_are_listed_for_the_home_page(world: World) -> None:
    from komu.rosters.services.imports import gakureibo_imports_awaiting_apply

    ready = validated(world, csv_bytes([row()]))
    validated(world, csv_bytes([row(**{"生年月日": "2020-02-30"})]))  # failed: nothing to apply
    assert [i.pk for i in gakureibo_imports_awaiting_apply(actor=officer(world))] == [ready.pk]
    assert gakureibo_imports_awaiting_apply(actor=officer(world, "board_officer_b")) == []


def test_the_apply_task_reports_a_failure_without_raising(world: World, monkeypatch: Any) -> None:
    from komu.rosters import tasks

    imp = validated(world, csv_bytes([row()]))
    GakureiboImport.objects.filter(pk=imp.pk).update(sha256="0" * 64)
    result = tasks.apply_gakureibo_import.call(import_id=str(imp.pk), user_id=str(world.user("board_officer_a").pk))
    assert result["status"] == "failed" and "もう一度ファイルをアップロード" in result["message"]
    imp.refresh_from_db()
    assert imp.status == GakureiboImport.Status.FAILED and not GakureiboEntry.objects.exists()


def test_the_validate_task_runs_the_dry_run(world: World) -> None:
    from komu.rosters import tasks

    imp = upload(world, csv_bytes([row()]))
    result = tasks.validate_gakureibo_import.call(import_id=str(imp.pk))
    assert result == {"status": "validated", "errors": 0, "warnings": 0}


def test_an_id_saved_by_excel_as_a_number_is_an_error_saying_what_to_do(world: World) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADERS)
    values: list[Any] = [row().get(h, "") for h in HEADERS]
    values[0] = 101  # the leading zeros are gone
    sheet.append(values)
    buffer = io.BytesIO()
    book.save(buffer)
    imp = validated(world, buffer.getvalue(), filename="excel.xlsx")
    error = imp.data["errors"][0]
    assert imp.status == GakureiboImport.Status.FAILED
    assert (error["line"], error["column"], error["code"]) == (2, "個人番号", "cell_number_in_text")
    assert "文字列" in error["message"]


def test_markup_in_a_name_is_shown_escaped(signed_in: Any, world: World) -> None:
    from django.urls import reverse

    imp = validated(world, csv_bytes([row(**{"氏名（名）": "<b>太郎</b>"})]))
    page = signed_in("board_officer_a").get(reverse("rosters:import_detail", kwargs={"import_id": imp.pk}))
    body = page.content.decode()
    assert "&lt;b&gt;太郎&lt;/b&gt;" in body and "<b>太郎</b>" not in body


def test_a_requested_apply_without_a_worker_says_so_after_a_minute(
    signed_in: Any, world: World, monkeypatch: Any
) -> None:
    from django.urls import reverse

    imp = validated(world, csv_bytes([row()]))
    client = signed_in("board_officer_a")
    client.post(reverse("rosters:import_apply", kwargs={"import_id": imp.pk}))  # database backend: no worker here
    page = client.get(reverse("rosters:import_detail", kwargs={"import_id": imp.pk})).content.decode()
    assert 'hx-trigger="every 1s"' in page and "komu db_worker" not in page
    monkeypatch.setattr(imports, "_STALLED_SECONDS", -1)  # as if a minute had passed
    page = client.get(reverse("rosters:import_progress", kwargs={"import_id": imp.pk})).content.decode()
    assert "komu db_worker" in page
    assert AuditEvent.objects.filter(action="rosters.gakureibo_import.apply_requested").count() == 1


def test_the_history_page_does_not_query_per_import(signed_in: Any, world: World) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    client = signed_in("board_officer_a")
    url = reverse("rosters:import_list") + f"?board={world.board_a.pk}"
    upload(world, csv_bytes([row()]))
    client.get(url)  # warm the session and caches
    with CaptureQueriesContext(connection) as one:
        assert client.get(url).status_code == 200
    for _ in range(3):
        upload(world, csv_bytes([row()]))
    with CaptureQueriesContext(connection) as four:
        body = client.get(url).content.decode()
    assert body.count("gakureibo.csv") == 4
    assert len(four) == len(one)


APPLIC_HEADERS_ROW = ["宛名番号", "氏名", "氏名カナ", "性別コード", "生年月日", "学校コード", "学年", "学級区分",
                      "保護者宛名番号", "保護者氏名", "続柄", "区域外就学区分", "世帯番号"]


def test_an_applic_file_reaches_the_gakureibo(world: World) -> None:
    data = csv_bytes([
        {"宛名番号": "012345678901234", "氏名": "髙橋　一郎", "氏名カナ": "ﾀｶﾊｼ ｲﾁﾛｳ", "性別コード": "1",
         "生年月日": "令和2年6月15日", "学校コード": world.school_a.code, "学年": "0", "学級区分": "特別支援",
         "保護者宛名番号": "012345678900001", "保護者氏名": "髙橋 幸子", "続柄": "母", "区域外就学区分": "0",
         "世帯番号": "999"},
        {"宛名番号": "012345678901235", "氏名": "山﨑 次郎", "氏名カナ": "ヤマザキジロウ", "性別コード": "1",
         "生年月日": "R2.7.1", "学校コード": "", "学年": "0", "学級区分": "", "保護者宛名番号": "",
         "保護者氏名": "", "続柄": "", "区域外就学区分": "", "世帯番号": ""},
    ], encoding="cp932", headers=APPLIC_HEADERS_ROW)
    imp = validated(world, data, filename="applic.csv")
    assert imp.status == GakureiboImport.Status.VALIDATED, imp.data
    assert imp.data["layout"] == "applic"
    assert [w["code"] for w in imp.data["warnings"]] == ["kana_mismatch"]  # ヤマザキジロウ has no space
    gakureibo_import_apply(actor=officer(world), import_id=imp.pk)
    people = by_person(world)
    first = people["012345678901234"]
    assert (first.data["family_name"], first.data["given_name"]) == ("髙橋", "一郎")
    assert (first.data["family_name_kana"], first.data["given_name_kana"]) == ("タカハシ", "イチロウ")
    assert first.data["guardian_id"] == "012345678900001" and first.data["sex"] == "male"
    assert first.special_needs and first.designated_school_id == world.school_a.pk and not first.needs_review
    assert people["012345678901235"].needs_review


def test_validating_twice_checks_the_file_once(world: World) -> None:
    imp = upload(world, csv_bytes([row()]))
    gakureibo_import_validate(import_id=imp.pk)
    again = gakureibo_import_validate(import_id=imp.pk)
    assert again.status == GakureiboImport.Status.VALIDATED
    assert AuditEvent.objects.filter(action="rosters.gakureibo_import.validated").count() == 1


def test_an_apply_whose_process_died_is_released_and_can_be_applied_again(world: World, signed_in: Any) -> None:
    imp = validated(world, csv_bytes([row()]))
    # What a killed worker leaves: the status it committed before its transaction, and no entries.
    GakureiboImport.objects.filter(pk=imp.pk).update(status=GakureiboImport.Status.APPLYING)
    cache.set(imports._progress_key(imp.pk), {"status": "applying", "done": 0, "total": 1, "at": time.time()})
    # Still beating: not interrupted, and the officer cannot release it.
    assert not imports.gakureibo_import_progress(imp=imp).interrupted
    with pytest.raises(ValidationFailed):
        imports.gakureibo_import_recover(actor=officer(world), import_id=imp.pk)
    cache.set(imports._progress_key(imp.pk), {"status": "applying", "done": 0, "total": 1,
                                             "at": time.time() - imports._INTERRUPTED_SECONDS - 1})
    assert imports.gakureibo_import_progress(imp=imp).interrupted
    client = signed_in("board_officer_a")
    page = client.get(reverse("rosters:import_detail", kwargs={"import_id": imp.pk})).content.decode()
    assert "中断した処理を終了する" in page
    # Another board's officer cannot see or release it.
    other = signed_in("board_officer_b")
    assert other.post(reverse("rosters:import_recover", kwargs={"import_id": imp.pk})).status_code == 404
    client = signed_in("board_officer_a")
    response = client.post(reverse("rosters:import_recover", kwargs={"import_id": imp.pk}))
    assert response.status_code == 302
    imp.refresh_from_db()
    assert imp.status == GakureiboImport.Status.VALIDATED
    assert AuditEvent.objects.filter(action="rosters.gakureibo_import.recovered").count() == 1
    assert not GakureiboEntry.objects.exists()
    gakureibo_import_apply(actor=officer(world), import_id=imp.pk)
    assert GakureiboEntry.objects.count() == 1
