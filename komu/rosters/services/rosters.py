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

from django.db import transaction

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.audit.services import Scope, audit_record
from komu.core.errors import NotFoundOrNoAccess
from komu.rosters.models import GakureiboEntry, Roster, RosterAmendment, RosterEntry
from komu.rosters.records import record_diff, record_json

# The two plain columns that travel with the record; their values in a diff are "1" / "0".
FLAG_KEYS = ("special_needs", "out_of_district")
FLAG_LABELS: dict[str, str] = {"special_needs": "特別支援学級", "out_of_district": "区域外就学"}

# Roster entries the school has (or is about to have): not those withdrawn by an accepted removal.
LIVE_STATES = (RosterEntry.State.SENT, RosterEntry.State.ACCEPTED)

_MAX_REASON = 200


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
    ids = set(entry_ids)
    if not ids:
        return 0
    boards = scope.boards_for(actor, roles.GAKUREIBO_MANAGE)
    entries = list(
        GakureiboEntry.objects.select_for_update()
        .filter(pk__in=ids, board__in=boards)
        .select_related("designated_school")
    )
    if len(entries) != len(ids):
        raise NotFoundOrNoAccess("見つかりません。")
    return amendments_for_entries(actor=actor, entries=entries, reason=reason.strip())


def default_deadline(fiscal_year: int) -> datetime.date:
    """学校教育法施行令 §5: the board notifies the entrants of 年度 Y by 31 January of calendar year Y."""
    return datetime.date(fiscal_year, 1, 31)
