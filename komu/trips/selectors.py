"""Reads of 校外活動: the trips a person manages or accompanies, one trip, the nurse's list of participants' health
notes, and the chaperone's sheet (contacts and released health notes) — the sheet only inside the window, only for
a chaperone not revoked, checked on every request and audited as "trips.contacts.viewed".

A chaperone removed from a trip (解除) keeps their row, marked `removed_at`: every read that decides what a person
may do as a chaperone filters `removed_at__isnull=True`, so a removed chaperone is no chaperone at all (the sheet
answers 404, as it did when the row was deleted); only the trip's page lists them, to those who manage the trip."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Prefetch, Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.audit.services import Scope, audit_record
from komu.core.errors import KomuError, NotFoundOrNoAccess
from komu.directory.models import Role
from komu.students.models import ClassMembership, EmergencyContact, GuardianLink, Student
from komu.trips.models import Trip, TripChaperone, TripHealthRelease, TripParticipant
from komu.web.selectors import Task


class AccessRefused(KomuError):
    """The chaperone is known but may not read now: before or after the window, or revoked. `reason` is one of
    "before", "after", "revoked"."""

    def __init__(self, message: str, *, reason: str, trip: Trip) -> None:
        super().__init__(message)
        self.reason = reason
        self.trip = trip


def trips_for(*, actor: Actor) -> QuerySet[Trip]:
    """Trips the actor manages or follows: school roles (and the nurse) their school's trips; a homeroom
    teacher the trips they set up."""
    q = Q(pk__in=[])
    for capability in (roles.TRIPS_MANAGE, roles.TRIPS_HEALTH_RELEASE, roles.TRIPS_REVOKE):
        for grant in actor.grants_with(capability):
            if grant.role == Role.HOMEROOM_TEACHER:
                q |= Q(created_by=actor.user)
            elif grant.school_id is not None:
                q |= Q(school_id=grant.school_id)
    return Trip.objects.filter(q).select_related("school", "created_by").distinct()


def managed_trips(*, actor: Actor) -> QuerySet[Trip]:
    """The trips the actor may edit: a homeroom teacher those they set up; the school's managers (principal,
    vice-principal, school administrator) their school's."""
    q = Q(pk__in=[])
    for grant in actor.grants_with(roles.TRIPS_MANAGE):
        if grant.role == Role.HOMEROOM_TEACHER:
            q |= Q(created_by=actor.user)
        elif grant.school_id is not None:
            q |= Q(school_id=grant.school_id)
    return Trip.objects.filter(q).select_related("school")


def trip_get_for(*, actor: Actor, trip_id: object) -> Trip:
    return scope.get_in_scope(trips_for(actor=actor), pk=trip_id)


@dataclass(frozen=True)
class ChaperoneLine:
    id: int
    user_id: object
    name: str
    revoked_at: datetime.datetime | None
    revoke_reason: str
    has_code: bool


@dataclass(frozen=True)
class RemovedChaperoneLine:
    """解除した引率者: who could read the contacts until `removed_at`, and who removed them."""

    name: str
    added_at: datetime.datetime
    removed_at: datetime.datetime
    removed_by: str


@dataclass(frozen=True)
class IncidentLine:
    id: object
    reported_at: datetime.datetime
    chaperone: str
    channel: str
    person_count: int
    privacy_incident: str


@dataclass(frozen=True)
class TripSummary:
    trip: Trip
    participant_count: int
    released_count: int
    chaperones: list[ChaperoneLine]
    classes: list[str]
    incidents: list[IncidentLine]
    manages: bool = False
    removed_chaperones: list[RemovedChaperoneLine] = field(default_factory=list)

    @property
    def state(self) -> str:
        now = timezone.now()
        if now < self.trip.starts_at:
            return "before"
        return "after" if now >= self.trip.ends_at else "open"


def _person(user: Any) -> str:
    return f"{user.display_name}（{user.username}）" if user.display_name else str(user.username)


