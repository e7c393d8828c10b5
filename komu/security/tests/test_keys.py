"""The key file and `komu keys`: rotation re-encrypts everything, processes follow, keys never print."""

from __future__ import annotations

import json
import os
import re
import time
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from komu.audit.models import AuditEvent
from komu.security import keys
from komu.security.fields import Token
from komu.security.services import encrypted_models, keys_rotate
from komu.security.tests.helpers import raw_value, tink_key_id
from komu.students.models import Student
from komu.testing.world import World, build_world


@pytest.fixture
def sealed_world(key_file: Path, db: None) -> World:
    return build_world()


def _every_ciphertext() -> dict[tuple[str, str, str], str]:
    """(model, row, column) → stored ciphertext, for every non-empty encrypted column of every row."""
    found = {}
    for model, fields in encrypted_models():
        for pk in model._base_manager.values_list("pk", flat=True):
            for field in fields:
                stored = raw_value(model, pk, field.attname)
                if stored:
                    found[(model._meta.label, str(pk), field.attname)] = stored
    return found


def _every_plaintext() -> dict[tuple[str, str, str], Any]:
    found = {}
    for model, fields in encrypted_models():
        for obj in model._base_manager.all():
            for field in fields:
                found[(model._meta.label, str(obj.pk), field.attname)] = getattr(obj, field.attname)
    return found


def _aead_key_ids(path: Path) -> set[int]:
    return {int(k["keyId"]) for k in json.loads(path.read_text())["aead"]["key"]}


# --- rotation -------------------------------------------------------------------------------------


def test_rotation_re_encrypts_every_row_under_the_new_key_and_retires_the_old(
    sealed_world: World, key_file: Path
) -> None:
    before_text = _every_plaintext()
    before_tokens = _every_ciphertext()
    old_id = keys.get_keyring().primary_key_id()
    assert {tink_key_id(t) for t in before_tokens.values()} == {old_id}

    report = keys_rotate(settle_seconds=0)

    assert report.old_key_id == old_id
    assert report.new_key_id != old_id
    assert report.retired == [old_id]
    after_tokens = _every_ciphertext()
    assert after_tokens.keys() == before_tokens.keys()
    assert {tink_key_id(t) for t in after_tokens.values()} == {report.new_key_id}
    assert all(after_tokens[k] != before_tokens[k] for k in before_tokens)
    assert _aead_key_ids(key_file) == {report.new_key_id}
    assert _every_plaintext() == before_text
    assert report.rewritten == len({(label, pk) for label, pk, _ in before_tokens})


def test_rotation_is_audited_with_key_ids_only(sealed_world: World) -> None:
    report = keys_rotate(settle_seconds=0)
    event = AuditEvent.objects.get(action="security.keys.rotated")
    assert event.detail == {
        "old_key_id": report.old_key_id, "new_key_id": report.new_key_id,
        "rows_rewritten": report.rewritten, "retired": report.retired,
    }
    assert event.actor_username == "system"


def test_rotation_can_keep_the_old_key(sealed_world: World, key_file: Path) -> None:
    report = keys_rotate(settle_seconds=0, retire=False)
    assert report.retired == []
    assert _aead_key_ids(key_file) == {report.old_key_id, report.new_key_id}
    assert {tink_key_id(t) for t in _every_ciphertext().values()} == {report.new_key_id}


def test_a_second_rotation_rewrites_everything_again(sealed_world: World, key_file: Path) -> None:
    before = _every_plaintext()
    first = keys_rotate(settle_seconds=0)
    second = keys_rotate(settle_seconds=0)
    assert second.old_key_id == first.new_key_id
    assert {tink_key_id(t) for t in _every_ciphertext().values()} == {second.new_key_id}
    assert _aead_key_ids(key_file) == {second.new_key_id}
    assert _every_plaintext() == before


def test_the_rotate_command_re_encrypts_and_reports(sealed_world: World, key_file: Path) -> None:
    before = _every_plaintext()
    old_id = keys.get_keyring().primary_key_id()
    out = StringIO()
    call_command("keys", "rotate", "--settle-seconds", "0", "--batch-size", "2", stdout=out)
    new_id = keys.get_keyring().primary_key_id()
    assert new_id != old_id
    assert f"鍵 {old_id} → {new_id}" in out.getvalue()
    assert f"外した鍵: {old_id}" in out.getvalue()
    assert "students.Student: 4/4" in out.getvalue()
    assert {tink_key_id(t) for t in _every_ciphertext().values()} == {new_id}
    assert _aead_key_ids(key_file) == {new_id}
    assert _every_plaintext() == before


def test_an_instance_loaded_before_a_rotation_and_saved_during_it_ends_up_under_the_new_key(
    sealed_world: World, key_file: Path
) -> None:
    pupil = Student.objects.get(pk=sealed_world.students["a1_first"].pk)
    assert pupil.family_name == "髙橋"  # read: its ciphertext is remembered for writing back
    assert isinstance(pupil.__dict__["health_note"], Token)  # never read
    # The request saves after its row was rewritten, before the old key is retired.
    report = keys_rotate(settle_seconds=0, retire=False)
    pupil.needs_review = True
    pupil.save()
    for name in ["family_name", "given_name", "family_name_kana", "given_name_kana", "health_note", "address",
                 "birth_date"]:
        assert tink_key_id(raw_value(Student, pupil.pk, name)) == report.new_key_id, name
    keys.retire_aead_keys(key_file, keep={report.new_key_id})
    stored = Student.objects.get(pk=pupil.pk)
    assert (stored.family_name, stored.health_note) == ("髙橋", "卵アレルギー")


