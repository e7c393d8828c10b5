"""CSV/XLSX import and export: one test per applicable item of docs/domain.md §7."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Sequence

import defusedxml
import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from komu.core import tabular
from komu.core.tabular import (
    FORMULA_TRIGGERS,
    Column,
    Cp932Error,
    TableResult,
    TableSchema,
    ZipLimits,
    escape_formula,
    openpyxl_xml_is_defused,
    read_table,
    write_csv,
    write_xlsx,
)
from komu.core.text import normalize_digits, normalize_kana

SCHEMA = TableSchema(
    (
        Column("学籍番号", "student_id", required=True, unique=True, clean=normalize_digits),
        Column("氏名", "name", required=True, aliases=("名前",)),
        Column("ふりがな", "kana", aliases=("フリガナ", "氏名カナ"), clean=normalize_kana),
        Column("生年月日", "birth_date", kind="date"),
        Column("出席番号", "seat", kind="integer"),
        Column("備考", "note", multiline=True, max_length=500),
    )
)
HEADER = "学籍番号,氏名,ふりがな,生年月日,出席番号,備考\r\n"


def read_csv(text: str, encoding: str = "utf-8", **limits: int) -> TableResult:
    return read_table(text.encode(encoding), filename="roster.csv", schema=SCHEMA, **limits)  # type: ignore[arg-type]


def codes(result: TableResult) -> list[tuple[int | None, str | None, str]]:
    return [(issue.line, issue.column, issue.code) for issue in result.errors]


def xlsx_bytes(rows: Sequence[Sequence[object]]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(list(row))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def read_xlsx(data: bytes, **kwargs: object) -> TableResult:
    return read_table(data, filename="roster.xlsx", schema=SCHEMA, **kwargs)  # type: ignore[arg-type]


XLSX_HEADER = ["学籍番号", "氏名", "ふりがな", "生年月日", "出席番号", "備考"]


def rezip(
    data: bytes, *, extra: dict[str, bytes] | None = None, replace: dict[str, bytes] | None = None
) -> bytes:
    """Copy an xlsx, replacing or adding members, to build hostile files."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            body = (replace or {}).get(info.filename, source.read(info.filename))
            target.writestr(info.filename, body)
        for name, body in (extra or {}).items():
            target.writestr(name, body)
    return out.getvalue()


# --- 1, 2: encodings ---------------------------------------------


def test_utf8_with_bom_from_excel_csv_utf8_is_read() -> None:
    result = read_table(
        b"\xef\xbb\xbf" + (HEADER + "001,山田 太郎,やまだ たろう,2014/4/2,1,\r\n").encode(),
        filename="roster.csv",
        schema=SCHEMA,
    )
    assert result.ok, result.errors
    assert result.encoding == "utf-8-sig"
    assert result.rows[0].values == {
        "student_id": "001",
        "name": "山田 太郎",
        "kana": "ヤマダ タロウ",
        "birth_date": "2014-04-02",
        "seat": "1",
        "note": "",
    }


def test_cp932_from_japanese_excel_is_read_including_ibm_extension_characters() -> None:
    result = read_csv(HEADER + "001,髙橋 﨑子,たかはし さきこ,,1,①㈱\r\n", encoding="cp932")
    assert result.ok, result.errors
    assert result.encoding == "cp932"
    assert result.rows[0].values["name"] == "髙橋 﨑子"
    assert result.rows[0].values["note"] == "①㈱"


def test_bytes_that_are_neither_utf8_nor_cp932_are_rejected_with_line_and_byte() -> None:
    data = (HEADER + "001,山田,,,,\r\n").encode("cp932") + b"002,\xff\xfe,,,,\r\n"
    result = read_table(data, filename="roster.csv", schema=SCHEMA)
    assert result.rows == []
    [issue] = result.errors
    offset = data.index(b"\xff")
    assert (issue.line, issue.code) == (3, "encoding")
    assert f"先頭から{offset + 1}バイト目" in issue.message
    assert "3行目" in issue.message


