"""A raw database dump reveals nothing (domain.md §6; issue "Foundation", item 5).

The demo is loaded into a fresh install in a subprocess, exactly as an operator would (`komu migrate`, `komu
demo`). A second subprocess with the same keys reads every demo person's personal values back through the ORM
(decrypting them) and prints them as JSON. The test then searches the raw database bytes — the SQLite file, or
`pg_dump` output for PostgreSQL — for each value in UTF-8, UTF-16 and CP932 and fails on any hit.

The search is proven to work twice: a unit test plants values in every encoding and expects them found, and
each dump must contain the plain-text school addresses and names (not personal data, stored unencrypted).

Attachments live outside the database, in the attachments store (komu.security.blobs). Before the search a board
sends a notice whose attachment is a list of the demo's personal values in UTF-8, UTF-16 and CP932; the files of
the store are then searched the same way and must reveal nothing either, while the same search over the
attachment as downloaded finds the values (proof that the files were worth searching).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

SEED = 424242
ENCODINGS = ("utf-8", "utf-16-le", "utf-16-be", "cp932")
# Shorter needles could match ciphertext or page structure by chance: a UTF-8 kanji pair is 6 bytes, and
# 8 bytes keep UTF-16 (whose kanji bytes are often ASCII letters, like base64 ciphertext) above chance.
MIN_BYTES = {"utf-8": 6, "utf-16-le": 8, "utf-16-be": 8, "cp932": 8}
# Every field must be searched for this many values at least (or all of them, if it has fewer distinct ones),
# so a column stored in plain text cannot slip through because its values happened to be too short.
MIN_VALUES_PER_FIELD = 10
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

# Runs in a subprocess against the same KOMU_VAR_DIR / database and key file as the demo load.
COLLECT = r"""
import json

import django

django.setup()

from komu.accounts.models import User
from komu.core.wareki import to_wareki
from komu.directory.models import Board, HomeroomClass, Prefecture, School, Term
from komu.students.models import Guardian, Student

fields = {}


def add(field, *values):
    fields.setdefault(field, set()).update(v for v in values if v)


def names(prefix, family, given, family_kana, given_kana):
    add(f"{prefix}.family_name", family)
    add(f"{prefix}.given_name", given)
    add(f"{prefix}.full_name", family + given, f"{family} {given}", f"{family}\u3000{given}")
    add(f"{prefix}.family_name_kana", family_kana)
    add(f"{prefix}.given_name_kana", given_kana)
    add(f"{prefix}.full_kana", family_kana + given_kana, f"{family_kana} {given_kana}")


for s in Student.objects.all():
    names("student", s.family_name, s.given_name, s.family_name_kana, s.given_name_kana)
    add("student.address", s.address)
    add("student.health_note", s.health_note)
    d = s.birth_date
    add("student.birth_date", d.isoformat(), f"{d.year}/{d.month}/{d.day}", f"{d.year}年{d.month}月{d.day}日")
    add("student.birth_date_wareki", to_wareki(d), to_wareki(d, style="short"))
for g in Guardian.objects.all():
    names("guardian", g.family_name, g.given_name, g.family_name_kana, g.given_name_kana)
    add("guardian.phone", g.phone)
    add("guardian.phone_digits", g.phone.replace("-", ""))
    add("guardian.email", g.email)
    add("guardian.address", g.address)
for u in User.objects.filter(demo_account__isnull=False):
    add("user.display_name", u.display_name, u.display_name.replace(" ", ""))
    add("user.display_name_kana", u.display_name_kana, u.display_name_kana.replace(" ", ""))
    add("user.email", u.email)
controls = [s.address for s in School.objects.all()] + [s.name for s in School.objects.all()]
controls += [b.name for b in Board.objects.filter(code__endswith="9901")]
# Reference data kept in plain text on purpose: a surname inside it (山口 in 山口県) is no evidence of a leak.
public = [p.name for p in Prefecture.objects.all()] + [b.name for b in Board.objects.all()]
public += [s.name for s in School.objects.all()] + [s.address for s in School.objects.all()]
public += [c.name for c in HomeroomClass.objects.all()] + [t.name for t in Term.objects.all()]
fields = {k: sorted(v) for k, v in fields.items()}
collected = {"fields": fields, "controls": controls, "public": sorted(set(public))}
print(json.dumps(collected, ensure_ascii=False))
"""


# Runs in a subprocess: a board officer sends a notice with the file argv[1] attached, through the service.
ATTACH = r"""
import sys

import django

django.setup()

from komu.access.scope import get_actor
from komu.accounts.models import User
from komu.notices.models import Notice
from komu.notices.services import notices as svc
from komu.notices.services.attachments import Upload, attachment_bytes

