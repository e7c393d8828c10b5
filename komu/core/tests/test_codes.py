"""Prefecture, school, board and grade codes (docs/domain.md §1, §8)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.utils import translation
from django.utils.translation import gettext
from hypothesis import given
from hypothesis import strategies as st

from komu.core.codes import (
    GRADES,
    PREFECTURES,
    SCHOOL_TYPES,
    CodeError,
    SchoolCode,
    grade_display,
    grade_label,
    grades_for_school_type,
    is_prefectural_board_code,
    make_school_code,
    prefecture_name,
    school_code_check_digit,
    validate_board_code,
    validate_grade_code,
    validate_school_code,
)

# --- prefectures -------------------------------------------------


def test_there_are_47_prefectures_numbered_01_to_47() -> None:
    assert [code for code, _ in PREFECTURES] == [f"{n:02d}" for n in range(1, 48)]
    assert PREFECTURES[0] == ("01", "北海道")
    assert PREFECTURES[12] == ("13", "東京都")
    assert PREFECTURES[-1] == ("47", "沖縄県")


def test_prefecture_name_accepts_full_width_digits() -> None:
    assert prefecture_name("１３") == "東京都"


@pytest.mark.parametrize("code", ["00", "48", "1", "ab"])
def test_unknown_prefecture_codes_are_rejected(code: str) -> None:
    with pytest.raises(CodeError) as error:
        prefecture_name(code)
    assert "都道府県コード" in error.value.message


# --- 学校コード -------------------------------------------------------


def test_worked_example_from_mext_has_check_digit_2() -> None:
    assert school_code_check_digit("F11231010234") == "2"
    assert validate_school_code("F112310102342") == SchoolCode("F1", "12", "3", "1010234")


def test_school_code_accepts_full_width_and_lower_case_input() -> None:
    assert validate_school_code(" ｆ１１２３１０１０２３４２ ").code == "F112310102342"


def test_school_code_parts_have_labels() -> None:
    school = validate_school_code("F112310102342")
    assert school.school_type_label == "大学"
    assert school.prefecture_name == "千葉県"
    assert str(school) == "F112310102342"


@pytest.mark.parametrize(
    ("code", "reason", "fragment"),
    [
        ("F11231010234", "school_code_length", "13桁"),
        ("F1123101023421", "school_code_length", "13桁"),
        ("Z112310102342", "school_type", "学校種別「Z1」"),
        ("B3123101023420", "school_code_length", "13桁"),
        ("B312310102342", "school_type", "学校種別「B3」"),
        ("F1123101X2342", "school_code_format", "数字"),
        ("F148310102342", "prefecture", "「48」"),
        ("F100310102342", "prefecture", "「00」"),
        ("F112410102342", "establishment", "設置区分「4」"),
        ("F112310102341", "school_code_check_digit", "「2」"),
    ],
)
def test_invalid_school_codes_name_what_is_wrong(code: str, reason: str, fragment: str) -> None:
    with pytest.raises(CodeError) as error:
        validate_school_code(code)
    assert error.value.code == reason
    assert fragment in error.value.message


def test_establishment_codes_are_configurable_because_1_and_3_are_unconfirmed() -> None:
    code = make_school_code("B1", "13", "2", "0000001")
    with pytest.raises(CodeError):
        validate_school_code(code, establishments={"1": "国立", "3": "私立"})


def test_make_school_code_appends_the_check_digit() -> None:
    assert make_school_code("F1", "12", "3", "1010234") == "F112310102342"


@pytest.mark.parametrize(
    ("parts", "reason"),
    [
        (("B1", "13", "2", "123456"), "school_code_format"),
        (("B1", "48", "2", "1234567"), "prefecture"),
        (("X1", "13", "2", "1234567"), "school_code_format"),
        (("B1", "13", "7", "1234567"), "establishment"),
    ],
)
def test_make_school_code_validates_each_part(parts: tuple[str, str, str, str], reason: str) -> None:
    with pytest.raises(CodeError) as error:
        make_school_code(*parts)
    assert error.value.code == reason


_FIRST12 = st.tuples(st.sampled_from("ABCDEFGH"), st.text("0123456789", min_size=11, max_size=11)).map(
    "".join
)


@given(_FIRST12, st.integers(min_value=1, max_value=11), st.integers(min_value=1, max_value=9))
def test_check_digit_catches_every_single_digit_error(first12: str, position: int, delta: int) -> None:
    check = school_code_check_digit(first12)
    wrong_digit = str((int(first12[position]) + delta) % 10)
    mistyped = first12[:position] + wrong_digit + first12[position + 1 :]
    assert school_code_check_digit(mistyped) != check


@given(
    st.sampled_from(list(SCHOOL_TYPES)),
    st.sampled_from([code for code, _ in PREFECTURES]),
    st.sampled_from(["1", "2", "3"]),
    st.text("0123456789", min_size=7, max_size=7),
)
def test_made_school_codes_validate_back_to_their_parts(
    school_type: str, prefecture: str, establishment: str, number: str
) -> None:
    code = make_school_code(school_type, prefecture, establishment, number)
    assert validate_school_code(code) == SchoolCode(school_type, prefecture, establishment, number)


def test_check_digit_input_must_be_a_letter_and_eleven_digits() -> None:
    with pytest.raises(CodeError):
        school_code_check_digit("Z11231010234")
    with pytest.raises(CodeError):
        school_code_check_digit("F1123101023")


# --- 教育委員会コード ----------------------------------------------------


def test_hokkaido_board_code_is_valid_and_prefectural() -> None:
    board = validate_board_code("011000")
    assert (board.prefecture_code, board.number, board.prefecture_name) == ("01", "1000", "北海道")
    assert is_prefectural_board_code("011000")
    assert not is_prefectural_board_code("011002")


def test_board_code_accepts_full_width_digits() -> None:
    assert validate_board_code("０１１０００").code == "011000"


@pytest.mark.parametrize(
    ("code", "reason"),
    [("01100", "board_code_format"), ("48100A", "board_code_format"), ("481000", "prefecture")],
)
def test_invalid_board_codes_are_rejected(code: str, reason: str) -> None:
    with pytest.raises(CodeError) as error:
        validate_board_code(code)
    assert error.value.code == reason


# --- grade codes -------------------------------------------------


def test_grade_codes_have_japanese_labels() -> None:
    assert len(GRADES) == 15
    assert grade_label("P1") == "小学1年"
    assert grade_label("j3") == "中学3年"
    assert grade_label("H2") == "高校2年"


def test_grade_display_is_the_label_through_the_catalogue(monkeypatch: pytest.MonkeyPatch) -> None:
    # The English catalogue is filled separately; a stand-in shows that screens get the catalogue's text while
    # grade_label, the data form, stays Japanese.
    monkeypatch.setattr("komu.core.codes.gettext", lambda message: {"小学1年": "Grade 1"}.get(message, message))
    assert grade_display("P1") == "Grade 1"
    assert grade_display("p1") == "Grade 1"
    assert grade_label("P1") == "小学1年"


def test_grade_display_follows_the_active_language() -> None:
    with translation.override("en"):
        assert grade_display("J3") == gettext("中学3年")
        assert grade_label("J3") == "中学3年"
    with translation.override("ja"):
        assert grade_display("J3") == "中学3年"


def test_grade_display_shows_what_is_not_a_grade_code_as_it_is() -> None:
    assert grade_display("") == ""
    assert grade_display("X9") == "X9"


def test_every_grade_label_is_a_literal_msgid_for_makemessages() -> None:
    source = (Path(__file__).parents[1] / "codes.py").read_text(encoding="utf-8")
    for code, label in GRADES.items():
        assert f'"{code}": gettext_noop("{label}"),' in source


@pytest.mark.parametrize(
    ("school_type", "expected"),
    [
        ("B1", ("P1", "P2", "P3", "P4", "P5", "P6")),
        ("C1", ("J1", "J2", "J3")),
        ("C2", ("P1", "P2", "P3", "P4", "P5", "P6", "J1", "J2", "J3")),
        ("D1", ("H1", "H2", "H3")),
        ("D2", ("J1", "J2", "J3", "H1", "H2", "H3")),
        ("F1", ()),
    ],
)
def test_each_school_type_allows_its_grades(school_type: str, expected: tuple[str, ...]) -> None:
    assert grades_for_school_type(school_type) == expected


def test_every_school_type_has_a_grade_mapping() -> None:
    for school_type in SCHOOL_TYPES:
        assert set(grades_for_school_type(school_type)) <= set(GRADES)


def test_grade_must_belong_to_the_school_type() -> None:
    assert validate_grade_code("ｐ３", school_type="B1") == "P3"
    with pytest.raises(CodeError) as error:
        validate_grade_code("J1", school_type="B1")
    assert "小学校" in error.value.message
    with pytest.raises(CodeError):
        validate_grade_code("P7")
