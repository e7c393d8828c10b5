"""`komu demo` and `komu demo --if-empty`, starting from an empty database or one with real data."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from komu.accounts.models import User
from komu.core.codes import make_school_code
from komu.demo.builder import build_demo
from komu.demo.models import DemoAccount
from komu.demo.tests.conftest import run_demo
from komu.directory.models import Board, School
from komu.students.models import Student

pytestmark = pytest.mark.django_db


def _a_real_school() -> School:
    """Data an operator loaded: a board and a school, no demo accounts."""
    board = Board.objects.create(
        code="139001", name="試験市教育委員会", kind=Board.Kind.MUNICIPAL, prefecture_id="13"
    )
    code = make_school_code("B1", "13", "2", "0000001")
    return School.objects.create(
        code=code, name="試験市立小学校", school_type="B1", board=board, prefecture_id="13"
    )


def _signature() -> list[tuple[str, ...]]:
    """Every pupil (id, name, birth date) and every TOTP secret: what "the same demo" means."""
    students = sorted(Student.objects.all(), key=lambda s: str(s.pk))
    people = [(str(s.pk), s.family_name, s.given_name, s.birth_date.isoformat()) for s in students]
    keys = TOTPDevice.objects.order_by("user__username").values_list("user__username", "key")
    return people + [tuple(k) for k in keys]


def test_demo_loads_into_an_empty_database_and_reports_the_counts() -> None:
    output = run_demo("--seed", "3")
    assert "デモデータを作成しました" in output
    assert School.objects.count() == 5
    assert f"児童生徒 {Student.objects.count()} 人" in output
    assert "komu demo logins" in output


def test_demo_refuses_with_a_japanese_message_when_data_exists() -> None:
    _a_real_school()
    with pytest.raises(CommandError, match="既にデータがあります") as excinfo:
        run_demo()
    assert "--if-empty" in str(excinfo.value)
    assert not DemoAccount.objects.exists()


def test_if_empty_loads_into_an_empty_database_once_and_then_does_nothing() -> None:
    run_demo("--if-empty")
    counts = (School.objects.count(), Student.objects.count(), User.objects.count())
    assert counts[1] > 0
    assert "作成しませんでした" in run_demo("--if-empty")
    assert (School.objects.count(), Student.objects.count(), User.objects.count()) == counts


def test_if_empty_leaves_a_database_with_real_schools_alone() -> None:
    _a_real_school()
    assert "作成しませんでした" in run_demo("--if-empty")
    assert not User.objects.filter(username__startswith="demo-").exists()


def test_the_same_seed_builds_the_same_municipality_and_another_seed_other_people() -> None:
    with transaction.atomic():
        build_demo(seed=11)
        first = _signature()
        transaction.set_rollback(True)
    assert len(first) > 1000  # every pupil and every device, so the comparisons below are not vacuous
    with transaction.atomic():
        build_demo(seed=11)
        assert _signature() == first
        transaction.set_rollback(True)
    build_demo(seed=12)
    assert _signature() != first


def test_logins_without_demo_data_says_so_and_succeeds() -> None:
    # `make run` calls this on every start, also for a database holding real data only.
    assert "デモ用のログインはありません" in run_demo("logins")


def test_demo_warns_when_loaded_without_debug(settings: Any) -> None:
    settings.DEBUG = False
    err = StringIO()
    call_command("demo", stdout=StringIO(), stderr=err)
    assert "公開パスワード" in err.getvalue()
    assert School.objects.exists()
