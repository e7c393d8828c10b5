"""Pupil screens: a class list (名簿) with search, one pupil's record, its edit form, and a guardian's own
children.

Thin: every read goes through komu.students.selectors (which scope and audit), every write through
komu.students.services; anything out of scope answers 404.
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
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.core.text import TextError, normalize_kana
from komu.directory.models import HomeroomClass, Role, School
from komu.students import selectors, services
from komu.students.forms import StudentForm
from komu.web.decorators import require_capability

SEARCH_LIMIT = 200


class _SearchForm(forms.Form):
    """The GET parameters of the class list. Parsing only; scope is the selector's job."""

    school = forms.IntegerField(required=False, min_value=1)
    klass = forms.IntegerField(required=False, min_value=1)
    kana = forms.CharField(
        label=gettext_lazy("ふりがな"), required=False, max_length=100,
        help_text=gettext_lazy(
            "姓と名の読み（例：タカハシ ヨシノ）か、姓だけの読み（例：タカハシ）を入力すると、"
            "読みが完全に一致する児童生徒を探します。読みの一部だけでは見つかりません。ひらがなでも探せます。"
        ),
    )
    no = forms.IntegerField(
        label=gettext_lazy("出席番号"), required=False, min_value=1, max_value=99,
        error_messages={
            "invalid": gettext_lazy("出席番号は数字で入力してください。"),
            "min_value": gettext_lazy("出席番号は1〜99の数字で入力してください。"),
            "max_value": gettext_lazy("出席番号は1〜99の数字で入力してください。"),
        },
    )

    def __init__(self, data: Any) -> None:
        # "class" is a Python keyword: the URL keeps the short name other screens link with (?class=<id>).
        values = data.copy()
        if "class" in values:
            values["klass"] = values["class"]
        super().__init__(values)

    def clean_kana(self) -> str:
        raw = self.cleaned_data["kana"]
        try:
            return normalize_kana(raw, field=_("ふりがな")) if raw else ""
        except TextError as exc:
            raise forms.ValidationError(str(exc)) from exc


def _only_guardian(actor: Actor) -> bool:
    return all(g.role == Role.GUARDIAN for g in actor.grants_with(roles.STUDENTS_VIEW))


def _schools_of(classes: list[HomeroomClass]) -> list[School]:
    seen: dict[int, School] = {}
    for klass in classes:
        seen.setdefault(klass.school_year.school_id, klass.school_year.school)
    return list(seen.values())


@login_required
@require_capability(roles.STUDENTS_VIEW)
def student_list(request: HttpRequest) -> HttpResponse:
    """名簿: one class's pupils by 出席番号, or a kana / 出席番号 search. A homeroom teacher lands on their
    class."""
    actor = get_actor(request.user)
    if _only_guardian(actor):
        return redirect("students:children")
    search = _SearchForm(request.GET)
    valid = search.is_valid()
    if not valid and search.has_error("klass"):
        raise Http404
    data = search.cleaned_data if valid else {k: search.cleaned_data.get(k) for k in ("school", "klass")}
    choices = selectors.class_choices_for(actor=actor)
    schools = _schools_of(choices)
    class_id: int | None = data.get("klass")
    kana: str = data.get("kana") or ""
    shusseki_no: int | None = data.get("no")
    if class_id is None and not kana and len(choices) == 1:
        class_id = choices[0].pk
    homeroom_class = None
    if class_id is not None:
        try:
            homeroom_class = selectors.listable_class_get(actor=actor, class_id=class_id)
        except NotFoundOrNoAccess:
            raise Http404 from None
    school_id = homeroom_class.school_year.school_id if homeroom_class else data.get("school")
    if school_id is None and len(schools) == 1:
        school_id = schools[0].pk
    class_options = [c for c in choices if c.school_year.school_id == school_id]
    if shusseki_no is not None and homeroom_class is None:
        search.add_error("no", _("出席番号で探すときは、先に学級を選んでください。"))
        valid = False
    rows = None
    if valid and (homeroom_class is not None or kana):
        rows = selectors.student_list(
            actor=actor, homeroom_class_id=homeroom_class.pk if homeroom_class else None, kana=kana,
            shusseki_no=shusseki_no, limit=SEARCH_LIMIT,
        )
    searching = bool(kana or shusseki_no)
    breadcrumbs = [{"label": _("児童生徒"), "url": reverse("students:list")}]
    if homeroom_class is not None:
        breadcrumbs.append({"label": homeroom_class.display_label, "url": ""})
    return render(request, "students/list.html", {
        "search": search,
        "schools": schools,
        "school_id": school_id,
        "class_options": class_options,
        "homeroom_class": homeroom_class,
        "rows": rows,
        "searching": searching,
        "kana": kana,
        "shusseki_no": shusseki_no,
        "truncated": rows is not None and len(rows) >= SEARCH_LIMIT,
        "search_limit": SEARCH_LIMIT,
        "breadcrumbs": breadcrumbs,
        # Links to the class-level tools (the pages themselves check scope again).
        "can_place": actor.has(roles.CLASS_PLACEMENT),
        "can_roll_over": actor.has(roles.YEAR_ROLLOVER),
        "can_number": actor.has(roles.STUDENTS_EDIT),
    })


