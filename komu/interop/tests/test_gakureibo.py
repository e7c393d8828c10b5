"""学齢簿 import: both layouts and every applicable bad input of docs/domain.md §7 (pure, no database)."""

from __future__ import annotations

import csv
import datetime as dt
import io

import openpyxl
import pytest

from komu.core.codes import school_code_check_digit
from komu.interop.gakureibo import (
    APPLIC_HEADERS,
    GakureiboIssue,
    GakureiboParse,
    Layout,
    entrant_birth_range,
    parse_gakureibo,
)

FY = 2027  # entrants born 2020-04-02 … 2021-04-01
SCHOOL = "B11310000001" + school_code_check_digit("B11310000001")

KOMU_HEADERS = [
    "個人番号",
    "氏名（姓）",
    "氏名（名）",
    "ふりがな（姓）",
    "ふりがな（名）",
    "性別",
    "生年月日",
    "住所",
    "郵便番号",
    "保護者氏名（姓）",
    "保護者氏名（名）",
    "保護者ふりがな（姓）",
    "保護者ふりがな（名）",
    "続柄",
    "保護者電話番号",
    "保護者メールアドレス",
    "保護者住所",
    "就学予定校コード",
    "学年",
    "学級種別",
    "区域外就学",
    "入学予定日",
    "備考",
]


def komu_row(**overrides: str) -> list[str]:
    values = {
        "個人番号": "000000000000101",
        "氏名（姓）": "山田",
        "氏名（名）": "太郎",
        "ふりがな（姓）": "やまだ",
        "ふりがな（名）": "たろう",
        "性別": "男",
        "生年月日": "2020-06-15",
        "住所": "東京都千代田区霞が関3-2-2",
        "郵便番号": "100-8959",
        "保護者氏名（姓）": "山田",
        "保護者氏名（名）": "花子",
        "保護者ふりがな（姓）": "ヤマダ",
        "保護者ふりがな（名）": "ハナコ",
        "続柄": "母",
        "保護者電話番号": "03-1234-5678",
        "保護者メールアドレス": "hanako@example.jp",
        "保護者住所": "東京都千代田区霞が関3-2-2",
        "就学予定校コード": SCHOOL,
        "学年": "0",
        "学級種別": "普通",
        "区域外就学": "無",
        "入学予定日": "2027-04-06",
        "備考": "",
    }
    unknown = set(overrides) - set(values)
    assert not unknown, unknown
    values.update(overrides)
    return [values[h] for h in KOMU_HEADERS]


def to_csv(rows: list[list[str]], headers: list[str] = KOMU_HEADERS) -> str:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerows([headers, *rows])
    return buffer.getvalue()


def parse(data: bytes, *, layout: Layout = "komu", fiscal_year: int = FY) -> GakureiboParse:
    return parse_gakureibo(data, filename="gakureibo.csv", layout=layout, fiscal_year=fiscal_year)


def parse_ok(data: bytes, *, layout: Layout = "komu", fiscal_year: int = FY) -> GakureiboParse:
    result = parse(data, layout=layout, fiscal_year=fiscal_year)
    assert result.ok, [str(e) for e in result.errors]
    return result


def codes(issues: list[GakureiboIssue]) -> list[str]:
    return [issue.code for issue in issues]


# --- the happy path ------------------------------------------------


def test_komu_layout_row_becomes_a_typed_entrant() -> None:
    result = parse_ok(to_csv([komu_row()]).encode("utf-8"))
    assert result.layout == "komu" and result.encoding == "utf-8" and result.warnings == []
    (row,) = result.rows
    assert row.line == 2
    assert (row.person_id, row.family_name, row.given_name) == ("000000000000101", "山田", "太郎")
    assert (row.family_name_kana, row.given_name_kana) == ("ヤマダ", "タロウ")
    assert row.sex == "male" and row.birth_date == dt.date(2020, 6, 15)
    assert row.postal_code == "100-8959" and row.guardian_phone == "03-1234-5678"
    assert row.guardian_relationship == "母" and row.guardian_email == "hanako@example.jp"
    assert row.school_code == SCHOOL and row.grade == 1
    assert row.special_needs is False and row.out_of_district is False
    assert row.entry_date == dt.date(2027, 4, 6) and row.needs_review is False


