"""Reads of komu.notices: inboxes and unread counts, what a sender sent and who has opened and acknowledged it,
letters for guardians and their read receipts and replies per pupil, attachments, and the paper-send counts the
progress database reads. Every read starts from the actor's own organisations; anything else answers 404."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from komu.access import roles
from komu.access.scope import Actor, get_in_scope
from komu.audit.services import Scope, audit_record
from komu.core.errors import NotFoundOrNoAccess, ValidationFailed
from komu.notices.models import (
    Attachment,
    Letter,
    LetterRecipient,
    LetterReply,
    Notice,
    NoticeRecipient,
    PaperSend,
)
from komu.notices.services.attachments import attachment_reader
from komu.notices.services.letters import guardian_rows, letters_sent_scope
from komu.notices.services.notices import own_orgs, recipient_row_for, sent_scope
from komu.security.blobs import BlobMissingError, BlobReader
from komu.security.keys import DecryptionError
from komu.web.selectors import Task

# --- notices ------------------------------------------------------------------------------------------------------


def _inbox_q(actor: Actor) -> Q:
    school_ids, board_ids = own_orgs(actor, roles.NOTICES_RECEIVE)
    return Q(school_id__in=school_ids) | Q(board_id__in=board_ids)


def inbox_for(*, actor: Actor, unread_only: bool = False, limit: int = 200) -> list[NoticeRecipient]:
    if not actor.has(roles.NOTICES_RECEIVE):
        return []
    qs = NoticeRecipient.objects.filter(_inbox_q(actor)).select_related(
        "notice", "notice__sender_board", "notice__sender_school", "school", "board",
    )
    if unread_only:
        qs = qs.filter(opened_at__isnull=True)
    return list(qs.order_by("-delivered_at")[:limit])


def inbox_unread_count(*, actor: Actor) -> int:
    if not actor.has(roles.NOTICES_RECEIVE):
        return 0
    return NoticeRecipient.objects.filter(_inbox_q(actor), opened_at__isnull=True).count()


def inbox_pending_ack_count(*, actor: Actor) -> int:
    if not actor.has(roles.NOTICES_ACKNOWLEDGE):
        return 0
    school_ids, board_ids = own_orgs(actor, roles.NOTICES_ACKNOWLEDGE)
    return NoticeRecipient.objects.filter(
        Q(school_id__in=school_ids) | Q(board_id__in=board_ids), notice__ack_required=True,
        acknowledged_at__isnull=True,
    ).count()


@dataclass(frozen=True)
class SentRow:
    notice: Notice
    total: int
    opened: int
    acknowledged: int

    @property
    def pending(self) -> int:
        return self.total - (self.acknowledged if self.notice.ack_required else self.opened)


def sent_for(*, actor: Actor, limit: int = 200) -> list[SentRow]:
    if not actor.has(roles.NOTICES_SEND):
        return []
    qs = (
        Notice.objects.filter(sent_scope(actor))
        .annotate(
            n_total=Count("recipients"),
            n_opened=Count("recipients", filter=Q(recipients__opened_at__isnull=False)),
            n_acked=Count("recipients", filter=Q(recipients__acknowledged_at__isnull=False)),
        )
        .select_related("sender_board", "sender_school")
        .order_by("-sent_at")[:limit]
    )
    return [SentRow(n, n.n_total, n.n_opened, n.n_acked) for n in qs]


@dataclass(frozen=True)
class NoticeView:
    notice: Notice
    is_sender: bool
    recipient: NoticeRecipient | None
    chain: list[Notice]
    attachments: list[Attachment]
    can_acknowledge: bool
    can_forward: bool


def notice_get_for(*, actor: Actor, notice_id: Any) -> NoticeView:
    """A notice as its sender or one of its recipients sees it; 404 for anyone else."""
    notice = get_in_scope(Notice.objects.select_related("sender_board", "sender_school", "sent_by"), pk=notice_id)
    is_sender = actor.has(roles.NOTICES_SEND) and Notice.objects.filter(sent_scope(actor), pk=notice.pk).exists()
    recipient: NoticeRecipient | None = None
    if actor.has(roles.NOTICES_RECEIVE):
        try:
            recipient = recipient_row_for(actor, notice)
        except NotFoundOrNoAccess:
            recipient = None
    if not is_sender and recipient is None:
        raise NotFoundOrNoAccess(_("見つかりません。"))
    chain: list[Notice] = []
    current = notice.forwarded_from
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = Notice.objects.select_related("sender_board", "sender_school", "forwarded_from").filter(
            pk=current.forwarded_from_id).first() if current.forwarded_from_id else None
    can_ack = bool(recipient and notice.ack_required and actor.has(roles.NOTICES_ACKNOWLEDGE))
    if can_ack:
        try:
            recipient_row_for(actor, notice, roles.NOTICES_ACKNOWLEDGE)
        except NotFoundOrNoAccess:
            can_ack = False
    can_forward = bool(recipient and recipient.board_id is not None and actor.has(roles.NOTICES_SEND))
    return NoticeView(notice, is_sender, recipient, chain, list(notice.attachments.all()), can_ack, can_forward)


@dataclass(frozen=True)
class StatusRow:
    recipient: NoticeRecipient
    name: str
    state: str  # "acknowledged" | "opened" | "delivered"


def notice_status(*, actor: Actor, notice_id: Any) -> tuple[Notice, list[StatusRow]]:
    """The sender's per-recipient table: delivered / opened / acknowledged with times."""
    notice = get_in_scope(Notice.objects.filter(sent_scope(actor)), pk=notice_id)
    rows = []
    qs = notice.recipients.select_related("school", "board", "opened_by", "acknowledged_by")
    for r in qs:
        name = r.school.name if r.school else r.board.name if r.board else ""
        state = "acknowledged" if r.acknowledged_at else "opened" if r.opened_at else "delivered"
        rows.append(StatusRow(r, name, state))
    order = {"delivered": 0, "opened": 1, "acknowledged": 2}
    rows.sort(key=lambda row: (order[row.state], row.name))
    return notice, rows


