"""Encrypted fields: what a database dump shows, what tampering does, and what the ORM refuses."""

from __future__ import annotations

import base64
import datetime
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from komu.security import keys
from komu.security.fields import EncryptedQueryError
from komu.security.keys import DecryptionError, get_keyring
from komu.security.tests.helpers import flip_byte, raw_set, raw_value, tink_key_id
from komu.students.models import Guardian, Student
from komu.testing.world import World, build_world

PERSONAL = {
    "family_name": "髙橋",
    "given_name": "𠮷乃",
    "family_name_kana": "タカハシ",
    "given_name_kana": "ヨシノ",
    "address": "架空県みどり市一丁目1-1",
    "health_note": "卵アレルギー",
}


@pytest.fixture
def sealed_world(key_file: Path, db: None) -> World:
    """The shared world, encrypted under this test's own key file."""
    return build_world()


def _pupil(world: World, **overrides: Any) -> Student:
    values: dict[str, Any] = {**PERSONAL, "birth_date": datetime.date(2017, 5, 3), **overrides}
    student = Student(school=world.school_a, **values)
    student.save()
    return student


def _fresh(student: Student) -> Student:
    return Student.objects.get(pk=student.pk)


# --- at rest --------------------------------------------------------------------------------------


def test_personal_values_are_tink_ciphertexts_in_the_database(sealed_world: World) -> None:
    student = _pupil(sealed_world)
    ring = get_keyring()
    for name, plain in {**PERSONAL, "birth_date": "2017-05-03"}.items():
        stored = raw_value(Student, student.pk, name)
        assert plain not in stored
        assert plain.encode() not in base64.urlsafe_b64decode(stored)
        assert tink_key_id(stored) == ring.primary_key_id()
        # And it is this row's value under this column's binding, nothing else.
        assert ring.decrypt(stored, f"students_student.{name}.{student.pk}") == plain


def test_blind_indexes_in_the_database_are_keyed_hashes_not_readings(sealed_world: World) -> None:
    student = _pupil(sealed_world)
    stored = raw_value(Student, student.pk, "kana_index")
    assert len(stored) == 32
    int(stored, 16)
    assert "タカハシ" not in stored


def test_a_blank_is_stored_blank_and_reads_back_blank(sealed_world: World) -> None:
    student = _pupil(sealed_world, health_note="", address="")
    assert raw_value(Student, student.pk, "health_note") == ""
    fresh = _fresh(student)
    assert fresh.health_note == ""
    assert fresh.address == ""


def test_an_absent_date_is_stored_as_null(sealed_world: World) -> None:
    student = _pupil(sealed_world, birth_date=None)
    assert raw_value(Student, student.pk, "birth_date") is None
    assert _fresh(student).birth_date is None


def test_values_read_back_exactly_as_entered(sealed_world: World) -> None:
    student = _pupil(sealed_world)
    fresh = _fresh(student)
    for name, plain in PERSONAL.items():
        assert getattr(fresh, name) == plain
    assert fresh.birth_date == datetime.date(2017, 5, 3)


# --- moved or tampered ciphertexts ----------------------------------------------------------------


def test_a_ciphertext_copied_into_another_row_fails_to_decrypt(sealed_world: World) -> None:
    a = sealed_world.students["a1_first"]
    b = sealed_world.students["b1_first"]
    raw_set(Student, b.pk, "family_name", raw_value(Student, a.pk, "family_name"))
    victim = _fresh(b)
    with pytest.raises(DecryptionError):
        victim.family_name
    # A second read fails the same way: no blank or ciphertext was cached as the value by the first.
    with pytest.raises(DecryptionError):
        victim.family_name


def test_a_ciphertext_copied_into_another_column_of_the_same_row_fails(sealed_world: World) -> None:
    a = sealed_world.students["a1_first"]
    raw_set(Student, a.pk, "given_name", raw_value(Student, a.pk, "family_name"))
    with pytest.raises(DecryptionError):
        _fresh(a).given_name
    assert _fresh(a).family_name == "髙橋"


def test_a_ciphertext_copied_into_another_table_fails(sealed_world: World) -> None:
    guardian = sealed_world.guardians["guardian_a"]
    raw_set(Guardian, guardian.pk, "family_name", raw_value(Student, sealed_world.students["a1_first"].pk,
                                                               "family_name"))
    with pytest.raises(DecryptionError):
        Guardian.objects.get(pk=guardian.pk).family_name


@pytest.mark.parametrize(
    "index", [0, 1, 4, 5, 16, 20, -17, -1],
    ids=["version", "key-id-first", "key-id-last", "iv-first", "iv-last", "ciphertext", "tag-first",
         "tag-last"],
)
def test_a_ciphertext_with_one_flipped_bit_raises(sealed_world: World, index: int) -> None:
    student = sealed_world.students["a1_first"]
    stored = raw_value(Student, student.pk, "health_note")
    raw_set(Student, student.pk, "health_note", flip_byte(stored, index))
    with pytest.raises(DecryptionError):
        _fresh(student).health_note


