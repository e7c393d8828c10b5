"""転学 screens — the old school's 「転学の手続き」 form and outgoing list, the receiving school's inbox and 受け入れ,
the board's designation of a school — and the exports of class lists and registries (CSV/XLSX, asked for a
reason, audited). Reads through selectors, writes through services; out of scope is 404.
"""

from __future__ import annotations

import datetime
from typing import Any
from urllib.parse import quote, urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from komu.access import roles
from komu.access.scope import get_actor
from komu.accounts import mfa
from komu.core.codes import grade_display
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.disclosures import services as disclosure_services
from komu.disclosures.services import StepUpRequired
from komu.rosters.models import TransferDocument
from komu.rosters.selectors import transfers as selectors
from komu.rosters.services import transfers as services
from komu.students import exports
from komu.students.models import EnrollmentKind, Sex, SpecialNeedsPlacement
from komu.web.decorators import require_capability

# Labels of stored codes, from the models' choices (one source for every screen).
_KIND_LABELS = dict(EnrollmentKind.choices)
_SEX_LABELS = dict(Sex.choices)
_PLACEMENT_LABELS = dict(SpecialNeedsPlacement.choices)


def _crumbs(*items: tuple[str, str]) -> list[dict[str, str]]:
    return [{"label": _("転学"), "url": reverse("rosters:transfer_list")},
            *({"label": label, "url": url} for label, url in items)]


def _put_errors(form: forms.Form, exc: ValidationFailed, rename: dict[str, str] | None = None) -> None:
    if not exc.errors:
        form.add_error(None, str(exc))
    for name, errors in exc.errors.items():
        target = (rename or {}).get(name, name)
        for error in errors:
            form.add_error(target if target in form.fields else None, error)


# --- Forms -------------------------------------------------------------------------------------------------------

class SendForm(forms.Form):
    departure_date = forms.DateField(
        label=gettext_lazy("転学日"), widget=forms.DateInput(attrs={"type": "date"}),
        help_text=gettext_lazy("この学校に在籍する最後の日です（転学先が受け入れる日の前日）。"),
        error_messages={"required": gettext_lazy("転学日を入力してください。"),
                        "invalid": gettext_lazy("転学日を 2026-11-30 の形で入力してください。")},
    )
    destination = forms.ChoiceField(
        label=gettext_lazy("送付先"), widget=forms.RadioSelect, initial="school",
        choices=[("school", gettext_lazy("転学先の学校（Komu を使っている学校）")),
                 ("board", gettext_lazy("転学先の教育委員会（学校が未定のとき。教育委員会が学校を指定します）"))],
    )
    to_school = forms.ChoiceField(label=gettext_lazy("転学先の学校"), required=False)
    to_board = forms.ChoiceField(label=gettext_lazy("転学先の教育委員会"), required=False)
    to_school_name = forms.CharField(
        label=gettext_lazy("分かっている学校名（任意）"), required=False, max_length=100,
        help_text=gettext_lazy("教育委員会に送るとき、保護者から聞いている学校名があれば入力してください。"),
    )
    reason = forms.CharField(
        label=gettext_lazy("転学の事由"), max_length=200,
        help_text=gettext_lazy("例: 転居のため"),
        error_messages={"required": gettext_lazy("転学の事由を入力してください（例: 転居のため）。")},
    )
    textbooks = forms.CharField(
        label=gettext_lazy("給与した教科用図書（任意）"), required=False, widget=forms.Textarea(attrs={"rows": 4}),
        help_text=gettext_lazy("1行に1冊（教科・発行者・書名）。空欄なら「全教科の教科用図書」と記載します。"),
    )

    def __init__(self, *args: Any, send_form: selectors.SendForm, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        schools = self.fields["to_school"]
        boards = self.fields["to_board"]
        assert isinstance(schools, forms.ChoiceField) and isinstance(boards, forms.ChoiceField)
        schools.choices = [("", _("選んでください"))] + [
            (str(s.pk), f"{s.name}（{s.board.name if s.board else ''}）") for s in send_form.schools
        ]
        boards.choices = [("", _("選んでください"))] + [(str(b.pk), b.name) for b in send_form.boards]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("destination") == "school" and not data.get("to_school"):
            self.add_error("to_school", _("転学先の学校を選んでください。学校が未定なら送付先に教育委員会を選びます。"))
        if data.get("destination") == "board" and not data.get("to_board"):
            self.add_error("to_board", _("転学先の教育委員会を選んでください。"))
        return data


class AcceptForm(forms.Form):
    transfer_in_date = forms.DateField(
        label=gettext_lazy("転入学日"), widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"required": gettext_lazy("転入学日を入力してください。"),
                        "invalid": gettext_lazy("転入学日を 2026-12-01 の形で入力してください。")},
    )