def test_optional_columns_may_be_left_out_and_defaults_apply() -> None:
    data = "個人番号,氏名（姓）,ふりがな（姓）,生年月日\r\n42,佐藤,さとう,2020/5/1\r\n".encode()
    (row,) = parse_ok(data).rows
    assert row.sex == "unspecified" and row.grade == 1 and row.school_code == ""
    assert row.special_needs is False and row.entry_date is None and row.given_name == ""


def test_special_needs_and_out_of_district_and_grade_one() -> None:
    data = to_csv([komu_row(学級種別="特別支援", 区域外就学="有", 学年="1", 性別="女")]).encode()
    (row,) = parse_ok(data).rows
    assert row.special_needs is True and row.out_of_district is True and row.sex == "female"


@pytest.mark.parametrize(
    ("column", "value", "code"),
    [
        ("性別", "M", "choice"),
        ("学級種別", "通級", "choice"),
        ("区域外就学", "はい", "choice"),
        ("学年", "2", "grade"),
        ("就学予定校コード", "B113100000009", "school_code_check_digit"),
        ("保護者メールアドレス", "hanako@", "email_format"),
        ("保護者電話番号", "+81-3-1234-5678", "phone_format"),
        ("郵便番号", "100-89", "postal_format"),
        ("ふりがな（姓）", "山田", "not_kana"),
        ("生年月日", "2020/13/1", "date_impossible"),
    ],
)
def test_bad_value_is_an_error_on_its_line_and_column(column: str, value: str, code: str) -> None:
    result = parse(to_csv([komu_row(), komu_row(個人番号="102", **{column: value})]).encode())
    assert not result.ok and result.rows == []  # all-or-nothing
    (issue,) = result.errors
    assert (issue.code, issue.line, issue.column, issue.file) == (code, 3, column, "gakureibo.csv")


def test_choice_error_carries_the_value_and_says_what_to_type() -> None:
    (issue,) = parse(to_csv([komu_row(性別="M")]).encode()).errors
    assert issue.value == "M" and "「男」、「女」、「未設定」" in issue.message
    assert str(issue) == f"gakureibo.csv 2行目「性別」: {issue.message}"


def test_missing_required_value_is_an_error() -> None:
    (issue,) = parse(to_csv([komu_row(個人番号="")]).encode()).errors
    assert issue.code == "required" and issue.column == "個人番号"


# --- §7: encodings -------------------------------------------------


def test_utf8_with_bom_is_read() -> None:
    result = parse_ok(to_csv([komu_row()]).encode("utf-8-sig"))
    assert result.encoding == "utf-8-sig" and result.rows[0].family_name == "山田"


def test_cp932_names_with_ibm_and_nec_extensions_are_kept() -> None:
    rows = [komu_row(**{"氏名（姓）": "髙﨑", "氏名（名）": "①", "備考": "㈱勤務"})]
    result = parse_ok(to_csv(rows).encode("cp932"))
    assert result.encoding == "cp932"
    (row,) = result.rows
    assert (row.family_name, row.given_name, row.note) == ("髙﨑", "①", "㈱勤務")


def test_undecodable_bytes_are_reported_with_line_and_byte() -> None:
    data = to_csv([komu_row()]).encode("cp932") + b"\x81\xff,x\r\n"
    result = parse(data)
    (issue,) = result.errors
    assert issue.code == "encoding" and issue.line == 3 and "バイト目" in issue.message
    assert result.rows == []


def test_non_cp932_character_in_utf8_is_kept() -> None:
    (row,) = parse_ok(to_csv([komu_row(**{"氏名（姓）": "𠮷田"})]).encode()).rows
    assert row.family_name == "𠮷田"


def test_variation_sequence_is_kept() -> None:
    name = "葛\U000e0100城"
    (row,) = parse_ok(to_csv([komu_row(**{"氏名（姓）": name})]).encode()).rows
    assert row.family_name == name and len(row.family_name) == 3


