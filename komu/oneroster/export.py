"""The CSV export, streamed: the pupils' files are written in sourcedId order as the database yields them.

A board's export has four rows per pupil (users, roles, demographics, enrollments); building them all before
writing held ~5 KB per pupil. Here everything that is not per pupil (orgs, sessions, courses, classes, staff:
hundreds or thousands of rows) is built as before (komu.oneroster.build), and the pupils' rows are produced a
chunk at a time:

1. `sync_pupils` (run by `PupilSync`; on PostgreSQL, for a bulk export, alongside users.csv and
   demographics.csv): every current pupil, role and enrollment of the scope gets its RosterObject: stored rows are
   brought up to date first (a moved pupil's row follows the pupil, a returning one loses its tombstone, with
   `detect_gone` the scope's rows no longer current are stamped `gone_at`), then the new ones are stored by
   one INSERT … SELECT per kind. All set-based SQL: nothing per pupil is held in Python.
2. Each pupil file is one query over RosterObject ordered by sourcedId (binary order, the order Python sorts
   strings in, so the files are byte-identical to a sort in memory), read in chunks; per chunk, the pupils,
   memberships and sourcedIds it refers to are fetched by key and the names decrypted in a loop over
   `values_list` ciphertexts (no model instances). Staff rows and tombstones are merged in by sourcedId.

CSV text goes to spooled temporary files (in memory up to a few MB, then on disk), zipped from there.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import heapq
import io
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import IO, Any

from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Collate
from django.utils import timezone

from komu.core.text import to_katakana
from komu.directory.models import HomeroomClass
from komu.oneroster import bundle, spec
from komu.oneroster.build import (
    PUBLIC_FLG_STUDENT,
    PUPIL_KINDS,
    Record,
    Roster,
    Scope,
    Values,
    _latest,
    iso,
)
from komu.oneroster.models import RosterObject
from komu.security.fields import EncryptedMixin
from komu.security.keys import get_keyring
from komu.students.models import ClassMembership, Student

Kind = RosterObject.Kind
CHUNK = 2000
SPOOL_BYTES = 4 * 1024 * 1024
ANALYZE_AFTER = 10_000  # rows inserted by one sync after which the table's planner statistics are refreshed

# One row of a file as it is streamed: its sourcedId, its values in column order, its last modification, and
# for the REST roster (komu.oneroster.build) the person it names and its school's and class's sourcedIds.
Item = tuple[str, list[str], datetime.datetime, tuple[str, str, str]]
_NO_LINKS = ("", "", "")


class _Columns:
    """A file's columns by position: rows are lists (a dict per row, then a list for the CSV writer, was a
    fifth of a large export's time)."""

    def __init__(self, file_spec: spec.FileSpec) -> None:
        self.index = {c: i for i, c in enumerate(file_spec.columns)}
        self.blank = [""] * len(file_spec.columns)

    def row(self, **values: str) -> list[str]:
        out = self.blank.copy()
        for column, value in values.items():
            out[self.index[column]] = value
        return out

    def of(self, values: Mapping[str, str]) -> list[str]:
        return self.row(**values)


def sid_order() -> Collate:
    """sourcedId in binary (code point) order whatever the database's collation: the order of a Python sort."""
    return Collate(F("sourced_id"), "C" if connection.vendor == "postgresql" else "BINARY")


# --- SQL shared by the steps: the scope's current pupils, roles and enrollments -------------------------------------
#
# RosterObject keys are text (a pupil's UUID with hyphens, "pupil:school", a membership's id); Student keys are
# UUIDs, stored by SQLite as 32 hex digits. `_uuid_text` writes a pupil's key as RosterObject has it, so the
# (kind, local_key) index answers every join.

_STUDENT = Student._meta.db_table
_MEMBERSHIP = ClassMembership._meta.db_table
_CLASS = HomeroomClass._meta.db_table
_OBJECT = RosterObject._meta.db_table


