"""学齢簿の取込: a board's 学齢簿 extract, uploaded, checked (dry run) and applied all-or-nothing.

The life of an import (komu.rosters.models.GakureiboImport):

1. ``gakureibo_import_create`` — a board officer uploads a file. The byte limit is checked before anything is
   parsed; the bytes are kept encrypted (base64 in ``content``) with their SHA-256 until the import ends.
2. ``gakureibo_import_validate`` (a background task) — parses the file with komu.interop.gakureibo and compares
   every row with the board's 学齢簿 of that 年度: new / changed / unchanged, unknown 学校コード, likely
   duplicates already in the database. Nothing is written to the 学齢簿. The report (errors with file, line,
   column, value and what to do; warnings; counts; a sample of the changes) is stored encrypted.
3. ``gakureibo_import_apply`` — only after a successful validation of the same file (same SHA-256): parses again
   and writes everything in ONE transaction: new entries inserted in batches, changed ones updated, unchanged
   ones untouched (the same file imported twice changes nothing the second time), an audit event per batch of
   entries and one summary event. Changes to entries already sent to a school become roster amendments. A failure
   anywhere leaves nothing behind and marks the import failed with a Japanese message.
4. ``gakureibo_import_discard`` — the officer throws an import away; the file content is deleted.

Speed: a large city's file has 100,000 rows. Entries are written with ``bulk_create`` and batched
``UPDATE … CASE``; the encrypted record goes through the same field code as any ORM save (associated data
``table.column.row-uuid``), so the ORM reads back what was written. Progress is written to the database while
validating (no transaction is open) and to the shared cache while applying (the transaction hides the rows from
other connections until it commits).
"""

from __future__ import annotations

import base64
import binascii
import csv
import datetime as dt
import hashlib
import io
import json
import logging
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Final

from django.core.cache import cache
from django.db import DatabaseError, connection, models, transaction
from django.db.models import Case, QuerySet, Value, When
from django.utils import timezone

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.audit.services import Scope, audit_record
from komu.core.errors import KomuError, NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.core.tabular import normalize_header
from komu.directory.models import Board, School
from komu.interop.gakureibo import EntrantRow, GakureiboIssue, GakureiboParse, Layout, parse_gakureibo
from komu.rosters.models import RECORD_KEYS, GakureiboEntry, GakureiboImport, Roster
from komu.rosters.records import content_digest, record_diff
from komu.security.fields import BlindIndexField, Token, associated_data
from komu.security.keys import get_keyring

logger = logging.getLogger(__name__)

# A whole 学齢簿 of a large city (100,000 children at ~250 bytes a row) fits with room to spare; the limit is
# checked on the upload's length before anything is decoded or stored.
MAX_FILE_BYTES: Final = 64 * 1024 * 1024
MAX_ROWS: Final = 200_000
BATCH_SIZE: Final = 1000  # rows per bulk statement and per audit event
SAMPLE_SIZE: Final = 20  # changes shown in the dry-run report, per kind
MAX_STORED_WARNINGS: Final = 1000  # all are counted; the first ones are listed
LAYOUTS: Final[tuple[Layout, ...]] = ("auto", "komu", "applic")
_PROGRESS_SECONDS: Final = 6 * 3600
_STALLED_SECONDS: Final = 60  # waiting longer than this for the task worker is worth telling the officer
# A running import publishes its progress at least every few seconds; this long without it, its process is gone.
_INTERRUPTED_SECONDS: Final = 300


class ImportFailed(KomuError):
    """The import could not be completed; nothing was written. The message is for the user, in Japanese."""


@dataclass(frozen=True)
class Progress:
    status: str
    done: int
    total: int
    # Applying was asked for over a minute ago and no worker has picked it up.
    stalled: bool = False
    # The process running it stopped (killed, server restarted): no progress for _INTERRUPTED_SECONDS. Its
    # transaction was rolled back, so nothing was written; gakureibo_import_recover lets the officer go on.
    interrupted: bool = False

    @property
    def finished(self) -> bool:
        return self.status not in (
            GakureiboImport.Status.QUEUED,
            GakureiboImport.Status.VALIDATING,
            GakureiboImport.Status.APPLYING,
        )

    @property
    def percent(self) -> int:
        return int(self.done * 100 / self.total) if self.total else 0


# --- access ---------------------------------------------------------------------------------------------------


def gakureibo_boards_for(*, actor: Actor) -> QuerySet[Board]:
    """The boards whose 学齢簿 the actor keeps (board officers: their own board and the boards under it)."""
    return scope.boards_for(actor, roles.GAKUREIBO_MANAGE).order_by("code")


def _require_board(actor: Actor, board: Board) -> None:
    if not actor.has(roles.GAKUREIBO_MANAGE):
        raise PermissionDeniedError("学齢簿を取り込む権限がありません。")
    if not gakureibo_boards_for(actor=actor).filter(pk=board.pk).exists():
        raise NotFoundOrNoAccess("見つかりません。")


def gakureibo_import_get_for(*, actor: Actor, import_id: Any) -> GakureiboImport:
    """One import of a board the actor keeps; 404 alike for a missing one and another board's."""
    # The stored file (megabytes) is left in the database unless a caller really reads it.
    qs = (
        GakureiboImport.objects.filter(board__in=gakureibo_boards_for(actor=actor))
        .select_related("board", "created_by")
        .defer("content")
    )
    return scope.get_in_scope(qs, pk=import_id)