@transaction.atomic
def attachment_download(*, actor: Actor, attachment_id: Any) -> tuple[Attachment, BlobReader]:
    """The bytes of an attachment, as a stream of decrypted chunks, for its sender or recipients (a guardian: their
    children's letters); audited. The file is opened (and its first segment authenticated) before the event is
    recorded, so a missing or damaged file answers a message instead of a half-sent download."""
    attachment = get_in_scope(Attachment.objects.select_related("notice", "letter"), pk=attachment_id)
    scope: Scope
    if attachment.notice is not None:
        notice_get_for(actor=actor, notice_id=attachment.notice.pk)  # 404 for anyone else
        scope = Scope(board_id=attachment.notice.sender_board_id, school_id=attachment.notice.sender_school_id)
    elif attachment.letter is not None:
        letter = attachment.letter
        allowed = (
            (actor.has(roles.LETTERS_READ) and LetterRecipient.objects.filter(
                letter=letter, student_id__in=list(actor.child_ids)).exists())
            or (actor.has(roles.LETTERS_SEND) and Letter.objects.filter(letters_sent_scope(actor),
                                                                         pk=letter.pk).exists())
        )
        if not allowed:
            raise NotFoundOrNoAccess(_("見つかりません。"))
        scope = Scope(school_id=letter.school_id)
    else:
        raise NotFoundOrNoAccess(_("見つかりません。"))
    try:
        data = attachment_reader(attachment)
    except (BlobMissingError, DecryptionError) as exc:
        raise ValidationFailed(_("添付ファイルが壊れています。送信元に連絡してください。")) from exc
    audit_record(actor=actor.user, action="notices.attachment.downloaded", obj=attachment, scope=scope,
                 detail={"sha256": attachment.sha256})
    return attachment, data


# --- letters --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LetterSentRow:
    letter: Letter
    total: int
    read: int
    replied: int


def letters_sent_for(*, actor: Actor, limit: int = 200) -> list[LetterSentRow]:
    if not actor.has(roles.LETTERS_SEND):
        return []
    qs = (
        Letter.objects.filter(letters_sent_scope(actor))
        .annotate(
            n_total=Count("recipients", distinct=True),
            n_read=Count("recipients", filter=Q(recipients__read_at__isnull=False), distinct=True),
            n_replied=Count("recipients", filter=Q(recipients__replies__isnull=False), distinct=True),
        )
        .select_related("school").order_by("-sent_at")[:limit]
    )
    return [LetterSentRow(x, x.n_total, x.n_read, x.n_replied) for x in qs]


@dataclass(frozen=True)
class LetterStatusRow:
    class_label: str
    shusseki_no: int | None
    name: str
    read_at: datetime.datetime | None
    reply: LetterReply | None
    earlier_replies: int