def _uuid_text(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"{column}::text"
    return (
        f"lower(substr({column}, 1, 8) || '-' || substr({column}, 9, 4) || '-' || substr({column}, 13, 4)"
        f" || '-' || substr({column}, 17, 4) || '-' || substr({column}, 21, 12))"
    )


def _in(values: Sequence[int]) -> str:
    return ", ".join(str(int(v)) for v in values) or "NULL"


def _sid_collate() -> str:
    return 'COLLATE "C"' if connection.vendor == "postgresql" else "COLLATE BINARY"


class _Pupils:
    """SQL fragments for one scope: its active pupils `s`, each pupil's membership `m` in the scope's 年度 (the
    first by id, as the REST roster takes it) and the keys their RosterObjects have."""

    def __init__(self, scope: Scope, year_ids: Sequence[int]) -> None:
        self.where = f"s.school_id IN ({_in(scope.school_ids)}) AND s.is_active"
        years = _in(year_ids)
        # The pupil's membership in a class of the 年度, and no earlier one (a join the planners can hash; a
        # correlated MIN() ran twice per row). The unary + keeps SQLite off the (class, pupil) index, which
        # made it probe every class of the 年度 for each pupil.
        self.membership = (
            f"{_MEMBERSHIP} m ON m.student_id = s.id AND +m.homeroom_class_id IN "  # noqa: S608 (table names and integers)
            f"(SELECT c.id FROM {_CLASS} c WHERE c.school_year_id IN ({years})) AND NOT EXISTS "
            f"(SELECT 1 FROM {_MEMBERSHIP} m3 JOIN {_CLASS} c3 ON c3.id = m3.homeroom_class_id "
            f"WHERE m3.student_id = s.id AND m3.id < m.id AND c3.school_year_id IN ({years}))"
        )
        self.student_key = _uuid_text("s.id")
        self.role_key = f"{self.student_key} || ':' || CAST(s.school_id AS TEXT)"
        self.enrollment_key = "CAST(m.id AS TEXT)"

    def keys(self, kind: str, joins: str = "") -> tuple[str, str]:
        """(key expression, FROM … [joins] WHERE …) selecting the current objects of a kind."""
        if kind == Kind.STUDENT:
            return self.student_key, f"FROM {_STUDENT} s {joins} WHERE {self.where}"
        if kind == Kind.STUDENT_ROLE:
            return self.role_key, f"FROM {_STUDENT} s {joins} WHERE {self.where}"
        return (
            self.enrollment_key,
            f"FROM {_STUDENT} s JOIN {self.membership} {joins} WHERE {self.where}",
        )


def _new_sid_sql() -> str:
    """A new random UUID4 as text (new_sourced_id()), per row of an INSERT … SELECT."""
    if connection.vendor == "postgresql":
        return "gen_random_uuid()::text"
    # SQLite: 122 bits from randomblob() (its CSPRNG, seeded by the OS), with UUID4's version and variant bits.
    # A Python function called per row cost a tenth of a 100,000-pupil board's first export.
    return (
        "lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-' "
        "|| substr('89ab', 1 + (random() & 3), 1) || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))"
    )


# --- 1. sourcedIds of the scope's pupils ---------------------------------------------------------------------------


def sync_pupils(scope: Scope, year_ids: Sequence[int], *, detect_gone: bool) -> None:
    """Give every current pupil, role and enrollment of the scope its RosterObject (one INSERT … SELECT per
    kind); a pupil who changed school takes the row along; a row found again loses its tombstone. With
    `detect_gone`, stamp the scope's pupil rows that are no longer current (the tombstones of delta exports).

    The stored rows are brought up to date before the new ones are inserted: a new row is current by
    definition, so a board's first export (300,000 new rows at 100,000 pupils) checks none of them again."""
    now = timezone.now()
    stamp = connection.ops.adapt_datetimefield_value(now)
    pupils = _Pupils(scope, year_ids)
    with connection.cursor() as cursor:
        # A pupil who changed school belongs to the new school's exports (and tombstones) from now on: the
        # rows to move found by one join, moved by school (one UPDATE per school that received pupils).
        key, source = pupils.keys(
            Kind.STUDENT, f"JOIN {_OBJECT} o ON o.kind = %s AND o.local_key = {pupils.student_key}"
        )
        cursor.execute(f"SELECT o.id, s.school_id {source} AND o.school_id <> s.school_id", [Kind.STUDENT])
        moved: dict[int, list[int]] = {}
        for object_id, school_id in cursor.fetchall():
            moved.setdefault(school_id, []).append(object_id)
        for school_id, ids in moved.items():
            for start in range(0, len(ids), CHUNK):
                RosterObject.objects.filter(pk__in=ids[start : start + CHUNK]).update(school_id=school_id)
        for kind in PUPIL_KINDS:
            key, source = pupils.keys(kind)
            # Tombstones are few and indexed apart (oneroster_tombstones): no current key is looked at
            # unless some row of the kind is a tombstone.
            cursor.execute(
                f"UPDATE {_OBJECT} SET gone_at = NULL WHERE kind = %s AND gone_at IS NOT NULL AND local_key IN "  # noqa: S608
                f"(SELECT {key} {source})",
                [kind],
            )
            # (A board's first export has no stored rows to check: PostgreSQL would still hash every key.)
            if (
                detect_gone
                and RosterObject.objects.filter(kind=kind, school_id__in=scope.school_ids).exists()
            ):
                cursor.execute(
                    f"UPDATE {_OBJECT} SET gone_at = %s WHERE kind = %s AND gone_at IS NULL "  # noqa: S608
                    f"AND school_id IN ({_in(scope.school_ids)}) AND local_key NOT IN (SELECT {key} {source})",
                    [stamp, kind],
                )
        new_sid = _new_sid_sql()
        # PostgreSQL: in key order, the (kind, local_key) index (and a pupil's sourcedId's) grows at its end
        # rather than at random places (a third less time for 100,000 pupils' rows). Not on SQLite, where a
        # table is stored in insertion order: rows in the pupils' order make the files' joins cheaper there.
        in_key_order = " ORDER BY 2" if connection.vendor == "postgresql" else ""
        inserted = 0
        for kind in PUPIL_KINDS:
            key, source = pupils.keys(kind)
            sid = key if kind == Kind.STUDENT else new_sid  # a pupil keeps its UUID as sourcedId
            cursor.execute(
                f"INSERT INTO {_OBJECT} (kind, local_key, sourced_id, school_id, board_id, first_seen_at) "  # noqa: S608
                f"SELECT %s, {key}, {sid}, s.school_id, NULL, %s {source} AND NOT EXISTS "
                f"(SELECT 1 FROM {_OBJECT} o WHERE o.kind = %s AND o.local_key = {key}){in_key_order} "
                "ON CONFLICT DO NOTHING",
                [kind, stamp, kind],
            )
            inserted += max(cursor.rowcount, 0)
        if inserted >= ANALYZE_AFTER and connection.vendor == "postgresql":
            # The planner's statistics still describe the table before these rows (autovacuum analyses it
            # later): the pupils' queries would join 300,000 rows planned as a handful (minutes, not seconds).
            cursor.execute(f"ANALYZE {_OBJECT}")


class PupilSync:
    """`sync_pupils` for one export, run in the export's transaction, or apart (`apart=True`) on a second
    connection in a thread while the export writes its first files.

    A board's first export stores ≈ 300,000 rows (100,000 pupils): seconds of index, WAL and foreign-key work
    in PostgreSQL, while decrypting the pupils' names for users.csv is seconds of Python. Apart, the two
    overlap (psycopg releases the GIL while it waits for the server): users.csv reads a pupil not stored yet
    with the sourcedId the sync gives it (its own key), and every later pupil file waits for the sync.

    Apart, the sync is its own transaction, committed before the export's. Use it only when the export is not
    inside a caller's transaction (the second connection must see the same committed pupils) and on
    PostgreSQL (SQLite has one writer). If the export then fails, the stored sourcedIds stay: they are the
    ones the next export would store, and a pupil's sourcedId never changes once stored."""

    def __init__(self, scope: Scope, year_ids: Sequence[int], *, detect_gone: bool, apart: bool) -> None:
        self._future: Future[None] | None = None
        self._pool: ThreadPoolExecutor | None = None
        if not apart:
            sync_pupils(scope, year_ids, detect_gone=detect_gone)
            return
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="oneroster-sync")
        self._future = self._pool.submit(_sync_apart, scope, list(year_ids), detect_gone)

    @property
    def pending(self) -> bool:
        """The sync still runs apart: the pupils' stored rows may be incomplete."""
        return self._future is not None

    def wait(self) -> None:
        """Block until the pupils' rows are stored (re-raising the sync's error)."""
        future, self._future = self._future, None
        try:
            if future is not None:
                future.result()
        finally:
            if self._pool is not None and self._future is None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def __enter__(self) -> PupilSync:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if kind is None:
            self.wait()
            return
        # The export failed: its own error is the one to report; the thread is still waited for.
        with contextlib.suppress(Exception):
            self.wait()


