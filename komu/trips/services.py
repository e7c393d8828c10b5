"""Writes of 校外活動: setting up and editing a trip (participants, chaperones added and removed — a removed
chaperone's row is kept, marked removed), the nurse's release of health notes, the principal's revocation of a
chaperone, the lost-phone report (signed in elsewhere, or with the one-time code) and the issue of that code. Each
checks capability and scope and audits in the same transaction."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.audit.services import Scope, audit_record
from komu.core.errors import PermissionDeniedError, ValidationFailed
from komu.core.text import TextError, reject_control_chars
from komu.directory.models import HomeroomClass, Role, School, StaffAssignment
from komu.trips import selectors
from komu.trips.models import Trip, TripChaperone, TripHealthRelease, TripIncident, TripParticipant

# A trip window longer than this is not a trip (and would keep contacts readable too long).
MAX_WINDOW = datetime.timedelta(days=14)
_STAFF_ROLES = (Role.PRINCIPAL, Role.VICE_PRINCIPAL, Role.SCHOOL_ADMIN, Role.HOMEROOM_TEACHER, Role.TEACHER,
                Role.SCHOOL_NURSE)
_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def _scope(trip: Trip) -> Scope:
    return Scope(school_id=trip.school_id, board_id=trip.school.board_id)


def code_hash(code: str) -> str:
    normalised = "".join(ch for ch in code.upper() if ch.isalnum())
    return hmac.new(settings.SECRET_KEY.encode(), f"trips.lost:{normalised}".encode(), hashlib.sha256).hexdigest()


def staff_of(school: School) -> list[Any]:
    """The staff members of a school today (chaperone candidates), by display name."""
    today = timezone.localdate()
    rows = (StaffAssignment.objects.filter(school=school, role__in=_STAFF_ROLES)
            .filter(Q(start_date__isnull=True) | Q(start_date__lte=today))
            .filter(Q(end_date__isnull=True) | Q(end_date__gte=today))
            .select_related("user"))
    users = {a.user.pk: a.user for a in rows if a.user.is_active}
    return sorted(users.values(), key=lambda u: (u.display_name_kana or u.display_name or u.username))


@dataclass(frozen=True)
class TripData:
    """What the trip form sets: the name, the window, the participants (whole classes and/or chosen pupils) and
    the chaperones."""

    title: str
    starts_at: datetime.datetime
    ends_at: datetime.datetime
    class_ids: Sequence[object] = ()
    student_ids: Sequence[object] = ()
    chaperone_ids: Sequence[object] = ()


@dataclass
class _Checked:
    title: str
    school: School
    classes: list[HomeroomClass]
    pupils: set[Any]
    chaperones: dict[str, Any]


def _check(actor: Actor, data: TripData, *, trip: Trip | None = None) -> _Checked:
    """The rules shared by setting up and editing a trip; ValidationFailed with every field's message. When
    editing, what the trip already has (its classes, participants and chaperones not revoked) stays choosable even
    if the actor no longer reaches it; a chaperone the principal revoked cannot be chosen again. A chaperone
    removed earlier is like anyone else: choosable again while on the school's staff."""
    errors: dict[str, list[str]] = {}
    title = (data.title or "").strip()
    starts_at, ends_at = data.starts_at, data.ends_at
    try:
        reject_control_chars(title, _("名称"))
    except TextError as exc:
        errors["title"] = [str(exc)]
    if not title:
        errors["title"] = [_("名称を入力してください（例: 修学旅行（京都・奈良））。")]
    elif len(title) > 100:
        errors["title"] = [_("名称は100文字以内で入力してください。")]
    if ends_at <= starts_at:
        errors["ends_at"] = [_("終了は開始より後の日時にしてください。")]
    elif ends_at - starts_at > MAX_WINDOW:
        errors["ends_at"] = [_("閲覧できる期間は14日以内にしてください。")]
    elif ends_at <= timezone.now():
        errors["ends_at"] = [_("終了日時がすでに過ぎています。")]
    schools = scope.schools_for(actor, roles.TRIPS_MANAGE)
    class_ids = list(dict.fromkeys(str(c) for c in data.class_ids))
    classes = list(scope.classes_for(actor, roles.STUDENTS_VIEW).filter(
        pk__in=[c for c in class_ids if c.isdigit()], school_year__school__in=schools,
    ).select_related("school_year__school"))
    existing_pupils: set[str] = set()
    if trip is not None:
        found = {str(c.pk) for c in classes}
        classes += list(trip.classes.filter(pk__in=[c for c in class_ids if c.isdigit() and c not in found])
                        .select_related("school_year__school"))
        existing_pupils = {str(pk) for pk in trip.participants.values_list("student_id", flat=True)}
    if len(classes) != len(class_ids):
        errors["classes"] = [_("選べない学級が含まれています。")]
    reachable = scope.students_for(actor, roles.STUDENTS_VIEW).filter(school__in=schools, is_active=True)
    student_ids = list(dict.fromkeys(str(s) for s in data.student_ids))
    chosen = {str(s.pk): s.school_id for s in reachable.filter(pk__in=[s for s in student_ids if _is_uuid(s)])}
    if trip is not None:
        chosen.update({s: trip.school_id for s in student_ids if s in existing_pupils and s not in chosen})
    if len(chosen) != len(student_ids):
        errors["students"] = [_("選べない児童生徒が含まれています。")]
    school_ids = {c.school_year.school_id for c in classes} | set(chosen.values())
    if trip is not None:
        school_ids.add(trip.school_id)
    if len(school_ids) > 1:
        errors["classes"] = [_("1つの校外活動には1つの学校の児童生徒だけを登録できます。")]
    if not classes and not chosen and "students" not in errors and "classes" not in errors:
        errors["classes"] = [_("参加する学級か児童生徒を選んでください。")]
    school = None
    if len(school_ids) == 1:
        school = trip.school if trip is not None else School.objects.get(pk=next(iter(school_ids)))
    staff = {str(u.pk): u for u in staff_of(school)} if school else {}
    revoked: set[str] = set()
    if trip is not None:
        for c in trip.chaperones.filter(removed_at__isnull=True).select_related("user"):
            if c.revoked_at is None:
                staff.setdefault(str(c.user_id), c.user)
            else:
                revoked.add(str(c.user_id))
    wanted = list(dict.fromkeys(str(c) for c in data.chaperone_ids))
    if not wanted:
        errors["chaperones"] = [_("引率者を1人以上選んでください。")]
    elif any(c in revoked for c in wanted):
        errors["chaperones"] = [_("閲覧を取り消された引率者は、もう一度選ぶことはできません。")]
    elif any(c not in staff for c in wanted):
        errors["chaperones"] = [_("この学校の教職員でない人が含まれています。")]
    if errors:
        raise ValidationFailed(_("入力内容を確認してください。"), errors=errors)
    assert school is not None
    pupils: set[Any] = set(chosen)
    pupils |= {str(pk) for pk in reachable.filter(memberships__homeroom_class__in=classes)
               .values_list("pk", flat=True)}
    if trip is not None:
        # Participants of a class kept on the trip stay, even if the actor no longer reaches them.
        pupils |= {str(pk) for pk in trip.participants.filter(student__memberships__homeroom_class__in=classes)
                   .values_list("student_id", flat=True)}
    return _Checked(title, school, classes, pupils, {c: staff[c] for c in wanted})


