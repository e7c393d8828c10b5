"""The permission matrix: every persona of the shared world × every kind of resource, in scope and out of scope.

EXPECTED is the policy, one row per persona: what each may reach. Anything not listed is out of reach and must
answer NotFoundOrNoAccess (→ 404). Changing a role's powers means changing komu/access/roles.py and this table
together.

The world (komu/testing/world.py): prefecture 13 with a prefectural board over board A (school_a: classes a1, a2;
school_a2: class j1) and board B (school_b: class b1). This file adds school_x in another prefecture (27) so that
"nationwide" and "one prefecture" differ. Pupils: a1_first and a1_second (class a1; guardian_a is a1_first's),
a2_first (class a2), b1_first (class b1; guardian_b's), x1_first (class x1).
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import transaction
from django.db.models import Model, QuerySet
from django.utils import timezone

from komu.access import roles, scope
from komu.access.scope import Actor, get_actor
from komu.audit.models import AuditEvent
from komu.audit.selectors import audit_events_for
from komu.audit.services import Scope, audit_record
from komu.core.codes import make_school_code
from komu.core.errors import NotFoundOrNoAccess
from komu.directory.models import Board, HomeroomClass, Prefecture, Role, School, SchoolYear, StaffAssignment
from komu.students.models import ClassMembership, Student
from komu.testing.world import World

# --- the policy ------------------------------------------------------------------------------------------------

ALL_SCHOOLS = {"school_a", "school_a2", "school_b", "school_x"}
PREF_13 = {"school_a", "school_a2", "school_b"}
BOARD_A = {"school_a", "school_a2"}
A = {"school_a"}
B = {"school_b"}
CLASSES_BOARD_A = {"class_a1", "class_a2", "class_j1"}
CLASSES_A = {"class_a1", "class_a2"}
PUPILS_A = {"a1_first", "a1_second", "a2_first"}
CLASS_A1 = {"a1_first", "a1_second"}
EVERY_EVENT = {"@school_a", "@school_a2", "@school_b", "@school_x", "@board_a", "@board_b", "@system"}

EXPECTED: dict[str, dict[str, set[str]]] = {
    # Runs the system: the whole directory and audit trail, bulk loads; no pupil, no health note, no contact.
    "operator": {
        "school": ALL_SCHOOLS, "school_manage": ALL_SCHOOLS, "audit_trail": EVERY_EVENT,
        "system": {"bulk_load", "operate"},
    },
    # Aggregates only, nationwide or for one prefecture.
    "national_analyst": {"school": ALL_SCHOOLS, "statistics": ALL_SCHOOLS},
    "pref_analyst": {"school": PREF_13, "statistics": PREF_13},
    # The board keeps the 学齢簿: its schools' pupils and contacts, never health notes.
    "board_officer_a": {
        "school": BOARD_A, "school_manage": BOARD_A, "class_list": CLASSES_BOARD_A, "pupil": PUPILS_A,
        "pupil_edit": PUPILS_A, "guardian_contacts": PUPILS_A, "statistics": BOARD_A,
        "audit_trail": {"@school_a", "@school_a2", "@board_a"},
    },
    "board_officer_b": {
        "school": B, "school_manage": B, "class_list": {"class_b1"}, "pupil": {"b1_first"},
        "pupil_edit": {"b1_first"}, "guardian_contacts": {"b1_first"}, "statistics": B,
        "audit_trail": {"@school_b", "@board_b"},
    },
    # The school office: the school's records and contacts, no health notes, no audit trail.
    "school_admin_a": {
        "school": A, "school_manage": A, "class_list": CLASSES_A, "pupil": PUPILS_A, "pupil_edit": PUPILS_A,
        "guardian_contacts": PUPILS_A,
    },
    # The principal (and vice-principal) answer for everything in their school.
    "principal_a": {
        "school": A, "school_manage": A, "class_list": CLASSES_A, "pupil": PUPILS_A, "pupil_edit": PUPILS_A,
        "health_note": PUPILS_A, "guardian_contacts": PUPILS_A, "audit_trail": {"@school_a"}, "statistics": A,
    },
    "principal_b": {
        "school": B, "school_manage": B, "class_list": {"class_b1"}, "pupil": {"b1_first"},
        "pupil_edit": {"b1_first"}, "health_note": {"b1_first"}, "guardian_contacts": {"b1_first"},
        "audit_trail": {"@school_b"}, "statistics": B,
    },
    "vice_principal_a": {
        "school": A, "school_manage": A, "class_list": CLASSES_A, "pupil": PUPILS_A, "pupil_edit": PUPILS_A,
        "health_note": PUPILS_A, "guardian_contacts": PUPILS_A, "audit_trail": {"@school_a"}, "statistics": A,
    },
    # A homeroom teacher: their own class, including health notes and contacts; nothing to edit.
    "homeroom_a1": {
        "school": A, "class_list": {"class_a1"}, "pupil": CLASS_A1, "health_note": CLASS_A1,
        "guardian_contacts": CLASS_A1,
    },
    # A subject teacher: the school's pupils by name, nothing sensitive.
    "teacher_a": {"school": A, "class_list": CLASSES_A, "pupil": PUPILS_A},
    "teacher_b": {"school": B, "class_list": {"class_b1"}, "pupil": {"b1_first"}},
    # The school nurse: health notes and contacts of the school's pupils.
    "nurse_a": {
        "school": A, "class_list": CLASSES_A, "pupil": PUPILS_A, "health_note": PUPILS_A,
        "guardian_contacts": PUPILS_A,
    },
    # A guardian: their own child, one by one; no class lists, no directory.
    "guardian_a": {"pupil": {"a1_first"}, "health_note": {"a1_first"}, "guardian_contacts": {"a1_first"}},
    "guardian_b": {"pupil": {"b1_first"}, "health_note": {"b1_first"}, "guardian_contacts": {"b1_first"}},
}

# Every resource type and the objects it is checked against (in scope for some personas, out for others).
SCHOOLS = sorted(ALL_SCHOOLS)
CLASSES = ["class_a1", "class_a2", "class_j1", "class_b1", "class_x1"]
PUPILS = ["a1_first", "a1_second", "a2_first", "b1_first", "x1_first"]
RESOURCES: dict[str, list[str]] = {
    "school": SCHOOLS,  # the directory: a school's page
    "school_manage": SCHOOLS,  # editing a school, its years, classes and staff
    "class_list": CLASSES,  # opening a class's list of pupils
    "pupil": PUPILS,  # a pupil's basic record (name, kana, class)
    "pupil_edit": PUPILS,  # changing a pupil's record
    "health_note": PUPILS,  # a pupil's health note (class I data)
    "guardian_contacts": PUPILS,  # a pupil's guardians' phone and e-mail
    "audit_trail": sorted(EVERY_EVENT),  # events recorded at a school, a board, or by the system
    "system": ["bulk_load", "operate"],  # bulk loading the directory; operating the system
    "statistics": SCHOOLS,  # aggregate counts per school
}

STUDENT_CAPABILITY = {
    "pupil": roles.STUDENTS_VIEW,
    "pupil_edit": roles.STUDENTS_EDIT,
    "health_note": roles.STUDENTS_VIEW_SENSITIVE,
    "guardian_contacts": roles.GUARDIANS_VIEW_CONTACT,
}
SCHOOL_CAPABILITY = {
    "school": roles.DIRECTORY_VIEW,
    "school_manage": roles.DIRECTORY_MANAGE,
    "statistics": roles.STATS_VIEW,
}
SYSTEM_CAPABILITY = {"bulk_load": roles.DIRECTORY_BULK_LOAD, "operate": roles.SYSTEM_OPERATE}

PERSONAS = list(EXPECTED)


# --- the world, with one more prefecture and an event everywhere ------------------------------------------------


@dataclass
class Matrix:
    world: World
    objects: dict[str, Model] = field(default_factory=dict)


@pytest.fixture
def matrix(world: World) -> Matrix:
    osaka = Prefecture.objects.get(code="27")
    board_x = Board.objects.create(code="279001", name="架空市教育委員会", kind=Board.Kind.MUNICIPAL, prefecture=osaka)
    school_x = School.objects.create(code=make_school_code("B1", "27", "2", "0000009"), name="架空市立小学校",
                                     school_type="B1", board=board_x, prefecture=osaka)
    year_x = SchoolYear.objects.create(school=school_x, year=world.class_a1.school_year.year,
                                       start_date=world.class_a1.school_year.start_date,
                                       end_date=world.class_a1.school_year.end_date)
    class_x1 = HomeroomClass.objects.create(school_year=year_x, grade_code="P1", name="1組")
    x1_first = Student(school=school_x, family_name="田中", given_name="太郎", family_name_kana="タナカ",
                       given_name_kana="タロウ", birth_date=datetime.date(2017, 6, 1), health_note="喘息")
    x1_first.save()
    ClassMembership.objects.create(student=x1_first, homeroom_class=class_x1, shusseki_no=1)

    m = Matrix(world)
    m.objects.update(school_a=world.school_a, school_a2=world.school_a2, school_b=world.school_b, school_x=school_x)
    m.objects.update(
        class_a1=world.class_a1, class_a2=world.class_a2, class_b1=world.class_b1, class_x1=class_x1,
        class_j1=HomeroomClass.objects.get(school_year__school=world.school_a2),
    )
    m.objects.update({name: world.students[name] for name in ["a1_first", "a1_second", "a2_first", "b1_first"]})
    m.objects["x1_first"] = x1_first
    for name, where in {
        "@school_a": Scope(school_id=world.school_a.pk, board_id=world.board_a.pk),
        "@school_a2": Scope(school_id=world.school_a2.pk),
        "@school_b": Scope(school_id=world.school_b.pk, board_id=world.board_b.pk),
        "@school_x": Scope(school_id=school_x.pk, board_id=board_x.pk),
        "@board_a": Scope(board_id=world.board_a.pk),
        "@board_b": Scope(board_id=world.board_b.pk),
        "@system": None,
    }.items():
        with transaction.atomic():
            m.objects[name] = audit_record(actor=None, action="tests.matrix", object_id=name, scope=where)
    return m


def _reachable(qs: QuerySet[Any], m: Matrix, names: list[str]) -> set[str]:
    """Which of the named objects `get_in_scope` hands out from `qs`; the others must raise NotFoundOrNoAccess."""
    found = set()
    for name in names:
        obj = m.objects[name]
        try:
            got = scope.get_in_scope(qs, pk=obj.pk)
        except NotFoundOrNoAccess:
            continue
        assert got.pk == obj.pk
        found.add(name)
    return found


def reach(m: Matrix, actor: Actor, resource: str) -> set[str]:
    """The access layer's answer for one resource type, object by object."""
    names = RESOURCES[resource]
    if resource in SCHOOL_CAPABILITY:
        return _reachable(scope.schools_for(actor, SCHOOL_CAPABILITY[resource]), m, names)
    if resource == "class_list":
        return _reachable(scope.classes_for(actor, roles.STUDENTS_VIEW), m, names)
    if resource in STUDENT_CAPABILITY:
        return _reachable(scope.students_for(actor, STUDENT_CAPABILITY[resource]), m, names)
    if resource == "audit_trail":
        return _reachable(audit_events_for(actor=actor), m, names)
    assert resource == "system"
    return {name for name in names if actor.has(SYSTEM_CAPABILITY[name])}


