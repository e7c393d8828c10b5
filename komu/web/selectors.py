"""What each person's home page shows: the day's to-dos for their roles, and aggregate counts for analysts.

Reads only; personal data never appears here beyond what the role's own lists would show.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.accounts import mfa
from komu.directory.models import HomeroomClass, Role, School


@dataclass(frozen=True)
class Task:
    title: str
    detail: str
    url: str
    urgent: bool = False


@dataclass(frozen=True)
class Figure:
    label: str
    value: int
    unit: str = ""


@dataclass
class HomePage:
    greeting_role: str
    tasks: list[Task] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    classes: list[HomeroomClass] = field(default_factory=list)


# Each domain contributes its own to-dos: `home_tasks(*, actor) -> list[Task]` in the named module.
_TASK_PROVIDERS = (
    "komu.attendance.selectors.reports",
    "komu.attendance.selectors.overview",
    "komu.approvals.selectors",
    "komu.rosters.selectors.home",
    "komu.students.selectors",
    "komu.notices.selectors",
    "komu.surveys.selectors",
    "komu.trips.selectors",
    "komu.disclosures.selectors",
    "komu.privacy.selectors",
    "komu.progress.selectors",
)


def _domain_tasks(actor: Actor) -> list[Task]:
    from importlib import import_module

    tasks: list[Task] = []
    for module in _TASK_PROVIDERS:
        tasks.extend(import_module(module).home_tasks(actor=actor))
    return tasks


def home_for(*, actor: Actor) -> HomePage:
    primary = actor.primary
    page = HomePage(greeting_role=str(dict(Role.choices)[primary.role]) if primary else "")
    user = actor.user
    if user.mfa_required and not mfa.has_recovery_codes(user):
        page.tasks.append(Task(
            _("復旧コードを発行してください"),
            _("認証アプリやパスキーを失ったときにサインインするためのコードです。"),
            reverse("accounts:recovery_codes"), urgent=True,
        ))
    page.tasks.extend(_domain_tasks(actor))
    today = timezone.localdate()
    class_ids = [g.class_id for g in actor.grants if g.role == Role.HOMEROOM_TEACHER and g.class_id]
    if class_ids:
        classes = list(
            HomeroomClass.objects.filter(pk__in=class_ids)
            .select_related("school_year__school")
            .annotate(pupils=Count("memberships"))
        )
        page.classes = list(classes)
        for klass in classes:
            page.tasks.append(Task(
                _("%(klass)s の名簿を確認") % {"klass": klass.display_label},
                _("在籍 %(n)d 名") % {"n": klass.pupils},
                reverse("students:list") + f"?class={klass.pk}",
            ))
    if actor.has(roles.AUDIT_VIEW) and not actor.has(roles.SYSTEM_OPERATE):
        page.tasks.append(Task(
            _("個人情報へのアクセス記録を確認"),
            _("誰がいつ児童生徒の記録を見たかを確認できます。"),
            reverse("audit:trail"),
        ))
    if actor.has(roles.SYSTEM_OPERATE):
        page.tasks.append(Task(_("学校・教育委員会の一括登録"), _("CSV/XLSX から組織を登録します。"),
                               reverse("directory:bulk_load")))
        page.tasks.append(Task(_("監査ログの連鎖を検証"), _("改ざんがないかを確認します。"), reverse("audit:trail")))
    if actor.has(roles.DIRECTORY_MANAGE) and not actor.has(roles.SYSTEM_OPERATE):
        schools = scope.schools_for(actor, roles.DIRECTORY_MANAGE)
        missing_year = schools.exclude(years__year=_fiscal_year(today)).count()
        if missing_year:
            page.tasks.append(Task(
                _("今年度の年度・学級が未登録の学校があります"),
                _("%(n)d 校") % {"n": missing_year}, reverse("directory:schools"), urgent=True,
            ))
    if actor.has(roles.DIRECTORY_VIEW) and not actor.is_guardian:
        visible = scope.schools_for(actor)
        counts = visible.aggregate(
            schools=Count("pk", distinct=True),
            elementary=Count("pk", filter=Q(school_type="B1"), distinct=True),
            junior=Count("pk", filter=Q(school_type="C1"), distinct=True),
        )
        page.figures.append(Figure(_("学校数"), counts["schools"] or 0, pgettext("counter for schools", "校")))
        if actor.has(roles.STATS_VIEW) or actor.has(roles.STUDENTS_VIEW):
            pupils = School.objects.filter(pk__in=visible.values("pk")).aggregate(
                n=Count("students", filter=Q(students__is_active=True))
            )["n"]
            page.figures.append(Figure(_("在籍児童生徒数"), pupils or 0, pgettext("counter for people", "名")))
    return page


def _fiscal_year(day: object) -> int:
    from komu.core.wareki import fiscal_year_of

    return fiscal_year_of(day)  # type: ignore[arg-type]


@dataclass(frozen=True)
class StatRow:
    label: str
    code: str
    schools: int
    classes: int
    pupils: int


def stats_for(*, actor: Actor) -> list[StatRow]:
    """Counts per school within scope — numbers only, no names: what analysts are allowed to see."""
    schools = scope.schools_for(actor, roles.STATS_VIEW)
    rows = (
        schools.values("board__name", "board__code")
        .annotate(
            n_schools=Count("pk", distinct=True),
            n_classes=Count("years__classes", distinct=True),
        )
        .order_by("board__code")
    )
    pupils = dict(
        schools.filter(students__is_active=True)
        .values_list("board__code")
        .annotate(n=Count("students", distinct=True))
        .values_list("board__code", "n")
    )
    return [
        StatRow(r["board__name"], r["board__code"], r["n_schools"], r["n_classes"], pupils.get(r["board__code"], 0))
        for r in rows
    ]
