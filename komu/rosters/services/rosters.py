"""入学者名簿: the board sends each school its roster, the school opens and accepts it, and later changes travel as
amendments (変更・追加・取消) to the roster already sent. Every write is atomic and audited.

What the school "has" for a child is ``RosterEntry.record`` (and its two flags): the snapshot as sent, updated
each time the school accepts an amendment. An amendment is the difference between that and the board's current
学齢簿 entry; one pending (not yet accepted) change per roster entry is kept up to date rather than stacked, so
accepting it always brings the school to the board's current state.
"""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.audit.services import Scope, audit_record
from komu.core.errors import NotFoundOrNoAccess, ValidationFailed
from komu.core.text import TextError, check_name, reject_control_chars
from komu.core.wareki import fiscal_year_bounds
from komu.rosters.models import RECORD_KEYS, GakureiboEntry, Roster, RosterAmendment, RosterEntry
from komu.rosters.records import RECORD_LABELS, record_diff, record_json
from komu.students.models import (
    EnrollmentEvent,
    EnrollmentKind,
    GuardianLink,
    Sex,
    SpecialNeedsPlacement,
    Student,
)
from komu.students.services import (
    EntrantAdmission,
    GuardianInput,
    StudentInput,
    entrant_admission_cancel,
    entrant_admit,
    entrant_special_needs_class_set,
    guardian_create_for,
    guardian_update_for,
    student_update,
)
from komu.students.services.enrollment import enrollment_event_redate

# The two plain columns that travel with the record; their values in a diff are "1" / "0".
FLAG_KEYS = ("special_needs", "out_of_district")
FLAG_LABELS: dict[str, str] = {"special_needs": "特別支援学級", "out_of_district": "区域外就学"}

# Roster entries the school has (or is about to have): not those withdrawn by an accepted removal.
LIVE_STATES = (RosterEntry.State.SENT, RosterEntry.State.ACCEPTED)

_MAX_REASON = 200
# Ids per query: well under SQLite's bound-parameter limit and PostgreSQL's comfortable IN-list size.
_CHUNK = 500


def _flag(value: bool) -> str:
    return "1" if value else "0"


def _entry_target_school_id(entry: GakureiboEntry) -> int | None:
    """The school a 学齢簿 entry belongs on: its designated school while the child is still expected."""
    if entry.status != GakureiboEntry.Status.ACTIVE:
        return None
    return entry.designated_school_id


def amendment_diff(*, school_has: RosterEntry, entry: GakureiboEntry) -> dict[str, list[str]]:
    """{key: [old, new]} between what the school has for a child and the board's current entry (record keys,
    then the special-needs / out-of-district flags)."""
    diff = record_diff(school_has.data, entry.data)
    for key in FLAG_KEYS:
        old, new = _flag(getattr(school_has, key)), _flag(getattr(entry, key))
        if old != new:
            diff[key] = [old, new]
    return diff


def _audit_scope(roster: Roster) -> Scope:
    return Scope(school_id=roster.school_id, board_id=roster.board_id)


def _pending(roster_entry: RosterEntry, kind: str) -> RosterAmendment | None:
    return (
        RosterAmendment.objects.filter(roster_entry=roster_entry, kind=kind, accepted_at__isnull=True)
        .order_by("created_at")
        .first()
    )


def _amendment_drop(*, actor: Actor, amendment: RosterAmendment, why: str) -> None:
    """A pending amendment that no longer describes a difference (the board changed its mind before the school
    acted) is withdrawn, audited."""
    roster = amendment.roster
    audit_record(
        actor=actor.user, action="rosters.amendment.withdrawn", obj=amendment,
        detail={"kind": amendment.kind, "roster_id": str(roster.pk), "why": why},
        scope=_audit_scope(roster),
    )
    amendment.delete()


def _amendment_create(*, actor: Actor, roster_entry: RosterEntry, kind: str, diff: Mapping[str, list[str]],
                      new_record: str, reason: str) -> RosterAmendment:
    roster = roster_entry.roster
    amendment = RosterAmendment(
        roster=roster, roster_entry=roster_entry, kind=kind,
        diff=json.dumps(dict(diff), ensure_ascii=False), new_record=new_record, reason=reason[:_MAX_REASON],
        created_by=actor.user,
    )
    amendment.full_clean()
    amendment.save()
    audit_record(
        actor=actor.user, action="rosters.amendment.recorded", obj=amendment, fields=sorted(diff),
        detail={"kind": kind, "roster_id": str(roster.pk), "roster_entry_id": str(roster_entry.pk)},
        scope=_audit_scope(roster),
    )
    return amendment