def trip_create(*, actor: Actor, title: str, starts_at: datetime.datetime, ends_at: datetime.datetime,
                class_ids: Sequence[object], student_ids: Sequence[object],
                chaperone_ids: Sequence[object]) -> Trip:
    """Set up a trip: whole classes (expanded into their enrolled pupils now) and/or chosen pupils the actor
    reaches (a homeroom teacher: their class), chaperones among the school's staff. Audited
    "trips.trip.created" with the participants' ids."""
    if not actor.has(roles.TRIPS_MANAGE):
        raise PermissionDeniedError(_("校外活動を登録する権限がありません。"))
    checked = _check(actor, TripData(title, starts_at, ends_at, class_ids, student_ids, chaperone_ids))
    with transaction.atomic():
        trip = Trip(school=checked.school, title=checked.title, starts_at=starts_at, ends_at=ends_at,
                    created_by=actor.user)
        trip.full_clean()
        trip.save()
        trip.classes.set(checked.classes)
        TripParticipant.objects.bulk_create([TripParticipant(trip=trip, student_id=pk)
                                             for pk in sorted(checked.pupils)])
        TripChaperone.objects.bulk_create([TripChaperone(trip=trip, user=u) for u in checked.chaperones.values()])
        audit_record(actor=actor.user, action="trips.trip.created", obj=trip,
                     detail={"title": checked.title, "starts_at": starts_at.isoformat(),
                             "ends_at": ends_at.isoformat(), "person_ids": sorted(checked.pupils),
                             "chaperone_ids": sorted(checked.chaperones)},
                     scope=_scope(trip))
    return trip


