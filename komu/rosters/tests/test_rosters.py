"""入学者名簿 end to end: the board sends, the school opens and accepts (pupils awaiting class placement), and
later changes travel as amendments the school takes. Scope answers 404; every step is audited."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from komu.access.scope import Actor, get_actor
from komu.audit.models import AuditEvent
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.directory.models import HomeroomClass, SchoolYear
from komu.rosters.models import GakureiboEntry, Roster, RosterAmendment, RosterEntry
from komu.rosters.records import record_json
from komu.rosters.selectors import rosters as selectors
from komu.rosters.services.gakureibo import (
    EntrantInput,
    gakureibo_entry_create,
    gakureibo_entry_designate,
    gakureibo_entry_status_set,
    gakureibo_entry_update,
)
from komu.rosters.services.rosters import (
    default_deadline,
    roster_accept,
    roster_amendment_accept,
    roster_amendments_record,
    roster_open,
    roster_send,
)
from komu.students.models import (
    ClassMembership,
    EnrollmentEvent,
    EnrollmentKind,
    GuardianLink,
    SpecialNeedsPlacement,
    Student,
)
from komu.students.services import membership_assign
from komu.testing.world import World

pytestmark = pytest.mark.django_db

YEAR = 2027

KANJI = [("髙橋", "𠮷乃", "タカハシ", "ヨシノ"), ("山﨑", "葛󠄀太", "ヤマザキ", "カツタ"), ("佐藤", "花", "サトウ", "ハナ")]


def entrant(n: int, **changes: Any) -> EntrantInput:
    family, given, family_kana, given_kana = KANJI[n % len(KANJI)]
    base = EntrantInput(
        person_id=f"9000{n}", family_name=family, given_name=given, family_name_kana=family_kana,
        given_name_kana=given_kana, sex="male" if n % 2 else "female", birth_date=datetime.date(2020, 5, n + 1),
        address=f"みどり市中央{n}-1", guardian_family_name=family, guardian_given_name="保子",
        guardian_family_name_kana=family_kana, guardian_given_name_kana="ヤスコ", guardian_relationship="母",
        guardian_phone="090-0000-000" + str(n), guardian_email=f"g{n}@example.jp",
    )
    return dataclasses.replace(base, **changes)


def make_entries(world: World, count: int = 3, school: int | None = None) -> list[GakureiboEntry]:
    actor = get_actor(world.user("board_officer_a"))
    return [
        gakureibo_entry_create(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR, data=entrant(n),
                               designated_school_id=school if school is not None else world.school_a.pk)
        for n in range(count)
    ]


def officer(world: World) -> Actor:
    return get_actor(world.user("board_officer_a"))


def test_sending_creates_one_roster_per_school_with_a_snapshot_per_child(world: World) -> None:
    make_entries(world, 3)
    result = roster_send(actor=officer(world), board_id=world.board_a.pk, fiscal_year=YEAR)
    assert (result.rosters_created, result.entries_sent, result.amendments) == (1, 3, 0)
    roster = Roster.objects.get(school=world.school_a, fiscal_year=YEAR)
    assert roster.status == Roster.Status.SENT and roster.deadline == datetime.date(2027, 1, 31)
    assert default_deadline(YEAR) == datetime.date(2027, 1, 31)
    assert roster.entries.count() == 3
    assert AuditEvent.objects.filter(action="rosters.roster.sent", object_id=str(roster.pk)).exists()


def test_sending_without_designated_children_is_refused(world: World) -> None:
    actor = get_actor(world.user("board_officer_a"))
    gakureibo_entry_create(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR, data=entrant(0))
    with pytest.raises(ValidationFailed):
        roster_send(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR)
    assert not Roster.objects.exists()


def test_school_opens_and_accepts_pupils_await_placement_with_kanji_preserved(world: World) -> None:
    make_entries(world, 3)
    roster_send(actor=officer(world), board_id=world.board_a.pk, fiscal_year=YEAR)
    roster = Roster.objects.get(school=world.school_a)
    admin = get_actor(world.user("school_admin_a"))
    roster_open(actor=admin, roster_id=roster.pk)
    roster_open(actor=get_actor(world.user("principal_a")), roster_id=roster.pk)
    roster.refresh_from_db()
    assert roster.status == Roster.Status.OPENED and roster.opened_by == world.user("school_admin_a")
    assert AuditEvent.objects.filter(action="rosters.roster.opened").count() == 1

    before = Student.objects.count()
    result = roster_accept(actor=admin, roster_id=roster.pk)
    assert (result.pupils, result.guardians, result.already_accepted) == (3, 3, False)
    created = Student.objects.filter(pending_year=YEAR)
    assert Student.objects.count() == before + 3 and created.count() == 3
    names = {(s.family_name, s.given_name, s.family_name_kana) for s in created}
    assert names == {(f, g, k) for f, g, k, _ in KANJI}
    for pupil in created:
        assert pupil.school_id == world.school_a.pk and pupil.pending_grade_code == "P1" and pupil.is_active
        event = EnrollmentEvent.objects.get(student=pupil)
        assert (event.kind, event.date, event.grade_code) == (EnrollmentKind.ADMISSION, datetime.date(2027, 4, 1),
                                                              "P1")
        link = GuardianLink.objects.select_related("guardian").get(student=pupil)
        assert link.relationship == "母" and link.guardian.email.endswith("@example.jp")
    roster.refresh_from_db()
    assert roster.status == Roster.Status.ACCEPTED and roster.accepted_at is not None
    assert set(roster.entries.values_list("state", flat=True)) == {RosterEntry.State.ACCEPTED}
    assert AuditEvent.objects.filter(action="rosters.roster.accepted", object_id=str(roster.pk)).exists()
    assert AuditEvent.objects.filter(action="students.entrant.admitted").count() == 3

    # Accepting twice does nothing.
    again = roster_accept(actor=admin, roster_id=roster.pk)
    assert again.already_accepted and Student.objects.filter(pending_year=YEAR).count() == 3


def test_accept_is_all_or_nothing_when_a_row_lacks_kana(world: World) -> None:
    actor = get_actor(world.user("board_officer_a"))
    make_entries(world, 2)
    gakureibo_entry_create(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR,
                           data=entrant(5, family_name_kana="", given_name_kana=""),
                           designated_school_id=world.school_a.pk)
    roster_send(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR)
    roster = Roster.objects.get(school=world.school_a)
    with pytest.raises(ValidationFailed) as caught:
        roster_accept(actor=get_actor(world.user("school_admin_a")), roster_id=roster.pk)
    assert "ふりがな" in " ".join(caught.value.errors["entries"])
    assert not Student.objects.filter(pending_year=YEAR).exists()
    roster.refresh_from_db()
    assert roster.status == Roster.Status.SENT


def test_special_needs_placement_travels_to_the_pupil(world: World) -> None:
    actor = get_actor(world.user("board_officer_a"))
    entry = make_entries(world, 1)[0]
    gakureibo_entry_designate(actor=actor, entry_id=entry.pk, school_id=world.school_a.pk, special_needs=True)
    roster_send(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR)
    roster_accept(actor=get_actor(world.user("principal_a")), roster_id=Roster.objects.get().pk)
    pupil = Student.objects.get(pending_year=YEAR)
    assert pupil.special_needs_placement == SpecialNeedsPlacement.SPECIAL_NEEDS_CLASS


def test_scope_another_school_and_another_board_get_not_found(world: World) -> None:
    make_entries(world, 1)
    roster_send(actor=officer(world), board_id=world.board_a.pk, fiscal_year=YEAR)
    roster = Roster.objects.get()
    with pytest.raises(NotFoundOrNoAccess):
        roster_open(actor=get_actor(world.user("principal_b")), roster_id=roster.pk)
    with pytest.raises(NotFoundOrNoAccess):
        roster_accept(actor=get_actor(world.user("principal_b")), roster_id=roster.pk)
    with pytest.raises(NotFoundOrNoAccess):
        roster_send(actor=get_actor(world.user("board_officer_b")), board_id=world.board_a.pk, fiscal_year=YEAR)
    with pytest.raises(PermissionDeniedError):
        roster_accept(actor=get_actor(world.user("teacher_a")), roster_id=roster.pk)
    assert not Student.objects.filter(pending_year=YEAR).exists()


def test_change_before_acceptance_updates_the_row_the_school_will_accept(world: World) -> None:
    actor = get_actor(world.user("board_officer_a"))
    entry = make_entries(world, 2)[0]
    roster_send(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR)
    gakureibo_entry_update(actor=actor, entry_id=entry.pk, data=entrant(0, address="みどり市北5-5"), reason="転居")
    amendment = RosterAmendment.objects.get()
    assert amendment.kind == RosterAmendment.Kind.CHANGED
    assert amendment.changes == {"address": ["みどり市中央0-1", "みどり市北5-5"]}
    # A second correction before the school acts keeps one pending change, brought up to date.
    gakureibo_entry_update(actor=actor, entry_id=entry.pk, data=entrant(0, address="みどり市北6-6"))
    amendment = RosterAmendment.objects.get()
    assert amendment.changes == {"address": ["みどり市中央0-1", "みどり市北6-6"]}
    admin = get_actor(world.user("school_admin_a"))
    roster_amendment_accept(actor=admin, amendment_id=amendment.pk)
    roster_accept(actor=admin, roster_id=amendment.roster_id)
    assert "みどり市北6-6" in {s.address for s in Student.objects.filter(pending_year=YEAR)}


def test_change_after_acceptance_updates_pupil_and_guardian(world: World) -> None:
    actor = get_actor(world.user("board_officer_a"))
    entry = make_entries(world, 1)[0]
    roster_send(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR)
    admin = get_actor(world.user("school_admin_a"))
    roster_accept(actor=admin, roster_id=Roster.objects.get().pk)
    gakureibo_entry_update(actor=actor, entry_id=entry.pk,
                           data=entrant(0, given_name_kana="ヨシノブ", guardian_phone="03-1111-2222"))
    amendment = RosterAmendment.objects.get()
    assert set(amendment.changes) == {"given_name_kana", "guardian_phone"}
    roster_amendment_accept(actor=admin, amendment_id=amendment.pk)
    roster_amendment_accept(actor=admin, amendment_id=amendment.pk)  # twice: nothing more
    pupil = Student.objects.get(pending_year=YEAR)
    assert pupil.given_name_kana == "ヨシノブ" and pupil.given_name == "𠮷乃"
    assert GuardianLink.objects.get(student=pupil).guardian.phone == "03-1111-2222"
    assert AuditEvent.objects.filter(action="rosters.amendment.accepted").count() == 1
    assert RosterEntry.objects.get().data["given_name_kana"] == "ヨシノブ"


def test_moving_a_child_to_another_school_removes_and_adds(world: World) -> None:
    actor = get_actor(world.user("board_officer_a"))
    entry = make_entries(world, 1)[0]
    other = gakureibo_entry_create(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR, data=entrant(7),
                                   designated_school_id=world.school_b.pk)
    roster_send(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR)
    assert Roster.objects.count() == 2 and GakureiboEntry.objects.get(pk=other.pk).out_of_district
    admin = get_actor(world.user("school_admin_a"))
    roster_accept(actor=admin, roster_id=Roster.objects.get(school=world.school_a).pk)
    pupil = Student.objects.get(school=world.school_a, pending_year=YEAR)

    gakureibo_entry_designate(actor=actor, entry_id=entry.pk, school_id=world.school_b.pk)
    removed = RosterAmendment.objects.get(kind=RosterAmendment.Kind.REMOVED)
    added = RosterAmendment.objects.get(kind=RosterAmendment.Kind.ADDED)
    assert removed.roster.school_id == world.school_a.pk and added.roster.school_id == world.school_b.pk

    roster_amendment_accept(actor=admin, amendment_id=removed.pk)
    pupil.refresh_from_db()
    assert not pupil.is_active and pupil.pending_year is None
    assert not EnrollmentEvent.objects.filter(student=pupil).exists()
    assert RosterEntry.objects.get(pk=removed.roster_entry_id).state == RosterEntry.State.WITHDRAWN
    # School B has not accepted yet: accepting its roster takes the added child too.
    principal_b = get_actor(world.user("principal_b"))
    result = roster_accept(actor=principal_b, roster_id=added.roster_id)
    assert result.pupils == 2
    added.refresh_from_db()
    assert added.accepted_at is not None
    with pytest.raises(NotFoundOrNoAccess):
        roster_amendment_accept(actor=principal_b, amendment_id=removed.pk)


def test_moved_out_child_is_not_created_when_the_removal_is_pending(world: World) -> None:
    actor = get_actor(world.user("board_officer_a"))
    entries = make_entries(world, 2)
    roster_send(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR)
    gakureibo_entry_status_set(actor=actor, entry_id=entries[1].pk, status=GakureiboEntry.Status.MOVED_OUT)
    result = roster_accept(actor=get_actor(world.user("school_admin_a")), roster_id=Roster.objects.get().pk)
    assert (result.pupils, result.skipped_removed) == (1, 1)


def test_resending_records_amendments_not_a_new_roster(world: World) -> None:
    actor = get_actor(world.user("board_officer_a"))
    make_entries(world, 1)
    roster_send(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR)
    roster = Roster.objects.get()
    # An entry designated before sending but created straight into the register while the roster is out.
    gakureibo_entry_create(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR, data=entrant(4),
                           designated_school_id=world.school_a.pk)
    assert RosterAmendment.objects.filter(kind=RosterAmendment.Kind.ADDED).count() == 1
    result = roster_send(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR,
                         school_ids=[world.school_a.pk])
    assert (result.rosters_created, result.rosters_amended, result.amendments) == (0, 1, 0)
    assert Roster.objects.get() == roster and roster.entries.count() == 2


def test_amendments_record_for_the_import_pipeline(world: World) -> None:
    actor = get_actor(world.user("board_officer_a"))
    entries = make_entries(world, 2)
    roster_send(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR)
    # The import pipeline rewrites the record itself and then asks for the amendments.
    target = GakureiboEntry.objects.get(pk=entries[0].pk)
    data = target.data
    data["note"] = "双子"
    target.record = record_json(data)
    target.save()
    assert roster_amendments_record(actor=actor, entry_ids=[e.pk for e in entries], reason="再取込") == 1
    amendment = RosterAmendment.objects.get()
    assert amendment.changes == {"note": ["", "双子"]} and amendment.reason == "再取込"
    assert AuditEvent.objects.filter(action="rosters.amendment.recorded").count() == 1
    # Nothing changed since: no new amendment.
    assert roster_amendments_record(actor=actor, entry_ids=[e.pk for e in entries], reason="再取込") == 0
    with pytest.raises(NotFoundOrNoAccess):
        roster_amendments_record(actor=get_actor(world.user("board_officer_b")), entry_ids=[entries[0].pk],
                                 reason="x")


# --- Screens ------------------------------------------------------------------------------------------------------

def test_send_screen_confirms_then_sends_and_status_shows_the_school(world: World, signed_in: Any) -> None:
    make_entries(world, 2)
    client = signed_in("board_officer_a")
    url = reverse("rosters:board_send") + f"?year={YEAR}"
    page = client.get(url)
    assert page.status_code == 200 and world.school_a.name in page.content.decode()
    confirm = client.post(url, {"schools": [world.school_a.pk], "deadline": "令和9年1月31日", "year": YEAR})
    assert confirm.status_code == 200 and "送付内容の確認" in confirm.content.decode()
    assert not Roster.objects.exists()
    sent = client.post(url, {"schools": [world.school_a.pk], "deadline": "2027-01-31", "confirm": "1",
                             "year": YEAR})
    assert sent.status_code == 302
    assert Roster.objects.get().deadline == datetime.date(2027, 1, 31)
    status = client.get(reverse("rosters:board_status"), {"year": YEAR})
    html = status.content.decode()
    assert status.status_code == 200 and world.school_a.name in html and "未開封" in html and "令和" in html


def test_school_inbox_roster_accept_and_amendment_screens(world: World, signed_in: Any) -> None:
    actor = get_actor(world.user("board_officer_a"))
    entry = make_entries(world, 2)[0]
    gakureibo_entry_create(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR,
                           data=entrant(2, family_name="\ue000田"), designated_school_id=world.school_a.pk)
    roster_send(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR)
    roster = Roster.objects.get()
    client = signed_in("school_admin_a")
    inbox = client.get(reverse("rosters:school_inbox"))
    assert inbox.status_code == 200 and "未開封 1 件" in inbox.content.decode()
    detail = client.get(reverse("rosters:school_roster", args=[roster.pk]))
    html = detail.content.decode()
    assert detail.status_code == 200 and "髙橋" in html and "外字" in html
    roster.refresh_from_db()
    assert roster.opened_at is not None
    assert AuditEvent.objects.filter(action="rosters.roster.viewed").exists()
    confirm = client.get(reverse("rosters:school_roster_accept", args=[roster.pk]))
    assert "児童 3 名" in confirm.content.decode() and "保護者 3 名" in confirm.content.decode()
    accepted = client.post(reverse("rosters:school_roster_accept", args=[roster.pk]))
    assert accepted.status_code == 302
    assert Student.objects.filter(pending_year=YEAR, school=world.school_a).count() == 3

    gakureibo_entry_update(actor=actor, entry_id=entry.pk, data=entrant(0, address="みどり市南9-9"), reason="転居")
    amendment = RosterAmendment.objects.get()
    shown = client.get(reverse("rosters:school_roster", args=[roster.pk])).content.decode()
    assert "反映する" in shown and "みどり市中央0-1" in shown and "みどり市南9-9" in shown and "住所" in shown
    taken = client.post(reverse("rosters:school_amendment_accept", args=[amendment.pk]))
    assert taken.status_code == 302
    assert "みどり市南9-9" in {s.address for s in Student.objects.filter(pending_year=YEAR)}


def test_school_screens_are_not_found_for_another_school(world: World, signed_in: Any) -> None:
    make_entries(world, 1)
    roster_send(actor=officer(world), board_id=world.board_a.pk, fiscal_year=YEAR)
    roster = Roster.objects.get()
    client = signed_in("principal_b")
    assert client.get(reverse("rosters:school_roster", args=[roster.pk])).status_code == 404
    assert client.post(reverse("rosters:school_roster_accept", args=[roster.pk])).status_code == 404
    assert world.school_a.name not in client.get(reverse("rosters:school_inbox")).content.decode()
    assert signed_in("teacher_a").get(reverse("rosters:school_inbox")).status_code == 404
    roster.refresh_from_db()
    assert roster.opened_at is None and roster.status == Roster.Status.SENT


def test_home_page_counts_for_the_board_and_the_school(world: World) -> None:
    actor = get_actor(world.user("board_officer_a"))
    make_entries(world, 2)
    gakureibo_entry_create(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR, data=entrant(5))
    todo = selectors.gakureibo_todo(actor=actor, fiscal_year=YEAR)
    assert (todo.undesignated, todo.unsent_schools, todo.pending_amendments) == (1, 1, 0)
    admin = get_actor(world.user("school_admin_a"))
    assert selectors.school_inbox_todo_count(actor=admin) == 0
    roster_send(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR)
    assert selectors.gakureibo_todo(actor=actor, fiscal_year=YEAR).unsent_schools == 0
    assert selectors.school_inbox_todo_count(actor=admin) == 1
    assert selectors.school_inbox_todo_count(actor=get_actor(world.user("principal_b"))) == 0
    assert selectors.gakureibo_todo(actor=admin, fiscal_year=YEAR).total == 0


def _queries(client: Any, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


def test_list_pages_do_not_query_per_row(world: World, signed_in: Any) -> None:
    """One client signs in as each persona in turn: the board's register page and the school's roster page
    cost the same number of queries for 2 children as for 7."""
    actor = get_actor(world.user("board_officer_a"))
    make_entries(world, 2)
    roster_send(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR)
    roster = Roster.objects.get()
    entries_url = reverse("rosters:board_entries") + f"?year={YEAR}"
    roster_url = reverse("rosters:school_roster", args=[roster.pk])
    signed_in("school_admin_a").get(roster_url)  # the first opening writes 開封 once

    def measure() -> tuple[int, int]:
        return (_queries(signed_in("board_officer_a"), entries_url),
                _queries(signed_in("school_admin_a"), roster_url))

    few = measure()
    for n in range(3, 8):
        gakureibo_entry_create(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR,
                               data=entrant(n, person_id=f"8000{n}"), designated_school_id=world.school_a.pk)
    assert RosterEntry.objects.count() == 7
    assert measure() == few


def test_a_child_moved_away_and_back_before_the_schools_act_leaves_nothing_pending(world: World) -> None:
    actor = get_actor(world.user("board_officer_a"))
    entry = make_entries(world, 1)[0]
    gakureibo_entry_create(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR, data=entrant(7),
                           designated_school_id=world.school_b.pk)
    roster_send(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR)
    gakureibo_entry_designate(actor=actor, entry_id=entry.pk, school_id=world.school_b.pk)
    assert RosterAmendment.objects.count() == 2  # removed at A, added at B
    gakureibo_entry_designate(actor=actor, entry_id=entry.pk, school_id=world.school_a.pk)
    assert not RosterAmendment.objects.filter(accepted_at__isnull=True).exists()
    assert RosterEntry.objects.get(roster__school=world.school_b, entry=entry).state == RosterEntry.State.WITHDRAWN
    assert RosterEntry.objects.get(roster__school=world.school_a, entry=entry).state == RosterEntry.State.SENT
    assert AuditEvent.objects.filter(action="rosters.amendment.withdrawn").count() == 2


def test_a_deadline_after_the_entry_date_is_refused(world: World, signed_in: Any) -> None:
    make_entries(world, 1)
    with pytest.raises(ValidationFailed) as caught:
        roster_send(actor=officer(world), board_id=world.board_a.pk, fiscal_year=YEAR,
                    deadline=datetime.date(2027, 4, 1))
    assert "deadline" in caught.value.errors and not Roster.objects.exists()
    client = signed_in("board_officer_a")
    page = client.post(reverse("rosters:board_send") + f"?year={YEAR}",
                       {"schools": [world.school_a.pk], "deadline": "2027-05-01", "year": YEAR})
    assert page.status_code == 200 and "通知期限は入学の前年度の中" in page.content.decode()
    assert not Roster.objects.exists()


def test_entry_date_is_the_admission_date_and_a_removal_undoes_a_placement(world: World) -> None:
    actor = get_actor(world.user("board_officer_a"))
    entry = gakureibo_entry_create(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR,
                                   data=entrant(0, entry_date=datetime.date(2027, 4, 6)),
                                   designated_school_id=world.school_a.pk)
    roster_send(actor=actor, board_id=world.board_a.pk, fiscal_year=YEAR)
    admin = get_actor(world.user("school_admin_a"))
    roster_accept(actor=admin, roster_id=Roster.objects.get().pk)
    pupil = Student.objects.get(pending_year=YEAR)
    assert EnrollmentEvent.objects.get(student=pupil).date == datetime.date(2027, 4, 6)
    next_year = SchoolYear.objects.create(school=world.school_a, year=YEAR, start_date=datetime.date(2027, 4, 1),
                                          end_date=datetime.date(2028, 3, 31))
    klass = HomeroomClass.objects.create(school_year=next_year, grade_code="P1", name="1組")
    membership_assign(actor=admin, student=pupil, homeroom_class=klass, shusseki_no=1)

    gakureibo_entry_status_set(actor=actor, entry_id=entry.pk, status=GakureiboEntry.Status.DEFERRED,
                               reason="就学猶予の決定")
    removal = RosterAmendment.objects.get(kind=RosterAmendment.Kind.REMOVED)
    assert removal.reason == "就学猶予の決定"
    roster_amendment_accept(actor=admin, amendment_id=removal.pk)
    pupil.refresh_from_db()
    assert not pupil.is_active and not ClassMembership.objects.filter(student=pupil).exists()
    assert AuditEvent.objects.filter(action="students.entrant.admission_cancelled").exists()


def _accepted_with_entry_date(world: World, day: datetime.date) -> tuple[GakureiboEntry, Student, Actor]:
    entry = gakureibo_entry_create(actor=officer(world), board_id=world.board_a.pk, fiscal_year=YEAR,
                                   data=entrant(0, entry_date=day), designated_school_id=world.school_a.pk)
    roster_send(actor=officer(world), board_id=world.board_a.pk, fiscal_year=YEAR)
    admin = get_actor(world.user("school_admin_a"))
    roster_accept(actor=admin, roster_id=Roster.objects.get().pk)
    return entry, Student.objects.get(pending_year=YEAR), admin


def test_a_changed_entry_date_moves_the_admission_event_once(world: World) -> None:
    entry, pupil, admin = _accepted_with_entry_date(world, datetime.date(2027, 4, 6))
    gakureibo_entry_update(actor=officer(world), entry_id=entry.pk,
                           data=entrant(0, entry_date=datetime.date(2027, 4, 8)), reason="入学式の日程変更")
    amendment = RosterAmendment.objects.get()
    assert amendment.changes == {"entry_date": ["2027-04-06", "2027-04-08"]}
    roster_amendment_accept(actor=admin, amendment_id=amendment.pk)
    roster_amendment_accept(actor=admin, amendment_id=amendment.pk)  # again: nothing more
    event = EnrollmentEvent.objects.get(student=pupil)
    assert event.kind == EnrollmentKind.ADMISSION and event.date == datetime.date(2027, 4, 8)
    moved = AuditEvent.objects.get(action="students.enrollment_event.redated")
    assert (moved.detail["old"], moved.detail["new"]) == ("2027-04-06", "2027-04-08")
    assert moved.detail["reason"] == "入学式の日程変更"
    amendment.refresh_from_db()
    assert amendment.problems == {} and RosterEntry.objects.get().data["entry_date"] == "2027-04-08"
    # The board clears the date: the 入学 falls back to the first day of the 年度, as at acceptance.
    gakureibo_entry_update(actor=officer(world), entry_id=entry.pk, data=entrant(0))
    roster_amendment_accept(actor=admin, amendment_id=RosterAmendment.objects.get(accepted_at__isnull=True).pk)
    assert EnrollmentEvent.objects.get(student=pupil).date == datetime.date(2027, 4, 1)
    assert AuditEvent.objects.filter(action="students.enrollment_event.redated").count() == 2


def test_a_changed_entry_date_after_the_year_began_is_left_for_the_school(
    world: World, signed_in: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry, pupil, admin = _accepted_with_entry_date(world, datetime.date(2027, 4, 6))
    gakureibo_entry_update(actor=officer(world), entry_id=entry.pk,
                           data=entrant(0, entry_date=datetime.date(2027, 4, 8), address="みどり市北5-5"))
    amendment = RosterAmendment.objects.get()
    monkeypatch.setattr(timezone, "localdate", lambda *args, **kwargs: datetime.date(2027, 4, 2))
    client = signed_in("school_admin_a")
    page = client.post(reverse("rosters:school_amendment_accept", kwargs={"amendment_id": amendment.pk}),
                       {"roster": amendment.roster_id}, follow=True)
    text = page.content.decode()
    assert "次の項目は反映できませんでした" in text and "入学予定日" in text
    assert "2027年度はすでに始まっているため" in text
    # The roster page keeps listing it for the school to handle by hand.
    page = client.get(reverse("rosters:school_roster", kwargs={"roster_id": amendment.roster_id}))
    listed = page.content.decode().split("反映できなかった変更（学校での対応が必要）")[1].split("</section>")[0]
    assert "髙橋 𠮷乃" in listed and "入学予定日：" in listed and "2027年度はすでに始まっているため" in listed
    # The rest of the change is taken; the 入学 stays as recorded and the refusal is kept on the amendment.
    pupil.refresh_from_db()
    assert pupil.address == "みどり市北5-5"
    assert EnrollmentEvent.objects.get(student=pupil).date == datetime.date(2027, 4, 6)
    amendment.refresh_from_db()
    assert amendment.accepted_at is not None and set(amendment.problems) == {"entry_date"}
    assert not AuditEvent.objects.filter(action="students.enrollment_event.redated").exists()
    assert AuditEvent.objects.get(action="rosters.amendment.accepted").detail["not_applied"] == ["entry_date"]
    # Applying it again changes nothing.
    roster_amendment_accept(actor=admin, amendment_id=amendment.pk)
    assert AuditEvent.objects.filter(action="rosters.amendment.accepted").count() == 1

    # The school handles it by hand and says how; without a note nothing changes and the message says what to write.
    resolve = reverse("rosters:school_amendment_unapplied_resolve", kwargs={"amendment_id": amendment.pk})
    roster_page = reverse("rosters:school_roster", kwargs={"roster_id": amendment.roster_id})
    assert "どう対応したか" in client.get(roster_page).content.decode()
    page = client.post(resolve, {"roster": amendment.roster_id, "note": "  "}, follow=True)
    assert "どう対応したかを入力してください" in page.content.decode()
    amendment.refresh_from_db()
    assert amendment.not_applied_resolved_at is None
    page = client.post(resolve, {"roster": amendment.roster_id, "note": "学籍の異動（入学日の訂正）として記録した"},
                       follow=True)
    assert page.redirect_chain[-1][0] == roster_page and "対応済みにしました" in page.content.decode()
    assert "反映できなかった変更（学校での対応が必要）" not in page.content.decode()
    amendment.refresh_from_db()
    assert amendment.not_applied_resolved_at is not None and amendment.not_applied_resolved_by is not None
    assert amendment.not_applied_note == "学籍の異動（入学日の訂正）として記録した"
    event = AuditEvent.objects.get(action="rosters.amendment.unapplied_resolved")
    assert event.fields == ["entry_date"] and event.detail["note"] == amendment.not_applied_note
    # Twice does nothing; another school's staff cannot reach it.
    client.post(resolve, {"roster": amendment.roster_id, "note": "再度"})
    assert AuditEvent.objects.filter(action="rosters.amendment.unapplied_resolved").count() == 1
    assert signed_in("principal_b").post(resolve, {"note": "x"}).status_code == 404
