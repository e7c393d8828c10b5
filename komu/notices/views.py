"""Screens of komu.notices. Thin: reads through selectors / notifications, writes through services."""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from komu.access import roles
from komu.access.scope import get_actor
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.notices import notifications, selectors
from komu.notices.models import Letter, LetterReply, Notice, NotificationPreference, PaperSend
from komu.notices.services import attachments
from komu.notices.services import letters as letter_svc
from komu.notices.services import notices as svc
from komu.notices.services import paper as paper_svc
from komu.notices.services.attachments import Upload
from komu.web.decorators import require_capability

# --- お知らせ -----------------------------------------------------------------------------------------------------


@login_required
def notification_list(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request.user)
    unread_only = request.GET.get("unread") == "1"
    rows = notifications.notifications_for(actor=actor, unread_only=unread_only, limit=100)
    return render(request, "notices/notification_list.html", {
        "rows": rows, "unread_only": unread_only,
        "unread_count": notifications.notifications_unread_count(actor=actor),
    })


@login_required
def notification_open(request: HttpRequest, notification_id: str) -> HttpResponse:
    try:
        notification = notifications.notification_open(actor=get_actor(request.user), notification_id=notification_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    if not url_has_allowed_host_and_scheme(notification.url, allowed_hosts={request.get_host()}):
        return redirect("notices:notification_list")
    return redirect(notification.url)


@login_required
@require_POST
def notification_read_all(request: HttpRequest) -> HttpResponse:
    count = notifications.notifications_mark_all_read(actor=get_actor(request.user))
    messages.success(request, _("%(count)d 件のお知らせを既読にしました。") % {"count": count})
    return redirect("notices:notification_list")


class PreferenceForm(forms.Form):
    email_mode = forms.ChoiceField(
        label=gettext_lazy("メールでの受け取り方"), widget=forms.RadioSelect,
        choices=NotificationPreference.EmailMode.choices,
        error_messages={"required": gettext_lazy("メール通知の受け取り方を選んでください。"),
                        "invalid_choice": gettext_lazy("メール通知の受け取り方を選んでください。")},
    )


@login_required
@require_http_methods(["GET", "POST"])
def notification_settings(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request.user)
    if request.method == "POST":
        form = PreferenceForm(request.POST)
        if form.is_valid():
            try:
                notifications.notification_preference_set(actor=actor, email_mode=form.cleaned_data["email_mode"])
            except ValidationFailed as exc:
                form.add_error("email_mode", str(exc))
            else:
                messages.success(request, _("通知の設定を保存しました。"))
                return redirect("notices:notification_settings")
    else:
        form = PreferenceForm(initial={"email_mode": notifications.notification_preference_get(actor=actor)})
    return render(request, "notices/notification_settings.html", {"form": form})


# --- shared helpers -----------------------------------------------------------------------------------------------


def _crumbs(*items: tuple[str, str]) -> list[dict[str, str]]:
    return [{"label": _("ホーム"), "url": reverse("web:home")}] + [{"label": a, "url": b} for a, b in items]


def _put_errors(form: forms.Form, exc: ValidationFailed) -> None:
    if not exc.errors:
        form.add_error(None, str(exc))
    for key, errors in exc.errors.items():
        for error in errors:
            form.add_error(key if key in form.fields else None, error)


def _uploads(request: HttpRequest) -> tuple[Upload, ...]:
    files = request.FILES.getlist("attachments")
    uploads = []
    for f in files:
        # Read at most one byte over the limit: the service refuses the file with a clear message.
        uploads.append(Upload(filename=f.name or "file", data=f.read(attachments.MAX_BYTES + 1)))
    return tuple(uploads)


def _choice_field(form: forms.Form, name: str) -> forms.ChoiceField:
    field = form.fields[name]
    assert isinstance(field, forms.ChoiceField)
    return field


# --- 通知: forms ----------------------------------------------------------------------------------------------------


class NoticeForm(forms.Form):
    kind = forms.ChoiceField(
        label=gettext_lazy("種別"), widget=forms.RadioSelect, choices=Notice.Kind.choices,
        error_messages={"required": gettext_lazy("種別を選んでください。")},
    )
    title = forms.CharField(label=gettext_lazy("件名"), max_length=200,
                            error_messages={"required": gettext_lazy("件名を入力してください。"),
                                            "max_length": gettext_lazy("件名は200文字以内で入力してください。")})
    body = forms.CharField(label=gettext_lazy("本文"), required=False, widget=forms.Textarea(attrs={"rows": 8}),
                           max_length=20000)
    audience = forms.ChoiceField(
        label=gettext_lazy("送り先"), widget=forms.RadioSelect,
        error_messages={"required": gettext_lazy("送り先を選んでください。"),
                        "invalid_choice": gettext_lazy("送り先を選んでください。")},
    )
    school_type = forms.ChoiceField(label=gettext_lazy("学校種"), required=False)
    school_ids = forms.TypedMultipleChoiceField(
        label=gettext_lazy("学校を選ぶ"), required=False, coerce=int, widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": gettext_lazy("送り先の学校を選び直してください。")},
    )
    board_ids = forms.TypedMultipleChoiceField(
        label=gettext_lazy("教育委員会を選ぶ（選ばなければすべて）"), required=False, coerce=int,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": gettext_lazy("送り先の教育委員会を選び直してください。")},
    )
    deadline = forms.DateField(label=gettext_lazy("期限"), required=False,
                               widget=forms.DateInput(attrs={"type": "date"}),
                               error_messages={"invalid": gettext_lazy("期限は 2026-12-01 のように入力してください。")})
    ack_required = forms.BooleanField(label=gettext_lazy("受領の確認を求める"), required=False)

    def __init__(self, sender: svc.Sender, *args: Any, forwarding: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from komu.core.codes import SCHOOL_TYPES

        if sender.school is not None:
            _choice_field(self, "audience").choices = [(svc.Audience.OWN_BOARD, _("%(board)s（設置者）") % {
                "board": sender.school.board.name})]
            self.fields["audience"].initial = svc.Audience.OWN_BOARD
            for name in ("school_type", "school_ids", "board_ids"):
                del self.fields[name]
            return
        schools = list(svc.target_schools(sender))
        boards = list(svc.target_boards(sender))
        choices = [(svc.Audience.ALL_SCHOOLS, _("所管のすべての学校（%(n)d 校）") % {"n": len(schools)}),
                   (svc.Audience.SCHOOL_TYPE, _("学校種を選んで送る")),
                   (svc.Audience.SCHOOLS, _("学校を選んで送る"))]
        if boards and not forwarding:
            choices.append((svc.Audience.BOARDS, _("所管の教育委員会に送る（各教育委員会から学校へ転送）")))
        _choice_field(self, "audience").choices = choices
        self.fields["audience"].initial = svc.Audience.ALL_SCHOOLS
        present = sorted({s.school_type for s in schools})
        _choice_field(self, "school_type").choices = [("", "—")] + [(t, SCHOOL_TYPES.get(t, t)) for t in present]
        _choice_field(self, "school_ids").choices = [(s.pk, s.name) for s in schools]
        _choice_field(self, "board_ids").choices = [(b.pk, b.name) for b in boards]
        if forwarding or not boards:
            del self.fields["board_ids"]

    def to_input(self, uploads: tuple[Upload, ...]) -> svc.NoticeInput:
        data = self.cleaned_data
        return svc.NoticeInput(
            kind=data["kind"], title=data["title"], body=data.get("body") or "", audience=data["audience"],
            school_type=data.get("school_type") or "", school_ids=tuple(data.get("school_ids") or ()),
            board_ids=tuple(data.get("board_ids") or ()), deadline=data.get("deadline"),
            ack_required=bool(data.get("ack_required")), attachments=uploads,
        )


# --- 通知: screens --------------------------------------------------------------------------------------------------


@login_required
@require_capability(roles.NOTICES_RECEIVE)
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request.user)
    unread_only = request.GET.get("unread") == "1"
    return render(request, "notices/inbox.html", {
        "rows": selectors.inbox_for(actor=actor, unread_only=unread_only),
        "unread_only": unread_only,
        "unread_count": selectors.inbox_unread_count(actor=actor),
        "pending_ack": selectors.inbox_pending_ack_count(actor=actor),
        "can_send": actor.has(roles.NOTICES_SEND),
        "breadcrumbs": _crumbs((_("受信した通知"), "")),
    })


@login_required
@require_capability(roles.NOTICES_SEND)
@require_GET
def sent(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request.user)
    return render(request, "notices/sent.html", {
        "rows": selectors.sent_for(actor=actor), "sender": svc.sender_for(actor),
        "breadcrumbs": _crumbs((_("送信した通知"), "")),
    })


def _notice_form_page(request: HttpRequest, *, forward_of: Any = None) -> HttpResponse:
    actor = get_actor(request.user)
    if forward_of is not None:
        view = _notice_view(actor, forward_of)
        if not view.can_forward or view.recipient is None or view.recipient.board is None:
            raise Http404
        sender = svc.Sender(board=view.recipient.board)
        initial = {"kind": view.notice.kind, "title": view.notice.title, "body": view.notice.body,
                   "deadline": view.notice.deadline, "ack_required": view.notice.ack_required}
    else:
        try:
            sender = svc.sender_for(actor)
        except PermissionDeniedError:
            raise Http404 from None
        initial = {}
    form = NoticeForm(sender, request.POST or None, initial=initial, forwarding=forward_of is not None)
    if request.method == "POST" and form.is_valid():
        try:
            uploads = _uploads(request)
            if forward_of is not None:
                notice = svc.notice_forward(actor=actor, notice_id=forward_of, data=form.to_input(uploads))
            else:
                notice = svc.notice_send(actor=actor, data=form.to_input(uploads))
        except NotFoundOrNoAccess:
            raise Http404 from None
        except ValidationFailed as exc:
            _put_errors(form, exc)
            if "attachments" in exc.errors:
                form.add_error(None, " ".join(exc.errors["attachments"]))
        except PermissionDeniedError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("「%(title)s」を %(n)d か所に送りました。") % {
                "title": notice.title, "n": notice.recipients.count()})
            return redirect("notices:notice_detail", notice.pk)
    title = _("通知を転送する") if forward_of is not None else _("通知を送る")
    return render(request, "notices/notice_form.html", {
        "form": form, "sender": sender, "page_title": title, "forwarding": forward_of is not None,
        "max_mb": attachments.MAX_BYTES // (1024 * 1024), "max_files": attachments.MAX_FILES,
        "breadcrumbs": _crumbs((_("送信した通知"), reverse("notices:sent")), (title, "")),
    })


