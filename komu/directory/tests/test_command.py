"""`komu directory load`: Japanese output, a non-zero exit on any error, and nothing written by a dry run."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command, execute_from_command_line
from django.core.management.base import CommandError

from komu.audit.models import AuditEvent
from komu.core.codes import make_school_code
from komu.directory.models import School
from komu.testing.world import World

pytestmark = pytest.mark.django_db


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8-sig") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("directory", "load", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def good_file(tmp_path: Path) -> Path:
    code = make_school_code("B1", "13", "2", "0000201")
    return write(
        tmp_path,
        "schools.csv",
        f"学校コード,学校名,教育委員会コード\r\n{code},みどり市立第七小学校,139001\r\n",
    )


def test_load_reports_counts_in_japanese_and_records_one_event(world: World, tmp_path: Path) -> None:
    out, err = run(str(good_file(tmp_path)), "--kind", "schools")
    assert "schools.csv を登録しました" in out and "新規 1 件" in out and not err
    event = AuditEvent.objects.get(action="directory.bulk_loaded")
    assert event.actor_username == "system" and event.channel == "cli" and event.actor_role == "operator"


def test_dry_run_writes_nothing(world: World, tmp_path: Path) -> None:
    out, _ = run(str(good_file(tmp_path)), "--kind", "schools", "--dry-run")
    assert "確認のみ" in out and "登録はしていません" in out
    assert not School.objects.filter(name="みどり市立第七小学校").exists()


def test_errors_are_printed_with_line_and_column_and_fail_the_command(world: World, tmp_path: Path) -> None:
    code = make_school_code("B1", "13", "2", "0000201")
    wrong = code[:12] + str((int(code[12]) + 1) % 10)
    path = write(
        tmp_path, "bad.csv", f"学校コード,学校名,教育委員会コード\r\n{wrong},第七,139001\r\n", "cp932"
    )
    err = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("directory", "load", str(path), "--kind", "schools", stdout=io.StringIO(), stderr=err)
    assert "bad.csv 2行目「学校コード」" in err.getvalue() and "チェックディジット" in err.getvalue()
    assert "1件のエラー" in str(caught.value) and "何も登録していません" in str(caught.value)


def test_a_user_without_bulk_load_cannot_be_named(world: World, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="一括登録できる運用者ではありません"):
        run(str(good_file(tmp_path)), "--kind", "schools", "--user", "principal_a")


def test_the_operator_can_be_named_for_the_audit_log(world: World, tmp_path: Path) -> None:
    run(str(good_file(tmp_path)), "--kind", "schools", "--user", "operator")
    assert AuditEvent.objects.get(action="directory.bulk_loaded").actor_username == "operator"


def test_a_missing_file_is_reported(world: World, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="ファイルが見つかりません"):
        run(str(tmp_path / "none.csv"), "--kind", "schools")


def test_the_console_command_exits_non_zero_on_errors(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through the `komu` entry point as an operator runs it: the process ends with exit status 1."""
    path = write(tmp_path, "bad.csv", "学校コード,学校名,教育委員会コード\r\nB11320000001X,第七,139001\r\n")
    with pytest.raises(SystemExit) as exited:
        execute_from_command_line(["komu", "directory", "load", str(path), "--kind", "schools"])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "bad.csv 2行目「学校コード」" in err and "1件のエラーがあります" in err