def test_a_bom_file_with_invalid_utf8_is_not_retried_as_cp932() -> None:
    data = b"\xef\xbb\xbf" + HEADER.encode() + "001,髙橋,,,,\r\n".encode("cp932")
    result = read_table(data, filename="roster.csv", schema=SCHEMA)
    assert [(i.line, i.code) for i in result.errors] == [(2, "encoding")]


def test_damaged_utf8_is_not_misread_as_cp932_mojibake() -> None:
    data = "name\r\nヤマダ\r\n".encode() + b"\x81\x81\r\n"
    assert "繝､繝槭ム" in data.decode("cp932")  # CP932 would "succeed" with mojibake
    result = read_table(data, filename="roster.csv", schema=TableSchema((Column("name", "name"),)))
    assert [(i.line, i.code) for i in result.errors] == [(3, "encoding")]
    assert "UTF-8として読めない" in result.errors[0].message


def test_unassigned_cp932_single_bytes_are_rejected() -> None:
    data = (HEADER + "001,髙橋,,,,\r\n").encode("cp932") + b"002,\xa0,,,,\r\n"
    result = read_table(data, filename="roster.csv", schema=SCHEMA)
    assert [(i.line, i.code) for i in result.errors] == [(3, "encoding")]
    offset = data.index(b"\xa0")
    assert f"先頭から{offset + 1}バイト目" in result.errors[0].message


def test_utf16_is_rejected_with_advice() -> None:
    result = read_table(HEADER.encode("utf-16"), filename="roster.csv", schema=SCHEMA)
    assert codes(result) == [(None, None, "encoding")]
    assert "CSV UTF-8" in result.errors[0].message


# --- 8, 16: normalisation and duplicates -------------------------


def test_duplicate_ids_are_found_after_normalisation() -> None:
    result = read_csv(HEADER + "123,山田,,,,\r\n１２３,田中,,,,\r\n")
    assert codes(result) == [(3, "学籍番号", "duplicate_value")]
    assert "2行目" in result.errors[0].message
    assert [row.line for row in result.rows] == [2]


def test_clean_errors_are_reported_on_the_cell() -> None:
    result = read_csv(HEADER + "001,山田,山田,,,\r\n")
    assert codes(result) == [(2, "ふりがな", "not_kana")]


def test_kanji_names_are_not_normalised_on_import() -> None:
    result = read_csv(HEADER + "001,\ufa19田 ｶﾀｶﾅ,,,,\r\n")
    assert result.rows[0].values["name"] == "\ufa19田 ｶﾀｶﾅ"


# --- 11: Excel damage in CSV -------------------------------------


def test_exponent_notation_in_a_text_column_is_rejected() -> None:
    result = read_csv(HEADER + "1.23E+11,山田,,,,\r\n")
    assert codes(result) == [(2, "学籍番号", "cell_exponent")]


@pytest.mark.parametrize(
    ("cell", "code"),
    [
        ("45383", "date_excel_serial"),
        ("1-2", "date_no_year"),
        ("平成31年5月1日", "date_outside_era"),
        ("14/4/2", "date_short_year"),
    ],
)
def test_damaged_dates_in_csv_are_rejected_with_line_and_column(cell: str, code: str) -> None:
    result = read_csv(HEADER + f"001,山田,,{cell},,\r\n")
    assert codes(result) == [(2, "生年月日", code)]


@pytest.mark.parametrize("cell", ["令和8年4月1日", "R8.4.1", "2026-04-01", "２０２６/４/１"])
def test_era_and_full_width_dates_become_iso(cell: str) -> None:
    result = read_csv(HEADER + f"001,山田,,{cell},,\r\n")
    assert result.rows[0].values["birth_date"] == "2026-04-01"


