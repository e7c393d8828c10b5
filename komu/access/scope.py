"""Who can reach what. Every list selector starts from one of these querysets; every fetch by id goes through
`get_in_scope`, which answers NotFoundOrNoAccess (→ 404) alike for missing and out-of-scope objects."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db.models import Model, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext

from komu.access import roles
from komu.audit import context as audit_context
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError
from komu.directory.models import Board, HomeroomClass, Role, School, StaffAssignment

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class Grant:
    role: str
    prefecture_id: str | None = None
    board_id: int | None = None
    school_id: int | None = None
    class_id: int | None = None
    org_code: str = ""
    org_label: str = ""  # as the API returns it; a class is named in Japanese
    org_display: str = ""  # for pages: a class's grade in the screen's language (org_label when blank)


@dataclass(frozen=True)
class Actor:
    """A signed-in person as the access layer sees them: their grants, resolved once per request."""

    user: Any
    grants: tuple[Grant, ...]
    child_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)

    @property
    def is_guardian(self) -> bool:
        return any(g.role == Role.GUARDIAN for g in self.grants)

    def has(self, capability: str) -> bool:
        return any(capability in roles.CAPABILITIES[g.role] for g in self.grants)

    def grants_with(self, capability: str) -> list[Grant]:
        return [g for g in self.grants if capability in roles.CAPABILITIES[g.role]]

    @property
    def primary(self) -> Grant | None:
        if not self.grants:
            return None
        order = {role: i for i, role in enumerate(roles.ROLE_PRECEDENCE)}
        return min(self.grants, key=lambda g: order.get(Role(g.role), 99))

    @property
    def roles(self) -> set[str]:
        return {g.role for g in self.grants}


def _today() -> datetime.date:
    return timezone.localdate()


def get_actor(user: Any) -> Actor:
    """Resolve (and cache on the user object for this request) the grants of a user."""
    cached = getattr(user, "_komu_actor", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        actor = Actor(user=user, grants=())
    else:
        today = _today()
        assignments = (
            StaffAssignment.objects.filter(user=user)
            .filter(Q(start_date__isnull=True) | Q(start_date__lte=today))
            .filter(Q(end_date__isnull=True) | Q(end_date__gte=today))
            .select_related("school", "board", "prefecture", "homeroom_class__school_year")
        )
        grants = [
            Grant(
                role=a.role,
                prefecture_id=a.prefecture_id,
                board_id=a.board_id,
                school_id=a.school_id,
                class_id=a.homeroom_class_id,
                org_code=a.organisation_code,
                org_label=a.organisation_label,
                org_display=a.organisation_display,
            )
            for a in assignments
        ]
        child_ids: frozenset[uuid.UUID] = frozenset()
        if user.kind == "guardian":
            from komu.students.models import GuardianLink

            child_ids = frozenset(
                GuardianLink.objects.filter(guardian__user=user, student__is_active=True).values_list(
                    "student_id", flat=True
                )
            )
            grants.append(Grant(role=Role.GUARDIAN, org_label=gettext("保護者")))
        actor = Actor(user=user, grants=tuple(grants), child_ids=child_ids)
        primary = actor.primary
        # The audit log records the role and organisation a person acted in. The first actor resolved in a
        # request is the person making it (views resolve request.user before anything else).
        if primary is not None and not audit_context.current().role:
            audit_context.set_acting_role(primary.role, primary.org_code)
    if user is not None:
        user._komu_actor = actor
    return actor


def forget_actor(user: Any) -> None:
    if hasattr(user, "_komu_actor"):
        del user._komu_actor


def require(actor: Actor, capability: str) -> None:
    if not actor.has(capability):
        raise PermissionDeniedError("この操作を行う権限がありません。")


def get_in_scope(qs: QuerySet[M], **lookup: Any) -> M:
    """The one object matching `lookup` within `qs`; NotFoundOrNoAccess when it is missing, out of scope, or the
    id is malformed (a malformed id must answer exactly like a missing one)."""
    for key, value in lookup.items():
        # Python's int() and UUID() forgive surrounding spaces and full-width digits ("１" → 1); an id taken
        # from a URL or form is compared exactly, so such a value names nothing.
        is_id = key in ("pk", "id") or key.endswith(("_id", "__pk", "__id"))
        if is_id and isinstance(value, str) and (not value.isascii() or value != value.strip()):
            raise NotFoundOrNoAccess("見つかりません。")
    try:
        return qs.get(**lookup)
    except (ObjectDoesNotExist, ValueError, TypeError, OverflowError, ValidationError):
        raise NotFoundOrNoAccess("見つかりません。") from None


# --- Directory -------------------------------------------------------------------------------------------------

_NATIONWIDE = {Role.OPERATOR, Role.NATIONAL_ANALYST}


def _school_q(grant: Grant) -> Q | None:
    """Schools one grant reaches, or None for all schools."""
    if grant.role in _NATIONWIDE:
        return None
    if grant.role == Role.PREFECTURAL_ANALYST:
        return Q(prefecture_id=grant.prefecture_id)
    if grant.role == Role.BOARD_OFFICER:
        # A prefectural board also oversees the schools of the municipal boards under it.
        return Q(board_id=grant.board_id) | Q(board__parent_id=grant.board_id)
    if grant.school_id is not None:
        return Q(pk=grant.school_id)
    return Q(pk__in=[])


def schools_for(actor: Actor, capability: str = roles.DIRECTORY_VIEW) -> QuerySet[School]:
    grants = actor.grants_with(capability)
    if not grants:
        return School.objects.none()
    q = Q(pk__in=[])
    for grant in grants:
        part = _school_q(grant)
        if part is None:
            return School.objects.all()
        q |= part
    return School.objects.filter(q)


def boards_for(actor: Actor, capability: str = roles.DIRECTORY_VIEW) -> QuerySet[Board]:
    grants = actor.grants_with(capability)
    q = Q(pk__in=[])
    for grant in grants:
        if grant.role in _NATIONWIDE:
            return Board.objects.all()
        if grant.role == Role.PREFECTURAL_ANALYST:
            q |= Q(prefecture_id=grant.prefecture_id)
        elif grant.role == Role.BOARD_OFFICER:
            q |= Q(pk=grant.board_id) | Q(parent_id=grant.board_id)
        elif grant.school_id is not None:
            q |= Q(schools__pk=grant.school_id)
    return Board.objects.filter(q).distinct()


# Capabilities over pupils' data: with these a homeroom teacher's reach is their class, not their school.
_PUPIL_CAPABILITIES = frozenset(
    {roles.STUDENTS_VIEW, roles.STUDENTS_VIEW_SENSITIVE, roles.STUDENTS_EDIT, roles.GUARDIANS_VIEW_CONTACT,
     roles.ATTENDANCE_RECORD, roles.ATTENDANCE_VIEW}
)


def classes_for(actor: Actor, capability: str = roles.DIRECTORY_VIEW) -> QuerySet[HomeroomClass]:
    """Classes the actor reaches with a capability. For the directory that is every class of their schools;
    for pupils' data a homeroom teacher reaches their own class only, as in students_for."""
    q = Q(pk__in=[])
    for grant in actor.grants_with(capability):
        if grant.role == Role.HOMEROOM_TEACHER and capability in _PUPIL_CAPABILITIES:
            q |= Q(pk=grant.class_id)
            continue
        part = _school_q(grant)
        if part is None:
            return HomeroomClass.objects.all()
        q |= Q(school_year__school__in=School.objects.filter(part))
    return HomeroomClass.objects.filter(q)


