"""Writes of the breach response: incidents and their affected persons, the PPC report's items, and the forced
password reset with session revocation for a school's or a board's staff.

Each service checks the capability and the scope again and records its audit event in the same transaction.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from komu.access import roles
from komu.access.scope import Actor, get_in_scope, require, schools_for, students_for
from komu.accounts.models import ApiToken, User
from komu.audit.models import AuditEvent
from komu.audit.services import Scope, audit_record
from komu.core.errors import NotFoundOrNoAccess, ValidationFailed
from komu.directory.models import Board, HomeroomClass, School, StaffAssignment
from komu.disclosures.models import Disclosure
from komu.privacy.models import AffectedPerson, Incident
from komu.students.models import ClassMembership, EmergencyContact, GuardianLink, Student

# The free texts of the PPC report, in the order of the report form.
REPORT_FIELDS = ("summary", "cause", "secondary_damage", "response_to_persons", "publication", "prevention")


def _scope_of(incident: Incident) -> Scope:
    return Scope(school_id=incident.school_id, board_id=incident.board_id)


def incident_queryset(actor: Actor) -> QuerySet[Incident]:
    """Incidents the actor reaches: those of their schools, and a board officer's board-level incidents."""
    schools = schools_for(actor, roles.PRIVACY_INCIDENTS)
    board_ids = [g.board_id for g in actor.grants_with(roles.PRIVACY_INCIDENTS) if g.board_id is not None]
    board_ids += list(Board.objects.filter(parent_id__in=board_ids).values_list("pk", flat=True))
    return Incident.objects.filter(Q(school__in=schools) | Q(school__isnull=True, board_id__in=board_ids))


def get_incident(actor: Actor, incident_id: Any) -> Incident:
    require(actor, roles.PRIVACY_INCIDENTS)
    incident: Incident = get_in_scope(incident_queryset(actor).select_related("school", "board"), pk=incident_id)
    return incident


def _place(actor: Actor, school_id: int | None, board_id: int | None) -> tuple[Board, School | None]:
    """The school (or, for a board officer, the board) the incident belongs to, within the actor's scope."""
    if school_id is not None:
        school = get_in_scope(schools_for(actor, roles.PRIVACY_INCIDENTS).select_related("board"), pk=school_id)
        return school.board, school
    if board_id is not None:
        own = {g.board_id for g in actor.grants_with(roles.PRIVACY_INCIDENTS) if g.board_id is not None}
        board = get_in_scope(Board.objects.filter(Q(pk__in=own) | Q(parent_id__in=own)), pk=board_id)
        return board, None
    schools = list(schools_for(actor, roles.PRIVACY_INCIDENTS).select_related("board")[:2])
    own_boards = [g.board_id for g in actor.grants_with(roles.PRIVACY_INCIDENTS) if g.board_id is not None]
    if own_boards:
        return Board.objects.get(pk=own_boards[0]), None
    if len(schools) == 1:
        return schools[0].board, schools[0]
    raise ValidationFailed("事案の学校を選んでください。", errors={"school": ["学校を選んでください。"]})


def _validate_persons(actor: Actor, board: Board, school: School | None,
                      persons: Mapping[Any, Iterable[str]]) -> dict[uuid.UUID, list[str]]:
    """The pupils named by id, each with its field names; every one must lie in the incident's place and the
    actor's reach (a person outside is refused rather than silently dropped)."""
    wanted: dict[uuid.UUID, list[str]] = {}
    for raw, fields in persons.items():
        try:
            key = raw if isinstance(raw, uuid.UUID) else uuid.UUID(str(raw))
        except ValueError:
            raise ValidationFailed("対象者の指定に誤りがあります。", errors={"persons": [str(raw)]}) from None
        wanted[key] = sorted(set(wanted.get(key, [])) | {str(f) for f in fields})
    reachable = students_for(actor, roles.STUDENTS_VIEW)
    place = Q(school_id=school.pk) if school is not None else Q(school__board=board) | Q(school__board__parent=board)
    found = set(reachable.filter(place, pk__in=list(wanted)).values_list("pk", flat=True))
    missing = set(wanted) - found
    if missing:
        raise ValidationFailed(
            f"事案の範囲（{school.name if school else board.name}）にいない児童生徒が{len(missing)}人含まれています。"
            "範囲を確認してください。",
            errors={"persons": sorted(str(m) for m in missing)},
        )
    return wanted


@dataclass(frozen=True)
class IncidentInput:
    title: str
    kind: str = Incident.Kind.OTHER
    found_at: datetime.datetime | None = None
    occurred_at: datetime.datetime | None = None
    unlawful_purpose: bool = False
    encrypted: bool = False
    summary: str = ""
    cause: str = ""
    school_id: int | None = None
    board_id: int | None = None