def _amend_changed(*, actor: Actor, roster_entry: RosterEntry, entry: GakureiboEntry, reason: str) -> int:
    """Keep the one pending change of a roster entry equal to (school's copy → board's current entry)."""
    created = 0
    removal = _pending(roster_entry, RosterAmendment.Kind.REMOVED)
    if removal is not None:
        # The child is back on this school before the school acted on the removal: nothing to remove.
        _amendment_drop(actor=actor, amendment=removal, why="restored")
    diff = amendment_diff(school_has=roster_entry, entry=entry)
    pending = _pending(roster_entry, RosterAmendment.Kind.CHANGED)
    if not diff:
        if pending is not None:
            _amendment_drop(actor=actor, amendment=pending, why="reverted")
        return 0
    new_record = record_json(entry.data)
    if pending is not None:
        if pending.changes == diff:
            return 0
        pending.diff = json.dumps(diff, ensure_ascii=False)
        pending.new_record = new_record
        pending.reason = (reason or pending.reason)[:_MAX_REASON]
        pending.full_clean()
        pending.save()
        roster = roster_entry.roster
        audit_record(
            actor=actor.user, action="rosters.amendment.updated", obj=pending, fields=sorted(diff),
            detail={"kind": pending.kind, "roster_id": str(roster.pk)}, scope=_audit_scope(roster),
        )
        return 1
    _amendment_create(actor=actor, roster_entry=roster_entry, kind=RosterAmendment.Kind.CHANGED, diff=diff,
                      new_record=new_record, reason=reason)
    created += 1
    return created


def _amend_removed(*, actor: Actor, roster_entry: RosterEntry, entry: GakureiboEntry, reason: str) -> int:
    if _pending(roster_entry, RosterAmendment.Kind.REMOVED) is not None:
        return 0
    addition = _pending(roster_entry, RosterAmendment.Kind.ADDED)
    if addition is not None and roster_entry.state == RosterEntry.State.SENT:
        # The school never took the child: withdraw the addition instead of sending a removal after it.
        for change in RosterAmendment.objects.filter(roster_entry=roster_entry, accepted_at__isnull=True):
            _amendment_drop(actor=actor, amendment=change, why="designation_changed_again")
        roster_entry.state = RosterEntry.State.WITHDRAWN
        roster_entry.save(update_fields=["state", "updated_at"])
        return 1
    pending_change = _pending(roster_entry, RosterAmendment.Kind.CHANGED)
    if pending_change is not None:
        _amendment_drop(actor=actor, amendment=pending_change, why="superseded_by_removal")
    detail = {"status": [GakureiboEntry.Status.ACTIVE.value, entry.status]}
    if entry.status == GakureiboEntry.Status.ACTIVE:
        detail = {"designated_school": [roster_entry.roster.school.name,
                                        entry.designated_school.name if entry.designated_school else ""]}
    _amendment_create(actor=actor, roster_entry=roster_entry, kind=RosterAmendment.Kind.REMOVED, diff=detail,
                      new_record="", reason=reason)
    return 1


def roster_entry_add(*, actor: Actor, roster: Roster, entry: GakureiboEntry) -> RosterEntry:
    """Put a child on a roster: a fresh snapshot of the entry (reusing the row of an earlier withdrawal)."""
    roster_entry = RosterEntry.objects.filter(roster=roster, entry=entry).first()
    if roster_entry is None:
        roster_entry = RosterEntry(roster=roster, entry=entry)
    roster_entry.record = record_json(entry.data)
    roster_entry.special_needs = entry.special_needs
    roster_entry.out_of_district = entry.out_of_district
    roster_entry.state = RosterEntry.State.SENT
    roster_entry.student = None
    roster_entry.full_clean()
    roster_entry.save()
    return roster_entry


def _amend_added(*, actor: Actor, roster: Roster, entry: GakureiboEntry, reason: str) -> int:
    roster_entry = roster_entry_add(actor=actor, roster=roster, entry=entry)
    diff = {key: ["", str(value)] for key, value in entry.data.items() if value}
    _amendment_create(actor=actor, roster_entry=roster_entry, kind=RosterAmendment.Kind.ADDED, diff=diff,
                      new_record=roster_entry.record, reason=reason)
    return 1


