"""Encrypted blobs (komu.security.blobs): sealed per row, unreadable in the store, written before their row,
deleted after it, collected when orphaned, and untouched by a key rotation. The notices' Attachment is the
example model (any model with a BlobField behaves the same)."""

from __future__ import annotations

import datetime
import hashlib
import os
import re
import time
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core import checks
from django.core.management import CommandError, call_command
from django.db import transaction

from komu.access.scope import get_actor
from komu.audit.models import AuditEvent
from komu.notices import selectors as notice_selectors
from komu.notices.models import Attachment, Notice
from komu.notices.services import notices as notice_services
from komu.notices.services.attachments import Upload
from komu.security import blobs
from komu.security.keys import DecryptionError
from komu.security.services import keys_rotate
from komu.security.tests.blobstore import bucket_objects, every_file, moto_s3, use_folder, use_s3
from komu.security.tests.helpers import raw_value
from komu.testing.world import World

PDF = b"%PDF-1.4\n" + "山田太郎 東京都千代田区1-1".encode() * 50 + b"\n%%EOF"


@pytest.fixture
def store(tmp_path: Path, settings: Any) -> Path:
    return use_folder(settings, tmp_path / "media")


def attach(data: bytes = PDF) -> Attachment:
    row = Attachment(
        filename="名簿.pdf",
        content_type="application/pdf",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    blobs.blob_put(row, data)
    row.save()
    return row


def age(store: Path, name: str, hours: float) -> None:
    then = time.time() - hours * 3600
    os.utime(store / name, (then, then))


@pytest.mark.django_db
def test_a_blob_is_ciphertext_under_a_random_name_and_reads_back(store: Path) -> None:
    row = attach()
    assert re.fullmatch(r"blobs/[0-9a-f]{2}/[0-9a-f]{64}", row.blob) and row.blob[6:8] == row.blob[9:11]
    files = every_file(store)
    assert list(files) == [row.blob]
    assert b"%PDF" not in files[row.blob] and "山田".encode() not in files[row.blob]
    assert (store / row.blob).stat().st_mode & 0o077 == 0
    # The data key is an encrypted column bound to the row, not the keyset itself.
    assert "primaryKeyId" not in raw_value(Attachment, row.pk, "blob_key")
    fresh = Attachment.objects.get(pk=row.pk)
    assert blobs.blob_read(fresh, sha256=fresh.sha256, size=fresh.size) == PDF
    # Streamed in chunks, so a large file never sits in memory whole.
    big = os.urandom(3 * blobs.CHUNK + 17)
    chunks = list(blobs.blob_open(attach(big)))
    assert len(chunks) == 4 and b"".join(chunks) == big


@pytest.mark.django_db
def test_a_file_swapped_between_rows_or_altered_fails_to_open(store: Path) -> None:
    first, second = attach(), attach(b"%PDF-1.4 other")
    first.blob = second.blob  # someone with write access to the database points one row at another's file
    with pytest.raises(DecryptionError):
        blobs.blob_read(first)
    first.refresh_from_db()
    # The file itself copied over the other row's name: bound to the other row, it fails too.
    (store / second.blob).write_bytes((store / first.blob).read_bytes())
    with pytest.raises(DecryptionError):
        blobs.blob_read(second)
    # One flipped byte, or a truncated file, is detected.
    data = bytearray((store / first.blob).read_bytes())
    data[-40] ^= 1
    (store / first.blob).write_bytes(bytes(data))
    with pytest.raises(DecryptionError):
        blobs.blob_read(first)
    third = attach()
    (store / third.blob).write_bytes((store / third.blob).read_bytes()[:-100])
    with pytest.raises(DecryptionError):
        blobs.blob_read(third)


@pytest.mark.django_db
def test_a_missing_file_or_a_recorded_hash_that_differs_is_an_error(store: Path) -> None:
    row = attach()
    with pytest.raises(DecryptionError, match="一致しません"):
        blobs.blob_read(row, sha256="0" * 64)
    (store / row.blob).unlink()
    with pytest.raises(blobs.BlobMissingError):
        blobs.blob_open(row)


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_write_leaves_an_orphan_that_gc_removes_only_after_the_grace_period(
    store: Path,
) -> None:
    kept = attach()
    with pytest.raises(RuntimeError), transaction.atomic():
        attach(b"%PDF-1.4 rolled back")
        raise RuntimeError
    assert Attachment.objects.count() == 1
    orphan = next(n for n in every_file(store) if n != kept.blob)

    young = blobs.blobs_gc()
    assert young.removed == [] and young.young == 1 and young.missing == []
    age(store, orphan, 25)
    age(store, kept.blob, 25)
    dry = blobs.blobs_gc(dry_run=True)
    assert dry.removed == [orphan] and (store / orphan).exists()
    done = blobs.blobs_gc()
    assert done.removed == [orphan] and list(every_file(store)) == [kept.blob]
    assert blobs.blob_read(Attachment.objects.get()) == PDF


@pytest.mark.django_db(transaction=True)
def test_deleting_a_row_deletes_its_file_after_commit_and_not_on_rollback(store: Path) -> None:
    row = attach()
    with pytest.raises(RuntimeError), transaction.atomic():
        Attachment.objects.filter(pk=row.pk).delete()
        assert (store / row.blob).exists()  # not before the commit
        raise RuntimeError
    assert (store / row.blob).exists()
    with transaction.atomic():
        Attachment.objects.filter(pk=row.pk).delete()
    assert not (store / row.blob).exists()


@pytest.mark.django_db
def test_a_key_rotation_rewraps_the_data_keys_and_leaves_the_files_alone(key_file: Path, store: Path) -> None:
    row = attach()
    before_file = (store / row.blob).read_bytes()
    before_key = raw_value(Attachment, row.pk, "blob_key")
    report = keys_rotate(settle_seconds=0)
    assert report.retired  # the old AEAD key is gone from the key file
    assert raw_value(Attachment, row.pk, "blob_key") != before_key
    assert (store / row.blob).read_bytes() == before_file
    assert blobs.blob_read(Attachment.objects.get(pk=row.pk)) == PDF


@pytest.mark.django_db
def test_blobs_commands_report_and_collect(store: Path) -> None:
    row = attach()
    out = StringIO()
    call_command("blobs", "check", stdout=out)
    assert "1 件はすべて保存先にあります" in out.getvalue()
    orphan = blobs.new_name()
    (store / orphan).parent.mkdir(parents=True, exist_ok=True)
    (store / orphan).write_bytes(b"x")
    age(store, orphan, 30)
    out = StringIO()
    call_command("blobs", "gc", "--grace-hours", "24", stdout=out)
    assert "削除 1" in out.getvalue() and not (store / orphan).exists()
    (store / row.blob).unlink()
    with pytest.raises(CommandError, match="保存先にないファイルが 1 件"):
        call_command("blobs", "check", stdout=StringIO())


def test_deploy_check_flags_a_key_file_inside_the_media_folder_and_a_bucketless_s3(
    tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.KOMU_KEY_FILE = tmp_path / "media" / "keys" / "komu-keys.json"
    assert [m.id for m in blobs.check_storage()] == ["komu.E104"]
    settings.KOMU_KEY_FILE = tmp_path / "keys" / "komu-keys.json"
    assert blobs.check_storage() == []
    (tmp_path / "keys").mkdir()
    (tmp_path / "media").mkdir()
    same_volume = blobs.check_storage()
    assert [(m.id, m.level) for m in same_volume] == [("komu.I105", checks.INFO)]  # advice, not a failure
    settings.KOMU_STORAGE = "s3"
    settings.KOMU_S3_BUCKET = ""
    settings.KOMU_S3_ENDPOINT_URL = "http://s3.example.jp"
    assert [m.id for m in blobs.check_storage()] == ["komu.E101", "komu.W102"]
    settings.KOMU_S3_BUCKET = "komu-attachments"
    settings.KOMU_S3_ENDPOINT_URL = "https://s3.example.jp"
    assert blobs.check_storage() == []
    monkeypatch.setenv("KOMU_S3_ACCESS_KEY_ID", "AKIA-only-half")
    assert [m.id for m in blobs.check_storage()] == ["komu.E103"]


# --- The same store in an S3-compatible bucket (moto's server on loopback) ---------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_s3("komu-blobs-test") as endpoint:
        yield endpoint


def test_in_an_s3_bucket_a_notice_attachment_uploads_streams_back_and_is_collected(
    s3_endpoint: str, settings: Any, world: World, django_capture_on_commit_callbacks: Any
) -> None:
    use_s3(settings, s3_endpoint, "komu-blobs-test")
    board = get_actor(world.user("board_officer_a"))
    notice = notice_services.notice_send(
        actor=board,
        data=notice_services.NoticeInput(
            kind=Notice.Kind.TSUCHI, title="添付つき", attachments=(Upload("要項.pdf", PDF),)
        ),
    )
    attachment = notice.attachments.get()
    objects = bucket_objects(s3_endpoint, "komu-blobs-test")
    assert attachment.blob in objects and b"%PDF" not in objects[attachment.blob]
    _row, data = notice_selectors.attachment_download(
        actor=get_actor(world.user("teacher_a")), attachment_id=attachment.pk
    )
    assert b"".join(data) == PDF
    assert AuditEvent.objects.filter(action="notices.attachment.downloaded").count() == 1

    # An orphan in the bucket goes once old enough; a deleted row's object goes after commit.
    with pytest.raises(RuntimeError), transaction.atomic():
        notice_services.notice_send(
            actor=board,
            data=notice_services.NoticeInput(
                kind=Notice.Kind.TSUCHI, title="取り消し", attachments=(Upload("別.pdf", PDF),)
            ),
        )
        raise RuntimeError
    assert len(bucket_objects(s3_endpoint, "komu-blobs-test")) == 2
    assert blobs.blobs_gc().young == 1
    assert len(blobs.blobs_gc(grace=datetime.timedelta(0)).removed) == 1
    assert list(bucket_objects(s3_endpoint, "komu-blobs-test")) == [attachment.blob]
    with django_capture_on_commit_callbacks(execute=True):
        Attachment.objects.filter(pk=attachment.pk).delete()
    assert bucket_objects(s3_endpoint, "komu-blobs-test") == {}