@login_required
@require_capability(roles.NOTICES_SEND)
@require_http_methods(["GET", "POST"])
def notice_new(request: HttpRequest) -> HttpResponse:
    return _notice_form_page(request)


@login_required
@require_capability(roles.NOTICES_SEND)
@require_http_methods(["GET", "POST"])
def notice_forward(request: HttpRequest, notice_id: int) -> HttpResponse:
    return _notice_form_page(request, forward_of=notice_id)


def _notice_view(actor: Any, notice_id: Any) -> selectors.NoticeView:
    try:
        return selectors.notice_get_for(actor=actor, notice_id=notice_id)
    except NotFoundOrNoAccess:
        raise Http404 from None


@login_required
@require_GET
def notice_detail(request: HttpRequest, notice_id: int) -> HttpResponse:
    actor = get_actor(request.user)
    if not (actor.has(roles.NOTICES_RECEIVE) or actor.has(roles.NOTICES_SEND)):
        raise Http404
    view = _notice_view(actor, notice_id)
    if view.recipient is not None and view.recipient.opened_at is None:
        svc.notice_open(actor=actor, notice_id=notice_id)
        view = _notice_view(actor, notice_id)
    context: dict[str, Any] = {"view": view, "notice": view.notice}
    if view.is_sender:
        _notice, rows = selectors.notice_status(actor=actor, notice_id=notice_id)
        counts = {"total": len(rows), "acknowledged": sum(r.state == "acknowledged" for r in rows),
                  "opened": sum(r.state != "delivered" for r in rows)}
        counts["pending"] = counts["total"] - (counts["acknowledged"] if view.notice.ack_required
                                               else counts["opened"])
        context.update(rows=rows, counts=counts)
        crumb = (_("送信した通知"), reverse("notices:sent"))
    else:
        crumb = (_("受信した通知"), reverse("notices:inbox"))
    context["breadcrumbs"] = _crumbs(crumb, (view.notice.title, ""))
    return render(request, "notices/notice_detail.html", context)


