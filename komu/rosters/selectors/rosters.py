"""Reads of the 学齢簿 and the 入学者名簿, within the actor's scope.

Board side: the boards whose 学齢簿 the actor keeps, counts by designated school, a filtered page of entries
(names decrypted — audited as a list read), one entry, what a sending would do per school, and the per-school
status of sent rosters (sent / opened / accepted with dates, amendments outstanding).
School side: the inbox of received rosters and amendments (with the unread count for the home page), and one
roster's rows, every row validated (errors that stop acceptance, warnings to check) — audited.
"""

from __future__ import annotations

import datetime
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.core.paginator import Page, Paginator
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.audit.services import Scope, audit_record
from komu.core.codes import grade_display
from komu.core.text import TextError, normalize_kana
from komu.core.wareki import to_wareki
from komu.directory.models import Board, School
from komu.rosters.models import RECORD_KEYS, GakureiboEntry, Roster, RosterAmendment, RosterEntry
from komu.rosters.records import RECORD_LABELS
from komu.rosters.services.gakureibo import SEX_CHOICES, designatable_schools
from komu.rosters.services.rosters import (
    ENTRANT_GRADE_CODE,
    FLAG_KEYS,
    FLAG_LABELS,
    rosters_receivable,
    row_problems,
)

ENTRY_PAGE_SIZE = 50
_LISTED_FIELDS = ["family_name", "given_name", "family_name_kana", "given_name_kana", "sex", "birth_date"]


def _date(value: Any) -> datetime.date | None:
    return datetime.date.fromisoformat(str(value)) if value else None


# --- Board: 学齢簿 -------------------------------------------------------------------------------------------------

def gakureibo_boards_for(*, actor: Actor) -> list[Board]:
    """Boards whose 学齢簿 the actor keeps (a municipal officer: their own board)."""
    return list(scope.boards_for(actor, roles.GAKUREIBO_MANAGE).order_by("code"))


def gakureibo_board_get(*, actor: Actor, board_id: Any) -> Board:
    return scope.get_in_scope(scope.boards_for(actor, roles.GAKUREIBO_MANAGE), pk=board_id)


def gakureibo_default_year() -> int:
    """The 年度 a board works on in the UI by default: next April's entrants (the 学齢簿 is made in October)."""
    today = timezone.localdate()
    return today.year + 1 if today.month >= 4 else today.year


def gakureibo_years(*, actor: Actor, board: Board) -> list[int]:
    years = set(GakureiboEntry.objects.filter(board=board).values_list("fiscal_year", flat=True).distinct())
    years.add(gakureibo_default_year())
    return sorted(years, reverse=True)


@dataclass(frozen=True)
class SchoolCount:
    school: School
    count: int
    special_needs: int
    out_of_district: int
    needs_review: int


@dataclass(frozen=True)
class GakureiboSummary:
    total: int
    active: int
    designated: int
    undesignated: int
    needs_review: int
    moved_out: int
    deferred: int
    out_of_district: int
    special_needs: int
    by_school: list[SchoolCount]


def gakureibo_summary(*, actor: Actor, board: Board, fiscal_year: int) -> GakureiboSummary:
    """Counts only (no personal data): the whole register and per designated school."""
    qs = GakureiboEntry.objects.filter(board=board, fiscal_year=fiscal_year)
    active = qs.filter(status=GakureiboEntry.Status.ACTIVE)
    totals = qs.aggregate(
        total=Count("pk"),
        active=Count("pk", filter=Q(status=GakureiboEntry.Status.ACTIVE)),
        moved_out=Count("pk", filter=Q(status=GakureiboEntry.Status.MOVED_OUT)),
        deferred=Count("pk", filter=Q(status=GakureiboEntry.Status.DEFERRED)),
    )
    flags = active.aggregate(
        designated=Count("pk", filter=Q(designated_school__isnull=False)),
        needs_review=Count("pk", filter=Q(needs_review=True)),
        out_of_district=Count("pk", filter=Q(out_of_district=True)),
        special_needs=Count("pk", filter=Q(special_needs=True)),
    )
    per_school = (
        active.filter(designated_school__isnull=False).values("designated_school")
        .annotate(n=Count("pk"), sn=Count("pk", filter=Q(special_needs=True)),
                  ood=Count("pk", filter=Q(out_of_district=True)), review=Count("pk", filter=Q(needs_review=True)))
    )
    schools = School.objects.in_bulk([row["designated_school"] for row in per_school])
    by_school = sorted(
        (SchoolCount(school=schools[row["designated_school"]], count=row["n"], special_needs=row["sn"],
                     out_of_district=row["ood"], needs_review=row["review"]) for row in per_school),
        key=lambda c: c.school.code,
    )
    return GakureiboSummary(
        total=totals["total"], active=totals["active"], designated=flags["designated"],
        undesignated=totals["active"] - flags["designated"], needs_review=flags["needs_review"],
        moved_out=totals["moved_out"], deferred=totals["deferred"], out_of_district=flags["out_of_district"],
        special_needs=flags["special_needs"], by_school=by_school,
    )


