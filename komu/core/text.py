"""Japanese text handling: kana readings, kanji names, phones, postal codes, search keys.

The rules come from docs/domain.md §2 (Names) and §7 (bad inputs):

- Kanji names are stored exactly as entered. NFC/NFKC would silently rewrite compatibility ideographs
  (神 U+FA19 → U+795E) and break variation sequences; the registered spelling is not ours to change.
- Kana readings, IDs, phones and postal codes *are* normalised (NFKC), because they are typed on many
  keyboards/IMEs in full-width or half-width forms and must compare equal afterwards.
- Invisible control/format characters are rejected everywhere: they make two identical-looking values differ
  (U+200B) or reorder what the reader sees (U+202E).

Every rejection raises :class:`TextError`, a ``ValueError`` whose Japanese message tells the user what to do.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final

from komu.core.errors import KomuError

__all__ = [
    "HYPHEN_LOOKALIKES",
    "NameCheck",
    "TextError",
    "check_name",
    "cp932_unencodable",
    "describe_char",
    "is_valid_kana",
    "normalize_digits",
    "normalize_kana",
    "normalize_phone",
    "normalize_postal_code",
    "phone_digits",
    "reject_control_chars",
    "search_key",
    "to_katakana",
]


class TextError(KomuError, ValueError):
    """A value was rejected; ``message`` is Japanese and says what to do.

    ``code`` is a stable machine-readable reason (for tests and for grouping import errors);
    ``char`` is the offending character when there is one.
    """

    def __init__(self, message: str, *, code: str, char: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.char = char

    def __str__(self) -> str:
        return self.message


def describe_char(c: str) -> str:
    """「X」（U+XXXX） for visible characters, （U+XXXX） for invisible ones, so the user can find it."""
    code = f"U+{ord(c):04X}"
    if unicodedata.category(c)[0] in "CZM":
        return f"（{code}）"
    return f"「{c}」（{code}）"


# --- control and format characters -------------------------------

# Cc (C0/C1 controls incl. NUL), Cf (format: U+200B..U+200F, U+202A..U+202E, U+2066..U+2069, U+FEFF, U+00AD,
# tag characters …), Cs (lone surrogates, which only appear after a lossy decode) and the line/paragraph
# separators. Variation selectors (U+FE00–FE0F, U+E0100–E01EF) are Mn, not Cf, so they pass: they are part of
# a name's registered glyph (葛 + U+E0100).
_REJECTED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def reject_control_chars(s: str, field: str | None = None, *, allow: str = "") -> str:
    """Raise :class:`TextError` if ``s`` holds a control/format character; return ``s`` unchanged.

    ``allow`` lists characters the caller accepts (e.g. ``"\\n\\r"`` for a multi-line note).
    """
    for c in s:
        if c in allow:
            continue
        category = unicodedata.category(c)
        if category in _REJECTED_CATEGORIES:
            prefix = f"{field}に" if field else ""
            if c in "\r\n":
                message = f"{prefix}改行が含まれています。改行を削除して1行で入力してください。"
            elif category == "Cs":
                message = (
                    f"{prefix}不正な文字（U+{ord(c):04X}）が含まれています。"
                    "ファイルの文字コードを確認してください。"
                )
            else:
                message = (
                    f"{prefix}制御文字（U+{ord(c):04X}）が含まれています。削除してから再度入力してください。"
                )
            raise TextError(message, code="control_char", char=c)
    return s


# --- kana --------------------------------------------------------

# Hiragana ぁ..ゖ → ァ..ヶ is a fixed offset; ゝゞ are the hiragana iteration marks.
_HIRAGANA_TO_KATAKANA: Final = {cp: cp + 0x60 for cp in range(0x3041, 0x3097)} | {
    0x309D: 0x30FD,
    0x309E: 0x30FE,
}

_KANA_ALLOWED_RANGES: Final = (
    (0x30A1, 0x30FA),  # ァ..ヺ incl. ヴ ヵ ヶ ヷ..ヺ
    (0x30FB, 0x30FE),  # ・ ー ヽ ヾ
    (0x31F0, 0x31FF),  # small katakana extension (ㇰ … used in Ainu names)
)
_WHITESPACE_RUN: Final = re.compile(r"\s+")
DEFAULT_KANA_MAX_LENGTH: Final = 100


def to_katakana(s: str) -> str:
    """Hiragana → katakana; everything else unchanged."""
    return s.translate(_HIRAGANA_TO_KATAKANA)


def _is_kana_char(c: str) -> bool:
    cp = ord(c)
    return c == " " or any(lo <= cp <= hi for lo, hi in _KANA_ALLOWED_RANGES)


def normalize_kana(s: str, *, field: str = "ふりがな", max_length: int = DEFAULT_KANA_MAX_LENGTH) -> str:
    """Return the canonical katakana reading of ``s`` or raise :class:`TextError`.

    NFKC turns half-width ｶﾞ into ガ and also recomposes macOS-decomposed (NFD) kana, so one pass covers
    both; hiragana becomes katakana (the Japan Profile's usual script); runs of whitespace including U+3000
    become one ASCII space. Anything that is still not katakana, ー, ・ or a space is rejected, not guessed.
    """
    reject_control_chars(s, field)
    normalized = unicodedata.normalize("NFKC", s)
    normalized = to_katakana(normalized)
    normalized = _WHITESPACE_RUN.sub(" ", normalized).strip()
    for c in normalized:
        if not _is_kana_char(c):
            raise TextError(
                f"{field}に使えない文字{describe_char(c)}が含まれています。"
                "カタカナ（長音「ー」、中黒「・」、空白を含む）で入力してください。",
                code="not_kana",
                char=c,
            )
    if len(normalized) > max_length:
        raise TextError(
            f"{field}が長すぎます（{len(normalized)}文字）。{max_length}文字以内で入力してください。",
            code="too_long",
        )
    return normalized


def is_valid_kana(s: str) -> bool:
    """True if :func:`normalize_kana` accepts ``s``; ``normalize_kana(s) == s`` tests canonical form."""
    try:
        normalize_kana(s)
    except TextError:
        return False
    return True


# --- kanji names -------------------------------------------------

DEFAULT_NAME_MAX_LENGTH: Final = 100


@dataclass(frozen=True, slots=True)
class NameCheck:
    """Result of :func:`check_name`: the name exactly as given, and whether a person must look at it."""

    value: str
    needs_review: bool
    private_use: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()


def check_name(s: str, *, field: str = "氏名", max_length: int = DEFAULT_NAME_MAX_LENGTH) -> NameCheck:
    """Validate a kanji name without changing it.

    Control/format characters are rejected. Private-use characters (U+E000–F8FF and planes 15/16) come from a
    legacy system's 外字: the real character is unknown, so the name is kept but flagged for review.
    4-byte characters (𠮷) and variation sequences (葛󠄀) are ordinary data.
    """
    reject_control_chars(s, field)
    # Count code points: that is what the database column limits, and a variation selector is one of them.
    if len(s) > max_length:
        raise TextError(
            f"{field}が長すぎます（{len(s)}文字）。{max_length}文字以内で入力してください。", code="too_long"
        )
    private_use = tuple(dict.fromkeys(c for c in s if unicodedata.category(c) == "Co"))
    messages = tuple(
        f"{field}に外字{describe_char(c)}が含まれています。正しい文字を確認して入力し直してください。"
        for c in private_use
    )
    return NameCheck(value=s, needs_review=bool(private_use), private_use=private_use, messages=messages)


# --- digits, phones, postal codes --------------------------------

# Characters that people (or their IMEs and spreadsheets) type where they mean "-". NFKC alone is not enough:
# it leaves U+2010 U+2012–U+2015 U+2212 and the katakana long mark ー as they are.
HYPHEN_LOOKALIKES: Final = (
    "\u2010"  # HYPHEN
    "\u2011"  # NON-BREAKING HYPHEN
    "\u2012"  # FIGURE DASH
    "\u2013"  # EN DASH
    "\u2014"  # EM DASH
    "\u2015"  # HORIZONTAL BAR (CP932 0x815C)
    "\u2212"  # MINUS SIGN
    "\u30fc"  # KATAKANA-HIRAGANA PROLONGED SOUND MARK ー
    "\uff0d"  # FULLWIDTH HYPHEN-MINUS
    "\uff70"  # HALFWIDTH KATAKANA PROLONGED SOUND MARK ｰ
    "\ufe63"  # SMALL HYPHEN-MINUS
)
_HYPHEN_TABLE: Final = str.maketrans(dict.fromkeys(HYPHEN_LOOKALIKES, "-"))


def _fold_hyphens_nfkc(s: str) -> str:
    # Fold before NFKC (ｰ would otherwise become ー) and after (NFKC maps U+2011 to U+2010).
    return unicodedata.normalize("NFKC", s.translate(_HYPHEN_TABLE)).translate(_HYPHEN_TABLE)


def normalize_digits(s: str, field: str | None = None) -> str:
    """NFKC and strip, for IDs and other codes typed with full-width digits/letters (１２３ → 123)."""
    reject_control_chars(s, field)
    return unicodedata.normalize("NFKC", s).strip()


_PHONE_SHAPE: Final = re.compile(r"[0-9]+(?:-[0-9]+)*")


def normalize_phone(s: str, field: str = "電話番号") -> str:
    """Return a Japanese phone number with ASCII digits and hyphens (as the user placed them).

    Accepts full-width digits and hyphen look-alikes; rejects anything else (spaces, brackets, +81) instead of
    guessing, since a wrong phone number on an emergency contact is worse than a form error.
    """
    reject_control_chars(s, field)
    phone = _fold_hyphens_nfkc(s).strip()
    example = "数字とハイフンで入力してください（例: 03-1234-5678、090-1234-5678）。"
    if not _PHONE_SHAPE.fullmatch(phone):
        raise TextError(f"{field}の形式が正しくありません。{example}", code="phone_format")
    digits = phone.replace("-", "")
    if not digits.startswith("0"):
        raise TextError(f"{field}は0から始まる国内の番号で入力してください。{example}", code="phone_format")
    if not 10 <= len(digits) <= 11:
        raise TextError(
            f"{field}の桁数が正しくありません（{len(digits)}桁）。10桁または11桁の番号を{example}",
            code="phone_length",
        )
    return phone


def phone_digits(s: str, field: str = "電話番号") -> str:
    """Digits only (09012345678), for blind-index keys where 090-1234-5678 and 09012345678 must collide."""
    return normalize_phone(s, field).replace("-", "")


_POSTAL_SHAPE: Final = re.compile(r"([0-9]{3})-?([0-9]{4})")


def normalize_postal_code(s: str, field: str = "郵便番号") -> str:
    """Return ``"123-4567"`` from 1234567, １２３－４５６７, 〒123-4567 and the like."""
    reject_control_chars(s, field)
    postal = _fold_hyphens_nfkc(s).strip().removeprefix("〒").strip()
    match = _POSTAL_SHAPE.fullmatch(postal)
    if match is None:
        raise TextError(
            f"{field}の形式が正しくありません。7桁の数字で入力してください（例: 123-4567）。",
            code="postal_format",
        )
    return f"{match.group(1)}-{match.group(2)}"


# --- search keys -------------------------------------------------

# 〜 (U+301C WAVE DASH) and ～ (U+FF5E) are the same JIS character decoded by different codecs (Shift_JIS vs
# CP932); likewise − (U+2212) and － (U+FF0D). A search must find either spelling.
_SEARCH_FOLD: Final = str.maketrans({"\u301c": "~", "\uff5e": "~"} | dict.fromkeys(HYPHEN_LOOKALIKES, "-"))


def search_key(s: str) -> str:
    """A comparison key for search only — never store it in place of the value.

    Folds wave dashes and hyphen look-alikes, applies NFKC (full-width → half-width, 神 U+FA19 → 神),
    hiragana → katakana, casefold, and drops whitespace so 山田 太郎 and 山田　太郎 and 山田太郎 all match.
    """
    key = unicodedata.normalize("NFKC", s.translate(_SEARCH_FOLD)).translate(_SEARCH_FOLD)
    key = to_katakana(key).casefold()
    return "".join(key.split())


# --- CP932 -------------------------------------------------------


def cp932_unencodable(s: str) -> list[str]:
    """Characters of ``s`` that CP932 cannot encode (each once, in order of first appearance).

    An export to CP932 must list these and refuse, never write "?" into someone's name.
    """
    bad: dict[str, None] = {}
    for c in s:
        try:
            c.encode("cp932")
        except UnicodeEncodeError:
            bad[c] = None
    return list(bad)
