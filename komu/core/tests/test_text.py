"""Japanese text rules (docs/domain.md §2 Names, §7.3–7.12)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from komu.core.text import (
    HYPHEN_LOOKALIKES,
    TextError,
    check_name,
    cp932_unencodable,
    is_valid_kana,
    normalize_digits,
    normalize_kana,
    normalize_phone,
    normalize_postal_code,
    phone_digits,
    reject_control_chars,
    search_key,
)

# --- kana readings -----------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ﾔﾏﾀﾞ ﾀﾛｳ", "ヤマダ タロウ"),  # half-width with voiced marks
        ("やまだ　たろう", "ヤマダ タロウ"),  # hiragana and an ideographic space
        (unicodedata.normalize("NFD", "ガッコウ"), "ガッコウ"),  # macOS decomposed kana
        ("  ヤマダ \u3000\u3000 タロウ  ", "ヤマダ タロウ"),  # whitespace runs collapse, ends strip
        ("ヴァイオリン", "ヴァイオリン"),
        ("ﾏｰｸ･ｽﾐｽ", "マーク・スミス"),  # half-width ー and ・
        ("ゞ", "ヾ"),
    ],
)
def test_kana_reading_is_normalised_to_katakana(raw: str, expected: str) -> None:
    assert normalize_kana(raw) == expected


@pytest.mark.parametrize("raw", ["山田", "Yamada", "ヤマダ1", "ヤマダ-タロウ", "ヤマダ（タロウ）"])
def test_kana_reading_with_other_characters_is_rejected_with_a_japanese_message(raw: str) -> None:
    with pytest.raises(TextError) as error:
        normalize_kana(raw)
    assert error.value.code == "not_kana"
    assert "カタカナ" in error.value.message


def test_kana_reading_rejects_control_characters_before_anything_else() -> None:
    with pytest.raises(TextError) as error:
        normalize_kana("ヤマ\u200bダ")
    assert error.value.code == "control_char"


def test_kana_reading_has_a_length_cap() -> None:
    with pytest.raises(TextError) as error:
        normalize_kana("ア" * 11, max_length=10)
    assert error.value.code == "too_long"


def test_is_valid_kana_answers_whether_normalize_kana_accepts() -> None:
    assert is_valid_kana("やまだ")
    assert not is_valid_kana("山田")


_KANA_ALPHABET = st.sampled_from(
    [*"あいうえおがぱゃっゝアイウエオガパャッヴーｱｶﾞﾊﾟｰ･・", " ", "\u3000", "\u3099", "\u309a"]
)


@given(st.text(_KANA_ALPHABET, max_size=30))
def test_kana_normalisation_is_idempotent(raw: str) -> None:
    try:
        once = normalize_kana(raw)
    except TextError:
        return  # e.g. a lone combining mark; rejecting is fine, we only check accepted values
    assert normalize_kana(once) == once
    assert once == once.strip()
    assert "  " not in once


@given(st.text(max_size=30))
def test_accepted_kana_contains_only_katakana_and_separators(raw: str) -> None:
    try:
        result = normalize_kana(raw)
    except TextError:
        return
    for c in result:
        assert c == " " or "\u30a1" <= c <= "\u30fe" or "\u31f0" <= c <= "\u31ff"


# --- kanji names -------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "\ufa19田",  # compatibility ideograph 神: NFC would rewrite it to U+795E
        "髙橋",
        "山﨑",
        "𠮷田",  # 4-byte, not in CP932
        "葛\U000e0100城",  # ideographic variation sequence
        "辻\ufe00",  # standardized variation selector
    ],
)
def test_kanji_name_is_returned_exactly_as_entered(name: str) -> None:
    result = check_name(name)
    assert result.value is name
    assert not result.needs_review


def test_compatibility_ideograph_would_be_changed_by_nfc_but_check_name_keeps_it() -> None:
    assert unicodedata.normalize("NFC", "\ufa19") != "\ufa19"
    assert check_name("\ufa19").value == "\ufa19"


@pytest.mark.parametrize("char", ["\ue000", "\uf8ff", "\U000f0000", "\U00100000"])
def test_private_use_character_flags_the_name_for_review_without_rejecting_it(char: str) -> None:
    result = check_name(f"山{char}")
    assert result.value == f"山{char}"
    assert result.needs_review
    assert result.private_use == (char,)
    assert "外字" in result.messages[0]


@pytest.mark.parametrize(
    "char",
    [
        "\x00",
        "\x1f",
        "\x7f",
        "\x85",
        "\u200b",
        "\u200d",
        "\u200f",
        "\u202a",
        "\u202e",
        "\u2066",
        "\u2069",
        "\ufeff",
    ],
)
def test_control_and_format_characters_in_a_name_are_rejected(char: str) -> None:
    with pytest.raises(TextError) as error:
        check_name(f"山田{char}太郎")
    assert error.value.code == "control_char"
    assert error.value.char == char


def test_name_has_a_length_cap() -> None:
    with pytest.raises(TextError):
        check_name("山" * 6, max_length=5)


_SAFE_NAME_TEXT = st.text(
    st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp", "Co")),
    max_size=40,
)


@given(_SAFE_NAME_TEXT)
def test_check_name_never_changes_an_accepted_name(name: str) -> None:
    assert check_name(name).value == name


# --- control characters ------------------------------------------


def test_control_character_message_names_the_code_point_and_what_to_do() -> None:
    with pytest.raises(TextError) as error:
        reject_control_chars("山田\u200b", "氏名")
    assert str(error.value) == "氏名に制御文字（U+200B）が含まれています。削除してから再度入力してください。"


def test_newline_is_rejected_unless_allowed() -> None:
    with pytest.raises(TextError) as error:
        reject_control_chars("一行目\n二行目")
    assert "改行" in error.value.message
    assert reject_control_chars("一行目\r\n二行目", allow="\r\n") == "一行目\r\n二行目"


def test_lone_surrogate_is_rejected() -> None:
    with pytest.raises(TextError):
        reject_control_chars("a\udcff")


# --- digits, phones, postal codes --------------------------------


def test_full_width_digits_and_letters_in_ids_become_ascii() -> None:
    assert normalize_digits(" １２３ＡＢ ") == "123AB"


@pytest.mark.parametrize("hyphen", list(HYPHEN_LOOKALIKES))
def test_every_hyphen_lookalike_in_a_phone_becomes_a_hyphen(hyphen: str) -> None:
    assert normalize_phone(f"03{hyphen}1234{hyphen}5678") == "03-1234-5678"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("０９０－１２３４－５６７８", "090-1234-5678"),
        ("09012345678", "09012345678"),  # hyphens are kept as given
        (" 0312345678 ", "0312345678"),
        ("0120-123-456", "0120-123-456"),
    ],
)
def test_phone_numbers_are_normalised(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["03(1234)5678", "+81-3-1234-5678", "3-1234-5678", "03-1234-567", "090-1234-56789", "03--1234-5678", ""],
)
def test_malformed_phone_numbers_are_rejected(raw: str) -> None:
    with pytest.raises(TextError) as error:
        normalize_phone(raw)
    assert "電話番号" in error.value.message


def test_phone_digits_make_formatting_variants_collide() -> None:
    assert phone_digits("090-1234-5678") == phone_digits("０９０ー１２３４ー５６７８") == "09012345678"


@pytest.mark.parametrize(
    "raw", ["1234567", "123-4567", "１２３－４５６７", "〒123-4567", "〒 １２３ー４５６７"]
)
def test_postal_codes_are_normalised(raw: str) -> None:
    assert normalize_postal_code(raw) == "123-4567"


@pytest.mark.parametrize("raw", ["123-456", "1234-567", "12345678", "abc-defg"])
def test_malformed_postal_codes_are_rejected(raw: str) -> None:
    with pytest.raises(TextError):
        normalize_postal_code(raw)


# --- search keys -------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("9時〜12時", "9時～12時"),  # WAVE DASH vs FULLWIDTH TILDE (Shift_JIS vs CP932)
        ("1−2−3", "1－2－3"),  # MINUS SIGN vs FULLWIDTH HYPHEN-MINUS
        ("1‐2", "1-2"),
        ("やまだ", "ヤマダ"),
        ("ﾔﾏﾀﾞ", "ヤマダ"),
        ("山田 太郎", "山田　太郎"),
        ("山田太郎", "山田 太郎"),
        ("ABC", "ａｂｃ"),
    ],
)
def test_search_keys_fold_codec_and_width_differences(a: str, b: str) -> None:
    assert search_key(a) == search_key(b)


def test_search_key_distinguishes_different_names() -> None:
    assert search_key("山田") != search_key("山口")


# --- CP932 -------------------------------------------------------


def test_cp932_encodes_the_ibm_extension_characters_that_shift_jis_cannot() -> None:
    assert cp932_unencodable("髙﨑①㈱") == []
    with pytest.raises(UnicodeEncodeError):
        "髙".encode("shift_jis")


def test_cp932_unencodable_lists_each_character_once() -> None:
    assert cp932_unencodable("𠮷田𠮷 葛\U000e0100") == ["𠮷", "\U000e0100"]
