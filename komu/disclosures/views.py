"""印刷と開示記録 screens: printing a class's 学級名簿 or 緊急連絡先一覧 (reason asked, watermarked PDF), the
principal's register of outstanding printed documents (returned / shredded), and a lost document's report (which
persons, which fields). Reads through selectors, writes through services; out of scope is 404."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from komu.access import roles
from komu.access.scope import get_actor
from komu.accounts import mfa
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.disclosures import selectors, services
from komu.disclosures.models import Disclosure
from komu.students import exports
from komu.web.decorators import require_capability


class PrintForm(forms.Form):
    kind = forms.ChoiceField(
        label=gettext_lazy("印刷する文書"), widget=forms.RadioSelect, initial="contacts",
        choices=[("contacts", gettext_lazy("緊急連絡先一覧（連絡網）: 保護者と緊急連絡先の電話番号")),
                 ("class_list", gettext_lazy("学級名簿: 出席番号・氏名・ふりがな・性別"))],
        error_messages={"required": gettext_lazy("印刷する文書を選んでください。")},
    )
    reason = forms.CharField(
        label=gettext_lazy("印刷の目的"), max_length=200,
        help_text=gettext_lazy("例: 避難訓練の名簿確認のため。目的・印刷者・日時・通し番号が記録され、すべてのページに印字されます。"),
        error_messages={"required": gettext_lazy("印刷の目的を入力してください（例: 避難訓練の名簿確認のため）。"),
                        "max_length": gettext_lazy("印刷の目的は200文字以内で入力してください。")},
    )


def _reauth_url(back: str) -> str:
    return f"{reverse('accounts:reauth')}?{urlencode({'next': back})}"


@login_required
@require_capability(roles.STUDENTS_EXPORT)
def print_index(request: HttpRequest) -> HttpResponse:
    classes = exports.export_class_choices_for(actor=get_actor(request.user))
    return render(request, "disclosures/print_index.html", {
        "classes": classes, "breadcrumbs": [{"label": _("名簿の印刷"), "url": ""}],
    })


@login_required
@require_capability(roles.STUDENTS_EXPORT)
def print_class(request: HttpRequest, class_id: str) -> HttpResponse:
    """GET: the form; POST: the PDF (or back to the form with errors, or to the re-authentication)."""
    actor = get_actor(request.user)
    try:
        klass = exports.export_class_get(actor=actor, class_id=class_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    form = PrintForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            outcome = services.class_document_print(
                actor=actor, class_id=klass.pk, kind=data["kind"], reason=data["reason"],
                reauthenticated=mfa.reauth_is_fresh(request),
            )
        except services.StepUpRequired as exc:
            messages.warning(request, str(exc) + _("確認後、もう一度「印刷する」を押してください。"))
            return redirect(_reauth_url(request.get_full_path()))
        except PermissionDeniedError as exc:
            form.add_error(None, str(exc))
        except ValidationFailed as exc:
            for name, errors in exc.errors.items():
                for error in errors:
                    form.add_error(name if name in form.fields else None, error)
            if not exc.errors:
                form.add_error(None, str(exc))
        else:
            response = HttpResponse(outcome.content, content_type="application/pdf")
            response["Content-Disposition"] = (
                f"inline; filename=\"print.pdf\"; filename*=UTF-8''{quote(outcome.filename)}"
            )
            response["X-Komu-Serial"] = outcome.disclosure.serial
            response["Cache-Control"] = "no-store"
            return response
    return render(request, "disclosures/print_form.html", {
        "klass": klass, "form": form, "bulk_persons": services.BULK_PERSONS,
        "reauth_fresh": mfa.reauth_is_fresh(request),
        "breadcrumbs": [{"label": _("名簿の印刷"), "url": reverse("disclosures:print_index")},
                        {"label": klass.display_label, "url": ""}],
    })


@login_required
@require_capability(roles.DISCLOSURES_MANAGE)
def register(request: HttpRequest) -> HttpResponse:
    """The register of printed documents not yet returned or shredded, and the latest closed ones."""
    actor = get_actor(request.user)
    serial = request.GET.get("serial", "").strip()
    if serial:
        try:
            found = selectors.disclosure_get_for(actor=actor, serial=serial)
        except NotFoundOrNoAccess:
            messages.error(request, _("通し番号 %(serial)s の文書は見つかりません。番号を確かめてください。")
                           % {"serial": serial[:20]})
        else:
            return redirect("disclosures:detail", serial=found.serial)
    return render(request, "disclosures/register.html", {
        "outstanding": selectors.outstanding_for(actor=actor),
        "recent": selectors.recent_for(actor=actor),
        "breadcrumbs": [{"label": _("印刷物の管理"), "url": ""}],
    })


def _privacy_incident_url(serial: str, incident_id: str) -> str:
    """The drafted incident (komu.privacy) when report_lost just made one, else its drafting page for this
    serial. The privacy views check their own scope."""
    try:
        if incident_id and incident_id.replace("-", "").isalnum() and len(incident_id) <= 64:
            return reverse("privacy:incident_detail", args=[incident_id])
        return f"{reverse('privacy:incident_new')}?{urlencode({'serial': serial})}"
    except NoReverseMatch:
        return ""


@login_required
@require_capability(roles.DISCLOSURES_MANAGE)
def detail(request: HttpRequest, serial: str) -> HttpResponse:
    """One document. A lost one shows exactly which persons and which fields it held (names decrypted,
    audited)."""
    actor = get_actor(request.user)
    try:
        disclosure = selectors.disclosure_get_for(actor=actor, serial=serial)
        contents = (selectors.document_contents(actor=actor, serial=serial)
                    if disclosure.status == Disclosure.Status.LOST else None)
    except NotFoundOrNoAccess:
        raise Http404 from None
    return render(request, "disclosures/detail.html", {
        "d": disclosure, "contents": contents,
        "field_labels": [selectors.field_label(f) for f in disclosure.fields],
        "incident_url": _privacy_incident_url(disclosure.serial, request.GET.get("incident", "")) if contents else "",
        "incident_drafted": bool(request.GET.get("incident")),
        "breadcrumbs": [{"label": _("印刷物の管理"), "url": reverse("disclosures:register")},
                        {"label": disclosure.serial, "url": ""}],
    })


@login_required
@require_capability(roles.DISCLOSURES_MANAGE)
@require_POST
def close(request: HttpRequest, serial: str) -> HttpResponse:
    actor = get_actor(request.user)
    try:
        d = services.disclosure_close(actor=actor, serial=serial, status=request.POST.get("status", ""))
    except NotFoundOrNoAccess:
        raise Http404 from None
    except (ValidationFailed, PermissionDeniedError) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("通し番号 %(serial)s を「%(status)s」と記録しました。")
                         % {"serial": d.serial, "status": d.get_status_display()})
    return redirect("disclosures:register")


@login_required
@require_capability(roles.DISCLOSURES_MANAGE)
@require_POST
def report_lost(request: HttpRequest, serial: str) -> HttpResponse:
    """「紛失を報告」: the document is recorded lost; the next page lists its persons and fields. When the
    breach-response app offers it, an incident is drafted from the document at once."""
    actor = get_actor(request.user)
    try:
        d = services.disclosure_report_lost(actor=actor, serial=serial)
    except NotFoundOrNoAccess:
        raise Http404 from None
    except PermissionDeniedError as exc:
        messages.error(request, str(exc))
        return redirect("disclosures:register")
    try:
        incident = services.privacy_incident_for_lost_document(actor=actor, serial=d.serial)
    except (ValidationFailed, PermissionDeniedError) as exc:
        # The loss is recorded either way; the incident can still be drafted from its page by serial.
        messages.error(request, str(exc))
        incident = ""
    messages.warning(request, _("通し番号 %(serial)s を紛失として記録しました。記載されていた児童生徒と項目を確認してください。")
                     % {"serial": d.serial})
    target = reverse("disclosures:detail", args=[d.serial])
    if incident:
        messages.info(request, _("事故報告（個人情報保護委員会への報告）の下書きを作成しました。"))
        target += "?" + urlencode({"incident": incident})
    return redirect(target)




def ask_reason(request: HttpRequest, *, document: str, back_url: str, error: str = "") -> HttpResponse:
    """The page every print of personal data passes through: the reason, then the same URL again with
    ?reason=… (a GET, so the PDF opens like before; the query's other parameters are kept). Used by the
    attendance PDFs and the transfer documents; status 400 when a reason was given but refused."""
    hidden = [(k, v) for k, v in request.GET.items() if k != "reason"]
    return render(request, "disclosures/reason_form.html", {
        "document": document, "back_url": back_url, "hidden": hidden, "error": error,
        "reason": request.GET.get("reason", "")[:200],
        "breadcrumbs": [{"label": document, "url": back_url}, {"label": _("印刷の目的"), "url": ""}],
    }, status=400 if error else 200)
