"""Reading approval requests within the actor's reach, who may act on them, and the verdict on their seals.

Who sees a request: its submitter; the school's approvers (capability approvals.approve); whoever has acted on it;
and whoever may act on it now — the holder of the current step's role at the school, or their named delegate
(代決). Anything else answers NotFoundOrNoAccess (→ 404).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from komu.access import roles
from komu.access.scope import Actor, get_in_scope
from komu.approvals import registry, seals
from komu.approvals.models import ApprovalAction, ApprovalChain, ApprovalRequest, ApprovalSnapshot, Delegation
from komu.audit.services import Scope, audit_record
from komu.core.errors import NotFoundOrNoAccess
from komu.directory.models import Role, School, StaffAssignment
from komu.web.selectors import Task

# The roles a chain step may name: the school's management (教頭 is registered as 学校事務・教頭 at some schools).
CHAIN_ROLES = (Role.SCHOOL_ADMIN, Role.VICE_PRINCIPAL, Role.PRINCIPAL)
# A pending request untouched this long is overdue: it is reminded (`komu approvals remind`) and shown urgent.
DEFAULT_REMIND_DAYS = 3


def remind_days() -> int:
    return int(getattr(settings, "KOMU_APPROVAL_REMIND_DAYS", DEFAULT_REMIND_DAYS))


def _today() -> datetime.date:
    return timezone.localdate()


def role_label(role: str) -> str:
    return str(dict(Role.choices).get(role, role))


# --- Chains ----------------------------------------------------------------------------------------------------

def chain_roles(school_id: int, document_type: str) -> list[str]:
    """The school's chain for a document type, or the type's default (副校長 → 校長) when none is set."""
    chain = ApprovalChain.objects.filter(school_id=school_id, document_type=document_type).first()
    if chain is not None and chain.steps:
        return [str(step["role"]) for step in chain.steps]
    return [str(r) for r in registry.get(document_type).default_steps]


@dataclass(frozen=True)
class ChainSetting:
    document_type: str
    label: str
    roles: list[str]
    role_labels: list[str]
    is_default: bool


def configurable_schools(actor: Actor) -> QuerySet[School]:
    ids = {g.school_id for g in actor.grants_with(roles.APPROVALS_CONFIGURE) if g.school_id is not None}
    return School.objects.filter(pk__in=ids).order_by("code")


def chain_settings_for(*, actor: Actor, school_id: int) -> tuple[School, list[ChainSetting]]:
    school = get_in_scope(configurable_schools(actor), pk=school_id)
    stored = {c.document_type: c for c in ApprovalChain.objects.filter(school=school)}
    result = []
    for doc in registry.all_types():
        chain = stored.get(doc.code)
        steps = [str(s["role"]) for s in chain.steps] if chain and chain.steps else [str(r) for r in doc.default_steps]
        result.append(ChainSetting(doc.code, doc.display_label, steps, [role_label(r) for r in steps], chain is None))
    return school, result


# --- Who may act -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Authority:
    """Why the actor may decide the current step: as the role's holder, or on behalf of one (代決)."""

    role: str
    on_behalf_of: Any | None = None


def _active_assignments(today: datetime.date) -> QuerySet[StaffAssignment]:
    return StaffAssignment.objects.filter(
        Q(start_date__isnull=True) | Q(start_date__lte=today), Q(end_date__isnull=True) | Q(end_date__gte=today)
    )


def _active_delegations(user: Any, today: datetime.date) -> list[Delegation]:
    return list(
        Delegation.objects.filter(delegate=user, start_date__lte=today, end_date__gte=today).select_related(
            "delegator"
        )
    )


class _AuthorityIndex:
    """Authorities of one actor over many requests in two queries: their delegations, and the roles the
    delegators hold today."""

    def __init__(self, actor: Actor, today: datetime.date | None = None) -> None:
        self.actor = actor
        self.today = today or _today()
        self.delegations = _active_delegations(actor.user, self.today) if actor.user is not None else []
        held: dict[tuple[Any, int], set[str]] = {}
        if self.delegations:
            for a in _active_assignments(self.today).filter(
                user_id__in={d.delegator_id for d in self.delegations}, school_id__isnull=False
            ).values("user_id", "school_id", "role"):
                held.setdefault((a["user_id"], a["school_id"]), set()).add(a["role"])
        self.delegator_roles = held

    @property
    def school_ids(self) -> set[int]:
        own = {g.school_id for g in self.actor.grants if g.school_id is not None}
        return own | {d.school_id for d in self.delegations}

    def for_request(self, request: ApprovalRequest) -> Authority | None:
        if request.status != ApprovalRequest.Status.PENDING or request.current_step >= len(request.steps):
            return None
        role = str(request.steps[request.current_step]["role"])
        if any(g.role == role and g.school_id == request.school_id for g in self.actor.grants):
            return Authority(role)
        for d in self.delegations:
            if d.school_id != request.school_id or d.document_type not in ("", request.document_type):
                continue
            if role in self.delegator_roles.get((d.delegator_id, d.school_id), set()):
                return Authority(role, d.delegator)
        return None