def test_integer_column_rejects_non_digits() -> None:
    result = read_csv(HEADER + "001,山田,,,1番,\r\n002,田中,,,０２,\r\n")
    assert codes(result) == [(2, "出席番号", "not_integer")]
    assert result.rows[0].values["seat"] == "2"


# --- 12: control and format characters ---------------------------


@pytest.mark.parametrize("char", ["\x00", "\u200b", "\u202e", "\ufeff"])
def test_control_and_format_characters_in_cells_are_rejected_with_line_and_column(char: str) -> None:
    result = read_csv(HEADER + "001,山田,,,,\r\n" + f"002,田{char}中,,,,\r\n")
    assert codes(result) == [(3, "氏名", "control_char")]
    assert f"U+{ord(char):04X}" in result.errors[0].message
    assert [row.line for row in result.rows] == [2]


def test_newline_in_a_single_line_column_is_rejected() -> None:
    result = read_csv(HEADER + '001,"山田\n太郎",,,,\r\n')
    assert codes(result) == [(2, "氏名", "control_char")]
    assert "改行" in result.errors[0].message


# --- 13: sizes and caps ------------------------------------------


def test_oversized_file_is_rejected_before_parsing() -> None:
    data = b"\xff" * 2000  # would be an encoding error if it were decoded
    result = read_table(data, filename="big.csv", schema=SCHEMA, max_bytes=1000)
    assert codes(result) == [(None, None, "file_too_large")]
    assert result.format is None


def test_row_cap() -> None:
    result = read_csv(HEADER + "".join(f"{n},山田,,,,\r\n" for n in range(11)), max_rows=10)
    assert codes(result) == [(12, None, "too_many_rows")]
    assert result.rows == []


def test_column_cap() -> None:
    result = read_csv(",".join(f"列{n}" for n in range(5)) + "\r\n", max_columns=4)
    assert codes(result) == [(1, None, "too_many_columns")]


def test_oversized_cell_is_rejected() -> None:
    result = read_csv(HEADER + f"001,{'山' * 201},,,,\r\n")
    assert codes(result) == [(2, "氏名", "too_long")]


def test_error_list_is_capped() -> None:
    result = read_csv(HEADER + "".join(f"{n},,,,,\r\n" for n in range(50)), max_errors=10)
    assert len(result.errors) == 10
    assert result.errors[-1].code == "too_many_errors"


# --- 17: ragged rows, embedded newlines, headers -----------------


def test_embedded_newlines_keep_line_numbers_of_later_rows_correct() -> None:
    text = HEADER + '001,山田,,,,"一行目\r\n二行目\r\n三行目"\r\n' + "002,田中,,,,\r\n" + "003,,,,,\r\n"
    result = read_csv(text)
    assert [row.line for row in result.rows] == [2, 5]
    assert result.rows[0].values["note"] == "一行目\r\n二行目\r\n三行目"
    assert codes(result) == [(6, "氏名", "required")]


def test_ragged_rows_are_reported_with_their_line() -> None:
    text = HEADER + "001,山田,,,,\r\n002,田中\r\n003,佐藤,,,,,余分\r\n004,鈴木,,,,\r\n"
    result = read_csv(text)
    assert codes(result) == [(3, None, "ragged_row"), (4, None, "ragged_row")]
    assert [row.line for row in result.rows] == [2, 5]


def test_blank_lines_are_skipped_but_counted() -> None:
    result = read_csv(HEADER + "\r\n001,山田,,,,\r\n,,,,,\r\n002,田中,,,,\r\n")
    assert result.ok
    assert [row.line for row in result.rows] == [3, 5]


def test_renamed_and_full_width_spaced_headers_are_matched() -> None:
    text = " 学籍番号　,名　前,フリガナ,生年 月日\r\n001,山田,やまだ,2014-04-02\r\n"
    result = read_csv(text)
    assert result.ok, result.errors
    assert result.rows[0].values == {
        "student_id": "001",
        "name": "山田",
        "kana": "ヤマダ",
        "birth_date": "2014-04-02",
    }


