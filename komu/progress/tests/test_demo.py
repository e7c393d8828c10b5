"""The demo's progress data (komu/demo/progress.py): the board's dashboard has history, its prefecture and the
nation to compare with, and the map has every prefecture coloured."""

from __future__ import annotations

from typing import Any

from django.test import Client
from django.urls import reverse

from komu.accounts.models import User
from komu.demo.builder import build_demo
from komu.progress.models import IndicatorValue, Rollup
from komu.testing.world import login_verified


def test_the_demo_board_compares_with_prefecture_and_nation(db: Any, settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    build_demo(seed=7)
    months = set(IndicatorValue.objects.filter(source="local").values_list("month", flat=True))
    assert len(months) >= 6
    latest = max(months)
    assert Rollup.objects.filter(level="prefecture", month=latest, indicator="comm_digital").count() == 47
    client = Client()
    login_verified(client, User.objects.get(username="demo-board"))
    body = client.get(reverse("progress:dashboard"), follow=True).content.decode()
    assert "こもれび市教育委員会" in body and "埼玉県" in body and "全国" in body
    assert "こもれび市立第一小学校" in body