def gakureibo_imports_awaiting_apply(*, actor: Actor) -> list[GakureiboImport]:
    """For the home page of a board officer: imports checked without errors and not yet applied or discarded
    (「学齢簿の取込が確認済みです（未反映）」). No personal data: file name, 年度, counts."""
    return list(
        GakureiboImport.objects.filter(
            board__in=gakureibo_boards_for(actor=actor), status=GakureiboImport.Status.VALIDATED
        )
        .defer("content", "report")
        .select_related("board")
        .order_by("-created_at")[:20]
    )


def gakureibo_imports_for_board(*, actor: Actor, board: Board, limit: int = 50) -> list[GakureiboImport]:
    """The board's recent imports, newest first (no personal data: file name, status, counts)."""
    _require_board(actor, board)
    return list(
        GakureiboImport.objects.filter(board=board)
        .select_related("created_by")
        .defer("content", "report")
        .order_by("-created_at")[:limit]
    )


@transaction.atomic
def gakureibo_import_report(*, actor: Actor, import_id: Any) -> tuple[GakureiboImport, dict[str, Any]]:
    """The import and its dry-run report. The report quotes cell values (names, ids), so reading it is audited."""
    imp = gakureibo_import_get_for(actor=actor, import_id=import_id)
    report = imp.data
    if report:
        audit_record(
            actor=actor.user, action="rosters.gakureibo_import.report_viewed", obj=imp,
            fields=["report"], scope=Scope(board_id=imp.board_id),
        )
    return imp, report


# --- progress -------------------------------------------------------------------------------------------------


def _progress_key(import_id: Any) -> str:
    return f"komu:rosters:gakureibo-import:{import_id}:progress"


# The database copy of the progress is refreshed at most this often: SQLite rewrites the whole row on UPDATE,
# including the stored file (tens of MB for a large city), so one update per batch would cost more than the work.
_DB_PROGRESS_EVERY_SECONDS: Final = 2.0


def _progress_publish(imp: GakureiboImport, *, to_database: bool, force: bool = True) -> None:
    cache.set(
        _progress_key(imp.pk),
        {"status": imp.status, "done": imp.progress_done, "total": imp.progress_total, "at": time.time()},
        _PROGRESS_SECONDS,
    )
    now = time.monotonic()
    if to_database and (force or now - imp.__dict__.get("_progress_saved", 0.0) >= _DB_PROGRESS_EVERY_SECONDS):
        # Outside any transaction (validation): committed at once, so another connection sees it.
        imp.__dict__["_progress_saved"] = now
        GakureiboImport.objects.filter(pk=imp.pk).update(
            status=imp.status, progress_done=imp.progress_done, progress_total=imp.progress_total
        )


def gakureibo_import_progress(*, imp: GakureiboImport) -> Progress:
    """Where an import stands. While it runs, the shared cache is ahead of the database (the apply transaction
    is not committed yet); once it has finished the database is the truth."""
    fresh = GakureiboImport.objects.filter(pk=imp.pk).values("status", "progress_done", "progress_total").first()
    if fresh is None:
        raise NotFoundOrNoAccess("見つかりません。")
    progress = Progress(fresh["status"], fresh["progress_done"], fresh["progress_total"])
    cached = cache.get(_progress_key(imp.pk))
    if progress.status == GakureiboImport.Status.VALIDATED and isinstance(cached, dict) and cached.get("requested"):
        # Applying was asked for; the task has not started yet.
        waited = time.time() - float(cached.get("requested_at", time.time()))
        return Progress(GakureiboImport.Status.APPLYING, 0, progress.total, stalled=waited > _STALLED_SECONDS)
    if progress.finished:
        return progress
    running = (GakureiboImport.Status.VALIDATING, GakureiboImport.Status.APPLYING)
    beat = float(cached.get("at", 0.0)) if isinstance(cached, dict) else 0.0
    if progress.status in running and time.time() - beat > _INTERRUPTED_SECONDS:
        return Progress(progress.status, progress.done, progress.total, interrupted=True)
    if isinstance(cached, dict) and cached.get("status") in running:
        return Progress(str(cached["status"]), int(cached["done"]), int(cached["total"]))
    return progress


@transaction.atomic
def gakureibo_import_recover(*, actor: Actor, import_id: Any) -> GakureiboImport:
    """Release an import whose process stopped mid-way (a server restart, a killed worker). Its transaction was
    rolled back, so no entry was written: an interrupted apply returns to 検証済み and can be applied again; an
    interrupted dry run is marked failed (upload the file again). Refused while the import is still running."""
    imp = gakureibo_import_get_for(actor=actor, import_id=import_id)
    _require_board(actor, imp.board)
    if not gakureibo_import_progress(imp=imp).interrupted:
        raise ValidationFailed("この取込は中断していません。処理が終わるまでお待ちください。")
    try:
        # A live apply holds this row's lock for its whole transaction (PostgreSQL); SQLite has one writer.
        imp = GakureiboImport.objects.select_for_update(nowait=True).get(pk=imp.pk)
    except DatabaseError as exc:
        raise ValidationFailed("この取込はまだ処理中です。しばらく待ってから確認してください。") from exc
    before = imp.status
    if imp.status == GakureiboImport.Status.APPLYING and imp.content:
        imp.status = GakureiboImport.Status.VALIDATED
    else:
        imp.status = GakureiboImport.Status.FAILED
        imp.content = ""
        imp.finished_at = timezone.now()
    imp.progress_done = 0
    imp.save()
    cache.delete(_progress_key(imp.pk))
    audit_record(
        actor=actor.user, action="rosters.gakureibo_import.recovered", obj=imp,
        detail={"from": before, "to": imp.status}, scope=Scope(board_id=imp.board_id),
    )
    return imp


