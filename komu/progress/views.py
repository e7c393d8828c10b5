"""Pages of the progress database: dashboards by unit (nation → prefecture → board → school) within the
viewer's reach, the map, the indicator definitions, the 校務DX checklist, the public open-data page with its
files and JSON API, and the hub's endpoint receiving federated snapshots."""

from __future__ import annotations

import csv
import datetime
import io
import json
from dataclasses import asdict
from typing import Any

from django.contrib import messages
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from komu.access import roles
from komu.access.scope import get_actor
from komu.core import codes
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.core.tabular import escape_formula
from komu.progress import charts, indicators, selectors, services
from komu.progress.models import ChecklistAnswer, ChecklistResponse
from komu.web.decorators import require_capability


def _month_label(m: datetime.date) -> str:
    return formats.date_format(m, "YEAR_MONTH_FORMAT")  # 2026年5月; May 2026 in English


def _parse_month(raw: str | None, default: datetime.date | None) -> datetime.date | None:
    if not raw:
        return default
    try:
        return datetime.datetime.strptime(raw, "%Y-%m").date()
    except ValueError:
        return default


def _indicator(raw: str | None) -> str:
    return raw if raw in indicators.INDICATORS else "comm_digital"


def _months_back(end: datetime.date, n: int) -> list[datetime.date]:
    months = [end]
    while len(months) < n:
        prev = (months[0] - datetime.timedelta(days=1)).replace(day=1)
        months.insert(0, prev)
    return months


@require_capability(roles.PROGRESS_VIEW)
def dashboard(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request.user)
    unit = selectors.home_unit(actor)
    if unit.level != selectors.NATION:
        query = request.GET.urlencode()
        return redirect(reverse("progress:unit", args=[unit.level, unit.key]) + (f"?{query}" if query else ""))
    return _unit_page(request, unit)


@require_capability(roles.PROGRESS_VIEW)
def unit(request: HttpRequest, level: str, key: str) -> HttpResponse:
    actor = get_actor(request.user)
    try:
        found = selectors.unit_get_for(actor=actor, level=level, key=key)
    except NotFoundOrNoAccess:
        raise Http404 from None
    return _unit_page(request, found)


# The level one below each unit's, whose units the ranking lists.
_CHILD_LEVEL = {selectors.NATION: selectors.PREFECTURE, selectors.PREFECTURE: selectors.BOARD,
                selectors.BOARD: selectors.SCHOOL}


def _unit_page(request: HttpRequest, unit: selectors.Unit) -> HttpResponse:
    actor = get_actor(request.user)
    latest = selectors.latest_month()
    month = _parse_month(request.GET.get("month"), latest)
    code = _indicator(request.GET.get("indicator"))
    ind = indicators.INDICATORS[code]
    context: dict[str, Any] = {"unit": unit, "month": month, "indicator": ind, "indicators": indicators.INDICATORS,
                               "months": selectors.available_months(), "levels": selectors.LEVEL_LABELS,
                               "perms_checklist": actor.has(roles.CHECKLIST_ANSWER),
                               "perms_measure": any(g.role in services.MEASURING_ROLES
                                                    for g in actor.grants_with(roles.PROGRESS_VIEW))}
    if month is None:
        return render(request, "progress/unit.html", context)
    comparison = selectors.comparison_units(unit)
    table = selectors.comparison_table(comparison, month)
    months = _months_back(month, 12)
    series = [charts.Series(u.name, selectors.trend(u, code, months)) for u in comparison]
    unit_label = ind.display_unit
    chart = charts.line_chart(
        title=_("%(name)s: %(indicator)sの推移") % {"name": unit.name, "indicator": ind.display_label},
        desc=_("%(indicator)sの月ごとの値（%(unit)s）。%(names)sを比べた折れ線グラフ。同じ値を下の表にも示します。")
        % {"indicator": ind.display_label, "unit": unit_label, "names": "、".join(u.name for u in comparison)},
        labels=[formats.date_format(m, "M") for m in months], series=series, unit=unit_label,
        y_max=100.0 if ind.kind == indicators.RATIO else None, chart_id="trend")
    fy = services.fiscal_year_now()
    years = [fy - 2, fy - 1, fy]
    year_rows = [(u, selectors.year_figures(u, code, years)) for u in comparison]
    ranking = selectors.children(actor=actor, unit=unit, month=month, indicator_code=code)
    ranking_chart = None
    if ranking:
        ranking_chart = charts.bar_chart(
            title=_("%(indicator)sの順位（%(month)s）") % {"indicator": ind.display_label, "month": _month_label(month)},
            desc=_("%(name)sの下の%(n)d件を、%(indicator)sのよい順に並べた棒グラフ。同じ値を下の表にも示します。")
            % {"name": unit.name, "n": len(ranking), "indicator": ind.display_label},
            bars=[(r.unit.name, r.figure.value, r.own, r.figure.display) for r in ranking[:50]], unit=ind.display_unit,
            x_max=100.0 if ind.kind == indicators.RATIO else None, chart_id="ranking")
    positions = selectors.school_positions(unit, month, code) if unit.level == selectors.SCHOOL else []
    crumbs = [{"label": u.name, "url": u.url} for u in reversed(comparison)]
    context.update({
        "comparison": comparison, "table": table, "chart": chart, "trend_months": months,
        "trend_rows": list(zip(comparison, [s.points for s in series], strict=True)),
        "years": years, "year_rows": year_rows, "ranking": ranking, "ranking_chart": ranking_chart,
        "positions": positions, "breadcrumbs": crumbs, "month_label": _month_label(month),
        "child_level": selectors.LEVEL_LABELS.get(_CHILD_LEVEL.get(unit.level, ""), ""),
    })
    return render(request, "progress/unit.html", context)