def amendments_for_entries(*, actor: Actor, entries: Iterable[GakureiboEntry], reason: str) -> int:
    """The amendments for entries already checked to be in the actor's scope (used by roster_send as well)."""
    entries = list(entries)
    if not entries:
        return 0
    by_id = {e.pk: e for e in entries}
    live: dict[uuid.UUID, list[RosterEntry]] = {}
    for re in (
        RosterEntry.objects.filter(entry_id__in=list(by_id), state__in=LIVE_STATES)
        .select_related("roster__school")
    ):
        live.setdefault(re.entry_id, []).append(re)
    targets = {(e.fiscal_year, _entry_target_school_id(e)) for e in entries if _entry_target_school_id(e)}
    rosters: dict[tuple[int, int], Roster] = {}
    if targets:
        for roster in Roster.objects.filter(
            fiscal_year__in={y for y, _ in targets}, school_id__in={s for _, s in targets}
        ).select_related("school"):
            rosters[(roster.fiscal_year, roster.school_id)] = roster
    count = 0
    for entry in entries:
        target = _entry_target_school_id(entry)
        on_target = False
        for roster_entry in live.get(entry.pk, []):
            if roster_entry.roster.fiscal_year == entry.fiscal_year and roster_entry.roster.school_id == target:
                on_target = True
                count += _amend_changed(actor=actor, roster_entry=roster_entry, entry=entry, reason=reason)
            else:
                count += _amend_removed(actor=actor, roster_entry=roster_entry, entry=entry, reason=reason)
        if not on_target and target is not None:
            target_roster = rosters.get((entry.fiscal_year, target))
            if target_roster is not None:
                count += _amend_added(actor=actor, roster=target_roster, entry=entry, reason=reason)
    return count


@transaction.atomic
def roster_amendments_record(*, actor: Actor, entry_ids: Collection[uuid.UUID], reason: str) -> int:
    """Record, for each 学齢簿 entry already on a sent roster, how the school's copy must change: a *changed*
    amendment with the per-field diff; a *removed* one when the child moved to another school, moved out
    (転出) or was deferred (就学猶予); and an *added* one on the new school's roster when that roster was already
    sent. Entries on no sent roster are skipped (they travel with the first sending). Returns how many
    amendments were recorded or brought up to date.

    Raises NotFoundOrNoAccess if any entry is missing or outside the boards the actor keeps the 学齢簿 of."""
    scope.require(actor, roles.GAKUREIBO_MANAGE)
    ids = list(set(entry_ids))
    if not ids:
        return 0
    boards = scope.boards_for(actor, roles.GAKUREIBO_MANAGE)
    # An import may name many thousands of entries: find, on plain columns only, those a sent roster concerns
    # (on a roster now, or designated to a school whose roster went out) before decrypting anything.
    relevant: set[uuid.UUID] = set()
    in_scope = 0
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        in_scope += GakureiboEntry.objects.filter(pk__in=chunk, board__in=boards).count()
        relevant.update(
            RosterEntry.objects.filter(entry_id__in=chunk, state__in=LIVE_STATES).values_list("entry_id", flat=True)
        )
        targets = list(GakureiboEntry.objects.filter(
            pk__in=chunk, status=GakureiboEntry.Status.ACTIVE, designated_school__isnull=False
        ).values_list("pk", "fiscal_year", "designated_school_id"))
        sent = set(Roster.objects.filter(school_id__in={t[2] for t in targets}).values_list("fiscal_year",
                                                                                           "school_id"))
        relevant.update(pk for pk, year, school_id in targets if (year, school_id) in sent)
    if in_scope != len(ids):
        raise NotFoundOrNoAccess("見つかりません。")
    relevant_ids = sorted(relevant)
    count = 0
    for start in range(0, len(relevant_ids), _CHUNK):
        entries = list(
            GakureiboEntry.objects.select_for_update(of=("self",))
            .filter(pk__in=relevant_ids[start:start + _CHUNK])
            .select_related("designated_school")
        )
        count += amendments_for_entries(actor=actor, entries=entries, reason=reason.strip())
    return count


def default_deadline(fiscal_year: int) -> datetime.date:
    """学校教育法施行令 §5: the board notifies the entrants of 年度 Y by 31 January of calendar year Y."""
    return datetime.date(fiscal_year, 1, 31)


def deadline_problem(fiscal_year: int, deadline: datetime.date) -> str:
    """"" when the deadline falls in the school year before entry, else what to do (shown on the send form)."""
    if datetime.date(fiscal_year - 1, 4, 1) <= deadline < datetime.date(fiscal_year, 4, 1):
        return ""
    return _("通知期限は入学の前年度の中（%(start)s〜%(end)s）で入力してください。通常は1月31日です。") % {
        "start": f"{fiscal_year - 1}-04-01", "end": f"{fiscal_year}-03-31"}