def test_a_field_never_read_is_left_as_the_database_has_it(sealed_world: World) -> None:
    pupil = Student.objects.get(pk=sealed_world.students["a1_first"].pk)
    assert isinstance(pupil.__dict__["health_note"], Token)
    # Meanwhile the row is re-encrypted (a rotation) — the stale ciphertext must not be written back over it.
    report = keys_rotate(settle_seconds=0, retire=False)
    rotated = raw_value(Student, pupil.pk, "health_note")
    pupil.needs_review = True
    pupil.save()
    assert raw_value(Student, pupil.pk, "health_note") == rotated
    assert tink_key_id(rotated) == report.new_key_id
    assert Student.objects.get(pk=pupil.pk).health_note == "卵アレルギー"


# --- running processes follow the key file --------------------------------------------------------


def _pretend_the_check_interval_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys, "_last_check", 0.0)


def test_a_process_with_a_stale_keyring_reloads_when_the_file_changes(
    key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = keys.get_keyring()
    # Another process rotates: the file on disk changes, this process's cache does not.
    _, new_id = keys.add_primary_aead_key(key_file)
    monkeypatch.setattr(keys, "_cached", stale)
    monkeypatch.setattr(keys, "_last_check", time.monotonic())
    assert keys.get_keyring() is stale  # within the check interval the cache is trusted
    _pretend_the_check_interval_passed(monkeypatch)
    fresh = keys.get_keyring()
    assert fresh is not stale
    assert fresh.primary_key_id() == new_id
    # And what the other process now writes, this one reads.
    assert fresh.decrypt(fresh.encrypt("髙橋", "t.c.1"), "t.c.1") == "髙橋"


def test_a_reload_is_not_missed_when_the_new_file_has_the_same_mtime(
    key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = keys.get_keyring()
    mtime = key_file.stat().st_mtime_ns
    _, new_id = keys.add_primary_aead_key(key_file)
    # Two writes within one tick of the file system clock carry the same mtime.
    os.utime(key_file, ns=(mtime, mtime))
    monkeypatch.setattr(keys, "_cached", stale)
    _pretend_the_check_interval_passed(monkeypatch)
    assert keys.get_keyring().primary_key_id() == new_id


def test_an_unchanged_file_is_not_re_read(key_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = keys.get_keyring()
    _pretend_the_check_interval_passed(monkeypatch)
    assert keys.get_keyring() is first


# --- status never shows key material --------------------------------------------------------------


def test_status_prints_key_ids_and_never_key_material(key_file: Path) -> None:
    keys.add_primary_aead_key(key_file)
    payload = json.loads(key_file.read_text())
    out = StringIO()
    call_command("keys", "status", stdout=out)
    text = out.getvalue()
    sections = [name for name in payload if name != "format"]
    assert {"aead", "blind_index", "audit_mac"} <= set(sections)
    for section in sections:
        keyset = payload[section]
        line = next(line for line in text.splitlines() if line.startswith(f"{section}:"))
        for key in keyset["key"]:
            assert str(key["keyId"]) in line
            assert key["keyData"]["value"] not in text
        assert f"{keyset['primaryKeyId']}（主）" in line
    assert not re.search(r"[A-Za-z0-9+/=_-]{24,}", text), text


# --- the key file itself --------------------------------------------------------------------------


def test_production_refuses_to_start_without_its_key_file(tmp_path: Path, settings: Any) -> None:
    missing = tmp_path / "nowhere" / "komu-keys.json"
    settings.KOMU_KEY_FILE = missing
    settings.KOMU_CREATE_KEY_FILE = False
    keys.reset_cache()
    try:
        with pytest.raises(ImproperlyConfigured, match=r"鍵ファイル .* がありません。`komu keys create`"):
            keys.get_keyring()
        assert not missing.exists()
    finally:
        keys.reset_cache()


def test_a_trial_install_creates_its_key_file_for_the_owner_only(tmp_path: Path, settings: Any) -> None:
    path = tmp_path / "var" / "keys" / "komu-keys.json"
    settings.KOMU_KEY_FILE = path
    settings.KOMU_CREATE_KEY_FILE = True
    keys.reset_cache()
    try:
        ring = keys.get_keyring()
        assert path.stat().st_mode & 0o777 == 0o600
        assert ring.primary_key_id() > 0
    finally:
        keys.reset_cache()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_key_file_others_can_read_is_refused(key_file: Path, mode: int) -> None:
    key_file.chmod(mode)
    keys.reset_cache()
    with pytest.raises(ImproperlyConfigured, match=r"chmod 600"):
        keys.get_keyring()


@pytest.mark.parametrize(
    "content",
    ["", "{", "[]", '{"format": "komu-keys/0"}', '{"format": "komu-keys/1", "aead": {}}'],
    ids=["empty", "truncated", "not-an-object", "old-format", "missing-keysets"],
)
def test_a_damaged_key_file_is_refused_with_a_message(key_file: Path, content: str) -> None:
    key_file.write_text(content)
    keys.reset_cache()
    with pytest.raises(ImproperlyConfigured, match=r"形式が違うか、壊れています"):
        keys.get_keyring()


def test_keys_create_writes_a_private_file_and_never_overwrites(tmp_path: Path, settings: Any) -> None:
    path = tmp_path / "new" / "komu-keys.json"
    settings.KOMU_KEY_FILE = path
    out = StringIO()
    call_command("keys", "create", stdout=out)
    assert path.stat().st_mode & 0o777 == 0o600
    assert "鍵ファイルを作成しました" in out.getvalue()
    original = path.read_text()
    with pytest.raises(CommandError, match="既にあります"):
        call_command("keys", "create")
    assert path.read_text() == original