def _validate_input(data: IncidentInput) -> None:
    errors: dict[str, list[str]] = {}
    if not data.title.strip():
        errors["title"] = ["件名を入力してください（例：校外学習で名簿を紛失）。"]
    elif len(data.title) > 200:
        errors["title"] = ["件名は200文字以内で入力してください。"]
    if data.kind not in Incident.Kind.values:
        errors["kind"] = ["事案の種類を選んでください。"]
    now = timezone.now()
    if data.found_at is not None and data.found_at > now + datetime.timedelta(minutes=5):
        errors["found_at"] = ["発覚日時に未来の日時は指定できません。"]
    if data.occurred_at is not None and data.found_at is not None and data.occurred_at > data.found_at:
        errors["occurred_at"] = ["発生日時は発覚日時より前にしてください。"]
    if errors:
        raise ValidationFailed("入力内容を確認してください。", errors=errors)


def incident_create(*, actor: Actor, data: IncidentInput, persons: Mapping[Any, Iterable[str]] | None = None,
                    source: str = Incident.Source.MANUAL, source_detail: Mapping[str, Any] | None = None,
                    ) -> Incident:
    """Record an incident with the pupils it concerns (`persons`: student id → field names exposed)."""
    require(actor, roles.PRIVACY_INCIDENTS)
    _validate_input(data)
    with transaction.atomic():
        board, school = _place(actor, data.school_id, data.board_id)
        wanted = _validate_persons(actor, board, school, persons or {})
        items = sorted({f for fields in wanted.values() for f in fields})
        incident = Incident(
            board=board, school=school, title=data.title.strip(), kind=data.kind, source=source,
            source_detail=dict(source_detail or {}), found_at=data.found_at or timezone.now(),
            occurred_at=data.occurred_at, unlawful_purpose=data.unlawful_purpose, encrypted=data.encrypted,
            data_items=items, person_count=len(wanted), summary=data.summary.strip(), cause=data.cause.strip(),
            created_by=actor.user,
        )
        incident.full_clean()
        incident.save()
        AffectedPerson.objects.bulk_create(
            AffectedPerson(incident=incident, student_id=sid, fields=fields) for sid, fields in wanted.items()
        )
        audit_record(
            actor=actor.user, action="privacy.incident.created", obj=incident, fields=items,
            detail={"kind": incident.kind, "source": source, "persons": len(wanted),
                    "source_detail": {k: str(v) for k, v in (source_detail or {}).items()}},
            scope=_scope_of(incident),
        )
    return incident


# --- Where the affected persons come from -------------------------------------------------------------------------

def persons_from_disclosure(actor: Actor, serial: str) -> tuple[Disclosure, dict[str, list[str]]]:
    """The document printed under `serial` and its persons with the fields it showed, from the disclosure log."""
    require(actor, roles.PRIVACY_INCIDENTS)
    serial = serial.strip().upper()
    if not serial:
        raise ValidationFailed("通し番号を入力してください。", errors={"serial": ["通し番号を入力してください。"]})
    schools = schools_for(actor, roles.PRIVACY_INCIDENTS)
    own = [g.board_id for g in actor.grants_with(roles.PRIVACY_INCIDENTS) if g.board_id is not None]
    in_scope = Disclosure.objects.filter(
        Q(school__in=schools) | Q(school__isnull=True, actor__assignments__board_id__in=own)
    ).distinct()
    try:
        disclosure = get_in_scope(in_scope, serial__iexact=serial)
    except NotFoundOrNoAccess:
        raise ValidationFailed(
            f"通し番号 {serial} の印刷・出力の記録が見つかりません。番号を確認してください。",
            errors={"serial": ["この通し番号の記録はありません。"]},
        ) from None
    fields = [str(f) for f in disclosure.fields]
    return disclosure, {str(pid): fields for pid in disclosure.person_ids}


def incident_create_from_lost_document(*, actor: Actor, serial: str, found_at: datetime.datetime | None = None,
                                       summary: str = "") -> Incident:
    """A printed document reported lost: the incident's persons and data items are exactly those the disclosure
    log recorded under its serial. A serial already reported answers its existing incident."""
    disclosure, persons = persons_from_disclosure(actor, serial)
    # Reported lost twice (two people, or a retry): the one incident of that serial, not a second.
    existing: Incident | None = incident_queryset(actor).filter(source=Incident.Source.DISCLOSURE,
                                               source_detail__serial=disclosure.serial).first()
    if existing is not None:
        return existing
    school_id = disclosure.school_id
    board_id = None if school_id is not None else _board_of_user(disclosure.actor_id)
    data = IncidentInput(
        title=f"印刷物の紛失（通し番号 {disclosure.serial}・{disclosure.document}）",
        kind=Incident.Kind.LOST_DOCUMENT, found_at=found_at, school_id=school_id, board_id=board_id,
        summary=summary or (
            f"{timezone.localtime(disclosure.created_at):%Y年%m月%d日}に出力された「{disclosure.document}」"
            f"（通し番号 {disclosure.serial}、{len(persons)}人分）の所在が不明になった。"
        ),
    )
    return incident_create(actor=actor, data=data, persons=persons, source=Incident.Source.DISCLOSURE,
                           source_detail={"serial": disclosure.serial, "disclosure_id": str(disclosure.pk)})


