"""`komu backup` and `komu restore`: the database and the attachments, never the keys.

A backup is a folder:

- `database.dump` — PostgreSQL: `pg_dump --format=custom`, one consistent snapshot (pg_dump reads everything in a
  single repeatable-read transaction while the service keeps running); SQLite: `database.sqlite3`, a copy made
  with SQLite's online backup API (also consistent);
- `media.tar` — the attachments folder (settings.MEDIA_ROOT), taken after the database snapshot;
- `manifest.json` — format, time, engine, the applied migrations, every table's row count, the SHA-256 and size
  of each file, and the ids of the keys the data was encrypted with (ids only: the key file itself is never
  copied — docs/operations.md says how keys are kept apart).

`komu restore` checks every checksum before touching anything, refuses a database that already has tables, loads
the dump, unpacks the attachments, compares every table's row count with the manifest and verifies the audit
log's HMAC chain — which fails at the first event when the key file in place is not the one the data belongs to.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

FORMAT = "komu-backup/1"
MANIFEST = "manifest.json"
PG_DUMP = "database.dump"
SQLITE_COPY = "database.sqlite3"
MEDIA = "media.tar"


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why and what to do (Japanese, for operators)."""


def pg_bin(tool: str) -> str:
    configured = os.environ.get("KOMU_PG_BIN")
    candidates = [Path(configured)] if configured else []
    candidates.append(Path("/usr/lib/postgresql/15/bin"))
    for folder in candidates:
        if (folder / tool).exists():
            return str(folder / tool)
    found = shutil.which(tool)
    if found is None:
        raise BackupError(f"{tool} が見つかりません。PostgreSQL のクライアント（postgresql-client-15）を入れてください。")
    return found


def _pg_env_args() -> tuple[dict[str, str], list[str]]:
    db = settings.DATABASES["default"]
    env = dict(os.environ)
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    args = []
    if db.get("HOST"):
        args += ["-h", str(db["HOST"])]
    if db.get("PORT"):
        args += ["-p", str(db["PORT"])]
    if db.get("USER"):
        args += ["-U", str(db["USER"])]
    args += ["-d", str(db["NAME"])]
    return env, args


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sqlite_counts(db: sqlite3.Connection) -> dict[str, int]:
    names = [row[0] for row in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    return {name: int(db.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0]) for name in names}  # noqa: S608


def table_counts() -> dict[str, int]:
    """Every table's row count (tables only, from the database's own catalogue)."""
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        return _sqlite_counts(connection.connection)
    counts: dict[str, int] = {}
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names(cursor)):
            cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")  # noqa: S608 - names from the catalogue
            counts[table] = int(cursor.fetchone()[0])
    return counts


def _key_ids() -> dict[str, Any]:
    from komu.security.keys import get_keyring

    keyring = get_keyring()
    return {name: int(handle.keyset_info().primary_key_id) for name, handle in sorted(keyring.handles.items())}


def _excluded(path: Path) -> bool:
    """Never copy the key file (or anything in its folder) even if someone put it under the media folder."""
    key_file = Path(settings.KOMU_KEY_FILE).resolve()
    resolved = path.resolve()
    return resolved == key_file or key_file.parent in resolved.parents or resolved == key_file.parent


def _write_media(target: Path) -> int:
    media = Path(settings.MEDIA_ROOT)
    files = 0
    with tarfile.open(target, "w") as tar:
        if media.is_dir():
            for path in sorted(media.rglob("*")):
                if _excluded(path) or not (path.is_file() or path.is_dir()) or path.is_symlink():
                    continue
                tar.add(path, arcname=str(path.relative_to(media)), recursive=False)
                files += path.is_file()
    return files


