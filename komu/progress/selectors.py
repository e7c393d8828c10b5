"""Reads of the progress database: units (nation, prefecture, board, school) within the viewer's reach, their
figures, trends, rankings, the map and the open data. Pages read the precomputed Rollup rows and, for schools,
the IndicatorValue rows — never the sources.

Who sees what (issue 6): analysts (national, prefectural) see aggregates only — nation, prefectures, boards —
within their reach; a board officer its own board(s) and their schools; a principal or vice-principal their
school. The nation and the viewer's own prefecture are always visible for comparison (they are open data).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, F, Max, Q
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from komu.access import roles
from komu.access.scope import Actor
from komu.core import codes
from komu.core.errors import NotFoundOrNoAccess
from komu.directory.models import Board, Role
from komu.progress import indicators
from komu.progress.indicators import Indicator
from komu.progress.models import ChecklistResponse, IndicatorValue, Rollup
from komu.web.selectors import Task

NATION, PREFECTURE, BOARD, SCHOOL = "nation", "prefecture", "board", "school"
# Shown on pages (in the screen's language); the open data files write their own Japanese headings.
LEVEL_LABELS = {NATION: gettext_lazy("全国"), PREFECTURE: gettext_lazy("都道府県"), BOARD: gettext_lazy("教育委員会"),
                SCHOOL: gettext_lazy("学校")}
SUPPRESS_BELOW = 10


@dataclass(frozen=True)
class Unit:
    level: str
    key: str
    name: str
    prefecture_code: str = ""
    board_code: str = ""

    @property
    def url(self) -> str:
        if self.level == NATION:
            return reverse("progress:dashboard")
        return reverse("progress:unit", args=[self.level, self.key])


@dataclass(frozen=True)
class Figure:
    indicator: Indicator
    numerator: int
    denominator: int
    value: float | None  # the displayed figure (%, per school, hours) or None when not measured / no cases
    measured: bool
    schools: int = 1

    @property
    def display(self) -> str:
        if not self.measured:
            return _("未計測")
        if self.value is None:
            return _("該当なし")
        return f"{self.value:.1f}"


def compute(ind: Indicator, num: int, den: int, weighted: float, weight: int, value: float | None,
            *, school_level: bool) -> float | None:
    if ind.kind == indicators.MEDIAN:
        if school_level:
            return value
        return weighted / weight if weight else None
    if den <= 0:
        return None
    if ind.kind == indicators.RATIO:
        return 100.0 * num / den
    return num / den


# --- reach -------------------------------------------------------------------------------------------------------


def _grants(actor: Actor) -> list[tuple[str, str | None, int | None, int | None]]:
    return [(g.role, g.prefecture_id, g.board_id, g.school_id) for g in actor.grants_with(roles.PROGRESS_VIEW)]


def _own_board_codes(actor: Actor) -> set[str]:
    ids = [b for r, _p, b, _s in _grants(actor) if r == Role.BOARD_OFFICER and b is not None]
    return set(Board.objects.filter(Q(pk__in=ids) | Q(parent_id__in=ids)).values_list("code", flat=True))


def _own_school_codes(actor: Actor) -> set[str]:
    from komu.directory.models import School

    ids = [s for _r, _p, _b, s in _grants(actor) if s is not None]
    return set(School.objects.filter(pk__in=ids).values_list("code", flat=True))


def may_see_schools(actor: Actor) -> bool:
    return any(r not in (Role.NATIONAL_ANALYST, Role.PREFECTURAL_ANALYST) for r, *_ in _grants(actor))


def home_unit(actor: Actor) -> Unit:
    """Where the viewer's dashboard starts: nation, their prefecture, their board or their school."""
    grants = _grants(actor)
    roles_held = {r for r, *_ in grants}
    if Role.NATIONAL_ANALYST in roles_held or not grants:
        return Unit(NATION, "JP", "全国")
    for role, pref, board_id, _school_id in grants:
        if role == Role.PREFECTURAL_ANALYST and pref:
            return unit_get_for(actor=actor, level=PREFECTURE, key=pref)
        if role == Role.BOARD_OFFICER and board_id is not None:
            return unit_get_for(actor=actor, level=BOARD, key=Board.objects.get(pk=board_id).code)
    school_codes = sorted(_own_school_codes(actor))
    if school_codes:
        return unit_get_for(actor=actor, level=SCHOOL, key=school_codes[0])
    return Unit(NATION, "JP", "全国")


