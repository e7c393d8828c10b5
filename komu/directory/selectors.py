"""Reading the directory within the actor's scope.

Lists start from `komu.access.scope.schools_for` / `boards_for`; single objects go through `get_in_scope`, so a
missing and an out-of-scope object both raise NotFoundOrNoAccess (the view answers 404). Nothing read here is
personal data except staff members' display names on a school's page, which are not class I/II data and so are
not audited as reads.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.core import codes, wareki
from komu.core.codes import CodeError, SchoolCode
from komu.core.errors import NotFoundOrNoAccess
from komu.directory.models import (
    SCHOOL_ROLES,
    Board,
    HomeroomClass,
    Role,
    School,
    SchoolYear,
    StaffAssignment,
    Term,
)

# --- who may change what ---------------------------------------------------------------------------------------


def is_nationwide_manager(actor: Actor, capability: str = roles.DIRECTORY_MANAGE) -> bool:
    """Operators manage every board and school; they alone create boards and grant nationwide roles."""
    return any(g.role == Role.OPERATOR for g in actor.grants_with(capability))


def manageable_boards(actor: Actor, capability: str = roles.DIRECTORY_MANAGE) -> QuerySet[Board]:
    """Boards under which the actor may found or move schools (and assign board officers, with staff.manage).

    Operators: every board. Board officers: their board and the municipal boards under it. School staff manage
    their own school's details but never which board runs it, so they get no board here.
    """
    q = Q(pk__in=[])
    for grant in actor.grants_with(capability):
        if grant.role == Role.OPERATOR:
            return Board.objects.all()
        if grant.role == Role.BOARD_OFFICER:
            q |= Q(pk=grant.board_id) | Q(parent_id=grant.board_id)
    return Board.objects.filter(q)


def can_manage_school(actor: Actor, school: School, capability: str = roles.DIRECTORY_MANAGE) -> bool:
    return scope.schools_for(actor, capability).filter(pk=school.pk).exists()


def grantable_roles(actor: Actor, *, school: School | None = None, board: Board | None = None) -> list[str]:
    """Roles the actor may assign at this school or board (see `may_grant`)."""
    return [
        role
        for role in Role.values
        if role != Role.GUARDIAN and may_grant(actor, role, school=school, board=board)
    ]


def may_grant(actor: Actor, role: str, *, school: School | None = None, board: Board | None = None) -> bool:
    """Whether the actor may give (or end) this role at this organisation.

    Operators grant anything. A board officer grants school roles at the schools of their board (and of the
    boards under it) and board-officer roles at those boards. School managers grant school roles at their own
    school, but never a role holding a capability they lack themselves: a 学校事務 cannot make anyone (least of
    all themselves) a principal and so reach health notes.
    """
    grants = actor.grants_with(roles.STAFF_MANAGE)
    if any(g.role == Role.OPERATOR for g in grants):
        return True
    wanted = roles.CAPABILITIES[Role(role)]
    for grant in grants:
        if role in SCHOOL_ROLES and school is not None:
            if grant.role == Role.BOARD_OFFICER and grant.board_id in (
                school.board_id,
                school.board.parent_id,
            ):
                return True
            if grant.school_id == school.pk and wanted <= roles.CAPABILITIES[Role(grant.role)]:
                return True
        if (
            role == Role.BOARD_OFFICER
            and board is not None
            and grant.role == Role.BOARD_OFFICER
            and grant.board_id in (board.pk, board.parent_id)
        ):
            return True
    return False


# --- boards ----------------------------------------------------------------------------------------------------


def board_list(*, actor: Actor, query: str = "") -> QuerySet[Board]:
    """Boards in scope with their number of schools. Two queries per page whatever the number of rows."""
    visible = scope.boards_for(actor)
    # Re-select by id: boards_for may join through schools, and counting over that join would count only the
    # actor's own school.
    qs = (
        Board.objects.filter(pk__in=visible.values("pk"))
        .select_related("prefecture", "parent")
        .annotate(n_schools=Count("schools", distinct=True))
        .order_by("code")
    )
    if query:
        qs = qs.filter(_text_q(query, code_field="code", name_field="name"))
    return qs


def board_get_for(*, actor: Actor, board_id: int, capability: str = roles.DIRECTORY_VIEW) -> Board:
    return scope.get_in_scope(
        scope.boards_for(actor, capability).select_related("prefecture", "parent"), pk=board_id
    )


@dataclass(frozen=True)
class BoardDetail:
    board: Board
    children: list[Board]
    schools: list[School]
    staff: list[StaffAssignment]
    can_manage: bool
    can_manage_staff: bool


def board_detail(*, actor: Actor, board_id: int) -> BoardDetail:
    board = board_get_for(actor=actor, board_id=board_id)
    schools = list(scope.schools_for(actor).filter(board=board).order_by("code"))
    children = list(scope.boards_for(actor).filter(parent=board).order_by("code"))
    can_manage_staff = may_grant(actor, Role.BOARD_OFFICER, board=board)
    staff = (
        list(
            _current_assignments(StaffAssignment.objects.filter(board=board))
            .select_related("user", "board")
            .order_by("role", "user__username")
        )
        if can_manage_staff
        else []
    )
    return BoardDetail(
        board=board,
        children=children,
        schools=schools,
        staff=staff,
        can_manage=is_nationwide_manager(actor),
        can_manage_staff=can_manage_staff,
    )


# --- schools ---------------------------------------------------------------------------------------------------


def _text_q(query: str, *, code_field: str, name_field: str) -> Q:
    """Match a code by prefix (after NFKC and upper-casing, so ｂ１ finds B1…) or a name by substring.

    Names are stored exactly as registered, so both the typed form and its NFKC form are tried: 第１ finds 第1.
    """
    typed = query.strip()
    folded = unicodedata.normalize("NFKC", typed)
    q = Q(**{f"{name_field}__icontains": typed}) | Q(**{f"{name_field}__icontains": folded})
    code = "".join(folded.split()).upper()
    if code.isascii() and code.isalnum():
        q |= Q(**{f"{code_field}__startswith": code})
    return q


def school_list(
    *, actor: Actor, query: str = "", school_type: str = "", board_id: int | None = None
) -> QuerySet[School]:
    """Schools in scope, searched by name or code and filtered by 学校種 and 設置者."""
    qs = scope.schools_for(actor).select_related("board", "prefecture").order_by("code")
    if query:
        qs = qs.filter(_text_q(query, code_field="code", name_field="name"))
    if school_type:
        qs = qs.filter(school_type=school_type)
    if board_id is not None:
        qs = qs.filter(board_id=board_id)
    return qs


def school_get_for(*, actor: Actor, school_id: int, capability: str = roles.DIRECTORY_VIEW) -> School:
    return scope.get_in_scope(
        scope.schools_for(actor, capability).select_related("board__parent", "prefecture"), pk=school_id
    )


def school_code_parts(school: School) -> SchoolCode | None:
    """The parts of a stored 学校コード; None if a code saved before validation existed no longer parses."""
    try:
        return codes.validate_school_code(school.code)
    except CodeError:
        return None


@dataclass(frozen=True)
class ClassRow:
    homeroom_class: HomeroomClass
    pupils: int
    teachers: list[str]  # names; empty when the viewer may not see them (see may_see_staff_names)
    has_teacher: bool


@dataclass(frozen=True)
class GradeGroup:
    grade_code: str
    label: str
    classes: list[ClassRow]

    @property
    def pupils(self) -> int:
        return sum(row.pupils for row in self.classes)


@dataclass(frozen=True)
class StaffRow:
    assignment: StaffAssignment
    login_id: str
    name: str
    can_end: bool


@dataclass
class SchoolDetail:
    school: School
    code_parts: SchoolCode | None
    establishment_label: str
    years: list[SchoolYear]
    year: SchoolYear | None
    terms: list[Term]
    grades: list[GradeGroup]
    staff: list[StaffRow] = field(default_factory=list)
    can_manage: bool = False
    can_manage_staff: bool = False
    staff_names_visible: bool = False

    @property
    def pupils(self) -> int:
        return sum(group.pupils for group in self.grades)


def may_see_staff_names(actor: Actor, school: School) -> bool:
    """Who teaches which class is personal data. The school's own staff and those who manage its staff see the
    names; an analyst, whose role is aggregates only, sees just whether a class has a homeroom teacher."""
    if any(grant.school_id == school.pk for grant in actor.grants):
        return True
    return actor.has(roles.STAFF_MANAGE) and can_manage_school(actor, school, roles.STAFF_MANAGE)


def _current_assignments(qs: QuerySet[StaffAssignment]) -> QuerySet[StaffAssignment]:
    """Assignments in force today or starting later; ended ones stay in the table (and the audit log)."""
    today = timezone.localdate()
    return qs.filter(Q(end_date__isnull=True) | Q(end_date__gte=today))


def year_classes(*, school_year: SchoolYear, with_names: bool) -> list[GradeGroup]:
    """Classes of one year grouped by grade, each with its number of enrolled pupils and homeroom teachers.

    Three queries however many classes: classes with counts, then the homeroom assignments with their users.
    Counting memberships reveals no one; names stay behind students.view.
    """
    homeroom = Prefetch(
        "staffassignment_set",
        queryset=_current_assignments(StaffAssignment.objects.filter(role=Role.HOMEROOM_TEACHER))
        .select_related("user")
        .order_by("user__username"),
        to_attr="homeroom_assignments",
    )
    classes = (
        HomeroomClass.objects.filter(school_year=school_year)
        .annotate(n_pupils=Count("memberships", filter=Q(memberships__student__is_active=True)))
        .prefetch_related(homeroom)
        .order_by("grade_code", "sort_order", "name")
    )
    order = {code: i for i, code in enumerate(codes.GRADES)}
    groups: dict[str, list[ClassRow]] = {}
    for klass in classes:
        assigned = klass.homeroom_assignments
        teachers = [a.user.display_name or a.user.username for a in assigned] if with_names else []
        groups.setdefault(klass.grade_code, []).append(
            ClassRow(klass, klass.n_pupils, teachers, bool(assigned))
        )
    return [
        GradeGroup(grade, codes.grade_display(grade), rows)
        for grade, rows in sorted(groups.items(), key=lambda item: order.get(item[0], 99))
    ]


def school_detail(*, actor: Actor, school_id: int, year: int | None = None) -> SchoolDetail:
    """Everything a school's page shows: code parts, years, the chosen year's terms and classes, and staff."""
    school = school_get_for(actor=actor, school_id=school_id)
    years = list(SchoolYear.objects.filter(school=school).order_by("-year"))
    chosen = next((y for y in years if y.year == year), None) if year is not None else None
    if chosen is None and years:
        current = wareki.fiscal_year_of(timezone.localdate())
        chosen = next((y for y in years if y.year == current), years[0])
    parts = school_code_parts(school)
    names_visible = may_see_staff_names(actor, school)
    detail = SchoolDetail(
        school=school,
        code_parts=parts,
        establishment_label=codes.ESTABLISHMENTS.get(parts.establishment, "") if parts else "",
        years=years,
        year=chosen,
        terms=list(chosen.terms.order_by("number")) if chosen else [],
        grades=year_classes(school_year=chosen, with_names=names_visible) if chosen else [],
        can_manage=can_manage_school(actor, school),
        can_manage_staff=actor.has(roles.STAFF_MANAGE)
        and can_manage_school(actor, school, roles.STAFF_MANAGE),
        staff_names_visible=names_visible,
    )
    if detail.can_manage_staff:
        assignments = (
            _current_assignments(StaffAssignment.objects.filter(school=school))
            .select_related("user", "homeroom_class", "school__board")
            .order_by("role", "user__username")
        )
        detail.staff = [
            StaffRow(
                assignment=a,
                login_id=a.user.username,
                name=a.user.display_name,
                can_end=a.user_id != actor.user.pk and may_grant(actor, a.role, school=school),
            )
            for a in assignments
        ]
    return detail


def school_year_get_for(
    *, actor: Actor, school_year_id: int, capability: str = roles.DIRECTORY_VIEW
) -> SchoolYear:
    return scope.get_in_scope(
        SchoolYear.objects.filter(school__in=scope.schools_for(actor, capability)).select_related(
            "school__board"
        ),
        pk=school_year_id,
    )


def homeroom_class_get_for(
    *, actor: Actor, class_id: int, capability: str = roles.DIRECTORY_VIEW
) -> HomeroomClass:
    return scope.get_in_scope(
        scope.classes_for(actor, capability).select_related("school_year__school__board"), pk=class_id
    )


def classes_of_school(*, school: School, year: int | None = None) -> QuerySet[HomeroomClass]:
    """Classes a homeroom teacher can be given at this school (this year's unless another is named)."""
    chosen = year if year is not None else wareki.fiscal_year_of(timezone.localdate())
    return (
        HomeroomClass.objects.filter(school_year__school=school, school_year__year=chosen)
        .select_related("school_year")
        .order_by("grade_code", "sort_order", "name")
    )


def staff_assignment_get_for(*, actor: Actor, assignment_id: int) -> StaffAssignment:
    """An assignment the actor could end: at a school or board they manage staff for, and a role they may grant.

    Anything else, including the actor's own assignments, is out of scope (404): nobody revokes their own
    access by accident (not even the last operator), and no one learns of assignments they could not have made.
    """
    assignment = scope.get_in_scope(
        StaffAssignment.objects.select_related(
            "user", "school__board", "board", "homeroom_class__school_year"
        ),
        pk=assignment_id,
    )
    own = assignment.user_id == actor.user.pk
    if own or not may_grant(actor, assignment.role, school=assignment.school, board=assignment.board):
        raise NotFoundOrNoAccess(_("見つかりません。"))
    return assignment
