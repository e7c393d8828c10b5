"""お便り: sending to a class / grade / school, guardians reading their children's letters, consent replies kept as
proof of intent, the sender's read receipts and replies per pupil, and scope."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.utils import timezone

from komu.access.scope import get_actor
from komu.audit.models import AuditEvent
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.notices import selectors
from komu.notices.models import Letter, LetterReply, Notification
from komu.notices.services import letters as svc
from komu.notices.services.attachments import Upload
from komu.notices.tests.helpers import PDF
from komu.security.tests.helpers import raw_value
from komu.testing.world import World


def actor(world: World, name: str) -> Any:
    return get_actor(world.user(name))


def trip_letter(world: World, who: str = "homeroom_a1", **kwargs: Any) -> Letter:
    params: dict[str, Any] = {"title": "遠足の参加について", "body": "12月5日に遠足に行きます。",
                              "audience": Letter.Audience.CLASS, "class_id": world.class_a1.pk,
                              "reply_kind": Letter.ReplyKind.CONSENT}
    params.update(kwargs)
    return svc.letter_send(actor=actor(world, who), data=svc.LetterInput(**params))


def test_homeroom_teacher_sends_to_own_class_and_guardians_are_told(world: World) -> None:
    letter = trip_letter(world, attachments=(Upload("しおり.pdf", PDF),))
    assert set(letter.recipients.values_list("student_id", flat=True)) == {
        world.students["a1_first"].pk, world.students["a1_second"].pk}
    assert AuditEvent.objects.filter(action="notices.letter.sent").count() == 1
    note = Notification.objects.get(user=world.user("guardian_a"))
    assert note.personal and "遠足" in note.title


def test_homeroom_teacher_cannot_write_to_another_class_or_the_whole_school(world: World) -> None:
    with pytest.raises(ValidationFailed):
        trip_letter(world, class_id=world.class_a2.pk)
    with pytest.raises(ValidationFailed):
        trip_letter(world, audience=Letter.Audience.SCHOOL)
    with pytest.raises(PermissionDeniedError):
        trip_letter(world, "teacher_a")
    assert Letter.objects.count() == 0


def test_principal_sends_to_a_grade_or_the_whole_school(world: World) -> None:
    grade = trip_letter(world, "principal_a", audience=Letter.Audience.GRADE, grade_code="P1", class_id=None)
    assert grade.recipients.count() == 3
    whole = trip_letter(world, "principal_a", audience=Letter.Audience.SCHOOL, class_id=None)
    assert whole.audience_label == "全校" and whole.recipients.count() == 3


def test_guardian_reads_and_replies_and_the_reply_is_proof_of_intent(world: World) -> None:
    letter = trip_letter(world)
    guardian = actor(world, "guardian_a")
    rows = selectors.letters_for_guardian(actor=guardian)
    assert [(r.letter.pk, r.unread, r.needs_reply) for r in rows] == [(letter.pk, True, True)]
    svc.letter_mark_read(actor=guardian, letter_id=letter.pk)
    child = world.students["a1_first"]
    reply = svc.letter_reply(actor=guardian, letter_id=letter.pk, student_id=child.pk, choice="agree",
                             comment="酔い止めを持たせます")
    assert reply.login_id == "guardian_a" and len(reply.content_hash) == 64
    assert reply.content_hash == svc.reply_hash(reply)
    assert "酔い止め" not in str(raw_value(LetterReply, reply.pk, "comment"))
    event = AuditEvent.objects.get(action="notices.letter.replied")
    assert event.detail["content_hash"] == reply.content_hash
    # A second reply supersedes the first; both are kept.
    svc.letter_reply(actor=guardian, letter_id=letter.pk, student_id=child.pk, choice="disagree")
    _, status, _files = selectors.letter_status(actor=actor(world, "homeroom_a1"), letter_id=letter.pk)
    mine = next(r for r in status if r.name.startswith("髙橋"))
    assert mine.reply is not None and mine.reply.choice == "disagree" and mine.earlier_replies == 1
    assert mine.read_at is not None
    other = next(r for r in status if r.name.startswith("山﨑"))
    assert other.reply is None and other.read_at is None
    assert AuditEvent.objects.filter(action="notices.letter.status_viewed").count() == 1


def test_reply_validation(world: World) -> None:
    letter = trip_letter(world)
    guardian = actor(world, "guardian_a")
    child = world.students["a1_first"]
    with pytest.raises(ValidationFailed):
        svc.letter_reply(actor=guardian, letter_id=letter.pk, student_id=child.pk, choice="maybe")
    plain = trip_letter(world, reply_kind=Letter.ReplyKind.NONE, title="学級だより")
    with pytest.raises(ValidationFailed):
        svc.letter_reply(actor=guardian, letter_id=plain.pk, student_id=child.pk, choice="agree")
    Letter.objects.filter(pk=letter.pk).update(reply_deadline=timezone.localdate() - datetime.timedelta(days=1))
    with pytest.raises(ValidationFailed):
        svc.letter_reply(actor=guardian, letter_id=letter.pk, student_id=child.pk, choice="agree")
    assert LetterReply.objects.count() == 0


def test_guardian_sees_only_letters_for_their_children(world: World) -> None:
    letter = trip_letter(world)
    other = actor(world, "guardian_b")
    assert selectors.letters_for_guardian(actor=other) == []
    with pytest.raises(NotFoundOrNoAccess):
        selectors.letter_for_guardian(actor=other, letter_id=letter.pk)
    with pytest.raises(NotFoundOrNoAccess):
        svc.letter_reply(actor=other, letter_id=letter.pk, student_id=world.students["b1_first"].pk,
                         choice="agree")
    # Nor for another child of the same letter.
    with pytest.raises(NotFoundOrNoAccess):
        svc.letter_reply(actor=actor(world, "guardian_a"), letter_id=letter.pk,
                         student_id=world.students["a1_second"].pk, choice="agree")


def test_staff_of_another_school_cannot_see_the_status(world: World) -> None:
    letter = trip_letter(world)
    with pytest.raises(NotFoundOrNoAccess):
        selectors.letter_status(actor=actor(world, "principal_b"), letter_id=letter.pk)
    assert selectors.letters_sent_for(actor=actor(world, "principal_a"))[0].total == 2


def test_letter_attachment_is_served_to_guardians_of_recipients_only(world: World) -> None:
    letter = trip_letter(world, attachments=(Upload("しおり.pdf", PDF),))
    attachment = letter.attachments.get()
    _, data = selectors.attachment_download(actor=actor(world, "guardian_a"), attachment_id=attachment.pk)
    assert b"".join(data) == PDF
    with pytest.raises(NotFoundOrNoAccess):
        selectors.attachment_download(actor=actor(world, "guardian_b"), attachment_id=attachment.pk)


def test_board_writes_to_the_guardians_of_its_schools_one_letter_per_school(world: World) -> None:
    letters = svc.letters_send_from_board(actor=actor(world, "board_officer_a"), data=svc.LetterInput(
        title="教育委員会からのお知らせ", audience=Letter.Audience.SCHOOL,
        school_ids=(world.school_a.pk, world.school_a2.pk)))
    # school_a2 has no pupils in the world: only school_a gets a letter.
    assert [(x.school_id, x.via_board_id, x.recipients.count()) for x in letters] == [
        (world.school_a.pk, world.board_a.pk, 3)]
    assert [r.letter.pk for r in selectors.letters_for_guardian(actor=actor(world, "guardian_a"))] == [letters[0].pk]
    # The school follows the letter too; the board sees its own.
    selectors.letter_status(actor=actor(world, "principal_a"), letter_id=letters[0].pk)
    selectors.letter_status(actor=actor(world, "board_officer_a"), letter_id=letters[0].pk)
    with pytest.raises(NotFoundOrNoAccess):
        selectors.letter_status(actor=actor(world, "board_officer_b"), letter_id=letters[0].pk)
    with pytest.raises(ValidationFailed):
        svc.letters_send_from_board(actor=actor(world, "board_officer_a"), data=svc.LetterInput(
            title="x", audience=Letter.Audience.SCHOOL, school_ids=(world.school_b.pk,)))
    with pytest.raises(NotFoundOrNoAccess):
        svc.letters_send_from_board(actor=actor(world, "principal_a"), data=svc.LetterInput(
            title="x", audience=Letter.Audience.SCHOOL, school_ids=(world.school_a.pk,)))
