"""お便り: a school sends a letter to the guardians of a class, a grade or the whole school, optionally asking for a
reply (e.g. consent to a trip instead of a sealed paper slip). Guardians read their children's letters on a phone;
each reply is kept as proof of intent like an absence report (login id, time, content and its hash, address);
the sender sees read receipts and replies per pupil.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from komu.access import roles
from komu.access.scope import Actor, get_in_scope, require
from komu.audit import context as audit_context
from komu.audit.services import Scope, audit_record
from komu.core.codes import GRADES
from komu.core.errors import NotFoundOrNoAccess, ValidationFailed
from komu.directory.models import Board, HomeroomClass, Role, School
from komu.notices.models import Letter, LetterRecipient, LetterReply
from komu.notices.notifications import notify
from komu.notices.services.attachments import Upload, attachments_store, check_uploads
from komu.students.models import ClassMembership, GuardianLink


@dataclass(frozen=True)
class LetterInput:
    title: str
    body: str = ""
    audience: str = Letter.Audience.CLASS
    class_id: int | None = None
    grade_code: str = ""
    reply_kind: str = Letter.ReplyKind.NONE
    reply_deadline: datetime.date | None = None
    attachments: tuple[Upload, ...] = field(default_factory=tuple)
    school_ids: tuple[int, ...] = ()  # a board's letter: the schools whose guardians it goes to


def _current_classes(school_id: int) -> QuerySet[HomeroomClass]:
    today = timezone.localdate()
    return HomeroomClass.objects.filter(
        school_year__school_id=school_id, school_year__start_date__lte=today, school_year__end_date__gte=today,
    ).select_related("school_year")


def sendable_classes(actor: Actor) -> list[HomeroomClass]:
    """Classes the actor may write to: every current class of their school, or a homeroom teacher's own."""
    result: dict[int, HomeroomClass] = {}
    for grant in actor.grants_with(roles.LETTERS_SEND):
        if grant.school_id is None:
            continue
        qs = _current_classes(grant.school_id)
        if grant.role == Role.HOMEROOM_TEACHER:
            if grant.class_id is None:
                continue
            qs = qs.filter(pk=grant.class_id)
        for klass in qs.order_by("grade_code", "sort_order", "name"):
            result[klass.pk] = klass
    return list(result.values())


def _whole_school_ids(actor: Actor) -> set[int]:
    """Schools the actor may write to as a whole (grades, whole school): not a homeroom teacher's grant alone."""
    return {g.school_id for g in actor.grants_with(roles.LETTERS_SEND)
            if g.school_id is not None and g.role != Role.HOMEROOM_TEACHER}


def _audience(actor: Actor, data: LetterInput) -> tuple[School, list[HomeroomClass], str]:
    if data.audience == Letter.Audience.CLASS:
        klass = next((c for c in sendable_classes(actor) if c.pk == data.class_id), None)
        if klass is None:
            raise ValidationFailed(_("送り先の学級を選んでください。"),
                                   errors={"class_id": [_("送り先の学級を選んでください。")]})
        school = School.objects.get(pk=klass.school_year.school_id)
        return school, [klass], f"{GRADES.get(klass.grade_code, '')}{klass.name}"
    school_ids = _whole_school_ids(actor)
    if not school_ids:
        raise ValidationFailed(_("学年・全校へのお便りは校長・副校長（教頭）・事務職員が送ります。"),
                               errors={"audience": [_("学年・全校へのお便りは校長・副校長（教頭）・事務職員が送ります。")]})
    school = School.objects.get(pk=min(school_ids))
    classes = _current_classes(school.pk)
    if data.audience == Letter.Audience.GRADE:
        if data.grade_code not in GRADES:
            raise ValidationFailed(_("送り先の学年を選んでください。"),
                                   errors={"grade_code": [_("送り先の学年を選んでください。")]})
        classes = classes.filter(grade_code=data.grade_code)
        return school, list(classes), _("%(grade)s全体") % {"grade": GRADES[data.grade_code]}
    if data.audience == Letter.Audience.SCHOOL:
        return school, list(classes), _("全校")
    raise ValidationFailed(_("送り先を選んでください。"), errors={"audience": [_("送り先を選んでください。")]})


