"""Encrypted blobs: the bytes of attachments, kept as files in the attachments store, never in the database.

The store is Django's storage named "attachments" (settings.STORAGES): a folder (KOMU_STORAGE=filesystem, under
KOMU_MEDIA_ROOT) or an S3-compatible bucket (KOMU_STORAGE=s3, django-storages). The bucket or folder sees only
ciphertext under random names:

- Each blob is sealed with its own data key, a Tink streaming AEAD keyset (AES-256-GCM-HKDF, 1 MB segments), so a
  download is decrypted and authenticated segment by segment without holding the whole file. The data key is kept
  in the owning row in an EncryptedTextField, i.e. wrapped by the key file's AEAD key and bound to that row: a key
  rotation (`komu keys rotate`) re-wraps it with the other encrypted columns and the files never need rewriting,
  and a stolen bucket plus a stolen database dump still need the key file.
- The associated data of the file's encryption is the owning table, column and row key (`notices_attachment.blob.
  <uuid>`): a file copied under another row's name, or another row's name pasted into this row, fails to open.
- The name is 256 random bits (`blobs/ab/<64 hex>`): it tells nothing about the row, school or pupil.
- The row keeps the SHA-256 and size of the plaintext; a full read checks both.

Life cycle. A blob is written before the row that names it is saved (inside the caller's transaction); a rolled
back transaction therefore leaves an orphan file, never a row pointing at a missing file. `komu blobs gc` removes
files no row names once they are older than a grace period (longer than any transaction). Deleting a row (a
retention run, a cascade) deletes its file after the transaction commits (transaction.on_commit), so a rolled back
delete keeps its file. Blobs are immutable: a changed attachment is a new blob.

This module imports no domain app: the models declare a BlobField and the store finds them by that field type.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import logging
import secrets
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import IO, Any

import tink
from django.apps import apps
from django.core.files import File
from django.core.files.storage import Storage, storages
from django.db import models, transaction
from django.utils import timezone
from tink import json_proto_keyset_format, secret_key_access, streaming_aead

from komu.security.keys import DecryptionError

streaming_aead.register()
logger = logging.getLogger(__name__)

STORAGE_ALIAS = "attachments"
PREFIX = "blobs"
CHUNK = 1 << 16
# Ciphertext up to this size is assembled in memory before it is handed to the store; larger spills to a
# temporary file (S3 uploads need a seekable source).
_SPOOL_BYTES = 8 * 1024 * 1024
DEFAULT_GRACE = datetime.timedelta(hours=24)
_TEMPLATE = streaming_aead.streaming_aead_key_templates.AES256_GCM_HKDF_1MB


class BlobMissingError(Exception):
    """The store has no file under a name a row gives: the store and the database do not belong together."""


def blob_storage() -> Storage:
    return storages[STORAGE_ALIAS]


class BlobField(models.CharField):  # type: ignore[type-arg]
    """The store name of a row's encrypted file. `key_field` names the row's EncryptedTextField holding the data
    key. Deleting the row deletes the file once the transaction commits (infrastructure, as FileField cleanup
    would be: connected here so no model or service can forget it)."""

    def __init__(self, *args: Any, key_field: str = "blob_key", **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 100)
        kwargs.setdefault("editable", False)
        self.key_field = key_field
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        if self.key_field != "blob_key":
            kwargs["key_field"] = self.key_field
        return name, path, args, kwargs

    def contribute_to_class(self, cls: type[models.Model], name: str, *args: Any, **kwargs: Any) -> None:
        super().contribute_to_class(cls, name, *args, **kwargs)
        if not cls._meta.abstract:
            models.signals.post_delete.connect(
                _delete_after_commit, sender=cls, dispatch_uid=f"komu.security.blobs.{cls._meta.label}.{name}"
            )


def _delete_after_commit(
    sender: type[models.Model], instance: models.Model, using: str = "default", **kwargs: Any
) -> None:
    for f in blob_fields(sender):
        name = instance.__dict__.get(f.attname)
        if name:
            transaction.on_commit(partial(_delete_quietly, str(name)), using=using)


def _delete_quietly(name: str) -> None:
    # After commit nothing can be rolled back any more; a file that cannot be deleted now is an orphan that
    # `komu blobs gc` removes later.
    try:
        blob_storage().delete(name)
    except Exception as exc:  # any failure: see above, the gc is the fallback
        logger.warning("blob %s not deleted (komu blobs gc will): %s", name, exc)


def blob_fields(model: type[models.Model]) -> list[BlobField]:
    return [f for f in model._meta.concrete_fields if isinstance(f, BlobField)]


def blob_models() -> list[tuple[type[models.Model], list[BlobField]]]:
    found = []
    for model in apps.get_models():
        fields = blob_fields(model)
        if fields:
            found.append((model, fields))
    return found


def _field(instance: models.Model, field_name: str) -> BlobField:
    f = instance._meta.get_field(field_name)
    if not isinstance(f, BlobField):
        raise TypeError(f"{type(instance).__name__}.{field_name} is not a BlobField")
    return f


def binding(instance: models.Model, field_name: str = "blob") -> bytes:
    """The associated data of a row's file: its table, column and key (as encrypted columns bind theirs)."""
    f = _field(instance, field_name)
    if instance.pk is None:
        raise ValueError(
            f"{type(instance).__name__}: 添付ファイルの保存前に主キーが必要です（UUID の既定値を使ってください）。"
        )
    return f"{instance._meta.db_table}.{f.column}.{instance.pk}".encode()