# --- Personal data -----------------------------------------------------------------------------------------------

def _student_q(grant: Grant, actor: Actor) -> Q:
    if grant.role == Role.GUARDIAN:
        return Q(pk__in=list(actor.child_ids))
    if grant.role == Role.BOARD_OFFICER:
        return Q(school__board_id=grant.board_id) | Q(school__board__parent_id=grant.board_id)
    if grant.role == Role.HOMEROOM_TEACHER:
        return Q(memberships__homeroom_class_id=grant.class_id)
    if grant.school_id is not None:
        return Q(school_id=grant.school_id)
    return Q(pk__in=[])


def students_for(actor: Actor, capability: str = roles.STUDENTS_VIEW) -> QuerySet[Any]:
    """Pupils the actor reaches with a capability. Operators and analysts hold no student capability at all."""
    from komu.students.models import Student

    grants = actor.grants_with(capability)
    if not grants:
        return Student.objects.none()
    q = Q(pk__in=[])
    for grant in grants:
        q |= _student_q(grant, actor)
    # A filter across memberships can repeat a pupil; select by id to keep the queryset plain.
    return Student.objects.filter(pk__in=Student.objects.filter(q).values("pk"))


def can_manage_school(actor: Actor, school: School) -> bool:
    return schools_for(actor, roles.DIRECTORY_MANAGE).filter(pk=school.pk).exists()


@dataclass(frozen=True)
class AuditScope:
    everything: bool
    school_ids: frozenset[int]
    board_ids: frozenset[int]


def audit_scope(actor: Actor) -> AuditScope | None:
    grants = actor.grants_with(roles.AUDIT_VIEW)
    if not grants:
        return None
    if any(g.role == Role.OPERATOR for g in grants):
        return AuditScope(everything=True, school_ids=frozenset(), board_ids=frozenset())
    board_ids = {g.board_id for g in grants if g.board_id is not None}
    school_ids = {g.school_id for g in grants if g.school_id is not None}
    if board_ids:
        # As in schools_for: a prefectural board also oversees the municipal boards under it and their
        # schools.
        board_ids |= set(Board.objects.filter(parent_id__in=board_ids).values_list("pk", flat=True))
        school_ids |= set(School.objects.filter(board_id__in=board_ids).values_list("pk", flat=True))
    return AuditScope(everything=False, school_ids=frozenset(school_ids), board_ids=frozenset(board_ids))