@transaction.atomic
def letter_status(*, actor: Actor, letter_id: Any) -> tuple[Letter, list[LetterStatusRow], list[Attachment]]:
    """Read receipts and replies per pupil (names: a list read of personal data, audited)."""
    from komu.students.models import ClassMembership

    letter = get_in_scope(Letter.objects.filter(letters_sent_scope(actor)).select_related("school", "via_board"),
                          pk=letter_id)
    recipients = list(letter.recipients.select_related("student", "homeroom_class"))
    numbers = dict(
        ((m[0], m[1]), m[2]) for m in ClassMembership.objects.filter(
            student_id__in=[r.student_id for r in recipients]).values_list("student_id", "homeroom_class_id",
                                                                           "shusseki_no")
    )
    replies: dict[int, list[LetterReply]] = {}
    for reply in LetterReply.objects.filter(recipient__letter=letter).order_by("-submitted_at"):
        replies.setdefault(reply.recipient_id, []).append(reply)
    rows = []
    for r in recipients:
        mine = replies.get(r.pk, [])
        rows.append(LetterStatusRow(
            class_label=r.homeroom_class.display_label,
            shusseki_no=numbers.get((r.student_id, r.homeroom_class_id)),
            name=f"{r.student.family_name} {r.student.given_name}", read_at=r.read_at,
            reply=mine[0] if mine else None, earlier_replies=max(0, len(mine) - 1),
        ))
    rows.sort(key=lambda row: (row.class_label, row.shusseki_no or 0))
    audit_record(actor=actor.user, action="notices.letter.status_viewed", obj=letter,
                 scope=Scope(school_id=letter.school_id), detail={"pupils": len(rows)})
    return letter, rows, list(letter.attachments.all())


@dataclass(frozen=True)
class GuardianLetterRow:
    letter: Letter
    children: list[str]
    unread: bool
    needs_reply: bool


def letters_for_guardian(*, actor: Actor, limit: int = 100) -> list[GuardianLetterRow]:
    if not actor.has(roles.LETTERS_READ) or not actor.child_ids:
        return []
    recipients = (
        LetterRecipient.objects.filter(student_id__in=list(actor.child_ids))
        .select_related("letter", "letter__school", "student").order_by("-letter__sent_at")
    )
    replied = set(LetterReply.objects.filter(recipient__in=recipients).values_list("recipient_id", flat=True))
    grouped: dict[int, GuardianLetterRow] = {}
    for r in recipients[: limit * 3]:
        row = grouped.get(r.letter_id)
        needs = r.letter.reply_kind != Letter.ReplyKind.NONE and r.pk not in replied
        if row is None:
            grouped[r.letter_id] = GuardianLetterRow(r.letter, [r.student.given_name], r.read_at is None, needs)
        else:
            row.children.append(r.student.given_name)
            grouped[r.letter_id] = GuardianLetterRow(row.letter, row.children, row.unread or r.read_at is None,
                                                     row.needs_reply or needs)
    return list(grouped.values())[:limit]


@dataclass(frozen=True)
class GuardianChild:
    recipient: LetterRecipient
    name: str
    reply: LetterReply | None


def letter_for_guardian(*, actor: Actor, letter_id: Any) -> tuple[Letter, list[GuardianChild], list[Attachment]]:
    if not actor.has(roles.LETTERS_READ):
        raise NotFoundOrNoAccess(_("見つかりません。"))
    letter = get_in_scope(
        Letter.objects.filter(recipients__student_id__in=list(actor.child_ids)).distinct().select_related(
            "school", "via_board"),
        pk=letter_id,
    )
    children = []
    for r in guardian_rows(actor, letter):
        latest = r.replies.order_by("-submitted_at").first()
        children.append(GuardianChild(r, f"{r.student.family_name} {r.student.given_name}", latest))
    return letter, children, list(letter.attachments.all())


def guardian_unread_letters(*, actor: Actor) -> int:
    if not actor.has(roles.LETTERS_READ):
        return 0
    return LetterRecipient.objects.filter(student_id__in=list(actor.child_ids), read_at__isnull=True).values(
        "letter_id").distinct().count()


# --- paper sends and the progress database ---------------------------------------------------------------------


def _month_bounds(month: datetime.date) -> tuple[datetime.date, datetime.date]:
    first = month.replace(day=1)
    nxt = (first + datetime.timedelta(days=32)).replace(day=1)
    return first, nxt