def test_compatibility_ideograph_is_never_normalised() -> None:
    name = "\ufa19田"  # 神 U+FA19; NFC/NFKC would turn it into U+795E
    (row,) = parse_ok(to_csv([komu_row(**{"氏名（姓）": name})]).encode()).rows
    assert row.family_name == name


def test_private_use_character_is_a_warning_and_flags_the_row() -> None:
    result = parse_ok(to_csv([komu_row(**{"保護者氏名（名）": "\ue001子"})]).encode())
    (warning,) = result.warnings
    assert warning.code == "private_use" and warning.column == "保護者氏名（名）" and warning.line == 2
    assert "U+E001" in warning.message
    (row,) = result.rows
    assert row.guardian_given_name == "\ue001子" and row.needs_review is True


# --- §7: normalisation of ids, phones, postal codes, kana ------------


def test_full_width_digits_in_ids_phones_and_postal_codes_are_normalised() -> None:
    row_values = komu_row(
        個人番号="０１２３", 保護者電話番号="０９０−１２３４−５６７８", 郵便番号="〒１００ー８９５９"
    )
    (row,) = parse_ok(to_csv([row_values]).encode()).rows
    assert (row.person_id, row.guardian_phone, row.postal_code) == ("0123", "090-1234-5678", "100-8959")


@pytest.mark.parametrize("hyphen", ["\u2010", "\u2212", "\u2015", "\u30fc", "\uff70"])
def test_hyphen_lookalikes_in_phones_are_folded(hyphen: str) -> None:
    phone = f"03{hyphen}1234{hyphen}5678"
    (row,) = parse_ok(to_csv([komu_row(保護者電話番号=phone)]).encode()).rows
    assert row.guardian_phone == "03-1234-5678"


def test_nfd_and_half_width_kana_are_normalised_to_katakana() -> None:
    nfd = "ダイスケ".replace("ダ", "タ\u3099")  # macOS-decomposed
    (row,) = parse_ok(to_csv([komu_row(**{"ふりがな（名）": nfd, "ふりがな（姓）": "ﾔﾏﾀﾞ"})]).encode()).rows
    assert (row.family_name_kana, row.given_name_kana) == ("ヤマダ", "ダイスケ")


def test_empty_kana_is_a_warning_not_an_error() -> None:
    result = parse_ok(to_csv([komu_row(**{"ふりがな（姓）": "", "ふりがな（名）": ""})]).encode())
    assert codes(result.warnings) == ["kana_missing"]
    assert result.rows[0].needs_review is True


# --- §7: duplicates ------------------------------------------------


def test_duplicate_person_ids_after_nfkc_name_both_lines() -> None:
    result = parse(to_csv([komu_row(個人番号="123"), komu_row(), komu_row(個人番号="１２３")]).encode())
    (issue,) = result.errors
    assert issue.code == "duplicate_value" and issue.line == 4 and issue.value == "123"
    assert "2行目と4行目" in issue.message and result.rows == []


# --- §7: Excel damage ----------------------------------------------


def test_person_id_shorter_than_the_rest_warns_of_lost_leading_zeros() -> None:
    rows = [
        komu_row(個人番号="000000000000101"),
        komu_row(個人番号="000000000000102"),
        komu_row(個人番号="103"),
    ]
    result = parse_ok(to_csv(rows).encode())
    (warning,) = result.warnings
    assert (warning.code, warning.line, warning.value) == ("person_id_short", 4, "103")


def test_exponent_person_id_is_an_error() -> None:
    (issue,) = parse(to_csv([komu_row(個人番号="1.23E+11")]).encode()).errors
    assert issue.code == "cell_exponent" and issue.column == "個人番号"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("令和2年6月15日", dt.date(2020, 6, 15)),
        ("R2.6.15", dt.date(2020, 6, 15)),
        ("２０２０／６／１５", dt.date(2020, 6, 15)),
    ],
)
def test_era_and_full_width_birth_dates_are_accepted(text: str, expected: dt.date) -> None:
    (row,) = parse_ok(to_csv([komu_row(生年月日=text)]).encode()).rows
    assert row.birth_date == expected