def unit_get_for(*, actor: Actor, level: str, key: str) -> Unit:
    """One unit within the viewer's reach; NotFoundOrNoAccess (→ 404) otherwise, for missing and out-of-reach
    alike."""
    grants = _grants(actor)
    if not grants:
        raise NotFoundOrNoAccess("見つかりません。")
    roles_held = {r for r, *_ in grants}
    pref_names = dict(codes.PREFECTURES)
    if level == NATION and key == "JP":
        return Unit(NATION, "JP", "全国")
    if level == PREFECTURE and key in pref_names:
        return Unit(PREFECTURE, key, pref_names[key], prefecture_code=key)
    if level == BOARD:
        row = Rollup.objects.filter(level=BOARD, key=key).values("name", "prefecture_code").first()
        local = Board.objects.filter(code=key).values("name", "prefecture_id").first()
        if row is None and local is None:
            raise NotFoundOrNoAccess("見つかりません。")
        name = local["name"] if local else row["name"]  # type: ignore[index]
        pref = local["prefecture_id"] if local else row["prefecture_code"]  # type: ignore[index]
        allowed = (Role.NATIONAL_ANALYST in roles_held
                   or any(r == Role.PREFECTURAL_ANALYST and p == pref for r, p, _b, _s in grants)
                   or key in _own_board_codes(actor)
                   or IndicatorValue.objects.filter(board_code=key, school_code__in=_own_school_codes(actor))
                   .exists())
        if not allowed:
            raise NotFoundOrNoAccess("見つかりません。")
        return Unit(BOARD, key, name, prefecture_code=pref, board_code=key)
    if level == SCHOOL:
        if not may_see_schools(actor):
            raise NotFoundOrNoAccess("見つかりません。")
        found = (IndicatorValue.objects.filter(school_code=key).order_by("-month")
                 .values("school_name", "board_code", "prefecture_code").first())
        srow: dict[str, str]
        if found is not None:
            srow = {"school_name": found["school_name"], "board_code": found["board_code"],
                    "prefecture_code": found["prefecture_code"]}
        else:
            from komu.directory.models import School

            school = School.objects.filter(code=key).select_related("board").first()
            if school is None:
                raise NotFoundOrNoAccess("見つかりません。")
            srow = {"school_name": school.name, "board_code": school.board.code,
                    "prefecture_code": school.prefecture_id}
        if not (key in _own_school_codes(actor) or srow["board_code"] in _own_board_codes(actor)):
            raise NotFoundOrNoAccess("見つかりません。")
        return Unit(SCHOOL, key, srow["school_name"], prefecture_code=srow["prefecture_code"],
                    board_code=srow["board_code"])
    raise NotFoundOrNoAccess("見つかりません。")


def comparison_units(unit: Unit) -> list[Unit]:
    """The unit and those above it: school → board → prefecture → nation."""
    out = [unit]
    if unit.level == SCHOOL:
        board = Rollup.objects.filter(level=BOARD, key=unit.board_code).values_list("name", flat=True).first()
        out.append(Unit(BOARD, unit.board_code, board or unit.board_code, prefecture_code=unit.prefecture_code))
    if unit.level in (SCHOOL, BOARD):
        out.append(Unit(PREFECTURE, unit.prefecture_code, dict(codes.PREFECTURES).get(unit.prefecture_code, ""),
                        prefecture_code=unit.prefecture_code))
    if unit.level != NATION:
        out.append(Unit(NATION, "JP", "全国"))
    return out


# --- figures -----------------------------------------------------------------------------------------------------


def latest_month() -> datetime.date | None:
    found: datetime.date | None = Rollup.objects.filter(level=NATION).exclude(indicator="checklist_score") \
        .aggregate(m=Max("month"))["m"]
    return found


def available_months(limit: int = 24) -> list[datetime.date]:
    return list(Rollup.objects.filter(level=NATION, indicator="comm_digital").order_by("-month")
                .values_list("month", flat=True)[:limit])


YEARLY = frozenset({"checklist_score"})


def month_for(indicator_code: str, month: datetime.date) -> datetime.date:
    """Yearly indicators (the checklist score) are stored on the 年度's April: a month shows its 年度's value."""
    if indicator_code in YEARLY:
        return datetime.date(month.year if month.month >= 4 else month.year - 1, 4, 1)
    return month


