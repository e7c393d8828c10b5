"""通知・事務連絡・依頼: a board sends to its schools (all, a school type, a list) or to the boards below it; a
board that received a notice forwards it to its own schools with the chain kept; a school sends a notice or a
report back to its board. Recipients open (recorded) and acknowledge (受領); the sender reminds those who have
not, by hand or automatically before the deadline.

Every write checks the capability and the sender's or recipient's scope again and is audited in the same
transaction; notifications go through komu.notices.notifications.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from komu.access import roles
from komu.access.scope import Actor, get_in_scope, require
from komu.accounts.models import User
from komu.audit.services import Scope, audit_record
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.directory.models import Board, Role, School, StaffAssignment
from komu.notices.models import Notice, NoticeRecipient
from komu.notices.notifications import notify
from komu.notices.services.attachments import Upload, attachments_store, check_uploads

# Who is told (in-app and e-mail) that a notice arrived: the people who may acknowledge it.
_ACK_SCHOOL_ROLES = (Role.PRINCIPAL, Role.VICE_PRINCIPAL, Role.SCHOOL_ADMIN)


class Audience:
    ALL_SCHOOLS = "all_schools"
    SCHOOL_TYPE = "school_type"
    SCHOOLS = "schools"
    BOARDS = "boards"
    OWN_BOARD = "own_board"


@dataclass(frozen=True)
class Sender:
    """The organisation a person sends as: their board, or their school."""

    board: Board | None = None
    school: School | None = None

    @property
    def label(self) -> str:
        return self.board.name if self.board is not None else self.school.name if self.school is not None else ""

    @property
    def audit_scope(self) -> Scope:
        if self.board is not None:
            return Scope(board_id=self.board.pk)
        assert self.school is not None
        return Scope(school_id=self.school.pk, board_id=self.school.board_id)


@dataclass(frozen=True)
class NoticeInput:
    kind: str
    title: str
    body: str = ""
    audience: str = Audience.ALL_SCHOOLS
    school_type: str = ""
    school_ids: tuple[int, ...] = ()
    board_ids: tuple[int, ...] = ()
    deadline: datetime.date | None = None
    ack_required: bool = False
    attachments: tuple[Upload, ...] = field(default_factory=tuple)


def sender_for(actor: Actor) -> Sender:
    """The organisation this person sends notices as (their first grant with the capability)."""
    for grant in actor.grants_with(roles.NOTICES_SEND):
        if grant.role == Role.BOARD_OFFICER and grant.board_id is not None:
            return Sender(board=Board.objects.get(pk=grant.board_id))
        if grant.school_id is not None:
            return Sender(school=School.objects.select_related("board").get(pk=grant.school_id))
    raise PermissionDeniedError(_("通知を送る権限がありません。"))


def target_schools(sender: Sender) -> Any:
    """Schools a board may address directly: its own (a prefectural board reaches municipal schools through
    their boards)."""
    if sender.board is None:
        return School.objects.none()
    return School.objects.filter(board_id=sender.board.pk, is_active=True).order_by("school_type", "code")


def target_boards(sender: Sender) -> Any:
    if sender.board is None:
        return Board.objects.none()
    return Board.objects.filter(parent_id=sender.board.pk).order_by("code")


def _resolve(sender: Sender, data: NoticeInput) -> tuple[list[int], list[int], str]:
    """(school ids, board ids, audience label) for the chosen audience, every id within the sender's reach."""
    if sender.school is not None:
        if data.audience != Audience.OWN_BOARD:
            raise ValidationFailed(_("学校からは設置者の教育委員会に送ります。"),
                                   errors={"audience": [_("学校からは設置者の教育委員会に送ります。")]})
        return [], [sender.school.board_id], sender.school.board.name
    schools = target_schools(sender)
    if data.audience == Audience.ALL_SCHOOLS:
        ids = list(schools.values_list("pk", flat=True))
        label = _("所管のすべての学校（%(n)d 校）") % {"n": len(ids)}
        return ids, [], label
    if data.audience == Audience.SCHOOL_TYPE:
        ids = list(schools.filter(school_type=data.school_type).values_list("pk", flat=True))
        from komu.core.codes import SCHOOL_TYPES

        label = _("%(type)sすべて（%(n)d 校）") % {"type": SCHOOL_TYPES.get(data.school_type, ""), "n": len(ids)}
        return ids, [], label
    if data.audience == Audience.SCHOOLS:
        wanted = set(data.school_ids)
        ids = list(schools.filter(pk__in=wanted).values_list("pk", flat=True))
        if len(ids) != len(wanted):
            raise ValidationFailed(_("送り先の学校を選び直してください。"),
                                   errors={"school_ids": [_("送り先の学校を選び直してください。")]})
        return ids, [], _("選んだ学校（%(n)d 校）") % {"n": len(ids)}
    if data.audience == Audience.BOARDS:
        boards = target_boards(sender)
        if data.board_ids:
            wanted = set(data.board_ids)
            board_ids = list(boards.filter(pk__in=wanted).values_list("pk", flat=True))
            if len(board_ids) != len(wanted):
                raise ValidationFailed(_("送り先の教育委員会を選び直してください。"),
                                       errors={"board_ids": [_("送り先の教育委員会を選び直してください。")]})
        else:
            board_ids = list(boards.values_list("pk", flat=True))
        return [], board_ids, _("所管の教育委員会（%(n)d）") % {"n": len(board_ids)}
    raise ValidationFailed(_("送り先を選んでください。"), errors={"audience": [_("送り先を選んでください。")]})