# --- the matrix ------------------------------------------------------------------------------------------------


def test_the_table_covers_every_persona_of_the_world(world: World) -> None:
    assert set(EXPECTED) == set(world.users)
    for persona, row in EXPECTED.items():
        assert set(row) <= set(RESOURCES), persona
        for resource, allowed in row.items():
            assert allowed <= set(RESOURCES[resource]), (persona, resource)


@pytest.mark.parametrize("resource", list(RESOURCES))
@pytest.mark.parametrize("persona", PERSONAS)
def test_permission_matrix(matrix: Matrix, persona: str, resource: str) -> None:
    actor = get_actor(matrix.world.user(persona))
    expected = EXPECTED[persona].get(resource, set())
    assert reach(matrix, actor, resource) == expected


@pytest.mark.parametrize("persona", PERSONAS)
def test_can_manage_school_agrees_with_the_matrix(matrix: Matrix, persona: str) -> None:
    actor = get_actor(matrix.world.user(persona))
    manageable = {name for name in SCHOOLS if scope.can_manage_school(actor, matrix.objects[name])}  # type: ignore[arg-type]
    assert manageable == EXPECTED[persona].get("school_manage", set())


@pytest.mark.parametrize("persona", PERSONAS)
def test_no_persona_reaches_more_with_a_capability_it_lacks(matrix: Matrix, persona: str) -> None:
    """Asking for a capability the role does not hold yields nothing, whatever the scope."""
    actor = get_actor(matrix.world.user(persona))
    for capability in sorted(set().union(*roles.CAPABILITIES.values())):
        if actor.has(capability):
            continue
        assert not scope.schools_for(actor, capability).exists(), capability
        assert not scope.classes_for(actor, capability).exists(), capability
        assert not scope.students_for(actor, capability).exists(), capability


