"""Unlinking a guardian (保護者) from a pupil: who may, within which scope, never leaving an enrolled pupil without a
guardian, audited with the reason in the same transaction, and the guardian's account losing that pupil — their
absence reports and letters — at once. A guardian with no pupil left keeps their record but not their account."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from komu.access.scope import Actor, forget_actor, get_actor
from komu.attendance.models import GuardianReport
from komu.attendance.selectors import reports as report_selectors
from komu.attendance.services import reports as report_services
from komu.attendance.tests.test_reports_services import at, fever, frozen, school_days
from komu.audit.models import AuditEvent
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.notices import selectors as letter_selectors
from komu.notices.models import Letter
from komu.notices.services import letters as letter_services
from komu.students.models import Guardian, GuardianLink, Student
from komu.students.services import GuardianInput, guardian_add, guardian_unlink
from komu.testing.world import World, make_user

pytestmark = pytest.mark.django_db


def _actor(world: World, name: str) -> Actor:
    user = world.user(name)
    user.refresh_from_db()
    forget_actor(user)
    return get_actor(user)


def _second_guardian(world: World, student_key: str = "a1_first") -> Guardian:
    return guardian_add(
        actor=_actor(world, "principal_a"),
        student_id=world.students[student_key].pk,
        data=GuardianInput(family_name="髙橋", given_name="一郎"),
        relationship="父",
        priority=2,
    )


def _students_of(rows: list[Any]) -> set[Any]:
    return set(
        GuardianReport.objects.filter(pk__in=[r.id for r in rows]).values_list("student_id", flat=True)
    )


def _unlink(
    world: World,
    who: str = "principal_a",
    student_key: str = "a1_first",
    guardian_key: str = "guardian_a",
    reason: str = "親権者の変更（家庭裁判所の審判による）",
) -> Any:
    return guardian_unlink(
        actor=_actor(world, who),
        student_id=world.students[student_key].pk,
        guardian_id=world.guardians[guardian_key].pk,
        reason=reason,
    )


# --- who may, and where ------------------------------------------------------------------------------------------


def test_only_those_who_may_edit_pupils_can_unlink(world: World) -> None:
    _second_guardian(world)
    for who in ("teacher_a", "homeroom_a1", "nurse_a", "guardian_a", "operator"):
        with pytest.raises(PermissionDeniedError):
            _unlink(world, who=who)
    assert GuardianLink.objects.filter(guardian=world.guardians["guardian_a"]).count() == 1
    assert not AuditEvent.objects.filter(action="students.guardian.unlinked").exists()


def test_a_pupil_or_guardian_out_of_scope_is_not_found(world: World) -> None:
    _second_guardian(world, "a1_first")
    # Another school's pupil, from a school principal and from another board's officer.
    with pytest.raises(NotFoundOrNoAccess):
        _unlink(world, student_key="b1_first", guardian_key="guardian_b")
    with pytest.raises(NotFoundOrNoAccess):
        _unlink(world, who="board_officer_b")
    # A guardian of another pupil cannot be unlinked through this pupil, and malformed ids name nothing.
    with pytest.raises(NotFoundOrNoAccess):
        _unlink(world, student_key="a2_first")
    with pytest.raises(NotFoundOrNoAccess):
        guardian_unlink(
            actor=_actor(world, "principal_a"),
            student_id=world.students["a1_first"].pk,
            guardian_id="not-a-uuid",
            reason="誤り",
        )
    assert GuardianLink.objects.filter(guardian=world.guardians["guardian_b"]).exists()
    assert GuardianLink.objects.filter(guardian=world.guardians["guardian_a"]).exists()
    # The board that keeps the school's 学齢簿 may.
    _unlink(world, who="board_officer_a")
    assert not GuardianLink.objects.filter(guardian=world.guardians["guardian_a"]).exists()


def test_a_reason_is_required_and_checked(world: World) -> None:
    _second_guardian(world)
    for reason in ("", "   ", "理由\x00", "あ" * 501):
        with pytest.raises(ValidationFailed) as exc:
            _unlink(world, reason=reason)
        assert list(exc.value.errors) == ["reason"]
    assert GuardianLink.objects.filter(guardian=world.guardians["guardian_a"]).exists()


# --- the last guardian -------------------------------------------------------------------------------------------


def test_the_last_guardian_of_an_enrolled_pupil_is_kept(world: World) -> None:
    with pytest.raises(ValidationFailed) as exc:
        _unlink(world)
    assert "先に新しい保護者" in str(exc.value)
    assert GuardianLink.objects.filter(guardian=world.guardians["guardian_a"]).exists()
    assert world.user("guardian_a").is_active
    assert not AuditEvent.objects.filter(action="students.guardian.unlinked").exists()
    # Once the new guardian is added, the old one can go.
    _second_guardian(world)
    _unlink(world)
    assert list(
        GuardianLink.objects.filter(student=world.students["a1_first"]).values_list("relationship", flat=True)
    ) == ["父"]


def test_the_last_guardian_of_a_pupil_who_has_left_can_be_unlinked(world: World) -> None:
    Student.objects.filter(pk=world.students["a1_first"].pk).update(is_active=False)
    _unlink(world)
    assert not GuardianLink.objects.filter(student=world.students["a1_first"]).exists()


# --- what is kept and recorded -----------------------------------------------------------------------------------


def test_unlinking_is_audited_with_the_reason_and_keeps_the_guardians_record(world: World) -> None:
    _second_guardian(world)
    guardian = world.guardians["guardian_a"]
    result = _unlink(world, reason="  誤って関連付けたため  ")
    assert Guardian.objects.filter(pk=guardian.pk).exists()
    [event] = AuditEvent.objects.filter(action="students.guardian.unlinked")
    assert event.object_id == str(guardian.pk)
    assert event.actor_username == "principal_a"
    assert event.school_id == world.school_a.pk
    assert event.board_id == world.board_a.pk
    assert event.detail == {
        "student_id": str(world.students["a1_first"].pk),
        "relationship": "母",
        "priority": 1,
        "reason": "誤って関連付けたため",
        "account_deactivated": True,
    }
    assert result.account_deactivated


def test_a_guardian_with_no_pupil_left_loses_their_account_but_not_their_record(world: World) -> None:
    _second_guardian(world)
    user = world.user("guardian_a")
    _unlink(world)
    user.refresh_from_db()
    assert not user.is_active
    assert Guardian.objects.get(pk=world.guardians["guardian_a"].pk).user_id == user.pk
    [event] = AuditEvent.objects.filter(action="accounts.user.deactivated")
    assert event.object_id == str(user.pk)
    assert event.detail["cause"] == "students.guardian.unlinked"
    # A deactivated account resolves to no grants at all.
    assert get_actor(user).grants == ()


def test_a_guardian_with_another_child_keeps_their_account(world: World) -> None:
    GuardianLink.objects.create(
        guardian=world.guardians["guardian_a"], student=world.students["a1_second"], relationship="母"
    )
    _second_guardian(world)
    result = _unlink(world)
    assert not result.account_deactivated
    assert world.user("guardian_a").is_active
    assert not AuditEvent.objects.filter(action="accounts.user.deactivated").exists()
    assert _actor(world, "guardian_a").child_ids == {world.students["a1_second"].pk}


def test_a_staff_account_linked_as_guardian_is_never_deactivated(world: World) -> None:
    # Only guardian accounts are switched off: a member of staff who is also a parent keeps their sign-in.
    staff = make_user("staff_parent")
    guardian = Guardian.objects.create(user=staff, family_name="山田", given_name="花子")
    GuardianLink.objects.create(
        guardian=guardian, student=world.students["a1_first"], relationship="母", priority=3
    )
    guardian_unlink(
        actor=_actor(world, "principal_a"),
        student_id=world.students["a1_first"].pk,
        guardian_id=guardian.pk,
        reason="誤って関連付けたため",
    )
    staff.refresh_from_db()
    assert staff.is_active


# --- the account loses the pupil at once -------------------------------------------------------------------------


def test_the_guardian_account_no_longer_reaches_the_pupils_reports_or_letters(world: World) -> None:
    # guardian_a keeps a second child, so the account stays and only a1_first's data must disappear from it.
    GuardianLink.objects.create(
        guardian=world.guardians["guardian_a"], student=world.students["a1_second"], relationship="母"
    )
    _second_guardian(world)
    day = school_days(world)[0]
    with frozen(at(day, 7, 30)):
        report_services.guardian_report_submit(
            actor=_actor(world, "guardian_a"), data=fever(world, day, "a1_first", "a1_second")
        )
    letter = letter_services.letter_send(
        actor=_actor(world, "homeroom_a1"),
        data=letter_services.LetterInput(
            title="遠足の参加について", audience=Letter.Audience.CLASS, class_id=world.class_a1.pk
        ),
    )
    before = _actor(world, "guardian_a")
    with frozen(at(day, 8, 0)):
        seen = _students_of(report_selectors.guardian_report_history(actor=before))
    assert seen == {world.students["a1_first"].pk, world.students["a1_second"].pk}
    _letter, children, _files = letter_selectors.letter_for_guardian(actor=before, letter_id=letter.pk)
    assert len(children) == 2

    _unlink(world)

    after = _actor(world, "guardian_a")
    assert world.students["a1_first"].pk not in after.child_ids
    with frozen(at(day, 8, 0)):
        rows = report_selectors.guardian_report_history(actor=after)
        # The report for a1_first stays in the school's register, but this account can no longer see it.
        assert _students_of(rows) == {world.students["a1_second"].pk}
        [kept] = GuardianReport.objects.filter(student=world.students["a1_first"])
        with pytest.raises(NotFoundOrNoAccess):
            report_selectors.guardian_receipt(actor=after, report_ids=[kept.pk])
        with pytest.raises(NotFoundOrNoAccess):
            report_services.guardian_report_submit(
                actor=after, data=fever(world, school_days(world)[1], "a1_first")
            )
    _letter, children, _files = letter_selectors.letter_for_guardian(actor=after, letter_id=letter.pk)
    assert [c.recipient.student_id for c in children] == [world.students["a1_second"].pk]
    with pytest.raises(NotFoundOrNoAccess):
        letter_services.letter_reply(
            actor=after, letter_id=letter.pk, student_id=world.students["a1_first"].pk, choice="yes"
        )


def test_a_letter_only_for_the_unlinked_pupil_is_not_found(world: World) -> None:
    _second_guardian(world)
    letter = letter_services.letter_send(
        actor=_actor(world, "homeroom_a1"),
        data=letter_services.LetterInput(
            title="遠足の参加について", audience=Letter.Audience.CLASS, class_id=world.class_a1.pk
        ),
    )
    letter_selectors.letter_for_guardian(actor=_actor(world, "guardian_a"), letter_id=letter.pk)
    _unlink(world)
    # The account is now deactivated; even a session resolved before the unlink finds nothing afterwards.
    assert _actor(world, "guardian_a").child_ids == frozenset()
    with pytest.raises(NotFoundOrNoAccess):
        letter_selectors.letter_for_guardian(actor=_actor(world, "guardian_a"), letter_id=letter.pk)


# --- the screen --------------------------------------------------------------------------------------------------


def _url(world: World, student_key: str = "a1_first", guardian_key: str = "guardian_a") -> str:
    return reverse(
        "students:guardian_unlink",
        kwargs={
            "student_id": world.students[student_key].pk,
            "guardian_id": world.guardians[guardian_key].pk,
        },
    )


def test_the_record_offers_unlinking_and_the_form_asks_for_the_reason(signed_in: Any, world: World) -> None:
    _second_guardian(world)
    client = signed_in("principal_a")
    detail = client.get(reverse("students:detail", kwargs={"student_id": world.students["a1_first"].pk}))
    page = detail.content.decode()
    assert _url(world) in page
    assert "関連付けを解除" in page
    form = client.get(_url(world)).content.decode()
    assert "この保護者との関連付けを解除" in form
    assert '<label class="form-field__label" for="id_reason">解除の理由' in form
    assert 'aria-describedby="id_reason_helptext"' in form
    assert "陽子" in form
    # The page says what to do instead when the guardian is the last one, with the way to add the new one.
    assert reverse("students:guardian_add", kwargs={"student_id": world.students["a1_first"].pk}) in form
    # Reading the page records the guardian's name, not the contacts it does not show.
    viewed = AuditEvent.objects.filter(action="students.guardian.viewed").latest("id")
    assert viewed.fields == ["name", "relationship"] and viewed.detail["purpose"] == "unlink"
    # Blank reason: the error sits next to the field and nothing changes.
    response = client.post(_url(world), {"reason": ""})
    assert response.status_code == 200
    assert "解除の理由を入力してください" in response.content.decode()
    assert GuardianLink.objects.filter(guardian=world.guardians["guardian_a"]).exists()


def test_the_only_guardian_of_an_enrolled_pupil_is_not_offered_for_unlinking(signed_in: Any, world: World) -> None:
    client = signed_in("principal_a")
    detail = client.get(reverse("students:detail", kwargs={"student_id": world.students["a1_first"].pk}))
    assert _url(world) not in detail.content.decode()
    # Reached by its address, the page says why and what to do first, with no form to submit.
    page = client.get(_url(world)).content.decode()
    assert "ただ一人の保護者のため、関連付けを解除できません" in page
    assert reverse("students:guardian_add", kwargs={"student_id": world.students["a1_first"].pk}) in page
    assert 'name="reason"' not in page
    # A POST anyway changes nothing.
    response = client.post(_url(world), {"reason": "親権者の変更"})
    assert response.status_code == 200
    assert GuardianLink.objects.filter(guardian=world.guardians["guardian_a"]).exists()
    assert not AuditEvent.objects.filter(action="students.guardian.unlinked").exists()


def test_the_form_unlinks_and_returns_to_the_record(signed_in: Any, world: World) -> None:
    _second_guardian(world)
    client = signed_in("principal_a")
    response = client.post(_url(world), {"reason": "親権者の変更"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse(
        "students:detail", kwargs={"student_id": world.students["a1_first"].pk}
    )
    page = response.content.decode()
    assert "関連付けを解除しました" in page
    assert "保護者用アカウントを無効にしました" in page
    assert not GuardianLink.objects.filter(guardian=world.guardians["guardian_a"]).exists()
    assert AuditEvent.objects.get(action="students.guardian.unlinked").detail["reason"] == "親権者の変更"


def test_the_screen_is_not_found_out_of_scope_or_without_the_capability(signed_in: Any, world: World) -> None:
    client = signed_in("principal_a")
    assert client.get(_url(world, "b1_first", "guardian_b")).status_code == 404
    assert client.post(_url(world, "b1_first", "guardian_b"), {"reason": "x"}).status_code == 404
    assert client.get(_url(world, "a2_first", "guardian_a")).status_code == 404
    client = signed_in("teacher_a")
    assert client.post(_url(world), {"reason": "x"}).status_code == 404
    assert GuardianLink.objects.filter(guardian=world.guardians["guardian_a"]).exists()


def test_the_guardians_open_session_loses_the_pupil_on_its_next_request(world: World) -> None:
    from django.test import Client

    from komu.testing.world import login_verified

    # guardian_a is signed in on their phone, with a second child so the account stays.
    GuardianLink.objects.create(
        guardian=world.guardians["guardian_a"], student=world.students["a1_second"], relationship="母"
    )
    _second_guardian(world)
    only_first = letter_services.letter_send(
        actor=_actor(world, "principal_a"),
        data=letter_services.LetterInput(
            title="面談のご案内", audience=Letter.Audience.CLASS, class_id=world.class_a1.pk
        ),
    )
    only_first.recipients.exclude(student=world.students["a1_first"]).delete()
    phone = Client()
    login_verified(phone, world.user("guardian_a"))
    url = reverse("notices:guardian_letter", kwargs={"letter_id": only_first.pk})
    assert phone.get(url).status_code == 200
    _unlink(world)
    assert phone.get(url).status_code == 404
    # Once the last pupil goes, the account is switched off and the open session ends.
    _second_guardian(world, "a1_second")
    _unlink(world, student_key="a1_second", reason="転居により親権者が変わったため")
    response = phone.get(reverse("notices:guardian_letters"))
    assert response.status_code == 302
    assert "login" in response["Location"]


@pytest.mark.django_db(transaction=True)
def test_two_unlinks_at_once_cannot_leave_an_enrolled_pupil_without_a_guardian(world: World) -> None:
    """Two members of staff each remove one of a pupil's two guardians at the same moment (PostgreSQL row locks;
    SQLite runs one write transaction at a time). The second waits for the first and is then refused."""
    import threading
    import time

    from django.db import connection, transaction

    if connection.vendor != "postgresql":
        pytest.skip("concurrent transactions: PostgreSQL")
    second = _second_guardian(world)
    student_id = world.students["a1_first"].pk
    first_holds_lock, release_first = threading.Event(), threading.Event()
    outcome: dict[str, str] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                _unlink(world, who="principal_a")
                first_holds_lock.set()
                release_first.wait(10)
            outcome["first"] = "unlinked"
        finally:
            first_holds_lock.set()
            connection.close()

    def other() -> None:
        first_holds_lock.wait(10)
        try:
            guardian_unlink(
                actor=_actor(world, "vice_principal_a"),
                student_id=student_id,
                guardian_id=second.pk,
                reason="誤り",
            )
            outcome["second"] = "unlinked"
        except ValidationFailed:
            outcome["second"] = "refused"
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=other)]
    for t in threads:
        t.start()
    first_holds_lock.wait(10)
    time.sleep(0.5)  # let the second reach the pupil's row lock while the first still holds it
    release_first.set()
    for t in threads:
        t.join(20)
    assert outcome == {"first": "unlinked", "second": "refused"}
    assert list(GuardianLink.objects.filter(student_id=student_id).values_list("guardian_id", flat=True)) == [
        second.pk
    ]
