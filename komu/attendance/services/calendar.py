"""The school calendar: a day's kind (授業日 / 休業日 / 臨時休業) against the weekday rule, and 学級閉鎖 per class.

Who: whoever manages the school in the directory (capability directory.manage: the principal, vice-principal
and school office, and the board for its schools). The calendar feeds 授業日数 of every register, so a month whose
register has been submitted, approved or locked cannot be changed here: return the register first.
"""

from __future__ import annotations

import datetime
from typing import Any

import jpholiday
from django.core.exceptions import ValidationError
from django.db import transaction

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.attendance import calendar
from komu.attendance.models import CalendarDay, ClassClosure, Disease, MonthlyRegister
from komu.audit.services import Scope, audit_record
from komu.core.errors import ValidationFailed
from komu.core.text import TextError, reject_control_chars
from komu.directory.models import HomeroomClass, School, SchoolYear

MAX_NOTE = 100
# The register has left the teacher's hands: its 授業日数 is part of what was (or is being) sealed.
_FROZEN = (MonthlyRegister.Status.SUBMITTED, MonthlyRegister.Status.APPROVED, MonthlyRegister.Status.AMENDED,
           MonthlyRegister.Status.LOCKED)


def manageable_school(actor: Actor, school_id: int | str) -> School:
    return scope.get_in_scope(scope.schools_for(actor, roles.DIRECTORY_MANAGE), pk=school_id)


def _clean_note(note: str) -> str:
    note = note.strip()
    try:
        reject_control_chars(note, "備考")
    except TextError as exc:
        raise ValidationFailed(str(exc), errors={"note": [str(exc)]}) from exc
    if len(note) > MAX_NOTE:
        message = f"備考が長すぎます（{len(note)}文字）。{MAX_NOTE}文字以内で入力してください。"
        raise ValidationFailed(message, errors={"note": [message]})
    return note


def school_year_on(school: School, day: datetime.date) -> SchoolYear:
    year = SchoolYear.objects.filter(school=school, start_date__lte=day, end_date__gte=day).first()
    if year is None:
        message = f"{day.year}年{day.month}月{day.day}日を含む年度が登録されていません。先に年度を登録してください。"
        raise ValidationFailed(message, errors={"date": [message]})
    return year


def _months(start: datetime.date, end: datetime.date) -> list[tuple[int, int]]:
    months = []
    y, m = start.year, start.month
    while (y, m) <= (end.year, end.month):
        months.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return months


def _refuse_frozen_months(classes: Any, start: datetime.date, end: datetime.date) -> None:
    for y, m in _months(start, end):
        if MonthlyRegister.objects.filter(homeroom_class__in=classes, year=y, month=m, status__in=_FROZEN).exists():
            message = (
                f"{y}年{m}月の出席簿は提出・承認済みのため、その月の授業日や学級閉鎖は変更できません。"
                "変更するときは、先に出席簿を差し戻してください。"
            )
            raise ValidationFailed(message, errors={"date": [message]})


def _default_is_school_day(rules_weekdays: list[int], day: datetime.date) -> bool:
    return day.weekday() in rules_weekdays and not jpholiday.is_holiday(day)


@transaction.atomic
def calendar_day_set(*, actor: Actor, school_id: int | str, date: datetime.date, kind: str,
                     note: str = "") -> CalendarDay | None:
    """Make `date` a 授業日 (e.g. 土曜授業), a 休業日 (長期休業, 振替休業, 開校記念日) or a 臨時休業 of the school, or
    give it back to the weekday rule (kind ""). A kind the weekday rule already gives (a weekday made a 授業日)
    is stored only when it carries a note. Returns the stored row, or None when the rule decides."""
    school = manageable_school(actor, school_id)
    if kind and kind not in CalendarDay.Kind.values:
        raise ValidationFailed("日の種類は「授業日」「休業日」「臨時休業」から選んでください。",
                               errors={"kind": ["日の種類は「授業日」「休業日」「臨時休業」から選んでください。"]})
    note = _clean_note(note)
    school_year = school_year_on(school, date)
    _refuse_frozen_months(HomeroomClass.objects.filter(school_year=school_year), date, date)
    existing = CalendarDay.objects.select_for_update().filter(school_year=school_year, date=date).first()
    old = existing.kind if existing else ""
    rules = calendar.rules_for(school)
    by_rule = _default_is_school_day(list(rules.weekdays), date)
    redundant = (kind == CalendarDay.Kind.SCHOOL_DAY and by_rule) or (
        kind in (CalendarDay.Kind.HOLIDAY, CalendarDay.Kind.SCHOOL_CLOSURE) and not by_rule
    )
    row: CalendarDay | None
    if not kind or (redundant and not note):
        if existing is not None:
            existing.delete()
        row = None
    else:
        row = existing or CalendarDay(school_year=school_year, date=date)
        row.kind = kind
        row.note = note
        try:
            row.full_clean(exclude=["school_year"], validate_constraints=False)
        except ValidationError as exc:
            raise ValidationFailed("入力内容を確認してください。", errors=exc.message_dict) from exc
        row.save()
    audit_record(
        actor=actor.user, action="attendance.calendar.day_set", obj=school,
        detail={"date": date.isoformat(), "old": old, "new": row.kind if row else "", "note": note},
        scope=Scope(school_id=school.pk, board_id=school.board_id),
    )
    return row


