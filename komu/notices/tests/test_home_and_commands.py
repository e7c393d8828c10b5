"""Home-page to-dos of komu.notices and its scheduled commands."""

from __future__ import annotations

import datetime
from io import StringIO
from typing import Any

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.utils import timezone

from komu.access.scope import get_actor
from komu.notices import notifications, selectors
from komu.notices.models import Letter, Notice
from komu.notices.services import letters as letter_svc
from komu.notices.services import notices as svc
from komu.testing.world import World


def actor(world: World, name: str) -> Any:
    return get_actor(world.user(name))


def test_school_sees_pending_acknowledgement_and_board_sees_pending_recipients_near_the_deadline(
    world: World,
) -> None:
    svc.notice_send(actor=actor(world, "board_officer_a"), data=svc.NoticeInput(
        kind=Notice.Kind.IRAI, title="調査の依頼", ack_required=True, deadline=timezone.localdate()))
    principal_tasks = selectors.home_tasks(actor=actor(world, "principal_a"))
    assert [t.urgent for t in principal_tasks] == [True, False]
    assert "受領の確認を待っている通知が 1 件" in principal_tasks[0].title
    teacher_tasks = selectors.home_tasks(actor=actor(world, "teacher_a"))
    assert [t.title for t in teacher_tasks] == ["未読の通知が 1 件あります"]
    board_tasks = selectors.home_tasks(actor=actor(world, "board_officer_a"))
    assert len(board_tasks) == 1 and "未確認の送り先が 2" in board_tasks[0].title and board_tasks[0].urgent
    assert selectors.home_tasks(actor=actor(world, "board_officer_b")) == []


def test_guardian_sees_unread_or_unanswered_letters(world: World) -> None:
    letter = letter_svc.letter_send(actor=actor(world, "homeroom_a1"), data=letter_svc.LetterInput(
        title="遠足", class_id=world.class_a1.pk, reply_kind=Letter.ReplyKind.CONSENT))
    guardian = actor(world, "guardian_a")
    assert [t.title for t in selectors.home_tasks(actor=guardian)] == ["学校からのお便りが 1 件あります"]
    assert selectors.guardian_unread_letters(actor=guardian) == 1
    letter_svc.letter_reply(actor=guardian, letter_id=letter.pk, student_id=world.students["a1_first"].pk,
                            choice="agree")
    assert selectors.home_tasks(actor=guardian) == []
    assert selectors.home_tasks(actor=actor(world, "guardian_b")) == []


def test_digest_command_sends_the_daily_summary(world: World, django_capture_on_commit_callbacks: Any) -> None:
    notifications.notification_preference_set(actor=actor(world, "principal_a"), email_mode="digest")
    with django_capture_on_commit_callbacks(execute=True):
        svc.notice_send(actor=actor(world, "board_officer_a"), data=svc.NoticeInput(
            kind=Notice.Kind.TSUCHI, title="通知A"))
    digest_before = [m for m in mail.outbox if m.to == ["principal_a@example.jp"]]
    assert digest_before == []
    out = StringIO()
    call_command("notices", "digest", stdout=out)
    assert "1 通" in out.getvalue()
    assert any("通知A" in m.body for m in mail.outbox if m.to == ["principal_a@example.jp"])


def test_remind_command_refuses_negative_days_and_can_enqueue(world: World) -> None:
    with pytest.raises(CommandError):
        call_command("notices", "remind", "--days", "-1")
    svc.notice_send(actor=actor(world, "board_officer_a"), data=svc.NoticeInput(
        kind=Notice.Kind.TSUCHI, title="明日まで", ack_required=True,
        deadline=timezone.localdate() + datetime.timedelta(days=1)))
    out = StringIO()
    call_command("notices", "remind", "--days", "0", stdout=out)
    assert "0 か所" in out.getvalue()
    out = StringIO()
    call_command("notices", "remind", "--enqueue", stdout=out)
    assert "登録しました" in out.getvalue()