# --- Sending (board) ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RosterSendResult:
    rosters_created: int
    rosters_amended: int
    entries_sent: int
    amendments: int
    needs_review: int


def _as_ints(values: Iterable[Any], field: str) -> set[int]:
    result: set[int] = set()
    for value in values:
        try:
            result.add(int(value))
        except (TypeError, ValueError):
            raise ValidationFailed(_("入力内容を確認してください。"),
                                   errors={field: [_("学校を選び直してください。")]}) from None
    return result


@transaction.atomic
def roster_send(*, actor: Actor, board_id: Any, fiscal_year: int, school_ids: Collection[Any] | None = None,
                deadline: datetime.date | None = None) -> RosterSendResult:
    """Send each chosen school (all designated schools when ``school_ids`` is None) its 入学者名簿 for
    ``fiscal_year``: a structured record per designated, still-expected child.

    A school that has no roster yet gets one (status 送付済み) with a snapshot per child. A school whose roster
    was already sent is not sent a second roster: what changed since reaches it as amendments (追加・変更・取消).
    Children without a designated school are not sent (the send screen counts them); children flagged 要確認
    are sent, and the school sees the same warnings on its rows."""
    scope.require(actor, roles.GAKUREIBO_MANAGE)
    board = scope.get_in_scope(scope.boards_for(actor, roles.GAKUREIBO_MANAGE), pk=board_id)
    deadline = deadline or default_deadline(fiscal_year)
    problem = deadline_problem(fiscal_year, deadline)
    if problem:
        raise ValidationFailed(_("通知期限を確認してください。"), errors={"deadline": [problem]})
    entries_qs = GakureiboEntry.objects.select_for_update(of=("self",)).filter(
        board=board, fiscal_year=fiscal_year, status=GakureiboEntry.Status.ACTIVE, designated_school__isnull=False
    )
    chosen = None if school_ids is None else _as_ints(school_ids, "schools")
    if chosen is not None:
        if not chosen:
            raise ValidationFailed(_("送付する学校を選んでください。"),
                                   errors={"schools": [_("送付する学校を1校以上選んでください。")]})
        entries_qs = entries_qs.filter(designated_school_id__in=chosen)
    entries = list(entries_qs.select_related("designated_school"))
    by_school: dict[int, list[GakureiboEntry]] = {}
    for entry in entries:
        assert entry.designated_school_id is not None
        by_school.setdefault(entry.designated_school_id, []).append(entry)
    # Children of this board already on the chosen schools' rosters but no longer designated there: removals.
    live_elsewhere = RosterEntry.objects.filter(
        roster__fiscal_year=fiscal_year, entry__board=board, state__in=LIVE_STATES
    )
    if chosen is not None:
        live_elsewhere = live_elsewhere.filter(roster__school_id__in=chosen)
    stale_ids = set(live_elsewhere.values_list("entry_id", flat=True)) - {e.pk for e in entries}
    if not by_school and not stale_ids:
        raise ValidationFailed(_("送付できる児童がいません。"),
                               errors={"schools": [_("就学校が指定された児童がいません。先に就学校を指定してください。")]})
    existing = {
        r.school_id: r for r in Roster.objects.select_for_update(of=("self",)).filter(
            fiscal_year=fiscal_year, school_id__in=list(by_school)
        )
    }
    now = timezone.now()
    created = amended_schools = sent = 0
    to_amend: list[GakureiboEntry] = []
    for school_id, school_entries in sorted(by_school.items()):
        if school_id in existing:
            amended_schools += 1
            to_amend.extend(school_entries)
            continue
        roster = Roster(board=board, school=school_entries[0].designated_school, fiscal_year=fiscal_year,
                        status=Roster.Status.SENT, deadline=deadline, sent_at=now, sent_by=actor.user)
        roster.full_clean()
        roster.save()
        for entry in school_entries:
            roster_entry_add(actor=actor, roster=roster, entry=entry)
        created += 1
        sent += len(school_entries)
        audit_record(
            actor=actor.user, action="rosters.roster.sent", obj=roster, fields=list(RECORD_KEYS),
            detail={"fiscal_year": fiscal_year, "entries": len(school_entries), "deadline": deadline.isoformat(),
                    "needs_review": sum(1 for e in school_entries if e.needs_review)},
            scope=_audit_scope(roster),
        )
    if stale_ids:
        to_amend.extend(
            GakureiboEntry.objects.select_for_update(of=("self",)).filter(pk__in=stale_ids).select_related("designated_school")
        )
    amendments = amendments_for_entries(actor=actor, entries=to_amend, reason=_("名簿の再送付"))
    return RosterSendResult(
        rosters_created=created, rosters_amended=amended_schools, entries_sent=sent, amendments=amendments,
        needs_review=sum(1 for e in entries if e.needs_review),
    )


