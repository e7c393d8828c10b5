"""`komu roster import`: the operator's way to the same 学齢簿 import, errors on stderr and a non-zero exit."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command, execute_from_command_line
from django.core.management.base import CommandError

from komu.audit.models import AuditEvent
from komu.rosters.management.commands import roster as roster_command
from komu.rosters.models import GakureiboEntry, GakureiboImport
from komu.rosters.tests.test_imports import FY, csv_bytes, row
from komu.testing.world import World


def write(tmp_path: Path, data: bytes, name: str = "gakureibo.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("roster", "import", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_import_applies_and_reports_counts_as_the_named_officer(world: World, tmp_path: Path) -> None:
    path = write(tmp_path, csv_bytes([row(**{"氏名（姓）": "髙橋"}), row("000000000000102")], encoding="cp932"))
    out, err = run(str(path), "--board", "139001", "--as", "board_officer_a", "--year", str(FY))
    assert "gakureibo.csv を学齢簿（2027年度）に反映しました" in out and "新規 2 人" in out and not err
    assert GakureiboEntry.objects.filter(board=world.board_a, fiscal_year=FY).count() == 2
    summary = AuditEvent.objects.get(action="rosters.gakureibo_import.applied")
    assert summary.actor_username == "board_officer_a" and summary.channel == "cli"
    assert summary.actor_role == "board_officer"


def test_running_the_same_file_twice_changes_nothing(world: World, tmp_path: Path) -> None:
    path = write(tmp_path, csv_bytes([row()]))
    run(str(path), "--board", "139001", "--as", "board_officer_a", "--year", str(FY))
    out, _ = run(str(path), "--board", "139001", "--as", "board_officer_a", "--year", str(FY))
    assert "新規 0 人" in out and "変更なし 1 人" in out
    assert GakureiboEntry.objects.count() == 1


def test_dry_run_writes_nothing_and_keeps_no_copy(world: World, tmp_path: Path) -> None:
    path = write(tmp_path, csv_bytes([row()]))
    out, _ = run(str(path), "--board", "139001", "--as", "board_officer_a", "--year", str(FY), "--dry-run")
    assert "確認のみ" in out and "新規 1 人" in out and "何も反映していません" in out
    assert not GakureiboEntry.objects.exists()
    imp = GakureiboImport.objects.get()
    assert imp.status == GakureiboImport.Status.DISCARDED and imp.content == ""


def test_errors_go_to_stderr_with_file_line_column_value_and_fail(world: World, tmp_path: Path) -> None:
    path = write(tmp_path, csv_bytes([row(), row("000000000000102", **{"生年月日": "2020/2/30"})]), "bad.csv")
    err = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("roster", "import", str(path), "--board", "139001", "--as", "board_officer_a",
                     "--year", str(FY), stdout=io.StringIO(), stderr=err)
    assert "エラー: bad.csv 3行目「生年月日」" in err.getvalue()
    assert "1件のエラー" in str(caught.value) and "何も反映していません" in str(caught.value)
    assert not GakureiboEntry.objects.exists()


def test_warnings_are_printed_but_do_not_fail(world: World, tmp_path: Path) -> None:
    path = write(tmp_path, csv_bytes([row(**{"ふりがな（姓）": "", "ふりがな（名）": ""})]))
    out, err = run(str(path), "--board", "139001", "--as", "board_officer_a", "--year", str(FY))
    assert "警告: gakureibo.csv 2行目「ふりがな（姓）」" in err and "反映しました" in out


def test_another_boards_officer_cannot_be_named(world: World, tmp_path: Path) -> None:
    path = write(tmp_path, csv_bytes([row()]))
    with pytest.raises(CommandError, match="学齢簿を扱える担当者ではありません"):
        run(str(path), "--board", "139001", "--as", "board_officer_b")
    with pytest.raises(CommandError, match="学齢簿を扱える担当者ではありません"):
        run(str(path), "--board", "139001", "--as", "operator")  # no personal data for the operator role
    assert not GakureiboImport.objects.exists()


def test_unknown_board_and_missing_file_are_reported(world: World, tmp_path: Path) -> None:
    path = write(tmp_path, csv_bytes([row()]))
    with pytest.raises(CommandError, match="教育委員会コード「999999」"):
        run(str(path), "--board", "999999", "--as", "board_officer_a")
    with pytest.raises(CommandError, match="ファイルが見つかりません"):
        run(str(tmp_path / "none.csv"), "--board", "139001", "--as", "board_officer_a")


def test_the_year_defaults_to_next_april(world: World, tmp_path: Path) -> None:
    from komu.rosters.selectors.rosters import gakureibo_default_year

    year = gakureibo_default_year()
    birth = f"{year - 6}-01-15"  # in the entrant range of that 年度
    path = write(tmp_path, csv_bytes([row(**{"生年月日": birth})]))
    run(str(path), "--board", "139001", "--as", "board_officer_a", "--dry-run")
    assert GakureiboImport.objects.get().fiscal_year == year


def test_a_progress_line_is_shown_for_big_files(world: World, tmp_path: Path, monkeypatch: Any) -> None:
    from komu.rosters.services import imports

    monkeypatch.setattr(roster_command, "_PROGRESS_FROM_ROWS", 2)
    monkeypatch.setattr(imports, "BATCH_SIZE", 2)
    path = write(tmp_path, csv_bytes([row(f"00000000000010{i}", **{"氏名（名）": f"太郎{i}"}) for i in range(4)]))
    _, err = run(str(path), "--board", "139001", "--as", "board_officer_a", "--year", str(FY))
    assert "確認中 4 / 4 行" in err and "取込中 4 / 4 行" in err


def test_the_console_command_exits_non_zero_on_errors(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, csv_bytes([row(**{"氏名（名）": "太\u200b郎"})]))
    with pytest.raises(SystemExit) as exited:
        execute_from_command_line(["komu", "roster", "import", str(path), "--board", "139001",
                                   "--as", "board_officer_a", "--year", str(FY)])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "制御文字" in err and "2行目" in err  # (the command closes the database connection when it ends)


def test_the_console_command_exits_zero_on_success(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, csv_bytes([row()]))
    execute_from_command_line(["komu", "roster", "import", str(path), "--board", "139001",
                               "--as", "board_officer_a", "--year", str(FY)])
    assert "新規 1 人" in capsys.readouterr().out