def _validate(data: LetterInput) -> None:
    errors: dict[str, list[str]] = {}
    if not data.title.strip():
        errors["title"] = [_("件名を入力してください。")]
    elif len(data.title.strip()) > 200:
        errors["title"] = [_("件名は200文字以内で入力してください。")]
    if len(data.body) > 20000:
        errors["body"] = [_("本文は20000文字以内で入力してください。")]
    if data.reply_kind not in Letter.ReplyKind.values:
        errors["reply_kind"] = [_("返信の有無を選んでください。")]
    if data.reply_deadline is not None and data.reply_deadline < timezone.localdate():
        errors["reply_deadline"] = [_("返信の期限には今日以降の日付を入力してください。")]
    if errors:
        raise ValidationFailed(next(iter(errors.values()))[0], errors=errors)


def _create(actor: Actor, school: School, classes: list[HomeroomClass], label: str, data: LetterInput,
            checked: list[Any], *, audience: str, via_board: Board | None = None) -> Letter | None:
    """One letter to the guardians of the pupils of `classes` at one school; None when there is no pupil."""
    memberships = list(
        ClassMembership.objects.filter(homeroom_class__in=classes, student__is_active=True)
        .values_list("student_id", "homeroom_class_id")
    )
    if not memberships:
        return None
    letter = Letter(
        school=school, sent_by=actor.user, sent_at=timezone.now(), title=data.title.strip(), body=data.body.strip(),
        audience=audience, homeroom_class=classes[0] if audience == Letter.Audience.CLASS else None,
        grade_code=data.grade_code if audience == Letter.Audience.GRADE else "", audience_label=label,
        reply_kind=data.reply_kind, reply_deadline=data.reply_deadline, via_board=via_board,
    )
    letter.full_clean()
    letter.save()
    LetterRecipient.objects.bulk_create(
        [LetterRecipient(letter=letter, student_id=sid, homeroom_class_id=cid) for sid, cid in memberships],
        batch_size=1000,
    )
    attachments = attachments_store(checked, letter=letter)
    audit_record(actor=actor.user, action="notices.letter.sent", obj=letter,
                 scope=Scope(school_id=school.pk, board_id=school.board_id),
                 detail={"audience": label, "pupils": len(memberships), "reply_kind": letter.reply_kind,
                         "attachments": [a.sha256 for a in attachments],
                         "via_board": via_board.pk if via_board else None})
    guardians = (
        GuardianLink.objects.filter(student_id__in=[m[0] for m in memberships], guardian__user__isnull=False)
        .select_related("guardian__user")
    )
    title = _("%(school)sからのお便り: %(title)s") % {"school": school.name, "title": letter.title}
    notify(users=[link.guardian.user for link in guardians], title=title, personal=True,
           url=reverse("notices:guardian_letter", args=[letter.pk]), kind="notices.letter")
    return letter


def _no_pupils() -> ValidationFailed:
    message = _("この送り先には児童生徒がいません。送り先を選び直してください。")
    return ValidationFailed(message, errors={"audience": [message]})


@transaction.atomic
def letter_send(*, actor: Actor, data: LetterInput) -> Letter:
    """A school's letter to the guardians of a class, a grade or the whole school."""
    require(actor, roles.LETTERS_SEND)
    _validate(data)
    school, classes, label = _audience(actor, data)
    checked = check_uploads(list(data.attachments))
    letter = _create(actor, school, classes, label, data, checked, audience=data.audience)
    if letter is None:
        raise _no_pupils()
    return letter


def board_ids_for_letters(actor: Actor) -> set[int]:
    return {g.board_id for g in actor.grants_with(roles.LETTERS_SEND)
            if g.role == Role.BOARD_OFFICER and g.board_id is not None}


def board_letter_schools(actor: Actor) -> QuerySet[School]:
    """Schools a board officer may write to the guardians of: the board's own schools."""
    return School.objects.filter(board_id__in=board_ids_for_letters(actor), is_active=True).order_by(
        "school_type", "code")


@transaction.atomic
def letters_send_from_board(*, actor: Actor, data: LetterInput) -> list[Letter]:
    """A board writes to the guardians of its schools: one letter per school (the school's pupils), each naming
    the board, so that every school sees and follows its own."""
    require(actor, roles.LETTERS_SEND)
    board_ids = board_ids_for_letters(actor)
    if not board_ids:
        raise NotFoundOrNoAccess(_("見つかりません。"))
    _validate(data)
    wanted = set(data.school_ids)
    schools = list(board_letter_schools(actor).filter(pk__in=wanted).select_related("board"))
    if not wanted or len(schools) != len(wanted):
        message = _("送り先の学校を選んでください。")
        raise ValidationFailed(message, errors={"school_ids": [message]})
    checked = check_uploads(list(data.attachments))
    letters = []
    for school in schools:
        letter = _create(actor, school, list(_current_classes(school.pk)), _("全校"), data, checked,
                         audience=Letter.Audience.SCHOOL, via_board=school.board)
        if letter is not None:
            letters.append(letter)
    if not letters:
        raise _no_pupils()
    return letters