# --- create ---------------------------------------------------------------------------------------------------


@transaction.atomic
def gakureibo_import_create(
    *, actor: Actor, board: Board, fiscal_year: int, filename: str, data: bytes, layout: str = "auto"
) -> GakureiboImport:
    """Store an uploaded 学齢簿 file (encrypted) and queue its dry run. Nothing is parsed yet."""
    _require_board(actor, board)
    errors: dict[str, list[str]] = {}
    if layout not in LAYOUTS:
        errors["layout"] = ["形式は「自動判別」「Komu形式」「APPLIC形式」から選んでください。"]
    if not 2000 <= fiscal_year <= 2200:
        errors["fiscal_year"] = ["入学年度を西暦4桁で入力してください（例: 2027）。"]
    if not data:
        errors["file"] = ["ファイルが空です。学齢簿のCSVまたはXLSXファイルを選んでください。"]
    elif len(data) > MAX_FILE_BYTES:
        errors["file"] = [
            f"ファイルが大きすぎます（{len(data) / 1024 / 1024:.1f}MB）。"
            f"{MAX_FILE_BYTES // 1024 // 1024}MB以下に分けてください。"
        ]
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()[:255] or "gakureibo.csv"
    if errors:
        raise ValidationFailed("入力内容を確認してください。", errors=errors)
    imp = GakureiboImport(
        board=board, fiscal_year=fiscal_year, filename=name, layout=layout, size=len(data),
        sha256=hashlib.sha256(data).hexdigest(), content=_pack(data),
        status=GakureiboImport.Status.QUEUED, created_by=actor.user,
    )
    imp.full_clean()
    imp.save(force_insert=True)
    audit_record(
        actor=actor.user, action="rosters.gakureibo_import.uploaded", obj=imp, fields=["content"],
        detail={"filename": name, "size": len(data), "sha256": imp.sha256, "fiscal_year": fiscal_year,
                "layout": layout},
        scope=Scope(board_id=board.pk),
    )
    return imp


# --- comparing a parsed file with the database ----------------------------------------------------------------

_PERSON_INDEX: Final = GakureiboEntry._meta.get_field("person_index")
_KANA_INDEX: Final = GakureiboEntry._meta.get_field("kana_index")
_RECORD_FIELD: Final = GakureiboEntry._meta.get_field("record")
assert isinstance(_PERSON_INDEX, BlindIndexField) and isinstance(_KANA_INDEX, BlindIndexField)


def _flags(row: EntrantRow) -> str:
    # The plain columns that come from the file: a change of 指定校, 区域外就学 or 学級種別 is a change.
    return f"school={row.school_code}|ood={int(row.out_of_district)}|sn={int(row.special_needs)}"


@dataclass(slots=True)
class _Prepared:
    row: EntrantRow
    text: str  # canonical record JSON
    digest: str
    person_index: str
    kana_index: str


def _record_of(row: EntrantRow) -> dict[str, str]:
    """record_from_entrant without dataclasses.asdict's deep copy (a third of a 100,000-row import's time);
    test_record_of_matches_record_from_entrant keeps the two identical."""
    record: dict[str, str] = {}
    for key in RECORD_KEYS:
        value = getattr(row, key, None)
        if value is None:
            record[key] = ""
        elif isinstance(value, dt.date):
            record[key] = value.isoformat()
        else:
            record[key] = str(value)
    return record


def _prepare(row: EntrantRow) -> _Prepared:
    """The record and its keyed values, computed once per row.

    The parser's person id is already NFKC and stripped, and its readings are already canonical katakana, so
    the blind indexes are the PRF of exactly what BlindIndexField's normalisers would produce (skipping a second
    normalize_kana per row); test_raw_insert_matches_what_the_orm_computes holds them equal."""
    # _record_of is already complete and in RECORD_KEYS order, so this is record_json's exact output
    # (test_record_of_matches_record_from_entrant checks both).
    text = json.dumps(_record_of(row), ensure_ascii=False, separators=(",", ":"))
    keyring = get_keyring()
    kana = f"{row.family_name_kana}{row.given_name_kana}".replace(" ", "")
    return _Prepared(
        row=row,
        text=text,
        digest=content_digest(text, flags=_flags(row)),
        person_index=keyring.blind_index(_PERSON_INDEX.purpose, row.person_id) if row.person_id else "",
        kana_index=keyring.blind_index(_KANA_INDEX.purpose, kana) if kana else "",
    )


_PER_ROW: Final = object()