@dataclass(frozen=True)
class EntryFilters:
    school_id: int | None = None
    undesignated: bool = False
    needs_review: bool = False
    out_of_district: bool = False
    special_needs: bool = False
    status: str = ""
    kana: str = ""


@dataclass(frozen=True)
class EntryRow:
    id: uuid.UUID
    person_id: str
    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    sex: str
    birth_date: datetime.date | None
    school: School | None
    out_of_district: bool
    special_needs: bool
    needs_review: bool
    status: str
    status_label: str
    on_roster: bool


def _filtered(board: Board, fiscal_year: int, filters: EntryFilters) -> QuerySet[GakureiboEntry]:
    qs = GakureiboEntry.objects.filter(board=board, fiscal_year=fiscal_year)
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.school_id is not None:
        qs = qs.filter(designated_school_id=filters.school_id)
    if filters.undesignated:
        qs = qs.filter(designated_school__isnull=True, status=GakureiboEntry.Status.ACTIVE)
    if filters.needs_review:
        qs = qs.filter(needs_review=True)
    if filters.out_of_district:
        qs = qs.filter(out_of_district=True)
    if filters.special_needs:
        qs = qs.filter(special_needs=True)
    if filters.kana:
        try:
            key = GakureiboEntry._meta.get_field("kana_index").lookup_value(
                normalize_kana(filters.kana)
            )
        except TextError:
            return qs.none()
        qs = qs.filter(kana_index=key)
    return qs


def gakureibo_entry_page(*, actor: Actor, board: Board, fiscal_year: int, filters: EntryFilters,
                         page: int = 1, per_page: int = ENTRY_PAGE_SIZE) -> Page[EntryRow]:
    """One page of the register (file order), names decrypted for this page only; the read is audited."""
    qs = (
        _filtered(board, fiscal_year, filters)
        .select_related("designated_school")
        .annotate(live=Count("roster_entries", filter=Q(roster_entries__state__in=["sent", "accepted"])))
        .order_by("created_at", "pk")
    )
    paginator = Paginator(qs, per_page)
    current = paginator.get_page(page)
    rows = []
    for entry in current.object_list:
        data = entry.data
        rows.append(EntryRow(
            id=entry.pk, person_id=str(data.get("person_id", "")), family_name=str(data.get("family_name", "")),
            given_name=str(data.get("given_name", "")), family_name_kana=str(data.get("family_name_kana", "")),
            given_name_kana=str(data.get("given_name_kana", "")),
            sex=SEX_CHOICES.get(str(data.get("sex", "")), ""), birth_date=_date(data.get("birth_date")),
            school=entry.designated_school, out_of_district=entry.out_of_district,
            special_needs=entry.special_needs, needs_review=entry.needs_review, status=entry.status,
            status_label=str(entry.get_status_display()), on_roster=bool(entry.live),  # type: ignore[attr-defined]
        ))
    with transaction.atomic():
        audit_record(
            actor=actor.user, action="rosters.gakureibo.listed", object_type="directory.board",
            object_id=str(board.pk), fields=_LISTED_FIELDS,
            detail={"fiscal_year": fiscal_year, "count": len(rows), "page": current.number,
                    "search": bool(filters.kana)},
            scope=Scope(board_id=board.pk),
        )
    current.object_list = rows  # type: ignore[assignment]
    return current  # type: ignore[return-value]


@dataclass(frozen=True)
class EntryDetail:
    entry: GakureiboEntry
    record: dict[str, str]
    fields: list[tuple[str, str, str]]  # (key, label, value)
    roster_school: School | None
    pending_amendments: int


