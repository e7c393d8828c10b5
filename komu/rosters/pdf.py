"""The three PDFs of a transfer package (転学): the copy of the 指導要録 学籍に関する記録 (施行規則 §24(3)), the
在学証明書 and the 教科用図書給与証明書 — A4 portrait, Japanese, 和暦 dates, issued in the principal's name.

Drawn from the package record (the dict `komu.rosters.services.transfers` builds and stores) with the fonts and
glyph fallback of `komu.attendance.pdf` (names keep 髙 﨑 𠮷; a character no font has is printed 〓 and said so
on the page). The electronic certification is not inside the PDF: the service signs the SHA-256 of these bytes
with the seal key, so the document cannot change without the signature failing. This module only draws.
"""

from __future__ import annotations

import datetime
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.pdfgen.canvas import Canvas

from komu.approvals import seals
from komu.attendance.pdf import LIGHT, MUTED, SEAL_RED, GlyphReport, PdfResult, _Pen, draw_inkan
from komu.core import wareki
from komu.core.codes import GRADES

_SEX = {"male": "男", "female": "女", "unspecified": ""}
_KIND = {"admission": "入学", "readmission": "編入学", "transfer_in": "転入学", "transfer_out": "転学",
         "withdrawal": "退学", "graduation": "卒業"}
_PLACEMENT = {"none": "", "special_needs_class": "特別支援学級", "resource_room": "通級による指導"}


@dataclass(frozen=True)
class Certifier:
    """Who issues the documents: the school, its principal, and the person who certified (the principal, or the
    vice-principal as 校長職務代理者)."""

    school_name: str
    school_address: str
    principal_name: str
    signer_name: str
    signer_is_principal: bool
    issued_on: datetime.date


def _date(value: str | None) -> str:
    if not value:
        return ""
    return wareki.to_wareki(datetime.date.fromisoformat(value))


def _grade(code: str) -> str:
    return GRADES.get(code, code)


def _grade_number(code: str) -> str:
    """The number in 「第N学年」 (P3 → ３), as certificates write it."""
    digits = "".join(ch for ch in code if ch.isdigit())
    return digits.translate(str.maketrans("0123456789", "０１２３４５６７８９"))


