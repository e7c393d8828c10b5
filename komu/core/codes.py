"""Official codes: JIS prefecture codes, 学校コード, 教育委員会コード and MEXT grade codes.

Sources: docs/domain.md §1 (MEXT 教育データ標準 学校コード, 2020-12; check digit per MEXT PDF
20210128-mxt_chousa01-000011635_01.pdf) and §8 (OneRoster Japan Profile grade codes). Items the domain
notes mark as unconfirmed are module-level tables or keyword arguments, so a correction is data, not code.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from django.utils.translation import gettext, gettext_noop

from komu.core.text import TextError

__all__ = [
    "ESTABLISHMENTS",
    "GRADES",
    "GRADES_BY_SCHOOL_TYPE",
    "PREFECTURAL_BOARD_NUMBER",
    "PREFECTURES",
    "SCHOOL_TYPES",
    "BoardCode",
    "CodeError",
    "SchoolCode",
    "grade_display",
    "grade_label",
    "grades_for_school_type",
    "is_prefectural_board_code",
    "make_school_code",
    "prefecture_name",
    "school_code_check_digit",
    "validate_board_code",
    "validate_grade_code",
    "validate_school_code",
]


class CodeError(TextError):
    """A code is malformed; the Japanese message names the part that is wrong."""


def _clean(code: str) -> str:
    # Codes are typed with full-width characters and lower-case letters often enough to normalise here.
    return unicodedata.normalize("NFKC", code).strip().upper()


# --- prefectures (JIS X 0401) ------------------------------------

PREFECTURES: Final[tuple[tuple[str, str], ...]] = (
    ("01", "北海道"),
    ("02", "青森県"),
    ("03", "岩手県"),
    ("04", "宮城県"),
    ("05", "秋田県"),
    ("06", "山形県"),
    ("07", "福島県"),
    ("08", "茨城県"),
    ("09", "栃木県"),
    ("10", "群馬県"),
    ("11", "埼玉県"),
    ("12", "千葉県"),
    ("13", "東京都"),
    ("14", "神奈川県"),
    ("15", "新潟県"),
    ("16", "富山県"),
    ("17", "石川県"),
    ("18", "福井県"),
    ("19", "山梨県"),
    ("20", "長野県"),
    ("21", "岐阜県"),
    ("22", "静岡県"),
    ("23", "愛知県"),
    ("24", "三重県"),
    ("25", "滋賀県"),
    ("26", "京都府"),
    ("27", "大阪府"),
    ("28", "兵庫県"),
    ("29", "奈良県"),
    ("30", "和歌山県"),
    ("31", "鳥取県"),
    ("32", "島根県"),
    ("33", "岡山県"),
    ("34", "広島県"),
    ("35", "山口県"),
    ("36", "徳島県"),
    ("37", "香川県"),
    ("38", "愛媛県"),
    ("39", "高知県"),
    ("40", "福岡県"),
    ("41", "佐賀県"),
    ("42", "長崎県"),
    ("43", "熊本県"),
    ("44", "大分県"),
    ("45", "宮崎県"),
    ("46", "鹿児島県"),
    ("47", "沖縄県"),
)
_PREFECTURE_NAMES: Final = dict(PREFECTURES)


def _check_prefecture(code: str, what: str) -> None:
    if code not in _PREFECTURE_NAMES:
        prefix = f"{what}の" if what else ""
        raise CodeError(
            f"{prefix}都道府県コード「{code}」は存在しません。01〜47の2桁で入力してください。",
            code="prefecture",
        )


def prefecture_name(code: str) -> str:
    """``"13"`` → ``"東京都"``; :class:`CodeError` for anything but 01–47."""
    cleaned = _clean(code)
    _check_prefecture(cleaned, "")
    return _PREFECTURE_NAMES[cleaned]


# --- 学校コード -------------------------------------------------------

SCHOOL_TYPES: Final[Mapping[str, str]] = {
    "A1": "幼稚園",
    "A2": "幼保連携型認定こども園",
    "B1": "小学校",
    "C1": "中学校",
    "C2": "義務教育学校",
    "D1": "高等学校",
    "D2": "中等教育学校",
    "E1": "特別支援学校",
    "F1": "大学",
    "F2": "短期大学",
    "G1": "高等専門学校",
}

# 設置区分. Only 2 (公立) is confirmed against MEXT's list; 1 and 3 follow the usual order (domain.md §1) —
# pass ``establishments=`` to the validators to override.
ESTABLISHMENTS: Final[Mapping[str, str]] = {"1": "国立", "2": "公立", "3": "私立"}

SCHOOL_CODE_LENGTH: Final = 13
_CHECK_LETTERS: Final = "ABCDEFGH"  # A→"01" … H→"08", per the MEXT check-digit rule


@dataclass(frozen=True, slots=True)
class SchoolCode:
    """A validated 学校コード, split into its parts."""

    school_type: str  # B1
    prefecture_code: str  # 13
    establishment: str  # 2
    number: str  # 7 digits

    @property
    def code(self) -> str:
        first12 = f"{self.school_type}{self.prefecture_code}{self.establishment}{self.number}"
        return first12 + school_code_check_digit(first12)

    @property
    def school_type_label(self) -> str:
        return SCHOOL_TYPES[self.school_type]

    @property
    def prefecture_name(self) -> str:
        return _PREFECTURE_NAMES[self.prefecture_code]

    def __str__(self) -> str:
        return self.code


def school_code_check_digit(first12: str) -> str:
    """The 13th character of a 学校コード.

    MEXT's rule: the leading letter A–H becomes "01"–"08", giving 13 digits; weight them ×1, ×2, ×1, …
    from the left; add the digit sums of the products; check = (10 − sum mod 10) mod 10.
    F11231010234 → 0611231010234 → 28 → "2".
    """
    if (
        len(first12) != 12
        or first12[0] not in _CHECK_LETTERS
        or not first12[1:].isascii()
        or not first12[1:].isdigit()
    ):
        raise CodeError(
            "チェックディジットの計算には、英字（A〜H）1文字と数字11桁が必要です。", code="school_code_format"
        )
    digits = f"{_CHECK_LETTERS.index(first12[0]) + 1:02d}{first12[1:]}"
    total = 0
    for position, char in enumerate(digits):
        product = int(char) * (1 if position % 2 == 0 else 2)
        total += product // 10 + product % 10
    return str((10 - total % 10) % 10)


def validate_school_code(code: str, *, establishments: Mapping[str, str] = ESTABLISHMENTS) -> SchoolCode:
    """Validate a 学校コード (NFKC and upper-case first, so ｆ１１２… works) or raise :class:`CodeError`."""
    cleaned = _clean(code)
    if len(cleaned) != SCHOOL_CODE_LENGTH:
        raise CodeError(
            f"学校コードは{SCHOOL_CODE_LENGTH}桁です（入力は{len(cleaned)}桁）。", code="school_code_length"
        )
    school_type, prefecture, establishment, number, check = (
        cleaned[:2],
        cleaned[2:4],
        cleaned[4],
        cleaned[5:12],
        cleaned[12],
    )
    if school_type not in SCHOOL_TYPES:
        raise CodeError(
            f"学校コードの学校種別「{school_type}」は存在しません（{'、'.join(SCHOOL_TYPES)}）。",
            code="school_type",
        )
    if not (cleaned[2:].isascii() and cleaned[2:].isdigit()):
        raise CodeError("学校コードの3桁目以降は数字で入力してください。", code="school_code_format")
    _check_prefecture(prefecture, "学校コード")
    if establishment not in establishments:
        choices = "、".join(f"{k} {v}" for k, v in establishments.items())
        raise CodeError(
            f"学校コードの設置区分「{establishment}」は存在しません（{choices}）。", code="establishment"
        )
    expected = school_code_check_digit(cleaned[:12])
    if check != expected:
        raise CodeError(
            f"学校コードのチェックディジット（末尾の1桁）が一致しません。末尾は「{expected}」になるはずです。"
            "学校コードを確認してください。",
            code="school_code_check_digit",
        )
    return SchoolCode(school_type, prefecture, establishment, number)


def make_school_code(
    school_type: str,
    prefecture: str,
    establishment: str,
    number: str,
    *,
    establishments: Mapping[str, str] = ESTABLISHMENTS,
) -> str:
    """Assemble a 学校コード from its parts and append the check digit (validating each part)."""
    cleaned_number = _clean(number)
    if len(cleaned_number) != 7 or not (cleaned_number.isascii() and cleaned_number.isdigit()):
        raise CodeError("学校番号は7桁の数字で入力してください。", code="school_code_format")
    first12 = f"{_clean(school_type)}{_clean(prefecture)}{_clean(establishment)}{cleaned_number}"
    if len(first12) != 12:
        raise CodeError(
            "学校種別2文字・都道府県2桁・設置区分1桁で入力してください。", code="school_code_format"
        )
    code = first12 + school_code_check_digit(first12)
    validate_school_code(code, establishments=establishments)
    return code


# --- 教育委員会コード ----------------------------------------------------

# The prefectural board's number within its prefecture (北海道教育委員会 = 01 + 1000). Convention observed in
# MEXT's list, not a rule we have seen written down: treat as configurable.
PREFECTURAL_BOARD_NUMBER: Final = "1000"


@dataclass(frozen=True, slots=True)
class BoardCode:
    """A validated 教育委員会コード: prefecture (2) + board number (4)."""

    prefecture_code: str
    number: str

    @property
    def code(self) -> str:
        return f"{self.prefecture_code}{self.number}"

    @property
    def prefecture_name(self) -> str:
        return _PREFECTURE_NAMES[self.prefecture_code]

    def __str__(self) -> str:
        return self.code


def validate_board_code(code: str) -> BoardCode:
    """Validate a 6-digit 教育委員会コード (e.g. 011000) or raise :class:`CodeError`."""
    cleaned = _clean(code)
    if len(cleaned) != 6 or not (cleaned.isascii() and cleaned.isdigit()):
        raise CodeError(f"教育委員会コードは6桁の数字です（入力は「{cleaned}」）。", code="board_code_format")
    _check_prefecture(cleaned[:2], "教育委員会コード")
    return BoardCode(cleaned[:2], cleaned[2:])


def is_prefectural_board_code(code: str, *, prefectural_number: str = PREFECTURAL_BOARD_NUMBER) -> bool:
    """True for a prefecture's own board (XX1000 by convention; see :data:`PREFECTURAL_BOARD_NUMBER`)."""
    return validate_board_code(code).number == prefectural_number