def gakureibo_entry_get(*, actor: Actor, entry_id: Any) -> EntryDetail:
    """One child of the register (audited read)."""
    entry: GakureiboEntry = scope.get_in_scope(
        GakureiboEntry.objects.filter(board__in=scope.boards_for(actor, roles.GAKUREIBO_MANAGE))
        .select_related("designated_school", "board"),
        pk=entry_id,
    )
    record = {key: str(entry.data.get(key, "")) for key in RECORD_KEYS}
    live = (RosterEntry.objects.filter(entry=entry, state__in=["sent", "accepted"])
            .select_related("roster__school").first())
    pending = RosterAmendment.objects.filter(roster_entry__entry=entry, accepted_at__isnull=True).count()
    with transaction.atomic():
        audit_record(actor=actor.user, action="rosters.gakureibo_entry.viewed", obj=entry,
                     fields=[k for k, v in record.items() if v],
                     scope=Scope(board_id=entry.board_id, school_id=entry.designated_school_id))
    return EntryDetail(
        entry=entry, record=record,
        fields=[(key, RECORD_LABELS[key], record[key]) for key in RECORD_KEYS],
        roster_school=live.roster.school if live else None, pending_amendments=pending,
    )


@dataclass(frozen=True)
class SchoolChoice:
    id: int
    name: str
    code: str
    own_board: bool


def designation_choices(*, actor: Actor, board: Board) -> list[SchoolChoice]:
    """Schools to designate: this board's first, then other boards' (区域外就学)."""
    choices = [
        SchoolChoice(id=s.pk, name=s.name, code=s.code, own_board=s.board_id == board.pk)
        for s in designatable_schools(actor, board)
    ]
    return sorted(choices, key=lambda c: (not c.own_board, c.code))


# --- Board: sending and status ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SendRow:
    school: School
    count: int
    needs_review: int
    special_needs: int
    out_of_district: int
    roster: Roster | None


@dataclass(frozen=True)
class SendPreview:
    rows: list[SendRow]
    undesignated: int
    needs_review: int
    total: int


def roster_send_preview(*, actor: Actor, board: Board, fiscal_year: int) -> SendPreview:
    summary = gakureibo_summary(actor=actor, board=board, fiscal_year=fiscal_year)
    rosters = {r.school_id: r for r in Roster.objects.filter(fiscal_year=fiscal_year,
                                                             school__in=[c.school for c in summary.by_school])}
    rows = [SendRow(school=c.school, count=c.count, needs_review=c.needs_review, special_needs=c.special_needs,
                    out_of_district=c.out_of_district, roster=rosters.get(c.school.pk)) for c in summary.by_school]
    return SendPreview(rows=rows, undesignated=summary.undesignated, needs_review=summary.needs_review,
                       total=summary.designated)


@dataclass(frozen=True)
class RosterStatusRow:
    roster: Roster
    entries: int
    accepted: int
    withdrawn: int
    pending_amendments: int
    overdue: bool


def roster_board_status(*, actor: Actor, board: Board, fiscal_year: int) -> list[RosterStatusRow]:
    """Per school: the roster this board sent (or added its children to), its state and dates, how many of
    this board's children are on it, and amendments the school has not taken yet. Counts only."""
    rosters = (
        Roster.objects.filter(fiscal_year=fiscal_year)
        .filter(Q(board=board) | Q(entries__entry__board=board)).distinct()
        .select_related("school", "school__board")
        .annotate(
            n=Count("entries", filter=Q(entries__entry__board=board) & ~Q(entries__state="withdrawn"),
                    distinct=True),
            n_accepted=Count("entries", filter=Q(entries__entry__board=board, entries__state="accepted"),
                             distinct=True),
            n_withdrawn=Count("entries", filter=Q(entries__entry__board=board, entries__state="withdrawn"),
                              distinct=True),
            pending=Count("amendments", filter=Q(amendments__accepted_at__isnull=True,
                                                 amendments__roster_entry__entry__board=board), distinct=True),
        )
        .order_by("school__code")
    )
    today = timezone.localdate()
    return [
        RosterStatusRow(roster=r, entries=r.n, accepted=r.n_accepted,
                        withdrawn=r.n_withdrawn, pending_amendments=r.pending,
                        overdue=r.status != Roster.Status.ACCEPTED and r.deadline < today)
        for r in rosters
    ]


# --- School: inbox and roster ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InboxRow:
    roster: Roster
    entries: int
    pending_amendments: int
    unread: bool


@dataclass(frozen=True)
class Inbox:
    rows: list[InboxRow]
    unread: int
    pending_amendments: int