def _map_context(request: HttpRequest, *, link: bool) -> dict[str, Any]:
    latest = selectors.latest_month()
    month = _parse_month(request.GET.get("month"), latest)
    code = _indicator(request.GET.get("indicator"))
    ind = indicators.INDICATORS[code]
    names = dict(codes.PREFECTURES)
    context: dict[str, Any] = {"month": month, "indicator": ind, "indicators": indicators.INDICATORS,
                               "months": selectors.available_months()}
    if month is None:
        return context
    values = selectors.map_values(month, code)
    links = {c: reverse("progress:unit", args=["prefecture", c]) + f"?indicator={code}&month={month:%Y-%m}"
             for c in names} if link else None
    measured = sum(1 for v in values.values() if v is not None)
    context.update({
        "map": charts.tile_map(
            title=_("都道府県別 %(indicator)s（%(month)s）") % {"indicator": ind.display_label, "month": _month_label(month)},
            desc=_("47都道府県を同じ大きさのマスで並べた地図（タイルグリッド）。色が濃いほど値が小さく、明るいほど大きい。"
                   "値のある都道府県は%(n)d。各マスに値を書き、同じ値を下の表にも示します。") % {"n": measured},
            names=names, values=values, unit=ind.display_unit,
            fixed_max=100.0 if ind.kind == indicators.RATIO else None, links=links),
        "map_rows": [(c, names[c], values.get(c)) for c, _n in codes.PREFECTURES],
        "month_label": _month_label(month),
    })
    return context


@require_capability(roles.PROGRESS_VIEW)
def map_view(request: HttpRequest) -> HttpResponse:
    context = _map_context(request, link=True)
    context["breadcrumbs"] = [{"label": _("校務DXの進捗"), "url": reverse("progress:dashboard")},
                              {"label": _("都道府県の地図"), "url": ""}]
    return render(request, "progress/map.html", context)


@require_capability(roles.PROGRESS_VIEW)
@require_POST
def measure_now(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request.user)
    try:
        n = services.indicators_measure_own(actor=actor)
    except PermissionDeniedError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("今月と先月の値を計測し直しました（%(n)d件）。") % {"n": n})
    target = request.POST.get("next", "")
    if not target.startswith("/progress/") or "//" in target:
        target = reverse("progress:dashboard")
    return redirect(target)


# --- definitions (public: they are the open data's dictionary) ----------------------------------------------------


def indicator_list(request: HttpRequest) -> HttpResponse:
    return render(request, "progress/indicators.html", {"indicators": indicators.INDICATORS.values()})