@login_required
@require_capability(roles.STUDENTS_VIEW)
def student_detail(request: HttpRequest, student_id: uuid.UUID) -> HttpResponse:
    """One pupil's record. The selector leaves out what the viewer may not see; the page shows the rest."""
    actor = get_actor(request.user)
    try:
        detail = selectors.student_get_for(actor=actor, student_id=student_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    student = detail.student
    if _only_guardian(actor):
        breadcrumbs = [{"label": _("わが子の情報"), "url": reverse("students:children")}]
    else:
        breadcrumbs = [{"label": _("児童生徒"), "url": reverse("students:list")}]
        current = detail.memberships[0] if detail.memberships else None
        if current is not None:
            breadcrumbs.append({
                "label": current.homeroom_class.display_label,
                "url": f"{reverse('students:list')}?class={current.homeroom_class_id}",
            })
    breadcrumbs.append({"label": student.full_name, "url": ""})
    return render(request, "students/detail.html", {
        "detail": detail,
        "student": student,
        "can_view_audit": actor.has(roles.AUDIT_VIEW),
        # 転学の手続き (the transfer screen checks scope and the certifying role again) and 学級編制.
        "can_transfer": student.is_active and not _only_guardian(actor) and actor.has(roles.TRANSFERS_MANAGE),
        "can_place": actor.has(roles.CLASS_PLACEMENT),
        "guardian_view": _only_guardian(actor),
        "breadcrumbs": breadcrumbs,
    })


def _initial(detail: selectors.StudentDetail) -> dict[str, Any]:
    student = detail.student
    initial = {
        name: getattr(student, name) for name in services.PERSONAL_STUDENT_FIELDS if name != "health_note"
    }
    if detail.health_note is not None:
        initial["health_note"] = detail.health_note
    return initial


@login_required
@require_capability(roles.STUDENTS_EDIT)
def student_edit(request: HttpRequest, student_id: uuid.UUID) -> HttpResponse:
    """編集: the basic record through `student_update`; the health note only for those who may read it."""
    actor = get_actor(request.user)
    try:
        access = selectors.student_edit_access(actor=actor, student_id=student_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    if request.method == "POST":
        form = StudentForm(request.POST, with_health_note=access.health_note)
        if form.is_valid():
            data = services.StudentInput(**form.cleaned_data)
            try:
                services.student_update(actor=actor, student_id=access.student_id, data=data,
                                        only=list(form.cleaned_data))
            except NotFoundOrNoAccess:
                raise Http404 from None
            except PermissionDeniedError as exc:
                form.add_error(None, str(exc))
            except ValidationFailed as exc:
                _put_errors(form, exc)
            else:
                messages.success(request, _("児童生徒の記録を保存しました。"))
                return redirect("students:detail", student_id=access.student_id)
        title = _("児童生徒の記録を編集")
    else:
        try:
            detail = selectors.student_get_for(actor=actor, student_id=access.student_id)
        except NotFoundOrNoAccess:
            raise Http404 from None
        form = StudentForm(initial=_initial(detail), with_health_note=access.health_note)
        title = detail.student.full_name
    detail_url = reverse("students:detail", kwargs={"student_id": access.student_id})
    return render(request, "students/edit.html", {
        "form": form,
        "title": title,
        "detail_url": detail_url,
        "breadcrumbs": [
            {"label": _("児童生徒"), "url": reverse("students:list")},
            {"label": title, "url": detail_url},
            {"label": _("編集"), "url": ""},
        ],
    })


def _put_errors(form: StudentForm, exc: ValidationFailed) -> None:
    if not exc.errors:
        form.add_error(None, str(exc))
    for name, errors in exc.errors.items():
        for error in errors:
            form.add_error(name if name in form.fields else None, error)


@login_required
@require_capability(roles.STUDENTS_VIEW)
def children(request: HttpRequest) -> HttpResponse:
    """わが子の情報: a guardian's own children, each linking to their record."""
    actor = get_actor(request.user)
    if not actor.is_guardian:
        raise Http404
    return render(request, "students/children.html", {"children": selectors.children_of(actor=actor)})
