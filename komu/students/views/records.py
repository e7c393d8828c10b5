"""The sections of a pupil's record (学籍) that have their own edit screens: emergency contacts in priority order,
enrolment history (学籍の異動), special-needs placement, guardians (added, edited, and unlinked from the pupil).

Thin: access through komu.students.selectors (NotFoundOrNoAccess → 404), writes through komu.students.services,
whose ValidationFailed is put back on the form next to the field it concerns.
"""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from komu.access import roles
from komu.access.scope import Actor, get_actor
from komu.core import codes
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.students import selectors, services
from komu.students.forms import EmergencyContactFormSet, EnrollmentEventForm, GuardianForm, SpecialNeedsForm
from komu.web.decorators import require_capability


def _access(actor: Actor, student_id: uuid.UUID) -> selectors.EditAccess:
    try:
        return selectors.student_edit_access(actor=actor, student_id=student_id)
    except NotFoundOrNoAccess:
        raise Http404 from None


def _detail(actor: Actor, student_id: uuid.UUID) -> selectors.StudentDetail:
    try:
        return selectors.student_get_for(actor=actor, student_id=student_id)
    except NotFoundOrNoAccess:
        raise Http404 from None


def _put_errors(form: forms.Form, exc: ValidationFailed | PermissionDeniedError) -> None:
    if isinstance(exc, PermissionDeniedError) or not exc.errors:
        form.add_error(None, str(exc))
        return
    for name, errors in exc.errors.items():
        for error in errors:
            form.add_error(name if name in form.fields else None, error)


def _page(request: HttpRequest, template: str, student_id: uuid.UUID, title: str, **context: Any) -> HttpResponse:
    detail_url = reverse("students:detail", kwargs={"student_id": student_id})
    return render(request, template, {
        "title": title, "detail_url": detail_url,
        "breadcrumbs": [{"label": _("児童生徒"), "url": reverse("students:list")},
                        {"label": _("記録"), "url": detail_url}, {"label": title, "url": ""}],
        **context,
    })


@login_required
@require_capability(roles.STUDENTS_EDIT)
def emergency_contacts_edit(request: HttpRequest, student_id: uuid.UUID) -> HttpResponse:
    """緊急連絡先: the whole list at once, ordered by the 順位 typed on each row (blank rows ignored)."""
    actor = get_actor(request.user)
    access = _access(actor, student_id)
    if request.method == "POST":
        formset = EmergencyContactFormSet(request.POST, prefix="contacts")
        if formset.is_valid():
            kept = [
                (form.cleaned_data.get("order") or 100 + index, index, form)
                for index, form in enumerate(formset.forms)
                if not form.cleaned_data.get("delete") and not form.is_blank()
            ]
            kept.sort(key=lambda item: (item[0], item[1]))
            contacts = [
                services.EmergencyContactInput(
                    name=form.cleaned_data["name"], relationship=form.cleaned_data["relationship"],
                    phone=form.cleaned_data["phone"], note=form.cleaned_data["note"],
                )
                for _order, _index, form in kept
            ]
            try:
                services.emergency_contact_set(actor=actor, student_id=access.student_id, contacts=contacts)
            except NotFoundOrNoAccess:
                raise Http404 from None
            except ValidationFailed as exc:
                for key, errors in exc.errors.items():
                    position = int(key.rpartition(".")[2]) if key.startswith("contacts.") else 0
                    target = kept[position - 1][2] if 1 <= position <= len(kept) else None
                    for error in errors:
                        if target is not None:
                            target.add_error(None, error)
                        else:
                            formset.forms[0].add_error(None, error)
                if not exc.errors:
                    formset.forms[0].add_error(None, str(exc))
            else:
                messages.success(request, _("緊急連絡先を保存しました（%(n)d 件）。") % {"n": len(contacts)})
                return redirect("students:detail", student_id=access.student_id)
    else:
        detail = _detail(actor, access.student_id)
        if detail.emergency_contacts is None:
            raise Http404
        formset = EmergencyContactFormSet(prefix="contacts", initial=[
            {"order": c.priority, "name": c.name, "relationship": c.relationship, "phone": c.phone, "note": c.note}
            for c in detail.emergency_contacts
        ])
    return _page(request, "students/emergency_contacts.html", access.student_id, _("緊急連絡先"), formset=formset)


@login_required
@require_capability(roles.STUDENTS_EDIT)
def enrollment_event_new(request: HttpRequest, student_id: uuid.UUID) -> HttpResponse:
    """学籍の異動を記録: 入学・編入学・転入学・転学・退学・卒業. 転学・退学・卒業 end the enrolment."""
    actor = get_actor(request.user)
    access = _access(actor, student_id)
    grade_choices = [(g, codes.grade_display(g)) for g in codes.grades_for_school_type(access.school_type)]
    if request.method == "POST":
        form = EnrollmentEventForm(request.POST, grade_choices=grade_choices)
        if form.is_valid():
            try:
                services.enrollment_event_record(actor=actor, student_id=access.student_id, **form.cleaned_data)
            except NotFoundOrNoAccess:
                raise Http404 from None
            except (ValidationFailed, PermissionDeniedError) as exc:
                _put_errors(form, exc)
            else:
                messages.success(request, _("学籍の異動を記録しました。"))
                return redirect("students:detail", student_id=access.student_id)
    else:
        form = EnrollmentEventForm(grade_choices=grade_choices)
    return _page(request, "students/enrollment_event.html", access.student_id, _("学籍の異動を記録"), form=form)