def test_full_width_header_letters_are_matched() -> None:
    schema = TableSchema((Column("ID", "id"),))
    result = read_table("ＩＤ\r\nA1\r\n".encode(), filename="x.csv", schema=schema)
    assert result.rows[0].values == {"id": "A1"}


def test_unknown_headers_are_reported_and_no_rows_are_returned() -> None:
    result = read_csv("学籍番号,氏名,住所\r\n001,山田,東京\r\n")
    assert codes(result) == [(1, None, "header_unknown")]
    assert "住所" in result.errors[0].message
    assert result.rows == []


def test_unknown_headers_can_be_allowed() -> None:
    schema = TableSchema(SCHEMA.columns, allow_unknown_columns=True)
    result = read_table("学籍番号,氏名,住所\r\n001,山田,東京\r\n".encode(), filename="x.csv", schema=schema)
    assert result.ok
    assert result.rows[0].values == {"student_id": "001", "name": "山田"}


def test_missing_required_header_is_reported() -> None:
    result = read_csv("学籍番号,ふりがな\r\n001,やまだ\r\n")
    assert codes(result) == [(1, None, "header_missing")]
    assert "氏名" in result.errors[0].message


def test_duplicate_header_is_reported_even_through_an_alias() -> None:
    result = read_csv("学籍番号,氏名,名前\r\n001,山田,山田\r\n")
    assert codes(result) == [(1, None, "header_duplicate")]


def test_value_under_an_unlabelled_column_is_reported() -> None:
    result = read_csv("学籍番号,氏名,\r\n001,山田,\r\n002,田中,メモ\r\n")
    assert codes(result) == [(3, "3列目", "cell_without_header")]


def test_broken_quoting_is_reported_with_its_line() -> None:
    result = read_csv(HEADER + '001,山田,,,,\r\n002,"田中"x,,,,\r\n')
    assert codes(result) == [(3, None, "csv_syntax")]
    assert result.rows == []


def test_issue_reads_as_a_sentence() -> None:
    result = read_csv(HEADER + "001,,,,,\r\n")
    assert str(result.errors[0]) == "roster.csv 2行目「氏名」: 「氏名」は必須です。値を入力してください。"


_CELL_TEXT = st.text(alphabet=st.sampled_from(list('山田髙𠮷ヤマダabc 1,"\n')), max_size=12).filter(
    lambda s: not s.startswith(FORMULA_TRIGGERS)
)


@settings(deadline=None)
@given(st.lists(st.tuples(_CELL_TEXT, _CELL_TEXT), min_size=1, max_size=8))
def test_exported_csv_reads_back_identically_with_correct_lines(pairs: list[tuple[str, str]]) -> None:
    schema = TableSchema((Column("氏名", "name", multiline=True), Column("備考", "note", multiline=True)))
    rows = [(f"{n}{name}", note) for n, (name, note) in enumerate(pairs)]  # never blank, so every row is kept
    data = write_csv(rows, ["氏名", "備考"])
    result = read_table(data, filename="x.csv", schema=schema)
    assert result.ok, result.errors
    # Whitespace-only cells read back as blank.
    assert [(r.values["name"], r.values["note"]) for r in result.rows] == [
        (name, note if note.strip() else "") for name, note in rows
    ]
    expected_line = 2
    for row, (name, note) in zip(result.rows, rows, strict=True):
        assert row.line == expected_line
        expected_line += 1 + name.count("\n") + note.count("\n")


# --- XLSX --------------------------------------------------------


