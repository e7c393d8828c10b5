from __future__ import annotations

from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from komu.approvals.models import ApprovalAction, ApprovalChain, ApprovalRequest, Delegation
from komu.approvals.tests.helpers import actor, submit, term
from komu.directory.models import Role
from komu.testing.world import World


def test_the_inbox_lists_what_waits_for_the_vice_principal(world: World, signed_in: Any) -> None:
    request = submit(world)
    response = signed_in("vice_principal_a").get("/approvals/")
    assert response.status_code == 200
    body = response.content.decode()
    assert request.title in body and "副校長の決裁待ち" in body


def test_the_inbox_makes_the_same_queries_for_one_or_many_requests(world: World, signed_in: Any,
                                                                   django_assert_num_queries: Any) -> None:
    client = signed_in("vice_principal_a")
    submit(world)
    client.get("/approvals/")
    with CaptureQueriesContext(connection) as one:
        client.get("/approvals/")
    for _ in range(6):
        submit(world)
    with django_assert_num_queries(len(one.captured_queries)):
        client.get("/approvals/")


def test_another_schools_principal_gets_404_for_the_request(world: World, signed_in: Any) -> None:
    request = submit(world)
    client = signed_in("principal_b")
    assert client.get(f"/approvals/{request.pk}/").status_code == 404
    assert client.post(f"/approvals/{request.pk}/approve/").status_code == 404
    assert client.post(f"/approvals/{request.pk}/verify/").status_code == 404


def test_a_guardian_has_no_approvals_pages(world: World, signed_in: Any) -> None:
    assert signed_in("guardian_a").get("/approvals/").status_code == 404


def test_approving_from_the_page_seals_and_shows_the_inkan(world: World, signed_in: Any) -> None:
    vice = world.user("vice_principal_a")
    vice.display_name = "山田 花子"
    vice.save()
    request = submit(world)
    client = signed_in("vice_principal_a")
    page = client.get(f"/approvals/{request.pk}/").content.decode()
    assert "承認する（電子印を押す）" in page and "副校長として決裁します" in page
    response = client.post(f"/approvals/{request.pk}/approve/", {"comment": "確認済み"})
    assert response.status_code == 302 and response["Location"] == f"/approvals/{request.pk}/"
    body = client.get(f"/approvals/{request.pk}/").content.decode()
    assert 'class="inkan"' in body and "山田 花子の印影" in body
    assert ">山<" in body and ">田<" in body
    assert "承認しました" in body
    assert request.actions.filter(kind=ApprovalAction.Kind.APPROVE, actor=vice).exists()


def test_the_next_parameter_returns_to_the_document_but_never_off_site(world: World, signed_in: Any) -> None:
    client = signed_in("vice_principal_a")
    request = submit(world)
    response = client.post(f"/approvals/{request.pk}/approve/", {"next": "https://evil.example/"})
    assert response["Location"] == f"/approvals/{request.pk}/"
    other = submit(world)
    response = client.post(f"/approvals/{other.pk}/approve/", {"next": "/students/"})
    assert response["Location"] == "/students/"


def test_returning_without_a_reason_is_refused_with_a_message(world: World, signed_in: Any) -> None:
    request = submit(world)
    response = signed_in("vice_principal_a").post(f"/approvals/{request.pk}/return/", {"comment": ""})
    assert response.status_code == 400
    assert "差し戻す理由を入力してください" in response.content.decode()
    request.refresh_from_db()
    assert request.status == ApprovalRequest.Status.PENDING


def test_the_wrong_step_is_explained_not_hidden(world: World, signed_in: Any) -> None:
    request = submit(world)
    response = signed_in("principal_a").post(f"/approvals/{request.pk}/approve/")
    assert response.status_code == 400
    assert "副校長の決裁の段階です" in response.content.decode()


def test_the_submitter_withdraws_from_the_page(world: World, signed_in: Any) -> None:
    request = submit(world)
    client = signed_in("teacher_a")
    assert "申請を取り下げる" in client.get(f"/approvals/{request.pk}/").content.decode()
    assert client.post(f"/approvals/{request.pk}/withdraw/").status_code == 302
    request.refresh_from_db()
    assert request.status == ApprovalRequest.Status.WITHDRAWN


def test_one_click_verifies_every_seal(world: World, signed_in: Any) -> None:
    request = submit(world)
    client = signed_in("vice_principal_a")
    client.post(f"/approvals/{request.pk}/approve/")
    response = client.post(f"/approvals/{request.pk}/verify/", HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200 and 'id="seal-verdicts"' in body
    assert "有効" in body and "無効" not in body
    # Without JavaScript the whole page comes back with the verdicts.
    page = client.post(f"/approvals/{request.pk}/verify/").content.decode()
    assert "<html" in page and "現在の内容と一致しています" in page


def test_the_principal_configures_the_chain_and_a_delegation(world: World, signed_in: Any) -> None:
    client = signed_in("principal_a")
    assert client.get("/approvals/settings/")["Location"] == f"/approvals/settings/{world.school_a.pk}/"
    page = client.get(f"/approvals/settings/{world.school_a.pk}/").content.decode()
    assert "学期（テスト）" in page and "副校長 → 校長" in page
    response = client.post(f"/approvals/settings/{world.school_a.pk}/chains/test.term/",
                           {"test.term-step_0": Role.SCHOOL_ADMIN, "test.term-step_1": Role.PRINCIPAL})
    assert response.status_code == 302
    assert ApprovalChain.objects.get(school=world.school_a, document_type="test.term").steps == [
        {"role": Role.SCHOOL_ADMIN}, {"role": Role.PRINCIPAL}]
    today = timezone.localdate().isoformat()
    response = client.post(f"/approvals/settings/{world.school_a.pk}/delegations/", {
        "delegator": str(world.user("principal_a").pk), "delegate": str(world.user("vice_principal_a").pk),
        "start_date": today, "end_date": today, "document_type": "",
    })
    assert response.status_code == 302
    assert Delegation.objects.filter(delegate=world.user("vice_principal_a")).exists()


def test_a_bad_delegation_shows_what_to_fix(world: World, signed_in: Any) -> None:
    today = timezone.localdate().isoformat()
    response = signed_in("principal_a").post(f"/approvals/settings/{world.school_a.pk}/delegations/", {
        "delegator": str(world.user("principal_a").pk), "delegate": str(world.user("principal_a").pk),
        "start_date": today, "end_date": today,
    })
    assert response.status_code == 400
    assert "元の決裁者とは別の人を選んでください" in response.content.decode()


def test_settings_are_out_of_reach_for_other_schools_and_teachers(world: World, signed_in: Any) -> None:
    assert signed_in("principal_b").get(f"/approvals/settings/{world.school_a.pk}/").status_code == 404
    assert signed_in("homeroom_a1").get("/approvals/settings/").status_code == 404


def test_a_delegate_reaches_the_request_they_may_decide(world: World, signed_in: Any) -> None:
    today = timezone.localdate()
    Delegation.objects.create(school=world.school_a, delegator=world.user("vice_principal_a"),
                              delegate=world.user("nurse_a"), start_date=today, end_date=today)
    request = submit(world, term(world))
    body = signed_in("nurse_a").get(f"/approvals/{request.pk}/").content.decode()
    assert "の代決として決裁します" in body
    assert actor(world, "nurse_a").has("approvals.use")
