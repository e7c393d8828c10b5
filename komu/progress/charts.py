"""Charts drawn on the server as SVG: readable without JavaScript, each with a <title>, a <desc> text
alternative and labelled axes; the pages also print the same figures as a table.

Pure functions (no ORM): they take the numbers and return markup. Every text is escaped here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from django.utils.safestring import SafeString, mark_safe

# Viridis, 5 classes: sequential, readable with the common colour-vision deficiencies and in greyscale.
SCALE = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"]
TEXT_ON = ["#ffffff", "#ffffff", "#ffffff", "#000000", "#000000"]
NO_DATA = "#e6e6e6"
# Line colours (Okabe–Ito), told apart also by the dash pattern.
SERIES = [("#0072B2", ""), ("#D55E00", "6 3"), ("#009E73", "2 3"), ("#CC79A7", "8 3 2 3")]


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    text = f"{value:.1f}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{text}{unit}"


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000, 2000, 5000, 10000):
        if v <= step:
            return float(step)
    return float(v)


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[float | None]


def line_chart(*, title: str, desc: str, labels: Sequence[str], series: Sequence[Series], unit: str,
               y_max: float | None = None, chart_id: str = "chart") -> SafeString:
    width, height, left, right, top, bottom = 640, 280, 56, 16, 36, 56
    plot_w, plot_h = width - left - right, height - top - bottom
    values: list[float] = [v for s in series for v in s.points if v is not None]
    top_value: float = y_max if y_max is not None else _nice_max(max(values) if values else 0)
    n = max(len(labels), 1)

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h - plot_h * min(v, top_value) / top_value

    out = [f'<svg class="progress-chart" role="img" viewBox="0 0 {width} {height}" '
           f'aria-labelledby="{chart_id}-t {chart_id}-d" xmlns="http://www.w3.org/2000/svg">',
           f'<title id="{chart_id}-t">{escape(title)}</title><desc id="{chart_id}-d">{escape(desc)}</desc>',
           f'<text x="{left}" y="20" font-size="14" font-weight="bold">{escape(title)}</text>']
    for k in range(5):
        v = top_value * k / 4
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ccc"/>'
                   f'<text x="{left - 6}" y="{y(v) + 4:.1f}" font-size="11" text-anchor="end">'
                   f'{escape(fmt(v))}</text>')
    out.append(f'<text x="12" y="{top + plot_h / 2:.0f}" font-size="11" transform="rotate(-90 12 '
               f'{top + plot_h / 2:.0f})" text-anchor="middle">{escape(unit)}</text>')
    out.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}" stroke="#333"/>'
               f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#333"/>')
    step = max(1, n // 8)
    for i, label in enumerate(labels):
        if i % step == 0 or i == n - 1:
            out.append(f'<text x="{x(i):.1f}" y="{top + plot_h + 16}" font-size="11" text-anchor="middle">'
                       f'{escape(label)}</text>')
    for idx, s in enumerate(series):
        colour, dash = SERIES[idx % len(SERIES)]
        segments: list[list[str]] = [[]]
        for i, pv in enumerate(s.points):
            if pv is None:
                segments.append([])
            else:
                segments[-1].append(f"{x(i):.1f},{y(pv):.1f}")
        for seg in segments:
            if len(seg) > 1:
                out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2.5" '
                           f'stroke-dasharray="{dash}" points="{" ".join(seg)}"/>')
            for pt in seg:
                px, py = pt.split(",")
                out.append(f'<circle cx="{px}" cy="{py}" r="3" fill="{colour}"/>')
        lx = left + 150 * idx
        out.append(f'<line x1="{lx}" x2="{lx + 24}" y1="{height - 12}" y2="{height - 12}" stroke="{colour}" '
                   f'stroke-width="2.5" stroke-dasharray="{dash}"/><text x="{lx + 28}" y="{height - 8}" '
                   f'font-size="11">{escape(s.name)}</text>')
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 (every text above is escaped)


def bar_chart(*, title: str, desc: str, bars: Sequence[tuple[str, float | None, bool, str]], unit: str,
              x_max: float | None = None, chart_id: str = "bars") -> SafeString:
    """Horizontal bars (label, value, highlighted, text shown without a value) — used for rankings; the highlighted
    bar is the viewer's own."""
    row_h, left, right, top = 22, 190, 70, 32
    width = 640
    height = top + row_h * max(len(bars), 1) + 12
    values = [b[1] for b in bars if b[1] is not None]
    top_value = x_max if x_max is not None else _nice_max(max(values) if values else 0)
    plot_w = width - left - right
    out = [f'<svg class="progress-chart" role="img" viewBox="0 0 {width} {height}" '
           f'aria-labelledby="{chart_id}-t {chart_id}-d" xmlns="http://www.w3.org/2000/svg">',
           f'<title id="{chart_id}-t">{escape(title)}</title><desc id="{chart_id}-d">{escape(desc)}</desc>',
           f'<text x="0" y="18" font-size="14" font-weight="bold">{escape(title)}</text>']
    for i, (label, value, own, missing) in enumerate(bars):
        yy = top + i * row_h
        short = label if len(label) <= 14 else label[:13] + "…"
        weight = ' font-weight="bold"' if own else ""
        out.append(f'<text x="{left - 6}" y="{yy + 15}" font-size="12" text-anchor="end"{weight}>'
                   f'{escape(short)}</text>')
        if value is None:
            out.append(f'<text x="{left + 4}" y="{yy + 15}" font-size="12" fill="#555">{escape(missing)}</text>')
            continue
        w = plot_w * min(value, top_value) / top_value
        colour = "#D55E00" if own else "#0072B2"
        out.append(f'<rect x="{left}" y="{yy + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{colour}"/>'
                   f'<text x="{left + w + 4:.1f}" y="{yy + 15}" font-size="12"{weight}>'
                   f'{escape(fmt(value, unit))}</text>')
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 (every text above is escaped)