# --- the named cases -------------------------------------------------------------------------------------------


def test_teacher_of_school_a_cannot_reach_school_b(matrix: Matrix) -> None:
    teacher = get_actor(matrix.world.user("teacher_a"))
    b = matrix.world
    for qs, obj in [
        (scope.schools_for(teacher), b.school_b),
        (scope.classes_for(teacher), b.class_b1),
        (scope.classes_for(teacher, roles.STUDENTS_VIEW), b.class_b1),
        (scope.students_for(teacher), b.students["b1_first"]),
    ]:
        with pytest.raises(NotFoundOrNoAccess):
            scope.get_in_scope(qs, pk=obj.pk)
    assert set(scope.schools_for(teacher)) == {b.school_a}


def test_guardian_sees_only_their_own_children(matrix: Matrix) -> None:
    w = matrix.world
    guardian = get_actor(w.user("guardian_a"))
    assert guardian.child_ids == {w.students["a1_first"].pk}
    for capability in STUDENT_CAPABILITY.values():
        assert set(scope.students_for(guardian, capability)) <= {w.students["a1_first"]}
    # Not the classmate, not another school's child, not the class list, not the school's directory.
    for other in ["a1_second", "b1_first"]:
        with pytest.raises(NotFoundOrNoAccess):
            scope.get_in_scope(scope.students_for(guardian), pk=w.students[other].pk)
    assert not scope.classes_for(guardian, roles.STUDENTS_VIEW).exists()
    assert not scope.schools_for(guardian).exists()


