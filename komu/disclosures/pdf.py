"""Printed class documents (A4 portrait), each page watermarked with the printer, time and serial:

- 学級名簿: 出席番号, 氏名, ふりがな, 性別;
- 緊急連絡先一覧（連絡網）: 出席番号, 氏名, the guardians (氏名・続柄・電話番号) and the emergency contacts in order —
  the document lost in the seed incidents (domain.md §6), so it is never printed without a reason and a serial.

Draws only what komu.disclosures.services hands it (already authorised and recorded)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from reportlab.lib.pagesizes import A4
from reportlab.pdfgen.canvas import Canvas

from komu.attendance.pdf import LIGHT, MUTED, GlyphReport, PdfResult, fonts
from komu.attendance.pdf import _Pen as Pen
from komu.disclosures.watermark import draw_watermark


@dataclass(frozen=True)
class ContactLine:
    label: str  # 続柄 or 「緊急1」
    name: str
    phone: str


@dataclass(frozen=True)
class PupilEntry:
    shusseki_no: int
    name: str
    kana: str
    sex: str
    contacts: Sequence[ContactLine] = ()


def class_document_pdf(*, title: str, subtitle: str, pupils: Sequence[PupilEntry], with_contacts: bool,
                       watermark: str, serial: str) -> PdfResult:
    buf = io.BytesIO()
    width, height = A4
    c = Canvas(buf, pagesize=A4, pageCompression=1)
    c.setTitle(f"{title} {serial}")
    c.setAuthor("校務 Komu")
    c.setCreator("校務 Komu")
    report = GlyphReport()
    pen = Pen(c, report)
    font = fonts().text[0].name
    margin = 36.0
    table_w = width - 2 * margin
    cols = [("番号", 34.0), ("氏名", 130.0), ("ふりがな", 120.0), ("性別", 34.0)]
    if with_contacts:
        cols = [("番号", 30.0), ("氏名", 110.0), ("続柄・連絡先", 0.0), ("電話番号", 110.0)]
    fixed = sum(w for _l, w in cols)
    cols = [(label, w or table_w - fixed) for label, w in cols]
    line_h = 13.0
    pages: list[list[PupilEntry]] = [[]]
    used = 0.0
    room = height - 150
    for pupil in pupils:
        h = line_h * max(1, len(pupil.contacts) if with_contacts else 1) + 4
        if used + h > room and pages[-1]:
            pages.append([])
            used = 0.0
        pages[-1].append(pupil)
        used += h
    total = len(pages)

    for page_no, chunk in enumerate(pages, start=1):
        c.setLineWidth(0.5)
        pen.text(margin, height - 44, title, 15)
        pen.text(margin, height - 62, subtitle, 9, color=MUTED, max_width=table_w)
        y = height - 92
        x = margin
        for label, w in cols:
            pen.box(x, y, w, 16, LIGHT)
            pen.text(x + 4, y + 5, label, 8.5)
            x += w
        if not chunk:
            pen.text(margin, y - 20, "この学級に在籍する児童生徒はいません。", 10)
        for pupil in chunk:
            lines = list(pupil.contacts) if with_contacts else []
            h = line_h * max(1, len(lines)) + 4
            y -= h
            x = margin
            for _label, w in cols:
                pen.box(x, y, w, h)
                x += w
            top = y + h - line_h + 1
            pen.text(margin + cols[0][1] - 4, top, str(pupil.shusseki_no), 9, align="right")
            pen.text(margin + cols[0][1] + 4, top, pupil.name, 10, name=True, max_width=cols[1][1] - 8)
            if with_contacts:
                x2 = margin + cols[0][1] + cols[1][1]
                if not lines:
                    pen.text(x2 + 4, top, "登録なし", 8.5, color=MUTED)
                for i, line in enumerate(lines):
                    ly = top - i * line_h
                    pen.text(x2 + 4, ly, f"{line.label}　{line.name}", 8.5, name=True, max_width=cols[2][1] - 8)
                    pen.text(x2 + cols[2][1] + 4, ly, line.phone, 9, max_width=cols[3][1] - 8)
            else:
                pen.text(margin + cols[0][1] + cols[1][1] + 4, top, pupil.kana, 8.5, max_width=cols[2][1] - 8)
                pen.text(margin + table_w - cols[3][1] + 4, top, pupil.sex, 9)
        if report.missing or report.approximated:
            pen.text(margin, 40, report.describe(), 7, max_width=table_w)
        pen.text(width / 2, 14, f"{page_no} / {total}　通し番号 {serial}", 8, align="center")
        pen.text(margin, 26, "この文書は回収・廃棄を記録します。使用後は担当者に返却してください。紛失したときはすぐ管理職に報告してください。",
                 7, color=MUTED, max_width=table_w)
        draw_watermark(c, watermark, width=width, height=height, font=font)
        c.showPage()
    c.save()
    return PdfResult(buf.getvalue(), report, total)