def figures(unit: Unit, month: datetime.date) -> dict[str, Figure]:
    out: dict[str, Figure] = {}
    april = month_for("checklist_score", month)
    wanted = Q(month=month) & ~Q(indicator__in=YEARLY) | Q(month=april, indicator__in=YEARLY)
    if unit.level == SCHOOL:
        for v in IndicatorValue.objects.filter(wanted, school_code=unit.key):
            ind = indicators.get(v.indicator)
            if ind is not None:
                out[ind.code] = Figure(ind, v.numerator, v.denominator,
                                       compute(ind, v.numerator, v.denominator, 0, 0, v.value, school_level=True),
                                       True)
    else:
        for r in Rollup.objects.filter(wanted, level=unit.level, key=unit.key):
            ind = indicators.get(r.indicator)
            if ind is not None:
                out[ind.code] = Figure(ind, r.numerator, r.denominator,
                                       compute(ind, r.numerator, r.denominator, r.weighted_value, r.weight, None,
                                               school_level=False), True, r.schools)
    for code, ind in indicators.INDICATORS.items():
        out.setdefault(code, Figure(ind, 0, 0, None, False, 0))
    return out


@dataclass
class ComparisonRow:
    indicator: Indicator
    cells: list[Figure] = field(default_factory=list)


def comparison_table(units: list[Unit], month: datetime.date) -> list[ComparisonRow]:
    per_unit = [figures(u, month) for u in units]
    return [ComparisonRow(ind, [f[code] for f in per_unit]) for code, ind in indicators.INDICATORS.items()]


def trend(unit: Unit, indicator_code: str, months: list[datetime.date]) -> list[float | None]:
    ind = indicators.INDICATORS[indicator_code]
    by_month: dict[datetime.date, float | None] = {}
    if unit.level == SCHOOL:
        for v in IndicatorValue.objects.filter(school_code=unit.key, indicator=indicator_code, month__in=months):
            by_month[v.month] = compute(ind, v.numerator, v.denominator, 0, 0, v.value, school_level=True)
    else:
        for r in Rollup.objects.filter(level=unit.level, key=unit.key, indicator=indicator_code, month__in=months):
            by_month[r.month] = compute(ind, r.numerator, r.denominator, r.weighted_value, r.weight, None,
                                        school_level=False)
    return [by_month.get(m) for m in months]


def year_figures(unit: Unit, indicator_code: str, years: list[int]) -> list[float | None]:
    """The 年度 figure: Σ over the year's months (weighted for medians)."""
    ind = indicators.INDICATORS[indicator_code]
    out: list[float | None] = []
    for year in years:
        start, end = datetime.date(year, 4, 1), datetime.date(year + 1, 3, 1)
        if unit.level == SCHOOL:
            rows = [(v.numerator, v.denominator, (v.value or 0) * v.numerator if v.value is not None else 0,
                     v.numerator if v.value is not None else 0)
                    for v in IndicatorValue.objects.filter(school_code=unit.key, indicator=indicator_code,
                                                           month__gte=start, month__lte=end)]
        else:
            rows = [(r.numerator, r.denominator, r.weighted_value, r.weight)
                    for r in Rollup.objects.filter(level=unit.level, key=unit.key, indicator=indicator_code,
                                                   month__gte=start, month__lte=end)]
        if not rows:
            out.append(None)
            continue
        num, den = sum(r[0] for r in rows), sum(r[1] for r in rows)
        wv, w = sum(r[2] for r in rows), sum(r[3] for r in rows)
        if ind.kind == indicators.COUNT:
            den = max(r[1] for r in rows)  # per school per month, averaged over the months measured
            out.append(num / den / len(rows) if den else None)
        else:
            out.append(compute(ind, num, den, wv, w, None, school_level=False))
    return out


@dataclass(frozen=True)
class RankRow:
    rank: int | None
    unit: Unit
    figure: Figure
    own: bool
    linked: bool = True  # the viewer may open this unit's page


def own_keys(actor: Actor) -> set[str]:
    """The viewer's own board and school codes and prefecture: highlighted in rankings."""
    prefs = {p for _r, p, _b, _s in _grants(actor) if p}
    return _own_board_codes(actor) | _own_school_codes(actor) | prefs


