"""Screens of komu.notices: status codes, content, 404 out of scope, forms with Japanese errors."""

from __future__ import annotations

from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from komu.access.scope import get_actor
from komu.notices.models import Letter, LetterReply, Notice, NoticeRecipient, PaperSend
from komu.notices.services import letters as letter_svc
from komu.notices.services import notices as svc
from komu.notices.tests.helpers import PDF
from komu.testing.world import World


def _notice(world: World) -> Notice:
    return svc.notice_send(actor=get_actor(world.user("board_officer_a")), data=svc.NoticeInput(
        kind=Notice.Kind.JIMU_RENRAKU, title="事務連絡テスト", ack_required=True))


def test_board_sends_a_notice_through_the_form(world: World, signed_in: Any) -> None:
    client = signed_in("board_officer_a")
    page = client.get(reverse("notices:notice_new"))
    assert page.status_code == 200 and "所管のすべての学校（2 校）" in page.content.decode()
    response = client.post(reverse("notices:notice_new"), {
        "kind": "irai", "title": "調査の依頼", "body": "よろしくお願いします。", "audience": "all_schools",
        "ack_required": "on", "attachments": [SimpleUploadedFile("要項.pdf", PDF)],
    })
    notice = Notice.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("notices:notice_detail",
                                                                          args=[notice.pk])
    assert notice.attachments.count() == 1
    detail = client.get(response["Location"]).content.decode()
    assert "送り先ごとの状況" in detail and "未確認の 2 か所に督促する" in detail


def test_form_errors_are_in_japanese_and_nothing_is_sent(world: World, signed_in: Any) -> None:
    client = signed_in("board_officer_a")
    response = client.post(reverse("notices:notice_new"), {
        "kind": "irai", "title": "", "audience": "all_schools",
        "attachments": [SimpleUploadedFile("fake.pdf", b"not a pdf")],
    })
    assert response.status_code == 200
    assert "件名を入力してください" in response.content.decode()
    response = client.post(reverse("notices:notice_new"), {
        "kind": "irai", "title": "x", "audience": "all_schools",
        "attachments": [SimpleUploadedFile("fake.pdf", b"not a pdf")],
    })
    assert "添付できない種類のファイルです" in response.content.decode()
    assert Notice.objects.count() == 0


def test_school_opens_and_acknowledges_then_board_reminds(world: World, signed_in: Any) -> None:
    notice = _notice(world)
    client = signed_in("principal_a")
    inbox = client.get(reverse("notices:inbox")).content.decode()
    assert "事務連絡テスト" in inbox and "受領待ち" in inbox
    detail = client.get(reverse("notices:notice_detail", args=[notice.pk])).content.decode()
    assert "受領しました" in detail
    assert NoticeRecipient.objects.get(notice=notice, school=world.school_a).opened_at is not None
    client.post(reverse("notices:notice_acknowledge", args=[notice.pk]))
    assert NoticeRecipient.objects.get(notice=notice, school=world.school_a).acknowledged_at is not None
    board = signed_in("board_officer_a")
    response = board.post(reverse("notices:notice_remind", args=[notice.pk]), follow=True)
    assert "1 か所に督促しました" in response.content.decode()


def test_out_of_scope_pages_answer_404(world: World, signed_in: Any) -> None:
    notice = _notice(world)
    client = signed_in("principal_b")
    assert client.get(reverse("notices:notice_detail", args=[notice.pk])).status_code == 404
    assert client.post(reverse("notices:notice_acknowledge", args=[notice.pk])).status_code == 404
    assert client.post(reverse("notices:notice_remind", args=[notice.pk])).status_code == 404
    teacher = signed_in("teacher_a")
    assert teacher.get(reverse("notices:notice_new")).status_code == 404
    assert teacher.get(reverse("notices:paper_sends")).status_code == 404
    guardian = signed_in("guardian_a")
    assert guardian.get(reverse("notices:inbox")).status_code == 404
    assert guardian.get(reverse("notices:notice_detail", args=[notice.pk])).status_code == 404


