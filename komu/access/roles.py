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
# 出欠: recording marks (homeroom teacher for their class; principal, vice-principal and the school office for
# any class of their school) and reading registers and the school overview. The school nurse reads them too:
# she follows infectious-disease 出席停止 for the school (学校保健安全法 §19–20). Subject teachers do not.
ATTENDANCE_RECORD = "attendance.record"
ATTENDANCE_VIEW = "attendance.view"
# 保護者からの欠席連絡: a guardian reports 欠席・遅刻・早退 for their own children (MEXT 2文科初第1026号).
ATTENDANCE_REPORT = "attendance.report"
# 決裁 (komu.approvals): every school staff member submits documents and can act as a named delegate (代決);
# principal and vice-principal approve as their role, see every request of their school and configure the
# chains and delegations. Who approves a given step is decided by the chain's role, not by this capability.
APPROVALS_USE = "approvals.use"
APPROVALS_APPROVE = "approvals.approve"
APPROVALS_CONFIGURE = "approvals.configure"
# 年度末確定: the principal locks the year's registers for good (the electronic record is the original).
ATTENDANCE_CLOSE_YEAR = "attendance.close_year"
SYSTEM_OPERATE = "system.operate"
# 学齢簿と入学者名簿 (komu.rosters): the municipal board keeps the 学齢簿 of next year's entrants, designates each
# child's school and sends each school its roster; the school office, vice-principal and principal receive and
# accept it, place the entrants into classes (学級編制) and run the year roll-over (年次更新).
GAKUREIBO_MANAGE = "rosters.gakureibo"
ROSTERS_RECEIVE = "rosters.receive"
CLASS_PLACEMENT = "students.placement"
YEAR_ROLLOVER = "students.rollover"
# 転学: the old school sends the package, the new school (or its board, when the school is not known) accepts.
TRANSFERS_MANAGE = "rosters.transfers"
# 名簿の出力 (CSV/XLSX of class lists and registries): a disclosure, asked for a reason and audited.
STUDENTS_EXPORT = "students.export"
# 照会・回答 (komu.surveys): the board officer builds surveys and reads the answers; the school office,
# vice-principal and principal answer for their school (the answer then goes through the school's 決裁).
SURVEYS_BUILD = "surveys.build"
SURVEYS_ANSWER = "surveys.answer"
# OneRoster 1.2 Japan Profile (komu.oneroster): the roster export to learning portals is a disclosure like
# STUDENTS_EXPORT (reason asked, persons audited); importing a roster bundle writes pupils and classes; the
# board registers the learning portals' API clients for its schools. Granted below the table.
ONEROSTER_EXPORT = "oneroster.export"
ONEROSTER_IMPORT = "oneroster.import"
ONEROSTER_CLIENTS = "oneroster.clients"