def _sync_apart(scope: Scope, year_ids: Sequence[int], detect_gone: bool) -> None:
    """sync_pupils in its own transaction on this thread's own connection (closed after)."""
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                # Durable anyway before anyone sees the sourcedIds: the export's own transaction commits after
                # this one with synchronous_commit on, and PostgreSQL flushes the WAL in order up to that
                # commit, this transaction's commit record included. A crash before then loses this commit
                # and the export with it (never delivered); the next export stores the rows again.
                cursor.execute("SET LOCAL synchronous_commit = off")
            sync_pupils(scope, year_ids, detect_gone=detect_gone)
    finally:
        connection.close()


# --- 2. the pupils' rows, in sourcedId order ---------------------------------------------------------------------


def _stream(sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
    """Rows of a query, fetched a chunk at a time (PostgreSQL: a server-side cursor, so a chunk is all that is
    held; SQLite steps through the result as it is fetched)."""
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        # Outside a transaction a server-side cursor must be WITH HOLD (kept past the implicit commit).
        name = f"oneroster_{uuid.uuid4().hex}"
        with connection.connection.cursor(name=name, withhold=not connection.in_atomic_block) as cursor:
            cursor.itersize = CHUNK
            cursor.execute(sql, params)
            yield from cursor
        return
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(CHUNK):
            yield from rows


def _moment(value: Any) -> datetime.datetime:
    """A timestamp as the database returned it (SQLite: ISO text in UTC; PostgreSQL: aware datetime)."""
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=datetime.UTC)
    parsed = datetime.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=datetime.UTC)