def new_name() -> str:
    token = secrets.token_hex(32)
    return f"{PREFIX}/{token[:2]}/{token}"


@dataclass(frozen=True)
class StoredBlob:
    name: str
    sha256: str
    size: int


class _KeepOpen(io.RawIOBase):
    """Tink closes the stream it writes into; the spool must stay open until the store has read it."""

    def __init__(self, target: IO[bytes]) -> None:
        self._target = target

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return self._target.write(bytes(data))


def _chunks(data: bytes | IO[bytes] | Iterable[bytes]) -> Iterator[bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data)
        for start in range(0, len(view), CHUNK):
            yield bytes(view[start : start + CHUNK])
    elif hasattr(data, "read"):
        reader: Any = data
        while chunk := reader.read(CHUNK):
            yield chunk
    else:
        yield from data


def blob_put(
    instance: models.Model, data: bytes | IO[bytes] | Iterable[bytes], *, field_name: str = "blob"
) -> StoredBlob:
    """Encrypt `data` into a new file of the store and point `instance` at it (name and data key set on the
    instance, not saved: the caller saves the row in its transaction, after this returns)."""
    f = _field(instance, field_name)
    handle = tink.new_keyset_handle(_TEMPLATE)
    primitive = handle.primitive(streaming_aead.StreamingAead)
    digest = hashlib.sha256()
    size = 0
    name = new_name()
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
        with primitive.new_encrypting_stream(_KeepOpen(spool), binding(instance, field_name)) as sealed:
            for chunk in _chunks(data):
                digest.update(chunk)
                size += len(chunk)
                sealed.write(chunk)
        spool.seek(0)
        saved = blob_storage().save(name, File(spool, name=name))
    setattr(instance, f.attname, saved)
    setattr(instance, f.key_field, json_proto_keyset_format.serialize(handle, secret_key_access.TOKEN))
    return StoredBlob(name=saved, sha256=digest.hexdigest(), size=size)