# --- Receiving (school) ------------------------------------------------------------------------------------------

def rosters_receivable(actor: Actor) -> QuerySet[Roster]:
    """Rosters addressed to the schools where the actor receives rosters."""
    return Roster.objects.filter(school__in=scope.schools_for(actor, roles.ROSTERS_RECEIVE))


def _roster_for_school(actor: Actor, roster_id: Any) -> Roster:
    scope.require(actor, roles.ROSTERS_RECEIVE)
    return scope.get_in_scope(
        rosters_receivable(actor).select_for_update(of=("self",)).select_related("school", "board"), pk=roster_id
    )


@transaction.atomic
def roster_open(*, actor: Actor, roster_id: Any) -> Roster:
    """開封: the first time someone at the school opens the roster, record when and who (the board sees it)."""
    roster = _roster_for_school(actor, roster_id)
    if roster.opened_at is None:
        roster.opened_at = timezone.now()
        roster.opened_by = actor.user
        if roster.status == Roster.Status.SENT:
            roster.status = Roster.Status.OPENED
        roster.save(update_fields=["opened_at", "opened_by", "status", "updated_at"])
        audit_record(actor=actor.user, action="rosters.roster.opened", obj=roster, scope=_audit_scope(roster))
    return roster


ENTRANT_GRADE_CODE = "P1"


def row_problems(record: Mapping[str, Any], *, fiscal_year: int) -> tuple[list[str], list[str]]:
    """(errors, warnings) of one child on a roster. Errors stop acceptance (the registry needs them); warnings
    are shown for a person to check."""
    errors: list[str] = []
    warnings: list[str] = []
    if not str(record.get("family_name", "")).strip():
        errors.append(_("氏名（姓）が空欄です。"))
    if not str(record.get("given_name", "")).strip():
        errors.append(_("氏名（名）が空欄です。"))
    if not record.get("family_name_kana") or not record.get("given_name_kana"):
        errors.append(_("ふりがなが空欄です。教育委員会に訂正を依頼してください。"))
    if not record.get("birth_date"):
        errors.append(_("生年月日が空欄です。"))
    for key in ("family_name", "given_name", "guardian_family_name", "guardian_given_name"):
        value = str(record.get(key, ""))
        if not value:
            continue
        try:
            checked = check_name(value, field=RECORD_LABELS[key])
        except TextError as exc:
            errors.append(str(exc))
            continue
        warnings.extend(checked.messages)
    birth = record.get("birth_date")
    if birth:
        day = datetime.date.fromisoformat(str(birth))
        low, high = datetime.date(fiscal_year - 7, 4, 2), datetime.date(fiscal_year - 6, 4, 1)
        if not low <= day <= high:
            warnings.append(_("生年月日が%(year)d年度の新1年生の範囲にありません。") % {"year": fiscal_year})
    if not record.get("guardian_family_name"):
        warnings.append(_("保護者が記載されていません。"))
    elif not record.get("guardian_phone") and not record.get("guardian_email"):
        warnings.append(_("保護者の連絡先（電話・メール）がありません。"))
    return errors, warnings


def _admission(record: Mapping[str, Any], *, special_needs: bool, fiscal_year: int) -> EntrantAdmission:
    entry_date = record.get("entry_date")
    guardian = None
    if record.get("guardian_family_name"):
        guardian = GuardianInput(
            family_name=str(record["guardian_family_name"]), given_name=str(record.get("guardian_given_name", "")),
            family_name_kana=str(record.get("guardian_family_name_kana", "")),
            given_name_kana=str(record.get("guardian_given_name_kana", "")),
            phone=str(record.get("guardian_phone", "")), email=str(record.get("guardian_email", "")),
            address=str(record.get("guardian_address", "")),
        )
    return EntrantAdmission(
        student=_student_input(record),
        special_needs_placement=(SpecialNeedsPlacement.SPECIAL_NEEDS_CLASS if special_needs
                                 else SpecialNeedsPlacement.NONE),
        admission_date=(datetime.date.fromisoformat(str(entry_date)) if entry_date
                        else datetime.date(fiscal_year, 4, 1)),
        grade_code=ENTRANT_GRADE_CODE,
        pending_year=fiscal_year,
        guardian=guardian,
        relationship=str(record.get("guardian_relationship", "")),
    )