def trip_summary(*, actor: Actor, trip_id: object) -> TripSummary:
    """A trip's counts and current chaperones (no pupils' personal data). For those who manage the trip
    (managed_trips) also the chaperones removed from it, with who removed them and when, newest first: who could
    read the contacts, and until when."""
    trip = trip_get_for(actor=actor, trip_id=trip_id)
    manages = managed_trips(actor=actor).filter(pk=trip.pk).exists()
    rows = trip.chaperones.select_related("user", "removed_by").order_by("pk")
    if not manages:
        rows = rows.filter(removed_at__isnull=True)
    chaperones, removed = [], []
    for c in rows:
        if c.removed_at is None:
            chaperones.append(ChaperoneLine(c.pk, c.user_id, _person(c.user), c.revoked_at, c.revoke_reason,
                                            bool(c.lost_code_hash)))
        else:
            removed.append(RemovedChaperoneLine(_person(c.user), c.created_at, c.removed_at,
                                                _person(c.removed_by) if c.removed_by else "—"))
    removed.sort(key=lambda line: line.removed_at, reverse=True)
    return TripSummary(
        trip=trip, participant_count=trip.participants.count(), released_count=trip.health_releases.count(),
        chaperones=chaperones, classes=[c.display_label for c in trip.classes.order_by("grade_code", "sort_order", "name")],
        incidents=[
            IncidentLine(i.pk, i.created_at, i.chaperone.user.display_name or i.chaperone.user.username,
                         i.get_channel_display(), i.person_count, i.privacy_incident)
            for i in trip.incidents.select_related("chaperone__user")
        ],
        manages=manages, removed_chaperones=removed,
    )


def my_trips(*, actor: Actor) -> list[TripChaperone]:
    """The trips the actor accompanies, current and coming first (no personal data)."""
    if not actor.has(roles.TRIPS_ACCOMPANY):
        return []
    since = timezone.now() - datetime.timedelta(days=7)
    return list(TripChaperone.objects.filter(user=actor.user, removed_at__isnull=True, trip__ends_at__gte=since)
                .select_related("trip__school").order_by("trip__starts_at"))


@dataclass(frozen=True)
class HealthLine:
    student_id: str
    name: str
    klass: str
    shusseki_no: int | None
    health_note: str
    released: str | None


def health_candidates(*, actor: Actor, trip_id: object) -> tuple[Trip, list[HealthLine]]:
    """For the school nurse: each participant, their recorded 健康上の配慮 and what is released for this trip.
    Reads class I data: audited "trips.health.viewed"."""
    if not actor.has(roles.TRIPS_HEALTH_RELEASE):
        raise NotFoundOrNoAccess("見つかりません。")
    schools = scope.schools_for(actor, roles.TRIPS_HEALTH_RELEASE)
    trip = scope.get_in_scope(Trip.objects.select_related("school").filter(school__in=schools), pk=trip_id)
    released = {r.student_id: r.note for r in TripHealthRelease.objects.filter(trip=trip)}
    lines = [
        HealthLine(str(s.pk), s.full_name, klass, no, s.health_note, released.get(s.pk))
        for s, klass, no in _participants(trip)
    ]
    with transaction.atomic():
        audit_record(actor=actor.user, action="trips.health.viewed", obj=trip, fields=["name", "health_note"],
                     detail={"persons": len(lines)},
                     scope=Scope(school_id=trip.school_id, board_id=trip.school.board_id))
    return trip, lines


def _participants(trip: Trip) -> list[tuple[Student, str, int | None]]:
    students = list(Student.objects.filter(pk__in=TripParticipant.objects.filter(trip=trip).values("student_id"))
                    .prefetch_related(
                        Prefetch("guardian_links", to_attr="ordered_links",
                                 queryset=GuardianLink.objects.select_related("guardian").order_by("priority")),
                        Prefetch("emergency_contacts", to_attr="ordered_contacts",
                                 queryset=EmergencyContact.objects.order_by("priority")),
                    ))
    year_start = timezone.localdate(trip.starts_at)
    membership: dict[object, ClassMembership] = {}
    for m in (ClassMembership.objects.filter(student__in=students)
              .select_related("homeroom_class__school_year").order_by("homeroom_class__school_year__year")):
        if m.homeroom_class.school_year.start_date <= year_start or m.student_id not in membership:
            membership[m.student_id] = m
    rows: list[tuple[Student, str, int | None]] = []
    for s in students:
        found = membership.get(s.pk)
        rows.append((s, found.homeroom_class.display_label if found else "", found.shusseki_no if found else None))
    rows.sort(key=lambda r: (r[1], r[2] or 0))
    return rows


@dataclass(frozen=True)
class Contact:
    label: str
    name: str
    phone: str

    @property
    def tel(self) -> str:
        return "".join(ch for ch in self.phone if ch.isdigit() or ch == "+")


@dataclass(frozen=True)
class SheetLine:
    name: str
    kana: str
    klass: str
    shusseki_no: int | None
    contacts: list[Contact] = field(default_factory=list)
    health: str = ""


@dataclass(frozen=True)
class Sheet:
    trip: Trip
    lines: list[SheetLine]
    ends_at: datetime.datetime