def test_xlsx_is_detected_and_read_with_sheet_row_numbers() -> None:
    data = xlsx_bytes(
        [
            XLSX_HEADER,
            ["00123", "山田", "やまだ", dt.datetime(2014, 4, 2), 3, None],
            [None] * 6,
            ["00124", "𠮷田", None, "R8.4.1", None, "複数行\nの備考"],
        ]
    )
    result = read_xlsx(data)
    assert result.ok, result.errors
    assert result.format == "xlsx"
    assert [row.line for row in result.rows] == [2, 4]
    assert result.rows[0].values == {
        "student_id": "00123",
        "name": "山田",
        "kana": "ヤマダ",
        "birth_date": "2014-04-02",
        "seat": "3",
        "note": "",
    }
    assert result.rows[1].values["name"] == "𠮷田"
    assert result.rows[1].values["birth_date"] == "2026-04-01"


@pytest.mark.parametrize("number", [123, 1.23e11, 3.5])
def test_numbers_in_text_columns_are_rejected_because_zeros_and_digits_were_lost(number: float) -> None:
    result = read_xlsx(xlsx_bytes([XLSX_HEADER, [number, "山田"]]))
    assert codes(result) == [(2, "学籍番号", "cell_number_in_text")]
    assert "文字列" in result.errors[0].message


def test_date_cell_in_a_text_column_is_rejected() -> None:
    # Excel turns a typed "1-2" into 2 January of the current year.
    result = read_xlsx(xlsx_bytes([XLSX_HEADER, ["001", "山田", None, None, None, dt.datetime(2026, 1, 2)]]))
    assert codes(result) == [(2, "備考", "cell_date_in_text")]


def test_serial_number_in_a_date_column_is_rejected() -> None:
    result = read_xlsx(xlsx_bytes([XLSX_HEADER, ["001", "山田", None, 45383, None, None]]))
    assert codes(result) == [(2, "生年月日", "date_excel_serial")]


def test_boolean_cell_is_rejected() -> None:
    result = read_xlsx(xlsx_bytes([XLSX_HEADER, ["001", True]]))
    assert codes(result) == [(2, "氏名", "cell_type")]


def test_integer_column_accepts_whole_numbers_but_not_fractions() -> None:
    result = read_xlsx(
        xlsx_bytes([XLSX_HEADER, ["001", "山田", None, None, 4.0], ["002", "田中", None, None, 4.5]])
    )
    assert result.rows[0].values["seat"] == "4"
    assert codes(result) == [(3, "出席番号", "cell_number_in_text")]


def test_xlsx_control_characters_are_rejected() -> None:
    result = read_xlsx(xlsx_bytes([XLSX_HEADER, ["001", "山田\u202e"]]))
    assert codes(result) == [(2, "氏名", "control_char")]


def test_xlsx_headers_follow_the_same_rules() -> None:
    result = read_xlsx(xlsx_bytes([["学籍番号", "氏名", "学籍番号"], ["001", "山田", "002"]]))
    assert codes(result) == [(1, None, "header_duplicate")]


def test_xlsx_value_right_of_the_headings_is_reported() -> None:
    result = read_xlsx(xlsx_bytes([["学籍番号", "氏名"], ["001", "山田", None, "はみ出し"]]))
    assert codes(result) == [(2, "4列目", "cell_without_header")]


def test_xlsx_row_cap_counts_rows_after_the_heading() -> None:
    result = read_xlsx(xlsx_bytes([XLSX_HEADER] + [[str(n), "山田"] for n in range(5)]), max_rows=4)
    assert codes(result) == [(6, None, "too_many_rows")]


# --- 14: zip bombs and hostile archives --------------------------


def test_openpyxl_parses_xml_through_defusedxml() -> None:
    assert openpyxl_xml_is_defused()


_ENTITY_BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
)