def children(*, actor: Actor, unit: Unit, month: datetime.date, indicator_code: str) -> list[RankRow]:
    """The units one level down, ranked best first (by the indicator's better direction); nothing below a board
    for analysts (aggregates only)."""
    ind = indicators.INDICATORS[indicator_code]
    month = month_for(indicator_code, month)
    rows: list[tuple[Unit, Figure]] = []
    if unit.level == NATION:
        for r in Rollup.objects.filter(level=PREFECTURE, month=month, indicator=indicator_code):
            rows.append((Unit(PREFECTURE, r.key, r.name, prefecture_code=r.key), _fig(ind, r)))
    elif unit.level == PREFECTURE:
        for r in Rollup.objects.filter(level=BOARD, prefecture_code=unit.key, month=month,
                                       indicator=indicator_code):
            rows.append((Unit(BOARD, r.key, r.name, prefecture_code=r.prefecture_code, board_code=r.key),
                         _fig(ind, r)))
    elif unit.level == BOARD and may_see_schools(actor):
        visible_boards = _own_board_codes(actor)
        own_schools = _own_school_codes(actor)
        for v in IndicatorValue.objects.filter(board_code=unit.key, month=month, indicator=indicator_code):
            if unit.key not in visible_boards and v.school_code not in own_schools:
                continue  # a principal sees their own school among the board's, not the others by name
            rows.append((Unit(SCHOOL, v.school_code, v.school_name, prefecture_code=v.prefecture_code,
                              board_code=v.board_code),
                         Figure(ind, v.numerator, v.denominator,
                                compute(ind, v.numerator, v.denominator, 0, 0, v.value, school_level=True), True)))
    ranked = _ranked(rows, ind, own_keys(actor))
    if unit.level == PREFECTURE:
        roles_held = {r for r, *_ in _grants(actor)}
        open_all = Role.NATIONAL_ANALYST in roles_held or any(
            r == Role.PREFECTURAL_ANALYST and p == unit.key for r, p, _b, _s in _grants(actor))
        if not open_all:
            mine = _own_board_codes(actor) | set(
                IndicatorValue.objects.filter(school_code__in=_own_school_codes(actor))
                .values_list("board_code", flat=True).distinct())
            ranked = [RankRow(r.rank, r.unit, r.figure, r.own, r.unit.key in mine) for r in ranked]
    return ranked


def _fig(ind: Indicator, r: Rollup) -> Figure:
    return Figure(ind, r.numerator, r.denominator,
                  compute(ind, r.numerator, r.denominator, r.weighted_value, r.weight, None, school_level=False),
                  True, r.schools)


def _ranked(rows: list[tuple[Unit, Figure]], ind: Indicator, own: set[str]) -> list[RankRow]:
    with_value = [r for r in rows if r[1].value is not None]
    without = [r for r in rows if r[1].value is None]
    with_value.sort(key=lambda r: (-(r[1].value or 0) if ind.higher_is_better else (r[1].value or 0),
                                   r[0].key))
    out: list[RankRow] = []
    previous: float | None = None
    rank = 0
    for i, (u, f) in enumerate(with_value, start=1):
        if f.value != previous:
            rank, previous = i, f.value
        out.append(RankRow(rank, u, f, u.key in own))
    out.extend(RankRow(None, u, f, u.key in own) for u, f in sorted(without, key=lambda r: r[0].key))
    return out


@dataclass(frozen=True)
class Position:
    scope_label: str
    rank: int
    of: int


def school_positions(unit: Unit, month: datetime.date, indicator_code: str) -> list[Position]:
    """Where a school stands among the schools of its board, prefecture and the nation (1 = best): counted on
    the stored values (the better ones + 1), no school named."""
    ind = indicators.INDICATORS[indicator_code]
    month = month_for(indicator_code, month)
    own = IndicatorValue.objects.filter(school_code=unit.key, month=month, indicator=indicator_code).first()
    if own is None:
        return []
    own_value = compute(ind, own.numerator, own.denominator, 0, 0, own.value, school_level=True)
    if own_value is None:
        return []
    out = []
    for label, q in ((_("教育委員会内"), Q(board_code=unit.board_code)),
                     (_("都道府県内"), Q(prefecture_code=unit.prefecture_code)), (_("全国"), Q())):
        qs = IndicatorValue.objects.filter(q, month=month, indicator=indicator_code)
        # Counted in the database (no row leaves it): better = a larger (or smaller) numerator/denominator,
        # compared without dividing, or a smaller median.
        if ind.kind == indicators.MEDIAN:
            measured = qs.filter(value__isnull=False)
            better = (measured.filter(value__gt=own_value) if ind.higher_is_better
                      else measured.filter(value__lt=own_value))
        else:
            # n/d > own_n/own_d  ⇔  n·own_d > own_n·d (denominators positive): exact in integers.
            measured = qs.filter(denominator__gt=0)
            compared = measured.alias(lhs=F("numerator") * own.denominator, rhs=F("denominator") * own.numerator)
            better = compared.filter(lhs__gt=F("rhs")) if ind.higher_is_better else compared.filter(lhs__lt=F("rhs"))
        out.append(Position(label, better.count() + 1, measured.count()))
    return out


