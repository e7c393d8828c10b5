"""The printed 出席簿 (one class, one month; A4 landscape) and the annual 出欠の記録 (指導要録, one page per pupil;
A4 portrait), drawn with reportlab from what the selectors return (komu.attendance.selectors.monthly). The
selectors authorise and audit the printing; this module only draws.

Fonts. Pupils' names hold characters outside JIS X 0208 (𠮷 U+20BB7, 﨑 U+FA11, 髙), which reportlab's built-in
CID fonts (HeiseiMin-W3, HeiseiKakuGo-W5) cannot show. We use TrueType fonts when installed — IPAmj明朝 (the
文字情報基盤 font: ~58,000 characters including 𠮷; Debian package fonts-ipamj-mincho) for names and
IPAexゴシック/IPAex明朝 (fonts-ipaexfont-gothic, fonts-ipaexfont-mincho) for the rest — falling back character by
character, and to the CID fonts when none is installed. A character no font has is drawn as 〓 (the geta mark
Japanese printing uses for a missing glyph) and reported: in the document itself and in `PdfResult.missing`,
never dropped silently. Variation selectors (葛 + U+E0100) cannot be honoured by reportlab: the base character is
printed and the sequence reported as approximated. reportlab cannot use CFF-based OpenType (Noto CJK .otf).
"""

from __future__ import annotations

import datetime
import io
import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from reportlab.lib.colors import Color, black
from reportlab.lib.pagesizes import A4, landscape
from reportlab.pdfbase import pdfmetrics, ttfonts
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from komu.approvals import seals
from komu.approvals.models import ApprovalAction
from komu.approvals.seals import SealCheck
from komu.attendance.arithmetic import Totals
from komu.attendance.selectors.monthly import AnnualRecord, Correction, MonthPage, PupilRow
from komu.core import wareki
from komu.directory.models import Role
from komu.disclosures.watermark import draw_watermark

# --- Fonts -------------------------------------------------------------------------------------------------------

# Where Debian puts the fonts (see the module docstring); KOMU_PDF_FONT_FILES (a list of .ttf paths, in order of
# preference for names) is tried first where a deployment keeps them elsewhere.
_NAME_FONTS = (
    ("IPAmjMincho", "/usr/share/fonts/truetype/ipamj/ipamjm.ttf"),
    ("IPAexMincho", "/usr/share/fonts/opentype/ipaexfont-mincho/ipaexm.ttf"),
    ("IPAexGothic", "/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf"),
)
_TEXT_FONTS = (
    ("IPAexGothic", "/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf"),
    ("IPAexMincho", "/usr/share/fonts/opentype/ipaexfont-mincho/ipaexm.ttf"),
    ("IPAmjMincho", "/usr/share/fonts/truetype/ipamj/ipamjm.ttf"),
)
_CID_GOTHIC = "HeiseiKakuGo-W5"
_CID_MINCHO = "HeiseiMin-W3"
GETA = "〓"
_VARIATION = re.compile(r"[\ufe00-\ufe0f\U000e0100-\U000e01ef]")
_CLUSTER = re.compile(r".[\ufe00-\ufe0f\U000e0100-\U000e01ef]*", re.DOTALL)


_reportlab_to_unicode = ttfonts.makeToUnicodeCMap


def _to_unicode_cmap(fontname: str, subset: Sequence[int]) -> str:
    """reportlab writes each character's ToUnicode entry as <%04X>, which for a character beyond the BMP (𠮷
    U+20BB7) gives five hex digits that readers misparse: the name prints right but copies and searches as
    "₻乃". A PDF ToUnicode value is UTF-16BE, so such a character is written as its surrogate pair."""
    cmap = _reportlab_to_unicode(fontname, subset)
    for code in subset:
        if code > 0xFFFF:
            cmap = cmap.replace(f" <{code:04X}>\n", f" <{chr(code).encode('utf-16-be').hex().upper()}>\n")
    return str(cmap)


ttfonts.makeToUnicodeCMap = _to_unicode_cmap


