"""A board of 500 schools aggregates one survey of 50 fields (issue 5: results table and XLSX ≤ 5 s), through
komu.surveys.selectors — scoped fetch of the 500 answers, decryption of each answer's values, per-field summaries,
the one-row-per-school table, and the formula-safe XLSX (`results_for` + `results_export`) — beside a bare
baseline in the same run: the same 500 values as plain JSON read with one raw query, parsed, and written as the
same 500 × 56 grid with openpyxl's write-only workbook.

`KOMU_BENCH_SURVEY_SCHOOLS` changes the number of schools (default 500).
"""

from __future__ import annotations

import datetime
import io
import json
import os
import random
import time
from typing import Any

import openpyxl
from django.db import connection
from django.utils import timezone

N_FIELDS = 50


def _fields() -> list[dict[str, Any]]:
    fields: list[dict[str, Any]] = []
    for i in range(N_FIELDS):
        key = f"q{i + 1}"
        if i < 30:
            fields.append({"key": key, "label": f"人数{i + 1}", "kind": "number", "config": {"min": 0, "max": 9999}})
        elif i < 40:
            fields.append({"key": key, "label": f"方式{i + 1}", "kind": "single",
                           "config": {"choices": ["あり", "なし", "検討中"]}})
        elif i < 45:
            fields.append({"key": key, "label": f"行事{i + 1}", "kind": "multiple",
                           "config": {"choices": ["運動会", "遠足", "学芸会", "修学旅行"]}})
        else:
            fields.append({"key": key, "label": f"備考{i + 1}", "kind": "text", "config": {"max_length": 200}})
    return fields


def _value(field: dict[str, Any], rng: random.Random) -> Any:
    kind = field["kind"]
    if kind == "number":
        return rng.randint(0, 500)
    if kind == "single":
        return rng.choice(field["config"]["choices"])
    if kind == "multiple":
        return rng.sample(field["config"]["choices"], 2)
    return rng.choice(["特になし", "=1+1", "インフルエンザが流行しています。", ""])


def _world(n: int) -> tuple[Any, Any, list[dict[str, Any]]]:
    from komu.access.scope import get_actor
    from komu.accounts.models import User
    from komu.core.codes import make_school_code
    from komu.directory.models import Board, Prefecture, Role, School, StaffAssignment
    from komu.surveys.models import Survey, SurveyAnswer, SurveyField

    prefecture = Prefecture.objects.get(code="28")
    board, _ = Board.objects.get_or_create(code="289901", defaults={
        "name": "ベンチ照会市教育委員会", "kind": Board.Kind.MUNICIPAL, "prefecture": prefecture})
    if not School.objects.filter(board=board).exists():
        School.objects.bulk_create([
            School(code=make_school_code("B1", "28", "2", f"{8000000 + i:07d}"), name=f"ベンチ照会市立第{i + 1}小学校",
                   school_type="B1", board=board, prefecture=prefecture)
            for i in range(n)
        ])
    officer, created = User.objects.get_or_create(username="bench-s-officer", defaults={"display_name": "担当"})
    if created:
        StaffAssignment.objects.create(user=officer, role=Role.BOARD_OFFICER, board=board)
    specs = _fields()
    survey = Survey.objects.filter(board=board).first()
    if survey is None:
        survey = Survey.objects.create(board=board, title="ベンチ照会", status=Survey.Status.PUBLISHED,
                                       deadline=timezone.now() + datetime.timedelta(days=7), created_by=officer)
        SurveyField.objects.bulk_create([
            SurveyField(survey=survey, key=f["key"], position=i, label=f["label"], kind=f["kind"], required=True,
                        config=f["config"]) for i, f in enumerate(specs)])
        rng = random.Random(5)
        now = timezone.now()
        answers = []
        for school in School.objects.filter(board=board):
            values = {f["key"]: _value(f, rng) for f in specs}
            answers.append(SurveyAnswer(
                survey=survey, school=school, status=SurveyAnswer.Status.SUBMITTED, submitted_at=now,
                values=json.dumps(values, ensure_ascii=False, sort_keys=True),
                prefilled={"q1": values["q1"] if rng.random() < 0.8 else values["q1"] + 1}))
        SurveyAnswer.objects.bulk_create(answers, batch_size=200)
    return survey, get_actor(officer), specs


def _baseline(plain: list[tuple[str, str, str]], specs: list[dict[str, Any]]) -> float:
    """The bare minimum: read 500 plain JSON rows, parse them and write the grid (no scope, audit, decryption,
    summaries or formula escaping)."""
    start = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE IF NOT EXISTS bench_plain (code TEXT, name TEXT, data TEXT)")
        cursor.execute("DELETE FROM bench_plain")
        cursor.executemany("INSERT INTO bench_plain VALUES (%s, %s, %s)", plain)
    load = time.perf_counter() - start  # setup, not counted
    start = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT code, name, data FROM bench_plain ORDER BY code")
        rows = cursor.fetchall()
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("回答一覧")
    sheet.append(["学校コード", "学校名", *[f["label"] for f in specs]])
    for code, name, data in rows:
        values = json.loads(data)
        sheet.append([code, name, *[str(values.get(f["key"], "")) for f in specs]])
    workbook.save(io.BytesIO())
    del load
    return time.perf_counter() - start


def _page(user: Any, survey_id: int) -> list[float]:
    """The board's results page as a browser gets it: middleware, session, MFA check, template."""
    from django.test import Client
    from django.test.utils import override_settings
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from komu.testing.world import login_verified

    if not TOTPDevice.objects.filter(user=user).exists():
        TOTPDevice.objects.create(user=user, name="bench", confirmed=True)
    client = Client()
    times = []
    with override_settings(ALLOWED_HOSTS=["testserver"]):
        login_verified(client, user)
        for _ in range(3):
            start = time.perf_counter()
            response = client.get(f"/surveys/{survey_id}/results/")
            times.append(time.perf_counter() - start)
            assert response.status_code == 200, response.status_code
    return times


def run() -> list[str]:
    from komu.surveys import selectors, services

    n = int(os.environ.get("KOMU_BENCH_SURVEY_SCHOOLS", "500"))
    survey, actor, specs = _world(n)
    times = []
    size = 0
    for _ in range(3):
        start = time.perf_counter()
        results = selectors.results_for(actor=actor, survey_id=survey.pk)
        download = selectors.results_export(actor=actor, survey_id=survey.pk, fmt="xlsx")
        times.append(time.perf_counter() - start)
        size = len(download.data)
    assert results.total == n and len(results.headers) == N_FIELDS + 6
    plain = [(a.school.code, a.school.name, a.values)
             for a in survey.answers.select_related("school")]  # decrypted once, for the baseline's table
    assert services.answer_values(survey.answers.first()) is not None
    base = min(_baseline(plain, specs) for _ in range(3))
    shown = " / ".join(f"{t:.2f}" for t in times)
    page_times = _page(actor.user, survey.pk)
    return [
        f"survey aggregate ({n} answers × {N_FIELDS} fields: results table + summaries + XLSX {size // 1024} KiB): "
        f"best {min(times):.2f} s (runs {shown} s)  |  baseline plain JSON → openpyxl grid: {base:.2f} s  "
        f"|  ratio {base / min(times):.2f}  |  target ≤ 5 s {'met' if max(times) <= 5 else 'NOT met'}",
        f"survey results page over HTTP (test client, {n} rows × {N_FIELDS + 6} columns + summaries): "
        f"best {min(page_times):.2f} s (runs {' / '.join(f'{t:.2f}' for t in page_times)} s)",
    ]