CAPABILITIES: dict[str, frozenset[str]] = {
    # Runs the system; no personal data by default (domain.md §6: the curious insider).
    Role.OPERATOR: frozenset({DIRECTORY_VIEW, DIRECTORY_MANAGE, DIRECTORY_BULK_LOAD, STAFF_MANAGE, AUDIT_VIEW,
                              SYSTEM_OPERATE}),
    # Aggregates only.
    Role.NATIONAL_ANALYST: frozenset({DIRECTORY_VIEW, STATS_VIEW}),
    Role.PREFECTURAL_ANALYST: frozenset({DIRECTORY_VIEW, STATS_VIEW}),
    # Boards keep the 学齢簿, so they see their schools' pupils; health notes stay with the school.
    Role.BOARD_OFFICER: frozenset({DIRECTORY_VIEW, DIRECTORY_MANAGE, STAFF_MANAGE, STUDENTS_VIEW, STUDENTS_EDIT,
                                   GUARDIANS_VIEW_CONTACT, AUDIT_VIEW, STATS_VIEW, GAKUREIBO_MANAGE,
                                   TRANSFERS_MANAGE, STUDENTS_EXPORT, SURVEYS_BUILD}),
    Role.SCHOOL_ADMIN: frozenset({DIRECTORY_VIEW, DIRECTORY_MANAGE, STAFF_MANAGE, STUDENTS_VIEW, STUDENTS_EDIT,
                                  GUARDIANS_VIEW_CONTACT, ATTENDANCE_RECORD, ATTENDANCE_VIEW, APPROVALS_USE,
                                  ROSTERS_RECEIVE, CLASS_PLACEMENT, YEAR_ROLLOVER, TRANSFERS_MANAGE,
                                  STUDENTS_EXPORT, SURVEYS_ANSWER}),
    Role.PRINCIPAL: frozenset({DIRECTORY_VIEW, DIRECTORY_MANAGE, STAFF_MANAGE, STUDENTS_VIEW, STUDENTS_VIEW_SENSITIVE,
                               STUDENTS_EDIT, GUARDIANS_VIEW_CONTACT, AUDIT_VIEW, STATS_VIEW, ATTENDANCE_RECORD,
                               ATTENDANCE_VIEW, APPROVALS_USE, APPROVALS_APPROVE, APPROVALS_CONFIGURE,
                               ATTENDANCE_CLOSE_YEAR, ROSTERS_RECEIVE, CLASS_PLACEMENT, YEAR_ROLLOVER,
                               TRANSFERS_MANAGE, STUDENTS_EXPORT, SURVEYS_ANSWER}),
    Role.VICE_PRINCIPAL: frozenset({DIRECTORY_VIEW, DIRECTORY_MANAGE, STAFF_MANAGE, STUDENTS_VIEW,
                                    STUDENTS_VIEW_SENSITIVE, STUDENTS_EDIT, GUARDIANS_VIEW_CONTACT, AUDIT_VIEW,
                                    STATS_VIEW, ATTENDANCE_RECORD, ATTENDANCE_VIEW, APPROVALS_USE, APPROVALS_APPROVE,
                                    APPROVALS_CONFIGURE, ROSTERS_RECEIVE, CLASS_PLACEMENT, YEAR_ROLLOVER,
                                    TRANSFERS_MANAGE, STUDENTS_EXPORT, SURVEYS_ANSWER}),
    Role.HOMEROOM_TEACHER: frozenset({DIRECTORY_VIEW, STUDENTS_VIEW, STUDENTS_VIEW_SENSITIVE,
                                      GUARDIANS_VIEW_CONTACT, ATTENDANCE_RECORD, ATTENDANCE_VIEW, APPROVALS_USE,
                                      STUDENTS_EXPORT}),
    Role.TEACHER: frozenset({DIRECTORY_VIEW, STUDENTS_VIEW, APPROVALS_USE}),
    Role.SCHOOL_NURSE: frozenset({DIRECTORY_VIEW, STUDENTS_VIEW, STUDENTS_VIEW_SENSITIVE, GUARDIANS_VIEW_CONTACT,
                                  ATTENDANCE_VIEW, APPROVALS_USE}),
    Role.GUARDIAN: frozenset({STUDENTS_VIEW, STUDENTS_VIEW_SENSITIVE, GUARDIANS_VIEW_CONTACT, ATTENDANCE_REPORT}),
}

_ONEROSTER_GRANTS = {
    Role.BOARD_OFFICER: {ONEROSTER_EXPORT, ONEROSTER_IMPORT, ONEROSTER_CLIENTS},
    Role.PRINCIPAL: {ONEROSTER_EXPORT},
    Role.VICE_PRINCIPAL: {ONEROSTER_EXPORT},
    Role.SCHOOL_ADMIN: {ONEROSTER_EXPORT},
}
for _role, _granted in _ONEROSTER_GRANTS.items():
    CAPABILITIES[_role] = CAPABILITIES[_role] | _granted

# The order in which a person with several roles is shown (and audited) by default.
ROLE_PRECEDENCE = [
    Role.OPERATOR, Role.NATIONAL_ANALYST, Role.PREFECTURAL_ANALYST, Role.BOARD_OFFICER, Role.PRINCIPAL,
    Role.VICE_PRINCIPAL, Role.SCHOOL_ADMIN, Role.HOMEROOM_TEACHER, Role.SCHOOL_NURSE, Role.TEACHER, Role.GUARDIAN,
]

# 通知・お便り (komu.notices): boards, principals, vice-principals and the school office send notices (boards to
# their schools and the boards below, schools to their board) and record what still goes out by fax or paper;
# every staff member of a school (and a board officer) reads the notices addressed to it; 受領 is one click by
# the principal, vice-principal, school office or board officer. お便り to guardians: principal,
# vice-principal and school office for the whole school, a homeroom teacher for their own class, a board officer
# to the guardians of its schools (one letter per school); guardians read and reply for their children.
NOTICES_SEND = "notices.send"
NOTICES_RECEIVE = "notices.receive"
NOTICES_ACKNOWLEDGE = "notices.acknowledge"
LETTERS_SEND = "notices.letters_send"
LETTERS_READ = "notices.letters_read"
_NOTICES_GRANTS = {
    Role.BOARD_OFFICER: {NOTICES_SEND, NOTICES_RECEIVE, NOTICES_ACKNOWLEDGE, LETTERS_SEND},
    Role.PRINCIPAL: {NOTICES_SEND, NOTICES_RECEIVE, NOTICES_ACKNOWLEDGE, LETTERS_SEND},
    Role.VICE_PRINCIPAL: {NOTICES_SEND, NOTICES_RECEIVE, NOTICES_ACKNOWLEDGE, LETTERS_SEND},
    Role.SCHOOL_ADMIN: {NOTICES_SEND, NOTICES_RECEIVE, NOTICES_ACKNOWLEDGE, LETTERS_SEND},
    Role.HOMEROOM_TEACHER: {NOTICES_RECEIVE, LETTERS_SEND},
    Role.TEACHER: {NOTICES_RECEIVE},
    Role.SCHOOL_NURSE: {NOTICES_RECEIVE},
    Role.GUARDIAN: {LETTERS_READ},
}
for _role, _granted in _NOTICES_GRANTS.items():
    CAPABILITIES[_role] = CAPABILITIES[_role] | _granted