def test_homeroom_teacher_sees_only_their_class_pupils(matrix: Matrix) -> None:
    w = matrix.world
    homeroom = get_actor(w.user("homeroom_a1"))
    assert set(scope.students_for(homeroom)) == {w.students["a1_first"], w.students["a1_second"]}
    with pytest.raises(NotFoundOrNoAccess):
        scope.get_in_scope(scope.students_for(homeroom), pk=w.students["a2_first"].pk)
    with pytest.raises(NotFoundOrNoAccess):
        scope.get_in_scope(scope.classes_for(homeroom, roles.STUDENTS_VIEW), pk=w.class_a2.pk)
    # The school's directory (which classes exist) is not personal data: all of the school's classes.
    assert set(scope.classes_for(homeroom)) == {w.class_a1, w.class_a2}


def test_operator_sees_no_personal_data(matrix: Matrix) -> None:
    operator = get_actor(matrix.world.user("operator"))
    for capability in [*STUDENT_CAPABILITY.values(), roles.STATS_VIEW]:
        assert not operator.has(capability)
        assert not scope.students_for(operator, capability).exists()
    assert not scope.classes_for(operator, roles.STUDENTS_VIEW).exists()
    # What they do have: the directory, bulk loads, system operation and the whole audit trail.
    assert operator.has(roles.DIRECTORY_BULK_LOAD) and operator.has(roles.SYSTEM_OPERATE)
    audit = scope.audit_scope(operator)
    assert audit is not None and audit.everything


@pytest.mark.parametrize("persona", ["national_analyst", "pref_analyst"])
def test_analysts_see_aggregates_only(matrix: Matrix, persona: str) -> None:
    analyst = get_actor(matrix.world.user(persona))
    assert analyst.has(roles.STATS_VIEW)
    for capability in [*STUDENT_CAPABILITY.values(), roles.DIRECTORY_MANAGE, roles.STAFF_MANAGE,
                       roles.AUDIT_VIEW, roles.DIRECTORY_BULK_LOAD, roles.SYSTEM_OPERATE]:
        assert not analyst.has(capability), capability
        assert not scope.students_for(analyst, capability).exists()
    assert scope.audit_scope(analyst) is None
    assert not audit_events_for(actor=analyst).exists()


# --- ids that name nothing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_id",
    ["", "not-a-uuid", "0" * 31, "' OR '1'='1", str(uuid.uuid4()), 12345, 10**40, None, ["x"], {"pk": 1}],
    ids=["empty", "word", "short-hex", "injection", "unknown-uuid", "int", "huge-int", "none", "list", "dict"],
)
def test_a_malformed_or_unknown_pupil_id_names_nothing(matrix: Matrix, bad_id: Any) -> None:
    with pytest.raises(NotFoundOrNoAccess):
        scope.get_in_scope(Student.objects.all(), pk=bad_id)