def indicator_detail(request: HttpRequest, code: str) -> HttpResponse:
    ind = indicators.get(code)
    if ind is None:
        raise Http404
    items = selectors.checklist_items_for_indicator(code)
    return render(request, "progress/indicator.html", {"ind": ind, "items": items})


# --- the 校務DX checklist ----------------------------------------------------------------------------------------


@require_capability(roles.CHECKLIST_ANSWER)
def checklist(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request.user)
    try:
        year = int(request.GET.get("year", "")) if request.GET.get("year") else services.fiscal_year_now()
    except ValueError:
        year = services.fiscal_year_now()
    if request.method == "POST":
        try:
            school_id = int(request.POST["school_id"]) if request.POST.get("school_id") else None
            board_id = int(request.POST["board_id"]) if request.POST.get("board_id") else None
            response = services.checklist_response_open(actor=actor, year=year, school_id=school_id,
                                                        board_id=board_id)
        except (ValueError, NotFoundOrNoAccess):
            raise Http404 from None
        except (ValidationFailed, PermissionDeniedError) as exc:
            messages.error(request, str(exc))
            return redirect(f"{reverse('progress:checklist')}?year={year}")
        return redirect("progress:checklist_edit", response.pk)
    from komu.access.scope import schools_for

    responses = selectors.checklist_responses_for(actor=actor, year=year)
    answered_schools = {r.school_id for r in responses}
    answered_boards = {r.board_id for r in responses}
    own_boards = [g for g in actor.grants_with(roles.CHECKLIST_ANSWER) if g.board_id is not None]
    schools = list(schools_for(actor, roles.CHECKLIST_ANSWER).order_by("code"))
    context = {
        "year": year, "responses": responses,
        "missing_schools": [s for s in schools if s.pk not in answered_schools],
        "missing_boards": [g for g in own_boards if g.board_id not in answered_boards],
        "is_board": bool(own_boards),
        "breadcrumbs": [{"label": _("校務DXの進捗"), "url": reverse("progress:dashboard")},
                        {"label": _("校務DXチェックリスト"), "url": ""}],
    }
    return render(request, "progress/checklist.html", context)


def _response_or_404(request: HttpRequest, response_id: int) -> ChecklistResponse:
    actor = get_actor(request.user)
    try:
        return services.checklist_response_get_for(actor=actor, response_id=response_id)
    except (NotFoundOrNoAccess, PermissionDeniedError):
        raise Http404 from None


@require_capability(roles.CHECKLIST_ANSWER)
def checklist_edit(request: HttpRequest, response_id: int) -> HttpResponse:
    actor = get_actor(request.user)
    response = _response_or_404(request, response_id)
    errors: dict[str, list[str]] = {}
    error_message = ""
    posted: dict[str, Any] = {}
    if request.method == "POST":
        levels: dict[int, int] = {}
        for key in request.POST:
            raw = request.POST.get(key, "")
            if key.startswith("item_"):
                try:
                    levels[int(key[5:])] = int(raw)
                except ValueError:
                    errors.setdefault(key, []).append(_("4つの段階から選んでください。"))
        posted = {"uses_fax": request.POST.get("uses_fax") == "1",
                  "fax_counterparties": request.POST.getlist("fax_counterparties"),
                  "requires_seal": request.POST.get("requires_seal") == "1",
                  "seal_documents": request.POST.getlist("seal_documents")}
        if not errors:
            try:
                services.checklist_response_save(actor=actor, response_id=response.pk, levels=levels, **posted)
            except ValidationFailed as exc:
                errors, error_message = exc.errors, str(exc)
            else:
                if request.POST.get("submit") == "1":
                    try:
                        services.checklist_response_submit(actor=actor, response_id=response.pk)
                    except ValidationFailed as exc:
                        messages.error(request, str(exc))
                    else:
                        messages.success(request, _("提出しました。この年度の回答は変更できなくなりました。"))
                else:
                    messages.success(request, _("保存しました。"))
                return redirect("progress:checklist_edit", response.pk)
        error_message = error_message or _("入力内容を確認してください。")
        response.refresh_from_db()
    answers = list(response.answers.select_related("item").order_by("item__order"))
    groups: dict[str, list[ChecklistAnswer]] = {}
    for a in answers:
        groups.setdefault(a.item.display_group, []).append(a)
    locked = services.response_locked(response)
    context = {
        "response": response, "groups": groups, "locked": locked, "errors": errors,
        "error_message": error_message, "levels": ChecklistAnswer.Level.choices,
        "fax_choices": services.FAX_COUNTERPARTIES, "seal_choices": services.SEAL_DOCUMENTS,
        "uses_fax": posted.get("uses_fax", response.uses_fax),
        "fax_selected": posted.get("fax_counterparties", response.fax_counterparties),
        "requires_seal": posted.get("requires_seal", response.requires_seal),
        "seal_selected": posted.get("seal_documents", response.seal_documents),
        "org_name": response.school.name if response.school else (response.board.name if response.board else ""),
        "can_return": (response.school_id is not None and response.status == ChecklistResponse.Status.SUBMITTED
                       and any(g.board_id is not None for g in actor.grants_with(roles.CHECKLIST_ANSWER))),
        "posted_levels": {int(k[5:]): v for k, v in request.POST.items() if k.startswith("item_")
                          and k[5:].isdigit()} if request.method == "POST" else {},
        "breadcrumbs": [{"label": _("校務DXの進捗"), "url": reverse("progress:dashboard")},
                        {"label": _("校務DXチェックリスト"), "url": reverse("progress:checklist")},
                        {"label": _("%(year)d年度の回答") % {"year": response.year}, "url": ""}],
    }
    return render(request, "progress/checklist_edit.html", context, status=400 if errors else 200)


