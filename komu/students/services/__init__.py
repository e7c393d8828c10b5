"""Writes to pupils and guardians, by sub-domain. Each is atomic, validated, and audited in the same transaction.

students.py (the pupil's record), guardians.py (保護者 and their link to a pupil), contacts.py (緊急連絡先),
enrollment.py (学籍の異動), numbering.py (class membership, 出席番号 and the school's numbering rule),
special_needs.py (特別支援教育 placement), placement.py (学級編制), entrants.py (accepting a 入学者名簿's children),
rollover.py (年次更新); _common.py holds the scope checks and validation helpers they share.

Every public name is re-exported here, so callers import from ``komu.students.services``. A test that patches a
helper patches it in the module that calls it (e.g. ``komu.students.services.placement._renumber_class``)."""

from komu.students.services.contacts import EmergencyContactInput, emergency_contact_set
from komu.students.services.enrollment import enrollment_event_record
from komu.students.services.entrants import (
    EntrantAdmission,
    entrant_admission_cancel,
    entrant_admit,
    entrant_special_needs_class_set,
)
from komu.students.services.guardians import (
    GuardianInput,
    guardian_add,
    guardian_create_for,
    guardian_unlink,
    guardian_update,
    guardian_update_for,
)
from komu.students.services.numbering import (
    kana_order_key,
    membership_assign,
    numbering_rule_set,
    shusseki_no_renumber,
)
from komu.students.services.placement import (
    PlacementMove,
    PlacementProposal,
    PlacementResult,
    placement_apply_proposal,
    placement_assign,
    placement_auto_propose,
)
from komu.students.services.rollover import (
    ROLLOVER_APPLIED,
    RolloverApplied,
    RolloverClassPlan,
    RolloverGradePlan,
    RolloverOptions,
    RolloverPlan,
    RolloverPupil,
    RolloverResult,
    rollover_apply,
    rollover_preview,
)
from komu.students.services.special_needs import student_special_needs_set
from komu.students.services.students import (
    PERSONAL_STUDENT_FIELDS,
    StudentInput,
    student_create,
    student_update,
)

__all__ = [
    "PERSONAL_STUDENT_FIELDS",
    "ROLLOVER_APPLIED",
    "EmergencyContactInput",
    "EntrantAdmission",
    "GuardianInput",
    "PlacementMove",
    "PlacementProposal",
    "PlacementResult",
    "RolloverApplied",
    "RolloverClassPlan",
    "RolloverGradePlan",
    "RolloverOptions",
    "RolloverPlan",
    "RolloverPupil",
    "RolloverResult",
    "StudentInput",
    "emergency_contact_set",
    "enrollment_event_record",
    "entrant_admission_cancel",
    "entrant_admit",
    "entrant_special_needs_class_set",
    "guardian_add",
    "guardian_create_for",
    "guardian_unlink",
    "guardian_update",
    "guardian_update_for",
    "kana_order_key",
    "membership_assign",
    "numbering_rule_set",
    "placement_apply_proposal",
    "placement_assign",
    "placement_auto_propose",
    "rollover_apply",
    "rollover_preview",
    "shusseki_no_renumber",
    "student_create",
    "student_special_needs_set",
    "student_update",
]