def school_inbox(*, actor: Actor) -> Inbox:
    """Rosters received by the actor's schools, newest 年度 first, with amendments awaiting 反映."""
    rosters = (
        rosters_receivable(actor).select_related("school", "board")
        .annotate(
            n=Count("entries", filter=~Q(entries__state="withdrawn"), distinct=True),
            pending=Count("amendments", filter=Q(amendments__accepted_at__isnull=True), distinct=True),
        )
        .order_by("-fiscal_year", "school__code")
    )
    rows = [InboxRow(roster=r, entries=r.n, pending_amendments=r.pending,
                     unread=r.opened_at is None) for r in rosters]
    return Inbox(rows=rows, unread=sum(1 for r in rows if r.unread),
                 pending_amendments=sum(r.pending_amendments for r in rows))


def school_inbox_todo_count(*, actor: Actor) -> int:
    """For the home page and navigation: rosters not yet opened or accepted, plus amendments not yet taken."""
    if not actor.has(roles.ROSTERS_RECEIVE):
        return 0
    rosters = rosters_receivable(actor)
    waiting = rosters.exclude(status=Roster.Status.ACCEPTED).count()
    amendments = RosterAmendment.objects.filter(roster__in=rosters, accepted_at__isnull=True).count()
    return waiting + amendments


@dataclass(frozen=True)
class DiffRow:
    key: str
    label: str
    old: str
    new: str


@dataclass(frozen=True)
class AmendmentView:
    amendment: RosterAmendment
    kind_label: str
    name: str
    diff: list[DiffRow]


@dataclass(frozen=True)
class UnappliedView:
    """An accepted change with parts the registry could not take (e.g. the 入学予定日 after the year began)."""

    amendment: RosterAmendment
    name: str
    items: list[tuple[str, str]]


@dataclass
class RosterRow:
    number: int
    id: uuid.UUID
    record: dict[str, str]
    sex: str
    birth_date: datetime.date | None
    special_needs: bool
    out_of_district: bool
    state: str
    state_label: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    pending_kind: str = ""


@dataclass(frozen=True)
class RosterDetail:
    roster: Roster
    rows: list[RosterRow]
    amendments: list[AmendmentView]
    pupils_to_create: int
    guardians_to_create: int
    skipped_removed: int
    error_rows: int
    warning_rows: int
    grade_label: str
    unapplied: list[UnappliedView] = field(default_factory=list)


def _display(key: str, value: str) -> str:
    if key in FLAG_KEYS:
        return _("あり") if value == "1" else _("なし")
    if key == "sex":
        return SEX_CHOICES.get(value, value)
    if key in ("birth_date", "entry_date") and value and translation.get_language() == "ja":
        try:
            return to_wareki(datetime.date.fromisoformat(value))
        except ValueError:
            return value
    if key == "status":
        try:
            return str(GakureiboEntry.Status(value).label)
        except ValueError:
            return value
    return value


def _diff_rows(changes: dict[str, list[str]]) -> list[DiffRow]:
    labels = {**RECORD_LABELS, **FLAG_LABELS, "designated_school": "指定校", "status": "状態"}
    return [DiffRow(key=key, label=_(labels.get(key, key)), old=_display(key, old), new=_display(key, new))
            for key, (old, new) in changes.items()]