class _Page:
    """One A4 portrait page with a title, label/value rows and the certification block at the bottom."""

    def __init__(self, title: str) -> None:
        self.buf = io.BytesIO()
        self.width, self.height = A4
        self.c = Canvas(self.buf, pagesize=A4, pageCompression=1)
        self.c.setTitle(title)
        self.c.setAuthor("校務 Komu")
        self.c.setCreator("校務 Komu")
        self.report = GlyphReport()
        self.pen = _Pen(self.c, self.report)
        self.c.setLineWidth(0.5)
        self.margin = 48.0
        self.y = self.height - 70
        self.pen.text(self.width / 2, self.y, title, 18, align="center")
        self.y -= 36

    @property
    def inner(self) -> float:
        return float(self.width) - 2 * self.margin

    def row(self, label: str, value: str, *, name: bool = False, size: float = 10.5, height: float = 24.0) -> None:
        label_w = 120.0
        lines = self.pen.wrap(value, size, self.inner - label_w - 12) or [""]
        h = max(height, 14.0 * len(lines) + 10)
        self.y -= h
        self.pen.box(self.margin, self.y, label_w, h, LIGHT)
        self.pen.box(self.margin + label_w, self.y, self.inner - label_w, h)
        self.pen.text(self.margin + 6, self.y + h / 2 - 4, label, 9.5)
        for i, line in enumerate(lines):
            self.pen.text(self.margin + label_w + 6, self.y + h - 16 - 14 * i, line, size, name=name,
                          max_width=self.inner - label_w - 12)

    def heading(self, text: str) -> None:
        self.y -= 22
        self.pen.text(self.margin, self.y + 6, text, 11)

    def table(self, headers: Sequence[tuple[str, float]], rows: Sequence[Sequence[str]], *,
              empty: str = "記録なし") -> None:
        scale = self.inner / sum(w for _h, w in headers)
        cols = [(h, w * scale) for h, w in headers]
        self.y -= 18
        x = self.margin
        for label, w in cols:
            self.pen.box(x, self.y, w, 18, LIGHT)
            self.pen.text(x + 4, self.y + 5, label, 8.5)
            x += w
        if not rows:
            self.y -= 18
            self.pen.box(self.margin, self.y, self.inner, 18)
            self.pen.text(self.margin + 4, self.y + 5, empty, 8.5, color=MUTED)
        for values in rows:
            self.y -= 18
            x = self.margin
            for (_label, w), value in zip(cols, values, strict=True):
                self.pen.box(x, self.y, w, 18)
                self.pen.text(x + 4, self.y + 5, value, 8.5, name=True, max_width=w - 8)
                x += w

    def paragraph(self, text: str, size: float = 10.5) -> None:
        for line in self.pen.wrap(text, size, self.inner):
            self.y -= size + 6
            self.pen.text(self.margin, self.y, line, size)

    def certify(self, certifier: Certifier, statement: str) -> PdfResult:
        pen = self.pen
        y = min(self.y - 30, 230.0)
        pen.text(self.margin, y, statement, 10.5)
        y -= 28
        pen.text(self.margin + 20, y, wareki.to_wareki(certifier.issued_on), 10.5)
        y -= 30
        pen.text(self.width - self.margin - 260, y, certifier.school_name, 11, max_width=220)
        if certifier.school_address:
            y -= 16
            pen.text(self.width - self.margin - 260, y, certifier.school_address, 8.5, color=MUTED, max_width=220)
        y -= 26
        pen.text(self.width - self.margin - 260, y, "校長", 11)
        pen.text(self.width - self.margin - 220, y, certifier.principal_name or "（校長未登録）", 12, name=True,
                 max_width=150)
        draw_inkan(pen, self.width - self.margin - 30, y + 4, 20,
                   seals.seal_name(certifier.principal_name or certifier.signer_name))
        if not certifier.signer_is_principal:
            y -= 18
            pen.text(self.width - self.margin - 260, y, f"校長職務代理者　副校長　{certifier.signer_name}", 9,
                     name=True, max_width=220)
        pen.text(self.margin, 58, "この文書は校務 Komu で作成され、校長の電子署名（Ed25519、文書の SHA-256 に対する署名）"
                                  "により証明されています。", 7.5, color=MUTED, max_width=self.inner)
        pen.text(self.margin, 47, "受け取った学校は Komu の転学画面で署名を検証できます（印影は電子署名の表示です）。", 7.5,
                 color=MUTED, max_width=self.inner)
        if self.report.missing or self.report.approximated:
            pen.text(self.margin, 34, self.report.describe(), 7, color=SEAL_RED, max_width=self.inner)
        self.c.showPage()
        self.c.save()
        return PdfResult(self.buf.getvalue(), self.report, 1)


def _pupil(record: Mapping[str, Any]) -> Mapping[str, Any]:
    return record["student"]  # type: ignore[no-any-return]


def _name(p: Mapping[str, Any]) -> str:
    return f"{p['family_name']} {p['given_name']}"


def _kana(p: Mapping[str, Any]) -> str:
    return f"{p.get('family_name_kana', '')} {p.get('given_name_kana', '')}".strip()