def _board_of_user(user_id: Any) -> int | None:
    return StaffAssignment.objects.filter(user_id=user_id, board__isnull=False).values_list(
        "board_id", flat=True).first()


def persons_from_audit(actor: Actor, *, user_id: Any, start: datetime.datetime,
                       end: datetime.datetime) -> dict[str, list[str]]:
    """Every pupil whose data the account read (or wrote) between start and end, with the fields, from the audit
    log: events that name a pupil, a guardian or an emergency contact of a pupil, or a class (a list read covers
    its members)."""
    require(actor, roles.PRIVACY_INCIDENTS)
    if end <= start:
        raise ValidationFailed("終了日時は開始日時より後にしてください。", errors={"end": ["開始より後にしてください。"]})
    reachable = User.objects.filter(
        Q(assignments__school__in=schools_for(actor, roles.PRIVACY_INCIDENTS))
        | Q(assignments__board_id__in=[
            g.board_id for g in actor.grants_with(roles.PRIVACY_INCIDENTS) if g.board_id is not None])
    ).distinct()
    account = get_in_scope(reachable, pk=user_id)
    persons: dict[str, set[str]] = {}

    def add(student_ids: Iterable[Any], fields: Iterable[str]) -> None:
        for sid in student_ids:
            persons.setdefault(str(sid), set()).update(fields)

    events = AuditEvent.objects.filter(actor_id=str(account.pk), occurred_at__gte=start, occurred_at__lt=end)
    for event in events.iterator():
        fields = [str(f) for f in event.fields]
        sid = (event.detail or {}).get("student_id") if isinstance(event.detail, dict) else None
        if sid:
            add([sid], fields)
        if not event.object_id:
            continue
        if event.object_type == "students.student":
            add([event.object_id], fields)
        elif event.object_type == "directory.homeroomclass" and event.object_id.isdigit():
            add(ClassMembership.objects.filter(homeroom_class_id=int(event.object_id)).values_list(
                "student_id", flat=True), fields)
        elif (key := _uuid_or_none(event.object_id)) is None:
            continue
        elif event.object_type == "students.guardian" and not sid:
            add(GuardianLink.objects.filter(guardian_id=key).values_list("student_id", flat=True), fields)
        elif event.object_type == "students.emergencycontact":
            add(EmergencyContact.objects.filter(pk=key).values_list("student_id", flat=True), fields)
    # Only pupils that still exist and that the investigating actor reaches.
    existing = {str(pk) for pk in students_for(actor, roles.STUDENTS_VIEW).filter(
        pk__in=[_uuid_or_none(k) for k in persons if _uuid_or_none(k)]).values_list("pk", flat=True)}
    return {k: sorted(v) for k, v in persons.items() if k in existing}


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def persons_from_query(actor: Actor, *, school_id: int, class_ids: Iterable[int] = (),
                       fields: Iterable[str]) -> dict[str, list[str]]:
    """The pupils of a school (all of them, or of the chosen classes), each with the same data items."""
    require(actor, roles.PRIVACY_INCIDENTS)
    school = get_in_scope(schools_for(actor, roles.PRIVACY_INCIDENTS), pk=school_id)
    chosen = [int(c) for c in class_ids]
    fields = sorted(set(fields))
    if not fields:
        raise ValidationFailed("漏えい等のおそれがある項目を1つ以上選んでください。",
                               errors={"fields": ["項目を選んでください。"]})
    students = Student.objects.filter(school=school, is_active=True)
    if chosen:
        classes = HomeroomClass.objects.filter(school_year__school=school, pk__in=chosen)
        if classes.count() != len(set(chosen)):
            raise NotFoundOrNoAccess("見つかりません。")
        students = students.filter(memberships__homeroom_class__in=classes)
    return {str(pk): list(fields) for pk in students.values_list("pk", flat=True).distinct()}


# --- Editing the report ----------------------------------------------------------------------------------------