class _Decrypter:
    """Opens the pupils' ciphertexts as stored: one keyring, the row binding of each column."""

    def __init__(self, names: Sequence[str]) -> None:
        self._keyring = get_keyring()
        self._fields: list[Any] = [Student._meta.get_field(n) for n in names]
        self._prefixes = [f"{_STUDENT}.{f.column}." for f in self._fields]

    def open(self, pk: str, values: Sequence[Any]) -> list[Any]:
        out: list[Any] = []
        for field, prefix, value in zip(self._fields, self._prefixes, values, strict=True):
            if value:  # a blank is stored blank (komu.security.fields)
                assert isinstance(field, EncryptedMixin)
                value = field.from_text(self._keyring.decrypt(value, prefix + pk))
            out.append(value)
        return out


_NAMES = ("family_name", "given_name", "family_name_kana", "given_name_kana")


def _pupil_query(
    pupils: _Pupils,
    kind: str,
    columns: str,
    stamps: str,
    *,
    dated: bool,
    joins: str = "",
    unsynced: bool = False,
) -> str:
    """The scope's current objects of a kind in sourcedId order: (sourcedId, the pupil's key, columns…, and
    when `dated` the timestamps a row's dateLastModified is the latest of). A bulk export leaves them out: it
    does not print them, and reading 300,000 timestamps is a good part of its time."""
    key, _source = pupils.keys(kind)
    if unsynced:
        # The sync is still storing the new pupils' rows (PupilSync): a pupil not stored yet will be stored
        # with its own key as sourcedId (sync_pupils), so that is its sourcedId here too.
        assert kind == Kind.STUDENT and not dated
        _key, source = pupils.keys(
            kind, f"{joins} LEFT JOIN {_OBJECT} o ON o.kind = %s AND o.local_key = {key}"
        )
        sid = f"COALESCE(o.sourced_id, {key})"
        return f"SELECT {sid}, {pupils.student_key}, {columns} {source} ORDER BY {sid} {_sid_collate()}"
    _key, source = pupils.keys(kind, f"JOIN {_OBJECT} o ON o.kind = %s AND o.local_key = {key} {joins}")
    dates = f", o.first_seen_at, {stamps}" if dated else ""
    return (
        f"SELECT o.sourced_id, {pupils.student_key}, {columns}{dates} {source} "
        f"ORDER BY o.sourced_id {_sid_collate()}"
    )


_UNDATED = datetime.datetime.min.replace(tzinfo=datetime.UTC)


