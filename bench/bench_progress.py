"""The progress database at national scale (issue 6): synthetic indicator values for S schools × I indicators ×
M months, the precomputed rollups refreshed one month at a time, and the pages read from them — each figure
beside a baseline measured in the same run:

- rollup refresh of one month (what `komu progress measure` does after a month changes) | baseline: recomputing
  every month's rollups from the raw rows;
- the national dashboard, a prefecture page and the open-data CSV (prefecture and board level) through the test
  client (middleware, session, MFA check, template), p95 of R requests | baseline: the raw SQL aggregate those
  pages would need per request without the rollup table (GROUP BY over the month's school rows).

Defaults: 35,000 schools × 40 indicators × 24 months on PostgreSQL (KOMU_BENCH_DATABASE_URL); on SQLite 35,000 ×
40 × 2 (2.8 M rows — the full 33.6 M rows would take the scratch SQLite file past what a benchmark run should
write). KOMU_BENCH_PROGRESS_SCHOOLS / _INDICATORS / _MONTHS / _REQUESTS override.
"""

from __future__ import annotations

import datetime
import io
import os
import random
import statistics
import sys
import time
from typing import Any

from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone


def _p95(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def _note(out: list[str], text: str) -> None:
    """Keep the line for the report and show it at once (a national-scale run takes minutes)."""
    out.append(text)
    print(f"  … {text}", file=sys.stderr, flush=True)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def _register_indicators(n: int) -> list[str]:
    """Synthetic indicators beyond the real ones, so the pages show I rows (the registry is module data)."""
    from komu.progress import indicators

    codes = list(indicators.INDICATORS)
    i = 0
    while len(codes) < n:
        i += 1
        code = f"bench_{i:02d}"
        indicators.INDICATORS[code] = indicators.Indicator(code, f"合成指標{i}", indicators.RATIO, "%", True,
                                                           "ベンチマーク用の合成指標。", "合成データ。")
        codes.append(code)
    return codes[:n]


def _months(m: int) -> list[datetime.date]:
    months = [timezone.localdate().replace(day=1)]
    while len(months) < m:
        months.insert(0, (months[0] - datetime.timedelta(days=1)).replace(day=1))
    return months


def _load(schools: int, codes: list[str], months: list[datetime.date]) -> float:
    rng = random.Random(6)
    boards = max(1, schools // 20)
    now = timezone.now().isoformat()
    start = time.perf_counter()
    sql = ("INSERT INTO progress_indicatorvalue (source, school_code, school_name, board_code, board_name, "
           "prefecture_code, month, indicator, numerator, denominator, value, measured_at) "
           "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")
    if connection.vendor == "postgresql":
        return _load_copy(schools, codes, months, rng, boards, now, start)
    with transaction.atomic(), connection.cursor() as cursor:
        for month in months:
            batch: list[tuple[Any, ...]] = []
            for s in range(schools):
                b = s % boards
                pref = f"{b % 47 + 1:02d}"
                code = f"B1{pref}2{s:07d}0"
                board_code = f"{pref}{b:04d}"
                for ind in codes:
                    den = rng.randint(10, 60)
                    value = round(rng.uniform(0.5, 48), 1) if ind == "notice_ack_hours" else None
                    batch.append(("local", code, f"合成校{s}", board_code, f"合成教育委員会{b}", pref,
                                  month.isoformat(), ind, rng.randint(0, den), den, value, now))
                if len(batch) >= 20000:
                    cursor.executemany(sql, batch)
                    batch = []
            if batch:
                cursor.executemany(sql, batch)
    return time.perf_counter() - start


def _load_copy(schools: int, codes: list[str], months: list[datetime.date], rng: random.Random, boards: int,
               now: str, start: float) -> float:
    """The same synthetic rows through PostgreSQL's COPY (33.6 M rows: executemany would take most of an hour)."""
    columns = ("source, school_code, school_name, board_code, board_name, prefecture_code, month, indicator, "
               "numerator, denominator, value, measured_at")
    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg cursor under Django's wrapper
        for month in months:
            with raw.copy(f"COPY progress_indicatorvalue ({columns}) FROM STDIN") as copy:
                for s in range(schools):
                    b = s % boards
                    pref = f"{b % 47 + 1:02d}"
                    code = f"B1{pref}2{s:07d}0"
                    board_code = f"{pref}{b:04d}"
                    for ind in codes:
                        den = rng.randint(10, 60)
                        value = round(rng.uniform(0.5, 48), 1) if ind == "notice_ack_hours" else None
                        copy.write_row(("local", code, f"合成校{s}", board_code, f"合成教育委員会{b}", pref,
                                        month.isoformat(), ind, rng.randint(0, den), den, value, now))
            print(f"  … loaded {month:%Y-%m}", file=sys.stderr, flush=True)
    return time.perf_counter() - start


def _client() -> Any:
    from django.test import Client
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from komu.directory.models import Role, StaffAssignment
    from komu.testing.world import login_verified, make_user

    user = make_user("bench-national")
    if not TOTPDevice.objects.filter(user=user).exists():
        TOTPDevice.objects.create(user=user, name="bench", confirmed=True)
    StaffAssignment.objects.create(user=user, role=Role.NATIONAL_ANALYST)
    client = Client()
    login_verified(client, user)
    return client


def _timed_get(client: Any, url: str, n: int) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        response = client.get(url)
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, (url, response.status_code)
    return times


def _raw_aggregate(sql: str, params: list[Any], n: int) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            cursor.fetchall()
        times.append(time.perf_counter() - start)
    return times


def run() -> list[str]:
    from django.test.utils import override_settings

    from komu.progress import services
    from komu.progress.models import IndicatorValue, Rollup

    on_pg = connection.vendor == "postgresql"
    schools = int(os.environ.get("KOMU_BENCH_PROGRESS_SCHOOLS", "35000"))
    n_ind = int(os.environ.get("KOMU_BENCH_PROGRESS_INDICATORS", "40"))
    n_months = int(os.environ.get("KOMU_BENCH_PROGRESS_MONTHS", "24" if on_pg else "2"))
    requests = int(os.environ.get("KOMU_BENCH_PROGRESS_REQUESTS", "20"))
    codes = _register_indicators(n_ind)
    months = _months(n_months)
    rows = schools * len(codes) * len(months)
    out = [f"## progress ({connection.vendor}): {schools:,} schools × {len(codes)} indicators × {len(months)} "
           f"months = {rows:,} school values"]
    load = _load(schools, codes, months)
    if on_pg:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE progress_indicatorvalue")
    _note(out, f"load (COPY on PostgreSQL, executemany on SQLite): {rows / load:,.0f} rows/s ({load:.1f} s)")

    start = time.perf_counter()
    with transaction.atomic():
        services.rollups_refresh(months=months)
    full = time.perf_counter() - start
    start = time.perf_counter()
    with transaction.atomic():
        written = services.rollups_refresh(months=[months[-1]])
    one = time.perf_counter() - start
    _note(out, f"rollup refresh of one month (incremental, {written:,} rollup rows): {_ms(one)}  |  baseline "
               f"recomputing all {len(months)} months: {_ms(full)}")
    assert Rollup.objects.filter(level="nation", month=months[-1]).count() == len(codes)

    month = months[-1]
    ym = f"{month:%Y-%m}"
    pages: list[tuple[str, str, str, list[Any]]] = [
        ("national dashboard", f"/progress/?month={ym}&indicator=comm_digital",
         "SELECT prefecture_code, indicator, SUM(numerator), SUM(denominator), COUNT(*) FROM progress_indicatorvalue "
         "WHERE month = %s GROUP BY prefecture_code, indicator", [month]),
        ("prefecture page (13)", f"/progress/units/prefecture/13/?month={ym}&indicator=comm_digital",
         "SELECT board_code, indicator, SUM(numerator), SUM(denominator), COUNT(*) FROM progress_indicatorvalue "
         "WHERE month = %s AND prefecture_code = %s GROUP BY board_code, indicator", [month, "13"]),
        ("open-data CSV, prefecture level", f"/progress/open/prefecture-{ym}.csv",
         "SELECT prefecture_code, indicator, SUM(numerator), SUM(denominator), COUNT(*) FROM progress_indicatorvalue "
         "WHERE month = %s GROUP BY prefecture_code, indicator", [month]),
        ("open-data CSV, board level", f"/progress/open/board-{ym}.csv",
         "SELECT board_code, indicator, SUM(numerator), SUM(denominator), COUNT(*) FROM progress_indicatorvalue "
         "WHERE month = %s GROUP BY board_code, indicator", [month]),
    ]
    with override_settings(ALLOWED_HOSTS=["testserver"]):
        client = _client()
        for name, url, sql, params in pages:
            cache.clear()
            cold = _timed_get(client, url, 1)[0]  # open-data files: generated once per refresh, then cached
            _timed_get(client, url, 2)  # warm: templates compiled, connections open
            times = _timed_get(client, url, requests)
            base = _raw_aggregate(sql, params, max(3, requests // 4))
            verdict = "ok" if _p95(times) <= 0.3 else "OVER 300 ms"
            _note(out, f"{name}: p95 {_ms(_p95(times))} (median {_ms(statistics.median(times))}, {verdict}; first "
                       f"request after a refresh {_ms(cold)})  |  baseline raw GROUP BY over the month's school "
                       f"rows: p95 {_ms(_p95(base))}")
    cache.clear()
    start = time.perf_counter()
    school_rows = IndicatorValue.objects.filter(month=month).count()
    buffer = io.BytesIO()
    with override_settings(ALLOWED_HOSTS=["testserver"]):
        response = client.get(f"/progress/open/school-{ym}.csv")
        buffer.write(response.content)
    school_csv = time.perf_counter() - start
    _note(out, f"open-data CSV, school level ({school_rows:,} rows, {buffer.tell() / 1e6:,.1f} MB): "
               f"{school_csv:.1f} s — a download, not a page; not within 300 ms")
    return out