class BlobReader:
    """The plaintext of a row's file as an iterator of chunks (for StreamingHttpResponse). The file is opened
    and its first segment authenticated when the reader is made, so a missing or foreign file fails before a
    response starts; the SHA-256 and size recorded in the row are checked once the last chunk has been read."""

    def __init__(
        self, instance: models.Model, *, field_name: str = "blob", sha256: str = "", size: int | None = None
    ) -> None:
        f = _field(instance, field_name)
        name = str(getattr(instance, f.attname) or "")
        if not name:
            raise BlobMissingError(
                f"{instance._meta.db_table} {instance.pk}: 添付ファイルの保存名がありません。"
            )
        self.name = name
        self._sha256, self._size = sha256, size
        try:
            keyset = json_proto_keyset_format.parse(
                str(getattr(instance, f.key_field)), secret_key_access.TOKEN
            )
            primitive = keyset.primitive(streaming_aead.StreamingAead)
        except (tink.TinkError, ValueError) as exc:
            raise DecryptionError(f"{name}: 添付ファイルの鍵を読めません。") from exc
        try:
            self._source = blob_storage().open(name, "rb")
        except (FileNotFoundError, OSError) as exc:
            raise BlobMissingError(f"添付ファイル {name} が保存先にありません。") from exc
        try:
            self._plain = primitive.new_decrypting_stream(self._source, binding(instance, field_name))
            self._first = self._read()
        except BaseException:
            self.close()
            raise
        self._digest = hashlib.sha256(self._first)
        self._count = len(self._first)

    def _read(self) -> bytes:
        try:
            return bytes(self._plain.read(CHUNK))
        except tink.TinkError as exc:
            raise DecryptionError(
                f"添付ファイル {self.name} を復号できません: 鍵が違うか、ファイルが改ざんされています。"
            ) from exc
        except FileNotFoundError as exc:
            raise BlobMissingError(f"添付ファイル {self.name} が保存先にありません。") from exc

    def __iter__(self) -> Iterator[bytes]:
        try:
            chunk = self._first
            while chunk:
                yield chunk
                chunk = self._read()
                self._digest.update(chunk)
                self._count += len(chunk)
            if (self._sha256 and self._digest.hexdigest() != self._sha256) or (
                self._size is not None and self._count != self._size
            ):
                raise DecryptionError(f"添付ファイル {self.name} の内容が記録と一致しません。")
        finally:
            self.close()

    def close(self) -> None:
        for stream in (getattr(self, "_plain", None), getattr(self, "_source", None)):
            if stream is not None:
                # Closing a reader never hides the error that made it close early.
                with contextlib.suppress(Exception):
                    stream.close()


def blob_open(
    instance: models.Model, *, field_name: str = "blob", sha256: str = "", size: int | None = None
) -> BlobReader:
    return BlobReader(instance, field_name=field_name, sha256=sha256, size=size)


def blob_read(
    instance: models.Model, *, field_name: str = "blob", sha256: str = "", size: int | None = None
) -> bytes:
    return b"".join(blob_open(instance, field_name=field_name, sha256=sha256, size=size))


def blob_delete_on_commit(instance: models.Model, *, field_name: str = "blob") -> None:
    """For a service that points a row at a new blob: the old file goes once the change has committed."""
    name = getattr(instance, _field(instance, field_name).attname)
    if name:
        transaction.on_commit(partial(_delete_quietly, str(name)))


# --- The store as a whole: listing, references, garbage collection ----------------------------------------------


def stored_names(storage: Storage | None = None) -> Iterator[str]:
    """Every file name under blobs/ in the store (two levels: blobs/<2 hex>/<64 hex>)."""
    storage = storage or blob_storage()
    try:
        folders, _files = storage.listdir(PREFIX)
    except FileNotFoundError:
        return
    for folder in sorted(folders):
        _sub, files = storage.listdir(f"{PREFIX}/{folder}")
        for name in sorted(files):
            yield f"{PREFIX}/{folder}/{name}"


def referenced_names() -> set[str]:
    """Every blob name a row of the database gives."""
    names: set[str] = set()
    for model, fields in blob_models():
        for f in fields:
            names.update(
                str(n)
                for n in model._base_manager.exclude(**{f.attname: ""}).values_list(f.attname, flat=True)
            )
    return names


@dataclass
class GcReport:
    stored: int = 0
    referenced: int = 0
    removed: list[str] = field(default_factory=list)
    young: int = 0
    missing: list[str] = field(default_factory=list)


def blobs_gc(*, grace: datetime.timedelta = DEFAULT_GRACE, dry_run: bool = False) -> GcReport:
    """Remove files no row names that are older than `grace`. The store is listed before the database is read,
    so a file whose row commits meanwhile is seen as referenced; a file whose transaction is still open is
    younger than the grace period and stays. Also reports rows whose file is missing (never created by Komu
    itself: a store restored from another backup than the database)."""
    storage = blob_storage()
    listed = list(stored_names(storage))
    referenced = referenced_names()
    report = GcReport(stored=len(listed), referenced=len(referenced))
    cutoff = timezone.now() - grace
    for name in listed:
        if name in referenced:
            continue
        if storage.get_modified_time(name) > cutoff:
            report.young += 1
            continue
        report.removed.append(name)
        if not dry_run:
            storage.delete(name)
    present = set(listed)
    # A name not listed may belong to a row committed after the listing: look again before calling it missing.
    report.missing = sorted(n for n in referenced if n not in present and not storage.exists(n))
    return report


# --- `komu check --deploy` ----------------------------------------------------------------------------------------