def chaperone_sheet(*, actor: Actor, trip_id: object) -> Sheet:
    """The chaperone's page: exactly the participants' guardians' phones, emergency contacts and released
    health notes. NotFoundOrNoAccess unless the actor is a chaperone of the trip; AccessRefused outside the
    window or after revocation (checked now, on this request). Audited with the persons' ids."""
    if not actor.has(roles.TRIPS_ACCOMPANY):
        raise NotFoundOrNoAccess("見つかりません。")
    chaperone = scope.get_in_scope(
        TripChaperone.objects.select_related("trip__school").filter(user=actor.user, removed_at__isnull=True),
        trip_id=trip_id)
    trip = chaperone.trip
    now = timezone.now()
    audit_scope = Scope(school_id=trip.school_id, board_id=trip.school.board_id)
    refusal = None
    if chaperone.revoked_at is not None:
        refusal = ("revoked", _("この校外活動の連絡先の閲覧は取り消されました。"))
    elif now < trip.starts_at:
        refusal = ("before", _("連絡先は校外活動の期間中だけ表示されます。まだ始まっていません。"))
    elif now >= trip.ends_at:
        refusal = ("after", _("校外活動の期間が終わったため、連絡先は表示されません。"))
    if refusal is not None:
        with transaction.atomic():
            audit_record(actor=actor.user, action="trips.contacts.refused", obj=trip,
                         detail={"reason": refusal[0]}, scope=audit_scope)
        raise AccessRefused(refusal[1], reason=refusal[0], trip=trip)
    released = {r.student_id: r.note for r in TripHealthRelease.objects.filter(trip=trip)}
    lines = []
    ids = []
    for s, klass, no in _participants(trip):
        ids.append(str(s.pk))
        contacts = [Contact(link.relationship, link.guardian.full_name, link.guardian.phone)
                    for link in s.ordered_links if link.guardian.phone]  # type: ignore[attr-defined]
        contacts += [Contact(_("緊急%(n)d・%(rel)s") % {"n": ec.priority, "rel": ec.relationship}, ec.name, ec.phone)
                     for ec in s.ordered_contacts]  # type: ignore[attr-defined]
        lines.append(SheetLine(s.full_name, s.full_kana, klass, no, contacts, released.get(s.pk, "")))
    with transaction.atomic():
        audit_record(actor=actor.user, action="trips.contacts.viewed", obj=trip,
                     fields=["name", "guardian_phone", "emergency_contacts", "health_note"],
                     detail={"person_ids": ids}, scope=audit_scope)
    return Sheet(trip, lines, trip.ends_at)


def home_tasks(*, actor: Actor) -> list[Task]:
    """A chaperone: each trip now open (the contacts page). The nurse: coming trips with no health note
    released yet."""
    now = timezone.now()
    tasks = []
    for c in my_trips(actor=actor):
        if c.revoked_at is None and c.trip.starts_at <= now < c.trip.ends_at:
            tasks.append(Task(_("引率中: %(title)s") % {"title": c.trip.title},
                              _("参加者の緊急連絡先を表示できます。"), reverse("trips:sheet", args=[c.trip_id])))
    if actor.has(roles.TRIPS_HEALTH_RELEASE):
        schools = scope.schools_for(actor, roles.TRIPS_HEALTH_RELEASE)
        for trip in Trip.objects.filter(school__in=schools, ends_at__gt=now, health_releases__isnull=True):
            tasks.append(Task(_("健康上の配慮を公開してください: %(title)s") % {"title": trip.title},
                              _("引率者に伝えるアレルギー・服薬等を選んでください。"),
                              reverse("trips:health", args=[trip.pk])))
    return tasks


@dataclass(frozen=True)
class SetupChoices:
    classes: list[tuple[str, str]]
    students: list[tuple[str, str]]
    chaperones: list[tuple[str, str]]


