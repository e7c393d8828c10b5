"""和暦 (Japanese era dates), the school year (年度) and strict date parsing.

Official school documents write dates in 和暦 (令和8年4月1日; the first year of an era is 元年).
Imported dates come from spreadsheets that have often been damaged by Excel (serial numbers, "1-2" turned
into a date, two-digit years), so :func:`parse_date_strict` accepts a fixed set of unambiguous forms and
rejects everything else with a Japanese message that says how to fix the cell (docs/domain.md §7.11).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from typing import Final, Literal

from komu.core.text import HYPHEN_LOOKALIKES, TextError, reject_control_chars

__all__ = [
    "ERAS",
    "Era",
    "era_of",
    "fiscal_year_bounds",
    "fiscal_year_of",
    "fiscal_year_title",
    "parse_date_strict",
    "parse_excel_cell_date",
    "to_wareki",
]


@dataclass(frozen=True, slots=True)
class Era:
    name: str  # 令和
    letter: str  # R, as in R8.4.1
    start: dt.date  # first day of 元年
    end: dt.date | None  # last day, None for the current era

    def year_of(self, day: dt.date) -> int:
        return day.year - self.start.year + 1


# Dates from MEXT/official proclamations. Before 1873-01-01 (明治6年) Japan used a lunisolar calendar, so a
# Gregorian date cannot be written as 明治N年M月D日 by arithmetic; we support 明治 only from then on.
MEIJI_SOLAR_CALENDAR_START: Final = dt.date(1873, 1, 1)
ERAS: Final = (
    Era("明治", "M", dt.date(1868, 1, 25), dt.date(1912, 7, 29)),
    Era("大正", "T", dt.date(1912, 7, 30), dt.date(1926, 12, 24)),
    Era("昭和", "S", dt.date(1926, 12, 25), dt.date(1989, 1, 7)),
    Era("平成", "H", dt.date(1989, 1, 8), dt.date(2019, 4, 30)),
    Era("令和", "R", dt.date(2019, 5, 1), None),
)
_ERA_BY_NAME: Final = {era.name: era for era in ERAS}
_ERA_BY_LETTER: Final = {era.letter: era for era in ERAS}


def _jp(day: dt.date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def era_of(day: dt.date) -> Era:
    """The era in effect on ``day``; :class:`TextError` before 1873 (lunisolar calendar)."""
    if day < MEIJI_SOLAR_CALENDAR_START:
        raise TextError(
            f"{_jp(day)}より前（太陰暦の時代）の日付は和暦に変換できません。", code="wareki_out_of_range"
        )
    for era in reversed(ERAS):
        if day >= era.start:
            return era
    raise AssertionError("unreachable: ERAS covers every date from 1873")  # pragma: no cover


def _era_year_text(year: int) -> str:
    return "元" if year == 1 else str(year)


def to_wareki(day: dt.date, *, style: Literal["long", "short"] = "long") -> str:
    """``令和8年4月1日`` (long, 元年 for the first year) or ``R8.4.1`` (short)."""
    era = era_of(day)
    year = era.year_of(day)
    if style == "short":
        return f"{era.letter}{year}.{day.month}.{day.day}"
    return f"{era.name}{_era_year_text(year)}年{day.month}月{day.day}日"


# --- 年度 ----------------------------------------------------------


def fiscal_year_of(day: dt.date) -> int:
    """The school/fiscal year (年度) containing ``day``: April–March, named by the year it starts in."""
    return day.year if day.month >= 4 else day.year - 1


def fiscal_year_bounds(year: int) -> tuple[dt.date, dt.date]:
    """First and last day of 年度 ``year``: (year-04-01, year+1-03-31)."""
    return dt.date(year, 4, 1), dt.date(year + 1, 3, 31)


def fiscal_year_title(year: int, wareki: bool = False) -> str:
    """``2026年度`` or ``令和8年度``.

    In 和暦 the year is named as the calendar year it starts in is named after any era change in that year,
    so 2019年度 is 令和元年度 (MEXT's usage; documents issued before 2019-05-01 said 平成31年度) and 1989年度
    is 平成元年度.
    """
    if not wareki:
        return f"{year}年度"
    era = era_of(dt.date(year, 12, 31))
    return f"{era.name}{_era_year_text(era.year_of(dt.date(year, 12, 31)))}年度"


# --- strict parsing ----------------------------------------------

DEFAULT_EARLIEST: Final = dt.date(1900, 1, 1)
DEFAULT_LATEST: Final = dt.date(2100, 12, 31)

_HYPHEN_TABLE: Final = str.maketrans(dict.fromkeys(HYPHEN_LOOKALIKES, "-"))
_ACCEPTED = "2026-04-01、2026/4/1、2026年4月1日、令和8年4月1日、R8.4.1 のいずれかの形式で入力してください。"
_COLUMN_AS_TEXT = "Excelで列の書式を「文字列」（または「日付」）にしてから入力し直してください。"

_ISO = re.compile(r"(\d{4})([-/.])(\d{1,2})\2(\d{1,2})(?:\s+0{1,2}:00(?::00)?)?")
_KANJI = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")
_ERA_KANJI = re.compile(r"(明治|大正|昭和|平成|令和)\s*(元|\d{1,2})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")
_ERA_LETTER = re.compile(r"([MTSHR])\s*(元|\d{1,2})([-/.])(\d{1,2})\3(\d{1,2})")
_EXPONENT = re.compile(r"[+-]?\d+(?:\.\d+)?E[+-]?\d+")
_SERIAL = re.compile(r"\d{1,6}(?:\.\d+)?")
_COMPACT = re.compile(r"\d{8}")
_MONTH_DAY = re.compile(r"\d{1,2}[-/]\d{1,2}")
_SHORT_YEAR = re.compile(r"\d{1,3}[-/.]\d{1,2}[-/.]\d{1,2}")


def _make_date(year: int, month: int, day: int, original: str) -> dt.date:
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise TextError(
            f"「{original}」は存在しない日付です。年月日を確認してください。", code="date_impossible"
        ) from None


def _era_date(era: Era, era_year: str, month: int, day: int, original: str) -> dt.date:
    year = 1 if era_year == "元" else int(era_year)
    if year < 1:
        raise TextError(
            f"「{original}」は存在しない日付です。{era.name}は元年から始まります。", code="date_impossible"
        )
    result = _make_date(era.start.year + year - 1, month, day, original)
    if result < era.start or (era.end is not None and result > era.end):
        until = f"{_jp(era.end)}まで" if era.end is not None else ""
        raise TextError(
            f"「{original}」は{era.name}の期間外です（{era.name}は{_jp(era.start)}から{until}）。"
            "元号と年を確認してください。",
            code="date_outside_era",
        )
    if result < MEIJI_SOLAR_CALENDAR_START:
        raise TextError(
            f"「{original}」は太陰暦の時代の日付のため変換できません。西暦で入力してください。",
            code="date_outside_era",
        )
    return result


def _parse_forms(s: str, original: str) -> dt.date | None:
    if m := _ISO.fullmatch(s):
        return _make_date(int(m.group(1)), int(m.group(3)), int(m.group(4)), original)
    if m := _KANJI.fullmatch(s):
        return _make_date(int(m.group(1)), int(m.group(2)), int(m.group(3)), original)
    if m := _ERA_KANJI.fullmatch(s):
        return _era_date(_ERA_BY_NAME[m.group(1)], m.group(2), int(m.group(3)), int(m.group(4)), original)
    if m := _ERA_LETTER.fullmatch(s):
        return _era_date(_ERA_BY_LETTER[m.group(1)], m.group(2), int(m.group(4)), int(m.group(5)), original)
    return None


def _reject_excel_damage(s: str, original: str) -> None:
    """Name the Excel damage we recognise, so the message says how to repair it."""
    if _EXPONENT.fullmatch(s):
        raise TextError(
            f"「{original}」は指数表記の数値（例: 1.23E+11）で、日付ではありません。{_COLUMN_AS_TEXT}",
            code="date_exponent",
        )
    if _COMPACT.fullmatch(s):
        raise TextError(
            f"「{original}」は区切りのない数字です。{_ACCEPTED}",
            code="date_unrecognised",
        )
    if _SERIAL.fullmatch(s):
        raise TextError(
            f"「{original}」はExcelの日付シリアル値（数値）のようです。{_COLUMN_AS_TEXT}",
            code="date_excel_serial",
        )
    if _MONTH_DAY.fullmatch(s):
        raise TextError(
            f"「{original}」には年がありません（「1-2」のような値はExcelが日付に変えてしまうことがあります）。"
            f"{_ACCEPTED}",
            code="date_no_year",
        )
    if _SHORT_YEAR.fullmatch(s):
        raise TextError(
            f"「{original}」の年が4桁ではありません。西暦は4桁で入力してください（例: 2026/4/1）。",
            code="date_short_year",
        )


def parse_date_strict(
    s: str,
    *,
    field: str = "日付",
    earliest: dt.date = DEFAULT_EARLIEST,
    latest: dt.date = DEFAULT_LATEST,
) -> dt.date:
    """Parse one of the unambiguous date forms or raise :class:`TextError`.

    Accepted (after NFKC, so full-width digits and ㋿ work): 2026-04-01, 2026/4/1, 2026.4.1 (same separator
    twice, optionally followed by a midnight time 0:00), 2026年4月1日, 令和8年4月1日, 令和元年5月1日, R8.4.1,
    H31.4.30. Era dates must fall inside the era (平成31年5月1日 and 令和1年4月30日 do not exist).
    """
    reject_control_chars(s, field)
    original = s.strip()
    normalized = unicodedata.normalize("NFKC", s).translate(_HYPHEN_TABLE).strip().upper()
    if not normalized:
        raise TextError(f"{field}が入力されていません。", code="date_empty")
    result = _parse_forms(normalized, original)
    if result is None:
        _reject_excel_damage(normalized, original)
        raise TextError(f"「{original}」は日付として読み取れません。{_ACCEPTED}", code="date_unrecognised")
    if not earliest <= result <= latest:
        raise TextError(
            f"「{original}」は範囲外の日付です（{_jp(earliest)}から{_jp(latest)}まで）。年を確認してください。",
            code="date_out_of_range",
        )
    return result


def parse_excel_cell_date(
    value: object,
    *,
    field: str = "日付",
    earliest: dt.date = DEFAULT_EARLIEST,
    latest: dt.date = DEFAULT_LATEST,
) -> dt.date:
    """A date from an openpyxl cell value (``data_only=True``).

    Date cells arrive as ``datetime`` at midnight. Numbers are rejected: they are serial dates whose meaning
    depends on the workbook's epoch, or damaged codes, and we will not guess. Text goes through
    :func:`parse_date_strict`.
    """
    if isinstance(value, dt.datetime):
        if value.time() != dt.time(0, 0):
            raise TextError(
                f"{field}に時刻が含まれています（{value:%Y-%m-%d %H:%M}）。日付だけを入力してください。",
                code="date_has_time",
            )
        result = value.date()
    elif isinstance(value, dt.date):
        result = value
    elif isinstance(value, str):
        return parse_date_strict(value, field=field, earliest=earliest, latest=latest)
    elif isinstance(value, bool):  # before int: bool is an int
        raise TextError(
            f"{field}に TRUE/FALSE が入力されています。日付を入力してください。", code="date_type"
        )
    elif isinstance(value, int | float):
        raise TextError(
            f"{field}が数値（{value}）になっています。Excelの日付シリアル値の可能性があります。{_COLUMN_AS_TEXT}",
            code="date_excel_serial",
        )
    elif value is None:
        raise TextError(f"{field}が入力されていません。", code="date_empty")
    else:
        raise TextError(f"{field}を日付として読み取れません。{_ACCEPTED}", code="date_type")
    if not earliest <= result <= latest:
        raise TextError(
            f"{field}（{_jp(result)}）は範囲外の日付です（{_jp(earliest)}から{_jp(latest)}まで）。",
            code="date_out_of_range",
        )
    return result
