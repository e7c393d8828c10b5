"""Reads of the breach response: incident lists, the report's deadlines, the affected persons with names (an
audited read), and the home page's to-dos."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from komu.access import roles
from komu.access.scope import Actor, schools_for
from komu.accounts.models import User
from komu.audit.services import Scope, audit_record
from komu.core.wareki import fiscal_year_of
from komu.directory.models import Board, HomeroomClass
from komu.privacy.models import AffectedPerson, Incident
from komu.privacy.services import get_incident, incident_queryset
from komu.students.models import ClassMembership, GuardianLink
from komu.web.selectors import Task

# 個人情報保護委員会への報告 (個人情報保護法施行規則 §8 / §44): 速報 "速やかに" — the PPC's guidance reads this as
# about 3 to 5 days after becoming aware; 確報 within 30 days, 60 days when the leak was or may have been done
# for an unlawful purpose (theft, unauthorised access). The day the school became aware counts as day 1.
PRELIMINARY_EARLY_DAYS = 3
PRELIMINARY_LATE_DAYS = 5
FINAL_DAYS = 30
FINAL_DAYS_UNLAWFUL = 60
# 行政機関等 (a public school's board is one) must report a leak of more than 100 persons' data (規則 §43).
REPORT_THRESHOLD_PERSONS = 100

# Field codes as the audit log, the disclosure log and the forms name them → the PPC report's wording.
FIELD_LABELS = {
    "family_name": "氏名", "given_name": "氏名", "name": "氏名",
    "family_name_kana": "氏名のふりがな", "given_name_kana": "氏名のふりがな", "kana": "氏名のふりがな",
    "birth_date": "生年月日", "sex": "性別", "address": "住所", "phone": "電話番号", "email": "メールアドレス",
    "health_note": "健康上の配慮（アレルギー等）", "special_needs_category": "障害種別・指導の内容",
    "special_needs_placement": "特別支援教育の在籍", "shusseki_no": "出席番号", "class": "学級",
    "homeroom_class": "学級", "grade": "学年", "guardian_name": "保護者氏名", "guardian_phone": "保護者の電話番号",
    "guardian_email": "保護者のメールアドレス", "guardian_address": "保護者の住所",
    "emergency_contacts": "緊急連絡先", "emergency_contact": "緊急連絡先", "relationship": "続柄",
    "attendance": "出欠の記録", "marks": "出欠の記録", "note": "備考",
}
# Items that are 要配慮個人情報 (health, disability): a leak of one person's is already reportable.
SENSITIVE_FIELDS = frozenset({"health_note", "special_needs_category", "special_needs_placement"})


def field_label(code: str) -> str:
    return FIELD_LABELS.get(code, code)


def field_labels(codes: list[str]) -> list[str]:
    seen: list[str] = []
    for code in codes:
        label = field_label(code)
        if label not in seen:
            seen.append(label)
    return seen


def _day(n: int, start: datetime.date) -> datetime.date:
    """The n-th day counting the start day as day 1."""
    return start + datetime.timedelta(days=n - 1)


@dataclass(frozen=True)
class Deadline:
    label: str
    due: datetime.date
    done_at: datetime.datetime | None
    days_left: int

    @property
    def days_over(self) -> int:
        return -self.days_left

    @property
    def overdue(self) -> bool:
        return self.done_at is None and self.days_left < 0


def deadlines(incident: Incident, today: datetime.date | None = None) -> list[Deadline]:
    today = today or timezone.localdate()
    found = timezone.localtime(incident.found_at).date()
    final_days = FINAL_DAYS_UNLAWFUL if incident.unlawful_purpose else FINAL_DAYS
    rows = [
        (_("速報（目安：3日目）"), _day(PRELIMINARY_EARLY_DAYS, found), incident.preliminary_reported_at),
        (_("速報（遅くとも：5日目）"), _day(PRELIMINARY_LATE_DAYS, found), incident.preliminary_reported_at),
        (_("確報（%(days)s日以内）") % {"days": final_days}, _day(final_days, found), incident.final_reported_at),
    ]
    return [Deadline(label, due, done, (due - today).days) for label, due, done in rows]


def report_required(incident: Incident) -> list[str]:
    """Why the incident must be reported to the PPC (empty: no obligation found, report voluntarily)."""
    reasons = []
    if SENSITIVE_FIELDS & set(incident.data_items):
        reasons.append(_("要配慮個人情報（健康・障害に関する情報）が含まれる"))
    if incident.unlawful_purpose:
        reasons.append(_("不正の目的をもって行われたおそれがある"))
    if incident.person_count > REPORT_THRESHOLD_PERSONS:
        reasons.append(_("本人の数が100人を超える"))
    if incident.encrypted:
        return []
    return reasons


@dataclass(frozen=True)
class IncidentRow:
    incident: Incident
    next_deadline: Deadline | None


def incident_rows(actor: Actor) -> list[IncidentRow]:
    rows = []
    for incident in incident_queryset(actor).select_related("school", "board"):
        pending = [d for d in deadlines(incident) if d.done_at is None and incident.status != Incident.Status.CLOSED]
        rows.append(IncidentRow(incident, pending[0] if pending else None))
    return rows


@dataclass(frozen=True)
class PersonRow:
    student_id: str
    name: str
    kana: str
    school: str
    klass: str
    shusseki_no: int | None
    fields: list[str]
    guardians: list[str]


def affected_persons(actor: Actor, incident_id: Any, *, with_guardians: bool = False) -> list[PersonRow]:
    """The incident's pupils by name (decrypted: an audited read), in class and 出席番号 order."""
    incident = get_incident(actor, incident_id)
    persons = list(AffectedPerson.objects.filter(incident=incident).select_related("student", "student__school"))
    ids = [p.student_id for p in persons]
    memberships: dict[Any, ClassMembership] = {}
    for m in ClassMembership.objects.filter(student_id__in=ids).select_related("homeroom_class__school_year") \
            .order_by("homeroom_class__school_year__year"):
        memberships[m.student_id] = m
    guardians: dict[Any, list[str]] = {}
    if with_guardians:
        for link in GuardianLink.objects.filter(student_id__in=ids).select_related("guardian").order_by("priority"):
            guardians.setdefault(link.student_id, []).append(f"{link.guardian.family_name} {link.guardian.given_name}")
    rows = []
    for p in persons:
        s = p.student
        membership = memberships.get(p.student_id)
        rows.append(PersonRow(
            student_id=str(s.pk), name=f"{s.family_name} {s.given_name}",
            kana=f"{s.family_name_kana} {s.given_name_kana}", school=s.school.name,
            klass=membership.homeroom_class.display_label if membership is not None else "",
            shusseki_no=membership.shusseki_no if membership is not None else None, fields=field_labels(list(p.fields)),
            guardians=guardians.get(p.student_id, []),
        ))
    rows.sort(key=lambda r: (r.school, r.klass, r.shusseki_no or 0, r.kana))
    with transaction.atomic():
        audit_record(
            actor=actor.user, action="privacy.incident.persons_viewed", obj=incident,
            fields=["family_name", "given_name", "family_name_kana", "given_name_kana"]
            + (["guardian_name"] if with_guardians else []),
            detail={"count": len(rows)}, scope=Scope(school_id=incident.school_id, board_id=incident.board_id),
        )
    return rows