def authority_for(actor: Actor, request: ApprovalRequest, today: datetime.date | None = None) -> Authority | None:
    """May the actor approve or return the request's current step, and in what capacity?"""
    return _AuthorityIndex(actor, today).for_request(request)


def actionable_for(actor: Actor) -> list[tuple[ApprovalRequest, Authority]]:
    """Pending requests waiting for this actor, oldest first."""
    index = _AuthorityIndex(actor)
    schools = index.school_ids
    if not schools or actor.user is None:
        return []
    pending = (
        ApprovalRequest.objects.filter(status=ApprovalRequest.Status.PENDING, school_id__in=schools)
        .exclude(submitted_by=actor.user)
        .select_related("school", "submitted_by")
        .order_by("submitted_at")
    )
    result = []
    for request in pending:
        authority = index.for_request(request)
        if authority is not None:
            result.append((request, authority))
    return result


def _approver_school_ids(actor: Actor) -> set[int]:
    return {g.school_id for g in actor.grants_with(roles.APPROVALS_APPROVE) if g.school_id is not None}


def visible_requests(actor: Actor) -> QuerySet[ApprovalRequest]:
    if actor.user is None or not actor.has(roles.APPROVALS_USE):
        return ApprovalRequest.objects.none()
    acted = ApprovalAction.objects.filter(actor=actor.user).values("request_id")
    actionable = [r.pk for r, _a in actionable_for(actor)]
    return ApprovalRequest.objects.filter(
        Q(submitted_by=actor.user) | Q(school_id__in=_approver_school_ids(actor)) | Q(pk__in=acted)
        | Q(pk__in=actionable)
    )


# --- Lists -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RequestRow:
    request: ApprovalRequest
    document_label: str
    step_label: str
    overdue: bool
    authority: Authority | None = None

    @property
    def url(self) -> str:
        return reverse("approvals:detail", args=[self.request.pk])


def _current_step_label(request: ApprovalRequest) -> str:
    if request.status != ApprovalRequest.Status.PENDING or request.current_step >= len(request.steps):
        return ""
    return role_label(str(request.steps[request.current_step]["role"]))


def _overdue(request: ApprovalRequest, now: datetime.datetime) -> bool:
    return request.status == ApprovalRequest.Status.PENDING and (
        now - request.updated_at >= datetime.timedelta(days=remind_days())
    )


@dataclass
class Inbox:
    waiting: list[RequestRow] = field(default_factory=list)
    mine: list[RequestRow] = field(default_factory=list)
    school: list[RequestRow] = field(default_factory=list)


INBOX_LIMIT = 100


def inbox_for(*, actor: Actor) -> Inbox:
    """決裁: what waits for me, what I submitted, and (for approvers) the school's recent requests."""
    now = timezone.now()
    inbox = Inbox()
    for request, authority in actionable_for(actor):
        inbox.waiting.append(RequestRow(request, registry.label_of(request.document_type),
                                        _current_step_label(request), _overdue(request, now), authority))
    if actor.user is None:
        return inbox
    for request in (
        ApprovalRequest.objects.filter(submitted_by=actor.user).select_related("school", "submitted_by")
        .order_by("-submitted_at")[:INBOX_LIMIT]
    ):
        inbox.mine.append(RequestRow(request, registry.label_of(request.document_type),
                                     _current_step_label(request), _overdue(request, now)))
    schools = _approver_school_ids(actor)
    if schools:
        for request in (
            ApprovalRequest.objects.filter(school_id__in=schools).select_related("school", "submitted_by")
            .order_by("-submitted_at")[:INBOX_LIMIT]
        ):
            inbox.school.append(RequestRow(request, registry.label_of(request.document_type),
                                           _current_step_label(request), _overdue(request, now)))
    return inbox


def home_tasks(*, actor: Actor) -> list[Task]:
    """The home page's to-dos: each request waiting for this person's seal, urgent when overdue."""
    now = timezone.now()
    tasks = []
    for request, authority in actionable_for(actor):
        detail = _("%(doc)s・%(step)sの決裁（%(date)s申請）") % {
            "doc": registry.label_of(request.document_type),
            "step": role_label(authority.role),
            "date": timezone.localtime(request.submitted_at).strftime("%m/%d"),
        }
        if authority.on_behalf_of is not None:
            detail += _("・%(name)sの代決") % {"name": authority.on_behalf_of.display_name}
        tasks.append(Task(
            _("決裁してください: %(title)s") % {"title": request.title}, detail,
            reverse("approvals:detail", args=[request.pk]), urgent=_overdue(request, now),
        ))
    return tasks