def map_values(month: datetime.date, indicator_code: str) -> dict[str, float | None]:
    ind = indicators.INDICATORS[indicator_code]
    return {r.key: _fig(ind, r).value
            for r in Rollup.objects.filter(level=PREFECTURE, month=month_for(indicator_code, month),
                                           indicator=indicator_code)}


# --- open data ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenRow:
    level: str
    code: str
    name: str
    prefecture_code: str
    board_code: str
    month: str
    indicator: str
    numerator: int | None
    denominator: int | None
    value: float | None
    schools: int | None
    note: str


def _suppressed(ind: Indicator, num: int, den: int, value: float | None, *, school_level: bool,
                schools: int | None) -> tuple[int | None, int | None, float | None, str]:
    """Counts under 10 are not published; a ratio over fewer than 10 cases neither. At school level a
    figure about pupils also hides its counts when the numerator or the rest is under 10 (it could point at
    a few pupils of a small class) and shows the ratio rounded to 10 %."""
    if ind.kind == indicators.COUNT:
        if num < SUPPRESS_BELOW:
            return None, None, None, "秘匿（10未満）"
        return num, den, None if value is None else round(value, 2), ""
    if den < SUPPRESS_BELOW:
        return None, None, None, "秘匿（10未満）"
    if ind.kind == indicators.MEDIAN and num < SUPPRESS_BELOW:
        return None, None, None, "秘匿（10未満）"
    if school_level and ind.pupil_derived:
        small = num < SUPPRESS_BELOW or (den - num) < SUPPRESS_BELOW
        if small:
            rounded = None if value is None else round(value / 10) * 10.0
            return None, None, rounded, "件数秘匿・割合は10%単位"
    return num, den, None if value is None else round(value, 1), ""


def open_rows(*, level: str, month: datetime.date) -> list[OpenRow]:
    out: list[OpenRow] = []
    month_text = f"{month:%Y-%m}"
    if level == SCHOOL:
        qs = IndicatorValue.objects.filter(month=month).order_by("school_code", "indicator").values_list(
            "school_code", "school_name", "prefecture_code", "board_code", "indicator", "numerator",
            "denominator", "value")
        for code, name, pref, board, ind_code, num, den, val in qs.iterator(chunk_size=5000):
            ind = indicators.INDICATORS.get(ind_code)
            if ind is None:
                continue
            value = compute(ind, num, den, 0, 0, val, school_level=True)
            n, d, v, note = _suppressed(ind, num, den, value, school_level=True, schools=1)
            out.append(OpenRow(SCHOOL, code, name, pref, board, month_text, ind_code, n, d, v, 1, note))
        return out
    qs2 = Rollup.objects.filter(level=level, month=month).order_by("key", "indicator").values_list(
        "key", "name", "prefecture_code", "indicator", "numerator", "denominator", "weighted_value", "weight",
        "schools")
    for key, name, pref, ind_code, num, den, wv, w, schools in qs2.iterator(chunk_size=5000):
        ind = indicators.INDICATORS.get(ind_code)
        if ind is None:
            continue
        value = compute(ind, num, den, wv, w, None, school_level=False)
        if ind.kind == indicators.MEDIAN:
            n, d, v, note = _suppressed(ind, w, den, value, school_level=False, schools=schools)
        else:
            n, d, v, note = _suppressed(ind, num, den, value, school_level=False, schools=schools)
        out.append(OpenRow(level, key, name, pref, key if level == BOARD else "", month_text, ind_code, n, d,
                           None if v is None else round(v, 1), schools, note))
    return out


