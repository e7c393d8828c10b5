from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from komu.approvals import selectors, services
from komu.approvals.models import ApprovalAction, ApprovalChain, ApprovalRequest, ApprovalSnapshot, Delegation
from komu.approvals.tests.documents import EVENTS
from komu.approvals.tests.helpers import actor, submit, term
from komu.audit.models import AuditEvent
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.directory.models import Role, StaffAssignment
from komu.testing.world import World, make_user


@pytest.fixture(autouse=True)
def _clear_events() -> None:
    EVENTS.clear()


def test_a_request_follows_the_default_chain_vice_principal_then_principal(world: World) -> None:
    request = submit(world)
    assert [s["role"] for s in request.steps] == [Role.VICE_PRINCIPAL, Role.PRINCIPAL]
    assert request.status == ApprovalRequest.Status.PENDING and request.revision == 1

    with pytest.raises(PermissionDeniedError, match="副校長"):
        services.request_approve(actor=actor(world, "principal_a"), request_id=request.pk)

    services.request_approve(actor=actor(world, "vice_principal_a"), request_id=request.pk, comment="確認しました")
    request.refresh_from_db()
    assert request.current_step == 1 and request.status == ApprovalRequest.Status.PENDING
    assert EVENTS == []

    services.request_approve(actor=actor(world, "principal_a"), request_id=request.pk)
    request.refresh_from_db()
    assert request.status == ApprovalRequest.Status.APPROVED
    assert request.approved_at is not None and request.completed_at is not None
    assert [("approved", int(request.object_id), request.pk)] == EVENTS


def test_the_history_keeps_every_step_in_order_with_roles(world: World) -> None:
    request = submit(world)
    services.request_approve(actor=actor(world, "vice_principal_a"), request_id=request.pk)
    services.request_approve(actor=actor(world, "principal_a"), request_id=request.pk)
    history = list(request.actions.order_by("at", "pk").values_list("kind", "step", "actor_role"))
    assert history == [
        (ApprovalAction.Kind.SUBMIT, 0, Role.TEACHER),
        (ApprovalAction.Kind.APPROVE, 0, Role.VICE_PRINCIPAL),
        (ApprovalAction.Kind.APPROVE, 1, Role.PRINCIPAL),
    ]


def test_a_school_configures_its_own_chain_and_new_requests_use_it(world: World) -> None:
    services.chain_update(actor=actor(world, "principal_a"), school_id=world.school_a.pk, document_type="test.term",
                          step_roles=[Role.PRINCIPAL])
    request = submit(world)
    assert request.steps == [{"role": Role.PRINCIPAL}]
    services.request_approve(actor=actor(world, "principal_a"), request_id=request.pk)
    request.refresh_from_db()
    assert request.status == ApprovalRequest.Status.APPROVED


def test_a_changed_chain_leaves_requests_already_submitted_alone(world: World) -> None:
    request = submit(world)
    services.chain_update(actor=actor(world, "vice_principal_a"), school_id=world.school_a.pk,
                          document_type="test.term", step_roles=[Role.PRINCIPAL])
    request.refresh_from_db()
    assert [s["role"] for s in request.steps] == [Role.VICE_PRINCIPAL, Role.PRINCIPAL]