@login_required
@require_capability(roles.NOTICES_RECEIVE)
@require_POST
def notice_acknowledge(request: HttpRequest, notice_id: int) -> HttpResponse:
    try:
        svc.notice_acknowledge(actor=get_actor(request.user), notice_id=notice_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    except PermissionDeniedError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("受領しました。送信元に伝わります。"))
    return redirect("notices:notice_detail", notice_id)


@login_required
@require_capability(roles.NOTICES_SEND)
@require_POST
def notice_remind(request: HttpRequest, notice_id: int) -> HttpResponse:
    try:
        count = svc.notice_remind(actor=get_actor(request.user), notice_id=notice_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    except ValidationFailed as exc:
        messages.info(request, str(exc))
    else:
        messages.success(request, _("%(n)d か所に督促しました（画面とメールでお知らせします）。") % {"n": count})
    return redirect("notices:notice_detail", notice_id)


@login_required
@require_GET
def attachment_download(request: HttpRequest, attachment_id: str) -> HttpResponseBase:
    try:
        attachment, data = selectors.attachment_download(actor=get_actor(request.user), attachment_id=attachment_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    except ValidationFailed as exc:
        return HttpResponse(str(exc), status=409, content_type="text/plain; charset=utf-8")
    response = StreamingHttpResponse(data, content_type=attachment.content_type)
    response["Content-Length"] = str(attachment.size)
    response["Content-Disposition"] = content_disposition_header(True, attachment.filename)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


# --- お便り -----------------------------------------------------------------------------------------------------


class LetterForm(forms.Form):
    title = forms.CharField(label=gettext_lazy("件名"), max_length=200,
                            error_messages={"required": gettext_lazy("件名を入力してください。"),
                                            "max_length": gettext_lazy("件名は200文字以内で入力してください。")})
    body = forms.CharField(label=gettext_lazy("本文"), required=False, widget=forms.Textarea(attrs={"rows": 8}),
                           max_length=20000)
    audience = forms.ChoiceField(label=gettext_lazy("送り先"), widget=forms.RadioSelect,
                                 error_messages={"required": gettext_lazy("送り先を選んでください。"),
                                                 "invalid_choice": gettext_lazy("送り先を選んでください。")})
    class_id = forms.TypedChoiceField(label=gettext_lazy("学級"), required=False, coerce=int, empty_value=None,
                                      error_messages={"invalid_choice": gettext_lazy("学級を選び直してください。")})
    grade_code = forms.ChoiceField(label=gettext_lazy("学年"), required=False)
    reply_kind = forms.ChoiceField(label=gettext_lazy("保護者からの返信"), widget=forms.RadioSelect,
                                   choices=Letter.ReplyKind.choices, initial=Letter.ReplyKind.NONE,
                                   error_messages={"required": gettext_lazy("返信の有無を選んでください。")})
    reply_deadline = forms.DateField(
        label=gettext_lazy("返信の期限"), required=False, widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": gettext_lazy("返信の期限は 2026-12-01 のように入力してください。")})

    def __init__(self, actor: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from komu.core.codes import grade_display

        classes = letter_svc.sendable_classes(actor)
        _choice_field(self, "class_id").choices = [(c.pk, c.display_label) for c in classes]
        whole = bool(letter_svc._whole_school_ids(actor))
        audience = [(Letter.Audience.CLASS, _("学級の保護者"))]
        if whole:
            audience += [(Letter.Audience.GRADE, _("学年の保護者")), (Letter.Audience.SCHOOL, _("全校の保護者"))]
            grades = sorted({c.grade_code for c in classes})
            _choice_field(self, "grade_code").choices = [("", "—")] + [(g, grade_display(g)) for g in grades]
        else:
            del self.fields["grade_code"]
        _choice_field(self, "audience").choices = audience
        self.fields["audience"].initial = Letter.Audience.CLASS
        if len(classes) == 1:
            self.fields["class_id"].initial = classes[0].pk

    def to_input(self, uploads: tuple[Upload, ...]) -> letter_svc.LetterInput:
        d = self.cleaned_data
        return letter_svc.LetterInput(
            title=d["title"], body=d.get("body") or "", audience=d["audience"], class_id=d.get("class_id"),
            grade_code=d.get("grade_code") or "", reply_kind=d["reply_kind"], reply_deadline=d.get("reply_deadline"),
            attachments=uploads,
        )


@login_required
@require_capability(roles.LETTERS_SEND)
@require_GET
def letters(request: HttpRequest) -> HttpResponse:
    return render(request, "notices/letters.html", {
        "rows": selectors.letters_sent_for(actor=get_actor(request.user)),
        "breadcrumbs": _crumbs((_("保護者へのお便り"), "")),
    })


class BoardLetterForm(forms.Form):
    """A board's letter to the guardians of its schools (sent through each school)."""

    title = LetterForm.base_fields["title"]
    body = LetterForm.base_fields["body"]
    school_ids = forms.TypedMultipleChoiceField(
        label=gettext_lazy("送り先の学校（全校の保護者）"), coerce=int, widget=forms.CheckboxSelectMultiple,
        error_messages={"required": gettext_lazy("送り先の学校を選んでください。"),
                        "invalid_choice": gettext_lazy("送り先の学校を選び直してください。")},
    )
    reply_kind = LetterForm.base_fields["reply_kind"]
    reply_deadline = LetterForm.base_fields["reply_deadline"]

    def __init__(self, actor: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        schools = list(letter_svc.board_letter_schools(actor))
        _choice_field(self, "school_ids").choices = [(s.pk, s.name) for s in schools]
        self.fields["school_ids"].initial = [s.pk for s in schools]

    def to_input(self, uploads: tuple[Upload, ...]) -> letter_svc.LetterInput:
        d = self.cleaned_data
        return letter_svc.LetterInput(
            title=d["title"], body=d.get("body") or "", audience=Letter.Audience.SCHOOL,
            school_ids=tuple(d["school_ids"]), reply_kind=d["reply_kind"], reply_deadline=d.get("reply_deadline"),
            attachments=uploads,
        )


def _board_letter_new(request: HttpRequest, actor: Any) -> HttpResponse:
    form = BoardLetterForm(actor, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            sent_letters = letter_svc.letters_send_from_board(actor=actor, data=form.to_input(_uploads(request)))
        except NotFoundOrNoAccess:
            raise Http404 from None
        except ValidationFailed as exc:
            _put_errors(form, exc)
            if "attachments" in exc.errors:
                form.add_error(None, " ".join(exc.errors["attachments"]))
        else:
            messages.success(request, _("「%(title)s」を %(n)d 校の保護者に送りました（学校ごとに1通）。") % {
                "title": sent_letters[0].title, "n": len(sent_letters)})
            return redirect("notices:letters")
    return render(request, "notices/letter_form.html", {
        "form": form, "board_letter": True,
        "max_mb": attachments.MAX_BYTES // (1024 * 1024), "max_files": attachments.MAX_FILES,
        "breadcrumbs": _crumbs((_("保護者へのお便り"), reverse("notices:letters")), (_("お便りを送る"), "")),
    })


@login_required
@require_capability(roles.LETTERS_SEND)
@require_http_methods(["GET", "POST"])
def letter_new(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request.user)
    if not letter_svc.sendable_classes(actor) and letter_svc.board_ids_for_letters(actor):
        return _board_letter_new(request, actor)
    form = LetterForm(actor, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            letter = letter_svc.letter_send(actor=actor, data=form.to_input(_uploads(request)))
        except NotFoundOrNoAccess:
            raise Http404 from None
        except ValidationFailed as exc:
            _put_errors(form, exc)
            if "attachments" in exc.errors:
                form.add_error(None, " ".join(exc.errors["attachments"]))
        else:
            messages.success(request, _("「%(title)s」を %(label)s の保護者に送りました。") % {
                "title": letter.title, "label": letter.audience_label})
            return redirect("notices:letter_detail", letter.pk)
    return render(request, "notices/letter_form.html", {
        "form": form, "max_mb": attachments.MAX_BYTES // (1024 * 1024), "max_files": attachments.MAX_FILES,
        "breadcrumbs": _crumbs((_("保護者へのお便り"), reverse("notices:letters")), (_("お便りを送る"), "")),
    })


@login_required
@require_capability(roles.LETTERS_SEND)
@require_GET
def letter_detail(request: HttpRequest, letter_id: int) -> HttpResponse:
    try:
        letter, rows, files = selectors.letter_status(actor=get_actor(request.user), letter_id=letter_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    counts = {"total": len(rows), "read": sum(r.read_at is not None for r in rows),
              "agree": sum(r.reply is not None and r.reply.choice == LetterReply.Choice.AGREE for r in rows),
              "disagree": sum(r.reply is not None and r.reply.choice == LetterReply.Choice.DISAGREE for r in rows)}
    counts["unanswered"] = counts["total"] - counts["agree"] - counts["disagree"]
    return render(request, "notices/letter_detail.html", {
        "letter": letter, "rows": rows, "files": files, "counts": counts,
        "breadcrumbs": _crumbs((_("保護者へのお便り"), reverse("notices:letters")), (letter.title, "")),
    })


@login_required
@require_capability(roles.LETTERS_READ)
@require_GET
def guardian_letters(request: HttpRequest) -> HttpResponse:
    return render(request, "notices/guardian_letters.html", {
        "rows": selectors.letters_for_guardian(actor=get_actor(request.user)),
        "breadcrumbs": _crumbs((_("学校からのお便り"), "")),
    })


class ReplyForm(forms.Form):
    student = forms.CharField(widget=forms.HiddenInput)
    choice = forms.ChoiceField(
        label=gettext_lazy("お返事"), widget=forms.RadioSelect, choices=LetterReply.Choice.choices,
        error_messages={"required": gettext_lazy("「参加に同意する」か「同意しない」を選んでください。"),
                        "invalid_choice": gettext_lazy("「参加に同意する」か「同意しない」を選んでください。")},
    )
    comment = forms.CharField(label=gettext_lazy("学校への連絡（任意）"), required=False, max_length=1000,
                              widget=forms.Textarea(attrs={"rows": 3}),
                              error_messages={"max_length": gettext_lazy("連絡事項は1000文字以内で入力してください。")})


@login_required
@require_capability(roles.LETTERS_READ)
@require_http_methods(["GET", "POST"])
def guardian_letter(request: HttpRequest, letter_id: int) -> HttpResponse:
    actor = get_actor(request.user)
    try:
        letter_svc.letter_mark_read(actor=actor, letter_id=letter_id)
        letter, children, files = selectors.letter_for_guardian(actor=actor, letter_id=letter_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    forms_by_child: dict[str, ReplyForm] = {}
    if request.method == "POST":
        form = ReplyForm(request.POST)
        student = request.POST.get("student", "")
        if form.is_valid():
            try:
                letter_svc.letter_reply(actor=actor, letter_id=letter_id, student_id=form.cleaned_data["student"],
                                        choice=form.cleaned_data["choice"], comment=form.cleaned_data["comment"])
            except NotFoundOrNoAccess:
                raise Http404 from None
            except ValidationFailed as exc:
                _put_errors(form, exc)
            else:
                messages.success(request, _("お返事を送りました。学校に届いています。"))
                return redirect("notices:guardian_letter", letter_id)
        forms_by_child[student] = form
    items = []
    for child in children:
        key = str(child.recipient.student_id)
        form = forms_by_child.get(key) or ReplyForm(initial={"student": key}, prefix=None)
        items.append({"child": child, "form": form})
    return render(request, "notices/guardian_letter.html", {
        "letter": letter, "items": items, "files": files,
        "reply_open": letter.reply_kind != Letter.ReplyKind.NONE and (
            letter.reply_deadline is None or letter.reply_deadline >= timezone.localdate()),
        "breadcrumbs": _crumbs((_("学校からのお便り"), reverse("notices:guardian_letters")), (letter.title, "")),
    })


# --- 紙・FAX で送ったもの ------------------------------------------------------------------------------------------


class PaperSendForm(forms.Form):
    channel = forms.ChoiceField(label=gettext_lazy("手段"), widget=forms.RadioSelect,
                                choices=PaperSend.Channel.choices, initial=PaperSend.Channel.FAX,
                                error_messages={"required": gettext_lazy("FAX か紙かを選んでください。")})
    counterparty = forms.ChoiceField(label=gettext_lazy("相手先の区分"), widget=forms.RadioSelect,
                                     choices=PaperSend.Counterparty.choices,
                                     error_messages={"required": gettext_lazy("相手先の区分を選んでください。")})
    document_kind = forms.CharField(label=gettext_lazy("文書の種類"), max_length=100,
                                    help_text=gettext_lazy("例: 給食の数量変更、見積依頼、健康診断の結果"),
                                    error_messages={"required": gettext_lazy("文書の種類を入力してください（例: 給食の数量変更）。")})
    sent_on = forms.DateField(label=gettext_lazy("送った日"), required=False,
                              widget=forms.DateInput(attrs={"type": "date"}),
                              error_messages={"invalid": gettext_lazy("送った日は 2026-12-01 のように入力してください。")})


def _month_param(raw: str | None) -> datetime.date:
    today = timezone.localdate()
    if raw:
        try:
            year, month = (int(x) for x in raw.split("-", 1))
            return datetime.date(year, month, 1)
        except ValueError:
            pass
    return today.replace(day=1)


@login_required
@require_capability(roles.NOTICES_SEND)
@require_http_methods(["GET", "POST"])
def paper_sends(request: HttpRequest) -> HttpResponse:
    actor = get_actor(request.user)
    sender = svc.sender_for(actor)
    form = PaperSendForm(request.POST or None, initial={"sent_on": timezone.localdate()})
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            paper_svc.paper_send_record(actor=actor, data=paper_svc.PaperSendInput(
                channel=d["channel"], counterparty=d["counterparty"], document_kind=d["document_kind"],
                sent_on=d.get("sent_on")))
        except ValidationFailed as exc:
            _put_errors(form, exc)
        else:
            messages.success(request, _("記録しました。"))
            return redirect("notices:paper_sends")
    month = _month_param(request.GET.get("month"))
    org = {"school_id": sender.school.pk} if sender.school else {"board_id": sender.board.pk if sender.board else 0}
    counts = selectors.paper_send_counts(month=month, **org)
    prev_month = (month - datetime.timedelta(days=1)).replace(day=1)
    next_month = (month + datetime.timedelta(days=32)).replace(day=1)
    return render(request, "notices/paper_sends.html", {
        "form": form, "sender": sender, "month": month, "rows": selectors.paper_sends_for(actor=actor, month=month),
        "counts": [(label, counts[value]) for value, label in PaperSend.Counterparty.choices],
        "total": counts["total"], "komu": selectors.komu_send_counts(month=month, **org),
        "prev_month": prev_month, "next_month": next_month if next_month <= timezone.localdate() else None,
        "breadcrumbs": _crumbs((_("紙・FAXでの送付の記録"), "")),
    })
