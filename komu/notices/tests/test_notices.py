"""通知・事務連絡・依頼: sending to schools and boards, forwarding with the chain, opening, 受領, reminders,
attachments checked by content, and scope."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from komu.access.scope import get_actor
from komu.audit.models import AuditEvent
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.notices import selectors
from komu.notices.models import Attachment, Notice, NoticeRecipient, Notification
from komu.notices.services import notices as svc
from komu.notices.services.attachments import Upload, sniff
from komu.notices.tests.helpers import PDF, PNG, ooxml, plain_zip
from komu.testing.tasks import run_queued_tasks
from komu.testing.world import World


def actor(world: World, name: str) -> Any:
    return get_actor(world.user(name))


def send(world: World, who: str = "board_officer_a", **kwargs: Any) -> Notice:
    params: dict[str, Any] = {"kind": Notice.Kind.JIMU_RENRAKU, "title": "感染症の報告について",
                              "body": "各校で確認してください。", "ack_required": True}
    params.update(kwargs)
    return svc.notice_send(actor=actor(world, who), data=svc.NoticeInput(**params))


def test_board_sends_to_all_its_schools_and_they_are_told(world: World) -> None:
    notice = send(world)
    assert set(notice.recipients.values_list("school_id", flat=True)) == {world.school_a.pk, world.school_a2.pk}
    assert AuditEvent.objects.filter(action="notices.notice.sent", object_id=str(notice.pk)).count() == 1
    told = set(Notification.objects.values_list("user__username", flat=True))
    assert {"principal_a", "vice_principal_a", "school_admin_a"} <= told
    assert "principal_b" not in told and "teacher_a" not in told


def test_board_sends_to_a_school_type_or_a_list(world: World) -> None:
    juniors = send(world, audience=svc.Audience.SCHOOL_TYPE, school_type="C1")
    assert list(juniors.recipients.values_list("school_id", flat=True)) == [world.school_a2.pk]
    listed = send(world, audience=svc.Audience.SCHOOLS, school_ids=(world.school_a.pk,))
    assert list(listed.recipients.values_list("school_id", flat=True)) == [world.school_a.pk]


def test_a_school_of_another_board_cannot_be_addressed(world: World) -> None:
    with pytest.raises(ValidationFailed):
        send(world, audience=svc.Audience.SCHOOLS, school_ids=(world.school_b.pk,))
    assert Notice.objects.count() == 0


def test_invalid_input_is_refused_with_nothing_written(world: World) -> None:
    with pytest.raises(ValidationFailed) as exc:
        send(world, title=" ", deadline=timezone.localdate() - datetime.timedelta(days=1))
    assert "title" in exc.value.errors and "deadline" in exc.value.errors
    assert Notice.objects.count() == 0


def test_teacher_cannot_send(world: World) -> None:
    with pytest.raises(PermissionDeniedError):
        send(world, "teacher_a")


def test_school_sends_a_report_to_its_board(world: World) -> None:
    notice = send(world, "principal_a", kind=Notice.Kind.HOKOKU, audience=svc.Audience.OWN_BOARD)
    assert list(notice.recipients.values_list("board_id", flat=True)) == [world.board_a.pk]
    view = selectors.notice_get_for(actor=actor(world, "board_officer_a"), notice_id=notice.pk)
    assert view.recipient is not None and not view.is_sender
    with pytest.raises(NotFoundOrNoAccess):
        selectors.notice_get_for(actor=actor(world, "board_officer_b"), notice_id=notice.pk)


def test_prefecture_to_municipal_boards_to_schools_keeps_the_chain(world: World) -> None:
    from komu.directory.models import Role, StaffAssignment
    from komu.testing.world import make_user

    pref_officer = make_user("pref_officer")
    StaffAssignment.objects.create(user=pref_officer, role=Role.BOARD_OFFICER, board=world.pref_board)
    original = svc.notice_send(actor=get_actor(pref_officer), data=svc.NoticeInput(
        kind=Notice.Kind.TSUCHI, title="県からの通知", audience=svc.Audience.BOARDS))
    assert set(original.recipients.values_list("board_id", flat=True)) == {world.board_a.pk, world.board_b.pk}
    forwarded = svc.notice_forward(actor=actor(world, "board_officer_a"), notice_id=original.pk, data=svc.NoticeInput(
        kind=Notice.Kind.TSUCHI, title="県からの通知（転送）", ack_required=True))
    assert forwarded.forwarded_from_id == original.pk
    view = selectors.notice_get_for(actor=actor(world, "principal_a"), notice_id=forwarded.pk)
    assert [n.pk for n in view.chain] == [original.pk]
    # The school reaches the forward, not the prefecture's original.
    with pytest.raises(NotFoundOrNoAccess):
        selectors.notice_get_for(actor=actor(world, "principal_a"), notice_id=original.pk)
    # A school cannot forward.
    with pytest.raises(NotFoundOrNoAccess):
        svc.notice_forward(actor=actor(world, "principal_a"), notice_id=original.pk,
                           data=svc.NoticeInput(kind=Notice.Kind.TSUCHI, title="x"))


def test_opening_and_acknowledging_are_recorded_once(world: World) -> None:
    notice = send(world)
    row = svc.notice_open(actor=actor(world, "teacher_a"), notice_id=notice.pk)
    assert row.opened_at is not None and row.opened_by == world.user("teacher_a")
    svc.notice_open(actor=actor(world, "principal_a"), notice_id=notice.pk)
    assert AuditEvent.objects.filter(action="notices.notice.opened").count() == 1
    with pytest.raises(PermissionDeniedError):
        svc.notice_acknowledge(actor=actor(world, "teacher_a"), notice_id=notice.pk)
    acked = svc.notice_acknowledge(actor=actor(world, "school_admin_a"), notice_id=notice.pk)
    assert acked.acknowledged_by == world.user("school_admin_a")
    svc.notice_acknowledge(actor=actor(world, "principal_a"), notice_id=notice.pk)
    assert AuditEvent.objects.filter(action="notices.notice.acknowledged").count() == 1


def test_a_school_not_addressed_gets_404(world: World) -> None:
    notice = send(world)
    for name in ("principal_b", "board_officer_b", "guardian_a"):
        with pytest.raises((NotFoundOrNoAccess, PermissionDeniedError)):
            svc.notice_open(actor=actor(world, name), notice_id=notice.pk)
    with pytest.raises(NotFoundOrNoAccess):
        svc.notice_acknowledge(actor=actor(world, "principal_b"), notice_id=notice.pk)


def test_sender_sees_status_and_reminds_only_those_pending(world: World) -> None:
    notice = send(world)
    svc.notice_acknowledge(actor=actor(world, "principal_a"), notice_id=notice.pk)
    _, rows = selectors.notice_status(actor=actor(world, "board_officer_a"), notice_id=notice.pk)
    assert [(r.name, r.state) for r in rows] == [(world.school_a2.name, "delivered"),
                                                 (world.school_a.name, "acknowledged")]
    run_queued_tasks()
    mail.outbox.clear()
    assert svc.notice_remind(actor=actor(world, "board_officer_a"), notice_id=notice.pk) == 1
    run_queued_tasks()
    pending = NoticeRecipient.objects.get(notice=notice, school=world.school_a2)
    assert pending.reminder_count == 1
    assert NoticeRecipient.objects.get(notice=notice, school=world.school_a).reminder_count == 0
    assert AuditEvent.objects.filter(action="notices.notice.reminded").count() == 1
    # school_a2 has no staff in the world: nobody at school_a is mailed again.
    assert all("督促" not in m.subject or "principal_a" not in m.to[0] for m in mail.outbox)
    with pytest.raises(NotFoundOrNoAccess):
        selectors.notice_status(actor=actor(world, "board_officer_b"), notice_id=notice.pk)
    with pytest.raises(NotFoundOrNoAccess):
        svc.notice_remind(actor=actor(world, "board_officer_b"), notice_id=notice.pk)


def test_automatic_reminder_before_the_deadline_runs_once_a_day(world: World) -> None:
    today = timezone.localdate()
    notice = send(world, deadline=today + datetime.timedelta(days=1))
    send(world, deadline=today + datetime.timedelta(days=10), title="まだ先")
    call_command("notices", "remind")
    assert set(NoticeRecipient.objects.filter(reminder_count=1).values_list("notice_id", flat=True)) == {notice.pk}
    assert svc.notices_remind_due(today=today) == 0


def test_attachments_are_checked_by_content_not_name(world: World) -> None:
    good = (Upload("要項.pdf", PDF), Upload("名簿.xlsx", ooxml("xl/workbook.xml")),
            Upload("依頼.docx", ooxml("word/document.xml")), Upload("地図.png", PNG))
    notice = send(world, attachments=good)
    assert sorted(a.content_type for a in notice.attachments.all())[0] == "application/pdf"
    for bad in (Upload("virus.pdf", b"MZ\x90\x00"), Upload("book.xlsx", plain_zip()), Upload("empty.pdf", b"")):
        with pytest.raises(ValidationFailed):
            send(world, title="別件", attachments=(bad,))
    assert Notice.objects.count() == 1
    assert sniff(PDF) == ("application/pdf", ".pdf")
    renamed = Attachment.objects.get(notice=notice, content_type="image/png")
    assert renamed.filename == "地図.png"


def test_attachment_is_stored_encrypted_and_served_only_to_recipients(world: World) -> None:
    from komu.security.tests.helpers import raw_value

    notice = send(world, attachments=(Upload("要項.pdf", PDF),))
    attachment = notice.attachments.get()
    from komu.security.blobs import blob_storage

    # The file in the store is ciphertext under a random name; its data key is an encrypted column.
    with blob_storage().open(attachment.blob) as stored:
        assert b"%PDF" not in stored.read()
    assert attachment.filename not in attachment.blob and str(attachment.pk) not in attachment.blob
    assert raw_value(Attachment, attachment.pk, "blob_key") not in ("", attachment.blob_key)
    _, data = selectors.attachment_download(actor=actor(world, "teacher_a"), attachment_id=attachment.pk)
    assert b"".join(data) == PDF
    assert AuditEvent.objects.filter(action="notices.attachment.downloaded").count() == 1
    with pytest.raises(NotFoundOrNoAccess):
        selectors.attachment_download(actor=actor(world, "principal_b"), attachment_id=attachment.pk)


def test_inbox_and_unread_counts(world: World) -> None:
    notice = send(world)
    principal = actor(world, "principal_a")
    assert selectors.inbox_unread_count(actor=principal) == 1
    assert selectors.inbox_pending_ack_count(actor=principal) == 1
    assert [r.notice.pk for r in selectors.inbox_for(actor=principal)] == [notice.pk]
    assert selectors.inbox_for(actor=actor(world, "principal_b")) == []
    svc.notice_acknowledge(actor=principal, notice_id=notice.pk)
    assert selectors.inbox_unread_count(actor=principal) == 0
    assert selectors.home_tasks(actor=principal) == []
    sent = selectors.sent_for(actor=actor(world, "board_officer_a"))
    assert (sent[0].total, sent[0].opened, sent[0].acknowledged, sent[0].pending) == (2, 1, 1, 1)