# --- One request -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StepView:
    index: int
    role: str
    role_label: str
    state: str  # "done", "current", "waiting", "stopped"
    seal: ApprovalAction | None


@dataclass
class RequestDetail:
    request: ApprovalRequest
    document_label: str
    subject_url: str
    actions: list[ApprovalAction]
    steps: list[StepView]
    authority: Authority | None
    can_withdraw: bool
    revisions: list[ApprovalRequest]

    @property
    def seals(self) -> list[ApprovalAction]:
        return [a for a in self.actions if a.kind == ApprovalAction.Kind.APPROVE]


def _steps(request: ApprovalRequest, actions: Iterable[ApprovalAction]) -> list[StepView]:
    sealed = {a.step: a for a in actions if a.kind == ApprovalAction.Kind.APPROVE}
    result = []
    for i, step in enumerate(request.steps):
        role = str(step["role"])
        if i in sealed:
            state = "done"
        elif request.status == ApprovalRequest.Status.PENDING:
            state = "current" if i == request.current_step else "waiting"
        else:
            state = "stopped"
        result.append(StepView(i, role, role_label(role), state, sealed.get(i)))
    return result


def _actions(request: ApprovalRequest) -> list[ApprovalAction]:
    return list(request.actions.select_related("actor", "on_behalf_of").order_by("at", "pk"))


def _subject_url(request: ApprovalRequest) -> str:
    try:
        doc = registry.get(request.document_type)
    except registry.UnknownDocumentType:
        return ""
    subject = request.subject
    return doc.url(subject) if subject is not None else ""


def _can_see(actor: Actor, request: ApprovalRequest, actions: list[ApprovalAction]) -> bool:
    user = actor.user
    if user is None or not actor.has(roles.APPROVALS_USE):
        return False
    return (
        request.submitted_by_id == user.pk
        or request.school_id in _approver_school_ids(actor)
        or any(a.actor_id == user.pk for a in actions)
        or authority_for(actor, request) is not None
    )


def request_get_for(*, actor: Actor, request_id: int | str) -> RequestDetail:
    request = get_in_scope(ApprovalRequest.objects.select_related("school", "submitted_by"), pk=request_id)
    actions = _actions(request)
    if not _can_see(actor, request, actions):
        raise NotFoundOrNoAccess("見つかりません。")
    revisions = list(
        ApprovalRequest.objects.filter(content_type_id=request.content_type_id, object_id=request.object_id)
        .select_related("submitted_by").order_by("revision")
    )
    return RequestDetail(
        request=request,
        document_label=registry.label_of(request.document_type),
        subject_url=_subject_url(request),
        actions=actions,
        steps=_steps(request, actions),
        authority=authority_for(actor, request),
        can_withdraw=request.status == ApprovalRequest.Status.PENDING and request.submitted_by_id == actor.user.pk,
        revisions=revisions,
    )


@dataclass
class SubjectHistory:
    """Every revision of one document's approval, newest first, with its actions (for the document's page)."""

    requests: list[ApprovalRequest]
    actions: dict[int, list[ApprovalAction]]
    steps: dict[int, list[StepView]]

    @property
    def current(self) -> ApprovalRequest | None:
        return self.requests[0] if self.requests else None


def subject_history(subject: models.Model) -> SubjectHistory:
    """For a document page whose own selector has already authorised the actor. Two queries."""
    content_type = ContentType.objects.get_for_model(type(subject))
    requests = list(
        ApprovalRequest.objects.filter(content_type=content_type, object_id=str(subject.pk))
        .select_related("submitted_by").order_by("-revision")
    )
    by_request: dict[int, list[ApprovalAction]] = {r.pk: [] for r in requests}
    if requests:
        for action in ApprovalAction.objects.filter(request__in=requests).select_related(
            "actor", "on_behalf_of"
        ).order_by("at", "pk"):
            by_request[action.request_id].append(action)
    steps = {r.pk: _steps(r, by_request[r.pk]) for r in requests}
    return SubjectHistory(requests, by_request, steps)


def may_review_subject(actor: Actor, subject: models.Model) -> bool:
    """Whether the actor may act on, or has acted on, an approval of this document: a delegate approver may
    read the document they are asked to seal even without the role that normally reads it."""
    if actor.user is None or not actor.has(roles.APPROVALS_USE):
        return False
    content_type = ContentType.objects.get_for_model(type(subject))
    requests = list(ApprovalRequest.objects.filter(content_type=content_type, object_id=str(subject.pk)))
    if not requests:
        return False
    if ApprovalAction.objects.filter(request__in=requests, actor=actor.user).exists():
        return True
    index = _AuthorityIndex(actor)
    return any(index.for_request(r) is not None for r in requests)