def test_gannen_and_heisei_letter_dates_are_accepted() -> None:
    rows = [
        komu_row(生年月日="令和元年5月1日", 入学予定日=""),
        komu_row(個人番号="000000000000102", 生年月日="H31.4.2", 入学予定日=""),
    ]
    result = parse_ok(to_csv(rows).encode(), fiscal_year=2026)
    assert [r.birth_date for r in result.rows] == [dt.date(2019, 5, 1), dt.date(2019, 4, 2)]
    assert result.warnings == []


def test_entry_date_in_era_form_is_accepted() -> None:
    (row,) = parse_ok(to_csv([komu_row(入学予定日="令和9年4月6日")]).encode()).rows
    assert row.entry_date == dt.date(2027, 4, 6)


@pytest.mark.parametrize("text", ["43983", "1.23E+11", "6/15"])
def test_serial_and_damaged_dates_in_csv_are_rejected(text: str) -> None:
    (issue,) = parse(to_csv([komu_row(生年月日=text)]).encode()).errors
    assert issue.column == "生年月日" and issue.line == 2


def xlsx(rows: list[list[object]], headers: list[str] = KOMU_HEADERS) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_xlsx_with_date_cells_and_text_ids_is_read() -> None:
    values: list[object] = list(komu_row())
    values[KOMU_HEADERS.index("生年月日")] = dt.datetime(2020, 6, 15)
    result = parse_ok(xlsx([values]))
    assert result.format == "xlsx" and result.rows[0].birth_date == dt.date(2020, 6, 15)


def test_xlsx_person_id_stored_as_a_number_is_an_error() -> None:
    values: list[object] = list(komu_row())
    values[0] = 123000000000
    (issue,) = parse(xlsx([values])).errors
    assert issue.code == "cell_number_in_text" and issue.line == 2 and issue.column == "個人番号"


def test_xlsx_serial_number_birth_date_is_rejected() -> None:
    values: list[object] = list(komu_row())
    values[KOMU_HEADERS.index("生年月日")] = 43983
    (issue,) = parse(xlsx([values])).errors
    assert issue.column == "生年月日" and issue.line == 2


# --- §7: control characters, size, shape, headings -------------------


@pytest.mark.parametrize("char", ["\x00", "\u200b", "\u202e"])
def test_control_and_format_characters_are_rejected(char: str) -> None:
    (issue,) = parse(to_csv([komu_row(**{"氏名（名）": f"太{char}郎"})]).encode()).errors
    assert issue.code == "control_char" and issue.column == "氏名（名）" and issue.line == 2


def test_oversized_file_is_rejected_before_parsing() -> None:
    data = to_csv([komu_row()]).encode() + b"#" * (10 * 1024 * 1024)
    (issue,) = parse(data).errors
    assert issue.code == "file_too_large" and issue.line is None


def test_ragged_row_is_reported_with_its_line() -> None:
    data = (to_csv([komu_row()]) + "999,佐藤\r\n").encode()
    (issue,) = parse(data).errors
    assert issue.code == "ragged_row" and issue.line == 3


def test_embedded_newline_in_note_keeps_line_numbers() -> None:
    data = to_csv([komu_row(備考="1行目\n2行目"), komu_row(個人番号="2", 性別="X")]).encode()
    result = parse(data)
    (issue,) = result.errors
    assert issue.line == 4  # the second record starts after the two-line note


def test_full_width_spaced_headings_are_accepted() -> None:
    headers = ["個人　番号", " 氏名（姓） ", "ふりがな（姓）", "生年月日"]
    data = to_csv([["7", "鈴木", "すずき", "2020-07-07"]], headers).encode()
    assert parse_ok(data).rows[0].person_id == "7"


def test_renamed_heading_is_reported() -> None:
    headers = ["個人番号", "名字", "生年月日"]
    result = parse(to_csv([["7", "鈴木", "2020-07-07"]], headers).encode())
    assert "header_unknown" in codes(result.errors)
    assert "header_missing" in codes(result.errors)  # 氏名（姓） is required


