"""学齢簿 import of a large city: 100,000 synthetic children (Faker ja_JP, CP932 CSV in the Komu layout) uploaded,
validated (dry run), then applied — encrypted, blind-indexed and audited — through komu.rosters.services.imports,
beside a plain `executemany` of the same rows into a bare table through the database driver, in the same run.

`KOMU_BENCH_GAKUREIBO_ROWS` changes the row count (default 100,000). Peak memory is the process's peak RSS
(resource.getrusage) measured right after the import (the CSV is generated streaming, the baseline's rows are
built only afterwards), so it bounds the import's own peak from above. CPU rows/s (process time) is printed too:
on a shared machine it is the steadier figure.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import random
import resource
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from django.db import connection, transaction

HEADERS = [
    "個人番号", "氏名（姓）", "氏名（名）", "ふりがな（姓）", "ふりがな（名）", "性別", "生年月日", "郵便番号", "住所",
    "保護者氏名（姓）", "保護者氏名（名）", "保護者ふりがな（姓）", "保護者ふりがな（名）", "続柄", "保護者電話番号",
    "保護者メールアドレス", "保護者住所", "就学予定校コード", "学年", "学級種別", "区域外就学", "入学予定日", "備考",
]
FISCAL_YEAR = 2027


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def synthetic_rows(n: int, school_codes: list[str], *, seed: int = 7) -> Iterator[list[str]]:
    """Realistic rows: name pairs with readings, birth dates of the 年度's entrants, addresses, guardians."""
    from faker import Faker

    fake = Faker("ja_JP")
    Faker.seed(seed)
    rng = random.Random(seed)
    low = dt.date(FISCAL_YEAR - 7, 4, 2)
    for i in range(n):
        family, family_kana, _ = fake.last_name_pair()
        given, given_kana, _ = fake.first_name_pair()
        g_given, g_given_kana, _ = fake.first_name_pair()
        address = fake.address()
        birth = low + dt.timedelta(days=rng.randrange(365))
        yield [
            f"{i + 1:015d}", family, given, family_kana, given_kana, rng.choice("男女"), birth.strftime("%Y/%m/%d"),
            fake.postcode(), address, family, g_given, family_kana, g_given_kana, rng.choice(["父", "母", "祖母"]),
            f"090-{rng.randrange(10000):04d}-{rng.randrange(10000):04d}", f"user{i}@example.jp", address,
            rng.choice(school_codes), "1", "特別支援" if i % 97 == 0 else "普通", "有" if i % 211 == 0 else "無",
            f"{FISCAL_YEAR}/04/06", "",
        ]