def home_tasks(*, actor: Actor) -> list[Task]:
    """Open incidents whose next PPC deadline is near or past."""
    if not actor.has(roles.PRIVACY_INCIDENTS):
        return []
    tasks = []
    for row in incident_rows(actor):
        d = row.next_deadline
        if d is None or d.days_left > 2:
            continue
        tasks.append(Task(
            title=_("漏えい等の報告期限：%(title)s") % {"title": row.incident.title},
            detail=_("%(label)s %(date)s まで") % {"label": d.label, "date": d.due.strftime("%m/%d")},
            url=reverse("privacy:incident_detail", args=[row.incident.pk]),
            urgent=d.days_left <= 0,
        ))
    return tasks


# --- Choices for the forms -------------------------------------------------------------------------------------

def school_choices(actor: Actor, capability: str = roles.PRIVACY_INCIDENTS) -> list[tuple[str, str]]:
    return [(str(s.pk), s.name) for s in schools_for(actor, capability).order_by("code")]


def class_choices(actor: Actor) -> list[tuple[str, str]]:
    schools = schools_for(actor, roles.PRIVACY_INCIDENTS)
    current = fiscal_year_of(timezone.localdate())
    classes = HomeroomClass.objects.filter(school_year__school__in=schools, school_year__year=current) \
        .select_related("school_year__school").order_by("school_year__school__code", "grade_code", "name")
    many = schools.count() > 1
    return [(str(c.pk), f"{c.school_year.school.name} {c.display_label}" if many else c.display_label) for c in classes]


def account_choices(actor: Actor) -> list[tuple[str, str]]:
    """Staff accounts of the actor's schools and boards, for the audit-log search (names of staff only)."""
    schools = schools_for(actor, roles.PRIVACY_INCIDENTS)
    own = [g.board_id for g in actor.grants_with(roles.PRIVACY_INCIDENTS) if g.board_id is not None]
    users = User.objects.filter(Q(assignments__school__in=schools) | Q(assignments__board_id__in=own),
                                kind=User.Kind.STAFF).distinct().order_by("username")
    return [(str(u.pk), f"{u.display_name}（{u.username}）") for u in users]


def lockout_targets(actor: Actor) -> list[tuple[str, str]]:
    """"board:<id>" for the actor's boards (all their staff), "school:<id>" for each school."""
    targets = []
    own = [g.board_id for g in actor.grants_with(roles.PRIVACY_FORCE_RESET) if g.board_id is not None]
    for board in Board.objects.filter(Q(pk__in=own) | Q(parent_id__in=own)).order_by("code"):
        targets.append((f"board:{board.pk}", _("%(name)s（事務局と所管の全学校）") % {"name": board.name}))
    for pk, name in school_choices(actor, roles.PRIVACY_FORCE_RESET):
        targets.append((f"school:{pk}", name))
    return targets