class _RawInserter:
    """INSERT of new entries with the driver's executemany: Django's bulk_create spends most of a large import
    in per-field pre_save/prepare calls and, on SQLite, splits 1,000 rows into ~60-row statements.

    The row is built from the model's own field list, with every value prepared by its field for this database
    (a field added later gets its default), and the record sealed exactly as EncryptedTextField would seal it:
    AES-GCM bound to ``table.column.row-uuid`` (komu.security.fields.associated_data), so the ORM opens it."""

    def __init__(self, imp: GakureiboImport, now: Any) -> None:
        self.fields = [f for f in GakureiboEntry._meta.concrete_fields]
        table = connection.ops.quote_name(GakureiboEntry._meta.db_table)
        columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in self.fields)
        placeholders = ", ".join(["%s"] * len(self.fields))
        self.sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"  # noqa: S608 (names from the model)
        self.copy_sql = f"COPY {table} ({columns}) FROM STDIN"
        self.id_field = GakureiboEntry._meta.pk
        fixed: dict[str, Any] = {
            "created_at": now, "updated_at": now, "board_id": imp.board_id, "fiscal_year": imp.fiscal_year,
            "status": GakureiboEntry.Status.ACTIVE.value, "source": GakureiboEntry.Source.IMPORT.value,
            "last_import_id": imp.pk,
        }
        # Values that are the same for every row, prepared once; _PER_ROW marks the others.
        per_row = {"id", "record", "person_index", "kana_index", "content_digest", "designated_school_id",
                   "out_of_district", "special_needs", "needs_review"}
        self.constant: list[Any] = []
        for field in self.fields:
            if field.attname in per_row:
                self.constant.append(_PER_ROW)
            else:
                value = fixed[field.attname] if field.attname in fixed else field.get_default()
                self.constant.append(field.get_db_prep_save(value, connection))
        self.stub = GakureiboEntry()
        self.keyring = get_keyring()

    def row(self, pk: uuid.UUID, prepared: _Prepared, *, school_id: int | None, needs_review: bool) -> list[Any]:
        self.stub.pk = pk
        per_row = {
            "id": self.id_field.get_db_prep_value(pk, connection, prepared=False),
            "record": self.keyring.encrypt(prepared.text, associated_data(self.stub, _RECORD_FIELD)),
            "person_index": prepared.person_index,
            "kana_index": prepared.kana_index,
            "content_digest": prepared.digest,
            "designated_school_id": school_id,
            "out_of_district": prepared.row.out_of_district,
            "special_needs": prepared.row.special_needs,
            "needs_review": needs_review,
        }
        return [
            per_row[field.attname] if constant is _PER_ROW else constant
            for field, constant in zip(self.fields, self.constant, strict=True)
        ]

    def insert(self, rows: list[list[Any]]) -> None:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # COPY: PostgreSQL's bulk path (executemany costs a round trip per row, and one giant
                # multi-row INSERT spends its time in the driver splitting 16,000 placeholders).
                with cursor.cursor.copy(self.copy_sql) as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                cursor.executemany(self.sql, rows)


@dataclass
class _Existing:
    """What the database holds for (board, 年度): person index → (entry id, digest), and the kana index of
    every entry, to spot the same child under another person id."""

    by_person: dict[str, tuple[uuid.UUID, str]]
    by_kana: dict[str, list[uuid.UUID]]

    @classmethod
    def load(cls, board: Board, fiscal_year: int, *, for_update: bool = False) -> _Existing:
        qs = GakureiboEntry.objects.filter(board=board, fiscal_year=fiscal_year)
        if for_update:
            qs = qs.select_for_update()
        by_person: dict[str, tuple[uuid.UUID, str]] = {}
        by_kana: dict[str, list[uuid.UUID]] = {}
        for pk, person_index, kana_index, digest in qs.values_list(
            "pk", "person_index", "kana_index", "content_digest"
        ).iterator(chunk_size=5000):
            by_person[person_index] = (pk, digest)
            if kana_index:
                by_kana.setdefault(kana_index, []).append(pk)
        return cls(by_person, by_kana)


def _issue(issue: GakureiboIssue) -> dict[str, Any]:
    return asdict(issue)


class _Comparison:
    """Walks the parsed rows once, classifying each against the database and collecting DB-level warnings."""

    def __init__(self, imp: GakureiboImport, parse: GakureiboParse, existing: _Existing) -> None:
        self.imp = imp
        self.parse = parse
        self.existing = existing
        codes = {r.school_code for r in parse.rows if r.school_code}
        self.schools: dict[str, int] = dict(School.objects.filter(code__in=codes).values_list("code", "pk"))
        self.warnings: list[GakureiboIssue] = []
        self.review_lines: set[int] = set()
        self.counts = {"new": 0, "changed": 0, "unchanged": 0}

    def _warn(self, row: EntrantRow, column: str | None, value: str | None, message: str, code: str) -> None:
        self.review_lines.add(row.line)
        self.warnings.append(GakureiboIssue(self.imp.filename, row.line, column, value, message, code))

    def classify(self, prepared: _Prepared) -> tuple[str, uuid.UUID | None]:
        """("new" | "changed" | "unchanged", existing entry id)."""
        row = prepared.row
        if self.parse.layout == "applic" and (
            (row.given_name and row.family_name_kana and not row.given_name_kana)
            or (row.given_name_kana and not row.given_name)
        ):
            # A one-column name (APPLIC 氏名 / 氏名カナ) split differently from its reading. (In the Komu layout
            # a blank reading is the parser's kana_missing already.)
            self._warn(
                row, None, f"{row.family_name_kana} {row.given_name_kana}".strip(),
                f"ふりがなの姓と名の区切りが氏名（{row.family_name} {row.given_name}）と合いません。"
                "姓と名の間に空白があるか確認してください。",
                "kana_mismatch",
            )
        if row.school_code and row.school_code not in self.schools:
            self._warn(
                row, "就学予定校コード", row.school_code,
                f"学校コード「{row.school_code}」の学校がKomuに登録されていません。"
                "取り込んだ後、指定校は画面で指定してください。",
                "school_unknown",
            )
        found = self.existing.by_person.get(prepared.person_index)
        if found is None:
            self._check_duplicate(prepared)
            self.counts["new"] += 1
            return "new", None
        pk, digest = found
        kind = "unchanged" if digest == prepared.digest else "changed"
        self.counts[kind] += 1
        return kind, pk

    def _check_duplicate(self, prepared: _Prepared) -> None:
        # The same child under another person id: same normalised reading and the same birth date.
        candidates = self.existing.by_kana.get(prepared.kana_index) if prepared.kana_index else None
        if not candidates:
            return
        birth = prepared.row.birth_date.isoformat()
        for entry in GakureiboEntry.objects.filter(pk__in=candidates).only("pk", "record"):
            data = entry.data
            if data.get("birth_date") == birth and data.get("person_id") != prepared.row.person_id:
                self._warn(
                    prepared.row, "個人番号", prepared.row.person_id,
                    f"学齢簿に、ふりがなと生年月日が同じ子ども（個人番号「{data.get('person_id')}」）が既に"
                    "登録されています。同じ子どもが別の個人番号で載っていないか確認してください。",
                    "duplicate_in_database",
                )
                return

    def needs_review(self, row: EntrantRow) -> bool:
        return row.needs_review or row.line in self.review_lines