# --- grade and birth date ------------------------------------------


def test_entrant_birth_range_runs_from_2_april_to_1_april() -> None:
    assert entrant_birth_range(2027) == (dt.date(2020, 4, 2), dt.date(2021, 4, 1))


@pytest.mark.parametrize(
    ("birth", "warned"),
    [
        ("2020-04-01", True),  # one year too old: entered in 2026
        ("2020-04-02", False),
        ("2021-04-01", False),
        ("2021-04-02", True),  # enters in 2028
    ],
)
def test_birth_date_inconsistent_with_entering_grade_one_is_a_warning(birth: str, warned: bool) -> None:
    result = parse_ok(to_csv([komu_row(生年月日=birth)]).encode())
    assert codes(result.warnings) == (["birth_date_grade"] if warned else [])
    assert len(result.rows) == 1


def test_entry_date_outside_the_fiscal_year_is_a_warning() -> None:
    result = parse_ok(to_csv([komu_row(入学予定日="2026-04-06")]).encode())
    assert codes(result.warnings) == ["entry_date_year"]


# --- APPLIC layout and auto-detection --------------------------------

APPLIC = [APPLIC_HEADERS[key][0] for key in APPLIC_HEADERS]


def applic_row(**overrides: str) -> list[str]:
    values = {
        "person_id": "012345678901234",
        "full_name": "髙橋　一郎",
        "full_name_kana": "タカハシ　イチロウ",
        "sex": "1",
        "birth_date": "R2.6.15",
        "postal_code": "1008959",
        "address": "東京都千代田区霞が関3-2-2",
        "school_code": SCHOOL,
        "grade": "0",
        "class_type": "特別支援",
        "guardian_id": "012345678900001",
        "guardian_full_name": "髙橋 幸子",
        "guardian_full_name_kana": "ﾀｶﾊｼ ｻﾁｺ",
        "guardian_relationship": "母",
        "entry_date": "2027-04-06",
        "out_of_district": "0",
    }
    values.update(overrides)
    return [values[key] for key in APPLIC_HEADERS]


def test_applic_layout_row_becomes_a_typed_entrant() -> None:
    result = parse_ok(to_csv([applic_row()], APPLIC).encode("cp932"), layout="applic")
    assert result.layout == "applic"
    (row,) = result.rows
    assert (row.family_name, row.given_name) == ("髙橋", "一郎")
    assert (row.family_name_kana, row.given_name_kana) == ("タカハシ", "イチロウ")
    assert (row.guardian_family_name_kana, row.guardian_given_name_kana) == ("タカハシ", "サチコ")
    assert row.person_id == "012345678901234" and row.guardian_id == "012345678900001"
    assert row.sex == "male" and row.grade == 1 and row.special_needs is True
    assert row.postal_code == "100-8959" and row.guardian_relationship == "母"


def test_applic_person_id_of_wrong_length_is_an_error_mentioning_lost_zeros() -> None:
    (issue,) = parse(
        to_csv([applic_row(person_id="12345678901234")], APPLIC).encode(), layout="applic"
    ).errors
    assert issue.code == "person_id_length" and issue.value == "12345678901234" and "先頭の0" in issue.message


def test_applic_ignores_columns_komu_does_not_use() -> None:
    headers = [*APPLIC, "世帯番号"]
    data = to_csv([[*applic_row(), "S0001"]], headers).encode()
    assert len(parse_ok(data, layout="applic").rows) == 1


def test_auto_detects_applic_by_headings() -> None:
    assert parse_ok(to_csv([applic_row()], APPLIC).encode(), layout="auto").layout == "applic"


def test_auto_detects_komu_by_headings() -> None:
    assert parse_ok(to_csv([komu_row()]).encode(), layout="auto").layout == "komu"


def test_auto_reports_komu_headings_when_neither_layout_matches() -> None:
    result = parse(to_csv([["1", "x"]], ["番号", "なまえ"]).encode(), layout="auto")
    assert result.layout == "komu" and "header_unknown" in codes(result.errors)