@pytest.mark.parametrize(
    ("member", "body"),
    [
        (
            "xl/worksheets/sheet1.xml",  # parsed with iterparse while rows are read
            _ENTITY_BOMB + b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            b'<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&lol2;</t></is></c></row></sheetData>'
            b"</worksheet>",
        ),
        (
            "xl/workbook.xml",  # parsed with fromstring when the workbook is opened
            _ENTITY_BOMB + b'<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            b"<sheets>&lol2;</sheets></workbook>",
        ),
    ],
)
def test_xml_entity_declarations_are_refused_by_defusedxml(member: str, body: bytes) -> None:
    hostile = rezip(xlsx_bytes([["学籍番号", "氏名"], ["001", "山田"]]), replace={member: body})
    with pytest.raises(ValueError) as error:  # openpyxl itself refuses, through defusedxml
        workbook = openpyxl.load_workbook(io.BytesIO(hostile), read_only=True)
        list(workbook.worksheets[0].iter_rows(values_only=True))
    causes = [error.value, error.value.__cause__, error.value.__context__]
    assert any(isinstance(cause, defusedxml.EntitiesForbidden) for cause in causes)
    assert codes(read_xlsx(hostile)) == [(None, None, "xlsx_invalid")]


def test_reading_xlsx_refuses_to_run_without_defusedxml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tabular, "openpyxl_xml_is_defused", lambda: False)
    with pytest.raises(RuntimeError, match="defusedxml"):
        read_xlsx(xlsx_bytes([["学籍番号", "氏名"]]))


def test_zip_bomb_is_refused_by_compression_ratio() -> None:
    bomb = rezip(xlsx_bytes([["学籍番号", "氏名"]]), extra={"xl/media/zeros.bin": b"\0" * (8 * 1024 * 1024)})
    assert len(bomb) < 100_000  # small on the wire, 8 MB inside
    result = read_xlsx(bomb)
    assert codes(result) == [(None, None, "xlsx_ratio")]


def test_total_uncompressed_size_is_capped() -> None:
    result = read_xlsx(xlsx_bytes([["学籍番号", "氏名"]]), zip_limits=ZipLimits(max_uncompressed_bytes=1000))
    assert codes(result) == [(None, None, "xlsx_too_large")]


def test_member_count_is_capped() -> None:
    result = read_xlsx(xlsx_bytes([["学籍番号", "氏名"]]), zip_limits=ZipLimits(max_members=3))
    assert codes(result) == [(None, None, "xlsx_members")]


def test_path_traversal_member_is_refused() -> None:
    result = read_xlsx(rezip(xlsx_bytes([["学籍番号", "氏名"]]), extra={"../../evil.xml": b"<x/>"}))
    assert codes(result) == [(None, None, "xlsx_odd_member")]


def test_encrypted_member_is_refused() -> None:
    # zipfile cannot write encrypted members, so set the "encrypted" flag in each central-directory entry.
    data = bytearray(xlsx_bytes([["学籍番号", "氏名"]]))
    position = data.find(b"PK\x01\x02")
    while position != -1:
        data[position + 8] |= 0x1
        position = data.find(b"PK\x01\x02", position + 4)
    result = read_xlsx(bytes(data))
    assert codes(result) == [(None, None, "xlsx_encrypted")]


def test_corrupt_zip_is_refused() -> None:
    result = read_xlsx(b"PK\x03\x04" + b"\0" * 100)
    assert codes(result) == [(None, None, "xlsx_invalid")]


def test_zip_that_is_not_a_workbook_is_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "hello")
    result = read_xlsx(out.getvalue())
    assert codes(result) == [(None, None, "xlsx_invalid")]


def test_legacy_xls_or_password_protected_file_is_refused() -> None:
    result = read_xlsx(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100)
    assert codes(result) == [(None, None, "unsupported_format")]


# --- 15: formula injection on export -----------------------------


@pytest.mark.parametrize(
    "value",
    [
        "=1+2",
        "+1",
        "-1",
        "@SUM(A1)",
        "\tx",
        "\rx",
        "\0x",
        "＝1+2",
        "＋1",
        "－1",
        "＠x",
        '=HYPERLINK("http://x")',
    ],
)
def test_formula_triggers_are_prefixed_with_an_apostrophe(value: str) -> None:
    assert escape_formula(value) == "'" + value


