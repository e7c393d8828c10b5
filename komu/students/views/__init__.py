"""Pupil screens, by sub-domain: the registry (名簿, record, edit and its sections), class placement (学級編制) and
the year roll-over (年次更新). urls.py names every view through this package."""

from komu.students.views.placement import placement, placement_auto, renumber_class
from komu.students.views.records import (
    emergency_contacts_edit,
    enrollment_event_new,
    guardian_edit,
    guardian_unlink,
    special_needs_edit,
)
from komu.students.views.registry import children, student_detail, student_edit, student_list
from komu.students.views.rollover import numbering_rule, rollover

__all__ = [
    "children",
    "emergency_contacts_edit",
    "enrollment_event_new",
    "guardian_edit",
    "guardian_unlink",
    "numbering_rule",
    "placement",
    "placement_auto",
    "renumber_class",
    "rollover",
    "special_needs_edit",
    "student_detail",
    "student_edit",
    "student_list",
]