def setup_choices(*, actor: Actor) -> SetupChoices:
    """What the trip form offers: this year's classes and enrolled pupils the actor reaches (a homeroom teacher:
    their class) in the schools where they set up trips, and those schools' staff as chaperones. The pupils'
    names are a list read: audited "trips.setup.viewed"."""
    from komu.core.wareki import fiscal_year_of
    from komu.trips.services import staff_of

    if not actor.has(roles.TRIPS_MANAGE):
        return SetupChoices([], [], [])
    schools = list(scope.schools_for(actor, roles.TRIPS_MANAGE))
    year = fiscal_year_of(timezone.localdate())
    classes = list(scope.classes_for(actor, roles.STUDENTS_VIEW)
                   .filter(school_year__school__in=schools, school_year__year=year)
                   .select_related("school_year").order_by("grade_code", "sort_order", "name"))
    memberships = list(ClassMembership.objects.filter(
        homeroom_class__in=classes, student__is_active=True,
        student__in=scope.students_for(actor, roles.STUDENTS_VIEW),
    ).select_related("student", "homeroom_class").order_by("homeroom_class__grade_code",
                                                           "homeroom_class__sort_order", "shusseki_no"))
    students = [(str(m.student_id), _("%(klass)s %(no)s番 %(name)s") % {
        "klass": m.homeroom_class.display_label, "no": m.shusseki_no, "name": m.student.full_name})
                for m in memberships]
    staff: dict[str, str] = {}
    for school in schools:
        for user in staff_of(school):
            staff[str(user.pk)] = f"{user.display_name}（{user.username}）" if user.display_name else user.username
    if memberships:
        with transaction.atomic():
            only = schools[0] if len(schools) == 1 else None
            audit_record(actor=actor.user, action="trips.setup.viewed", object_type="trips.trip",
                         fields=["name"], detail={"persons": len(memberships)},
                         scope=Scope(school_id=only.pk, board_id=only.board_id) if only else None)
    return SetupChoices([(str(c.pk), c.display_label) for c in classes], students, list(staff.items()))


@dataclass(frozen=True)
class EditForm:
    trip: Trip
    initial: dict[str, object]
    extra: SetupChoices
    revoked_user_ids: frozenset[str]

    def choices(self, setup: SetupChoices) -> SetupChoices:
        """setup_choices with what the trip has added, without the chaperones the principal revoked (they
        cannot be chosen again)."""
        merged = []
        for name in ("classes", "students", "chaperones"):
            values = list(getattr(setup, name))
            known = {key for key, _label in values}
            values += [(key, label) for key, label in getattr(self.extra, name) if key not in known]
            merged.append([(key, label) for key, label in values
                           if name != "chaperones" or key not in self.revoked_user_ids])
        return SetupChoices(*merged)


def trip_edit_form(*, actor: Actor, trip_id: object) -> EditForm:
    """The edit form's starting values (the trip as it is: its classes, the pupils taking part on their own, the
    chaperones not revoked) and the choices to add to setup_choices for what the actor no longer reaches (pupils
    by name: audited "trips.setup.viewed" when there are any). NotFoundOrNoAccess outside managed_trips."""
    if not actor.has(roles.TRIPS_MANAGE):
        raise NotFoundOrNoAccess("見つかりません。")
    trip = scope.get_in_scope(managed_trips(actor=actor), pk=trip_id)
    classes = list(trip.classes.select_related("school_year").order_by("grade_code", "sort_order", "name"))
    on_their_own = sorted(Student.objects.filter(
        pk__in=trip.participants.exclude(student__memberships__homeroom_class__in=classes).values("student_id"),
    ), key=lambda s: s.full_kana)
    all_chaperones = list(trip.chaperones.filter(removed_at__isnull=True).select_related("user").order_by("pk"))
    chaperones = [c for c in all_chaperones if c.revoked_at is None]
    reachable = {str(pk) for pk in scope.students_for(actor, roles.STUDENTS_VIEW)
                 .filter(pk__in=[s.pk for s in on_their_own], is_active=True).values_list("pk", flat=True)}
    extra_students = [(str(s.pk), s.full_name) for s in on_their_own if str(s.pk) not in reachable]
    if extra_students:
        with transaction.atomic():
            audit_record(actor=actor.user, action="trips.setup.viewed", obj=trip, fields=["name"],
                         detail={"persons": len(extra_students)},
                         scope=Scope(school_id=trip.school_id, board_id=trip.school.board_id))
    return EditForm(
        trip=trip,
        initial={"title": trip.title, "starts_at": timezone.localtime(trip.starts_at),
                 "ends_at": timezone.localtime(trip.ends_at), "classes": [str(c.pk) for c in classes],
                 "students": [str(s.pk) for s in on_their_own],
                 "chaperones": [str(c.user_id) for c in chaperones]},
        extra=SetupChoices(
            [(str(c.pk), c.display_label) for c in classes], extra_students,
            [(str(c.user_id), f"{c.user.display_name}（{c.user.username}）" if c.user.display_name
              else c.user.username) for c in chaperones]),
        revoked_user_ids=frozenset(str(c.user_id) for c in all_chaperones if c.revoked_at is not None),
    )