# 校務DXの進捗 (komu.progress): aggregates only (counts per school, board, prefecture, nation). Analysts see the
# rollups of their reach, boards their schools, principals and vice-principals their school; principals,
# vice-principals and board officers answer the yearly 校務DX checklist; the operator registers the other
# deployments allowed to push their snapshots (federation).
PROGRESS_VIEW = "progress.view"
CHECKLIST_ANSWER = "progress.checklist"
PROGRESS_FEDERATION = "progress.federation"
_PROGRESS_GRANTS = {
    Role.NATIONAL_ANALYST: {PROGRESS_VIEW},
    Role.PREFECTURAL_ANALYST: {PROGRESS_VIEW},
    Role.BOARD_OFFICER: {PROGRESS_VIEW, CHECKLIST_ANSWER},
    Role.PRINCIPAL: {PROGRESS_VIEW, CHECKLIST_ANSWER},
    Role.VICE_PRINCIPAL: {PROGRESS_VIEW, CHECKLIST_ANSWER},
    Role.OPERATOR: {PROGRESS_FEDERATION},
}
for _role, _granted in _PROGRESS_GRANTS.items():
    CAPABILITIES[_role] = CAPABILITIES[_role] | _granted

# 漏えい等への対応 (komu.privacy): the principal (for their school) and the board officer (for the board's schools)
# record incidents, compute the affected persons, draft the PPC report and the guardians' letters, and force a
# password reset with session revocation for the staff of a school or a board. The vice-principal records and
# drafts too, but locking out a whole staff is the head's (or the board's) decision. The operator holds neither:
# no personal data, and the decision to lock out a school's staff belongs to the data controller.
PRIVACY_INCIDENTS = "privacy.incidents"
PRIVACY_FORCE_RESET = "privacy.force_reset"
_PRIVACY_GRANTS = {
    Role.BOARD_OFFICER: {PRIVACY_INCIDENTS, PRIVACY_FORCE_RESET},
    Role.PRINCIPAL: {PRIVACY_INCIDENTS, PRIVACY_FORCE_RESET},
    Role.VICE_PRINCIPAL: {PRIVACY_INCIDENTS},
}
for _role, _granted in _PRIVACY_GRANTS.items():
    CAPABILITIES[_role] = CAPABILITIES[_role] | _granted

# 校外活動 (komu.trips): a homeroom teacher sets up a trip for their class, the school office, vice-principal and
# principal for any class of the school; every staff member of a school can be named a chaperone and reads the
# participants' contacts during the window; the school nurse releases health notes for a trip; the principal and
# vice-principal revoke a chaperone's access (lost phone).
# 開示記録 (komu.disclosures): the principal and vice-principal keep the register of printed documents (returned,
# shredded, lost) and see which persons and fields a lost document held.
TRIPS_MANAGE = "trips.manage"
TRIPS_ACCOMPANY = "trips.accompany"
TRIPS_HEALTH_RELEASE = "trips.health_release"
TRIPS_REVOKE = "trips.revoke"
DISCLOSURES_MANAGE = "disclosures.manage"
_TRIPS_GRANTS = {
    Role.PRINCIPAL: {TRIPS_MANAGE, TRIPS_ACCOMPANY, TRIPS_REVOKE, DISCLOSURES_MANAGE},
    Role.VICE_PRINCIPAL: {TRIPS_MANAGE, TRIPS_ACCOMPANY, TRIPS_REVOKE, DISCLOSURES_MANAGE},
    Role.SCHOOL_ADMIN: {TRIPS_MANAGE, TRIPS_ACCOMPANY},
    Role.HOMEROOM_TEACHER: {TRIPS_MANAGE, TRIPS_ACCOMPANY},
    Role.TEACHER: {TRIPS_ACCOMPANY},
    Role.SCHOOL_NURSE: {TRIPS_ACCOMPANY, TRIPS_HEALTH_RELEASE},
}
for _role, _granted in _TRIPS_GRANTS.items():
    CAPABILITIES[_role] = CAPABILITIES[_role] | _granted