def _validate(data: NoticeInput) -> None:
    errors: dict[str, list[str]] = {}
    if data.kind not in Notice.Kind.values:
        errors["kind"] = [_("種別を選んでください。")]
    if not data.title.strip():
        errors["title"] = [_("件名を入力してください。")]
    elif len(data.title.strip()) > 200:
        errors["title"] = [_("件名は200文字以内で入力してください。")]
    if len(data.body) > 20000:
        errors["body"] = [_("本文は20000文字以内で入力してください。")]
    if data.deadline is not None and data.deadline < timezone.localdate():
        errors["deadline"] = [_("期限には今日以降の日付を入力してください。")]
    if errors:
        first = next(iter(errors.values()))[0]
        raise ValidationFailed(first, errors=errors)


def _recipient_users(school_ids: Iterable[int], board_ids: Iterable[int]) -> list[User]:
    today = timezone.localdate()
    school_ids, board_ids = list(school_ids), list(board_ids)
    q = Q(pk__in=[])
    if school_ids:
        q |= Q(school_id__in=school_ids, role__in=_ACK_SCHOOL_ROLES)
    if board_ids:
        q |= Q(board_id__in=board_ids, role=Role.BOARD_OFFICER)
    user_ids = (
        StaffAssignment.objects.filter(q)
        .filter(Q(start_date__isnull=True) | Q(start_date__lte=today))
        .filter(Q(end_date__isnull=True) | Q(end_date__gte=today))
        .values_list("user_id", flat=True)
    )
    return list(User.objects.filter(pk__in=user_ids, is_active=True).only("pk", "is_active"))


def _create(actor: Actor, sender: Sender, data: NoticeInput, school_ids: list[int], board_ids: list[int],
            label: str, forwarded_from: Notice | None = None) -> Notice:
    if not school_ids and not board_ids:
        raise ValidationFailed(_("送り先がありません。送り先を選び直してください。"),
                               errors={"audience": [_("送り先がありません。送り先を選び直してください。")]})
    checked = check_uploads(list(data.attachments))
    now = timezone.now()
    notice = Notice(
        kind=data.kind, title=data.title.strip(), body=data.body.strip(), sender_board=sender.board,
        sender_school=sender.school, sent_by=actor.user, sent_at=now, deadline=data.deadline,
        ack_required=data.ack_required, audience_label=label[:200], forwarded_from=forwarded_from,
    )
    notice.full_clean()
    notice.save()
    rows = [NoticeRecipient(notice=notice, school_id=pk, delivered_at=now) for pk in school_ids]
    rows += [NoticeRecipient(notice=notice, board_id=pk, delivered_at=now) for pk in board_ids]
    NoticeRecipient.objects.bulk_create(rows, batch_size=1000)
    attachments = attachments_store(checked, notice=notice)
    audit_record(actor=actor.user, action="notices.notice.sent", obj=notice, scope=sender.audit_scope,
                 detail={"kind": notice.kind, "schools": len(school_ids), "boards": len(board_ids),
                         "ack_required": notice.ack_required, "attachments": [a.sha256 for a in attachments],
                         "forwarded_from": forwarded_from.pk if forwarded_from else None})
    title = _("%(sender)sから%(kind)s: %(title)s") % {
        "sender": sender.label, "kind": notice.get_kind_display(), "title": notice.title}
    notify(users=_recipient_users(school_ids, board_ids), title=title,
           url=reverse("notices:notice_detail", args=[notice.pk]), kind="notices.notice")
    return notice


