"""紙・FAX で送ったもの: one-click records and the monthly counts the progress database reads."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.utils import timezone

from komu.access.scope import get_actor
from komu.audit.models import AuditEvent
from komu.core.errors import PermissionDeniedError, ValidationFailed
from komu.notices import selectors
from komu.notices.models import Notice, PaperSend
from komu.notices.services import notices as notice_svc
from komu.notices.services import paper as svc
from komu.testing.world import World


def record(world: World, who: str, **kwargs: Any) -> PaperSend:
    params: dict[str, Any] = {"channel": "fax", "counterparty": "lunch_centre", "document_kind": "給食の数量変更"}
    params.update(kwargs)
    return svc.paper_send_record(actor=get_actor(world.user(who)), data=svc.PaperSendInput(**params))


def test_school_and_board_record_sends_and_counts_are_per_month(world: World) -> None:
    today = timezone.localdate()
    record(world, "school_admin_a")
    record(world, "school_admin_a", counterparty="private", channel="paper")
    last_month = today.replace(day=1) - datetime.timedelta(days=1)
    record(world, "principal_a", sent_on=last_month)
    record(world, "board_officer_a", counterparty="government")
    counts = selectors.paper_send_counts(school_id=world.school_a.pk, month=today)
    assert counts["lunch_centre"] == 1 and counts["private"] == 1 and counts["guardian"] == 0
    assert counts["total"] == 2
    assert selectors.paper_send_counts(school_id=world.school_a.pk, month=last_month)["total"] == 1
    assert selectors.paper_send_counts(board_id=world.board_a.pk, month=today)["government"] == 1
    assert AuditEvent.objects.filter(action="notices.paper_send.recorded").count() == 4


def test_komu_send_counts_beside_paper(world: World) -> None:
    notice_svc.notice_send(actor=get_actor(world.user("board_officer_a")),
                           data=notice_svc.NoticeInput(kind=Notice.Kind.TSUCHI, title="通知"))
    today = timezone.localdate()
    assert selectors.komu_send_counts(board_id=world.board_a.pk, month=today) == {
        "notices": 1, "letters": 0, "total": 1}
    assert selectors.komu_send_counts(school_id=world.school_a.pk, month=today)["total"] == 0
    from komu.notices.models import Letter
    from komu.notices.services import letters as letter_svc

    letter_svc.letters_send_from_board(actor=get_actor(world.user("board_officer_a")), data=letter_svc.LetterInput(
        title="お知らせ", audience=Letter.Audience.SCHOOL, school_ids=(world.school_a.pk,)))
    assert selectors.komu_send_counts(board_id=world.board_a.pk, month=today)["letters"] == 1
    assert selectors.komu_send_counts(school_id=world.school_a.pk, month=today)["letters"] == 1
    with pytest.raises(ValueError):
        selectors.komu_send_counts(month=today)


def test_bad_input_and_roles(world: World) -> None:
    with pytest.raises(ValidationFailed) as exc:
        record(world, "school_admin_a", counterparty="alien", document_kind=" ",
               sent_on=timezone.localdate() + datetime.timedelta(days=3))
    assert {"counterparty", "document_kind", "sent_on"} <= set(exc.value.errors)
    with pytest.raises(PermissionDeniedError):
        record(world, "teacher_a")
    assert PaperSend.objects.count() == 0