def _org_q(school_id: int | None, board_id: int | None, *, school_field: str, board_field: str) -> Q:
    if (school_id is None) == (board_id is None):
        raise ValueError("school_id か board_id のどちらか一方を指定してください。")
    return Q(**{school_field: school_id}) if school_id is not None else Q(**{board_field: board_id})


def paper_send_counts(*, school_id: int | None = None, board_id: int | None = None,
                      month: datetime.date) -> dict[str, int]:
    """Fax/paper sends of one school or board in the month of `month`, per counterparty category (every category
    present, zeros included) and "total". Read by the progress database (issue 6)."""
    first, nxt = _month_bounds(month)
    counts = {value: 0 for value in PaperSend.Counterparty.values}
    qs = PaperSend.objects.filter(_org_q(school_id, board_id, school_field="school_id", board_field="board_id"),
                                  sent_on__gte=first, sent_on__lt=nxt)
    for row in qs.values("counterparty").annotate(n=Count("pk")):
        counts[row["counterparty"]] = row["n"]
    counts["total"] = sum(counts.values())
    return counts


def komu_send_counts(*, school_id: int | None = None, board_id: int | None = None,
                     month: datetime.date) -> dict[str, int]:
    """What the same school or board sent through Komu in that month: notices and letters to guardians."""
    first, nxt = _month_bounds(month)
    tz = timezone.get_current_timezone()
    start = datetime.datetime.combine(first, datetime.time.min, tzinfo=tz)
    end = datetime.datetime.combine(nxt, datetime.time.min, tzinfo=tz)
    notices = Notice.objects.filter(
        _org_q(school_id, board_id, school_field="sender_school_id", board_field="sender_board_id"),
        sent_at__gte=start, sent_at__lt=end,
    ).count()
    # A board's letters go out through its schools, one per school: each is counted for the board.
    letter_q = Q(school_id=school_id) if school_id is not None else Q(via_board_id=board_id)
    letters = Letter.objects.filter(letter_q, sent_at__gte=start, sent_at__lt=end).count()
    return {"notices": notices, "letters": letters, "total": notices + letters}


def paper_sends_for(*, actor: Actor, month: datetime.date) -> list[PaperSend]:
    school_ids, board_ids = own_orgs(actor, roles.NOTICES_SEND)
    first, nxt = _month_bounds(month)
    return list(
        PaperSend.objects.filter(Q(school_id__in=school_ids) | Q(board_id__in=board_ids),
                                 sent_on__gte=first, sent_on__lt=nxt)
        .select_related("school", "board").order_by("-sent_on", "-created_at")
    )


# --- home page -------------------------------------------------------------------------------------------------


def home_tasks(*, actor: Actor) -> list[Task]:
    """To-dos for the home page: notices waiting for 受領 or unread, notices with recipients still pending near
    their deadline, and letters a guardian has not read or answered."""
    tasks: list[Task] = []
    pending_ack = inbox_pending_ack_count(actor=actor)
    if pending_ack:
        tasks.append(Task(_("受領の確認を待っている通知が %(n)d 件あります") % {"n": pending_ack},
                          _("通知を開いて「受領しました」を押してください。"), reverse("notices:inbox"), urgent=True))
    unread = inbox_unread_count(actor=actor)
    if unread:
        tasks.append(Task(_("未読の通知が %(n)d 件あります") % {"n": unread}, _("受信した通知の一覧"),
                          reverse("notices:inbox")))
    if actor.has(roles.NOTICES_SEND):
        soon = timezone.localdate() + datetime.timedelta(days=2)
        for row in sent_for(actor=actor, limit=50):
            if row.notice.deadline and row.notice.deadline <= soon and row.pending:
                tasks.append(Task(
                    _("%(title)s: 未確認の送り先が %(n)d あります") % {"title": row.notice.title, "n": row.pending},
                    _("期限 %(date)s。督促できます。") % {"date": row.notice.deadline.strftime("%m/%d")},
                    reverse("notices:notice_detail", args=[row.notice.pk]),
                    urgent=row.notice.deadline <= timezone.localdate(),
                ))
    letters = [r for r in letters_for_guardian(actor=actor, limit=50) if r.unread or r.needs_reply]
    if letters:
        tasks.append(Task(_("学校からのお便りが %(n)d 件あります") % {"n": len(letters)},
                          _("お便りを読んで、必要なものには返信してください。"), reverse("notices:guardian_letters")))
    return tasks
