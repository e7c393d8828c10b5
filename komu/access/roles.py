"""Named capabilities per role. Views declare the capability they need; services check it again.

Changing a role's powers means changing this table and the permission-matrix test (access/tests) together.
"""

from __future__ import annotations

from komu.directory.models import Role

# Capability names are namespaced like audit action codes.
DIRECTORY_VIEW = "directory.view"
DIRECTORY_MANAGE = "directory.manage"
DIRECTORY_BULK_LOAD = "directory.bulk_load"
STAFF_MANAGE = "staff.manage"
STUDENTS_VIEW = "students.view"
STUDENTS_VIEW_SENSITIVE = "students.view_sensitive"
STUDENTS_EDIT = "students.edit"
GUARDIANS_VIEW_CONTACT = "guardians.view_contact"
AUDIT_VIEW = "audit.view"
STATS_VIEW = "stats.view"
SYSTEM_OPERATE = "system.operate"

CAPABILITIES: dict[str, frozenset[str]] = {
    # Runs the system; no personal data by default (domain.md §6: the curious insider).
    Role.OPERATOR: frozenset({DIRECTORY_VIEW, DIRECTORY_MANAGE, DIRECTORY_BULK_LOAD, STAFF_MANAGE, AUDIT_VIEW,
                              SYSTEM_OPERATE}),
    # Aggregates only.
    Role.NATIONAL_ANALYST: frozenset({DIRECTORY_VIEW, STATS_VIEW}),
    Role.PREFECTURAL_ANALYST: frozenset({DIRECTORY_VIEW, STATS_VIEW}),
    # Boards keep the 学齢簿, so they see their schools' pupils; health notes stay with the school.
    Role.BOARD_OFFICER: frozenset({DIRECTORY_VIEW, DIRECTORY_MANAGE, STAFF_MANAGE, STUDENTS_VIEW, STUDENTS_EDIT,
                                   GUARDIANS_VIEW_CONTACT, AUDIT_VIEW, STATS_VIEW}),
    Role.SCHOOL_ADMIN: frozenset({DIRECTORY_VIEW, DIRECTORY_MANAGE, STAFF_MANAGE, STUDENTS_VIEW, STUDENTS_EDIT,
                                  GUARDIANS_VIEW_CONTACT}),
    Role.PRINCIPAL: frozenset({DIRECTORY_VIEW, DIRECTORY_MANAGE, STAFF_MANAGE, STUDENTS_VIEW, STUDENTS_VIEW_SENSITIVE,
                               STUDENTS_EDIT, GUARDIANS_VIEW_CONTACT, AUDIT_VIEW, STATS_VIEW}),
    Role.VICE_PRINCIPAL: frozenset({DIRECTORY_VIEW, DIRECTORY_MANAGE, STAFF_MANAGE, STUDENTS_VIEW,
                                    STUDENTS_VIEW_SENSITIVE, STUDENTS_EDIT, GUARDIANS_VIEW_CONTACT, AUDIT_VIEW,
                                    STATS_VIEW}),
    Role.HOMEROOM_TEACHER: frozenset({DIRECTORY_VIEW, STUDENTS_VIEW, STUDENTS_VIEW_SENSITIVE,
                                      GUARDIANS_VIEW_CONTACT}),
    Role.TEACHER: frozenset({DIRECTORY_VIEW, STUDENTS_VIEW}),
    Role.SCHOOL_NURSE: frozenset({DIRECTORY_VIEW, STUDENTS_VIEW, STUDENTS_VIEW_SENSITIVE, GUARDIANS_VIEW_CONTACT}),
    Role.GUARDIAN: frozenset({STUDENTS_VIEW, STUDENTS_VIEW_SENSITIVE, GUARDIANS_VIEW_CONTACT}),
}

# The order in which a person with several roles is shown (and audited) by default.
ROLE_PRECEDENCE = [
    Role.OPERATOR, Role.NATIONAL_ANALYST, Role.PREFECTURAL_ANALYST, Role.BOARD_OFFICER, Role.PRINCIPAL,
    Role.VICE_PRINCIPAL, Role.SCHOOL_ADMIN, Role.HOMEROOM_TEACHER, Role.SCHOOL_NURSE, Role.TEACHER, Role.GUARDIAN,
]
