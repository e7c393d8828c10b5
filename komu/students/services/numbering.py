"""Class membership and 出席番号: assign a pupil to a class, renumber a class by the school's rule, set the
rule (五十音順 mixed, boys first, girls first)."""

from __future__ import annotations

import datetime
import unicodedata
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.audit.services import Scope, audit_record
from komu.core.errors import ValidationFailed
from komu.core.text import TextError, normalize_kana
from komu.directory.models import HomeroomClass, School
from komu.students.models import ClassMembership, SchoolNumberingRule, Sex, Student
from komu.students.services._common import _require_edit, _save


@transaction.atomic
def membership_assign(*, actor: Actor, student: Student, homeroom_class: HomeroomClass,
                      shusseki_no: int) -> ClassMembership:
    _require_edit(actor, homeroom_class.school_year.school)
    if homeroom_class.school_year.school_id != student.school_id:
        raise ValidationFailed("別の学校の学級には所属させられません。")
    membership = ClassMembership(student=student, homeroom_class=homeroom_class, shusseki_no=shusseki_no)
    _save(membership)
    audit_record(
        actor=actor.user, action="students.membership.assigned", obj=student,
        fields=["homeroom_class", "shusseki_no"],
        detail={"class_id": homeroom_class.pk, "shusseki_no": shusseki_no},
        scope=Scope(school_id=student.school_id),
    )
    return membership


def _numbering_key(order: str, student: Student) -> tuple[Any, ...]:
    # Kana readings are stored normalised (katakana); _kana_sort turns them into 五十音順.
    far_future = datetime.date.max
    family, given = _kana_sort(student.family_name_kana), _kana_sort(student.given_name_kana)
    kana = (family[0], given[0], family[1], given[1], student.birth_date or far_future, str(student.pk))
    if order == SchoolNumberingRule.Order.BOYS_FIRST:
        return (_SEX_RANK_BOYS_FIRST.get(student.sex, 2), *kana)
    if order == SchoolNumberingRule.Order.GIRLS_FIRST:
        return (_SEX_RANK_GIRLS_FIRST.get(student.sex, 2), *kana)
    return kana


def _kana_sort(value: str) -> tuple[str, str]:
    """五十音順 as a dictionary orders it: (the reading without 濁点・半濁点 and with small kana made full size,
    the exact reading). Code point order alone would put ザイツ between サイ and シ rather than beside サイツ."""
    try:
        kana = normalize_kana(value).replace(" ", "")
    except TextError:
        # Stored readings were normalised on the way in; a legacy value that no longer passes still sorts.
        kana = value
    plain = "".join(
        c for c in unicodedata.normalize("NFD", kana) if c not in "\u3099\u309a"
    ).translate(_SMALL_TO_FULL)
    return plain, kana


_SMALL_TO_FULL = str.maketrans("ァィゥェォッャュョヮヵヶ", "アイウエオツヤユヨワカケ")


# Pupils whose sex is not recorded come after both groups rather than being guessed into one.
_SEX_RANK_BOYS_FIRST: dict[str, int] = {Sex.MALE: 0, Sex.FEMALE: 1}
_SEX_RANK_GIRLS_FIRST: dict[str, int] = {Sex.FEMALE: 0, Sex.MALE: 1}


@transaction.atomic
def shusseki_no_renumber(*, actor: Actor, homeroom_class_id: Any) -> int:
    """Give every pupil of a class a new 出席番号 (1, 2, …) by the school's rule; returns how many were changed."""
    homeroom_class: HomeroomClass = scope.get_in_scope(
        scope.classes_for(actor, roles.STUDENTS_EDIT).select_related("school_year__school"),
        pk=homeroom_class_id,
    )
    school = homeroom_class.school_year.school
    _require_edit(actor, school)
    return _renumber_class(actor, homeroom_class)


def _numbering_order(school: School) -> str:
    rule = SchoolNumberingRule.objects.filter(school=school).values_list("order", flat=True).first()
    return rule or SchoolNumberingRule.Order.KANA


def _renumber_class(actor: Actor, homeroom_class: HomeroomClass) -> int:
    """Renumber one class by its school's rule and audit it; the caller has checked scope and holds the
    transaction. Shared by shusseki_no_renumber, class placement and the year roll-over."""
    school = homeroom_class.school_year.school
    order = _numbering_order(school)
    memberships = list(
        # of=self, order by pk: lock the membership rows only — on PostgreSQL the join to the pupil and the default
        # ordering's joins (class, year, school) would otherwise lock those rows too and serialise a school.
        ClassMembership.objects.select_for_update(of=("self",)).filter(homeroom_class=homeroom_class)
        .select_related("student").order_by("pk")
    )
    memberships.sort(key=lambda m: _numbering_key(order, m.student))
    changed = [m for position, m in enumerate(memberships, start=1) if m.shusseki_no != position]
    # Two passes keep (class, 出席番号) unique at every step: first move the changed rows out of the way.
    offset = len(memberships) + max((m.shusseki_no for m in memberships), default=0)
    for m in changed:
        ClassMembership.objects.filter(pk=m.pk).update(shusseki_no=m.shusseki_no + offset)
    for position, m in enumerate(memberships, start=1):
        if m.shusseki_no != position:
            ClassMembership.objects.filter(pk=m.pk).update(shusseki_no=position, updated_at=timezone.now())
            m.shusseki_no = position
    audit_record(
        actor=actor.user, action="students.shusseki_no.renumbered", obj=homeroom_class,
        fields=["shusseki_no"],
        detail={"count": len(memberships), "changed": len(changed), "order": order},
        scope=Scope(school_id=school.pk, board_id=school.board_id),
    )
    return len(changed)


# --- 出席番号の規則 (numbering rule setting); views: komu/students/views (numbering_rule) ---------------------------

def kana_order_key(student: Student) -> tuple[Any, ...]:
    """The sort key of 五十音順 (mixed), as used for 出席番号: for lists that should read in the same order."""
    return _numbering_key(SchoolNumberingRule.Order.KANA, student)


@transaction.atomic
def numbering_rule_set(*, actor: Actor, school_id: Any, order: str) -> SchoolNumberingRule:
    """Set how the school numbers its classes (五十音順 mixed, boys first, girls first). Existing numbers are
    left as they are until a class is renumbered (numbers on printed registers must not change silently)."""
    school: School = scope.get_in_scope(scope.schools_for(actor, roles.STUDENTS_EDIT), pk=school_id)
    if order not in SchoolNumberingRule.Order.values:
        raise ValidationFailed(
            _("入力内容を確認してください。"),
            errors={"order": [_("出席番号の付け方は一覧から選んでください。")]},
        )
    rule, _created = SchoolNumberingRule.objects.select_for_update().get_or_create(school=school)
    previous = "" if _created else rule.order
    rule.order = order
    _save(rule)
    audit_record(
        actor=actor.user, action="students.numbering_rule.set", obj=school, fields=["order"],
        detail={"order": order, "previous": previous},
        scope=Scope(school_id=school.pk, board_id=school.board_id),
    )
    return rule