def _modified(stamps: Sequence[Any]) -> datetime.datetime:
    """The latest of a row's timestamps (none read: a bulk export, which does not print them)."""
    return _latest(*(_moment(v) for v in stamps if v is not None)) if stamps else _UNDATED


def pupil_users(
    scope: Scope, roster: Roster, person_ids: list[str], *, dated: bool, unsynced: bool = False
) -> Iterator[Item]:
    """users.csv rows of the pupils (names decrypted here); appends each pupil's id to `person_ids`. With
    `unsynced` (a bulk export whose PupilSync still runs), new pupils are read before their rows are stored."""
    pupils = _Pupils(scope, roster.year_ids)
    columns = _Columns(spec.USERS)
    opener = _Decrypter(_NAMES)
    sql = _pupil_query(
        pupils,
        Kind.STUDENT,
        "s.school_id, m.homeroom_class_id, " + ", ".join(f"s.{n}" for n in _NAMES),
        "s.updated_at, m.updated_at",
        dated=dated,
        joins=f"LEFT JOIN {pupils.membership}",
        unsynced=unsynced,
    )
    for sid, pk, school_id, class_id, *rest in _stream(sql, [Kind.STUDENT]):
        family, given, family_kana, given_kana = opener.open(pk, rest[:4])
        home = roster.class_sid.get(class_id, "") if class_id is not None else ""
        grade = roster.class_grade.get(class_id, "") if class_id is not None else ""
        person_ids.append(pk)
        yield (
            sid,
            columns.row(
                sourcedId=sid,
                enabledUser="true",
                username=sid,
                givenName=given,
                familyName=family,
                grades=grade,
                primaryOrgSourcedId=roster.school_sid[school_id],
                **{
                    "metadata.jp.kanaGivenName": to_katakana(given_kana),
                    "metadata.jp.kanaFamilyName": to_katakana(family_kana),
                    "metadata.jp.homeClass": home,
                },
            ),
            _modified(rest[4:]),
            (pk, roster.school_sid[school_id], home),
        )


def pupil_demographics(
    scope: Scope, roster: Roster, *, dated: bool, unsynced: bool = False
) -> Iterator[Item]:
    pupils = _Pupils(scope, roster.year_ids)
    columns = _Columns(spec.DEMOGRAPHICS)
    opener = _Decrypter(("birth_date",))
    sql = _pupil_query(
        pupils,
        Kind.STUDENT,
        "s.school_id, s.sex, s.birth_date",
        "s.updated_at",
        dated=dated,
        unsynced=unsynced,
    )
    for sid, pk, school_id, sex, birth_date, *stamps in _stream(sql, [Kind.STUDENT]):
        (birth,) = opener.open(pk, [birth_date])
        yield (
            sid,
            columns.row(sourcedId=sid, birthDate=birth.isoformat() if birth else "", sex=sex),
            _modified(stamps),
            (pk, roster.school_sid[school_id], ""),
        )


def pupil_roles(scope: Scope, roster: Roster, *, dated: bool) -> Iterator[Item]:
    pupils = _Pupils(scope, roster.year_ids)
    columns = _Columns(spec.ROLES_FILE)
    sql = _pupil_query(
        pupils,
        Kind.STUDENT_ROLE,
        "s.school_id, u.sourced_id",
        "s.updated_at",
        dated=dated,
        joins=f"JOIN {_OBJECT} u ON u.kind = %s AND u.local_key = {pupils.student_key}",
    )
    for sid, _pk, school_id, user_sid, *stamps in _stream(sql, [Kind.STUDENT_ROLE, Kind.STUDENT]):
        yield (
            sid,
            columns.row(
                sourcedId=sid,
                userSourcedId=user_sid,
                roleType="primary",
                role="student",
                orgSourcedId=roster.school_sid[school_id],
            ),
            _modified(stamps),
            ("", roster.school_sid[school_id], ""),
        )