@pytest.mark.parametrize("value", ["山田", "", "1+2", " =1", "'=1", "090-1234-5678"])
def test_other_values_are_unchanged(value: str) -> None:
    assert escape_formula(value) == value


@given(st.text(max_size=20))
def test_escaped_values_never_start_a_formula_and_escaping_is_idempotent(value: str) -> None:
    escaped = escape_formula(value)
    assert not escaped.startswith(FORMULA_TRIGGERS)
    assert escaped in (value, "'" + value)
    assert escape_formula(escaped) == escaped


def test_csv_export_is_rfc4180_with_bom_crlf_and_formula_safe() -> None:
    data = write_csv([["=1+2", 'a,"b"'], ["複数\n行", "＠x"]], ["氏名", "備考"])
    assert data.startswith(b"\xef\xbb\xbf")
    assert data.decode("utf-8-sig") == '氏名,備考\r\n\'=1+2,"a,""b"""\r\n"複数\n行",\'＠x\r\n'


def test_cp932_export_writes_ibm_extension_characters() -> None:
    data = write_csv([["髙橋", "①㈱〜"]], ["氏名", "備考"], encoding="cp932")
    assert data.decode("cp932") == "氏名,備考\r\n髙橋,①㈱～\r\n"


def test_cp932_export_refuses_characters_it_cannot_hold_and_lists_them() -> None:
    with pytest.raises(Cp932Error) as error:
        write_csv([["山田", ""], ["𠮷田", "葛\U000e0100"]], ["氏名", "備考"], encoding="cp932")
    assert [(p.row, p.column, p.char) for p in error.value.problems] == [
        (3, "氏名", "𠮷"),
        (3, "備考", "\U000e0100"),
    ]
    assert "3行目「氏名」「𠮷」（U+20BB7）" in error.value.message
    assert "UTF-8" in error.value.message


def test_export_rows_must_match_the_headers() -> None:
    with pytest.raises(ValueError):
        write_csv([["a"]], ["氏名", "備考"])


def test_xlsx_export_stores_strings_and_neutralises_formulas() -> None:
    data = write_xlsx([["=1+2", "00123"], ["@cmd", "＝A1"]], ["氏名", "番号"], sheet_title="名簿")
    workbook = openpyxl.load_workbook(io.BytesIO(data))
    sheet = workbook["名簿"]
    cells = [[(cell.value, cell.data_type) for cell in row] for row in sheet.iter_rows()]
    assert cells == [
        [("氏名", "s"), ("番号", "s")],
        [("'=1+2", "s"), ("00123", "s")],
        [("'@cmd", "s"), ("'＝A1", "s")],
    ]


def test_xlsx_export_can_be_imported_again() -> None:
    data = write_xlsx([["001", "𠮷田"]], ["学籍番号", "氏名"], sheet_title="名簿")
    result = read_xlsx(data)
    assert result.ok, result.errors
    assert result.rows[0].values == {"student_id": "001", "name": "𠮷田"}


@pytest.mark.parametrize("title", ["", "a" * 32, "名簿/2026", "[x]"])
def test_invalid_sheet_titles_are_refused(title: str) -> None:
    with pytest.raises(ValueError):
        write_xlsx([], ["氏名"], sheet_title=title)


def test_xlsx_export_refuses_characters_xml_cannot_hold() -> None:
    with pytest.raises(ValueError):
        write_xlsx([["山田\x01"]], ["氏名"], sheet_title="名簿")


def test_schema_rejects_conflicting_definitions() -> None:
    with pytest.raises(ValueError):
        TableSchema((Column("氏名", "name"), Column("名前", "name")))
    with pytest.raises(ValueError):
        TableSchema((Column("氏名", "name"), Column("氏　名", "other")))