def letters_sent_scope(actor: Actor) -> Q:
    """Letters the actor may follow: all of their school's (principal, vice-principal, office) or, for a homeroom
    teacher, those to their class and those they sent."""
    q = Q(pk__in=[])
    for grant in actor.grants_with(roles.LETTERS_SEND):
        if grant.role == Role.HOMEROOM_TEACHER:
            q |= Q(homeroom_class_id=grant.class_id) | Q(sent_by_id=actor.user.pk, school_id=grant.school_id)
        elif grant.role == Role.BOARD_OFFICER:
            q |= Q(via_board_id=grant.board_id)
        elif grant.school_id is not None:
            q |= Q(school_id=grant.school_id)
    return q


def guardian_rows(actor: Actor, letter: Letter) -> list[LetterRecipient]:
    return list(
        LetterRecipient.objects.filter(letter=letter, student_id__in=list(actor.child_ids))
        .select_related("student", "homeroom_class").order_by("homeroom_class__grade_code")
    )


@transaction.atomic
def letter_mark_read(*, actor: Actor, letter_id: Any) -> Letter:
    """A guardian opened a letter: the read receipt of each of their children it was sent for."""
    require(actor, roles.LETTERS_READ)
    letter = get_in_scope(
        Letter.objects.filter(recipients__student_id__in=list(actor.child_ids)).distinct(), pk=letter_id,
    )
    now = timezone.now()
    updated = LetterRecipient.objects.filter(
        letter=letter, student_id__in=list(actor.child_ids), read_at__isnull=True,
    ).update(read_at=now, read_by=actor.user)
    if updated:
        audit_record(actor=actor.user, action="notices.letter.read", obj=letter,
                     scope=Scope(school_id=letter.school_id), detail={"pupils": updated})
    return letter


def _client_ip() -> str | None:
    raw = audit_context.current().client_ip
    if not raw:
        return None
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        return None


def reply_hash(reply: LetterReply) -> str:
    payload = {
        "letter": reply.recipient.letter_id, "student": str(reply.recipient.student_id), "choice": reply.choice,
        "comment": reply.comment, "login_id": reply.login_id, "submitted_at": reply.submitted_at.isoformat(),
    }
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


@transaction.atomic
def letter_reply(*, actor: Actor, letter_id: Any, student_id: Any, choice: str, comment: str = "") -> LetterReply:
    """A guardian's reply for one child. A later reply supersedes the earlier one; both are kept."""
    require(actor, roles.LETTERS_READ)
    letter = get_in_scope(
        Letter.objects.filter(recipients__student_id__in=list(actor.child_ids)).distinct(), pk=letter_id,
    )
    recipient = get_in_scope(
        LetterRecipient.objects.filter(letter=letter, student_id__in=list(actor.child_ids)).select_related(
            "student"), student_id=student_id,
    )
    errors: dict[str, list[str]] = {}
    if letter.reply_kind == Letter.ReplyKind.NONE:
        raise ValidationFailed(_("このお便りには返信できません。"))
    if letter.reply_deadline is not None and timezone.localdate() > letter.reply_deadline:
        raise ValidationFailed(_("返信の期限を過ぎています。学校に直接ご連絡ください。"))
    if choice not in LetterReply.Choice.values:
        errors["choice"] = [_("「参加に同意する」か「同意しない」を選んでください。")]
    comment = comment.strip()
    if len(comment) > 1000:
        errors["comment"] = [_("連絡事項は1000文字以内で入力してください。")]
    if errors:
        raise ValidationFailed(next(iter(errors.values()))[0], errors=errors)
    now = timezone.now()
    reply = LetterReply(recipient=recipient, guardian_user=actor.user, login_id=actor.user.get_username(),
                        choice=choice, comment=comment, submitted_at=now, client_ip=_client_ip())
    reply.content_hash = reply_hash(reply)
    reply.full_clean()
    reply.save()
    if recipient.read_at is None:
        recipient.read_at, recipient.read_by = now, actor.user
        recipient.save(update_fields=["read_at", "read_by"])
    audit_record(actor=actor.user, action="notices.letter.replied", obj=reply,
                 scope=Scope(school_id=letter.school_id),
                 detail={"letter": letter.pk, "student": str(recipient.student_id), "choice": choice,
                         "login_id": reply.login_id, "content_hash": reply.content_hash})
    return reply