def _closure_class(actor: Actor, class_id: int | str) -> HomeroomClass:
    return scope.get_in_scope(
        HomeroomClass.objects.filter(school_year__school__in=scope.schools_for(actor, roles.DIRECTORY_MANAGE))
        .select_related("school_year__school"),
        pk=class_id,
    )


@transaction.atomic
def class_closure_create(*, actor: Actor, class_id: int | str, start_date: datetime.date,
                         end_date: datetime.date, disease: str = "", note: str = "") -> ClassClosure:
    """学級閉鎖 (学校保健安全法 §20) of one class over a period: the days count as 出席停止・忌引等 for every
    pupil, and no marks are entered on them."""
    klass = _closure_class(actor, class_id)
    errors: dict[str, list[str]] = {}
    year = klass.school_year
    if start_date > end_date:
        errors["end_date"] = ["終了日は開始日と同じか、それより後の日付にしてください。"]
    if not (year.start_date <= start_date <= year.end_date) or not (year.start_date <= end_date <= year.end_date):
        errors.setdefault("start_date", []).append(
            f"学級閉鎖の期間は{year.title}の期間内（{year.start_date:%Y年%m月%d日}〜{year.end_date:%Y年%m月%d日}）で指定してください。"
        )
    if disease and disease not in Disease.values:
        errors["disease"] = ["原因の感染症を一覧から選んでください（不明なら空欄）。"]
    if errors:
        raise ValidationFailed(next(iter(errors.values()))[0], errors=errors)
    note = _clean_note(note)
    overlap = ClassClosure.objects.filter(homeroom_class=klass, start_date__lte=end_date, end_date__gte=start_date)
    if overlap.exists():
        other = overlap.first()
        assert other is not None
        message = (
            f"この学級は{other.start_date:%m月%d日}〜{other.end_date:%m月%d日}に既に学級閉鎖が登録されています。"
            "期間が重ならないようにするか、登録済みの学級閉鎖を取り消してから登録してください。"
        )
        raise ValidationFailed(message, errors={"start_date": [message]})
    _refuse_frozen_months([klass], start_date, end_date)
    closure = ClassClosure(homeroom_class=klass, start_date=start_date, end_date=end_date, disease=disease,
                           note=note)
    try:
        closure.full_clean(exclude=["homeroom_class"])
    except ValidationError as exc:
        raise ValidationFailed("入力内容を確認してください。", errors=exc.message_dict) from exc
    closure.save()
    school = klass.school_year.school
    audit_record(
        actor=actor.user, action="attendance.closure.created", obj=closure,
        detail={"class": klass.pk, "start": start_date.isoformat(), "end": end_date.isoformat(),
                "disease": disease},
        scope=Scope(school_id=school.pk, board_id=school.board_id),
    )
    return closure


@transaction.atomic
def class_closure_delete(*, actor: Actor, closure_id: int | str) -> None:
    """Take back a 学級閉鎖 registered by mistake (the days count as ordinary 授業日 again)."""
    closure = scope.get_in_scope(
        ClassClosure.objects.filter(
            homeroom_class__school_year__school__in=scope.schools_for(actor, roles.DIRECTORY_MANAGE)
        ).select_related("homeroom_class__school_year__school"),
        pk=closure_id,
    )
    _refuse_frozen_months([closure.homeroom_class], closure.start_date, closure.end_date)
    school = closure.homeroom_class.school_year.school
    audit_record(
        actor=actor.user, action="attendance.closure.deleted", obj=closure,
        detail={"class": closure.homeroom_class_id, "start": closure.start_date.isoformat(),
                "end": closure.end_date.isoformat(), "disease": closure.disease},
        scope=Scope(school_id=school.pk, board_id=school.board_id),
    )
    closure.delete()
