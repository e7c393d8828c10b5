"""The printed 出席簿 and 出欠の記録: generated, in Japanese with 和暦, names exactly as stored, seals included."""

from __future__ import annotations

import datetime
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from komu.attendance import pdf
from komu.attendance.models import MarkKind
from komu.attendance.selectors import monthly as selectors
from komu.attendance.tests.test_monthly import act, approve_all_june, day, june, mark
from komu.students.models import ClassMembership, Student
from komu.testing.world import World

PDFTOTEXT = shutil.which("pdftotext")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def after_the_year(world: World, monkeypatch: pytest.MonkeyPatch) -> datetime.date:
    from komu.attendance.services import monthly

    end = world.class_a1.school_year.end_date
    monkeypatch.setattr(monthly, "today", lambda: end)
    return end


def text_of(content: bytes, tmp_path: Path) -> str:
    """The PDF's text as a reader extracts it (poppler's pdftotext)."""
    if PDFTOTEXT is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    path = tmp_path / "doc.pdf"
    path.write_bytes(content)
    return subprocess.run([PDFTOTEXT, "-layout", str(path), "-"], check=True, capture_output=True,
                          text=True).stdout


def test_the_monthly_register_pdf_carries_the_title_names_symbols_totals_and_seals(
    world: World, after_the_year: datetime.date, tmp_path: Path,
) -> None:
    principal = world.user("principal_a")
    principal.display_name = "勅使河原 一郎"
    principal.save()
    mark(world, "a1_first", day(world, 1), MarkKind.ABSENT, "illness")
    mark(world, "a1_second", day(world, 2), MarkKind.MOURNING, kinship_degree=1)
    approve_all_june(world)
    year, month = june(world)
    page = selectors.monthly_register_print_for(actor=act(world, "principal_a"), class_id=world.class_a1.pk,
                                                year=year, month=month)
    result = pdf.monthly_register_pdf(page, printed_by="勅使河原 一郎")
    assert result.content.startswith(b"%PDF-") and len(result.content) > 10_000
    assert result.pages == 1
    text = text_of(result.content, tmp_path)
    assert f"令和{year - 2018}年度 出席簿 小学1年 1組 6月" in text
    assert "みどり市立第一小学校" in text
    assert f"令和{year - 2018}年6月1日" in text
    # Names exactly as stored, including 𠮷 (beyond the BMP) and 﨑, and the symbols of the paper register.
    assert "髙橋 𠮷乃" in text and "山﨑" in text
    assert "病" in text and "忌" in text and "学級計" in text
    # The seal records: both steps, with the approvers' names, and verified at printing.
    assert "副校長" in text and "校長" in text and "勅使河原 一郎" in text
    assert text.count("電子署名: 有効") == 2
    assert "1/1" in text.replace(" ", "")


def test_characters_no_font_has_are_shown_as_geta_and_reported(world: World, tmp_path: Path) -> None:
    unknown = "\U0003134a"  # CJK Extension G: in no installed font
    student = world.students["a1_second"]
    student.given_name = f"太{unknown}"
    student.save()
    year, month = june(world)
    page = selectors.monthly_register_print_for(actor=act(world, "homeroom_a1"), class_id=world.class_a1.pk,
                                                year=year, month=month)
    result = pdf.monthly_register_pdf(page, printed_by="担任")
    assert result.glyphs.missing == {unknown}
    # The variation sequence of 葛󠄀 cannot be honoured by reportlab: printed as its base, and said so.
    assert result.glyphs.approximated == set()
    text = text_of(result.content, tmp_path)
    assert f"太{pdf.GETA}" in text
    assert "U+3134A" in text.replace("\n", "")
    assert pdf.unprintable([f"太{unknown}"]).missing == {unknown}


def test_a_variation_sequence_is_printed_as_its_base_and_reported() -> None:
    report = pdf.unprintable(["葛\U000e0100太"])
    assert report.approximated == {"葛\U000e0100"} and not report.missing
    assert "U+E0100" in report.describe()
    runs = pdf.runs("葛\U000e0100太", pdf.fonts().names)
    assert "".join(t for _f, t in runs) == "葛太"


def test_a_class_of_forty_prints_on_two_pages_with_page_numbers(world: World, tmp_path: Path) -> None:
    for no in range(3, 41):
        student = Student(school=world.school_a, family_name="生徒", given_name=f"{no}番",
                          family_name_kana="セイト", given_name_kana="バン", birth_date=datetime.date(2019, 4, 2))
        student.save()
        ClassMembership.objects.create(student=student, homeroom_class=world.class_a1, shusseki_no=no)
    year, month = june(world)
    page = selectors.monthly_register_print_for(actor=act(world, "homeroom_a1"), class_id=world.class_a1.pk,
                                                year=year, month=month)
    result = pdf.monthly_register_pdf(page, printed_by="担任")
    assert result.pages == 2
    text = text_of(result.content, tmp_path)
    assert "1/2" in text.replace(" ", "") and "2/2" in text.replace(" ", "") and "40番" in text
    assert "まだ提出されていません" in text


def test_the_annual_record_pdf_has_a_page_per_pupil_with_every_month(world: World, tmp_path: Path) -> None:
    mark(world, "a1_first", day(world, 1), MarkKind.SUSPENSION, suspension_kind="infectious", disease="influenza")
    record = selectors.annual_record_print_for(actor=act(world, "homeroom_a1"), class_id=world.class_a1.pk)
    result = pdf.annual_record_pdf(record, printed_by="担任")
    assert result.pages == 2
    text = text_of(result.content, tmp_path)
    assert text.count("出欠の記録") >= 2 and "指導要録" in text
    for label in ("授業日数", "出席停止・", "忌引等の日数", "出席しなければ", "欠席日数", "出席日数", "備考"):
        assert label in text
    for month in ("4月", "9月", "3月", "年間"):
        assert month in text
    assert "髙橋 𠮷乃" in text
    assert "インフルエンザ1日" in text


def test_the_seal_in_the_pdf_is_drawn_from_the_family_name(world: World, after_the_year: datetime.date,
                                                          tmp_path: Path) -> None:
    vice = world.user("vice_principal_a")
    vice.display_name = "長谷川 春子"
    vice.save()
    approve_all_june(world)
    year, month = june(world)
    page = selectors.monthly_register_print_for(actor=act(world, "principal_a"), class_id=world.class_a1.pk,
                                                year=year, month=month)
    text = text_of(pdf.monthly_register_pdf(page, printed_by="校長").content, tmp_path)
    # The 印影 sets 長谷川 vertically: one character per line in the extracted text.
    assert "長" in text and "谷" in text and "川" in text and "長谷川 春子" in text