@require_capability(roles.CHECKLIST_ANSWER)
@require_POST
def checklist_return(request: HttpRequest, response_id: int) -> HttpResponse:
    actor = get_actor(request.user)
    try:
        services.checklist_response_return(actor=actor, response_id=response_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    except (ValidationFailed, PermissionDeniedError) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("学校へ差し戻しました。学校は回答を直して再度提出できます。"))
    return redirect("progress:checklist")


# --- open data (no sign-in) --------------------------------------------------------------------------------------

OPEN_LEVELS = (selectors.SCHOOL, selectors.BOARD, selectors.PREFECTURE, selectors.NATION)


def open_data(request: HttpRequest) -> HttpResponse:
    context = _map_context(request, link=False)
    context.update({"columns": selectors.OPEN_COLUMNS, "licence": selectors.LICENCE,
                    "licence_url": selectors.LICENCE_URL, "levels": OPEN_LEVELS,
                    "level_labels": selectors.LEVEL_LABELS,
                    "nation": selectors.figures(selectors.Unit("nation", "JP", "全国"), context["month"])
                    if context.get("month") else None})
    return render(request, "progress/open.html", context)


OPEN_FILE_SECONDS = 24 * 3600


def _open_file_bytes(level: str, parsed: datetime.date, fmt: str, dictionary_url: str) -> bytes:
    rows = selectors.open_rows(level=level, month=parsed)
    if fmt == "json":
        return json.dumps({"licence": selectors.LICENCE, "licence_url": selectors.LICENCE_URL,
                           "dictionary": dictionary_url, "rows": [asdict(r) for r in rows]},
                          ensure_ascii=False).encode("utf-8")
    buffer = io.StringIO()
    # UTF-8 with BOM: Excel on Japanese Windows opens it without garbling (domain.md §7.1); formulas escaped.
    buffer.write("\ufeff")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([c for c, _d in selectors.OPEN_COLUMNS])
    for r in rows:
        writer.writerow([escape_formula(str(x)) if isinstance(x, str) else ("" if x is None else x)
                         for x in (r.level, r.code, r.name, r.prefecture_code, r.board_code, r.month,
                                   r.indicator, r.numerator, r.denominator, r.value, r.schools, r.note)])
    return buffer.getvalue().encode("utf-8")