def csv_cp932(rows: Iterable[list[str]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADERS)
    writer.writerows(rows)
    return out.getvalue().encode("cp932")


def _world() -> tuple[Any, list[str], Any]:
    from komu.access.scope import get_actor
    from komu.accounts.models import User
    from komu.core.codes import make_school_code
    from komu.directory.models import Board, Prefecture, Role, School, StaffAssignment

    prefecture = Prefecture.objects.get(code="13")
    board, _ = Board.objects.get_or_create(code="139903", defaults={
        "name": "ベンチ学齢簿市教育委員会", "kind": Board.Kind.MUNICIPAL, "prefecture": prefecture})
    codes = []
    for n in range(1, 21):
        code = make_school_code("B1", "13", "1", f"09930{n:02d}")
        School.objects.get_or_create(code=code, defaults={
            "name": f"ベンチ第{n}小学校", "school_type": "B1", "board": board, "prefecture": prefecture})
        codes.append(code)
    user, created = User.objects.get_or_create(username="bench_gakureibo_officer", defaults={"kind": "staff"})
    if created:
        StaffAssignment.objects.create(user=user, role=Role.BOARD_OFFICER, board=board)
    return board, codes, get_actor(user)


def _raw_insert(rows: list[list[str]]) -> float:
    """The baseline: the same rows, plaintext, into a bare table with the driver's executemany."""
    begin = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_gakureibo_plain")
        cursor.execute("CREATE TABLE bench_gakureibo_plain (id varchar(36), "
                       + ", ".join(f"c{i} text" for i in range(len(HEADERS))) + ")")
        placeholders = ", ".join(["%s"] * (len(HEADERS) + 1))
        cursor.executemany(f"INSERT INTO bench_gakureibo_plain VALUES ({placeholders})",  # noqa: S608
                           [(str(uuid.uuid4()), *r) for r in rows])
        cursor.execute("DROP TABLE bench_gakureibo_plain")
    return time.perf_counter() - begin


def _clear(board: Any) -> None:
    """Remove an earlier run's entries with one statement each: QuerySet.delete() would load 100,000 models
    (and inflate this run's memory figure) on a reused PostgreSQL database."""
    from komu.rosters.models import GakureiboEntry, GakureiboImport

    with transaction.atomic(), connection.cursor() as cursor:
        for model in (GakureiboEntry, GakureiboImport):
            table = connection.ops.quote_name(model._meta.db_table)
            cursor.execute(f"DELETE FROM {table} WHERE board_id = %s", [board.pk])  # noqa: S608


def run() -> list[str]:
    from komu.rosters.models import GakureiboEntry
    from komu.rosters.services import imports

    n = int(os.environ.get("KOMU_BENCH_GAKUREIBO_ROWS", "100000"))
    board, codes, actor = _world()
    data = csv_cp932(synthetic_rows(n, codes))  # streamed: the process holds the file, not the rows
    _clear(board)
    rss_before = _rss_mb()

    start, cpu_start = time.perf_counter(), time.process_time()
    imp = imports.gakureibo_import_create(
        actor=actor, board=board, fiscal_year=FISCAL_YEAR, filename="bench.csv", data=data,
    )
    imp = imports.gakureibo_import_validate(import_id=imp.pk)
    validated = time.perf_counter()
    if imp.status != imp.Status.VALIDATED:
        raise RuntimeError(f"bench file did not validate: {imp.data.get('errors', [])[:3]}")
    imports.gakureibo_import_apply(actor=actor, import_id=imp.pk)
    applied, cpu = time.perf_counter(), time.process_time() - cpu_start
    rss_after = _rss_mb()
    if GakureiboEntry.objects.filter(board=board, fiscal_year=FISCAL_YEAR).count() != n:
        raise RuntimeError("bench import did not write every row")

    # Same file again: everything unchanged, nothing written but the summary.
    again = imports.gakureibo_import_create(
        actor=actor, board=board, fiscal_year=FISCAL_YEAR, filename="bench.csv", data=data,
    )
    again = imports.gakureibo_import_validate(import_id=again.pk)
    imports.gakureibo_import_apply(actor=actor, import_id=again.pk)
    second = time.perf_counter()

    text = data.decode("cp932")
    rows = [r for r in csv.reader(io.StringIO(text, newline=""))][1:]
    raw = _raw_insert(rows)
    total = applied - start
    rate, base = n / total, n / raw
    db = connection.vendor
    return [
        f"学齢簿 import {n:,} rows on {db} (upload + dry run + apply, encrypted, audited): {rate:,.0f} rows/s "
        f"(dry run {validated - start:.1f} s, apply {applied - validated:.1f} s; CPU {n / cpu:,.0f} rows/s, "
        f"load average {os.getloadavg()[0]:.1f})  |  baseline plaintext "
        f"executemany via the driver: {base:,.0f} rows/s  |  ratio {rate / base:.2f}",
        f"学齢簿 same file again (all unchanged): {n / (second - applied):,.0f} rows/s",
        f"学齢簿 import peak RSS: {rss_after:,.0f} MB (process; {rss_before:,.0f} MB before the import, "
        f"CSV {len(data) / 1024 / 1024:.1f} MB)",
    ]