@pytest.mark.parametrize("garbage", ["卵アレルギー", "not base64!", "AAAA", "AQ=="])
def test_plaintext_or_garbage_written_into_the_column_raises(sealed_world: World, garbage: str) -> None:
    student = sealed_world.students["a1_first"]
    raw_set(Student, student.pk, "health_note", garbage)
    with pytest.raises(DecryptionError):
        _fresh(student).health_note


def test_a_row_sealed_under_another_key_file_cannot_be_read(sealed_world: World, tmp_path: Path,
                                                             settings: Any) -> None:
    student = sealed_world.students["a1_first"]
    other = tmp_path / "other" / "komu-keys.json"
    keys.create_key_file(other)
    settings.KOMU_KEY_FILE = other
    keys.reset_cache()
    with pytest.raises(DecryptionError):
        _fresh(student).family_name


# --- writing back ---------------------------------------------------------------------------------


def test_an_unchanged_value_is_written_back_as_the_same_ciphertext(sealed_world: World) -> None:
    student = sealed_world.students["a1_first"]
    before = {name: raw_value(Student, student.pk, name) for name in [*PERSONAL, "birth_date"]}
    read = _fresh(student)
    for name in PERSONAL:
        getattr(read, name)
    read.sex = "male"
    read.save()
    unread = _fresh(student)
    unread.needs_review = True
    unread.save()
    assert {name: raw_value(Student, student.pk, name) for name in before} == before


def test_a_changed_value_gets_a_new_ciphertext_and_the_others_stay(sealed_world: World) -> None:
    student = sealed_world.students["a1_first"]
    family_before = raw_value(Student, student.pk, "family_name")
    given_before = raw_value(Student, student.pk, "given_name")
    fresh = _fresh(student)
    fresh.given_name = "吉乃"
    fresh.save()
    assert raw_value(Student, student.pk, "family_name") == family_before
    assert raw_value(Student, student.pk, "given_name") != given_before
    assert _fresh(student).given_name == "吉乃"


def test_setting_the_same_text_again_keeps_the_ciphertext(sealed_world: World) -> None:
    student = sealed_world.students["a1_first"]
    before = raw_value(Student, student.pk, "address")
    fresh = _fresh(student)
    fresh.address = str(fresh.address)
    fresh.save()
    assert raw_value(Student, student.pk, "address") == before


def test_a_read_instance_saved_as_a_new_row_is_sealed_to_the_new_row(sealed_world: World) -> None:
    original = _fresh(sealed_world.students["a1_first"])
    assert original.family_name == "髙橋"
    original.pk = uuid.uuid4()
    original._state.adding = True
    original.save()
    copy = Student.objects.get(pk=original.pk)
    assert copy.family_name == "髙橋"
    assert raw_value(Student, copy.pk, "family_name") != raw_value(
        Student, sealed_world.students["a1_first"].pk, "family_name"
    )


def test_an_unread_instance_saved_as_a_new_row_is_sealed_to_the_new_row(sealed_world: World) -> None:
    source = sealed_world.students["a1_first"]
    copy = _fresh(source)
    copy.pk = uuid.uuid4()
    copy._state.adding = True
    copy.save()
    for name in ["family_name", "given_name", "health_note", "birth_date"]:
        assert raw_value(Student, copy.pk, name) != raw_value(Student, source.pk, name)
    stored = Student.objects.get(pk=copy.pk)
    assert (stored.family_name, stored.given_name, stored.health_note) == ("髙橋", "𠮷乃", "卵アレルギー")
    assert stored.birth_date == source.birth_date


# --- queries --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lookup",
    [
        {"family_name": "髙橋"},
        {"family_name__exact": "髙橋"},
        {"family_name__iexact": "髙橋"},
        {"family_name__contains": "髙"},
        {"family_name__icontains": "髙"},
        {"family_name__startswith": "髙"},
        {"family_name__endswith": "橋"},
        {"family_name__regex": "^髙"},
        {"family_name__gt": "あ"},
        {"family_name__in": ["髙橋", "山﨑"]},
        {"family_name__lower": "髙橋"},
        {"health_note__icontains": "アレルギー"},
        {"birth_date": datetime.date(2017, 4, 3)},
        {"birth_date__year": 2017},
        {"birth_date__gte": datetime.date(2017, 1, 1)},
    ],
    ids=lambda lookup: next(iter(lookup)),
)
def test_filtering_on_an_encrypted_field_raises(sealed_world: World, lookup: dict[str, Any]) -> None:
    with pytest.raises(EncryptedQueryError):
        list(Student.objects.filter(**lookup))


def test_excluding_on_an_encrypted_field_raises(sealed_world: World) -> None:
    with pytest.raises(EncryptedQueryError):
        list(Student.objects.exclude(health_note__contains="卵"))


def test_a_bulk_update_cannot_write_plaintext(sealed_world: World) -> None:
    with pytest.raises(EncryptedQueryError), transaction.atomic():
        Student.objects.filter(pk=sealed_world.students["a1_first"].pk).update(family_name="改ざん")
    assert _fresh(sealed_world.students["a1_first"]).family_name == "髙橋"


