"""Shapes of the JSON API. Inputs (…In) and outputs (…Out) are separate classes: what a client may send is
never what the server shows, so adding an output field can never make it writable.

Field descriptions are Japanese (the API's users are Japanese schools and boards); names are English.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any, Literal

from ninja import Field, Schema
from pydantic import ConfigDict

# --- query parameters ---------------------------------------------------------------------------


class PageIn(Schema):
    """limit/offset with bounds, so a huge offset is a 422 and not a database error."""

    limit: int = Field(50, ge=1, le=200, description="1ページの件数（1〜200）")
    offset: int = Field(0, ge=0, le=1_000_000, description="先頭から飛ばす件数")


class YearIn(Schema):
    year: int | None = Field(None, ge=2000, le=2200, description="年度（西暦。省略時は今年度）")


class AuditFilterIn(Schema):
    # Control characters are refused here: PostgreSQL rejects NUL in a text parameter with an error, not a miss.
    object: str = Field(
        "", max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$", description="対象の ID（児童生徒の ID など）で絞り込む"
    )


# --- errors ---------------------------------------------------------------------------------------


class ErrorOut(Schema):
    detail: str = Field(..., description="利用者に見せられる日本語のメッセージ")


class ValidationIssueOut(Schema):
    loc: list[str | int] = Field(..., description="問題の場所（例：body, data, family_name_kana）")
    msg: str = Field(..., description="日本語のメッセージ。直し方を含みます")
    type: str = Field(..., description="機械向けの理由コード")


class ValidationErrorOut(Schema):
    detail: list[ValidationIssueOut]


# --- who am I -------------------------------------------------------------------------------------


class GrantOut(Schema):
    role: str = Field(..., description="役割コード（principal, homeroom_teacher など）")
    role_label: str = Field(..., description="役割の名称（校長、学級担任 など）")
    org_code: str = Field(..., description="所属の学校コード・教育委員会コード・都道府県コード（全国は空）")
    org_label: str = Field(..., description="所属の名称")
    school_id: int | None = None
    board_id: int | None = None
    class_id: int | None = Field(None, description="学級担任の担当学級")


class MeOut(Schema):
    username: str
    display_name: str
    kind: str = Field(..., description="staff（教職員・行政）または guardian（保護者）")
    roles: list[GrantOut]


# --- directory ------------------------------------------------------------------------------------


class SchoolOut(Schema):
    id: int
    code: str = Field(..., description="学校コード（13桁）")
    name: str
    school_type: str = Field(..., description="学校種コード（B1 小学校、C1 中学校 など）")
    board_id: int
    board_code: str = Field(..., description="設置者の教育委員会コード（6桁）")
    prefecture_code: str
    is_active: bool


class SchoolPageOut(Schema):
    items: list[SchoolOut]
    count: int = Field(..., description="条件に合う件数の合計")


class ClassOut(Schema):
    id: int
    school_id: int
    year: int = Field(..., description="年度（4月始まり、西暦）")
    grade_code: str = Field(..., description="学年コード（P1〜P6, J1〜J3 など）")
    name: str
    label: str = Field(..., description="表示名（例：小学1年 1組）")
    kind: str = Field(..., description="regular（通常の学級）または special_needs（特別支援学級）")


# --- pupils ---------------------------------------------------------------------------------------


class StudentRowOut(Schema):
    id: uuid.UUID
    shusseki_no: int | None = Field(None, description="出席番号")
    class_label: str
    family_name: str = Field(..., description="姓（登録どおり。正規化していません）")
    given_name: str
    family_name_kana: str = Field(..., description="姓のふりがな（カタカナ）")
    given_name_kana: str
    sex: str = Field(..., description="male / female / unspecified")
    sex_label: str
    needs_review: bool = Field(..., description="外字（私用領域の文字）を含み、確認が必要")


class StudentListOut(Schema):
    items: list[StudentRowOut]
    count: int


class MembershipOut(Schema):
    class_id: int
    class_label: str
    year: int
    shusseki_no: int


class GuardianContactOut(Schema):
    relationship: str = Field(..., description="続柄")
    priority: int = Field(..., description="連絡順位")
    name: str
    phone: str
    email: str


class StudentOut(Schema):
    id: uuid.UUID
    school_id: int
    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    sex: str
    sex_label: str
    birth_date: datetime.date | None
    address: str
    needs_review: bool
    is_active: bool
    memberships: list[MembershipOut]
    health_note: str | None = Field(
        None, description="健康上の配慮（要配慮個人情報）。閲覧できない利用者には null"
    )
    guardians: list[GuardianContactOut] | None = Field(
        None, description="保護者の連絡先。閲覧できない利用者には null"
    )
    can_edit: bool = Field(..., description="この利用者が PATCH で変更できるか")


class StudentPatchIn(Schema):
    """Only the fields sent change. Names are stored exactly as sent; kana may be hiragana or katakana."""

    model_config = ConfigDict(extra="forbid")

    # A field left out stays as it is, so each defaults to None; null itself is refused (422) except for
    # birth_date, where it clears the date. The ignores are for that None default on a non-optional type.
    family_name: str = Field(None, min_length=1, max_length=100, description="姓")  # type: ignore[assignment]
    given_name: str = Field(None, min_length=1, max_length=100, description="名")  # type: ignore[assignment]
    family_name_kana: str = Field(None, min_length=1, max_length=100)  # type: ignore[assignment]
    given_name_kana: str = Field(None, min_length=1, max_length=100)  # type: ignore[assignment]
    sex: Literal["male", "female", "unspecified"] = Field(None)  # type: ignore[arg-type]
    birth_date: datetime.date | None = Field(None, description="生年月日（YYYY-MM-DD）。null で消去")
    address: str = Field(None, max_length=200)  # type: ignore[assignment]
    health_note: str = Field(  # type: ignore[assignment]
        None, max_length=2000, description="健康上の配慮。閲覧を許された利用者だけが変更できます"
    )

    def sent_fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


# --- audit ----------------------------------------------------------------------------------------


class AuditEventOut(Schema):
    id: int
    occurred_at: datetime.datetime
    actor_username: str
    actor_role: str
    actor_org: str
    action: str
    action_label: str
    object_type: str
    object_id: str
    fields: list[str]
    school_id: int | None
    board_id: int | None
    request_id: str
    client_ip: str | None
    channel: str


class AuditEventPageOut(Schema):
    items: list[AuditEventOut]
    count: int