def test_attachment_download_headers(world: World, signed_in: Any) -> None:
    from komu.notices.services.attachments import Upload

    notice = svc.notice_send(actor=get_actor(world.user("board_officer_a")), data=svc.NoticeInput(
        kind=Notice.Kind.TSUCHI, title="添付つき", attachments=(Upload("要項.pdf", PDF),)))
    attachment = notice.attachments.get()
    response = signed_in("teacher_a").get(reverse("notices:attachment", args=[attachment.pk]))
    assert response.status_code == 200 and b"".join(response.streaming_content) == PDF
    assert response["Content-Length"] == str(len(PDF))
    assert response["X-Content-Type-Options"] == "nosniff" and "attachment" in response["Content-Disposition"]
    assert signed_in("principal_b").get(reverse("notices:attachment", args=[attachment.pk])).status_code == 404
    assert signed_in("principal_b").get(reverse("notices:attachment", args=["nonsense"])).status_code == 404


def test_letter_flow_through_the_screens(world: World, signed_in: Any) -> None:
    teacher = signed_in("homeroom_a1")
    form = teacher.get(reverse("notices:letter_new")).content.decode()
    assert "全校の保護者" not in form
    response = teacher.post(reverse("notices:letter_new"), {
        "title": "遠足の参加について", "body": "同意をお願いします。", "audience": "class",
        "class_id": str(world.class_a1.pk), "reply_kind": "consent",
    })
    letter = Letter.objects.get()
    assert response.status_code == 302
    guardian = signed_in("guardian_a")
    listing = guardian.get(reverse("notices:guardian_letters")).content.decode()
    assert "遠足の参加について" in listing and "お返事をお願いします" in listing
    page = guardian.get(reverse("notices:guardian_letter", args=[letter.pk])).content.decode()
    assert "参加に同意する" in page
    bad = guardian.post(reverse("notices:guardian_letter", args=[letter.pk]),
                        {"student": str(world.students["a1_first"].pk)})
    assert "「参加に同意する」か「同意しない」を選んでください" in bad.content.decode()
    ok = guardian.post(reverse("notices:guardian_letter", args=[letter.pk]),
                       {"student": str(world.students["a1_first"].pk), "choice": "agree", "comment": "よろしく"})
    assert ok.status_code == 302 and LetterReply.objects.count() == 1
    stolen = guardian.post(reverse("notices:guardian_letter", args=[letter.pk]),
                           {"student": str(world.students["a1_second"].pk), "choice": "agree"})
    assert stolen.status_code == 404
    teacher = signed_in("homeroom_a1")
    status = teacher.get(reverse("notices:letter_detail", args=[letter.pk])).content.decode()
    assert "参加に同意する" in status and "guardian_a" in status and "よろしく" in status
    assert signed_in("guardian_b").get(reverse("notices:guardian_letter", args=[letter.pk])).status_code == 404
    assert signed_in("principal_b").get(reverse("notices:letter_detail", args=[letter.pk])).status_code == 404


def test_letter_list_queries_are_bounded(world: World, signed_in: Any, django_assert_max_num_queries: Any) -> None:
    for i in range(3):
        letter_svc.letter_send(actor=get_actor(world.user("principal_a")), data=letter_svc.LetterInput(
            title=f"お便り{i}", audience=Letter.Audience.SCHOOL))
    client = signed_in("principal_a")
    with django_assert_max_num_queries(15):
        assert client.get(reverse("notices:letters")).status_code == 200


def test_inbox_queries_are_bounded(world: World, signed_in: Any, django_assert_max_num_queries: Any) -> None:
    for _ in range(5):
        _notice(world)
    client = signed_in("principal_a")
    with django_assert_max_num_queries(15):
        assert client.get(reverse("notices:inbox")).status_code == 200
    board = signed_in("board_officer_a")
    with django_assert_max_num_queries(15):
        assert board.get(reverse("notices:sent")).status_code == 200


def test_paper_send_page(world: World, signed_in: Any) -> None:
    client = signed_in("school_admin_a")
    assert client.get(reverse("notices:paper_sends")).status_code == 200
    response = client.post(reverse("notices:paper_sends"), {
        "channel": "fax", "counterparty": "lunch_centre", "document_kind": "給食の数量変更"}, follow=True)
    assert "記録しました" in response.content.decode()
    assert PaperSend.objects.get().school == world.school_a
    bad = client.post(reverse("notices:paper_sends"), {"channel": "fax", "counterparty": "lunch_centre"})
    assert "文書の種類を入力してください" in bad.content.decode()
    assert client.get(reverse("notices:paper_sends") + "?month=garbage").status_code == 200