def _student_input(record: Mapping[str, Any]) -> StudentInput:
    birth = record.get("birth_date")
    return StudentInput(
        family_name=str(record.get("family_name", "")), given_name=str(record.get("given_name", "")),
        family_name_kana=str(record.get("family_name_kana", "")),
        given_name_kana=str(record.get("given_name_kana", "")),
        sex=str(record.get("sex") or Sex.UNSPECIFIED),
        birth_date=datetime.date.fromisoformat(str(birth)) if birth else None,
        address=str(record.get("address", "")),
    )


def _admit(actor: Actor, roster: Roster, roster_entry: RosterEntry) -> Student:
    errors, _warnings = row_problems(roster_entry.data, fiscal_year=roster.fiscal_year)
    if errors:
        raise ValidationFailed(_("受け入れられない記載があります。") + " " + " ".join(errors))
    student = entrant_admit(
        actor=actor, school=roster.school,
        data=_admission(roster_entry.data, special_needs=roster_entry.special_needs, fiscal_year=roster.fiscal_year),
    )
    roster_entry.student = student
    roster_entry.state = RosterEntry.State.ACCEPTED
    roster_entry.save(update_fields=["student", "state", "updated_at"])
    return student


@dataclass(frozen=True)
class RosterAcceptResult:
    pupils: int
    guardians: int
    skipped_removed: int
    already_accepted: bool


@transaction.atomic
def roster_accept(*, actor: Actor, roster_id: Any) -> RosterAcceptResult:
    """受け入れ: every child on the roster becomes a pupil of the school in the roster's 年度 and grade 1, with
    their guardian and the 入学 event, awaiting class placement (Student.pending_year / pending_grade_code).

    All or nothing: one row the registry cannot take (e.g. no kana reading) stops the whole acceptance with a
    message naming the problem. Accepting twice does nothing. Children with a pending removal are not created
    (accepting the removal withdraws them)."""
    roster = _roster_for_school(actor, roster_id)
    if roster.status == Roster.Status.ACCEPTED:
        return RosterAcceptResult(pupils=0, guardians=0, skipped_removed=0, already_accepted=True)
    pending_removals = set(
        RosterAmendment.objects.filter(roster=roster, kind=RosterAmendment.Kind.REMOVED, accepted_at__isnull=True)
        .values_list("roster_entry_id", flat=True)
    )
    entries = list(roster.entries.filter(state=RosterEntry.State.SENT).order_by("created_at"))
    problems: list[str] = []
    for number, roster_entry in enumerate(entries, start=1):
        if roster_entry.pk in pending_removals:
            continue
        errors, _warnings = row_problems(roster_entry.data, fiscal_year=roster.fiscal_year)
        if errors:
            problems.append(_("%(no)d行目: %(errors)s") % {"no": number, "errors": " ".join(errors)})
    if problems:
        raise ValidationFailed(_("受け入れられない記載があります。教育委員会に訂正を依頼してください。"),
                               errors={"entries": problems})
    pupils = guardians = skipped = 0
    for roster_entry in entries:
        if roster_entry.pk in pending_removals:
            skipped += 1
            continue
        _admit(actor, roster, roster_entry)
        pupils += 1
        guardians += 1 if roster_entry.data.get("guardian_family_name") else 0
    now = timezone.now()
    # Additions made before acceptance are part of what was just accepted.
    RosterAmendment.objects.filter(roster=roster, kind=RosterAmendment.Kind.ADDED, accepted_at__isnull=True).update(
        accepted_at=now, accepted_by=actor.user
    )
    if roster.opened_at is None:
        roster.opened_at, roster.opened_by = now, actor.user
    roster.status = Roster.Status.ACCEPTED
    roster.accepted_at, roster.accepted_by = now, actor.user
    roster.save(update_fields=["status", "opened_at", "opened_by", "accepted_at", "accepted_by", "updated_at"])
    audit_record(
        actor=actor.user, action="rosters.roster.accepted", obj=roster,
        detail={"pupils": pupils, "guardians": guardians, "skipped_removed": skipped,
                "fiscal_year": roster.fiscal_year},
        scope=_audit_scope(roster),
    )
    return RosterAcceptResult(pupils=pupils, guardians=guardians, skipped_removed=skipped, already_accepted=False)


_PUPIL_KEYS = {"family_name", "given_name", "family_name_kana", "given_name_kana", "sex", "birth_date", "address"}
_GUARDIAN_KEYS = {
    "guardian_family_name": "family_name", "guardian_given_name": "given_name",
    "guardian_family_name_kana": "family_name_kana", "guardian_given_name_kana": "given_name_kana",
    "guardian_phone": "phone", "guardian_email": "email", "guardian_address": "address",
}