def shido_yoroku_pdf(record: Mapping[str, Any], certifier: Certifier) -> PdfResult:
    """指導要録 学籍に関する記録 の写し: the pupil, the guardians, the enrolment history and the school."""
    pupil = _pupil(record)
    page = _Page("指導要録（学籍に関する記録）の写し")
    page.row("児童生徒氏名", _name(pupil), name=True, size=13)
    page.row("ふりがな", _kana(pupil))
    page.row("性別", _SEX.get(str(pupil.get("sex", "")), ""))
    page.row("生年月日", _date(pupil.get("birth_date")))
    page.row("現住所", str(pupil.get("address", "")), name=True)
    placement = _PLACEMENT.get(str(pupil.get("special_needs_placement", "none")), "")
    if placement:
        page.row("特別支援教育", placement)
    guardians = record.get("guardians", [])
    for g in guardians[:2]:
        page.row(f"保護者（{g.get('relationship', '')}）", f"{g['family_name']} {g['given_name']}　"
                 f"{g.get('family_name_kana', '')} {g.get('given_name_kana', '')}".rstrip(), name=True)
        if g.get("address"):
            page.row("保護者の現住所", str(g["address"]), name=True)
    page.heading("学籍の記録（入学・編入学・転入学・転学・退学・卒業）")
    page.table(
        [("異動", 60.0), ("年月日", 110.0), ("学年", 70.0), ("学校名", 160.0), ("事由", 140.0)],
        [[_KIND.get(str(e["kind"]), str(e["kind"])), _date(e["date"]), _grade(str(e["grade_code"])),
          str(e.get("other_school_name", "")), str(e.get("reason", ""))] for e in record.get("history", [])],
    )
    school = record["from_school"]
    page.heading("学校名及び所在地")
    page.paragraph(f"{school['name']}　{school.get('address', '')}".strip())
    return page.certify(certifier, "上記は指導要録（学籍に関する記録）の原本と相違ないことを証明する。")


def enrollment_certificate_pdf(record: Mapping[str, Any], certifier: Certifier) -> PdfResult:
    """在学証明書: the pupil was enrolled in this school, in this grade, until the day of the transfer."""
    pupil = _pupil(record)
    page = _Page("在学証明書")
    page.row("氏名", _name(pupil), name=True, size=13)
    page.row("ふりがな", _kana(pupil))
    page.row("生年月日", _date(pupil.get("birth_date")))
    page.row("学年", f"第{_grade_number(str(record['grade_code']))}学年")
    page.row("在学期間", f"{_date(record.get('enrolled_since'))}　から　{_date(record['departure_date'])}　まで")
    page.y -= 20
    page.paragraph(
        f"上記の者は、{_date(record['departure_date'])}まで本校第{_grade_number(str(record['grade_code']))}学年に"
        "在学していたことを証明する。"
    )
    return page.certify(certifier, "以上")


def textbook_certificate_pdf(record: Mapping[str, Any], certifier: Certifier) -> PdfResult:
    """教科用図書給与証明書: the textbooks given free to the pupil for this year (義務教育諸学校の教科用図書の
    無償措置), so the new school does not give them twice."""
    pupil = _pupil(record)
    fiscal_year = int(record["attendance"]["fiscal_year"])
    page = _Page("教科用図書給与証明書")
    page.row("氏名", _name(pupil), name=True, size=13)
    page.row("生年月日", _date(pupil.get("birth_date")))
    page.row("学年", f"第{_grade_number(str(record['grade_code']))}学年")
    page.row("転学年月日", _date(record["departure_date"]))
    page.heading(f"{wareki.fiscal_year_title(fiscal_year, wareki=True)}に給与した教科用図書")
    books = [str(line) for line in record.get("textbooks", [])]
    page.table(
        [("番号", 40.0), ("教科用図書（教科・発行者・書名）", 460.0)],
        [[str(i), line] for i, line in enumerate(books, start=1)],
        empty=f"第{_grade_number(str(record['grade_code']))}学年用の全教科の教科用図書",
    )
    page.y -= 20
    page.paragraph(
        f"上記の者に対し、{wareki.fiscal_year_title(fiscal_year, wareki=True)}用の上記の教科用図書を"
        "給与したことを証明する。"
    )
    return page.certify(certifier, "以上")
