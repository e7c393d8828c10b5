"""Demo data for the progress database (komu.progress): six months of indicator history for the demo's schools,
and a fictional reference set — three invented schools in each of the 47 prefectures — so the board's dashboard
compares its schools with a prefecture and a nation, and the map has colours.

Everything here is invented demo data (domain.md §6), kept apart from measured values: the reference schools
carry source "demo" and codes that name no school of this database. The current month is then measured for real
from whatever the demo's other modules wrote (notices, surveys, registers), so using the demo moves it.
Called once by komu/demo/builder.py (`build`).
"""

from __future__ import annotations

import datetime
import random

from django.utils import timezone

from komu.core import codes
from komu.core.codes import make_school_code
from komu.directory.models import Board, School
from komu.progress import indicators, services
from komu.progress.models import IndicatorValue

HISTORY_MONTHS = 6


def _months(today: datetime.date) -> list[datetime.date]:
    months = [today.replace(day=1)]
    while len(months) <= HISTORY_MONTHS:
        months.insert(0, (months[0] - datetime.timedelta(days=1)).replace(day=1))
    return months[:-1]  # the current month is measured, not invented


def _figure(rng: random.Random, ind: indicators.Indicator, level: float,
            size: int) -> tuple[int, int, float | None]:
    if ind.kind == indicators.COUNT:
        return max(0, round(rng.gauss((1 - level) * 12, 2))), 1, None
    if ind.kind == indicators.MEDIAN:
        n = rng.randint(8, 20)
        return n, n, round(max(0.2, rng.gauss((1 - level) * 40 + 2, 3)), 1)
    den = max(1, round(size * rng.uniform(0.8, 1.2)))
    num = min(den, max(0, round(den * min(1.0, max(0.0, rng.gauss(level, 0.06))))))
    return num, den, None


def _values(rng: random.Random, *, code: str, name: str, board_code: str, board_name: str, pref: str,
            months: list[datetime.date], base: float, source: str) -> list[IndicatorValue]:
    now = timezone.now()
    rows = []
    for i, month in enumerate(months):
        level = min(0.98, base + 0.04 * i)  # digitisation creeps up month by month
        for ind in indicators.INDICATORS.values():
            if ind.code in ("checklist_score", "staff_mfa"):
                continue
            num, den, value = _figure(rng, ind, level, 40 if ind.pupil_derived else 25)
            rows.append(IndicatorValue(source=source, school_code=code, school_name=name, board_code=board_code,
                                       board_name=board_name, prefecture_code=pref, month=month,
                                       indicator=ind.code, numerator=num, denominator=den, value=value,
                                       measured_at=now))
    return rows


def build(*, board: Board, schools: list[School], seed: int, today: datetime.date | None = None) -> None:
    rng = random.Random(seed * 7919 + 6)
    today = today or timezone.localdate()
    months = _months(today)
    rows: list[IndicatorValue] = []
    for k, school in enumerate(schools):
        rows += _values(rng, code=school.code, name=school.name, board_code=board.code, board_name=board.name,
                        pref=school.prefecture_id, months=months, base=0.55 + 0.05 * k, source="local")
    for pref, pref_name in codes.PREFECTURES:
        base = rng.uniform(0.25, 0.7)
        board_code = f"{pref}9800"
        for n in range(3):
            code = make_school_code("B1", pref, "2", f"98{n:05d}")
            rows += _values(rng, code=code, name=f"{pref_name}架空参照校{n + 1}", board_code=board_code,
                            board_name=f"{pref_name}架空参照教育委員会", pref=pref,
                            months=[*months, today.replace(day=1)],
                            base=base + rng.uniform(-0.1, 0.1), source="demo")
    IndicatorValue.objects.bulk_create(rows, batch_size=2000)
    services.rollups_refresh(months=[*months, today.replace(day=1)])
    services.checklist_items_load()
    services.indicators_measure(actor=None, month=today.replace(day=1))