# --- MEXT grade codes (OneRoster Japan Profile `grades`) ---------

# The Japanese labels are data as well as text: OneRoster course titles, API payloads and import files carry them
# exactly as written here, whatever the screen's language. Screens show grade_display instead. Each label is
# written out and marked with gettext_noop so makemessages extracts it (it cannot read an f-string).
GRADES: Final[Mapping[str, str]] = {
    "P1": gettext_noop("小学1年"),
    "P2": gettext_noop("小学2年"),
    "P3": gettext_noop("小学3年"),
    "P4": gettext_noop("小学4年"),
    "P5": gettext_noop("小学5年"),
    "P6": gettext_noop("小学6年"),
    "J1": gettext_noop("中学1年"),
    "J2": gettext_noop("中学2年"),
    "J3": gettext_noop("中学3年"),
    "H1": gettext_noop("高校1年"),
    "H2": gettext_noop("高校2年"),
    "H3": gettext_noop("高校3年"),
    # E1–E3 are listed by the Japan Profile; read here as the kindergarten years (3–5歳児) — unconfirmed.
    "E1": gettext_noop("幼稚園1年（3歳児）"),
    "E2": gettext_noop("幼稚園2年（4歳児）"),
    "E3": gettext_noop("幼稚園3年（5歳児）"),
}

