"""Board screens of the 学齢簿 import: upload a file, watch its dry run, read the result (errors, warnings, the
changes it would make), apply it or throw it away; the history of the board's imports.

Thin: reads and writes go through komu.rosters.services.imports (which check scope and audit); the checking and
the applying run as background tasks (komu.rosters.tasks) while the detail page polls their progress with HTMX.
Out of scope is 404.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from komu.access import roles
from komu.access.scope import Actor, get_actor
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.core.htmx import is_htmx
from komu.directory.models import Board
from komu.interop.gakureibo import KOMU_SCHEMA
from komu.rosters import tasks
from komu.rosters.models import GakureiboImport
from komu.rosters.records import RECORD_LABELS
from komu.rosters.selectors import rosters as selectors
from komu.rosters.services import imports as services
from komu.web.decorators import require_capability

# What each column of the Komu layout holds, shown on the upload page (the headings come from the parser's schema
# so the page and the parser cannot disagree).
_COLUMN_HELP: dict[str, Any] = {
    "person_id": gettext_lazy("教育委員会の個人識別番号（宛名番号など）。ファイルの中で重複しないこと。英数字。"),
    "family_name": gettext_lazy("住民票のとおりに入力（髙・﨑・𠮷 もそのまま保存します）。"),
    "given_name": gettext_lazy("同上。"),
    "family_name_kana": gettext_lazy("ひらがな・カタカナ・半角カナのどれでも可（カタカナにそろえます）。"),
    "given_name_kana": gettext_lazy("同上。空欄は警告になります。"),
    "sex": gettext_lazy("男 / 女 / 未設定（空欄は未設定）。"),
    "birth_date": gettext_lazy("2020-06-15、2020/6/15、令和2年6月15日、R2.6.15 など。"),
    "address": gettext_lazy("住所。"),
    "postal_code": gettext_lazy("123-4567 の形。"),
    "guardian_family_name": gettext_lazy("保護者の氏名（入力どおりに保存）。"),
    "guardian_given_name": gettext_lazy("同上。"),
    "guardian_family_name_kana": gettext_lazy("保護者のふりがな。"),
    "guardian_given_name_kana": gettext_lazy("同上。"),
    "guardian_relationship": gettext_lazy("父、母、祖母 など。"),
    "guardian_phone": gettext_lazy("数字とハイフン（例: 090-1234-5678）。"),
    "guardian_email": gettext_lazy("保護者のメールアドレス。"),
    "guardian_address": gettext_lazy("子どもと別の住所のときだけ。"),
    "school_code": gettext_lazy("就学予定校の学校コード（13桁）。空欄なら取り込んだ後に画面で指定します。"),
    "grade": gettext_lazy("0 または 1（どちらも新1年生）。空欄可。"),
    "class_type": gettext_lazy("普通 / 特別支援（空欄は普通）。"),
    "out_of_district": gettext_lazy("有 / 無（空欄は無）。"),
    "entry_date": gettext_lazy("入学予定日。空欄可。"),
    "note": gettext_lazy("備考（改行可）。"),
}

_LAYOUT_CHOICES = [
    ("auto", gettext_lazy("自動判別（見出しから判断）")),
    ("komu", gettext_lazy("Komu形式")),
    ("applic", gettext_lazy("APPLIC 学齢簿ファイル形式")),
]


class UploadForm(forms.Form):
    board = forms.TypedChoiceField(label=gettext_lazy("教育委員会"), coerce=int)
    fiscal_year = forms.IntegerField(
        label=gettext_lazy("入学年度（西暦）"), min_value=2000, max_value=2200,
        help_text=gettext_lazy("子どもが小学校に入学する年度です（例: 2027 は令和9年4月に入学）。"),
        error_messages={"required": gettext_lazy("入学年度を西暦4桁で入力してください（例: 2027）。"),
                        "invalid": gettext_lazy("入学年度を西暦4桁の数字で入力してください（例: 2027）。"),
                        "min_value": gettext_lazy("入学年度を西暦4桁で入力してください（例: 2027）。"),
                        "max_value": gettext_lazy("入学年度を西暦4桁で入力してください（例: 2027）。")},
    )
    layout = forms.ChoiceField(label=gettext_lazy("ファイルの形式"), choices=_LAYOUT_CHOICES, initial="auto")
    file = forms.FileField(
        label=gettext_lazy("学齢簿のファイル"),
        help_text=gettext_lazy("CSV（UTF-8・BOM付きUTF-8・Shift_JIS/CP932）または Excel（.xlsx）。"),
        error_messages={"required": gettext_lazy("取り込むファイルを選んでください。"),
                        "empty": gettext_lazy("ファイルが空です。学齢簿のCSVまたはXLSXファイルを選んでください。")},
    )

    def __init__(self, *args: Any, boards: list[Board], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["board"]
        assert isinstance(field, forms.TypedChoiceField)
        field.choices = [(b.pk, b.name) for b in boards]
        if len(boards) == 1:
            field.widget = forms.HiddenInput()
        self.fields["file"].widget.attrs["accept"] = ".csv,.xlsx,text/csv"

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > services.MAX_FILE_BYTES:
            raise forms.ValidationError(
                _("ファイルが大きすぎます（%(mb).1fMB）。%(limit)dMB以下に分けてください。")
                % {"mb": upload.size / 1024 / 1024, "limit": services.MAX_FILE_BYTES // 1024 // 1024}
            )
        return upload


def _actor(request: HttpRequest) -> Actor:
    return get_actor(request.user)


def _board_from_query(request: HttpRequest, actor: Actor, boards: list[Board]) -> Board:
    raw = request.GET.get("board", "")
    if raw:
        try:
            return selectors.gakureibo_board_get(actor=actor, board_id=raw)
        except NotFoundOrNoAccess:
            raise Http404 from None
    if not boards:
        raise Http404
    return boards[0]


def _crumbs(*items: tuple[str, str]) -> list[dict[str, str]]:
    return [{"label": label, "url": url} for label, url in items]


def _list_url(board_id: int) -> str:
    return f"{reverse('rosters:import_list')}?{urlencode({'board': board_id})}"


def _enqueue_validation(imp: GakureiboImport) -> None:
    tasks.validate_gakureibo_import.enqueue(import_id=str(imp.pk))


@login_required
@require_capability(roles.GAKUREIBO_MANAGE)
def import_list(request: HttpRequest) -> HttpResponse:
    actor = _actor(request)
    boards = selectors.gakureibo_boards_for(actor=actor)
    board = _board_from_query(request, actor, boards)
    items = services.gakureibo_imports_for_board(actor=actor, board=board)
    return render(request, "rosters/import_list.html", {
        "board": board, "boards": boards, "imports": items,
        "upload_url": f"{reverse('rosters:import_upload')}?{urlencode({'board': board.pk})}",
        "breadcrumbs": _crumbs((_("学齢簿"), f"{reverse('rosters:board_entries')}?board={board.pk}"),
                               (_("取込の履歴"), "")),
    })


@login_required
@require_capability(roles.GAKUREIBO_MANAGE)
def import_upload(request: HttpRequest) -> HttpResponse:
    actor = _actor(request)
    boards = selectors.gakureibo_boards_for(actor=actor)
    board = _board_from_query(request, actor, boards)
    raw_year = request.GET.get("year", "")
    year = int(raw_year) if raw_year.isascii() and raw_year.isdigit() and 2000 <= int(raw_year) <= 2200 \
        else selectors.gakureibo_default_year()
    form = UploadForm(request.POST or None, request.FILES or None, boards=boards,
                      initial={"board": board.pk, "fiscal_year": year, "layout": "auto"})
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            chosen = selectors.gakureibo_board_get(actor=actor, board_id=form.cleaned_data["board"])
            imp = services.gakureibo_import_create(
                actor=actor, board=chosen, fiscal_year=form.cleaned_data["fiscal_year"], filename=upload.name,
                data=upload.read(), layout=form.cleaned_data["layout"],
            )
        except NotFoundOrNoAccess:
            raise Http404 from None
        except ValidationFailed as exc:
            for field, errors in exc.errors.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
            if not exc.errors:
                form.add_error(None, str(exc))
        else:
            _enqueue_validation(imp)
            messages.success(request, _("ファイルを受け付けました。内容を確認しています（まだ取り込んではいません）。"))
            return redirect("rosters:import_detail", import_id=imp.pk)
    columns = [
        {"header": c.header, "required": c.required, "help": _COLUMN_HELP.get(c.key, "")}
        for c in KOMU_SCHEMA.columns
    ]
    return render(request, "rosters/import_upload.html", {
        "form": form, "board": board, "boards": boards, "columns": columns,
        "max_mb": services.MAX_FILE_BYTES // 1024 // 1024,
        "breadcrumbs": _crumbs((_("学齢簿"), f"{reverse('rosters:board_entries')}?board={board.pk}"),
                               (_("取込の履歴"), _list_url(board.pk)), (_("ファイルを取り込む"), "")),
    }, status=400 if request.method == "POST" else 200)


@login_required
@require_capability(roles.GAKUREIBO_MANAGE)
def import_template(request: HttpRequest) -> HttpResponse:
    """The Komu layout as an empty CSV (UTF-8 with BOM, so Excel opens it correctly): headings only."""
    body = "\ufeff" + ",".join(c.header for c in KOMU_SCHEMA.columns) + "\r\n"
    response = HttpResponse(body.encode("utf-8"), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f"attachment; filename=\"gakureibo-template.csv\"; filename*=UTF-8''{quote('学齢簿_ひな形.csv')}"
    )
    return response


# Past this, a queued import probably has no worker to run it: say so instead of polling silently.
_STALLED_AFTER = dt.timedelta(seconds=60)


def _progress_context(imp: GakureiboImport) -> dict[str, Any]:
    progress = services.gakureibo_import_progress(imp=imp)
    stalled = progress.stalled or (
        progress.status == GakureiboImport.Status.QUEUED
        and timezone.now() - imp.created_at > _STALLED_AFTER
    )
    return {"imp": imp, "progress": progress, "stalled": stalled,
            "status_label": GakureiboImport.Status(progress.status).label}


_SHOWN_WARNINGS = 300
_ENCODINGS = {"utf-8-sig": "UTF-8（BOM付き）", "utf-8": "UTF-8", "cp932": "Shift_JIS（CP932）"}
# What kind of problem an issue code is, in the words of the person fixing the file.
_ISSUE_KINDS: dict[str, Any] = {
    "private_use": gettext_lazy("外字"),
    "kana_missing": gettext_lazy("ふりがな"),
    "kana_mismatch": gettext_lazy("ふりがな"),
    "not_kana": gettext_lazy("ふりがな"),
    "person_id_short": gettext_lazy("Excelによる破損の可能性"),
    "cell_number_in_text": gettext_lazy("Excelによる破損の可能性"),
    "cell_date_in_text": gettext_lazy("Excelによる破損の可能性"),
    "cell_exponent": gettext_lazy("Excelによる破損の可能性"),
    "person_id_length": gettext_lazy("Excelによる破損の可能性"),
    "school_unknown": gettext_lazy("学校コード"),
    "duplicate_in_database": gettext_lazy("重複の可能性"),
    "duplicate_value": gettext_lazy("重複"),
    "birth_date_grade": gettext_lazy("生年月日"),
    "entry_date_year": gettext_lazy("入学予定日"),
    "control_char": gettext_lazy("使えない文字"),
    "encoding": gettext_lazy("文字コード"),
}


# Families of codes, by prefix, for the codes not named above.
_ISSUE_PREFIXES: list[tuple[str, Any]] = [
    ("date_", gettext_lazy("日付")),
    ("wareki_", gettext_lazy("日付")),
    ("phone_", gettext_lazy("電話番号")),
    ("postal_", gettext_lazy("郵便番号")),
    ("school_code", gettext_lazy("学校コード")),
    ("email_", gettext_lazy("メールアドレス")),
    ("person_id", gettext_lazy("個人番号")),
    ("header_", gettext_lazy("見出し")),
    ("xlsx_", gettext_lazy("ファイル")),
    ("file_", gettext_lazy("ファイル")),
    ("cell_", gettext_lazy("Excelによる破損の可能性")),
]
_ISSUE_OTHER: dict[str, Any] = {
    "required": gettext_lazy("必須"),
    "too_long": gettext_lazy("長すぎる"),
    "choice": gettext_lazy("選べない値"),
    "grade": gettext_lazy("学年"),
    "ragged_row": gettext_lazy("列の数"),
    "csv_syntax": gettext_lazy("ファイル"),
    "unsupported_format": gettext_lazy("ファイル"),
    "too_many_errors": gettext_lazy("ファイル"),
}


def _issue_kind(code: str) -> Any:
    if code in _ISSUE_KINDS:
        return _ISSUE_KINDS[code]
    if code in _ISSUE_OTHER:
        return _ISSUE_OTHER[code]
    return next((label for prefix, label in _ISSUE_PREFIXES if code.startswith(prefix)), _("内容"))


def _issue_row(issue: dict[str, Any]) -> dict[str, Any]:
    return {**issue, "kind_label": _issue_kind(str(issue.get("code", "")))}


def _change_row(change: dict[str, Any]) -> dict[str, Any]:
    diff = change.get("diff") or {}
    labels = {**RECORD_LABELS, "school_code": _("就学予定校コード"), "out_of_district": _("区域外就学"),
              "special_needs": _("学級種別")}
    fields = [(labels.get(key, key), values[0], values[1]) for key, values in diff.items()]
    kind = _("変更") if change.get("kind") == "changed" else _("新規")
    return {**change, "fields": fields, "kind_label": kind}


@login_required
@require_capability(roles.GAKUREIBO_MANAGE)
def import_detail(request: HttpRequest, import_id: Any) -> HttpResponse:
    actor = _actor(request)
    try:
        imp, report = services.gakureibo_import_report(actor=actor, import_id=import_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    context = _progress_context(imp)
    warnings = [_issue_row(i) for i in report.get("warnings", [])[:_SHOWN_WARNINGS]]
    return render(request, "rosters/import_detail.html", {
        **context, "report": report, "errors": [_issue_row(i) for i in report.get("errors", [])],
        "warnings": warnings, "warning_total": report.get("warning_total", len(warnings)),
        "encoding_label": _ENCODINGS.get(report.get("encoding") or "", report.get("encoding") or ""),
        "counts": report.get("counts", {}), "applied": report.get("applied"),
        "changes": [_change_row(c) for c in report.get("changes", [])],
        "can_apply": imp.status == GakureiboImport.Status.VALIDATED and not imp.error_count
        and context["progress"].status == GakureiboImport.Status.VALIDATED,
        "can_discard": imp.status in (GakureiboImport.Status.QUEUED, GakureiboImport.Status.VALIDATED)
        and context["progress"].status != GakureiboImport.Status.APPLYING,
        "breadcrumbs": _crumbs((_("学齢簿"), f"{reverse('rosters:board_entries')}?board={imp.board_id}"),
                               (_("取込の履歴"), _list_url(imp.board_id)), (imp.filename, "")),
    })


@login_required
@require_capability(roles.GAKUREIBO_MANAGE)
def import_progress(request: HttpRequest, import_id: Any) -> HttpResponse:
    """The progress bar alone, polled every second while the import runs. When it has finished, HTMX reloads the
    page so the result appears (HX-Refresh)."""
    try:
        imp = services.gakureibo_import_get_for(actor=_actor(request), import_id=import_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    context = _progress_context(imp)
    response = render(request, "rosters/partials/import_progress.html", context)
    if context["progress"].finished and is_htmx(request) and request.GET.get("running") == "1":
        response["HX-Refresh"] = "true"
    return response


@login_required
@require_capability(roles.GAKUREIBO_MANAGE)
@require_POST
def import_apply(request: HttpRequest, import_id: Any) -> HttpResponse:
    actor = _actor(request)
    try:
        imp = services.gakureibo_import_apply_request(actor=actor, import_id=import_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    except (ValidationFailed, PermissionDeniedError) as exc:
        messages.error(request, str(exc))
        return redirect("rosters:import_detail", import_id=import_id)
    tasks.apply_gakureibo_import.enqueue(import_id=str(imp.pk), user_id=str(actor.user.pk))
    messages.success(request, _("取り込みを始めました。終わるまでこの画面で進み具合を確認できます。"))
    return redirect("rosters:import_detail", import_id=imp.pk)


@login_required
@require_capability(roles.GAKUREIBO_MANAGE)
@require_POST
def import_discard(request: HttpRequest, import_id: Any) -> HttpResponse:
    try:
        imp = services.gakureibo_import_discard(actor=_actor(request), import_id=import_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    except ValidationFailed as exc:
        messages.error(request, str(exc))
        return redirect("rosters:import_detail", import_id=import_id)
    messages.success(request, _("取込を取り消しました。アップロードしたファイルは削除しました。"))
    return redirect(_list_url(imp.board_id))


@login_required
@require_capability(roles.GAKUREIBO_MANAGE)
@require_POST
def import_recover(request: HttpRequest, import_id: Any) -> HttpResponse:
    try:
        imp = services.gakureibo_import_recover(actor=_actor(request), import_id=import_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    except ValidationFailed as exc:
        messages.error(request, str(exc))
        return redirect("rosters:import_detail", import_id=import_id)
    if imp.status == GakureiboImport.Status.VALIDATED:
        messages.success(request, _("中断した取り込みを元に戻しました。何も反映されていません。もう一度「取り込む」を押してください。"))
    else:
        messages.warning(request, _("中断した検証を終了しました。ファイルをもう一度アップロードしてください。"))
    return redirect("rosters:import_detail", import_id=imp.pk)


urlpatterns: list[URLPattern] = [
    path("gakureibo/imports/", import_list, name="import_list"),
    path("gakureibo/imports/new/", import_upload, name="import_upload"),
    path("gakureibo/imports/template.csv", import_template, name="import_template"),
    path("gakureibo/imports/<uuid:import_id>/", import_detail, name="import_detail"),
    path("gakureibo/imports/<uuid:import_id>/progress/", import_progress, name="import_progress"),
    path("gakureibo/imports/<uuid:import_id>/apply/", import_apply, name="import_apply"),
    path("gakureibo/imports/<uuid:import_id>/discard/", import_discard, name="import_discard"),
    path("gakureibo/imports/<uuid:import_id>/recover/", import_recover, name="import_recover"),
]