@dataclass(frozen=True)
class _Font:
    name: str
    chars: frozenset[int] | None  # None: a CID font, covering JIS X 0208 (checked by encoding)

    def has(self, char: str) -> bool:
        if self.chars is not None:
            return ord(char) in self.chars
        if char.isascii():
            return char.isprintable()
        try:
            char.encode("iso2022_jp")
        except UnicodeEncodeError:
            return False
        return True


@dataclass(frozen=True)
class FontChains:
    names: tuple[_Font, ...]
    text: tuple[_Font, ...]

    @property
    def files(self) -> list[str]:
        return [f.name for f in self.names if f.chars is not None]


_fonts_lock = threading.Lock()
_chains: FontChains | None = None
_registered: dict[str, _Font] = {}


def _ttf(name: str, path: str) -> _Font | None:
    if name in _registered:
        return _registered[name]
    if not Path(path).is_file():
        return None
    font = TTFont(name, path)
    pdfmetrics.registerFont(font)
    entry = _Font(name, frozenset(font.face.charToGlyph))
    _registered[name] = entry
    return entry


def _cid(name: str) -> _Font:
    if name not in _registered:
        pdfmetrics.registerFont(UnicodeCIDFont(name))
        _registered[name] = _Font(name, None)
    return _registered[name]


def fonts() -> FontChains:
    """The font chains, loaded once per process (IPAmj明朝 is 46 MB; parsing it takes a third of a second)."""
    global _chains
    if _chains is not None:
        return _chains
    with _fonts_lock:
        if _chains is None:
            extra = [(f"KomuFont{i}", str(p)) for i, p in enumerate(getattr(settings, "KOMU_PDF_FONT_FILES", []))]
            names = [f for f in (_ttf(n, p) for n, p in [*extra, *_NAME_FONTS]) if f is not None]
            text = [f for f in (_ttf(n, p) for n, p in [*_TEXT_FONTS, *extra]) if f is not None]
            _chains = FontChains(
                names=(*names, _cid(_CID_MINCHO)), text=(*text, _cid(_CID_GOTHIC)),
            )
    return _chains


@dataclass
class GlyphReport:
    """Characters that could not be printed as stored: missing from every font (printed 〓) or approximated
    (a variation sequence printed as its base character)."""

    missing: set[str] = field(default_factory=set)
    approximated: set[str] = field(default_factory=set)

    def describe(self) -> str:
        parts = []
        if self.missing:
            chars = "、".join(f"{c}（U+{ord(c):04X}）" for c in sorted(self.missing))
            parts.append(f"次の文字は印字できるフォントがないため「{GETA}」で表しています: {chars}")
        if self.approximated:
            seqs = "、".join(
                f"{s[0]}＋U+{ord(s[-1]):04X}" for s in sorted(self.approximated)
            )
            parts.append(f"次の異体字は字形を指定どおりに印字できず、基本の字形で表しています: {seqs}")
        return "。".join(parts) + ("。" if parts else "")


def runs(text: str, chain: Sequence[_Font], report: GlyphReport | None = None) -> list[tuple[str, str]]:
    """Split text into (font, text) runs, each character in the first font of the chain that has it."""
    result: list[tuple[str, str]] = []
    for cluster in _CLUSTER.findall(text):
        base = cluster[0]
        if len(cluster) > 1 and report is not None:
            report.approximated.add(cluster)
        if unicodedata.category(base) in ("Cc", "Cf"):
            continue
        font = next((f for f in chain if f.has(base)), None)
        char = base
        if font is None:
            if report is not None:
                report.missing.add(base)
            font, char = chain[0], GETA
            if not font.has(GETA):
                font = next(f for f in chain if f.has(GETA))
        if result and result[-1][0] == font.name:
            result[-1] = (font.name, result[-1][1] + char)
        else:
            result.append((font.name, char))
    return result


def unprintable(texts: Iterable[str]) -> GlyphReport:
    """What printing these texts (names) would not show exactly — for a warning before printing."""
    report = GlyphReport()
    chain = fonts().names
    for text in texts:
        runs(text, chain, report)
    return report