def test_a_pupil_id_with_padding_names_nothing(matrix: Matrix) -> None:
    pk = str(matrix.world.students["a1_first"].pk)
    assert scope.get_in_scope(Student.objects.all(), pk=pk).pk == matrix.world.students["a1_first"].pk
    for variant in [f" {pk}", f"{pk}\n", pk.replace("-", "－")]:
        with pytest.raises(NotFoundOrNoAccess):
            scope.get_in_scope(Student.objects.all(), pk=variant)


@pytest.mark.parametrize(
    "variant", ["full-width", "padded", "decimal", "negative", "huge", "hex", "word", "empty"],
)
def test_a_malformed_school_id_names_nothing_even_in_scope(matrix: Matrix, variant: str) -> None:
    pk = matrix.world.school_a.pk
    bad = {
        "full-width": str(pk).translate(str.maketrans("0123456789", "０１２３４５６７８９")),
        "padded": f" {pk} ",
        "decimal": f"{pk}.0",
        "negative": -pk,
        "huge": 2**70,
        "hex": hex(pk),
        "word": "school_a",
        "empty": "",
    }[variant]
    operator = get_actor(matrix.world.user("operator"))
    assert scope.get_in_scope(scope.schools_for(operator), pk=str(pk)) == matrix.world.school_a
    with pytest.raises(NotFoundOrNoAccess):
        scope.get_in_scope(scope.schools_for(operator), pk=bad)


def test_an_audit_event_out_of_scope_answers_like_a_missing_one(matrix: Matrix) -> None:
    principal = get_actor(matrix.world.user("principal_a"))
    events = audit_events_for(actor=principal)
    missing = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() + 1  # type: ignore[operator]
    for event_id in [matrix.objects["@school_b"].pk, missing]:
        with pytest.raises(NotFoundOrNoAccess, match="見つかりません"):
            scope.get_in_scope(events, pk=event_id)


# --- grants that change --------------------------------------------------------------------------------------


def test_a_staff_assignment_that_has_ended_grants_nothing(matrix: Matrix) -> None:
    w = matrix.world
    teacher = w.user("teacher_a")
    StaffAssignment.objects.filter(user=teacher).update(end_date=datetime.date(2020, 3, 31))
    actor = get_actor(teacher)
    assert actor.grants == ()
    assert not scope.students_for(actor).exists()
    assert not scope.schools_for(actor).exists()


def test_a_staff_assignment_that_has_not_started_grants_nothing_yet(matrix: Matrix) -> None:
    teacher = matrix.world.user("teacher_a")
    StaffAssignment.objects.filter(user=teacher).update(start_date=timezone.localdate() + datetime.timedelta(30))
    assert not scope.students_for(get_actor(teacher)).exists()


def test_a_guardian_no_longer_reaches_a_child_who_has_left(matrix: Matrix) -> None:
    w = matrix.world
    Student.objects.filter(pk=w.students["a1_first"].pk).update(is_active=False)
    assert not scope.students_for(get_actor(w.user("guardian_a"))).exists()


def test_a_person_with_two_roles_reaches_the_union_and_no_more(matrix: Matrix) -> None:
    w = matrix.world
    teacher = w.user("teacher_a")
    StaffAssignment.objects.create(user=teacher, role=Role.HOMEROOM_TEACHER, school=w.school_b,
                                   homeroom_class=w.class_b1)
    actor = get_actor(teacher)
    assert {s.pk for s in scope.students_for(actor)} == {
        w.students[n].pk for n in ["a1_first", "a1_second", "a2_first", "b1_first"]
    }
    # Health notes only where they are homeroom teacher, not at the school where they teach a subject.
    assert set(scope.students_for(actor, roles.STUDENTS_VIEW_SENSITIVE)) == {w.students["b1_first"]}
    assert set(scope.classes_for(actor, roles.STUDENTS_VIEW_SENSITIVE)) == {w.class_b1}


def test_an_inactive_user_has_no_grants(matrix: Matrix) -> None:
    principal = matrix.world.user("principal_a")
    principal.is_active = False
    assert get_actor(principal).grants == ()