# --- Verification ----------------------------------------------------------------------------------------------

def _verify(requests: Iterable[ApprovalRequest]) -> list[seals.SealCheck]:
    """Check every seal of the given requests. The live content is computed once per subject; superseded,
    returned and withdrawn revisions are checked against their stored snapshot."""
    checks: list[seals.SealCheck] = []
    live: dict[tuple[int, str], str | None] = {}
    for request in requests:
        approvals = [a for a in request.actions.all() if a.kind == ApprovalAction.Kind.APPROVE]
        if not approvals:
            continue
        is_current = request.status in (ApprovalRequest.Status.PENDING, ApprovalRequest.Status.APPROVED)
        content_hash: str | None
        if is_current:
            key = (request.content_type_id, request.object_id)
            if key not in live:
                live[key] = _live_hash(request)
            content_hash = live[key]
        else:
            content_hash = _snapshot_hash(request)
        checks.extend(seals.check(a, request, content_hash=content_hash, is_current=is_current) for a in approvals)
    return checks


def _live_hash(request: ApprovalRequest) -> str | None:
    try:
        doc = registry.get(request.document_type)
    except registry.UnknownDocumentType:
        return None
    subject = request.subject
    return doc.content(subject).hash if subject is not None else None


def _snapshot_hash(request: ApprovalRequest) -> str | None:
    try:
        snapshot = request.snapshot
    except ApprovalSnapshot.DoesNotExist:
        return None
    # Hash the stored text itself: a rewritten snapshot no longer matches the hash its seals signed.
    return registry.hash_of(snapshot.content)


def request_verify_for(*, actor: Actor, request_id: int | str) -> list[seals.SealCheck]:
    """「検証」: every seal of every revision of the request's document. Audited: who checked what, and the
    verdict."""
    detail = request_get_for(actor=actor, request_id=request_id)
    requests = (
        ApprovalRequest.objects.filter(pk__in=[r.pk for r in detail.revisions])
        .select_related("snapshot").prefetch_related("actions").order_by("revision")
    )
    with transaction.atomic():
        checks = _verify(requests)
        audit_record(
            actor=actor.user, action="approvals.request.verified", obj=detail.request,
            detail={"seals": len(checks), "invalid": sum(1 for c in checks if not c.valid)},
            scope=Scope(school_id=detail.request.school_id, board_id=detail.request.school.board_id),
        )
    return checks


def subject_verify(subject: models.Model) -> list[seals.SealCheck]:
    """Every seal on one document (caller has authorised the actor for the document)."""
    content_type = ContentType.objects.get_for_model(type(subject))
    requests = (
        ApprovalRequest.objects.filter(content_type=content_type, object_id=str(subject.pk))
        .select_related("snapshot").prefetch_related("actions").order_by("revision")
    )
    return _verify(requests)


def verify_all(*, school_code: str | None = None, request_id: int | None = None) -> list[seals.SealCheck]:
    """For `komu approvals verify` (an operator's command: no actor, every school unless narrowed)."""
    qs = ApprovalRequest.objects.select_related("school", "snapshot").prefetch_related("actions")
    if school_code:
        qs = qs.filter(school__code=school_code)
    if request_id is not None:
        qs = qs.filter(pk=request_id)
    return _verify(qs.order_by("school__code", "pk").iterator(chunk_size=200))


# --- Delegations -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StaffChoice:
    user_id: Any
    label: str


def staff_choices(*, actor: Actor, school_id: int) -> list[StaffChoice]:
    """Staff of a school the actor can configure: whom a delegation can name."""
    school = get_in_scope(configurable_schools(actor), pk=school_id)
    assignments = (
        _active_assignments(_today()).filter(school=school).select_related("user").order_by("role", "user__username")
    )
    seen: dict[Any, StaffChoice] = {}
    for a in assignments:
        if a.user_id not in seen:
            name = a.user.display_name or a.user.get_username()
            seen[a.user_id] = StaffChoice(a.user_id, f"{name}（{role_label(a.role)}）")
    return sorted(seen.values(), key=lambda c: c.label)


def delegations_for(*, actor: Actor, school_id: int) -> list[Delegation]:
    school = get_in_scope(configurable_schools(actor), pk=school_id)
    today = _today()
    return list(
        Delegation.objects.filter(school=school, end_date__gte=today - datetime.timedelta(days=90))
        .select_related("delegator", "delegate").order_by("-start_date")
    )