# --- Drawing helpers ---------------------------------------------------------------------------------------------

GRAY = Color(0.86, 0.86, 0.86)
LIGHT = Color(0.94, 0.94, 0.94)
CLOSURE = Color(0.85, 0.9, 0.97)
SEAL_RED = Color(0.78, 0.08, 0.1)
MUTED = Color(0.35, 0.35, 0.35)


class _Pen:
    def __init__(self, canvas: Canvas, report: GlyphReport) -> None:
        self.c = canvas
        self.report = report
        self.chains = fonts()

    def width(self, text: str, size: float, *, name: bool = False) -> float:
        chain = self.chains.names if name else self.chains.text
        return float(sum(pdfmetrics.stringWidth(t, f, size) for f, t in runs(text, chain)))

    def text(self, x: float, y: float, text: str, size: float, *, name: bool = False, align: str = "left",
             max_width: float | None = None, color: Color = black) -> None:
        chain = self.chains.names if name else self.chains.text
        parts = runs(text, chain, self.report)
        width = sum(pdfmetrics.stringWidth(t, f, size) for f, t in parts)
        if max_width is not None and width > max_width > 0:
            size = size * max_width / width
            width = max_width
        if align == "center":
            x -= width / 2
        elif align == "right":
            x -= width
        self.c.setFillColor(color)
        for font, chunk in parts:
            self.c.setFont(font, size)
            self.c.drawString(x, y, chunk)
            x += pdfmetrics.stringWidth(chunk, font, size)
        self.c.setFillColor(black)

    def wrap(self, text: str, size: float, width: float) -> list[str]:
        lines, line = [], ""
        for char in _CLUSTER.findall(text):
            if line and self.width(line + char, size) > width:
                lines.append(line)
                line = char.lstrip()
            else:
                line += char
        if line:
            lines.append(line)
        return lines

    def box(self, x: float, y: float, w: float, h: float, fill: Color | None = None) -> None:
        if fill is not None:
            self.c.setFillColor(fill)
            self.c.rect(x, y, w, h, stroke=1, fill=1)
            self.c.setFillColor(black)
        else:
            self.c.rect(x, y, w, h, stroke=1, fill=0)


def _wareki_time(value: datetime.datetime) -> str:
    local = timezone.localtime(value)
    return f"{wareki.to_wareki(local.date())} {local:%H:%M}"


def _role_label(role: str) -> str:
    return str(dict(Role.choices).get(role, role))


def draw_inkan(pen: _Pen, cx: float, cy: float, radius: float, name: str) -> None:
    """The 印影: a red ring with the family name set vertically (same layout as the screen's SVG)."""
    c = pen.c
    c.setStrokeColor(SEAL_RED)
    c.setLineWidth(radius * 0.08)
    c.circle(cx, cy, radius, stroke=1, fill=0)
    columns = seals.seal_columns(name)
    if columns:
        inner = radius * 1.24
        longest = max(len(col) for col in columns)
        size = min(inner / longest, inner / len(columns), radius * 0.8)
        right = cx + size * (len(columns) - 1) / 2
        for ci, column in enumerate(columns):
            x = right - ci * size
            top = cy + size * len(column) / 2
            for ri, char in enumerate(column):
                baseline = top - size * (ri + 1) + size * 0.14
                pen.text(x, baseline, char, size * 0.92, name=True, align="center", color=SEAL_RED)
    c.setStrokeColor(black)
    c.setLineWidth(0.5)


@dataclass(frozen=True)
class PdfResult:
    content: bytes
    glyphs: GlyphReport
    pages: int


def _footer(pen: _Pen, page_width: float, page: int, pages: int, note: str) -> None:
    pen.text(page_width / 2, 12, f"{page} / {pages}", 8, align="center")
    if note:
        pen.text(24, 12, note, 6.5, color=MUTED, max_width=page_width / 2 - 60)