def test_forward_page_for_a_board_that_received_a_notice(world: World, signed_in: Any) -> None:
    from komu.directory.models import Role, StaffAssignment
    from komu.testing.world import make_user

    pref = make_user("pref_officer")
    StaffAssignment.objects.create(user=pref, role=Role.BOARD_OFFICER, board=world.pref_board)
    original = svc.notice_send(actor=get_actor(pref), data=svc.NoticeInput(
        kind=Notice.Kind.TSUCHI, title="県の通知", audience=svc.Audience.BOARDS))
    client = signed_in("board_officer_a")
    detail = client.get(reverse("notices:notice_detail", args=[original.pk])).content.decode()
    assert "所管の学校へ転送する" in detail
    response = client.post(reverse("notices:notice_forward", args=[original.pk]), {
        "kind": "tsuchi", "title": "県の通知（転送）", "audience": "all_schools"})
    assert response.status_code == 302
    forwarded = Notice.objects.get(forwarded_from=original)
    page = signed_in("principal_a").get(reverse("notices:notice_detail", args=[forwarded.pk])).content.decode()
    assert "転送の経路" in page and "架空都教育委員会" in page
    assert signed_in("principal_a").get(reverse("notices:notice_forward", args=[original.pk])).status_code == 404


def test_board_letter_form_sends_through_each_school(world: World, signed_in: Any) -> None:
    client = signed_in("board_officer_a")
    page = client.get(reverse("notices:letter_new")).content.decode()
    assert "送り先の学校（全校の保護者）" in page and world.school_a.name in page
    response = client.post(reverse("notices:letter_new"), {
        "title": "教育委員会からのお知らせ", "school_ids": [str(world.school_a.pk)], "reply_kind": "none"},
        follow=True)
    assert "1 校の保護者に送りました" in response.content.decode()
    letter = Letter.objects.get()
    assert letter.via_board == world.board_a
    guardian = signed_in("guardian_a").get(reverse("notices:guardian_letter", args=[letter.pk])).content.decode()
    assert "みどり市教育委員会（みどり市立第一小学校を通じて）" in guardian
    bad = signed_in("board_officer_a").post(reverse("notices:letter_new"), {"title": "x", "reply_kind": "none"})
    assert "送り先の学校を選んでください" in bad.content.decode()


def test_school_sends_a_report_to_its_board_through_the_form(world: World, signed_in: Any) -> None:
    client = signed_in("principal_a")
    page = client.get(reverse("notices:notice_new")).content.decode()
    assert "みどり市教育委員会（設置者）" in page and "所管のすべての学校" not in page
    response = client.post(reverse("notices:notice_new"), {
        "kind": "hokoku", "title": "学級閉鎖の報告", "audience": "own_board"})
    assert response.status_code == 302
    notice = Notice.objects.get()
    assert notice.sender_school == world.school_a and notice.recipients.get().board == world.board_a
    inbox = signed_in("board_officer_a").get(reverse("notices:inbox")).content.decode()
    assert "学級閉鎖の報告" in inbox and "みどり市立第一小学校" in inbox
    assert "学級閉鎖の報告" not in signed_in("board_officer_b").get(reverse("notices:inbox")).content.decode()


def test_sender_status_page_queries_do_not_grow_with_recipients(
    world: World, signed_in: Any, django_assert_max_num_queries: Any,
) -> None:
    from komu.core.codes import make_school_code
    from komu.directory.models import School

    School.objects.bulk_create([
        School(code=make_school_code("B1", "13", "2", f"{5000000 + i:07d}"), name=f"追加小学校{i}", school_type="B1",
               board=world.board_a, prefecture_id="13") for i in range(30)
    ])
    notice = _notice(world)
    assert notice.recipients.count() == 32
    client = signed_in("board_officer_a")
    with django_assert_max_num_queries(20):
        page = client.get(reverse("notices:notice_detail", args=[notice.pk]))
    assert page.status_code == 200 and "追加小学校29" in page.content.decode()