def _dump_postgres(target: Path) -> dict[str, int]:
    """pg_dump of the snapshot this connection exports, and every table's row count in that same snapshot: the
    manifest's counts are exactly what the dump holds, however busy the database is meanwhile."""
    env, args = _pg_env_args()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot = str(cursor.fetchone()[0])
        counts = table_counts()
        done = subprocess.run(  # noqa: S603 - fixed tool, arguments from settings, no shell
            [pg_bin("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", f"--snapshot={snapshot}",
             "--file", str(target), *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        shutil.rmtree(target.parent, ignore_errors=True)
        raise BackupError(f"pg_dump が失敗しました: {done.stderr.strip()[-500:]}")
    return counts


@dataclass
class BackupResult:
    folder: Path
    manifest: dict[str, Any] = field(default_factory=dict)


def backup_create(*, output: Path) -> BackupResult:
    """Write a backup folder under `output` and return it. Nothing is written outside that new folder."""
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    folder = output / f"komu-backup-{stamp}"
    if folder.exists():
        raise BackupError(f"{folder} は既にあります。少し待ってからもう一度実行してください。")
    folder.mkdir(parents=True, mode=0o700)
    vendor = connection.vendor
    if vendor == "postgresql":
        counts = _dump_postgres(folder / PG_DUMP)
        db_file = PG_DUMP
    elif vendor == "sqlite":
        connection.ensure_connection()
        target = sqlite3.connect(folder / SQLITE_COPY)
        try:
            connection.connection.backup(target)
            counts = _sqlite_counts(target)
        finally:
            target.close()
        db_file = SQLITE_COPY
    else:
        raise BackupError(f"このデータベース（{vendor}）のバックアップには対応していません。")
    media_files = _write_media(folder / MEDIA)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "created_at": timezone.now().isoformat(),
        "engine": vendor,
        "database_file": db_file,
        "media_files": media_files,
        "migrations": sorted(f"{app}.{name}" for app, name in MigrationRecorder(connection).applied_migrations()),
        "tables": counts,
        "key_ids": _key_ids(),
        "files": {
            name: {"sha256": sha256_of(folder / name), "bytes": (folder / name).stat().st_size}
            for name in (db_file, MEDIA)
        },
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True))
    return BackupResult(folder=folder, manifest=manifest)


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise BackupError(f"{path} がありません。バックアップのフォルダを指定してください。")
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except ValueError as exc:
        raise BackupError(f"{path} が壊れています。") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"このバックアップの形式（{manifest.get('format')}）には対応していません。")
    for name, expected in manifest["files"].items():
        file = folder / name
        if not file.is_file() or sha256_of(file) != expected["sha256"]:
            raise BackupError(f"{name} のチェックサムが一致しません（欠けているか壊れています）。何も戻していません。")
    return manifest


@dataclass
class RestoreResult:
    tables: int
    rows: int
    media_files: int
    audit_events: int
    mismatched: dict[str, tuple[int, int]]


def _database_is_empty() -> bool:
    with connection.cursor() as cursor:
        return not connection.introspection.table_names(cursor)


def backup_restore(*, folder: Path) -> RestoreResult:
    """Restore a backup into the empty database and media folder this process is configured for."""
    manifest = read_manifest(folder)
    vendor = connection.vendor
    if manifest["engine"] != vendor:
        raise BackupError(f"{manifest['engine']} のバックアップは {vendor} には戻せません。")
    if not _database_is_empty():
        raise BackupError("戻し先のデータベースにテーブルがあります。空のデータベースを指定してください（上書きはしません）。")
    media = Path(settings.MEDIA_ROOT)
    if media.is_dir() and any(media.iterdir()):
        raise BackupError(f"添付ファイルのフォルダ {media} が空ではありません。空のフォルダを指定してください。")
    if vendor == "postgresql":
        env, args = _pg_env_args()
        done = subprocess.run(  # noqa: S603 - fixed tool, arguments from settings, no shell
            [pg_bin("pg_restore"), "--exit-on-error", "--single-transaction", "--no-owner",
                               "--no-privileges", *args, str(folder / PG_DUMP)], env=env, capture_output=True,
                              text=True, check=False)
        if done.returncode != 0:
            raise BackupError(f"pg_restore が失敗しました（何も戻していません）: {done.stderr.strip()[-500:]}")
    else:
        connection.ensure_connection()
        source = sqlite3.connect(f"file:{folder / SQLITE_COPY}?mode=ro", uri=True)
        try:
            source.backup(connection.connection)
        finally:
            source.close()
    connection.close()  # the next query sees the restored schema
    media.mkdir(parents=True, exist_ok=True)
    with tarfile.open(folder / MEDIA) as tar:
        tar.extractall(media, filter="data")
    media_files = sum(1 for p in media.rglob("*") if p.is_file())
    counts = table_counts()
    expected: dict[str, int] = manifest["tables"]
    mismatched = {
        name: (expected.get(name, -1), counts.get(name, -1))
        for name in sorted(set(expected) | set(counts))
        if expected.get(name) != counts.get(name)
    }
    from komu.audit.services import audit_verify

    checked, broken = audit_verify()
    if broken is not None:
        raise BackupError(
            f"戻したデータの監査ログを検証できません（イベント #{broken.event_id}: {broken.reason}）。"
            "鍵ファイルがこのデータのものと違う可能性があります。KOMU_KEY_FILE を確認してください。"
        )
    return RestoreResult(tables=len(counts), rows=sum(counts.values()), media_files=media_files,
                         audit_events=checked, mismatched=mismatched)