class RouteForm(forms.Form):
    to_school = forms.ChoiceField(label=gettext_lazy("指定する学校"))

    def __init__(self, *args: Any, schools: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["to_school"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", _("選んでください"))] + [(str(s.pk), s.name) for s in schools]


class CancelForm(forms.Form):
    reason = forms.CharField(label=gettext_lazy("取消の理由"), max_length=200,
                             error_messages={"required": gettext_lazy("取消の理由を入力してください。")})


# --- Transfer views ------------------------------------------------------------------------------------------------

@login_required
@require_capability(roles.TRANSFERS_MANAGE)
def transfer_list(request: HttpRequest) -> HttpResponse:
    lists = selectors.transfer_lists_for(actor=get_actor(request.user))
    return render(request, "rosters/transfer_list.html", {"lists": lists, "breadcrumbs": _crumbs()})


@login_required
@require_capability(roles.TRANSFERS_MANAGE)
def transfer_new(request: HttpRequest, student_id: str) -> HttpResponse:
    """「転学の手続き」: where the pupil goes, the date and reason; sending certifies and sends the package."""
    actor = get_actor(request.user)
    try:
        send_form = selectors.transfer_send_form_for(actor=actor, student_id=student_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    form = SendForm(request.POST or None, send_form=send_form,
                    initial={"departure_date": timezone.localdate(), "destination": "school"})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        to_school = data["to_school"] if data["destination"] == "school" else None
        to_board = data["to_board"] if data["destination"] == "board" else None
        try:
            package = services.transfer_send(
                actor=actor, student_id=send_form.student_id, departure_date=data["departure_date"],
                to_school_id=to_school, to_board_id=to_board, to_school_name=data["to_school_name"] if to_board else "",
                reason=data["reason"], textbooks=[line for line in data["textbooks"].splitlines() if line.strip()],
            )
        except NotFoundOrNoAccess:
            raise Http404 from None
        except PermissionDeniedError as exc:
            form.add_error(None, str(exc))
        except ValidationFailed as exc:
            _put_errors(form, exc)
        else:
            messages.success(request, _("転学の書類を証明して送付しました。"))
            return redirect("rosters:transfer_detail", package_id=package.pk)
    return render(request, "rosters/transfer_new.html", {
        "form": form, "send_form": send_form, "breadcrumbs": _crumbs((_("転学の手続き"), "")),
    }, status=400 if form.errors else 200)


def _detail_context(view: selectors.PackageView) -> dict[str, Any]:
    record = view.record
    pupil = record.get("student", {})
    return {
        "view": view,
        "package": view.package,
        "record": record,
        "pupil": pupil,
        "sex_label": _SEX_LABELS.get(str(pupil.get("sex", "")), ""),
        "placement_label": _PLACEMENT_LABELS.get(str(pupil.get("special_needs_placement", "none")), ""),
        "birth_date": datetime.date.fromisoformat(pupil["birth_date"]) if pupil.get("birth_date") else None,
        "grade_label": grade_display(str(record.get("grade_code", ""))),
        "history": [
            {**e, "kind_label": _KIND_LABELS.get(e["kind"], e["kind"]),
             "date_value": datetime.date.fromisoformat(e["date"]),
             "grade_label": grade_display(e["grade_code"])}
            for e in record.get("history", [])
        ],
        "attendance": record.get("attendance", {}),
        "attendance_through": datetime.date.fromisoformat(record["attendance"]["through"])
        if record.get("attendance") else None,
        "breadcrumbs": _crumbs((_("転学の書類"), "")),
    }


def _transfer_in_default(view: selectors.PackageView) -> datetime.date:
    """転入学日 is the day after the 転学日 (the old school's last day), as the sending form explains."""
    return view.package.departure_date + datetime.timedelta(days=1)


@login_required
@require_capability(roles.TRANSFERS_MANAGE)
def transfer_detail(request: HttpRequest, package_id: str) -> HttpResponse:
    try:
        view = selectors.transfer_get_for(actor=get_actor(request.user), package_id=package_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    context = _detail_context(view)
    context.update(
        accept_form=AcceptForm(initial={"transfer_in_date": _transfer_in_default(view)}),
        route_form=RouteForm(schools=view.route_schools), cancel_form=CancelForm(),
    )
    return render(request, "rosters/transfer_detail.html", context)


def _rerender(request: HttpRequest, package_id: str, **forms_: forms.Form) -> HttpResponse:
    try:
        view = selectors.transfer_get_for(actor=get_actor(request.user), package_id=package_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    context = _detail_context(view)
    context.update(
        accept_form=AcceptForm(initial={"transfer_in_date": _transfer_in_default(view)}),
        route_form=RouteForm(schools=view.route_schools), cancel_form=CancelForm(),
    )
    context.update(forms_)
    return render(request, "rosters/transfer_detail.html", context, status=400)


@login_required
@require_capability(roles.TRANSFERS_MANAGE)
def transfer_document(request: HttpRequest, package_id: str, kind: str) -> HttpResponse:
    if kind not in TransferDocument.Kind.values:
        raise Http404
    try:
        document = selectors.transfer_document_get_for(actor=get_actor(request.user), package_id=package_id,
                                                       kind=kind)
        # A download of personal data: recorded in the disclosure log, its serial in the file name (the signed
        # PDF itself stays byte for byte what the receiving school verifies).
        disclosure = disclosure_services.transfer_document_disclosed(
            actor=get_actor(request.user), package_id=package_id, label=str(TransferDocument.Kind(kind).label))
    except NotFoundOrNoAccess:
        raise Http404 from None
    filename = document.filename.removesuffix(".pdf") + f"_{disclosure.serial}.pdf"
    response = HttpResponse(document.content, content_type="application/pdf")
    response["Content-Disposition"] = (
        f"inline; filename=\"transfer-{kind}.pdf\"; filename*=UTF-8''{quote(filename)}"
    )
    response["X-Komu-Serial"] = disclosure.serial
    response["Cache-Control"] = "no-store"
    response["X-Komu-Signature"] = "valid" if document.valid else "invalid"
    return response


@login_required
@require_capability(roles.TRANSFERS_MANAGE)
@require_POST
def transfer_accept(request: HttpRequest, package_id: str) -> HttpResponse:
    form = AcceptForm(request.POST)
    if form.is_valid():
        try:
            student = services.transfer_accept(actor=get_actor(request.user), package_id=package_id,
                                               transfer_in_date=form.cleaned_data["transfer_in_date"])
        except NotFoundOrNoAccess:
            raise Http404 from None
        except (PermissionDeniedError, ValidationFailed) as exc:
            if isinstance(exc, ValidationFailed):
                _put_errors(form, exc)
            else:
                form.add_error(None, str(exc))
        else:
            messages.success(request, _("転入学を受け入れました。学級編制で学級に入れてください。"))
            return redirect("students:detail", student_id=student.pk)
    return _rerender(request, package_id, accept_form=form)


@login_required
@require_capability(roles.TRANSFERS_MANAGE)
@require_POST
def transfer_route(request: HttpRequest, package_id: str) -> HttpResponse:
    try:
        view = selectors.transfer_get_for(actor=get_actor(request.user), package_id=package_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    form = RouteForm(request.POST, schools=view.route_schools)
    if form.is_valid():
        try:
            services.transfer_route(actor=get_actor(request.user), package_id=package_id,
                                    to_school_id=form.cleaned_data["to_school"])
        except NotFoundOrNoAccess:
            raise Http404 from None
        except ValidationFailed as exc:
            _put_errors(form, exc)
        else:
            messages.success(request, _("学校を指定し、転学の書類を学校へ送付しました。"))
            return redirect("rosters:transfer_detail", package_id=package_id)
    return _rerender(request, package_id, route_form=form)


@login_required
@require_capability(roles.TRANSFERS_MANAGE)
@require_POST
def transfer_cancel(request: HttpRequest, package_id: str) -> HttpResponse:
    form = CancelForm(request.POST)
    if form.is_valid():
        try:
            services.transfer_cancel(actor=get_actor(request.user), package_id=package_id,
                                     reason=form.cleaned_data["reason"])
        except NotFoundOrNoAccess:
            raise Http404 from None
        except PermissionDeniedError as exc:
            form.add_error(None, str(exc))
        except ValidationFailed as exc:
            _put_errors(form, exc)
        else:
            messages.success(request, _("転学を取り消しました。児童生徒は在籍に戻りました。"))
            return redirect("rosters:transfer_list")
    return _rerender(request, package_id, cancel_form=form)


# --- Exports of class lists and registries ------------------------------------------------------------------------

class ExportForm(forms.Form):
    kind = forms.ChoiceField(widget=forms.HiddenInput, choices=[("class_list", "class_list"), ("registry", "registry")])
    columns = forms.MultipleChoiceField(
        label=gettext_lazy("出力する項目"), widget=forms.CheckboxSelectMultiple,
        error_messages={"required": gettext_lazy("出力する項目を1つ以上選んでください。")},
    )
    format = forms.ChoiceField(
        label=gettext_lazy("ファイル形式"), widget=forms.RadioSelect, initial="csv_utf8",
        choices=list(exports.FORMATS.items()),
        help_text=gettext_lazy("Excel で開くなら XLSX か UTF-8 の CSV が確実です。Shift_JIS は古いシステムへの取込用です。"),
    )
    reason = forms.CharField(
        label=gettext_lazy("出力の目的"), max_length=200,
        help_text=gettext_lazy("例: 家庭訪問の準備。出力した人・目的・対象の児童生徒・項目は記録されます。"),
        error_messages={"required": gettext_lazy("出力の目的を入力してください（例: 家庭訪問の準備）。")},
    )

    def __init__(self, *args: Any, kind: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = exports.CLASS_LIST_FIELDS if kind == "class_list" else exports.REGISTRY_FIELDS
        field = self.fields["columns"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [(name, exports.FIELD_LABELS[name]) for name in names]
        self.fields["kind"].initial = kind


@login_required
@require_capability(roles.STUDENTS_EXPORT)
def export_index(request: HttpRequest) -> HttpResponse:
    """The classes whose lists the person may export."""
    classes = exports.export_class_choices_for(actor=get_actor(request.user))
    return render(request, "rosters/export_index.html", {
        "classes": classes, "breadcrumbs": [{"label": _("名簿の出力"), "url": ""}],
    })


def _export(request: HttpRequest, class_id: str, kind: str) -> HttpResponse:
    actor = get_actor(request.user)
    try:
        klass = exports.export_class_get(actor=actor, class_id=class_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    posted_kind = request.POST.get("kind", kind) if request.method == "POST" else kind
    kind = posted_kind if posted_kind in ("class_list", "registry") else kind
    default_fields = list(exports.CLASS_LIST_FIELDS) + (["address", "guardian_name", "guardian_relationship",
                                                         "guardian_phone"] if kind == "registry" else [])
    form = ExportForm(request.POST or None, kind=kind,
                      initial={"columns": default_fields, "format": "csv_utf8"})
    problems: list[exports.EncodingProblem] = []
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            outcome = exports.class_export(actor=actor, class_id=klass.pk, kind=kind, fields=data["columns"],
                                           fmt=data["format"], reason=data["reason"],
                                           reauthenticated=mfa.reauth_is_fresh(request))
        except NotFoundOrNoAccess:
            raise Http404 from None
        except StepUpRequired as exc:
            # Bulk export (guardians' contacts, many pupils): re-authenticate, then come back to this form.
            messages.warning(request, str(exc) + _("確認後、もう一度「出力する」を押してください。"))
            return redirect(f"{reverse('accounts:reauth')}?{urlencode({'next': request.get_full_path()})}")
        except PermissionDeniedError as exc:
            form.add_error(None, str(exc))
        except ValidationFailed as exc:
            _put_errors(form, exc, rename={"fields": "columns"})
        else:
            if outcome.content is not None:
                response = HttpResponse(outcome.content, content_type=outcome.content_type)
                response["Content-Disposition"] = (
                    f"attachment; filename=\"export\"; filename*=UTF-8''{quote(outcome.filename)}"
                )
                response["Cache-Control"] = "no-store"
                response["X-Komu-Serial"] = outcome.serial
                return response
            problems = outcome.problems
    title = _("学級名簿の出力") if kind == "class_list" else _("児童生徒名簿（学籍）の出力")
    return render(request, "rosters/export_form.html", {
        "form": form, "klass": klass, "kind": kind, "title": title, "problems": problems,
        "posted_columns": form.cleaned_data.get("columns", []) if problems else [],
        "posted_reason": form.cleaned_data.get("reason", "") if problems else "",
        "breadcrumbs": [{"label": _("名簿の出力"), "url": reverse("rosters:export_index")}, {"label": title, "url": ""}],
    }, status=400 if form.errors else 200)


@login_required
@require_capability(roles.STUDENTS_EXPORT)
def export_class(request: HttpRequest, class_id: str) -> HttpResponse:
    """Class list (出席番号, 氏名, ふりがな, 性別, 生年月日) of one class as CSV/XLSX."""
    return _export(request, class_id, "class_list")


@login_required
@require_capability(roles.STUDENTS_EXPORT)
def export_registry(request: HttpRequest, class_id: str) -> HttpResponse:
    """Registry of one class: the class list plus address and guardians' contacts, fields selectable."""
    return _export(request, class_id, "registry")


urlpatterns: list[URLPattern] = [
    path("transfers/", transfer_list, name="transfer_list"),
    path("transfers/new/<str:student_id>/", transfer_new, name="transfer_new"),
    path("transfers/<str:package_id>/", transfer_detail, name="transfer_detail"),
    path("transfers/<str:package_id>/documents/<str:kind>.pdf", transfer_document, name="transfer_document"),
    path("transfers/<str:package_id>/accept/", transfer_accept, name="transfer_accept"),
    path("transfers/<str:package_id>/route/", transfer_route, name="transfer_route"),
    path("transfers/<str:package_id>/cancel/", transfer_cancel, name="transfer_cancel"),
    path("exports/", export_index, name="export_index"),
    path("exports/classes/<str:class_id>/", export_class, name="export_class"),
    path("exports/classes/<str:class_id>/registry/", export_registry, name="export_registry"),
]