# --- The monthly 出席簿 -------------------------------------------------------------------------------------------

_TOTAL_COLUMNS = (
    ("授業", "日数"), ("出停・", "忌引等"), ("出席すべ", "き日数"), ("病気", ""), ("事故", ""), ("その他", ""),
    ("欠席", "計"), ("出席", "日数"), ("遅刻", ""), ("早退", ""),
)
_ROWS_PER_PAGE = 28
_ROW_H = 13.0
_SEAL_BLOCK_H = 96.0


def _totals_values(t: Totals) -> list[int]:
    return [t.lesson_days, t.excused_days, t.required_days, t.absent_by_reason["illness"],
            t.absent_by_reason["accident"], t.absent_by_reason["other"], t.absent_days, t.present_days, t.late,
            t.early_leave]


def _seal_block(pen: _Pen, page: MonthPage, x0: float, y0: float, width: float,
                checks: dict[int, SealCheck]) -> None:
    """The bottom of every page: the submission and each step's seal record with its 印影."""
    c = pen.c
    request = page.current_request
    pen.text(x0, y0 + _SEAL_BLOCK_H - 10, "決裁（電子印）", 8.5)
    box_y, box_h = y0 + 4, _SEAL_BLOCK_H - 20
    x = x0
    if request is None:
        if page.earlier_requests:
            pen.text(x0, y0 + 40, "訂正後の出席簿はまだ決裁されていません（訂正前の版の電子印は決裁の履歴に残っています）。", 9)
        else:
            pen.text(x0, y0 + 40, "この月の出席簿はまだ提出されていません（未決裁）。", 9)
        return
    submit = next((a for a in page.history.actions[request.pk] if a.kind == ApprovalAction.Kind.SUBMIT), None)  # type: ignore[union-attr]
    # The submission: a record, not a seal (it signs nothing).
    pen.box(x, box_y, 130, box_h)
    pen.text(x + 6, box_y + box_h - 12, "提出（学級担任）", 7.5, color=MUTED)
    if submit is not None and submit.actor is not None:
        pen.text(x + 6, box_y + box_h - 28, submit.actor.display_name or submit.actor.get_username(), 9, name=True,
                 max_width=118)
        pen.text(x + 6, box_y + box_h - 42, _wareki_time(submit.at), 7)
    pen.text(x + 6, box_y + 18, f"第{request.revision}版", 7)
    pen.text(x + 6, box_y + 6, f"内容 {request.content_hash[:16]}…", 6.5, color=MUTED)
    x += 136
    box_w = min(190.0, (width - 136) / max(len(page.current_steps), 1) - 6)
    for step in page.current_steps:
        pen.box(x, box_y, box_w, box_h)
        pen.text(x + 6, box_y + box_h - 12, f"{step.index + 1}. {step.role_label}", 7.5, color=MUTED)
        seal = step.seal
        if seal is None:
            c.setDash(2, 2)
            c.circle(x + 30, box_y + box_h / 2 - 6, 20, stroke=1, fill=0)
            c.setDash()
            pen.text(x + 58, box_y + box_h / 2 - 8, "未決裁", 9, color=MUTED)
        else:
            payload = seal.seal_payload or {}
            approver = payload.get("approver") or {}
            behalf = payload.get("on_behalf_of") or {}
            display = str(approver.get("display_name") or approver.get("username") or "")
            draw_inkan(pen, x + 30, box_y + box_h / 2 - 6, 21, seals.seal_name(display, str(approver.get("username") or "")))
            tx = x + 58
            pen.text(tx, box_y + box_h - 28, display, 8.5, name=True, max_width=box_w - 62)
            line = box_y + box_h - 40
            if behalf:
                pen.text(tx, line, f"（{behalf.get('display_name') or behalf.get('username')} の代決）", 6.5,
                         name=True, max_width=box_w - 62)
                line -= 10
            pen.text(tx, line, _wareki_time(seal.at), 7)
            pen.text(tx, line - 10, f"ハッシュ {seal.content_hash[:12]}…", 6.5, color=MUTED)
            verdict = checks.get(seal.pk)
            if verdict is not None:
                pen.text(tx, line - 20, "電子署名: 有効" if verdict.valid else "電子署名: 無効", 7,
                         color=black if verdict.valid else SEAL_RED)
        x += box_w + 6


