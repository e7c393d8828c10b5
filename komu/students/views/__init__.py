"""Pupil screens, by sub-domain: the registry (名簿, record, edit and its sections), class placement (学級編制) and
the year roll-over (年次更新). urls.py names every view through this package."""

from komu.students.views.placement import placement, placement_auto, renumber_class
from komu.students.views.registry import children, student_detail, student_edit, student_list
from komu.students.views.rollover import numbering_rule, rollover

__all__ = [
    "children", "numbering_rule", "placement", "placement_auto", "renumber_class", "rollover", "student_detail",
    "student_edit", "student_list",
]