def trip_update(*, actor: Actor, trip_id: object, data: TripData) -> Trip:
    """Edit a trip not yet ended, with the rules of setting up. Takes effect on the chaperones' next request: a
    narrowed window is checked against the stored one, a removed chaperone has no access any more — their row is
    kept with who removed them and when (the trip's page lists them), their lost-phone code is void, and adding
    them again later makes a new row; chaperones the principal revoked stay revoked. Pupils no longer taking part
    lose their released health notes. Audited "trips.trip.updated" with old → new for the name, window and classes,
    and the ids added and removed."""
    if not actor.has(roles.TRIPS_MANAGE):
        raise PermissionDeniedError(_("校外活動を変更する権限がありません。"))
    with transaction.atomic():
        trip = scope.get_in_scope(selectors.managed_trips(actor=actor).select_for_update(of=("self",)), pk=trip_id)
        if trip.ends_at <= timezone.now():
            raise ValidationFailed(_("終了した校外活動は変更できません。"))
        checked = _check(actor, data, trip=trip)
        before = {"title": trip.title, "starts_at": trip.starts_at.isoformat(), "ends_at": trip.ends_at.isoformat(),
                  "class_ids": sorted(str(pk) for pk in trip.classes.values_list("pk", flat=True))}
        trip.title, trip.starts_at, trip.ends_at = checked.title, data.starts_at, data.ends_at
        trip.full_clean()
        trip.save()
        trip.classes.set(checked.classes)
        after = {"title": trip.title, "starts_at": trip.starts_at.isoformat(), "ends_at": trip.ends_at.isoformat(),
                 "class_ids": sorted(str(c.pk) for c in checked.classes)}
        changes = {k: [before[k], after[k]] for k in before if before[k] != after[k]}
        had = {str(pk) for pk in trip.participants.values_list("student_id", flat=True)}
        added, removed = sorted(checked.pupils - had), sorted(had - checked.pupils)
        TripParticipant.objects.bulk_create([TripParticipant(trip=trip, student_id=pk) for pk in added])
        dropped_notes = 0
        if removed:
            trip.participants.filter(student_id__in=removed).delete()
            dropped_notes, _n = trip.health_releases.filter(student_id__in=removed).delete()
        # Locked so that a revocation at the same moment either comes first (the chaperone stays, revoked) or
        # finds the row removed (404), never both.
        current = {str(c.user_id): c for c in trip.chaperones.select_for_update()
                   .filter(revoked_at__isnull=True, removed_at__isnull=True)}
        chaperones_added = sorted(set(checked.chaperones) - set(current))
        chaperones_removed = sorted(set(current) - set(checked.chaperones))
        TripChaperone.objects.bulk_create([TripChaperone(trip=trip, user=checked.chaperones[c])
                                           for c in chaperones_added])
        for user_id in chaperones_removed:
            _remove(current[user_id], actor.user)
        if changes or added or removed or chaperones_added or chaperones_removed:
            fields = sorted(changes) + (["participants"] if added or removed else []) + (
                ["chaperones"] if chaperones_added or chaperones_removed else []) + (
                ["health_note"] if dropped_notes else [])
            audit_record(actor=actor.user, action="trips.trip.updated", obj=trip, fields=fields,
                         detail={"changes": changes, "person_ids_added": added, "person_ids_removed": removed,
                                 "chaperone_ids_added": chaperones_added,
                                 "chaperone_ids_removed": chaperones_removed,
                                 "health_releases_removed": dropped_notes},
                         scope=_scope(trip))
    return trip


def _is_uuid(value: object) -> bool:
    import uuid

    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _trip_in(actor: Actor, capability: str, trip_id: object) -> Trip:
    if not actor.has(capability):
        raise PermissionDeniedError(_("この操作を行う権限がありません。"))
    schools = scope.schools_for(actor, capability)
    return scope.get_in_scope(Trip.objects.select_related("school").filter(school__in=schools), pk=trip_id)


