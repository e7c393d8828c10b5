"""The OneRoster 1.2 CSV binding (rostering files) with the Japan Profile's additions and rules.

Pure data: no ORM. The exporter writes exactly these headers in this order, the importer checks them, and the
REST binding names the same fields. Sources: domain.md §8 (1EdTech OneRoster 1.2 CSV binding; 日本IMS協会
OneRoster Japan Profile 国内版 第2版, 2022-12). Items the domain notes leave open (the manifest's version string,
the meaning of metadata.jp.PublicFlg) are module constants, so a correction is data, not code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

MANIFEST_VERSION: Final = "1.0"
ONEROSTER_VERSION: Final = "1.2"
# Accepted on import: 1EdTech lists the Japan Profile with "1.2_JP" in some material (unconfirmed).
ACCEPTED_ONEROSTER_VERSIONS: Final = frozenset({"1.2", "1.2_JP"})
SYSTEM_NAME: Final = "Komu"
SYSTEM_CODE: Final = "komu"

STATUSES: Final = ("active", "tobedeleted")
BOOLEANS: Final = ("true", "false")
# MEXT grade codes of the Japan Profile: 小 P1–P6, 中 J1–J3, 高 H1–H3, 特別支援学校幼稚部等 E1–E3.
GRADES: Final = tuple([f"P{n}" for n in range(1, 7)] + [f"J{n}" for n in range(1, 4)]
                      + [f"H{n}" for n in range(1, 4)] + [f"E{n}" for n in range(1, 4)])
ORG_TYPES: Final = ("district", "school")  # the Japan Profile uses these two of 1.2's six
SESSION_TYPES: Final = ("gradingPeriod", "semester", "schoolYear", "term")
CLASS_TYPES: Final = ("homeroom", "scheduled")
ROLE_TYPES: Final = ("primary", "secondary")
ROLES: Final = ("aide", "counselor", "districtAdministrator", "guardian", "parent", "principal", "proctor",
                "relative", "siteAdministrator", "student", "systemAdministrator", "teacher")
ENROLLMENT_ROLES: Final = ("administrator", "proctor", "student", "teacher")
SEXES: Final = ("male", "female", "other", "unspecified")

COMMON: Final = ("sourcedId", "status", "dateLastModified")


@dataclass(frozen=True)
class FileSpec:
    """One CSV file: its columns in order, which must have a value, enumerations and references."""

    name: str
    columns: tuple[str, ...]
    required: frozenset[str]
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # column → file whose sourcedId it names (lists: comma-separated sourcedIds)
    refs: dict[str, str] = field(default_factory=dict)
    list_refs: dict[str, str] = field(default_factory=dict)
    dates: tuple[str, ...] = ()
    grade_columns: tuple[str, ...] = ()

    @property
    def filename(self) -> str:
        return f"{self.name}.csv"


ACADEMIC_SESSIONS = FileSpec(
    "academicSessions",
    (*COMMON, "title", "type", "startDate", "endDate", "parentSourcedId", "schoolYear"),
    frozenset({"sourcedId", "title", "type", "startDate", "endDate", "schoolYear"}),
    enums={"type": SESSION_TYPES},
    refs={"parentSourcedId": "academicSessions"},
    dates=("startDate", "endDate"),
)
ORGS = FileSpec(
    "orgs",
    (*COMMON, "name", "type", "identifier", "parentSourcedId"),
    frozenset({"sourcedId", "name", "type"}),
    enums={"type": ORG_TYPES},
    refs={"parentSourcedId": "orgs"},
)
COURSES = FileSpec(
    "courses",
    (*COMMON, "schoolYearSourcedId", "title", "courseCode", "grades", "orgSourcedId", "subjects", "subjectCodes"),
    frozenset({"sourcedId", "title", "orgSourcedId"}),
    refs={"schoolYearSourcedId": "academicSessions", "orgSourcedId": "orgs"},
    grade_columns=("grades",),
)
# metadata.komu.specialNeedsCategory is Komu's extension (1.2 allows metadata.* columns after the defined ones):
# the kind of 特別支援学級, which the Japan Profile's boolean cannot carry and a round trip needs.
CLASSES = FileSpec(
    "classes",
    (*COMMON, "title", "grades", "courseSourcedId", "classCode", "classType", "location", "schoolSourcedId",
     "termSourcedIds", "subjects", "subjectCodes", "periods", "metadata.jp.specialNeeds",
     "metadata.komu.specialNeedsCategory"),
    frozenset({"sourcedId", "title", "courseSourcedId", "classType", "schoolSourcedId", "termSourcedIds"}),
    enums={"classType": CLASS_TYPES, "metadata.jp.specialNeeds": BOOLEANS},
    refs={"courseSourcedId": "courses", "schoolSourcedId": "orgs"},
    list_refs={"termSourcedIds": "academicSessions"},
    grade_columns=("grades",),
)
USERS = FileSpec(
    "users",
    (*COMMON, "enabledUser", "username", "userIds", "givenName", "familyName", "middleName", "identifier",
     "email", "sms", "phone", "agentSourcedIds", "grades", "password", "userMasterIdentifier",
     "resourceSourcedIds", "preferredGivenName", "preferredMiddleName", "preferredFamilyName",
     "primaryOrgSourcedId", "pronouns", "metadata.jp.kanaGivenName", "metadata.jp.kanaFamilyName",
     "metadata.jp.kanaMiddleName", "metadata.jp.homeClass"),
    # The Japan Profile requires the kana reading of the names.
    frozenset({"sourcedId", "enabledUser", "username", "givenName", "familyName", "metadata.jp.kanaGivenName",
               "metadata.jp.kanaFamilyName"}),
    enums={"enabledUser": BOOLEANS},
    refs={"primaryOrgSourcedId": "orgs", "metadata.jp.homeClass": "classes"},
    list_refs={"agentSourcedIds": "users"},
    grade_columns=("grades",),
)
ROLES_FILE = FileSpec(
    "roles",
    (*COMMON, "userSourcedId", "roleType", "role", "beginDate", "endDate", "orgSourcedId", "userProfileSourcedId"),
    frozenset({"sourcedId", "userSourcedId", "roleType", "role", "orgSourcedId"}),
    enums={"roleType": ROLE_TYPES, "role": ROLES},
    refs={"userSourcedId": "users", "orgSourcedId": "orgs"},
    dates=("beginDate", "endDate"),
)
ENROLLMENTS = FileSpec(
    "enrollments",
    (*COMMON, "classSourcedId", "schoolSourcedId", "userSourcedId", "role", "primary", "beginDate", "endDate",
     "metadata.jp.ShussekiNo", "metadata.jp.PublicFlg"),
    frozenset({"sourcedId", "classSourcedId", "schoolSourcedId", "userSourcedId", "role"}),
    enums={"role": ENROLLMENT_ROLES, "primary": BOOLEANS, "metadata.jp.PublicFlg": BOOLEANS},
    refs={"classSourcedId": "classes", "schoolSourcedId": "orgs", "userSourcedId": "users"},
    dates=("beginDate", "endDate"),
)
DEMOGRAPHICS = FileSpec(
    "demographics",
    (*COMMON, "birthDate", "sex", "americanIndianOrAlaskaNative", "asian", "blackOrAfricanAmerican",
     "nativeHawaiianOrOtherPacificIslander", "white", "demographicRaceTwoOrMoreRaces", "hispanicOrLatinoEthnicity",
     "countryOfBirthCode", "stateOfBirthAbbreviation", "cityOfBirth", "publicSchoolResidenceStatus"),
    frozenset({"sourcedId"}),
    enums={"sex": SEXES, **{name: BOOLEANS for name in (
        "americanIndianOrAlaskaNative", "asian", "blackOrAfricanAmerican", "nativeHawaiianOrOtherPacificIslander",
        "white", "demographicRaceTwoOrMoreRaces", "hispanicOrLatinoEthnicity")}},
    refs={"sourcedId": "users"},
    dates=("birthDate",),
)

# In dependency order: a file only refers to files before it (except users → users for agents).
FILES: Final = (ACADEMIC_SESSIONS, ORGS, COURSES, CLASSES, USERS, ROLES_FILE, ENROLLMENTS, DEMOGRAPHICS)
FILES_BY_NAME: Final = {spec.name: spec for spec in FILES}

# Every file the 1.2 manifest names; the ones Komu does not handle are always "absent".
MANIFEST_FILES: Final = (
    "academicSessions", "categories", "classResources", "classes", "courseResources", "courses", "demographics",
    "enrollments", "lineItemLearningObjectiveIds", "lineItems", "lineItemScoreScales", "orgs", "resources",
    "resultLearningObjectiveIds", "results", "resultScoreScales", "roles", "scoreScales", "userProfiles",
    "userResources", "users",
)
PROCESSING_MODES: Final = ("bulk", "delta", "absent")