def pupil_enrollments(scope: Scope, roster: Roster, *, dated: bool) -> Iterator[Item]:
    pupils = _Pupils(scope, roster.year_ids)
    columns = _Columns(spec.ENROLLMENTS)
    sql = _pupil_query(
        pupils,
        Kind.STUDENT_ENROLLMENT,
        "s.school_id, m.homeroom_class_id, m.shusseki_no, u.sourced_id",
        "m.updated_at",
        dated=dated,
        joins=f"JOIN {_OBJECT} u ON u.kind = %s AND u.local_key = {pupils.student_key}",
    )
    rows = _stream(sql, [Kind.STUDENT_ENROLLMENT, Kind.STUDENT])
    for sid, _pk, school_id, class_id, number, user_sid, *stamps in rows:
        yield (
            sid,
            columns.row(
                sourcedId=sid,
                classSourcedId=roster.class_sid[class_id],
                schoolSourcedId=roster.school_sid[school_id],
                userSourcedId=user_sid,
                role="student",
                primary="false",
                **{"metadata.jp.ShussekiNo": str(number), "metadata.jp.PublicFlg": PUBLIC_FLG_STUDENT},
            ),
            _modified(stamps),
            ("", roster.school_sid[school_id], roster.class_sid[class_id]),
        )


def _pupil_stream(
    file: str, scope: Scope, roster: Roster, *, dated: bool, person_ids: list[str], unsynced: bool = False
) -> Iterator[Item]:
    if file == "users":
        return pupil_users(scope, roster, person_ids, dated=dated, unsynced=unsynced)
    if file == "demographics":
        return pupil_demographics(scope, roster, dated=dated, unsynced=unsynced)
    if file == "roles":
        return pupil_roles(scope, roster, dated=dated)
    return pupil_enrollments(scope, roster, dated=dated)


_PUPIL_FILES = ("users", "roles", "demographics", "enrollments")
_UNSYNCED_FILES = ("users", "demographics")


def add_pupils(scope: Scope, roster: Roster, *, detect_gone: bool) -> None:
    """The pupils' records, for the REST roster (komu.oneroster.build): the rows the export streams, kept."""
    sync_pupils(scope, roster.year_ids, detect_gone=detect_gone)
    for file in _PUPIL_FILES:
        columns = spec.FILES_BY_NAME[file].columns
        records = roster.records[file]
        for _sid, row, modified, links in _pupil_stream(file, scope, roster, dated=True, person_ids=[]):
            person, school_sid, class_sid = links
            values = Values((c, v) for c, v in zip(columns, row, strict=True) if v)
            records.append(
                Record(
                    file,
                    values,
                    modified,
                    person_id=person,
                    school_sid=school_sid,
                    class_sid=class_sid,
                    role="student",
                )
            )


def pupil_tombstones(
    scope: Scope, kind: str, since: datetime.datetime
) -> Iterator[tuple[str, datetime.datetime]]:
    rows = (
        RosterObject.objects.filter(kind=kind, school_id__in=scope.school_ids, gone_at__gt=since)
        .order_by(sid_order())
        .values_list("sourced_id", "gone_at")
    )
    for sid, gone_at in rows.iterator(chunk_size=CHUNK):
        assert gone_at is not None
        yield sid, gone_at


_PUPIL_KIND_OF_FILE = {
    "users": Kind.STUDENT,
    "demographics": Kind.STUDENT,
    "roles": Kind.STUDENT_ROLE,
    "enrollments": Kind.STUDENT_ENROLLMENT,
}


def file_rows(
    scope: Scope,
    roster: Roster,
    file: str,
    *,
    since: datetime.datetime | None,
    tombstones: bool,
    person_ids: list[str],
    sync: PupilSync | None = None,
) -> Iterator[list[str]]:
    """The rows of one file in sourcedId order, as lists in column order: the roster's records merged with the
    pupils' stream; bulk (status and dateLastModified empty) or delta since a moment (active rows changed
    since and, when the export looks for them, tombstones)."""
    columns = _Columns(spec.FILES_BY_NAME[file])
    items: Iterable[Item] = (
        (r.sourced_id, columns.of(r.values), r.modified, _NO_LINKS) for r in roster.records.get(file, [])
    )
    pupils: Iterable[Item] | None = None
    if file == "users":
        person_ids.extend(r.person_id for r in roster.records.get("users", []) if r.person_id)
    if file in _PUPIL_FILES:
        # Only the bulk users and demographics (a pupil's own sourcedId) can be read while the sync runs
        # (PupilSync): roles and enrollments need their stored rows.
        unsynced = sync is not None and sync.pending and file in _UNSYNCED_FILES and since is None
        if sync is not None and not unsynced:
            sync.wait()
        pupils = _pupil_stream(
            file, scope, roster, dated=since is not None, person_ids=person_ids, unsynced=unsynced
        )
    if pupils is not None:
        items = heapq.merge(items, pupils, key=lambda item: item[0])
    if since is None:
        for _sid, row, _modified, _links in items:
            yield row
        return
    status, stamp = columns.index["status"], columns.index["dateLastModified"]

    def active() -> Iterator[tuple[str, list[str]]]:
        for sid, row, modified, _links in items:
            if modified > since:
                row[status], row[stamp] = "active", iso(modified)
                yield sid, row

    tombs: Iterable[tuple[str, datetime.datetime]] = sorted(
        (t for t in roster.tombstones.get(file, []) if t[1] > since), key=lambda t: t[0]
    )
    if tombstones and file in _PUPIL_KIND_OF_FILE:
        tombs = heapq.merge(
            tombs, pupil_tombstones(scope, _PUPIL_KIND_OF_FILE[file], since), key=lambda t: t[0]
        )
    gone = (
        (sid, columns.row(sourcedId=sid, status="tobedeleted", dateLastModified=iso(at))) for sid, at in tombs
    )
    for _sid, row in heapq.merge(active(), gone, key=lambda item: item[0]):
        yield row