# The stored copy is compressed before it is encoded and encrypted: a CSV of Japanese text shrinks 3–4×, and so
# do the several copies (base64, ciphertext, SQL parameter) that exist for a moment while it is written or read.
_PACKED_PREFIX: Final = "zlib:"


def _pack(data: bytes) -> str:
    return _PACKED_PREFIX + base64.b64encode(zlib.compress(data, 1)).decode("ascii")


def _unpack(content: str, size: int) -> bytes:
    if not content.startswith(_PACKED_PREFIX):
        return base64.b64decode(content.encode("ascii"), validate=True)
    packed = base64.b64decode(content[len(_PACKED_PREFIX):].encode("ascii"), validate=True)
    inflater = zlib.decompressobj()
    data = inflater.decompress(packed, size + 1)  # never more than the upload's recorded size
    if len(data) > size or not inflater.eof:
        raise ValueError("stored file larger than recorded")
    return data


def _decoded_content(imp: GakureiboImport) -> bytes:
    if not imp.content:
        raise ImportFailed("取り込むファイルの内容がもうありません。もう一度ファイルをアップロードしてください。")
    try:
        data = _unpack(imp.content, imp.size)
    except (binascii.Error, ValueError, zlib.error):
        raise ImportFailed("保存したファイルを読み出せません。もう一度ファイルをアップロードしてください。") from None
    if hashlib.sha256(data).hexdigest() != imp.sha256:
        raise ImportFailed("保存したファイルが検証したものと一致しません。もう一度ファイルをアップロードしてください。")
    # Let go of the decrypted base64 text and its ciphertext (together 2.5× the file): the field becomes
    # deferred, so a later save() leaves the stored copy as it is unless the caller sets it.
    imp.__dict__.pop("content", None)
    imp.__dict__.pop("_sealed_content", None)
    return data


def _parse(imp: GakureiboImport, data: bytes) -> GakureiboParse:
    layout: Layout = imp.layout if imp.layout in LAYOUTS else "auto"
    return parse_gakureibo(
        data, filename=imp.filename, layout=layout, fiscal_year=imp.fiscal_year,
        max_bytes=MAX_FILE_BYTES, max_rows=MAX_ROWS,
    )


def _yes_no(value: bool) -> str:
    return "有" if value else "無"


def _class_type(special_needs: bool) -> str:
    return "特別支援" if special_needs else "普通"


def _change_sample(kind: str, prepared: _Prepared, pk: uuid.UUID | None) -> dict[str, Any]:
    new = {**_record_of(prepared.row), "school_code": prepared.row.school_code}
    sample: dict[str, Any] = {"kind": kind, "line": prepared.row.line, "person_id": prepared.row.person_id,
                              "name": f"{prepared.row.family_name} {prepared.row.given_name}".strip()}
    if kind == "changed" and pk is not None:
        entry = GakureiboEntry.objects.filter(pk=pk).select_related("designated_school").first()
        old = entry.data if entry is not None else {}
        diff = record_diff(old, new)
        if entry is not None:
            row = prepared.row
            old_code = entry.designated_school.code if entry.designated_school else ""
            if row.school_code and row.school_code != old_code:
                diff["school_code"] = [old_code, row.school_code]
            if row.out_of_district != entry.out_of_district:
                diff["out_of_district"] = [_yes_no(entry.out_of_district), _yes_no(row.out_of_district)]
            if row.special_needs != entry.special_needs:
                diff["special_needs"] = [_class_type(entry.special_needs), _class_type(row.special_needs)]
        sample["diff"] = diff
    else:
        sample["school_code"] = new["school_code"]
    return sample


# --- validate (dry run) ---------------------------------------------------------------------------------------


def gakureibo_import_validate(
    *, import_id: Any, on_progress: Callable[[int, int], None] | None = None
) -> GakureiboImport:
    """The dry run, as a background task: parse, compare with the database, store the report. Writes nothing to
    the 学齢簿. Progress is committed as it goes (no transaction is held open)."""
    # Claimed with one conditional UPDATE, so two workers never check the same upload.
    claimed = GakureiboImport.objects.filter(pk=import_id, status=GakureiboImport.Status.QUEUED).update(
        status=GakureiboImport.Status.VALIDATING
    )
    imp = GakureiboImport.objects.select_related("board").get(pk=import_id)
    if not claimed:
        return imp  # discarded, being checked by another worker, or checked already
    imp.status = GakureiboImport.Status.VALIDATING
    imp.progress_done = imp.progress_total = 0
    _progress_publish(imp, to_database=True)
    try:
        data = _decoded_content(imp)
        parse = _parse(imp, data)
        report = _validate_report(imp, data, parse, on_progress)
        del data
    except Exception as exc:
        message = str(exc) if isinstance(exc, KomuError) else "検証中に予期しないエラーが起きました。"
        if not isinstance(exc, KomuError):
            logger.exception("gakureibo import %s: validation failed", imp.pk)
        return _mark_failed(imp, message, action="rosters.gakureibo_import.validation_failed")
    with transaction.atomic():
        imp.report = _report_json(report)
        imp.error_count = len(report["errors"])
        imp.warning_count = report["warning_total"]
        imp.status = GakureiboImport.Status.FAILED if imp.error_count else GakureiboImport.Status.VALIDATED
        imp.progress_done = imp.progress_total = report["rows"]
        if imp.error_count:
            imp.content = ""  # a file with errors is never applied: keep no copy of it
            imp.finished_at = timezone.now()
        imp.save()
        audit_record(
            actor=imp.created_by, action="rosters.gakureibo_import.validated", obj=imp,
            detail={"rows": report["rows"], "errors": imp.error_count, "warnings": imp.warning_count,
                    **report["counts"], "sha256": imp.sha256},
            scope=Scope(board_id=imp.board_id),
        )
    _progress_publish(imp, to_database=False)
    return imp