@login_required
@require_capability(roles.STUDENTS_EDIT)
def special_needs_edit(request: HttpRequest, student_id: uuid.UUID) -> HttpResponse:
    """特別支援教育の形態 and its category: only for those who may read it (as the health note)."""
    actor = get_actor(request.user)
    access = _access(actor, student_id)
    if not access.health_note:
        raise Http404
    if request.method == "POST":
        form = SpecialNeedsForm(request.POST)
        if form.is_valid():
            try:
                services.student_special_needs_set(
                    actor=actor, student_id=access.student_id,
                    placement=form.cleaned_data["special_needs_placement"],
                    category=form.cleaned_data["special_needs_category"],
                )
            except NotFoundOrNoAccess:
                raise Http404 from None
            except (ValidationFailed, PermissionDeniedError) as exc:
                _put_errors(form, exc)
            else:
                messages.success(request, _("特別支援教育の情報を保存しました。"))
                return redirect("students:detail", student_id=access.student_id)
    else:
        detail = _detail(actor, access.student_id)
        form = SpecialNeedsForm(initial={"special_needs_placement": detail.student.special_needs_placement,
                                         "special_needs_category": detail.special_needs_category or ""})
    return _page(request, "students/special_needs.html", access.student_id, _("特別支援教育"), form=form)


def _guardian_input(data: dict[str, Any]) -> services.GuardianInput:
    return services.GuardianInput(
        family_name=data["family_name"], given_name=data["given_name"], family_name_kana=data["family_name_kana"],
        given_name_kana=data["given_name_kana"], phone=data["phone"], email=data["email"], address=data["address"],
    )


@login_required
@require_capability(roles.STUDENTS_EDIT)
def guardian_edit(request: HttpRequest, student_id: uuid.UUID, guardian_id: uuid.UUID | None = None) -> HttpResponse:
    """保護者を追加 / 編集: name, 続柄, 連絡順位, phone, e-mail, address."""
    actor = get_actor(request.user)
    access = _access(actor, student_id)
    if not actor.has(roles.GUARDIANS_VIEW_CONTACT):
        raise Http404
    if request.method == "POST":
        form = GuardianForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                if guardian_id is None:
                    services.guardian_add(actor=actor, student_id=access.student_id, data=_guardian_input(data),
                                          relationship=data["relationship"], priority=data["priority"])
                else:
                    services.guardian_update(actor=actor, student_id=access.student_id, guardian_id=guardian_id,
                                             data=_guardian_input(data), relationship=data["relationship"],
                                             priority=data["priority"])
            except NotFoundOrNoAccess:
                raise Http404 from None
            except (ValidationFailed, PermissionDeniedError) as exc:
                _put_errors(form, exc)
            else:
                messages.success(request, _("保護者の情報を保存しました。"))
                return redirect("students:detail", student_id=access.student_id)
    elif guardian_id is None:
        form = GuardianForm()
    else:
        try:
            current = selectors.guardian_get_for_edit(actor=actor, student_id=access.student_id,
                                                      guardian_id=guardian_id)
        except NotFoundOrNoAccess:
            raise Http404 from None
        form = GuardianForm(initial={name: getattr(current, name) for name in GuardianForm.base_fields})
    title = _("保護者を追加") if guardian_id is None else _("保護者の情報を編集")
    return _page(request, "students/guardian_form.html", access.student_id, title, form=form)


class GuardianUnlinkForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("解除の理由"), max_length=500, strip=False,
        help_text=gettext_lazy("例: 親権者の変更、誤って関連付けたため。理由は記録に残ります。"),
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": gettext_lazy("解除の理由を入力してください（例: 親権者の変更、誤って関連付けたため）。")},
    )


@login_required
@require_capability(roles.STUDENTS_EDIT)
def guardian_unlink(request: HttpRequest, student_id: uuid.UUID, guardian_id: uuid.UUID) -> HttpResponse:
    """この保護者との関連付けを解除: asks for the reason, then removes the link (the guardian's record stays)."""
    actor = get_actor(request.user)
    access = _access(actor, student_id)
    if not actor.has(roles.GUARDIANS_VIEW_CONTACT):
        raise Http404
    try:
        current = selectors.guardian_get_for_unlink(actor=actor, student_id=access.student_id,
                                                    guardian_id=guardian_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    if request.method == "POST" and not current.last_of_enrolled:
        form = GuardianUnlinkForm(request.POST)
        if form.is_valid():
            try:
                result = services.guardian_unlink(actor=actor, student_id=access.student_id,
                                                  guardian_id=guardian_id, reason=form.cleaned_data["reason"])
            except NotFoundOrNoAccess:
                raise Http404 from None
            except (ValidationFailed, PermissionDeniedError) as exc:
                _put_errors(form, exc)
            else:
                messages.success(request, _("%(name)sさんとの関連付けを解除しました。") % {"name": current.name})
                if result.account_deactivated:
                    messages.info(request, _("この保護者には関連付けられた児童生徒がいなくなったため、"
                                             "保護者用アカウントを無効にしました。"))
                return redirect("students:detail", student_id=access.student_id)
    else:
        form = GuardianUnlinkForm()
    return _page(request, "students/guardian_unlink.html", access.student_id, _("保護者との関連付けを解除"),
                 form=form, guardian=current, add_url=reverse("students:guardian_add", args=[access.student_id]))