# --- writing -----------------------------------------------------------------------------------------------------


def write_csv(columns: Sequence[str], rows: Iterable[list[str]]) -> tuple[IO[bytes], int]:
    """Like bundle.write_csv (UTF-8, CRLF, RFC 4180), into a spooled temporary file; (file, rows written)."""
    out: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (closed by ExportFiles)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
        if count % 1000 == 0:
            out.write(text.getvalue().encode("utf-8"))
            text.seek(0)
            text.truncate()
    out.write(text.getvalue().encode("utf-8"))
    out.seek(0)
    return out, count


class ExportFiles:
    """The files of one export (name → spooled file), readable as bytes or copied out without loading them."""

    def __init__(self) -> None:
        self._parts: dict[str, IO[bytes]] = {}

    def add(self, name: str, part: IO[bytes]) -> None:
        self._parts[name] = part

    def add_bytes(self, name: str, data: bytes) -> None:
        part: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
        part.write(data)
        part.seek(0)
        self._parts[name] = part

    def names(self) -> list[str]:
        return list(self._parts)

    def read(self, name: str) -> bytes:
        part = self._parts[name]
        part.seek(0)
        return part.read()

    def copy_to(self, name: str, out: IO[bytes]) -> None:
        part = self._parts[name]
        part.seek(0)
        shutil.copyfileobj(part, out, 1024 * 1024)

    def write_zip(self, out: IO[bytes]) -> None:
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            for name in ["manifest.csv", *(s.filename for s in spec.FILES)]:
                if name in self._parts:
                    with archive.open(name, "w") as member:
                        self.copy_to(name, member)

    def close(self) -> None:
        for part in self._parts.values():
            part.close()


def write_files(
    scope: Scope,
    roster: Roster,
    *,
    since: datetime.datetime | None,
    tombstones: bool,
    mode: str,
    sync: PupilSync | None = None,
) -> tuple[ExportFiles, dict[str, int], list[str]]:
    """Every file of the export; (files, rows per file, the persons named — pupils' and staff ids). With a
    `sync` still running apart, the files that need the pupils' stored rows wait for it."""
    files = ExportFiles()
    counts: dict[str, int] = {}
    person_ids: list[str] = []
    parts: dict[str, IO[bytes]] = {}
    # The files that can be written while a PupilSync still runs come first (users, demographics).
    in_order = sorted(spec.FILES, key=lambda f: f.name in _PUPIL_FILES and f.name not in _UNSYNCED_FILES)
    for file_spec in in_order:
        parts[file_spec.filename], counts[file_spec.name] = write_csv(
            file_spec.columns,
            file_rows(
                scope,
                roster,
                file_spec.name,
                since=since,
                tombstones=tombstones,
                person_ids=person_ids,
                sync=sync,
            ),
        )
    for file_spec in spec.FILES:
        files.add(file_spec.filename, parts[file_spec.filename])
    modes = {s.name: mode for s in spec.FILES}
    files.add_bytes("manifest.csv", bundle.write_csv(("propertyName", "value"), bundle.manifest_rows(modes)))
    return files, counts, sorted(set(person_ids))
