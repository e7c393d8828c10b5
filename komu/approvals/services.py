"""Writes of the approvals engine: submit, approve (seal), return, withdraw, supersede, remind; chains and
delegations. Each is atomic and audited ("approvals.request.approved", ...) in the same transaction.

The engine is generic: what a document is, how its content is hashed and what approval does to it come from
komu.approvals.registry. Submitting is the owning app's decision (it knows who may submit what), so
`request_submit` trusts its caller; deciding a step is the engine's (the current step's role at the school, or a
delegate of its holder).
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import models, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from komu.access.scope import Actor
from komu.approvals import registry, seals, selectors
from komu.approvals.models import ApprovalAction, ApprovalChain, ApprovalRequest, ApprovalSnapshot, Delegation
from komu.audit.services import Scope, audit_record
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.directory.models import School

logger = logging.getLogger(__name__)

MAX_COMMENT = 500
MAX_STEPS = 5


def _scope(request: ApprovalRequest) -> Scope:
    return Scope(school_id=request.school_id, board_id=request.school.board_id)


def _role_at(actor: Actor, school_id: int) -> str:
    for grant in actor.grants:
        if grant.school_id == school_id:
            return grant.role
    primary = actor.primary
    return primary.role if primary else ""


def _clean_comment(comment: str) -> str:
    comment = (comment or "").strip()
    if len(comment) > MAX_COMMENT:
        raise ValidationFailed(f"コメントは{MAX_COMMENT}文字以内で入力してください。")
    return comment


def _locked(request_id: Any) -> ApprovalRequest:
    try:
        return ApprovalRequest.objects.select_for_update().select_related("school").get(pk=request_id)
    except (ApprovalRequest.DoesNotExist, ValueError, TypeError, ValidationError):
        raise NotFoundOrNoAccess("見つかりません。") from None


def _save(obj: models.Model) -> None:
    try:
        obj.full_clean()
    except ValidationError as exc:
        raise ValidationFailed("入力内容を確認してください。", errors=exc.message_dict) from exc
    obj.save()


# --- Requests --------------------------------------------------------------------------------------------------

@transaction.atomic
def request_submit(
    *, actor: Actor, document_type: str, subject: models.Model, school: School, title: str = "",
) -> ApprovalRequest:
    """Open a request for the subject's current content, through the school's chain for its type. The caller
    (the document's own service) has decided the actor may submit it."""
    doc = registry.get(document_type)
    if not isinstance(subject, doc.model):
        raise TypeError(f"{document_type} の対象は {doc.model.__name__} です。")
    content_type = ContentType.objects.get_for_model(type(subject))
    existing = ApprovalRequest.objects.select_for_update().filter(content_type=content_type, object_id=str(subject.pk))
    if existing.filter(status=ApprovalRequest.Status.PENDING).exists():
        raise ValidationFailed("この文書は既に決裁中です。取り下げるか、決裁が終わるのを待ってください。")
    revision = (existing.aggregate(n=models.Max("revision"))["n"] or 0) + 1
    content = doc.content(subject)
    now = timezone.now()
    request = ApprovalRequest(
        school=school, document_type=document_type, content_type=content_type, object_id=str(subject.pk),
        title=(title or doc.title(subject))[:200], content_hash=content.hash,
        steps=[{"role": r} for r in selectors.chain_roles(school.pk, document_type)], current_step=0,
        revision=revision, submitted_by=actor.user, submitted_at=now,
    )
    _save(request)
    ApprovalSnapshot.objects.create(request=request, content=content.canonical, content_hash=content.hash)
    ApprovalAction.objects.create(
        request=request, step=0, kind=ApprovalAction.Kind.SUBMIT, actor=actor.user,
        actor_role=_role_at(actor, school.pk), at=now, content_hash=content.hash,
    )
    audit_record(
        actor=actor.user, action="approvals.request.submitted", obj=request,
        detail={"document_type": document_type, "subject": request.object_id, "revision": revision,
                "content_hash": content.hash, "steps": [s["role"] for s in request.steps]},
        scope=_scope(request),
    )
    return request


def _decidable(actor: Actor, request_id: Any) -> tuple[ApprovalRequest, selectors.Authority]:
    """The locked request and the actor's authority over its current step; 404 when the actor cannot even see
    it, a clear refusal when they can but it is not theirs to decide."""
    request = _locked(request_id)
    authority = selectors.authority_for(actor, request)
    if authority is None:
        visible = selectors.visible_requests(actor).filter(pk=request.pk).exists()
        if not visible:
            raise NotFoundOrNoAccess("見つかりません。")
        if request.status != ApprovalRequest.Status.PENDING:
            raise ValidationFailed("この決裁は既に終わっています（承認済み・差し戻し・取り下げ・再決裁）。")
        role = selectors.role_label(str(request.steps[request.current_step]["role"]))
        raise PermissionDeniedError(f"いまは{role}の決裁の段階です。{role}（またはその代決者）が決裁します。")
    if request.submitted_by_id == actor.user.pk:
        raise PermissionDeniedError("自分が申請した文書は決裁できません。")
    return request, authority


@transaction.atomic
def request_approve(*, actor: Actor, request_id: Any, comment: str = "") -> ApprovalRequest:
    """Seal the current step. The content must still be what was submitted; the last step approves the
    document and tells its owner (registry hook)."""
    comment = _clean_comment(comment)
    request, authority = _decidable(actor, request_id)
    doc = registry.get(request.document_type)
    subject = request.subject
    if subject is None or doc.content(subject).hash != request.content_hash:
        raise ValidationFailed("申請の後に内容が変わっています。申請者に訂正のうえ再申請を依頼してください。")
    now = timezone.now()
    step = request.current_step
    payload = seals.payload_for(
        request=request, step=step, approver=actor.user, role=authority.role,
        on_behalf_of=authority.on_behalf_of, at=now,
    )
    ApprovalAction.objects.create(
        request=request, step=step, kind=ApprovalAction.Kind.APPROVE, actor=actor.user, actor_role=authority.role,
        on_behalf_of=authority.on_behalf_of, comment=comment, at=now, content_hash=request.content_hash,
        seal_payload=payload, signature=seals.sign(payload),
    )
    request.current_step = step + 1
    final = request.current_step >= len(request.steps)
    if final:
        request.status = ApprovalRequest.Status.APPROVED
        request.completed_at = now
        request.approved_at = now
    _save(request)
    audit_record(
        actor=actor.user, action="approvals.request.approved", obj=request,
        detail={"step": step, "role": authority.role, "final": final, "content_hash": request.content_hash,
                "on_behalf_of": str(authority.on_behalf_of.pk) if authority.on_behalf_of else ""},
        scope=_scope(request),
    )
    if final:
        doc.on_approved(subject, request, actor.user)
    return request


@transaction.atomic
def request_return(*, actor: Actor, request_id: Any, comment: str) -> ApprovalRequest:
    """差し戻し: back to the submitter with the reason; the document is open again for correction."""
    comment = _clean_comment(comment)
    if not comment:
        raise ValidationFailed("差し戻す理由を入力してください（申請者に表示されます）。",
                               errors={"comment": ["差し戻す理由を入力してください。"]})
    request, authority = _decidable(actor, request_id)
    now = timezone.now()
    ApprovalAction.objects.create(
        request=request, step=request.current_step, kind=ApprovalAction.Kind.RETURN, actor=actor.user,
        actor_role=authority.role, on_behalf_of=authority.on_behalf_of, comment=comment, at=now,
        content_hash=request.content_hash,
    )
    request.status = ApprovalRequest.Status.RETURNED
    request.completed_at = now
    _save(request)
    audit_record(
        actor=actor.user, action="approvals.request.returned", obj=request,
        detail={"step": request.current_step, "role": authority.role}, scope=_scope(request),
    )
    subject = request.subject
    if subject is not None:
        registry.get(request.document_type).on_returned(subject, request, actor.user)
    return request


@transaction.atomic
def request_withdraw(*, actor: Actor, request_id: Any, comment: str = "") -> ApprovalRequest:
    """取り下げ: the submitter takes back a pending request."""
    comment = _clean_comment(comment)
    request = _locked(request_id)
    if request.submitted_by_id != actor.user.pk:
        if selectors.visible_requests(actor).filter(pk=request.pk).exists():
            raise PermissionDeniedError("取り下げられるのは申請した本人だけです。")
        raise NotFoundOrNoAccess("見つかりません。")
    if request.status != ApprovalRequest.Status.PENDING:
        raise ValidationFailed("決裁中の申請だけを取り下げられます。")
    now = timezone.now()
    ApprovalAction.objects.create(
        request=request, step=request.current_step, kind=ApprovalAction.Kind.WITHDRAW, actor=actor.user,
        actor_role=_role_at(actor, request.school_id), comment=comment, at=now, content_hash=request.content_hash,
    )
    request.status = ApprovalRequest.Status.WITHDRAWN
    request.completed_at = now
    _save(request)
    audit_record(actor=actor.user, action="approvals.request.withdrawn", obj=request, scope=_scope(request))
    subject = request.subject
    if subject is not None:
        registry.get(request.document_type).on_withdrawn(subject, request, actor.user)
    return request


@transaction.atomic
def request_supersede(*, user: Any, request: ApprovalRequest, reason: str, role: str = "") -> ApprovalRequest:
    """訂正により再決裁: the document changed after submission or approval (an amendment with its reason).
    The request stops; its seals stay in the history and keep verifying against the stored snapshot. Called by
    the document's own service, inside its transaction."""
    request = _locked(request.pk)
    if request.status not in (ApprovalRequest.Status.PENDING, ApprovalRequest.Status.APPROVED):
        return request
    now = timezone.now()
    ApprovalAction.objects.create(
        request=request, step=request.current_step, kind=ApprovalAction.Kind.SUPERSEDE, actor=user,
        actor_role=role, comment=_clean_comment(reason)[:MAX_COMMENT], at=now, content_hash=request.content_hash,
    )
    previous = request.status
    request.status = ApprovalRequest.Status.SUPERSEDED
    request.completed_at = request.completed_at or now
    _save(request)
    audit_record(
        actor=user, action="approvals.request.superseded", obj=request,
        detail={"previous_status": previous, "reason": reason[:200]}, scope=_scope(request),
    )
    return request


# --- Reminders -------------------------------------------------------------------------------------------------

def _approvers_now(request: ApprovalRequest, today: datetime.date) -> list[Any]:
    """Holders of the current step's role at the school, and their active delegates."""
    role = str(request.steps[request.current_step]["role"])
    holders = list(
        selectors._active_assignments(today).filter(school_id=request.school_id, role=role)
        .select_related("user").filter(user__is_active=True)
    )
    people = {a.user_id: a.user for a in holders}
    for d in Delegation.objects.filter(
        school_id=request.school_id, delegator_id__in=list(people), start_date__lte=today, end_date__gte=today,
    ).filter(Q(document_type="") | Q(document_type=request.document_type)).select_related("delegate"):
        if d.delegate.is_active:
            people.setdefault(d.delegate_id, d.delegate)
    return list(people.values())


def approvals_remind(*, older_than_days: int | None = None, now: datetime.datetime | None = None,
                     base_url: str = "") -> int:
    """督促: e-mail the approvers of every request that has waited at its step for `older_than_days` days and
    was not reminded within that time; the home page lists them as urgent anyway. Returns how many e-mails
    were sent. The mail names only the document's title and a link: its content stays behind sign-in."""
    days = selectors.remind_days() if older_than_days is None else older_than_days
    now = now or timezone.now()
    cutoff = now - datetime.timedelta(days=days)
    today = timezone.localdate(now)
    outgoing: list[tuple[str, str, str]] = []
    pending = ApprovalRequest.objects.filter(status=ApprovalRequest.Status.PENDING, updated_at__lte=cutoff).filter(
        Q(last_reminded_at__isnull=True) | Q(last_reminded_at__lte=cutoff)
    ).select_related("school")
    for request_id in list(pending.values_list("pk", flat=True)):
        with transaction.atomic():
            request = _locked(request_id)
            if request.status != ApprovalRequest.Status.PENDING:
                continue
            people = _approvers_now(request, today)
            link = base_url.rstrip("/") + reverse("approvals:detail", args=[request.pk])
            waited = (now - request.updated_at).days
            for person in people:
                if not person.email:
                    continue
                context = {"request": request, "link": link, "days": waited,
                           "step": selectors.role_label(str(request.steps[request.current_step]["role"])),
                           "document": registry.label_of(request.document_type)}
                subject = " ".join(render_to_string("approvals/email/reminder_subject.txt", context).split())
                outgoing.append((subject, render_to_string("approvals/email/reminder_body.txt", context),
                                 person.email))
            ApprovalAction.objects.create(
                request=request, step=request.current_step, kind=ApprovalAction.Kind.REMIND, actor=None,
                at=now, comment=f"{waited}日経過", content_hash=request.content_hash,
            )
            # update() leaves updated_at alone: a reminder is not progress on the request.
            ApprovalRequest.objects.filter(pk=request.pk).update(last_reminded_at=now)
            audit_record(
                actor=None, action="approvals.request.reminded", obj=request,
                detail={"recipients": [str(p.pk) for p in people], "waited_days": waited}, scope=_scope(request),
            )
    # Mail only after the reminders are committed; one failing address must not stop the others.
    sent = 0
    for subject, body, recipient in outgoing:
        try:
            send_mail(subject, body, None, [recipient], fail_silently=False)
            sent += 1
        except Exception:
            logger.exception("approvals reminder: mail to one recipient failed")
    return sent


# --- Chains and delegations ------------------------------------------------------------------------------------

def _configurable(actor: Actor, school_id: Any) -> School:
    try:
        return selectors.configurable_schools(actor).get(pk=school_id)
    except (School.DoesNotExist, ValueError, TypeError):
        raise NotFoundOrNoAccess("見つかりません。") from None


@transaction.atomic
def chain_update(*, actor: Actor, school_id: Any, document_type: str, step_roles: list[str]) -> ApprovalChain:
    """Set a school's chain for one document type. Requests already submitted keep the steps they were
    submitted with."""
    school = _configurable(actor, school_id)
    try:
        registry.get(document_type)
    except registry.UnknownDocumentType:
        raise ValidationFailed("文書の種類が正しくありません。") from None
    step_roles = [r for r in step_roles if r]
    errors = []
    if not step_roles:
        errors.append("決裁者を1段階以上選んでください。")
    if len(step_roles) > MAX_STEPS:
        errors.append(f"決裁の段階は{MAX_STEPS}段階までにしてください。")
    if any(r not in selectors.CHAIN_ROLES for r in step_roles):
        errors.append("決裁者には 学校事務・教頭、副校長、校長 のいずれかを選んでください。")
    if len(set(step_roles)) != len(step_roles):
        errors.append("同じ役割を2回選ばないでください。")
    if errors:
        raise ValidationFailed(errors[0], errors={"steps": errors})
    chain, _created = ApprovalChain.objects.get_or_create(
        school=school, document_type=document_type, defaults={"steps": [{"role": r} for r in step_roles]}
    )
    before = [s["role"] for s in chain.steps]
    chain.steps = [{"role": r} for r in step_roles]
    _save(chain)
    audit_record(
        actor=actor.user, action="approvals.chain.updated", obj=chain,
        detail={"document_type": document_type, "before": before, "after": step_roles},
        scope=Scope(school_id=school.pk, board_id=school.board_id),
    )
    return chain


@transaction.atomic
def delegation_create(
    *, actor: Actor, school_id: Any, delegator_id: Any, delegate_id: Any, start_date: datetime.date,
    end_date: datetime.date, document_type: str = "",
) -> Delegation:
    """代決: while `delegator` is away, `delegate` decides the steps that fall to the delegator's roles."""
    school = _configurable(actor, school_id)
    today = timezone.localdate()
    active = selectors._active_assignments(today).filter(school=school)
    errors: dict[str, list[str]] = {}
    if not active.filter(user_id=delegator_id, role__in=selectors.CHAIN_ROLES).exists():
        errors["delegator"] = ["元の決裁者には、この学校の校長・副校長・教頭を選んでください。"]
    if not active.filter(user_id=delegate_id).exists():
        errors["delegate"] = ["代決者には、この学校に配置されている教職員を選んでください。"]
    if str(delegator_id) == str(delegate_id):
        errors["delegate"] = ["元の決裁者とは別の人を選んでください。"]
    if start_date > end_date:
        errors["end_date"] = ["終了日は開始日以降にしてください。"]
    if end_date < today:
        errors["end_date"] = ["終了日には今日以降の日付を指定してください。"]
    if (end_date - start_date).days > 366:
        errors["end_date"] = ["代決の期間は1年以内にしてください。"]
    if document_type:
        try:
            registry.get(document_type)
        except registry.UnknownDocumentType:
            errors["document_type"] = ["文書の種類が正しくありません。"]
    if errors:
        raise ValidationFailed("入力内容を確認してください。", errors=errors)
    delegation = Delegation(
        school=school, delegator_id=delegator_id, delegate_id=delegate_id, start_date=start_date,
        end_date=end_date, document_type=document_type,
    )
    _save(delegation)
    audit_record(
        actor=actor.user, action="approvals.delegation.created", obj=delegation,
        detail={"delegator": str(delegator_id), "delegate": str(delegate_id), "start": start_date.isoformat(),
                "end": end_date.isoformat(), "document_type": document_type},
        scope=Scope(school_id=school.pk, board_id=school.board_id),
    )
    return delegation


@transaction.atomic
def delegation_end(*, actor: Actor, delegation_id: Any) -> None:
    """End a delegation today. One not yet begun is removed; one already used keeps its past days, so the
    history shows on whose behalf each earlier seal was given."""
    schools = selectors.configurable_schools(actor)
    try:
        delegation = Delegation.objects.select_for_update().get(pk=delegation_id, school__in=schools)
    except (Delegation.DoesNotExist, ValueError, TypeError):
        raise NotFoundOrNoAccess("見つかりません。") from None
    today = timezone.localdate()
    scope = Scope(school_id=delegation.school_id, board_id=delegation.school.board_id)
    if delegation.start_date >= today:
        audit_record(actor=actor.user, action="approvals.delegation.deleted", obj=delegation, scope=scope)
        delegation.delete()
        return
    delegation.end_date = min(delegation.end_date, today - datetime.timedelta(days=1))
    _save(delegation)
    audit_record(actor=actor.user, action="approvals.delegation.ended", obj=delegation,
                 detail={"end": delegation.end_date.isoformat()}, scope=scope)