@require_GET
def open_file(request: HttpRequest, level: str, month: str, fmt: str) -> HttpResponse:
    """A published file. Generated once per refresh of the month's rollups and then served from the cache: the
    key holds the data's version, so a refresh is never hidden by an old copy."""
    parsed = _parse_month(month, None)
    if level not in OPEN_LEVELS or parsed is None or fmt not in ("csv", "json"):
        raise Http404
    key = f"progress:open:{level}:{parsed:%Y-%m}:{fmt}:{selectors.open_data_version(parsed)}"
    body = cache.get(key)
    if body is None:
        body = _open_file_bytes(level, parsed, fmt, request.build_absolute_uri(reverse("progress:open_dictionary")))
        cache.set(key, body, OPEN_FILE_SECONDS)
    content_type = "application/json" if fmt == "json" else "text/csv; charset=utf-8"
    response = HttpResponse(body, content_type=content_type)
    if fmt == "csv":
        response["Content-Disposition"] = f'attachment; filename="komu-progress-{level}-{parsed:%Y-%m}.csv"'
    return response


def open_dictionary(request: HttpRequest) -> HttpResponse:
    return JsonResponse({
        "licence": selectors.LICENCE, "licence_url": selectors.LICENCE_URL,
        "suppression": _("件数・人数が10未満の値は空欄（秘匿）。学校単位の児童生徒に関する指標は、分子か残りが10未満なら件数を"
                         "秘匿し、割合を10%単位に丸めて示す。"),
        "columns": [{"name": c, "description": d} for c, d in selectors.OPEN_COLUMNS],
        "indicators": [{"code": i.code, "label": i.label, "kind": i.kind, "unit": i.unit,
                        "higher_is_better": i.higher_is_better, "definition": i.counts, "source": i.source}
                       for i in indicators.INDICATORS.values()],
    }, json_dumps_params={"ensure_ascii": False})


@require_GET
def api_values(request: HttpRequest) -> HttpResponse:
    """GET /progress/api/v1/values?level=prefecture&month=2026-10[&indicator=comm_digital] — the open data."""
    level = request.GET.get("level", "prefecture")
    month = _parse_month(request.GET.get("month"), selectors.latest_month())
    if level not in OPEN_LEVELS or month is None:
        return JsonResponse({"detail": _("level は school / board / prefecture / nation、month は YYYY-MM で指定して"
                                         "ください。")}, status=400)
    rows = selectors.open_rows(level=level, month=month)
    wanted = request.GET.get("indicator")
    if wanted:
        if wanted not in indicators.INDICATORS:
            return JsonResponse({"detail": _("指標コードが正しくありません。")}, status=400)
        rows = [r for r in rows if r.indicator == wanted]
    return JsonResponse({"licence": selectors.LICENCE, "month": f"{month:%Y-%m}", "level": level,
                         "count": len(rows), "rows": [asdict(r) for r in rows]},
                        json_dumps_params={"ensure_ascii": False})


@require_capability(roles.PROGRESS_FEDERATION)
def federation_members(request: HttpRequest) -> HttpResponse:
    """The operator's page: deployments allowed to push here, what they sent last, and registering a new one."""
    actor = get_actor(request.user)
    errors: dict[str, list[str]] = {}
    form = {"code": "", "name": "", "public_keyset": ""}
    if request.method == "POST":
        form = {k: request.POST.get(k, "") for k in form}
        try:
            member = services.federation_member_register(actor=actor, **form)
        except ValidationFailed as exc:
            errors = exc.errors or {"public_keyset": [str(exc)]}
        else:
            messages.success(request, _("%(name)sを登録しました。") % {"name": member.name})
            return redirect("progress:federation_members")
    context = {"members": selectors.federation_members(), "form": form, "errors": errors,
               "own_key": services.own_public_keyset(),
               "endpoint": request.build_absolute_uri(reverse("progress:federation_receive")),
               "breadcrumbs": [{"label": _("校務DXの進捗"), "url": reverse("progress:open")},
                               {"label": _("連携するKomu"), "url": ""}]}
    return render(request, "progress/federation.html", context, status=400 if errors else 200)


# --- federation (hub side) -----------------------------------------------------------------------------------------


@csrf_exempt
@require_POST
def federation_receive(request: HttpRequest) -> HttpResponse:
    """A member deployment's signed snapshot. No session: the Ed25519 signature of a registered key is the
    authentication; replays and unknown keys are refused."""
    try:
        result = services.snapshot_receive(body=request.body)
    except services.SnapshotRejected as exc:
        return JsonResponse({"detail": exc.message}, status=exc.status, json_dumps_params={"ensure_ascii": False})
    return JsonResponse(result)