def incident_update_report(*, actor: Actor, incident_id: Any, values: Mapping[str, Any]) -> Incident:
    """Edit the PPC report's items and the flags that set its deadlines."""
    with transaction.atomic():
        incident = get_incident(actor, incident_id)
        changed: list[str] = []
        for name in (*REPORT_FIELDS, "title"):
            if name in values:
                value = str(values[name]).strip()
                if name == "title" and not value:
                    raise ValidationFailed("件名を入力してください。", errors={"title": ["件名を入力してください。"]})
                if len(value) > 4000:
                    raise ValidationFailed("入力内容を確認してください。",
                                           errors={name: ["4000文字以内で入力してください。"]})
                if getattr(incident, name) != value:
                    setattr(incident, name, value)
                    changed.append(name)
        for name in ("unlawful_purpose", "encrypted"):
            if name in values and bool(values[name]) != getattr(incident, name):
                setattr(incident, name, bool(values[name]))
                changed.append(name)
        if "status" in values and values["status"] != incident.status:
            status = str(values["status"])
            if status not in Incident.Status.values:
                raise ValidationFailed("状況を選んでください。", errors={"status": ["状況を選んでください。"]})
            incident.status = status
            now = timezone.now()
            if status == Incident.Status.PRELIMINARY and incident.preliminary_reported_at is None:
                incident.preliminary_reported_at = now
            if status == Incident.Status.FINAL:
                incident.preliminary_reported_at = incident.preliminary_reported_at or now
                incident.final_reported_at = incident.final_reported_at or now
            changed.append("status")
        if not changed:
            return incident
        incident.full_clean()
        incident.save()
        audit_record(actor=actor.user, action="privacy.incident.updated", obj=incident, fields=changed,
                     detail={"status": incident.status}, scope=_scope_of(incident))
    return incident


# --- Forced password reset and session revocation --------------------------------------------------------------

@dataclass(frozen=True)
class LockoutResult:
    accounts: int
    sessions: int
    api_tokens: int


def _staff_of(actor: Actor, *, school_id: int | None, board_id: int | None) -> tuple[Q, Scope, str]:
    if school_id is not None:
        school = get_in_scope(schools_for(actor, roles.PRIVACY_FORCE_RESET), pk=school_id)
        return Q(school=school), Scope(school_id=school.pk, board_id=school.board_id), school.name
    if board_id is None:
        raise ValidationFailed("学校または教育委員会を選んでください。")
    own = {g.board_id for g in actor.grants_with(roles.PRIVACY_FORCE_RESET) if g.board_id is not None}
    board = get_in_scope(Board.objects.filter(Q(pk__in=own) | Q(parent_id__in=own)), pk=board_id)
    schools = School.objects.filter(Q(board=board) | Q(board__parent=board))
    return Q(board=board) | Q(school__in=schools), Scope(board_id=board.pk), board.name


def _sessions_of(user_ids: set[str]) -> list[str]:
    """Keys of the live sessions that belong to these users (the user id sits inside the session data)."""
    keys = []
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if str(session.get_decoded().get("_auth_user_id", "")) in user_ids:
            keys.append(session.session_key)
    return keys


def staff_lockout(*, actor: Actor, school_id: int | None = None, board_id: int | None = None,
                  reason: str, incident_id: Any = None) -> LockoutResult:
    """Sign out every staff account of a school (or of a board: its officers and its schools' staff), make their
    passwords unusable so that each must set a new one through the password-reset e-mail, and revoke their API
    tokens. The acting person is left signed in (they just re-authenticated to do this). Guardians are not
    touched: their accounts are not staff accounts of the school."""
    require(actor, roles.PRIVACY_FORCE_RESET)
    if not reason.strip():
        raise ValidationFailed("理由を入力してください。", errors={"reason": ["理由を入力してください。"]})
    with transaction.atomic():
        where, scope, label = _staff_of(actor, school_id=school_id, board_id=board_id)
        incident = get_incident(actor, incident_id) if incident_id else None
        user_ids = set(
            StaffAssignment.objects.filter(where).exclude(user_id=actor.user.pk).values_list("user_id", flat=True)
        )
        users = list(User.objects.filter(pk__in=user_ids, kind=User.Kind.STAFF))
        for user in users:
            user.set_unusable_password()
        User.objects.bulk_update(users, ["password"])
        keys = _sessions_of({str(u.pk) for u in users})
        Session.objects.filter(session_key__in=keys).delete()
        tokens = ApiToken.objects.filter(user__in=users, revoked_at__isnull=True).update(revoked_at=timezone.now())
        result = LockoutResult(accounts=len(users), sessions=len(keys), api_tokens=tokens)
        audit_record(
            actor=actor.user, action="privacy.staff.locked_out", object_type="directory.school" if school_id
            else "directory.board", object_id=str(school_id or board_id),
            detail={"scope": label, "reason": reason.strip()[:500], "accounts": result.accounts,
                    "sessions": result.sessions, "api_tokens": result.api_tokens,
                    "users": sorted(str(u.pk) for u in users),
                    "incident": str(incident.pk) if incident else ""},
            scope=scope,
        )
    return result
