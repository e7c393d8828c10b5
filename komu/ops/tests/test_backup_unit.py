from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import tarfile
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings

from komu.notices.models import Attachment
from komu.ops import backup
from komu.security.blobs import blob_put
from komu.security.keys import get_keyring
from komu.security.tests.blobstore import use_folder


@pytest.fixture
def sqlite_only() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("the PostgreSQL backup runs pg_dump on committed data: covered by make test-replica")


def test_sqlite_backup_has_manifest_checksums_counts_and_no_keys(
    transactional_db: None, sqlite_only: None, tmp_path: Path, settings: Any
) -> None:
    # Outside a test transaction, as the command runs: SQLite's online backup waits for an open write to end.
    from django.contrib.auth.models import Group

    Group.objects.bulk_create([Group(name=f"g{i}") for i in range(3)])
    media = use_folder(settings, tmp_path / "media")
    (media / "uploads").mkdir(parents=True)
    (media / "uploads" / "a.csv").write_text("x")
    data = b"%PDF-1.4 attachment"
    attachment = Attachment(filename="a.pdf", content_type="application/pdf", size=len(data),
                            sha256=hashlib.sha256(data).hexdigest())
    blob_put(attachment, data)
    attachment.save()
    orphan = Attachment(filename="b.pdf", content_type="application/pdf", size=1, sha256="0" * 64)
    blob_put(orphan, b"x")  # written, its row never saved: not part of the backup
    # A key file someone put under the media folder is still left out.
    (media / "keys").mkdir()
    key_copy = media / "keys" / "komu-keys.json"
    get_keyring()  # the test install's key file exists from here on
    shutil.copy2(settings.KOMU_KEY_FILE, key_copy)
    with override_settings(KOMU_KEY_FILE=key_copy):
        result = backup.backup_create(output=tmp_path / "out")
    manifest = json.loads((result.folder / "manifest.json").read_text())
    assert manifest["format"] == "komu-backup/2"
    assert manifest["files"]["database.sqlite3"]["sha256"] == backup.sha256_of(result.folder / "database.sqlite3")
    copy = sqlite3.connect(result.folder / "database.sqlite3")
    assert copy.execute("SELECT COUNT(*) FROM auth_group").fetchone()[0] == manifest["tables"]["auth_group"] == 3
    with tarfile.open(result.folder / "media.tar") as tar:
        assert tar.getnames() == ["uploads", "uploads/a.csv"]  # the blobs are copied one by one, not in the tar
    assert manifest["media_files"] == 1
    assert list(manifest["blobs"]) == [attachment.blob]
    copied = result.folder / attachment.blob
    assert copied.read_bytes() == (media / attachment.blob).read_bytes()
    assert manifest["blobs"][attachment.blob] == {"sha256": backup.sha256_of(copied), "bytes": copied.stat().st_size}
    assert not (result.folder / orphan.blob).exists()


def test_restore_refuses_a_damaged_backup_before_touching_anything(tmp_path: Path) -> None:
    folder = tmp_path / "b"
    folder.mkdir()
    (folder / "database.sqlite3").write_bytes(b"data")
    (folder / "media.tar").write_bytes(b"tar")
    manifest = {
        "format": "komu-backup/2",
        "files": {
            "database.sqlite3": {"sha256": backup.sha256_of(folder / "database.sqlite3"), "bytes": 4},
            "media.tar": {"sha256": "0" * 64, "bytes": 3},
        },
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(backup.BackupError, match=r"media\.tar のチェックサム"):
        backup.read_manifest(folder)
    # A blob listed in the manifest but missing from the folder is refused the same way.
    manifest["files"]["media.tar"]["sha256"] = backup.sha256_of(folder / "media.tar")
    manifest["blobs"] = {"blobs/ab/" + "ab" * 32: {"sha256": "1" * 64, "bytes": 9}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(backup.BackupError, match=r"blobs/ab/.* のチェックサム"):
        backup.read_manifest(folder)
    manifest["format"] = "other/9"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(backup.BackupError, match="形式"):
        backup.read_manifest(folder)
    with pytest.raises(backup.BackupError, match=r"manifest\.json がありません"):
        backup.read_manifest(tmp_path)


@pytest.mark.django_db
def test_restore_refuses_a_database_that_has_tables(tmp_path: Path) -> None:
    folder = tmp_path / "b"
    folder.mkdir()
    name = "database.dump" if connection.vendor == "postgresql" else "database.sqlite3"
    (folder / name).write_bytes(b"data")
    (folder / "media.tar").write_bytes(b"")
    files = {n: {"sha256": backup.sha256_of(folder / n), "bytes": 0} for n in (name, "media.tar")}
    (folder / "manifest.json").write_text(json.dumps({"format": "komu-backup/1", "engine": connection.vendor,
                                                      "files": files}))
    with pytest.raises(backup.BackupError, match="空のデータベース"):
        backup.backup_restore(folder=folder)