def monthly_register_pdf(page: MonthPage, *, printed_by: str, printed_at: datetime.datetime | None = None,
                         watermark: str = "", serial: str = "") -> PdfResult:
    """A class's month as the paper 出席簿 looks: numbers and names × days (weekday row, closed days shaded),
    the symbols 病 事 他 停 忌 チ 早 公, the totals of the law, corrections struck through (二重線) with their
    record, the seals with their 印影, page numbers. With a disclosure (komu.disclosures), every page carries
    the watermark (printer, time, serial) and the serial in its footer."""
    printed_at = printed_at or timezone.now()
    buf = io.BytesIO()
    width, height = landscape(A4)
    c = Canvas(buf, pagesize=(width, height), pageCompression=1)
    c.setTitle(page.title)
    c.setAuthor("校務 Komu")
    c.setSubject(f"{page.school.name} {page.title}")
    c.setCreator("校務 Komu")
    report = GlyphReport()
    pen = _Pen(c, report)
    c.setLineWidth(0.5)
    margin = 24.0
    no_w, name_w, tot_w = 18.0, 86.0, 23.0
    day_w = (width - 2 * margin - no_w - name_w - tot_w * len(_TOTAL_COLUMNS))
    day_w = min(day_w / max(len(page.days), 1), 18.0)
    grid_w = no_w + name_w + day_w * len(page.days) + tot_w * len(_TOTAL_COLUMNS)
    x0 = margin
    checks = {ch.action_id: ch for ch in page.checks}

    rows = list(page.rows)
    chunks = [rows[i:i + _ROWS_PER_PAGE] for i in range(0, len(rows), _ROWS_PER_PAGE)] or [[]]
    corrections = page.corrections
    correction_rows_per_page = 24
    correction_pages = 0
    last_grid_room = _ROWS_PER_PAGE - len(chunks[-1]) - 1
    if corrections and len(corrections) + 2 > last_grid_room:
        correction_pages = (len(corrections) + correction_rows_per_page - 1) // correction_rows_per_page
    pages = len(chunks) + correction_pages
    start, end = page.days[0].date, page.days[-1].date
    status_text = {
        "open": "未提出", "submitted": "決裁中", "approved": "承認済み", "amended": "訂正あり・再決裁待ち",
        "locked": "年度末確定",
    }.get(page.status, page.status_label)

    def header(page_no: int) -> float:
        pen.text(width / 2, height - 40, page.title, 16, align="center")
        pen.text(margin, height - 58, page.school.name, 10)
        pen.text(width - margin, height - 40, f"状態: {status_text}", 9, align="right")
        pen.text(width - margin, height - 58,
                 f"{wareki.to_wareki(start)}〜{wareki.to_wareki(end)}　授業日数 {page.lesson_days}日", 9,
                 align="right")
        return float(height - 70)

    def grid_header(top: float) -> float:
        h1, h2 = 12.0, 11.0
        y = top - h1 - h2
        pen.box(x0, y, no_w, h1 + h2, LIGHT)
        pen.text(x0 + no_w / 2, y + 8, "番号", 6, align="center")
        pen.box(x0 + no_w, y, name_w, h1 + h2, LIGHT)
        pen.text(x0 + no_w + name_w / 2, y + 8, "氏　名", 8, align="center")
        x = x0 + no_w + name_w
        for col in page.days:
            fill = CLOSURE if col.is_closure else (LIGHT if col.is_school_day else GRAY)
            pen.box(x, y + h2, day_w, h1, fill)
            pen.text(x + day_w / 2, y + h2 + 3, str(col.date.day), 7, align="center")
            pen.box(x, y, day_w, h2, fill)
            color = SEAL_RED if (col.date.weekday() == 6 or col.holiday) else black
            pen.text(x + day_w / 2, y + 2.5, col.weekday, 6.5, align="center", color=color)
            x += day_w
        # 欠席日数 spans 病気・事故・その他・計.
        for i, (a, b) in enumerate(_TOTAL_COLUMNS):
            cx = x + tot_w * i
            if 3 <= i <= 6:
                pen.box(cx, y, tot_w, h2, LIGHT)
                pen.text(cx + tot_w / 2, y + 3, a + b, 5.5, align="center", max_width=tot_w - 2)
            else:
                pen.box(cx, y, tot_w, h1 + h2, LIGHT)
                pen.text(cx + tot_w / 2, y + h2 + 2, a, 5.5, align="center", max_width=tot_w - 2)
                pen.text(cx + tot_w / 2, y + 4, b, 5.5, align="center", max_width=tot_w - 2)
        pen.box(x + tot_w * 3, y + h2, tot_w * 4, h1, LIGHT)
        pen.text(x + tot_w * 5, y + h2 + 3, "欠席日数", 6, align="center")
        return y

    def pupil_row(y: float, row: PupilRow) -> None:
        pen.box(x0, y, no_w, _ROW_H)
        pen.text(x0 + no_w / 2, y + 3.5, str(row.shusseki_no), 7, align="center")
        pen.box(x0 + no_w, y, name_w, _ROW_H)
        pen.text(x0 + no_w + 3, y + 3.5, row.name, 8, name=True, max_width=name_w - 6)
        x = x0 + no_w + name_w
        for cell in row.cells:
            fill = CLOSURE if cell.is_closure else (None if cell.is_school_day else GRAY)
            pen.box(x, y, day_w, _ROW_H, fill)
            if cell.corrections:
                first = cell.corrections[0]
                pen.text(x + 1, y + 6.5, first.old_symbol, 4.5, name=True)
                old_w = pen.width(first.old_symbol, 4.5, name=True)
                # 二重線: the paper register's correction, over the old value.
                c.setStrokeColor(SEAL_RED)
                c.line(x + 0.5, y + 8.3, x + 1.5 + old_w, y + 8.3)
                c.line(x + 0.5, y + 9.3, x + 1.5 + old_w, y + 9.3)
                c.setStrokeColor(black)
                pen.text(x + day_w - 1, y + 2.5, cell.symbol, 6.5, name=True, align="right")
                pen.text(x + day_w - 1, y + _ROW_H - 4.5, f"{first.number}", 3.8, align="right", color=SEAL_RED)
            elif cell.symbol:
                pen.text(x + day_w / 2, y + 3.5, cell.symbol, 7.5, name=True, align="center")
            x += day_w
        for i, value in enumerate(_totals_values(row.totals)):
            pen.box(x + tot_w * i, y, tot_w, _ROW_H)
            pen.text(x + tot_w * (i + 1) - 3, y + 3.5, str(value), 7.5, align="right")

    def totals_row(y: float) -> None:
        pen.box(x0, y, no_w + name_w, _ROW_H, LIGHT)
        pen.text(x0 + (no_w + name_w) / 2, y + 3.5, "学級計", 8, align="center")
        x = x0 + no_w + name_w
        pen.box(x, y, day_w * len(page.days), _ROW_H, LIGHT)
        x += day_w * len(page.days)
        for i, value in enumerate(_totals_values(page.class_totals)):
            pen.box(x + tot_w * i, y, tot_w, _ROW_H, LIGHT)
            pen.text(x + tot_w * (i + 1) - 3, y + 3.5, str(value), 7.5, align="right")

    def corrections_table(top: float, items: Sequence[Correction]) -> float:
        pen.text(x0, top - 12, "訂正の記録（承認後の訂正は二重線で示し、訂正者・日時・理由を記録しています）", 8.5)
        y = top - 18
        cols = (("番号", 24), ("日付", 70), ("出席番号・氏名", 120), ("訂正前", 70), ("訂正後", 70),
                ("訂正者", 110), ("訂正日時", 110), ("理由", grid_w - 574))
        x = x0
        y -= 12
        for label, w in cols:
            pen.box(x, y, w, 12, LIGHT)
            pen.text(x + 3, y + 3, label, 7)
            x += w
        for item in items:
            y -= 12
            values = [str(item.number), wareki.to_wareki(item.date), f"{item.shusseki_no} {item.pupil}",
                      f"{item.old_symbol} {item.old_label}", f"{item.new_symbol} {item.new_label}", item.by,
                      _wareki_time(item.at), item.reason]
            x = x0
            for (label, w), value in zip(cols, values, strict=True):
                pen.box(x, y, w, 12)
                pen.text(x + 3, y + 3, value, 6.5, name=label in ("出席番号・氏名", "訂正者"), max_width=w - 6)
                if label == "訂正前":
                    c.setStrokeColor(SEAL_RED)
                    sw = min(pen.width(value, 6.5), w - 6)
                    c.line(x + 2, y + 5.5, x + 4 + sw, y + 5.5)
                    c.line(x + 2, y + 6.7, x + 4 + sw, y + 6.7)
                    c.setStrokeColor(black)
                x += w
        return y

    page_no = 0
    bottom = 20 + _SEAL_BLOCK_H

    def finish_page() -> None:
        _seal_block(pen, page, x0, 22, grid_w, checks)
        note = f"{_wareki_time(printed_at)} {printed_by} が校務 Komu の電子出席簿（原本）から印刷した写し　内容 SHA-256 {page.content_hash}"
        if serial:
            note = f"通し番号 {serial}　{note}"
        _footer(pen, width, page_no, pages, note)
        draw_watermark(c, watermark, width=width, height=height, font=pen.chains.text[0].name)
        c.showPage()

    for index, chunk in enumerate(chunks):
        page_no += 1
        c.setLineWidth(0.5)
        top = header(page_no)
        y = grid_header(top)
        for row in chunk:
            y -= _ROW_H
            pupil_row(y, row)
        if index == len(chunks) - 1:
            y -= _ROW_H
            totals_row(y)
            pen.text(x0, y - 10, "記号: 病=欠席（病気） 事=欠席（事故） 他=欠席（その他） 停=出席停止 忌=忌引 チ=遅刻 "
                                 "早=早退 公=公欠 閉=学級閉鎖　網掛け=授業日でない日", 6.5, color=MUTED)
            if corrections and not correction_pages:
                corrections_table(y - 14, corrections)
            if report.missing or report.approximated:
                pen.text(x0, bottom + 4, report.describe(), 6.5, color=SEAL_RED, max_width=grid_w)
        finish_page()
    for i in range(correction_pages):
        page_no += 1
        c.setLineWidth(0.5)
        top = header(page_no)
        corrections_table(top, corrections[i * correction_rows_per_page:(i + 1) * correction_rows_per_page])
        if i == correction_pages - 1 and (report.missing or report.approximated):
            pen.text(x0, bottom + 4, report.describe(), 6.5, color=SEAL_RED, max_width=grid_w)
        finish_page()
    c.save()
    return PdfResult(buf.getvalue(), report, pages)