def check_storage(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """The attachments store as configured: a bucket named, credentials whole, TLS off loopback, and never the key
    file inside the attachments folder (it would travel with every copy of the folder)."""
    import os
    from pathlib import Path
    from urllib.parse import urlsplit

    from django.conf import settings
    from django.core import checks

    found: list[Any] = []
    kind = getattr(settings, "KOMU_STORAGE", "filesystem")
    key_file = Path(settings.KOMU_KEY_FILE).resolve()
    if kind == "s3":
        if not settings.KOMU_S3_BUCKET:
            found.append(
                checks.Error(
                    "KOMU_STORAGE=s3 ですが KOMU_S3_BUCKET がありません。",
                    hint="添付ファイルを置くバケット名を指定してください。",
                    id="komu.E101",
                )
            )
        endpoint = urlsplit(settings.KOMU_S3_ENDPOINT_URL) if settings.KOMU_S3_ENDPOINT_URL else None
        if (
            endpoint is not None
            and endpoint.scheme != "https"
            and endpoint.hostname not in {"127.0.0.1", "localhost", "::1"}
        ):
            found.append(
                checks.Warning(
                    f"KOMU_S3_ENDPOINT_URL={settings.KOMU_S3_ENDPOINT_URL} は暗号化されていない接続です。",
                    hint="https:// のエンドポイントを指定してください（中身は暗号化済みでも、認証情報が平文で流れます）。",
                    id="komu.W102",
                )
            )
        if bool(os.environ.get("KOMU_S3_ACCESS_KEY_ID")) != bool(os.environ.get("KOMU_S3_SECRET_ACCESS_KEY")):
            found.append(
                checks.Error(
                    "KOMU_S3_ACCESS_KEY_ID と KOMU_S3_SECRET_ACCESS_KEY は両方指定してください（どちらも省くとインスタンスの"
                    "ロールなど boto3 の既定の認証情報を使います）。",
                    id="komu.E103",
                )
            )
        return found
    media = Path(settings.MEDIA_ROOT).resolve()
    if (
        key_file == media
        or media in key_file.parents
        or key_file.parent == media
        or media in key_file.parent.parents
    ):
        found.append(
            checks.Error(
                f"鍵ファイル {key_file} が添付ファイルのフォルダ {media} の中にあります。",
                hint="鍵ファイルは添付ファイルやデータベースとは別のボリュームに置いてください（KOMU_KEY_FILE）。",
                id="komu.E104",
            )
        )
    elif key_file.parent.exists() and media.exists() and key_file.parent.stat().st_dev == media.stat().st_dev:
        found.append(
            checks.Info(
                f"鍵ファイル {key_file} と添付ファイル {media} が同じボリュームにあります。",
                hint="本番では鍵ファイルを別のボリュームに置くと、添付ファイルのボリュームのコピーに鍵が含まれません。",
                id="komu.I105",
            )
        )
    return found


# --- Data migrations: base64 inside an encrypted column ⇄ a blob -------------------------------------------------


def migrate_column_to_blobs(
    model: type[models.Model], *, column: str = "content", size_field: str = ""
) -> int:
    """Move every row's base64 `column` into a new blob (used by the apps' migrations with their historical model).
    The blobs are written before the rows are updated in the migration's transaction: a failed migration leaves
    orphan files for `komu blobs gc`, never a row without its file."""
    import base64

    moved = 0
    for row in model._base_manager.all().iterator(chunk_size=200):
        data = base64.b64decode(str(getattr(row, column)).encode("ascii"))
        stored = blob_put(row, data)
        fields = ["blob", "blob_key"]
        if size_field:
            setattr(row, size_field, stored.size)
            fields.append(size_field)
        row.save(update_fields=fields)
        moved += 1
    return moved


def migrate_blobs_to_column(model: type[models.Model], *, column: str = "content") -> int:
    """The way back: each blob's bytes as base64 into `column`; the files are deleted once the migration commits."""
    import base64

    moved = 0
    for row in model._base_manager.all().iterator(chunk_size=200):
        if not getattr(row, "blob", ""):
            continue
        data = blob_read(row)
        setattr(row, column, base64.b64encode(data).decode("ascii"))
        row.save(update_fields=[column])
        transaction.on_commit(partial(_delete_quietly, str(row.blob)))  # type: ignore[attr-defined]
        moved += 1
    return moved
