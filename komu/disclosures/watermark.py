"""The watermark of a printed document: the printer's name, the time and the serial, diagonally across the page
in light grey and once more as a plain line at the foot (which a photocopy keeps and a text search finds).
Drawn by every PDF that carries personal data (komu.disclosures.pdf, komu.attendance.pdf, komu.rosters.pdf):
they call `draw_watermark` on each page before `showPage()`. Only reportlab here, so every PDF module can use it."""

from __future__ import annotations

from reportlab.lib.colors import Color
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen.canvas import Canvas

_GREY = Color(0.55, 0.55, 0.55, alpha=0.22)
_FOOT = Color(0.3, 0.3, 0.3)


def draw_watermark(c: Canvas, text: str, *, width: float, height: float, font: str) -> None:
    """Diagonal repeated watermark plus a foot line at the top margin. `font` is a registered font name able to
    show Japanese (komu.attendance.pdf.fonts().text[0].name)."""
    if not text:
        return
    c.saveState()
    size = 13.0
    c.setFont(font, size)
    c.setFillColor(_GREY)
    step = pdfmetrics.stringWidth(text, font, size) + 60
    c.translate(width / 2, height / 2)
    c.rotate(35)
    span = int((width + height) / step) + 2
    for row in range(-6, 7):
        y = row * 90.0
        for col in range(-span, span + 1):
            c.drawString(col * step + (row % 2) * step / 2, y, text)
    c.restoreState()
    c.saveState()
    c.setFont(font, 7.5)
    c.setFillColor(_FOOT)
    c.drawString(24, height - 16, text)
    c.restoreState()