# --- The annual 出欠の記録 -------------------------------------------------------------------------------------

_ANNUAL_COLUMNS = (("月", 44.0), ("授業日数", 52.0), ("出席停止・\n忌引等の日数", 62.0), ("出席しなければ\nならない日数", 68.0),
                   ("欠席日数", 52.0), ("出席日数", 52.0), ("備考", 0.0))


def annual_record_pdf(record: AnnualRecord, *, printed_by: str, printed_at: datetime.datetime | None = None,
                      watermark: str = "", serial: str = "") -> PdfResult:
    """指導要録「出欠の記録」: per pupil, each month and the year — 授業日数, 出席停止・忌引等の日数,
    出席しなければならない日数, 欠席日数, 出席日数, 備考. One page per pupil."""
    printed_at = printed_at or timezone.now()
    buf = io.BytesIO()
    width, height = A4
    c = Canvas(buf, pagesize=A4, pageCompression=1)
    fiscal = f"{wareki.fiscal_year_title(record.fiscal_year, wareki=True)}（{record.fiscal_year}年度）"
    c.setTitle(f"出欠の記録 {fiscal} {record.klass}")
    c.setAuthor("校務 Komu")
    c.setSubject(f"{record.school.name} 指導要録 出欠の記録")
    c.setCreator("校務 Komu")
    report = GlyphReport()
    pen = _Pen(c, report)
    c.setLineWidth(0.5)
    margin = 40.0
    table_w = width - 2 * margin
    fixed = sum(w for _l, w in _ANNUAL_COLUMNS)
    columns = [(label, w or table_w - fixed) for label, w in _ANNUAL_COLUMNS]
    pages = max(len(record.pupils), 1)
    if not record.pupils:
        pen.text(width / 2, height / 2, "この学級に在籍する児童生徒はいません。", 11, align="center")
        _footer(pen, width, 1, 1, "")
        c.showPage()
    for page_no, pupil in enumerate(record.pupils, start=1):
        c.setLineWidth(0.5)
        pen.text(width / 2, height - 60, "出欠の記録", 18, align="center")
        pen.text(width / 2, height - 80, f"{fiscal}　指導要録（出欠の記録）", 10, align="center")
        pen.text(margin, height - 110, f"学校名　{record.school.name}", 10)
        pen.text(margin, height - 128, f"学級　{record.klass}　　出席番号　{pupil.shusseki_no}", 10)
        pen.text(margin, height - 146, "氏名", 10)
        pen.text(margin + 30, height - 147, pupil.name, 13, name=True, max_width=table_w - 30)
        y = height - 170
        head_h, row_h = 28.0, 22.0
        y -= head_h
        x = margin
        for label, w in columns:
            pen.box(x, y, w, head_h, LIGHT)
            lines = label.split("\n")
            for i, line in enumerate(lines):
                pen.text(x + w / 2, y + head_h / 2 + (len(lines) - 1) * 5 - i * 10 - 3, line, 8, align="center")
            x += w
        entries = [(f"{m.month}月", m.totals, m.note) for m in pupil.months] + [("年間", pupil.total, "")]
        for label, totals, note in entries:
            y -= row_h
            values = [label, str(totals.lesson_days), str(totals.excused_days), str(totals.required_days),
                      str(totals.absent_days), str(totals.present_days), note]
            x = margin
            fill = LIGHT if label == "年間" else None
            for (col, w), value in zip(columns, values, strict=True):
                pen.box(x, y, w, row_h, fill)
                if col == "備考":
                    pen.text(x + 4, y + 7, value, 7.5, max_width=w - 8)
                elif col == "月":
                    pen.text(x + w / 2, y + 7, value, 9, align="center")
                else:
                    pen.text(x + w - 6, y + 7, value, 9.5, align="right")
                x += w
        y -= 26
        pen.text(margin, y, "備考（年間）", 9)
        for line in pen.wrap(pupil.note or "特記事項なし", 9, table_w)[:6]:
            y -= 14
            pen.text(margin + 8, y, line, 9)
        pen.text(margin, 60, "出席しなければならない日数 ＝ 授業日数 － 出席停止・忌引等の日数、出席日数 ＝ 出席しなければならない日数 － 欠席日数",
                 7, color=MUTED, max_width=table_w)
        if report.missing or report.approximated:
            pen.text(margin, 46, report.describe(), 7, color=SEAL_RED, max_width=table_w)
        _footer(pen, width, page_no, pages,
                (f"通し番号 {serial}　" if serial else "") + f"{_wareki_time(printed_at)} {printed_by} が校務 Komu の記録から印刷")
        draw_watermark(c, watermark, width=width, height=height, font=pen.chains.text[0].name)
        c.showPage()
    c.save()
    return PdfResult(buf.getvalue(), report, pages)