def _with_cell_values(data: bytes, parse: GakureiboParse, issues: list[GakureiboIssue]) -> list[dict[str, Any]]:
    """The issues as dicts, each with the cell's value as the file has it when the parser did not quote it: the
    officer looks for that value in the file. CSV only (an XLSX cell is named by line and column)."""
    rows = [_issue(i) for i in issues]
    wanted = {(r["line"], r["column"]) for r in rows if r["value"] is None and r["line"] and r["column"]}
    if not wanted or parse.format != "csv" or not parse.encoding:
        return rows
    try:
        text = data.decode(parse.encoding)
    except UnicodeDecodeError:
        return rows
    reader = csv.reader(io.StringIO(text, newline=""))
    lines = {line for line, _ in wanted}
    last = max(lines)
    header: dict[str, int] = {}
    found: dict[tuple[int, str], str] = {}
    start = 1
    for cells in reader:
        if not header and any(c.strip() for c in cells):
            header = {normalize_header(c): i for i, c in enumerate(cells)}
        elif start in lines:
            for line, column in wanted:
                index = header.get(normalize_header(column)) if line == start else None
                if index is not None and index < len(cells):
                    found[(line, column)] = cells[index][:200]
        start = reader.line_num + 1
        if start > last:
            break
    for r in rows:
        if r["value"] is None and (r["line"], r["column"]) in found:
            r["value"] = found[(r["line"], r["column"])]
    return rows


def _validate_report(
    imp: GakureiboImport, data: bytes, parse: GakureiboParse, on_progress: Callable[[int, int], None] | None
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "layout": parse.layout, "format": parse.format, "encoding": parse.encoding,
        "errors": _with_cell_values(data, parse, parse.errors), "rows": 0,
        "counts": {"new": 0, "changed": 0, "unchanged": 0}, "changes": [],
    }
    if parse.errors:
        report["warnings"] = [_issue(i) for i in parse.warnings[:MAX_STORED_WARNINGS]]
        report["warning_total"] = len(parse.warnings)
        return report
    imp.progress_total = len(parse.rows)
    _progress_publish(imp, to_database=True)
    comparison = _Comparison(imp, parse, _Existing.load(imp.board, imp.fiscal_year))
    samples: dict[str, list[dict[str, Any]]] = {"new": [], "changed": []}
    for index, row in enumerate(parse.rows, start=1):
        prepared = _prepare(row)
        kind, pk = comparison.classify(prepared)
        if kind != "unchanged" and len(samples[kind]) < SAMPLE_SIZE:
            samples[kind].append(_change_sample(kind, prepared, pk))
        if index % BATCH_SIZE == 0:
            imp.progress_done = index
            _progress_publish(imp, to_database=True, force=False)
            if on_progress is not None:
                on_progress(index, len(parse.rows))
    warnings = sorted([*parse.warnings, *comparison.warnings], key=lambda i: (i.line or 0, i.code))
    report.update(
        rows=len(parse.rows), counts=comparison.counts,
        changes=sorted(samples["changed"] + samples["new"], key=lambda c: int(c["line"])),
        warnings=[_issue(i) for i in warnings[:MAX_STORED_WARNINGS]], warning_total=len(warnings),
        review_rows=sum(1 for r in parse.rows if comparison.needs_review(r)),
    )
    return report


def _report_json(report: dict[str, Any]) -> str:
    return json.dumps(report, ensure_ascii=False, separators=(",", ":"))


def _mark_failed(imp: GakureiboImport, message: str, *, action: str) -> GakureiboImport:
    """Record a failure in its own transaction: the message for the user, no copy of the file kept."""
    with transaction.atomic():
        imp = GakureiboImport.objects.select_for_update().get(pk=imp.pk)
        report = imp.data
        report["failure"] = message
        imp.status = GakureiboImport.Status.FAILED
        imp.report = _report_json(report)
        imp.content = ""
        imp.finished_at = timezone.now()
        imp.save()
        audit_record(
            actor=imp.created_by, action=action, obj=imp, detail={"message": message, "sha256": imp.sha256},
            scope=Scope(board_id=imp.board_id),
        )
    _progress_publish(imp, to_database=False)
    return imp


# --- apply ----------------------------------------------------------------------------------------------------


