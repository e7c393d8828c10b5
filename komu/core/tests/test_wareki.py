"""和暦, 年度 and strict date parsing (docs/domain.md §1, §7.11)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from komu.core.text import TextError
from komu.core.wareki import (
    fiscal_year_bounds,
    fiscal_year_of,
    fiscal_year_title,
    parse_date_strict,
    parse_excel_cell_date,
    to_wareki,
)


@pytest.mark.parametrize(
    ("day", "long", "short"),
    [
        (dt.date(2026, 4, 1), "令和8年4月1日", "R8.4.1"),
        (dt.date(2019, 5, 1), "令和元年5月1日", "R1.5.1"),
        (dt.date(2019, 4, 30), "平成31年4月30日", "H31.4.30"),
        (dt.date(1989, 1, 8), "平成元年1月8日", "H1.1.8"),
        (dt.date(1989, 1, 7), "昭和64年1月7日", "S64.1.7"),
        (dt.date(1926, 12, 25), "昭和元年12月25日", "S1.12.25"),
        (dt.date(1926, 12, 24), "大正15年12月24日", "T15.12.24"),
        (dt.date(1912, 7, 30), "大正元年7月30日", "T1.7.30"),
        (dt.date(1912, 7, 29), "明治45年7月29日", "M45.7.29"),
        (dt.date(1873, 1, 1), "明治6年1月1日", "M6.1.1"),
    ],
)
def test_dates_are_written_in_wareki_with_gannen_for_the_first_year(
    day: dt.date, long: str, short: str
) -> None:
    assert to_wareki(day) == long
    assert to_wareki(day, style="short") == short


def test_dates_of_the_lunisolar_calendar_are_refused() -> None:
    with pytest.raises(TextError):
        to_wareki(dt.date(1872, 12, 31))


@pytest.mark.parametrize(
    ("day", "year"),
    [(dt.date(2026, 3, 31), 2025), (dt.date(2026, 4, 1), 2026), (dt.date(2026, 12, 31), 2026)],
)
def test_the_school_year_runs_from_april_to_march(day: dt.date, year: int) -> None:
    assert fiscal_year_of(day) == year


def test_school_year_bounds_and_titles() -> None:
    assert fiscal_year_bounds(2026) == (dt.date(2026, 4, 1), dt.date(2027, 3, 31))
    assert fiscal_year_title(2026) == "2026年度"
    assert fiscal_year_title(2026, wareki=True) == "令和8年度"
    assert fiscal_year_title(2019, wareki=True) == "令和元年度"
    assert fiscal_year_title(1989, wareki=True) == "平成元年度"
    assert fiscal_year_title(1988, wareki=True) == "昭和63年度"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-04-01", dt.date(2026, 4, 1)),
        ("2026/4/1", dt.date(2026, 4, 1)),
        ("2026.4.1", dt.date(2026, 4, 1)),
        ("2026/4/1 0:00", dt.date(2026, 4, 1)),
        ("2026年4月1日", dt.date(2026, 4, 1)),
        ("令和7年4月1日", dt.date(2025, 4, 1)),
        ("令和元年5月1日", dt.date(2019, 5, 1)),
        ("令和 8年 4月 1日", dt.date(2026, 4, 1)),
        ("R7.4.1", dt.date(2025, 4, 1)),
        ("r7.4.1", dt.date(2025, 4, 1)),
        ("H31.4.30", dt.date(2019, 4, 30)),
        ("S64.1.7", dt.date(1989, 1, 7)),
        ("２０２６／４／１", dt.date(2026, 4, 1)),  # full-width
        ("２０２６ー０４ー０１", dt.date(2026, 4, 1)),  # IME long mark for hyphen
        ("㋿8年4月1日", dt.date(2026, 4, 1)),  # the one-character 令和
        ("平成元年1月8日", dt.date(1989, 1, 8)),
    ],
)
def test_unambiguous_date_forms_are_accepted(raw: str, expected: dt.date) -> None:
    assert parse_date_strict(raw) == expected


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("平成31年5月1日", "date_outside_era"),  # 平成 ended 2019-04-30
        ("令和1年4月30日", "date_outside_era"),  # 令和 began 2019-05-01
        ("昭和64年1月8日", "date_outside_era"),
        ("H32.1.1", "date_outside_era"),
        ("令和0年5月1日", "date_impossible"),
        ("2026-02-30", "date_impossible"),
        ("2026-13-01", "date_impossible"),
        ("45383", "date_excel_serial"),  # Excel serial for 2024-04-01
        ("45383.5", "date_excel_serial"),
        ("1-2", "date_no_year"),  # what Excel turns into 2 January
        ("4/1", "date_no_year"),
        ("1.23E+11", "date_exponent"),
        ("26/4/1", "date_short_year"),
        ("26-04-01", "date_short_year"),
        ("20260401", "date_unrecognised"),
        ("2026-4/1", "date_unrecognised"),
        ("来週", "date_unrecognised"),
        ("", "date_empty"),
        ("1899-12-31", "date_out_of_range"),
        ("明治5年1月1日", "date_outside_era"),  # lunisolar calendar
    ],
)
def test_damaged_or_ambiguous_dates_are_rejected_rather_than_guessed(raw: str, code: str) -> None:
    with pytest.raises(TextError) as error:
        parse_date_strict(raw)
    assert error.value.code == code
    assert error.value.message  # Japanese, says what to do


def test_era_range_error_names_the_era_bounds() -> None:
    with pytest.raises(TextError) as error:
        parse_date_strict("平成31年5月1日")
    assert "2019年4月30日" in error.value.message


def test_serial_number_message_says_to_format_the_column_as_text() -> None:
    with pytest.raises(TextError) as error:
        parse_date_strict("45383")
    assert "文字列" in error.value.message


def test_date_range_is_configurable() -> None:
    with pytest.raises(TextError):
        parse_date_strict("2030-01-01", latest=dt.date(2027, 3, 31))


def test_control_characters_in_a_date_are_rejected() -> None:
    with pytest.raises(TextError) as error:
        parse_date_strict("2026-04-01\u200b")
    assert error.value.code == "control_char"


@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 12, 31)))
def test_every_written_form_parses_back_to_the_same_date(day: dt.date) -> None:
    assert parse_date_strict(to_wareki(day)) == day
    assert parse_date_strict(to_wareki(day, style="short")) == day
    assert parse_date_strict(day.isoformat()) == day
    assert parse_date_strict(f"{day.year}/{day.month}/{day.day}") == day


@given(st.dates(min_value=dt.date(1873, 1, 1), max_value=dt.date(2100, 12, 31)))
def test_fiscal_year_contains_the_date(day: dt.date) -> None:
    start, end = fiscal_year_bounds(fiscal_year_of(day))
    assert start <= day <= end


# --- spreadsheet cells -------------------------------------------


def test_excel_date_cells_are_accepted() -> None:
    assert parse_excel_cell_date(dt.datetime(2026, 4, 1)) == dt.date(2026, 4, 1)
    assert parse_excel_cell_date(dt.date(2026, 4, 1)) == dt.date(2026, 4, 1)
    assert parse_excel_cell_date("令和8年4月1日") == dt.date(2026, 4, 1)


@pytest.mark.parametrize("value", [45383, 45383.0, 1.23e11])
def test_numbers_in_a_date_cell_are_rejected_with_a_formatting_hint(value: float) -> None:
    with pytest.raises(TextError) as error:
        parse_excel_cell_date(value)
    assert error.value.code == "date_excel_serial"
    assert "書式" in error.value.message


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (dt.datetime(2026, 4, 1, 9, 30), "date_has_time"),
        (True, "date_type"),
        (None, "date_empty"),
        (dt.time(9), "date_type"),
    ],
)
def test_other_cell_values_are_rejected(value: object, code: str) -> None:
    with pytest.raises(TextError) as error:
        parse_excel_cell_date(value)
    assert error.value.code == code
