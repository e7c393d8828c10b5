"""Writes to the directory. Every service is keyword-only, atomic, validated with full_clean() and audited.

One module per part of the directory; import from here.
"""

from komu.directory.services.bulk_load import LoadKind, LoadReport, bulk_load, bulk_load_schema
from komu.directory.services.organisations import (
    BoardInput,
    SchoolInput,
    board_create,
    board_update,
    school_create,
    school_update,
)
from komu.directory.services.school_years import (
    ClassInput,
    TermInput,
    homeroom_class_create,
    homeroom_class_update,
    school_year_create,
    terms_set,
)
from komu.directory.services.staff import StaffInput, staff_assignment_create, staff_assignment_end

__all__ = [
    "BoardInput",
    "ClassInput",
    "LoadKind",
    "LoadReport",
    "SchoolInput",
    "StaffInput",
    "TermInput",
    "board_create",
    "board_update",
    "bulk_load",
    "bulk_load_schema",
    "homeroom_class_create",
    "homeroom_class_update",
    "school_create",
    "school_update",
    "school_year_create",
    "staff_assignment_create",
    "staff_assignment_end",
    "terms_set",
]