def open_data_version(month: datetime.date) -> int:
    """Changes whenever the month's rollups are refreshed (they are rewritten with new ids): the key under which a
    generated open-data file may be reused."""
    found: int | None = Rollup.objects.filter(level=NATION, month=month).aggregate(v=Max("pk"))["v"]
    return found or 0


OPEN_COLUMNS = [
    ("level", "集計単位（school=学校, board=教育委員会, prefecture=都道府県, nation=全国）"),
    ("code", "学校コード（13桁）／教育委員会コード（6桁）／都道府県コード（2桁）／JP"),
    ("name", "名称"),
    ("prefecture_code", "都道府県コード（JIS X 0401）"),
    ("board_code", "教育委員会コード（学校・教育委員会の行）"),
    ("month", "対象月（YYYY-MM）"),
    ("indicator", "指標コード（指標の定義を参照）"),
    ("numerator", "分子（件数・人数。10未満は秘匿して空欄）"),
    ("denominator", "分母（件数・人数・学校数。10未満は秘匿して空欄）"),
    ("value", "値（割合は%、件数は1校あたり、時間は時間。秘匿時は空欄）"),
    ("schools", "集計に含まれる学校数"),
    ("note", "注記（秘匿の理由など）"),
]
LICENCE = "クリエイティブ・コモンズ 表示 4.0 国際（CC BY 4.0）"
LICENCE_URL = "https://creativecommons.org/licenses/by/4.0/deed.ja"


# --- federation ---------------------------------------------------------------------------------------------------


def federation_members() -> list[Any]:
    from komu.progress.models import FederationMember

    return list(FederationMember.objects.annotate(snapshot_count=Count("snapshots")).order_by("name"))


# --- checklist and home page ---------------------------------------------------------------------------------------


def checklist_items_for_indicator(code: str) -> list[Any]:
    """The checklist items an indicator prefills (shown on its definition page)."""
    from komu.progress.models import ChecklistItem

    return list(ChecklistItem.objects.filter(indicator=code).order_by("edition", "order"))


def checklist_responses_for(*, actor: Actor, year: int) -> list[ChecklistResponse]:
    """The responses of the 年度 the viewer answers for or receives (a board: its schools' responses)."""
    from komu.access.scope import schools_for

    schools = schools_for(actor, roles.CHECKLIST_ANSWER)
    board_ids = [g.board_id for g in actor.grants_with(roles.CHECKLIST_ANSWER) if g.board_id is not None]
    return list(ChecklistResponse.objects.filter(Q(school__in=schools) | Q(board_id__in=board_ids), year=year)
                .select_related("school", "board").order_by("board_id", "school__code"))


def home_tasks(*, actor: Actor) -> list[Task]:
    """Home page to-dos: the 年度's 校務DX checklist still to be submitted (principals, vice-principals, board
    officers); for a board, its schools' submitted answers waiting for the board's own submission."""
    from komu.access.scope import schools_for
    from komu.progress.services import fiscal_year_now

    if not actor.has(roles.CHECKLIST_ANSWER):
        return []
    year = fiscal_year_now()
    tasks: list[Task] = []
    schools = list(schools_for(actor, roles.CHECKLIST_ANSWER).values_list("pk", flat=True))
    own_board_ids = [g.board_id for g in actor.grants_with(roles.CHECKLIST_ANSWER) if g.board_id is not None]
    submitted = set(ChecklistResponse.objects.filter(year=year, status=ChecklistResponse.Status.SUBMITTED)
                    .filter(Q(school_id__in=schools) | Q(board_id__in=own_board_ids))
                    .values_list("school_id", "board_id"))
    if own_board_ids:
        if not any(b in own_board_ids for _s, b in submitted):
            done = sum(1 for s, _b in submitted if s is not None)
            tasks.append(Task(_("%(year)d年度の校務DXチェックリスト: 学校の提出 %(done)d / %(total)d 校")
                              % {"year": year, "done": done, "total": len(schools)},
                              _("学校の回答を確認し、教育委員会の回答を提出してください。"),
                              reverse("progress:checklist")))
    elif schools and not any(s is not None for s, _b in submitted):
        tasks.append(Task(_("%(year)d年度の校務DXチェックリストが未提出です") % {"year": year},
                          _("計測した値から一部の項目を自動で入力しています。確認して提出してください。"),
                          reverse("progress:checklist")))
    return tasks