def _update_changed(
    imp: GakureiboImport, batch: list[tuple[uuid.UUID, _Prepared]], comparison: _Comparison, now: Any
) -> None:
    """One UPDATE … CASE for a batch of changed entries. The record is sealed here, bound to its row exactly as
    the field would (komu.security.fields.associated_data), because a bulk UPDATE bypasses the field's pre_save."""
    keyring = get_keyring()
    entry = GakureiboEntry()
    whens: dict[str, list[When]] = {k: [] for k in (
        "record", "kana_index", "content_digest", "out_of_district", "special_needs", "needs_review",
        "designated_school_id")}
    for pk, prepared in batch:
        row = prepared.row
        entry.pk = pk
        token = Token(keyring.encrypt(prepared.text, associated_data(entry, _RECORD_FIELD)))
        whens["record"].append(When(pk=pk, then=Value(token)))
        whens["kana_index"].append(When(pk=pk, then=Value(prepared.kana_index)))
        whens["content_digest"].append(When(pk=pk, then=Value(prepared.digest)))
        whens["out_of_district"].append(When(pk=pk, then=Value(row.out_of_district)))
        whens["special_needs"].append(When(pk=pk, then=Value(row.special_needs)))
        whens["needs_review"].append(When(pk=pk, then=Value(comparison.needs_review(row))))
        school_id = comparison.schools.get(row.school_code)
        if school_id is not None:  # a blank or unknown code keeps the school chosen on screen
            whens["designated_school_id"].append(When(pk=pk, then=Value(school_id)))
    text, boolean, integer = models.TextField(), models.BooleanField(), models.BigIntegerField()
    values: dict[str, Any] = {
        "record": Case(*whens["record"], output_field=text),
        "kana_index": Case(*whens["kana_index"], output_field=models.CharField()),
        "content_digest": Case(*whens["content_digest"], output_field=models.CharField()),
        "out_of_district": Case(*whens["out_of_district"], output_field=boolean),
        "special_needs": Case(*whens["special_needs"], output_field=boolean),
        "needs_review": Case(*whens["needs_review"], output_field=boolean),
        "last_import_id": Value(imp.pk),
        "source": Value(GakureiboEntry.Source.IMPORT),
        "updated_at": Value(now),
    }
    if whens["designated_school_id"]:
        values["designated_school_id"] = Case(
            *whens["designated_school_id"], default=models.F("designated_school_id"), output_field=integer
        )
    GakureiboEntry.objects.filter(pk__in=[pk for pk, _ in batch]).update(**values)


@transaction.atomic
def gakureibo_import_apply_request(*, actor: Actor, import_id: Any) -> GakureiboImport:
    """The officer asks for a validated import to be applied (by the background task): checked and audited now,
    so the screen can answer at once and show the progress while the task waits for the worker."""
    imp = gakureibo_import_get_for(actor=actor, import_id=import_id)
    _require_board(actor, imp.board)
    if imp.status != GakureiboImport.Status.VALIDATED or imp.error_count:
        raise ValidationFailed("検証が終わり、エラーのない取込だけを反映できます。")
    audit_record(
        actor=actor.user, action="rosters.gakureibo_import.apply_requested", obj=imp,
        detail={"sha256": imp.sha256}, scope=Scope(board_id=imp.board_id),
    )
    cache.set(_progress_key(imp.pk), {"status": GakureiboImport.Status.APPLYING, "done": 0,
                                      "total": imp.progress_total, "requested": True,
                                      "requested_at": time.time()}, _PROGRESS_SECONDS)
    return imp


def gakureibo_import_apply(
    *, actor: Actor, import_id: Any, on_progress: Callable[[int, int], None] | None = None
) -> GakureiboImport:
    """Apply a validated import in one transaction (see the module doc). Raises ImportFailed with a Japanese
    message — after marking the import failed — when anything goes wrong; nothing is then written."""
    imp = gakureibo_import_get_for(actor=actor, import_id=import_id)
    _require_board(actor, imp.board)
    if imp.status != GakureiboImport.Status.VALIDATED or imp.error_count:
        raise ValidationFailed("検証が終わり、エラーのない取込だけを反映できます。")
    updated = GakureiboImport.objects.filter(pk=imp.pk, status=GakureiboImport.Status.VALIDATED).update(
        status=GakureiboImport.Status.APPLYING, progress_done=0
    )
    if not updated:
        raise ValidationFailed("この取込は既に反映中か、反映済みです。")
    imp.status = GakureiboImport.Status.APPLYING
    imp.progress_done = 0
    _progress_publish(imp, to_database=False)
    try:
        with transaction.atomic():
            imp, counts = _apply(actor, imp, on_progress)
    except Exception as exc:
        message = (
            str(exc) if isinstance(exc, KomuError)
            else "取込中にエラーが起きたため、何も反映していません。もう一度お試しください。"
            "繰り返す場合は運用担当者に連絡してください。"
        )
        if not isinstance(exc, KomuError):
            logger.exception("gakureibo import %s: apply failed", imp.pk)
        _mark_failed(imp, message, action="rosters.gakureibo_import.apply_failed")
        raise ImportFailed(message) from exc
    _progress_publish(imp, to_database=False)
    logger.info("gakureibo import %s applied: %s", imp.pk, counts)
    return imp