@transaction.atomic
def notice_send(*, actor: Actor, data: NoticeInput) -> Notice:
    """Send a notice as the actor's board or school."""
    require(actor, roles.NOTICES_SEND)
    _validate(data)
    sender = sender_for(actor)
    school_ids, board_ids, label = _resolve(sender, data)
    return _create(actor, sender, data, school_ids, board_ids, label)


def own_orgs(actor: Actor, capability: str) -> tuple[set[int], set[int]]:
    """(school ids, board ids) the actor receives notices for with a capability."""
    school_ids: set[int] = set()
    board_ids: set[int] = set()
    for grant in actor.grants_with(capability):
        if grant.role == Role.BOARD_OFFICER and grant.board_id is not None:
            board_ids.add(grant.board_id)
        elif grant.school_id is not None:
            school_ids.add(grant.school_id)
    return school_ids, board_ids


def recipient_row_for(actor: Actor, notice: Notice, capability: str = roles.NOTICES_RECEIVE) -> NoticeRecipient:
    school_ids, board_ids = own_orgs(actor, capability)
    qs = NoticeRecipient.objects.filter(notice=notice).filter(Q(school_id__in=school_ids) | Q(board_id__in=board_ids))
    row = qs.select_related("school", "board").first()
    if row is None:
        raise NotFoundOrNoAccess(_("見つかりません。"))
    return row


def _recipient_scope(row: NoticeRecipient) -> Scope:
    if row.school_id is not None:
        return Scope(school_id=row.school_id, board_id=row.school.board_id if row.school else None)
    return Scope(board_id=row.board_id)


@transaction.atomic
def notice_open(*, actor: Actor, notice_id: Any) -> NoticeRecipient:
    """Record that the actor's school or board opened a notice (the first opening counts)."""
    require(actor, roles.NOTICES_RECEIVE)
    notice = get_in_scope(Notice.objects.all(), pk=notice_id)
    row = recipient_row_for(actor, notice)
    if row.opened_at is None:
        row.opened_at = timezone.now()
        row.opened_by = actor.user
        row.save(update_fields=["opened_at", "opened_by"])
        audit_record(actor=actor.user, action="notices.notice.opened", obj=notice, scope=_recipient_scope(row),
                     detail={"recipient": row.pk})
    return row


@transaction.atomic
def notice_acknowledge(*, actor: Actor, notice_id: Any) -> NoticeRecipient:
    """受領: one click by the principal, vice-principal, school office or board officer."""
    require(actor, roles.NOTICES_RECEIVE)
    notice = get_in_scope(Notice.objects.all(), pk=notice_id)
    recipient_row_for(actor, notice)  # 404 for anyone the notice was not addressed to
    if not actor.has(roles.NOTICES_ACKNOWLEDGE):
        raise PermissionDeniedError(_("受領の確認は校長・副校長（教頭）・事務職員が行います。"))
    row = recipient_row_for(actor, notice, roles.NOTICES_ACKNOWLEDGE)
    row = NoticeRecipient.objects.select_for_update(of=("self",)).select_related("school", "board").get(pk=row.pk)
    if row.acknowledged_at is not None:
        return row
    now = timezone.now()
    row.acknowledged_at = now
    row.acknowledged_by = actor.user
    fields = ["acknowledged_at", "acknowledged_by"]
    if row.opened_at is None:
        row.opened_at, row.opened_by = now, actor.user
        fields += ["opened_at", "opened_by"]
    row.save(update_fields=fields)
    audit_record(actor=actor.user, action="notices.notice.acknowledged", obj=notice, scope=_recipient_scope(row),
                 detail={"recipient": row.pk})
    return row


