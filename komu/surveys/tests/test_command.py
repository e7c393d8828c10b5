from __future__ import annotations

import datetime
from io import StringIO

from django.core.management import call_command
from django.utils import timezone

from komu.notices.models import Notification
from komu.surveys.models import Survey
from komu.testing.world import World


def test_templates_lists_both_ready_made_surveys() -> None:
    out = StringIO()
    call_command("surveys", "templates", stdout=out)
    text = out.getvalue()
    assert "infectious_weekly: 感染症の発生状況（週報）" in text and "monthly_attendance: 月例 出欠状況" in text
    assert "出席停止（インフルエンザ） ← 出席停止（インフルエンザ）の人数" in text


def test_remind_reminds_late_schools(published: Survey, world: World) -> None:
    Survey.objects.filter(pk=published.pk).update(deadline=timezone.now() - datetime.timedelta(hours=2))
    out = StringIO()
    call_command("surveys", "remind", stdout=out)
    assert out.getvalue().strip() == "2校に督促しました。"
    assert Notification.objects.filter(kind="surveys.reminder", user=world.user("principal_a")).exists()