def trip_health_release_set(*, actor: Actor, trip_id: object, student_id: object, note: str | None) -> None:
    """The school nurse releases (note text) or withdraws (None) one participant's health note for the trip."""
    trip = _trip_in(actor, roles.TRIPS_HEALTH_RELEASE, trip_id)
    participant = scope.get_in_scope(TripParticipant.objects.filter(trip=trip), student_id=student_id)
    with transaction.atomic():
        existing = TripHealthRelease.objects.filter(trip=trip, student_id=participant.student_id).first()
        if note is not None and not note.strip():
            message = _("公開する内容を入力してください（例: 卵アレルギー・エピペン携帯）。公開しないときは「公開をやめる」を押してください。")
            raise ValidationFailed(message, errors={"note": [message]})
        if note is None:
            if existing is None:
                return
            existing.delete()
            action = "trips.health.withdrawn"
        else:
            text = note.strip()
            try:
                reject_control_chars(text, _("健康上の配慮"), allow="\n\r")
            except TextError as exc:
                raise ValidationFailed(str(exc), errors={"note": [str(exc)]}) from None
            if len(text) > 500:
                message = _("健康上の配慮は500文字以内で入力してください。")
                raise ValidationFailed(message, errors={"note": [message]})
            release = existing or TripHealthRelease(trip=trip, student_id=participant.student_id)
            release.note = text
            release.released_by = actor.user
            release.full_clean()
            release.save()
            action = "trips.health.released"
        audit_record(actor=actor.user, action=action, obj=trip, fields=["health_note"],
                     detail={"person_ids": [str(participant.student_id)]}, scope=_scope(trip))


def trip_chaperone_revoke(*, actor: Actor, chaperone_id: object, reason: str) -> TripChaperone:
    """The principal (or vice-principal) revokes a chaperone's access at once; their next request is refused."""
    if not actor.has(roles.TRIPS_REVOKE):
        raise PermissionDeniedError(_("引率者の閲覧を取り消す権限がありません。"))
    schools = scope.schools_for(actor, roles.TRIPS_REVOKE)
    with transaction.atomic():
        chaperone = scope.get_in_scope(
            TripChaperone.objects.select_related("trip__school").select_for_update()
            .filter(trip__school__in=schools, removed_at__isnull=True), pk=chaperone_id,
        )
        if chaperone.revoked_at is not None:
            return chaperone
        text = (reason or "").strip()[:200] or _("管理職による取消")
        _revoke(chaperone, actor.user, text)
        audit_record(actor=actor.user, action="trips.chaperone.revoked", obj=chaperone.trip,
                     detail={"chaperone_user_id": str(chaperone.user_id), "reason": text},
                     scope=_scope(chaperone.trip))
    return chaperone


def _remove(chaperone: TripChaperone, by: Any) -> None:
    """解除: the row stays as the record that this person could read the contacts until now."""
    chaperone.removed_at = timezone.now()
    chaperone.removed_by = by
    chaperone.lost_code_hash = ""
    chaperone.full_clean()
    chaperone.save(update_fields=["removed_at", "removed_by", "lost_code_hash", "updated_at"])


def _revoke(chaperone: TripChaperone, by: Any, reason: str) -> None:
    chaperone.revoked_at = timezone.now()
    chaperone.revoked_by = by
    chaperone.revoke_reason = reason
    chaperone.lost_code_hash = ""
    chaperone.save(update_fields=["revoked_at", "revoked_by", "revoke_reason", "lost_code_hash", "updated_at"])


def trip_lost_code_issue(*, actor: Actor, trip_id: object) -> str:
    """A chaperone takes their lost-phone code (to keep apart from the phone: in a wallet, with a colleague).
    Only its hash is kept; issuing again replaces the old code."""
    chaperone = _own_chaperone(actor, trip_id)
    code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))
    with transaction.atomic():
        chaperone.lost_code_hash = code_hash(code)
        chaperone.save(update_fields=["lost_code_hash", "updated_at"])
        audit_record(actor=actor.user, action="trips.lost_code.issued", obj=chaperone.trip,
                     scope=_scope(chaperone.trip))
    return f"{code[:4]}-{code[4:8]}-{code[8:]}"


def _own_chaperone(actor: Actor, trip_id: object) -> TripChaperone:
    if not actor.has(roles.TRIPS_ACCOMPANY):
        raise PermissionDeniedError(_("引率者ではありません。"))
    chaperone = scope.get_in_scope(TripChaperone.objects.select_related("trip__school")
                                   .filter(user=actor.user, removed_at__isnull=True), trip_id=trip_id)
    if chaperone.revoked_at is not None:
        raise PermissionDeniedError(_("この校外活動の閲覧は取り消されています。"))
    return chaperone