def _entry_date(record: Mapping[str, Any], fiscal_year: int) -> datetime.date:
    """The 入学 date a record stands for: its 入学予定日, or the first day of the 年度 when none is given."""
    value = record.get("entry_date")
    return datetime.date.fromisoformat(str(value)) if value else fiscal_year_bounds(fiscal_year)[0]


def _move_admission(actor: Actor, roster_entry: RosterEntry, student: Student, new: Mapping[str, Any],
                    reason: str) -> str:
    """Move the pupil's planned 入学 event to the new 入学予定日. Returns "" when done, else why it could not be
    (the school year has begun, or no planned 入学 is on the registry) for the school to handle by hand."""
    fiscal_year = roster_entry.roster.fiscal_year
    start, end = fiscal_year_bounds(fiscal_year)
    event_id = (
        EnrollmentEvent.objects.filter(student=student, kind=EnrollmentKind.ADMISSION, date__range=(start, end))
        .order_by("date", "created_at").values_list("pk", flat=True).first()
    )
    if event_id is None:
        return _("%(year)d年度の入学の記録が見つからないため、入学予定日を反映できません。"
                 "学籍の異動の画面で確認してください。") % {"year": fiscal_year}
    try:
        enrollment_event_redate(actor=actor, event_id=event_id, date=_entry_date(new, fiscal_year),
                                reason=reason or _("入学予定日の変更（入学者名簿）"))
    except ValidationFailed as exc:
        return " ".join(exc.errors.get("date") or [str(exc)])
    return ""


_MAX_NOTE = 500


@transaction.atomic
def roster_amendment_unapplied_resolve(*, actor: Actor, amendment_id: Any, note: str) -> RosterAmendment:
    """対応済み: the school has handled by hand the parts of an accepted change the registry could not take (e.g.
    a 入学予定日 changed after the year began, recorded as 学籍の異動 or confirmed with the board as not needed).
    The note says what was done; the item leaves the roster's to-do list and the audit trail keeps who and when.
    Marking it twice does nothing."""
    scope.require(actor, roles.ROSTERS_RECEIVE)
    amendment: RosterAmendment = scope.get_in_scope(
        RosterAmendment.objects.select_for_update(of=("self",))
        .filter(roster__in=rosters_receivable(actor))
        .select_related("roster"),
        pk=amendment_id,
    )
    if amendment.not_applied_resolved_at is not None:
        return amendment
    if amendment.accepted_at is None or not amendment.problems:
        raise ValidationFailed(_("この変更には、学校で対応する項目がありません。"))
    text = (note or "").strip()
    problems: list[str] = []
    if not text:
        problems.append(_("どう対応したかを入力してください（例: 学籍の異動として記録した、教育委員会と確認し不要とした）。"))
    elif len(text) > _MAX_NOTE:
        problems.append(_("対応の内容は%(n)d文字以内で入力してください。") % {"n": _MAX_NOTE})
    else:
        try:
            reject_control_chars(text, _("対応の内容"), allow="\r\n")
        except TextError as exc:
            problems.append(str(exc))
    if problems:
        raise ValidationFailed(_("入力内容を確認してください。"), errors={"note": problems})
    amendment.not_applied_resolved_at = timezone.now()
    amendment.not_applied_resolved_by = actor.user
    amendment.not_applied_note = text
    amendment.save(update_fields=["not_applied_resolved_at", "not_applied_resolved_by", "not_applied_note",
                                  "updated_at"])
    audit_record(
        actor=actor.user, action="rosters.amendment.unapplied_resolved", obj=amendment,
        fields=sorted(amendment.problems),
        detail={"roster_id": str(amendment.roster_id), "roster_entry_id": str(amendment.roster_entry_id),
                "note": text[:200]},
        scope=_audit_scope(amendment.roster),
    )
    return amendment