_PRIMARY: Final = tuple(f"P{n}" for n in range(1, 7))
_LOWER_SECONDARY: Final = tuple(f"J{n}" for n in range(1, 4))
_UPPER_SECONDARY: Final = tuple(f"H{n}" for n in range(1, 4))
_EARLY: Final = tuple(f"E{n}" for n in range(1, 4))

# Which grade codes a school of each type may use. 義務教育学校 years 1–9 and 中等教育学校 years 1–6 map onto
# P/J and J/H; 特別支援学校 has 幼稚部・小学部・中学部・高等部. Higher education has no MEXT grade codes.
# 定時制 high schools have a 4th year that the code list cannot express (H1–H3 only).
GRADES_BY_SCHOOL_TYPE: Final[Mapping[str, tuple[str, ...]]] = {
    "A1": _EARLY,
    "A2": _EARLY,
    "B1": _PRIMARY,
    "C1": _LOWER_SECONDARY,
    "C2": _PRIMARY + _LOWER_SECONDARY,
    "D1": _UPPER_SECONDARY,
    "D2": _LOWER_SECONDARY + _UPPER_SECONDARY,
    "E1": _EARLY + _PRIMARY + _LOWER_SECONDARY + _UPPER_SECONDARY,
    "F1": (),
    "F2": (),
    "G1": (),
}


def grade_label(code: str) -> str:
    """``"P1"`` → ``"小学1年"``, always in Japanese: the data form (files, OneRoster, the API)."""
    return GRADES[validate_grade_code(code)]


def grade_display(code: str) -> str:
    """The grade's label in the screen's language (``"P1"`` → ``"小学1年"``, English on English screens).

    For pages only; what is written to files, OneRoster and the API uses :func:`grade_label`. A value that is
    not a grade code (e.g. a blank grade on a transfer record) is shown as it is.
    """
    label = GRADES.get(_clean(code))
    return gettext(label) if label is not None else code


def grades_for_school_type(school_type: str) -> tuple[str, ...]:
    """Grade codes allowed at a school type (B1 → P1–P6)."""
    cleaned = _clean(school_type)
    if cleaned not in GRADES_BY_SCHOOL_TYPE:
        raise CodeError(
            f"学校種別「{cleaned}」は存在しません（{'、'.join(SCHOOL_TYPES)}）。", code="school_type"
        )
    return GRADES_BY_SCHOOL_TYPE[cleaned]


def validate_grade_code(code: str, *, school_type: str | None = None) -> str:
    """Return the normalised grade code, checking it exists and, if given, that the school type has it."""
    cleaned = _clean(code)
    if cleaned not in GRADES:
        raise CodeError(
            f"学年コード「{cleaned}」は存在しません（P1〜P6、J1〜J3、H1〜H3、E1〜E3）。", code="grade"
        )
    if school_type is not None and cleaned not in grades_for_school_type(school_type):
        label = SCHOOL_TYPES[_clean(school_type)]
        raise CodeError(f"学年コード「{cleaned}」は{label}では使えません。", code="grade_for_school_type")
    return cleaned