def _incident(chaperone: TripChaperone, *, reported_by: Any, channel: str, note: str) -> TripIncident:
    trip = chaperone.trip
    count = TripParticipant.objects.filter(trip=trip).count()
    _revoke(chaperone, reported_by, _("端末の紛失（本人の届出）"))
    incident = TripIncident(trip=trip, chaperone=chaperone, reported_by=reported_by, channel=channel,
                            note=note[:1000], person_count=count)
    incident.full_clean()
    incident.save()
    audit_record(actor=reported_by, action="trips.phone.lost", obj=incident,
                 detail={"trip_id": trip.pk, "chaperone_user_id": str(chaperone.user_id), "channel": channel,
                         "persons": count},
                 scope=_scope(trip))
    return incident


def trip_phone_lost_report(*, actor: Actor, trip_id: object, note: str = "") -> TripIncident:
    """One step, signed in on any device: my access to this trip ends now and an incident is recorded."""
    with transaction.atomic():
        chaperone = _own_chaperone(actor, trip_id)
        return _incident(chaperone, reported_by=actor.user, channel="signed_in", note=note.strip())


def trip_phone_lost_report_by_code(*, code: str, note: str = "") -> TripIncident:
    """One step without signing in: the lost-phone code revokes that chaperone's access and records an
    incident. A wrong or used code answers like a missing one."""
    digest = code_hash(code or "")
    with transaction.atomic():
        chaperone = scope.get_in_scope(
            TripChaperone.objects.select_related("trip__school").select_for_update()
            .filter(revoked_at__isnull=True, removed_at__isnull=True).exclude(lost_code_hash=""),
            lost_code_hash=digest,
        )
        return _incident(chaperone, reported_by=None, channel="code", note=(note or "").strip())


def trip_incident_draft_report(*, actor: Actor, incident_id: object) -> str:
    """The principal drafts the breach-response incident (komu.privacy, 端末の紛失) from a lost-phone report:
    the persons are the trip's participants with the fields the phone could show (names, guardians' phones,
    emergency contacts, and the health notes released for the trip). Nothing was stored on the phone (no offline
    mode, pages sent no-store), so the incident records the data as not kept on the device beyond the screen.
    Returns the incident's id; a second call returns the same one."""
    from komu.privacy.models import Incident
    from komu.privacy.services import IncidentInput, incident_create

    if not actor.has(roles.PRIVACY_INCIDENTS):
        raise PermissionDeniedError(_("事故報告を作成する権限がありません。"))
    schools = scope.schools_for(actor, roles.PRIVACY_INCIDENTS)
    with transaction.atomic():
        report = scope.get_in_scope(
            TripIncident.objects.select_related("trip__school", "chaperone__user").select_for_update()
            .filter(trip__school__in=schools), pk=incident_id)
        if report.privacy_incident:
            return report.privacy_incident
        trip = report.trip
        released = set(TripHealthRelease.objects.filter(trip=trip).values_list("student_id", flat=True))
        base = ["name", "kana", "class", "shusseki_no", "guardian_name", "guardian_phone", "emergency_contacts"]
        persons = {pid: base + (["health_note"] if pid in released else [])
                   for pid in TripParticipant.objects.filter(trip=trip).values_list("student_id", flat=True)}
        when = timezone.localtime(report.created_at)
        incident = incident_create(
            actor=actor,
            data=IncidentInput(
                title=_("校外活動中の端末紛失（%(title)s）") % {"title": trip.title},
                kind=Incident.Kind.LOST_DEVICE, found_at=report.created_at, school_id=trip.school_id,
                summary=_("%(when)s、校外活動「%(title)s」の引率者が参加者の連絡先を表示できる端末を紛失した。"
                          "同時刻に閲覧を取り消した（%(n)d人分）。端末にはデータを保存しない設定（オフライン非対応・"
                          "キャッシュ不可）であった。") % {"when": when.strftime("%Y年%m月%d日 %H:%M"),
                                                       "title": trip.title, "n": len(persons)},
            ),
            persons=persons, source=Incident.Source.MANUAL,
            source_detail={"trip_id": trip.pk, "trip_incident_id": str(report.pk)},
        )
        report.privacy_incident = str(incident.pk)
        report.save(update_fields=["privacy_incident", "updated_at"])
        audit_record(actor=actor.user, action="trips.phone.reported", obj=report,
                     detail={"privacy_incident": report.privacy_incident}, scope=_scope(trip))
    return report.privacy_incident