def _apply_change_to_pupil(actor: Actor, roster_entry: RosterEntry, new: Mapping[str, Any],
                           diff: Mapping[str, list[str]], reason: str) -> dict[str, str]:
    """Apply a change to the pupil and guardian already created. Returns {field: message} for the parts the
    registry could not take; everything else is applied."""
    student = roster_entry.student
    assert student is not None
    not_applied: dict[str, str] = {}
    if "entry_date" in diff:
        problem = _move_admission(actor, roster_entry, student, new, reason)
        if problem:
            not_applied["entry_date"] = problem
    pupil_fields = sorted(_PUPIL_KEYS & set(diff))
    if pupil_fields:
        student_update(actor=actor, student_id=student.pk, data=_student_input(new), only=pupil_fields)
    if "special_needs" in diff:
        entrant_special_needs_class_set(actor=actor, student_id=student.pk,
                                        special_needs_class=diff["special_needs"][1] == "1")
    if (set(_GUARDIAN_KEYS) | {"guardian_relationship"}) & set(diff):
        admission = _admission(new, special_needs=False, fiscal_year=roster_entry.roster.fiscal_year)
        link = GuardianLink.objects.filter(student=student).order_by("priority", "created_at").first()
        if admission.guardian is None:
            return not_applied
        if link is None:
            guardian_create_for(actor=actor, student=student, data=admission.guardian,
                                relationship=admission.relationship or _("保護者"))
        else:
            guardian_update_for(actor=actor, student_id=student.pk, guardian_id=link.guardian_id,
                                data=admission.guardian, relationship=admission.relationship or None)
    return not_applied


@transaction.atomic
def roster_amendment_accept(*, actor: Actor, amendment_id: Any) -> RosterAmendment:
    """反映: the school takes an amendment.

    - 変更: applied to the pupil and guardian already created (roster accepted), or to the roster row otherwise.
      A changed 入学予定日 moves the pupil's planned 入学 event (students.enrollment_event_redate) while the
      school year has not begun; after that this one field is not applied: the rest is, and the amendment keeps
      the reason in ``not_applied`` ({field: message}) for the school to handle by hand.
    - 追加: the child becomes a pupil now if the roster was already accepted; otherwise at acceptance.
    - 取消: the row is withdrawn; a pupil already created is taken off the registry with their planned 入学
      event and any class placement in that 年度 (students.entrant_admission_cancel) — allowed only before the
      school year starts, after which the school records 転学・退学 instead.
    Accepting an amendment twice does nothing."""
    scope.require(actor, roles.ROSTERS_RECEIVE)
    amendment: RosterAmendment = scope.get_in_scope(
        RosterAmendment.objects.select_for_update(of=("self",))
        .filter(roster__in=rosters_receivable(actor))
        .select_related("roster__school", "roster_entry__student"),
        pk=amendment_id,
    )
    if amendment.accepted_at is not None:
        return amendment
    roster = amendment.roster
    roster_entry = amendment.roster_entry
    diff = amendment.changes
    not_applied: dict[str, str] = {}
    if amendment.kind == RosterAmendment.Kind.CHANGED:
        new = json.loads(amendment.new_record) if amendment.new_record else roster_entry.data
        if roster_entry.state == RosterEntry.State.ACCEPTED and roster_entry.student is not None:
            errors, _warnings = row_problems(new, fiscal_year=roster.fiscal_year)
            if errors:
                raise ValidationFailed(_("反映できない変更です。教育委員会に訂正を依頼してください。") + " "
                                       + " ".join(errors))
            not_applied = _apply_change_to_pupil(actor, roster_entry, new, diff, amendment.reason)
        roster_entry.record = record_json(new)
        for key in FLAG_KEYS:
            if key in diff:
                setattr(roster_entry, key, diff[key][1] == "1")
        roster_entry.save(update_fields=["record", *FLAG_KEYS, "updated_at"])
    elif amendment.kind == RosterAmendment.Kind.ADDED:
        if roster.status == Roster.Status.ACCEPTED and roster_entry.state == RosterEntry.State.SENT:
            _admit(actor, roster, roster_entry)
    else:
        if roster_entry.student is not None and roster_entry.student.is_active:
            entrant_admission_cancel(actor=actor, student_id=roster_entry.student.pk,
                                     fiscal_year=roster.fiscal_year, reason=amendment.reason)
        roster_entry.state = RosterEntry.State.WITHDRAWN
        roster_entry.save(update_fields=["state", "updated_at"])
    amendment.accepted_at = timezone.now()
    amendment.accepted_by = actor.user
    amendment.not_applied = json.dumps(not_applied, ensure_ascii=False) if not_applied else ""
    amendment.save(update_fields=["accepted_at", "accepted_by", "not_applied", "updated_at"])
    audit_record(
        actor=actor.user, action="rosters.amendment.accepted", obj=amendment, fields=sorted(diff),
        detail={"kind": amendment.kind, "roster_id": str(roster.pk), "roster_entry_id": str(roster_entry.pk),
                "not_applied": sorted(not_applied)},
        scope=_audit_scope(roster),
    )
    return amendment