with open(sys.argv[1], "rb") as handle:
    data = handle.read()
actor = get_actor(User.objects.get(username="demo-board"))
notice = svc.notice_send(actor=actor, data=svc.NoticeInput(
    kind=Notice.Kind.TSUCHI, title="名簿の送付", attachments=(Upload("名簿.pdf", data),)))
assert attachment_bytes(notice.attachments.get()) == data
print("attached")
"""


def attach_personal_file(env: dict[str, str], collected: dict[str, Any], folder: Path) -> bytes:
    """Send a notice whose attachment lists personal values of every field in every encoding; returns its bytes."""
    values = [v for field_values in collected["fields"].values() for v in field_values[:40]]
    text = "\n".join(values)
    data = b"%PDF-1.4\n" + b"\n".join(text.encode(e, errors="ignore") for e in ENCODINGS) + b"\n%%EOF\n"
    path = folder / "personal.pdf"
    path.write_bytes(data)
    assert "attached" in _run(env, "-c", ATTACH, str(path))
    path.unlink()
    return data


def assert_files_reveal_nothing(media: Path, attached: bytes, collected: dict[str, Any]) -> None:
    wanted = needles(collected["fields"], collected["public"])
    # Proof that the files are worth searching: the attachment itself, as downloaded, holds many values.
    assert len(find_all(attached, wanted)) > 100
    files = [p for p in sorted(media.rglob("*")) if p.is_file()]
    assert any(p.relative_to(media).parts[0] == "blobs" for p in files), "the attachment is not in the store"
    leaks = find_all(b"\x00".join(p.read_bytes() for p in files), wanted)
    assert not leaks, f"the attachment files reveal {len(leaks)} personal values, e.g.:\n" + "\n".join(leaks[:20])


def _env(var_dir: Path, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOMU_")}
    env.update(
        KOMU_VAR_DIR=str(var_dir),
        KOMU_KEY_FILE=str(var_dir / "keys" / "komu-keys.json"),  # beside the database, never inside it
        KOMU_CREATE_KEY_FILE="1",
        DJANGO_SETTINGS_MODULE="komu.settings",
    )
    if database_url:
        env["KOMU_DATABASE_URL"] = database_url
    return env


def _run(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, f"{' '.join(args[:4])} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def load_demo_and_collect(env: dict[str, str]) -> dict[str, Any]:
    _run(env, "-m", "komu", "migrate", "--noinput", "-v0")
    _run(env, "-m", "komu", "demo", "--seed", str(SEED))
    output = _run(env, "-c", COLLECT)
    collected: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return collected


def needles(fields: dict[str, list[str]], public: Iterable[str] = ()) -> dict[bytes, str]:
    """Every value in each encoding it can be written in, long enough to search for → "field: value (enc)".
    Values that occur inside public reference text are left out: finding them proves nothing."""
    public_text = "\n".join(public)
    found: dict[bytes, str] = {}
    for field, values in fields.items():
        searchable = 0
        for value in values:
            if value in public_text:
                continue
            for encoding in ENCODINGS:
                try:
                    encoded = value.encode(encoding)
                except UnicodeEncodeError:
                    continue  # 𠮷 has no CP932 form: nothing to find in that encoding
                if len(encoded) >= MIN_BYTES[encoding]:
                    found.setdefault(encoded, f"{field}: {value!r} ({encoding})")
                    searchable += encoding == "utf-8"
        assert searchable >= min(MIN_VALUES_PER_FIELD, len(values)), (
            f"{field}: only {searchable} of {len(values)} values are long enough to search for"
        )
    return found


def find_all(blob: bytes, wanted: dict[bytes, str]) -> list[str]:
    """Which of the wanted byte strings occur in blob. One pass over the blob: thousands of bytes.find() calls
    over megabytes would take minutes, so candidates are matched on their first MIN bytes first."""
    prefix_len = min(MIN_BYTES.values())
    assert all(len(n) >= prefix_len for n in wanted), "a needle shorter than the prefix would never match"
    by_prefix: dict[bytes, list[bytes]] = {}
    for needle in wanted:
        by_prefix.setdefault(needle[:prefix_len], []).append(needle)
    hits: set[bytes] = set()
    view = memoryview(blob)
    for i in range(len(blob) - prefix_len + 1):
        candidates = by_prefix.get(bytes(view[i : i + prefix_len]))
        if candidates:
            hits.update(n for n in candidates if blob.startswith(n, i))
    return sorted(wanted[h] for h in hits)


def assert_reveals_nothing(blob: bytes, collected: dict[str, Any], where: str) -> None:
    fields = collected["fields"]
    expected_fields = {
        "student.full_name",
        "student.full_kana",
        "student.family_name",
        "student.given_name",
        "student.address",
        "student.birth_date",
        "student.birth_date_wareki",
        "student.health_note",
        "guardian.full_name",
        "guardian.phone",
        "guardian.email",
        "guardian.address",
        "user.display_name",
        "user.email",
    }
    assert expected_fields <= fields.keys()
    special = {"髙橋", "山﨑", "𠮷田"}
    assert special <= set(fields["student.family_name"]), "the demo must include 髙, 﨑 and 𠮷 names"
    controls = collected["controls"]
    control_hits = find_all(blob, {c.encode("utf-8"): c for c in controls})
    # Proof that the search sees the dump: plain-text (non-personal) values must be found.
    assert sorted(control_hits) == sorted(controls), f"{where}: plain-text controls missing, search is broken"
    leaks = find_all(blob, needles(fields, collected["public"]))
    assert not leaks, f"{where} reveals {len(leaks)} personal values, e.g.:\n" + "\n".join(leaks[:20])


def _sqlite_bytes(var_dir: Path) -> bytes:
    # The database and any write-ahead log or journal beside it: a copied "file" may include them.
    parts = [var_dir / name for name in ("komu.sqlite3", "komu.sqlite3-wal", "komu.sqlite3-journal")]
    return b"".join(p.read_bytes() for p in parts if p.exists())


def test_search_finds_a_planted_value_in_every_encoding() -> None:
    fields = {"student.full_name": [f"髙橋{n:02d}太郎" for n in range(MIN_VALUES_PER_FIELD)]}
    wanted = needles(fields)
    for encoding in ENCODINGS:
        blob = b"\x00noise" + "髙橋07太郎".encode(encoding) + b"noise\xff"
        assert find_all(blob, wanted) == [f"student.full_name: '髙橋07太郎' ({encoding})"]
    assert find_all(b"\x00" * 100, wanted) == []


def test_sqlite_file_reveals_no_personal_data(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    env = _env(var_dir, None)
    collected = load_demo_and_collect(env)
    attached = attach_personal_file(env, collected, tmp_path)
    assert_reveals_nothing(_sqlite_bytes(var_dir), collected, "the SQLite file")
    assert_files_reveal_nothing(var_dir / "media", attached, collected)

    # The same search over a copy in which two columns hold plain text, as a careless field would store them,
    # must report them: the test fails when encryption is missing, not only when the search is broken.
    mutated = tmp_path / "mutated"
    mutated.mkdir()
    shutil.copy(var_dir / "komu.sqlite3", mutated / "komu.sqlite3")
    phones = collected["fields"]["guardian.phone"][:5]
    db = sqlite3.connect(mutated / "komu.sqlite3")
    with db:
        ids = [row[0] for row in db.execute("SELECT id FROM students_guardian LIMIT 5")]
        db.executemany("UPDATE students_guardian SET phone = ? WHERE id = ?", zip(phones, ids, strict=True))
        first_student = db.execute("SELECT id FROM students_student LIMIT 1").fetchone()[0]
        db.execute("UPDATE students_student SET family_name = '𠮷田' WHERE id = ?", (first_student,))
    db.close()
    leaks = find_all(_sqlite_bytes(mutated), needles(collected["fields"], collected["public"]))
    assert {f"guardian.phone: {p!r} (utf-8)" for p in phones} <= set(leaks)
    assert "student.family_name: '𠮷田' (utf-8)" in leaks


def _postgres_or_skip() -> Any:
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - psycopg is a runtime dependency
        pytest.skip(f"psycopg is not installed: {exc}")
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=2):
            pass
        return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except (OSError, psycopg.Error) as exc:
        pytest.skip(
            f"PostgreSQL is not reachable at 127.0.0.1:5432 as user postgres with trust auth ({exc}); "
            "CI runs this test with PostgreSQL up."
        )


@pytest.mark.postgres
def test_pg_dump_reveals_no_personal_data(tmp_path: Path) -> None:
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        pytest.skip("pg_dump is not installed (apt-get install postgresql-client)")
    admin = _postgres_or_skip()
    name = f"komu_dump_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = f"postgres://postgres@127.0.0.1:5432/{name}"
        env = _env(tmp_path / "var", url)
        collected = load_demo_and_collect(env)
        attached = attach_personal_file(env, collected, tmp_path)
        dump = subprocess.run(
            [pg_dump, "--no-owner", "--format=plain", f"--dbname={url}"],
            capture_output=True,
            timeout=300,
            check=False,
        )
        assert dump.returncode == 0, dump.stderr.decode(errors="replace")
        assert_reveals_nothing(dump.stdout, collected, "pg_dump")
        assert_files_reveal_nothing(tmp_path / "var" / "media", attached, collected)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