# A tile-grid cartogram: one square per prefecture, placed roughly where it lies (JIS code → column, row).
TILES: dict[str, tuple[int, int]] = {
    "01": (12, 0), "02": (11, 1), "05": (10, 2), "03": (11, 2), "06": (10, 3), "04": (11, 3),
    "17": (7, 4), "16": (8, 4), "15": (9, 4), "07": (10, 4),
    "32": (2, 5), "31": (3, 5), "28": (4, 5), "26": (5, 5), "18": (6, 5), "21": (7, 5), "20": (8, 5),
    "10": (9, 5), "09": (10, 5),
    "35": (1, 6), "34": (2, 6), "33": (3, 6), "27": (4, 6), "25": (5, 6), "24": (6, 6), "23": (7, 6),
    "19": (8, 6), "11": (9, 6), "08": (10, 6),
    "41": (0, 7), "40": (1, 7), "38": (3, 7), "37": (4, 7), "29": (5, 7), "22": (7, 7), "14": (8, 7),
    "13": (9, 7), "12": (10, 7),
    "42": (0, 8), "43": (1, 8), "44": (2, 8), "39": (3, 8), "36": (4, 8), "30": (5, 8),
    "46": (1, 9), "45": (2, 9),
    "47": (0, 11),
}


def classes(values: Sequence[float], *, fixed_max: float | None = None) -> list[float]:
    """Upper bounds of the 5 equal-width classes (0–100 for percentages, otherwise 0–max)."""
    top = fixed_max if fixed_max is not None else _nice_max(max(values) if values else 0)
    return [top * (k + 1) / 5 for k in range(5)]


def class_of(value: float, bounds: Sequence[float]) -> int:
    for k, bound in enumerate(bounds):
        if value <= bound:
            return k
    return len(bounds) - 1


def _short_name(name: str) -> str:
    """県/府/都 dropped as on weather maps (東京, 京都, 大阪, 青森); 北海道 stays whole."""
    if name == "北海道":
        return name
    return name[:-1] if name[-1] in "都府県" else name


def tile_map(*, title: str, desc: str, names: dict[str, str], values: dict[str, float | None], unit: str,
             fixed_max: float | None = None, links: dict[str, str] | None = None,
             chart_id: str = "map") -> SafeString:
    size, gap, top = 52, 4, 34
    cols, rows = 13, 12
    width, height = cols * (size + gap), top + rows * (size + gap) + 10
    bounds = classes([v for v in values.values() if v is not None], fixed_max=fixed_max)
    # With links inside, the map is a group of links (an image's children would be hidden from screen readers).
    role = "group" if links else "img"
    out = [f'<svg class="progress-map" role="{role}" viewBox="0 0 {width} {height}" '
           f'aria-labelledby="{chart_id}-t {chart_id}-d" xmlns="http://www.w3.org/2000/svg">',
           f'<title id="{chart_id}-t">{escape(title)}</title><desc id="{chart_id}-d">{escape(desc)}</desc>',
           f'<text x="0" y="20" font-size="15" font-weight="bold">{escape(title)}</text>']
    for code, (col, row) in TILES.items():
        x, y = col * (size + gap), top + row * (size + gap)
        value = values.get(code)
        if value is None:
            fill, ink = NO_DATA, "#333333"
        else:
            k = class_of(value, bounds)
            fill, ink = SCALE[k], TEXT_ON[k]
        name = names.get(code, code)
        short = _short_name(name)
        label = f"{name}: {fmt(value, unit)}" if value is not None else f"{name}: 未計測"
        tile = (f'<g><title>{escape(label)}</title><rect x="{x}" y="{y}" width="{size}" height="{size}" rx="4" '
                f'fill="{fill}" stroke="#fff"/>'
                f'<text x="{x + size / 2}" y="{y + 20}" font-size="12" text-anchor="middle" fill="{ink}">'
                f'{escape(short)}</text>'
                f'<text x="{x + size / 2}" y="{y + 38}" font-size="11" text-anchor="middle" fill="{ink}">'
                f'{escape(fmt(value) if value is not None else "未計測")}</text></g>')
        if links and code in links:
            tile = f'<a href="{escape(links[code])}">{tile}</a>'
        out.append(tile)
    # Legend in the empty sea at the bottom right.
    lx, ly = 6 * (size + gap), top + 9 * (size + gap) + 4
    out.append(f'<text x="{lx}" y="{ly}" font-size="12" font-weight="bold">凡例（{escape(unit)}）</text>')
    lower = 0.0
    for k, bound in enumerate(bounds):
        yy = ly + 8 + k * 20
        out.append(f'<rect x="{lx}" y="{yy}" width="18" height="16" fill="{SCALE[k]}"/>'
                   f'<text x="{lx + 24}" y="{yy + 13}" font-size="12">{escape(fmt(lower))}〜{escape(fmt(bound))}'
                   f'</text>')
        lower = bound
    yy = ly + 8 + 5 * 20
    out.append(f'<rect x="{lx}" y="{yy}" width="18" height="16" fill="{NO_DATA}" stroke="#999"/>'
               f'<text x="{lx + 24}" y="{yy + 13}" font-size="12">未計測</text>')
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 (every text above is escaped)