@pytest.mark.parametrize("roles, message", [
    ([], "1段階以上"),
    ([Role.PRINCIPAL, Role.PRINCIPAL], "同じ役割"),
    ([Role.TEACHER], "校長"),
])
def test_a_chain_must_be_a_sensible_order_of_management_roles(world: World, roles: list[str], message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        services.chain_update(actor=actor(world, "principal_a"), school_id=world.school_a.pk,
                              document_type="test.term", step_roles=roles)
    assert not ApprovalChain.objects.exists()


def test_only_the_schools_own_management_configures_its_chains(world: World) -> None:
    for name in ("principal_b", "homeroom_a1", "board_officer_a"):
        with pytest.raises(NotFoundOrNoAccess):
            services.chain_update(actor=actor(world, name), school_id=world.school_a.pk, document_type="test.term",
                                  step_roles=[Role.PRINCIPAL])


def test_only_the_current_steps_role_at_that_school_can_decide(world: World) -> None:
    request = submit(world)
    # Another school's principal and staff without the role do not even see the request.
    for name in ("principal_b", "nurse_a"):
        with pytest.raises(NotFoundOrNoAccess):
            services.request_approve(actor=actor(world, name), request_id=request.pk)
    # The submitter sees it but cannot decide it.
    with pytest.raises(PermissionDeniedError):
        services.request_approve(actor=actor(world, "teacher_a"), request_id=request.pk)
    assert not request.actions.filter(kind=ApprovalAction.Kind.APPROVE).exists()


def test_nobody_approves_their_own_submission(world: World) -> None:
    request = submit(world, by="vice_principal_a")
    with pytest.raises(PermissionDeniedError, match="自分が申請"):
        services.request_approve(actor=actor(world, "vice_principal_a"), request_id=request.pk)


def test_a_delegate_approves_on_behalf_of_the_absent_principal_within_the_dates(world: World) -> None:
    today = timezone.localdate()
    services.delegation_create(
        actor=actor(world, "principal_a"), school_id=world.school_a.pk, delegator_id=world.user("principal_a").pk,
        delegate_id=world.user("school_admin_a").pk, start_date=today, end_date=today + datetime.timedelta(days=3),
    )
    request = submit(world)
    services.request_approve(actor=actor(world, "vice_principal_a"), request_id=request.pk)
    services.request_approve(actor=actor(world, "school_admin_a"), request_id=request.pk)
    seal = request.actions.get(kind=ApprovalAction.Kind.APPROVE, step=1)
    assert seal.actor == world.user("school_admin_a")
    assert seal.on_behalf_of == world.user("principal_a")
    assert seal.actor_role == Role.PRINCIPAL
    assert seal.seal_payload["on_behalf_of"]["id"] == str(world.user("principal_a").pk)
    request.refresh_from_db()
    assert request.status == ApprovalRequest.Status.APPROVED


def test_a_delegation_outside_its_dates_gives_no_authority(world: World) -> None:
    today = timezone.localdate()
    Delegation.objects.create(school=world.school_a, delegator=world.user("principal_a"),
                              delegate=world.user("school_admin_a"), start_date=today - datetime.timedelta(days=9),
                              end_date=today - datetime.timedelta(days=1))
    request = submit(world)
    services.request_approve(actor=actor(world, "vice_principal_a"), request_id=request.pk)
    with pytest.raises(NotFoundOrNoAccess):
        services.request_approve(actor=actor(world, "school_admin_a"), request_id=request.pk)


def test_a_delegation_for_another_document_type_gives_no_authority(world: World) -> None:
    today = timezone.localdate()
    Delegation.objects.create(school=world.school_a, delegator=world.user("principal_a"),
                              delegate=world.user("school_admin_a"), start_date=today, end_date=today,
                              document_type="attendance.monthly_register")
    request = submit(world)
    services.request_approve(actor=actor(world, "vice_principal_a"), request_id=request.pk)
    assert selectors.authority_for(actor(world, "school_admin_a"), request) is None


def test_a_delegation_must_name_the_schools_management_and_its_staff(world: World) -> None:
    today = timezone.localdate()
    with pytest.raises(ValidationFailed) as exc:
        services.delegation_create(
            actor=actor(world, "principal_a"), school_id=world.school_a.pk,
            delegator_id=world.user("teacher_a").pk, delegate_id=world.user("teacher_b").pk,
            start_date=today, end_date=today,
        )
    assert set(exc.value.errors) == {"delegator", "delegate"}


def test_ending_a_delegation_keeps_its_past_days(world: World) -> None:
    today = timezone.localdate()
    delegation = Delegation.objects.create(
        school=world.school_a, delegator=world.user("principal_a"), delegate=world.user("school_admin_a"),
        start_date=today - datetime.timedelta(days=5), end_date=today + datetime.timedelta(days=5),
    )
    services.delegation_end(actor=actor(world, "vice_principal_a"), delegation_id=delegation.pk)
    delegation.refresh_from_db()
    assert delegation.end_date == today - datetime.timedelta(days=1)
    assert AuditEvent.objects.filter(action="approvals.delegation.ended").exists()


def test_returning_needs_a_reason_and_sends_the_document_back(world: World) -> None:
    request = submit(world)
    with pytest.raises(ValidationFailed, match="理由"):
        services.request_return(actor=actor(world, "vice_principal_a"), request_id=request.pk, comment=" ")
    services.request_return(actor=actor(world, "vice_principal_a"), request_id=request.pk,
                            comment="日付を確認してください")
    request.refresh_from_db()
    assert request.status == ApprovalRequest.Status.RETURNED
    assert request.actions.get(kind=ApprovalAction.Kind.RETURN).comment == "日付を確認してください"
    assert [("returned", int(request.object_id), request.pk)] == EVENTS
    with pytest.raises(ValidationFailed, match="既に終わって"):
        services.request_approve(actor=actor(world, "principal_a"), request_id=request.pk)


def test_a_returned_document_can_be_submitted_again_as_a_new_revision(world: World) -> None:
    subject = term(world)
    first = submit(world, subject)
    services.request_return(actor=actor(world, "vice_principal_a"), request_id=first.pk, comment="修正を")
    second = submit(world, subject)
    assert second.revision == 2


def test_a_document_cannot_be_in_two_pending_requests(world: World) -> None:
    subject = term(world)
    submit(world, subject)
    with pytest.raises(ValidationFailed, match="既に決裁中"):
        submit(world, subject)


def test_only_the_submitter_withdraws_and_only_while_pending(world: World) -> None:
    request = submit(world)
    with pytest.raises(PermissionDeniedError):
        services.request_withdraw(actor=actor(world, "vice_principal_a"), request_id=request.pk)
    with pytest.raises(NotFoundOrNoAccess):
        services.request_withdraw(actor=actor(world, "principal_b"), request_id=request.pk)
    services.request_withdraw(actor=actor(world, "teacher_a"), request_id=request.pk)
    request.refresh_from_db()
    assert request.status == ApprovalRequest.Status.WITHDRAWN
    assert [("withdrawn", int(request.object_id), request.pk)] == EVENTS
    with pytest.raises(ValidationFailed):
        services.request_withdraw(actor=actor(world, "teacher_a"), request_id=request.pk)


def test_approval_is_refused_when_the_content_changed_after_submission(world: World) -> None:
    subject = term(world)
    request = submit(world, subject)
    subject.name = "前期"
    subject.save()
    with pytest.raises(ValidationFailed, match="内容が変わって"):
        services.request_approve(actor=actor(world, "vice_principal_a"), request_id=request.pk)


def test_submission_keeps_the_exact_content_it_sealed(world: World) -> None:
    subject = term(world)
    request = submit(world, subject)
    snapshot = ApprovalSnapshot.objects.get(request=request)
    assert '"name":"1学期"' in snapshot.content
    assert snapshot.content_hash == request.content_hash


def test_every_step_is_audited_in_the_same_transaction(world: World) -> None:
    request = submit(world)
    services.request_approve(actor=actor(world, "vice_principal_a"), request_id=request.pk)
    services.request_return(actor=actor(world, "principal_a"), request_id=request.pk, comment="差し戻し")
    actions = list(AuditEvent.objects.filter(object_id=str(request.pk), object_type="approvals.approvalrequest")
                   .order_by("id").values_list("action", flat=True))
    assert actions == ["approvals.request.submitted", "approvals.request.approved", "approvals.request.returned"]
    approved = AuditEvent.objects.get(action="approvals.request.approved")
    assert approved.school_id == world.school_a.pk
    assert approved.detail["role"] == Role.VICE_PRINCIPAL


def _age(request: ApprovalRequest, days: int) -> None:
    ApprovalRequest.objects.filter(pk=request.pk).update(updated_at=timezone.now() - datetime.timedelta(days=days))


def test_reminders_mail_the_waiting_approvers_once_per_period(world: World, settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    fresh = submit(world)
    stale = submit(world)
    _age(stale, 4)
    sent = services.approvals_remind(older_than_days=3, base_url="https://komu.example.jp")
    assert sent == 1
    [message] = mail.outbox
    assert message.to == [world.user("vice_principal_a").email]
    assert stale.title in message.subject
    assert f"https://komu.example.jp/approvals/{stale.pk}/" in message.body
    assert stale.actions.filter(kind=ApprovalAction.Kind.REMIND, actor__isnull=True).exists()
    assert not fresh.actions.filter(kind=ApprovalAction.Kind.REMIND).exists()
    assert AuditEvent.objects.filter(action="approvals.request.reminded", object_id=str(stale.pk)).exists()
    # Reminded today: not again tomorrow, only after another period.
    assert services.approvals_remind(older_than_days=3) == 0
    stale.refresh_from_db()
    ApprovalRequest.objects.filter(pk=stale.pk).update(last_reminded_at=timezone.now() - datetime.timedelta(days=4))
    assert services.approvals_remind(older_than_days=3) == 1


def test_reminders_reach_an_active_delegate_too(world: World, settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    today = timezone.localdate()
    Delegation.objects.create(school=world.school_a, delegator=world.user("vice_principal_a"),
                              delegate=world.user("school_admin_a"), start_date=today, end_date=today)
    _age(submit(world), 5)
    services.approvals_remind(older_than_days=3)
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        [world.user("vice_principal_a").email, world.user("school_admin_a").email]
    )


def test_the_home_page_lists_what_waits_for_me_urgent_when_overdue(world: World) -> None:
    request = submit(world)
    _age(request, 10)
    [task] = selectors.home_tasks(actor=actor(world, "vice_principal_a"))
    assert request.title in task.title and task.urgent
    assert task.url == f"/approvals/{request.pk}/"
    assert selectors.home_tasks(actor=actor(world, "principal_a")) == []
    assert selectors.home_tasks(actor=actor(world, "teacher_a")) == []


def test_a_second_vice_principal_sees_the_pending_request_as_theirs_too(world: World) -> None:
    other = make_user("vice_principal_a2")
    StaffAssignment.objects.create(user=other, role=Role.VICE_PRINCIPAL, school=world.school_a)
    request = submit(world)
    world.users["vice_principal_a2"] = other
    assert [r.pk for r, _ in selectors.actionable_for(actor(world, "vice_principal_a2"))] == [request.pk]