def roster_detail(*, actor: Actor, roster_id: Any) -> RosterDetail:
    """One received roster, every row validated, with the amendments awaiting 反映 as labelled diffs.
    Reading it is audited (names, birth dates, guardians' contacts)."""
    scope.require(actor, roles.ROSTERS_RECEIVE)
    roster: Roster = scope.get_in_scope(rosters_receivable(actor).select_related("school", "board"), pk=roster_id)
    entries = list(roster.entries.order_by("created_at", "pk"))
    pending = list(
        RosterAmendment.objects.filter(roster=roster, accepted_at__isnull=True).order_by("created_at")
    )
    pending_kind = {a.roster_entry_id: a.kind for a in pending}
    rows: list[RosterRow] = []
    for number, roster_entry in enumerate(entries, start=1):
        record = {key: str(roster_entry.data.get(key, "")) for key in RECORD_KEYS}
        errors, warnings = row_problems(record, fiscal_year=roster.fiscal_year)
        rows.append(RosterRow(
            number=number, id=roster_entry.pk, record=record, sex=SEX_CHOICES.get(record["sex"], ""),
            birth_date=_date(record["birth_date"]), special_needs=roster_entry.special_needs,
            out_of_district=roster_entry.out_of_district, state=roster_entry.state,
            state_label=str(roster_entry.get_state_display()), errors=errors if roster_entry.state == "sent" else [],
            warnings=warnings, pending_kind=pending_kind.get(roster_entry.pk, ""),
        ))
    by_id = {r.id: r for r in rows}
    amendments = []
    for amendment in pending:
        row = by_id.get(amendment.roster_entry_id)
        name = f"{row.record['family_name']} {row.record['given_name']}" if row else ""
        amendments.append(AmendmentView(amendment=amendment, kind_label=str(amendment.get_kind_display()),
                                        name=name, diff=_diff_rows(amendment.changes)))
    labels = {**RECORD_LABELS, **FLAG_LABELS}
    unapplied = []
    for amendment in (RosterAmendment.objects.filter(roster=roster, accepted_at__isnull=False,
                                                     not_applied_resolved_at__isnull=True)
                      .exclude(not_applied="").order_by("accepted_at")):
        row = by_id.get(amendment.roster_entry_id)
        name = f"{row.record['family_name']} {row.record['given_name']}" if row else ""
        unapplied.append(UnappliedView(amendment=amendment, name=name, items=[
            (_(labels.get(key, key)), text) for key, text in amendment.problems.items()
        ]))
    to_create = [r for r in rows if r.state == "sent" and r.pending_kind != RosterAmendment.Kind.REMOVED]
    kinds = Counter(r.pending_kind for r in rows if r.state == "sent")
    with transaction.atomic():
        audit_record(
            actor=actor.user, action="rosters.roster.viewed", obj=roster,
            fields=list(RECORD_KEYS), detail={"rows": len(rows), "amendments": len(pending)},
            scope=Scope(school_id=roster.school_id, board_id=roster.board_id),
        )
    return RosterDetail(
        roster=roster, rows=rows, amendments=amendments, unapplied=unapplied,
        pupils_to_create=len(to_create) if roster.status != Roster.Status.ACCEPTED else 0,
        guardians_to_create=(sum(1 for r in to_create if r.record["guardian_family_name"])
                             if roster.status != Roster.Status.ACCEPTED else 0),
        skipped_removed=kinds.get(RosterAmendment.Kind.REMOVED, 0),
        error_rows=sum(1 for r in to_create if r.errors),
        warning_rows=sum(1 for r in rows if r.warnings),
        grade_label=grade_display(ENTRANT_GRADE_CODE),
    )



@dataclass(frozen=True)
class GakureiboTodo:
    """For a board officer's home page: what still needs doing for next April's entrants (counts only)."""

    fiscal_year: int
    undesignated: int
    needs_review: int
    unsent_schools: int
    pending_amendments: int

    @property
    def total(self) -> int:
        return self.undesignated + self.needs_review + self.unsent_schools


def gakureibo_todo(*, actor: Actor, fiscal_year: int | None = None) -> GakureiboTodo:
    """Children without a designated school, rows to check, schools whose roster is not sent yet, and
    amendments the schools have not taken — over the boards whose 学齢簿 the actor keeps."""
    year = fiscal_year or gakureibo_default_year()
    if not actor.has(roles.GAKUREIBO_MANAGE):
        return GakureiboTodo(year, 0, 0, 0, 0)
    boards = scope.boards_for(actor, roles.GAKUREIBO_MANAGE)
    active = GakureiboEntry.objects.filter(board__in=boards, fiscal_year=year, status=GakureiboEntry.Status.ACTIVE)
    counts = active.aggregate(undesignated=Count("pk", filter=Q(designated_school__isnull=True)),
                              needs_review=Count("pk", filter=Q(needs_review=True)))
    designated = set(active.filter(designated_school__isnull=False)
                     .values_list("designated_school_id", flat=True).distinct())
    sent = set(Roster.objects.filter(fiscal_year=year, school_id__in=designated).values_list("school_id", flat=True))
    pending = RosterAmendment.objects.filter(roster__fiscal_year=year, accepted_at__isnull=True,
                                             roster_entry__entry__board__in=boards).count()
    return GakureiboTodo(fiscal_year=year, undesignated=counts["undesignated"], needs_review=counts["needs_review"],
                         unsent_schools=len(designated - sent), pending_amendments=pending)