def _apply(
    actor: Actor, imp: GakureiboImport, on_progress: Callable[[int, int], None] | None
) -> tuple[GakureiboImport, dict[str, int]]:
    imp = GakureiboImport.objects.select_for_update().select_related("board").get(pk=imp.pk)
    if imp.status != GakureiboImport.Status.APPLYING:
        raise ImportFailed("この取込は取り消されたか、既に反映されています。")
    parse = _parse(imp, _decoded_content(imp))
    if parse.errors:
        raise ImportFailed("ファイルにエラーがあります。もう一度検証してください。")
    total = len(parse.rows)
    imp.progress_total = total
    comparison = _Comparison(imp, parse, _Existing.load(imp.board, imp.fiscal_year, for_update=True))
    board_scope = Scope(board_id=imp.board_id)
    now = timezone.now()
    inserter = _RawInserter(imp, now)
    done = 0
    changed_ids: list[uuid.UUID] = []
    new_by_school: dict[int, list[uuid.UUID]] = {}
    # Consumed batch by batch, so the parsed rows and the entries built from them are not all in memory at once.
    pending, parse.rows = parse.rows, []
    pending.reverse()
    while pending:
        chunk = [pending.pop() for _ in range(min(BATCH_SIZE, len(pending)))]
        new_ids: list[uuid.UUID] = []
        new_rows: list[list[Any]] = []
        changed: list[tuple[uuid.UUID, _Prepared]] = []
        for row in chunk:
            prepared = _prepare(row)
            kind, pk = comparison.classify(prepared)
            if kind == "new":
                # A second row of the file for the same person cannot occur: the parser refuses duplicates.
                new_id = uuid.uuid4()
                new_ids.append(new_id)
                school_id = comparison.schools.get(row.school_code)
                if school_id is not None:
                    new_by_school.setdefault(school_id, []).append(new_id)
                new_rows.append(inserter.row(
                    new_id, prepared, school_id=school_id, needs_review=comparison.needs_review(row)
                ))
            elif kind == "changed" and pk is not None:
                changed.append((pk, prepared))
        if new_rows:
            inserter.insert(new_rows)
        if changed:
            _update_changed(imp, changed, comparison, now)
            changed_ids.extend(pk for pk, _ in changed)
        if new_ids or changed:
            audit_record(
                actor=actor.user, action="rosters.gakureibo_entry.imported",
                object_type="rosters.gakureiboentry", fields=["record"],
                detail={"import": str(imp.pk), "created": [str(pk) for pk in new_ids],
                        "updated": [str(pk) for pk, _ in changed]},
                scope=board_scope,
            )
        done += len(chunk)
        imp.progress_done = done
        _progress_publish(imp, to_database=False)
        if on_progress is not None:
            on_progress(done, total)

    amended = _record_amendments(actor, imp, changed_ids, new_by_school)
    counts = {**comparison.counts, "amended": amended, "rows": total}
    imp.status = GakureiboImport.Status.APPLIED
    imp.content = ""  # the file is no longer needed: the 学齢簿 holds what it said
    imp.progress_done = total
    imp.finished_at = timezone.now()
    report = imp.data
    report["applied"] = counts
    imp.report = _report_json(report)
    imp.save()
    audit_record(
        actor=actor.user, action="rosters.gakureibo_import.applied", obj=imp,
        detail={**counts, "sha256": imp.sha256, "filename": imp.filename, "fiscal_year": imp.fiscal_year},
        scope=board_scope,
    )
    return imp, counts


def _record_amendments(
    actor: Actor, imp: GakureiboImport, changed_ids: list[uuid.UUID], new_by_school: dict[int, list[uuid.UUID]]
) -> int:
    """What a school has already received changes: changed entries, and new children designated to a school
    whose roster for the 年度 went out already, become amendments of the sent roster
    (komu.rosters.services.rosters.roster_amendments_record decides which and how)."""
    sent_schools = set(
        Roster.objects.filter(fiscal_year=imp.fiscal_year, school_id__in=list(new_by_school))
        .values_list("school_id", flat=True)
    ) if new_by_school else set()
    ids = [*changed_ids, *(pk for school in sent_schools for pk in new_by_school[school])]
    if not ids:
        return 0
    from komu.rosters.services.rosters import roster_amendments_record

    return roster_amendments_record(actor=actor, entry_ids=ids, reason=f"学齢簿の取込（{imp.filename}）")


# --- discard --------------------------------------------------------------------------------------------------


@transaction.atomic
def gakureibo_import_discard(*, actor: Actor, import_id: Any) -> GakureiboImport:
    """Throw an import away before it is applied: the stored file is deleted, the report stays for the record."""
    imp = gakureibo_import_get_for(actor=actor, import_id=import_id)
    _require_board(actor, imp.board)
    imp = GakureiboImport.objects.select_for_update().get(pk=imp.pk)
    if imp.status in (GakureiboImport.Status.APPLYING, GakureiboImport.Status.APPLIED):
        raise ValidationFailed("反映中または反映済みの取込は取り消せません。")
    if imp.status == GakureiboImport.Status.DISCARDED:
        return imp
    imp.status = GakureiboImport.Status.DISCARDED
    imp.content = ""
    imp.finished_at = timezone.now()
    imp.save()
    audit_record(
        actor=actor.user, action="rosters.gakureibo_import.discarded", obj=imp,
        detail={"filename": imp.filename, "sha256": imp.sha256}, scope=Scope(board_id=imp.board_id),
    )
    transaction.on_commit(lambda: _progress_publish(imp, to_database=False))
    return imp


__all__ = [
    "BATCH_SIZE",
    "LAYOUTS",
    "MAX_FILE_BYTES",
    "ImportFailed",
    "Progress",
    "gakureibo_boards_for",
    "gakureibo_import_apply",
    "gakureibo_import_apply_request",
    "gakureibo_import_create",
    "gakureibo_import_discard",
    "gakureibo_import_get_for",
    "gakureibo_import_progress",
    "gakureibo_import_report",
    "gakureibo_import_validate",
    "gakureibo_imports_awaiting_apply",
    "gakureibo_imports_for_board",
]