def sent_scope(actor: Actor) -> Q:
    """Notices the actor's organisations sent (any sender-side staff with NOTICES_SEND)."""
    school_ids, board_ids = own_orgs(actor, roles.NOTICES_SEND)
    return Q(sender_school_id__in=school_ids) | Q(sender_board_id__in=board_ids)


def _pending(notice: Notice) -> Any:
    qs = notice.recipients.all()
    return qs.filter(acknowledged_at__isnull=True) if notice.ack_required else qs.filter(opened_at__isnull=True)


def _remind(actor_user: Any, notice: Notice, rows: list[NoticeRecipient], *, automatic: bool) -> int:
    if not rows:
        return 0
    now = timezone.now()
    for row in rows:
        row.reminded_at = now
        row.reminder_count += 1
    NoticeRecipient.objects.bulk_update(rows, ["reminded_at", "reminder_count"], batch_size=500)
    school_ids = [r.school_id for r in rows if r.school_id is not None]
    board_ids = [r.board_id for r in rows if r.board_id is not None]
    what = _("受領の確認") if notice.ack_required else _("確認")
    title = _("【督促】%(title)s の%(what)sをお願いします") % {"title": notice.title, "what": what}
    if notice.deadline:
        title += _("（期限 %(date)s）") % {"date": notice.deadline.strftime("%m/%d")}
    notify(users=_recipient_users(school_ids, board_ids), title=title,
           url=reverse("notices:notice_detail", args=[notice.pk]), kind="notices.reminder")
    scope = Scope(board_id=notice.sender_board_id) if notice.sender_board_id else Scope(
        school_id=notice.sender_school_id)
    audit_record(actor=actor_user, action="notices.notice.reminded", obj=notice, scope=scope,
                 detail={"recipients": [r.pk for r in rows], "automatic": automatic})
    return len(rows)


@transaction.atomic
def notice_remind(*, actor: Actor, notice_id: Any) -> int:
    """Remind every recipient that has not yet acknowledged (or, without 受領, opened). Returns how many."""
    require(actor, roles.NOTICES_SEND)
    notice = get_in_scope(Notice.objects.filter(sent_scope(actor)), pk=notice_id)
    rows = list(_pending(notice).select_for_update(of=("self",)))
    if not rows:
        raise ValidationFailed(_("督促する相手はいません。すべての送り先が確認済みです。"))
    return _remind(actor.user, notice, rows, automatic=False)


def notices_remind_due(*, days_before: int = 1, today: datetime.date | None = None) -> int:
    """The scheduler's reminder: notices whose deadline falls within `days_before` days (or today), to the
    recipients still pending and not reminded today. Returns how many recipients were reminded."""
    today = today or timezone.localdate()
    start_of_today = timezone.make_aware(datetime.datetime.combine(today, datetime.time.min))
    total = 0
    due = Notice.objects.filter(deadline__gte=today, deadline__lte=today + datetime.timedelta(days=days_before))
    for notice in due:
        with transaction.atomic():
            rows = list(
                _pending(notice).filter(Q(reminded_at__isnull=True) | Q(reminded_at__lt=start_of_today))
                .select_for_update(of=("self",))
            )
            total += _remind(None, notice, rows, automatic=True)
    return total


@transaction.atomic
def notice_forward(*, actor: Actor, notice_id: Any, data: NoticeInput) -> Notice:
    """A board passes a notice it received on to its own schools; the new notice names the one received."""
    require(actor, roles.NOTICES_SEND)
    original = get_in_scope(Notice.objects.all(), pk=notice_id)
    row = recipient_row_for(actor, original)
    if row.board_id is None:
        raise PermissionDeniedError(_("転送できるのは教育委員会が受け取った通知です。"))
    sender = Sender(board=row.board)
    _validate(data)
    school_ids, board_ids, label = _resolve(sender, data)
    forwarded = _create(actor, sender, data, school_ids, board_ids, label, forwarded_from=original)
    # The originals' files travel with the forward (a new encrypted copy bound to the new row).
    from komu.notices.services.attachments import attachment_copy

    for att in original.attachments.all():
        attachment_copy(att, notice=forwarded)
    if row.opened_at is None:
        row.opened_at, row.opened_by = timezone.now(), actor.user
        row.save(update_fields=["opened_at", "opened_by"])
    return forwarded