def test_empty_and_null_checks_are_allowed(sealed_world: World) -> None:
    blank = Student.objects.filter(health_note="").values_list("pk", flat=True)
    assert sealed_world.students["a1_second"].pk in set(blank)
    assert sealed_world.students["a1_first"].pk not in set(blank)
    assert Student.objects.filter(birth_date__isnull=True).count() == 0


# --- blind indexes --------------------------------------------------------------------------------


def _kana_lookup(field: str, query: str) -> set[uuid.UUID]:
    value = Student._meta.get_field(field).lookup_value(query)  # type: ignore[union-attr]
    return set(Student.objects.filter(**{field: value}).values_list("pk", flat=True))


@pytest.mark.parametrize(
    "query",
    ["タカハシ ヨシノ", "たかはし よしの", "たかはしよしの", "ﾀｶﾊｼ ﾖｼﾉ", "タカハシ\u3000ヨシノ",
     " たかはし  ヨシノ "],
    ids=["katakana", "hiragana", "no-space", "half-width", "ideographic-space", "padded-mixed"],
)
def test_a_full_kana_reading_finds_exactly_that_pupil(sealed_world: World, query: str) -> None:
    assert _kana_lookup("kana_index", query) == {sealed_world.students["a1_first"].pk}


@pytest.mark.parametrize(
    "query",
    ["ヤマザキ", "やまざき", "ﾔﾏｻﾞｷ", "ヤマサ\u3099キ", "やまさ\u3099き"],
    ids=["katakana", "hiragana", "half-width-dakuten", "nfd-katakana", "nfd-hiragana"],
)
def test_a_family_kana_finds_exactly_that_pupil(sealed_world: World, query: str) -> None:
    assert _kana_lookup("family_kana_index", query) == {sealed_world.students["a1_second"].pk}


def test_a_near_miss_reading_finds_nobody(sealed_world: World) -> None:
    assert _kana_lookup("family_kana_index", "やまさき") == set()
    assert _kana_lookup("kana_index", "たかはし") == set()


@pytest.mark.parametrize(
    "query",
    [
        "090-2222-3333",
        "09022223333",
        "０９０－２２２２－３３３３",
        "090ー2222ー3333",
        "090‐2222‐3333",
        "090−2222−3333",
        "090ｰ2222ｰ3333",
        "０９０２２２２３３３３",
    ],
    ids=["ascii", "digits-only", "full-width", "choonpu", "u2010", "minus-sign", "half-width-choonpu",
         "fw-digits"],
)
def test_a_phone_number_typed_any_way_finds_the_guardian(sealed_world: World, query: str) -> None:
    guardian = Guardian(family_name="田中", given_name="一子", phone="090-2222-3333")
    guardian.save()
    value = Guardian._meta.get_field("phone_index").lookup_value(query)  # type: ignore[union-attr]
    assert set(Guardian.objects.filter(phone_index=value).values_list("pk", flat=True)) == {guardian.pk}


def test_blind_indexes_depend_on_purpose_and_key(sealed_world: World, tmp_path: Path, settings: Any) -> None:
    full = Student._meta.get_field("kana_index")
    family = Student._meta.get_field("family_kana_index")
    under_first_key = full.lookup_value("ヤマザキ")  # type: ignore[union-attr]
    assert under_first_key != family.lookup_value("ヤマザキ")  # type: ignore[union-attr]
    other = tmp_path / "other" / "komu-keys.json"
    keys.create_key_file(other)
    settings.KOMU_KEY_FILE = other
    keys.reset_cache()
    assert full.lookup_value("ヤマザキ") != under_first_key  # type: ignore[union-attr]


# --- any text -------------------------------------------------------------------------------------

# Pieces a school's data really contains: 4-byte kanji, IVS, 外字 from the private-use areas, full-width and
# zero-width spaces, a BOM, NUL; mixed with any other code point that UTF-8 can carry (no lone surrogates).
_PIECES = ["𠮷", "髙", "﨑", "葛\U000e0100", "\U000e0100", "\ufe00", "\ue000", "\uf8ff", "\U000f0000",
           "\U0010fffd", "\u3000", " ", "\u200b", "\ufeff", "\x00", "\r\n", "ｶﾞ", "神"]
_TEXT = st.lists(
    st.one_of(st.sampled_from(_PIECES), st.characters(blacklist_categories=("Cs",))), max_size=30
).map("".join)


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_TEXT, when=st.dates(min_value=datetime.date(1, 1, 1)))
def test_any_text_and_date_round_trip(sealed_world: World, text: str, when: datetime.date) -> None:
    student = Student(school=sealed_world.school_a, family_name=text, given_name=text[::-1],
                      family_name_kana="テスト", given_name_kana="テスト", address=text, health_note=text,
                      birth_date=when)
    student.save()
    fresh = _fresh(student)
    assert fresh.family_name == text
    assert fresh.given_name == text[::-1]
    assert fresh.address == text
    assert fresh.health_note == text
    assert fresh.birth_date == when
    if text:
        assert tink_key_id(raw_value(Student, student.pk, "family_name")) == get_keyring().primary_key_id()
