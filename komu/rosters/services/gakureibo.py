"""学齢簿 by hand: a board officer adds or corrects a child, records 転出 / 就学猶予, and designates each child's
school (就学校指定, 学校教育法施行令 §5), one by one or in bulk — including 区域外就学 (a school of another board,
施行令 §9) and a 特別支援学級 placement.

Validation follows the file parser (komu.interop.gakureibo): kanji names exactly as entered (外字 flagged for
review), kana readings normalised, phones and postal codes normalised. A change to a child already on a sent
roster becomes an amendment to that roster (komu.rosters.services.rosters.amendments_for_entries) in the same
transaction.
"""

from __future__ import annotations

import datetime
import re
import unicodedata
import uuid
from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.audit.services import Scope, audit_record
from komu.core.codes import GRADES_BY_SCHOOL_TYPE
from komu.core.errors import NotFoundOrNoAccess, ValidationFailed
from komu.core.text import (
    TextError,
    check_name,
    normalize_digits,
    normalize_kana,
    normalize_phone,
    normalize_postal_code,
    reject_control_chars,
)
from komu.directory.models import Board, School
from komu.interop.gakureibo import entrant_birth_range
from komu.rosters.models import RECORD_KEYS, GakureiboEntry
from komu.rosters.records import RECORD_LABELS, content_digest, record_json
from komu.rosters.services.rosters import amendments_for_entries

# School types that have a first grade of elementary school (小学校, 義務教育学校, 特別支援学校 小学部).
ENTRANT_SCHOOL_TYPES = tuple(t for t, grades in GRADES_BY_SCHOOL_TYPE.items() if "P1" in grades)
ENTRANT_GRADE_CODE = "P1"

SEX_CHOICES = {"male": "男", "female": "女", "unspecified": "未設定"}

_PERSON_ID = re.compile(r"[0-9A-Za-z]{1,30}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_MAX_TEXT = 200
_MAX_NOTE = 1000
_MAX_RELATIONSHIP = 20
_MAX_REASON = 200


@dataclass
class EntrantInput:
    """What a board officer types for one child (strings as typed; dates parsed by the form)."""

    person_id: str
    family_name: str
    given_name: str
    family_name_kana: str = ""
    given_name_kana: str = ""
    sex: str = "unspecified"
    birth_date: datetime.date | None = None
    postal_code: str = ""
    address: str = ""
    guardian_id: str = ""
    guardian_family_name: str = ""
    guardian_given_name: str = ""
    guardian_family_name_kana: str = ""
    guardian_given_name_kana: str = ""
    guardian_relationship: str = ""
    guardian_phone: str = ""
    guardian_email: str = ""
    guardian_address: str = ""
    entry_date: datetime.date | None = None
    note: str = ""

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> EntrantInput:
        values: dict[str, Any] = {key: record.get(key, "") for key in RECORD_KEYS}
        for key in ("birth_date", "entry_date"):
            values[key] = datetime.date.fromisoformat(values[key]) if values[key] else None
        return cls(**values)


def _label(key: str) -> str:
    return _(RECORD_LABELS[key])


def clean_entrant(data: EntrantInput, *, fiscal_year: int) -> tuple[dict[str, str], bool, list[str]]:
    """(record, needs_review, warnings) or ValidationFailed with a Japanese message per field."""
    errors: dict[str, list[str]] = {}
    warnings: list[str] = []
    record: dict[str, str] = {}
    needs_review = False

    def fail(key: str, message: str) -> None:
        errors.setdefault(key, []).append(message)

    person_id = normalize_digits(data.person_id.strip()) if data.person_id.strip() else ""
    if not person_id:
        fail("person_id", _("個人番号を入力してください（教育委員会の宛名番号など）。"))
    elif not _PERSON_ID.fullmatch(person_id):
        fail("person_id", _("個人番号は30文字以内の英数字で入力してください。"))
    record["person_id"] = person_id

    for key, required in (("family_name", True), ("given_name", False), ("guardian_family_name", False),
                          ("guardian_given_name", False)):
        raw = getattr(data, key)
        if not raw.strip():
            if required:
                fail(key, _("%(label)sを入力してください。") % {"label": _label(key)})
            record[key] = ""
            continue
        try:
            checked = check_name(raw, field=_label(key))
        except TextError as exc:
            fail(key, str(exc))
            continue
        record[key] = checked.value
        needs_review = needs_review or checked.needs_review
        warnings.extend(checked.messages)

    for key in ("family_name_kana", "given_name_kana", "guardian_family_name_kana", "guardian_given_name_kana"):
        raw = getattr(data, key)
        try:
            record[key] = normalize_kana(raw, field=_label(key)) if raw.strip() else ""
        except TextError as exc:
            fail(key, str(exc))
    if not errors.get("family_name_kana") and not record.get("family_name_kana"):
        warnings.append(_("ふりがなが空欄です。出席番号の並び順や帳票に使うため、確認して入力してください。"))
        needs_review = True

    if data.sex not in SEX_CHOICES:
        fail("sex", _("性別は「男」「女」「未設定」から選んでください。"))
    record["sex"] = data.sex

    if data.birth_date is None:
        fail("birth_date", _("生年月日を入力してください（例: 2020-04-02）。"))
        record["birth_date"] = ""
    else:
        record["birth_date"] = data.birth_date.isoformat()
        low, high = entrant_birth_range(fiscal_year)
        if not low <= data.birth_date <= high:
            warnings.append(
                _("生年月日が%(year)d年度の新1年生の範囲（%(low)s〜%(high)s）にありません。就学猶予などの事情がないか"
                  "確認してください。") % {"year": fiscal_year, "low": low.isoformat(), "high": high.isoformat()}
            )
            needs_review = True

    try:
        record["postal_code"] = normalize_postal_code(data.postal_code) if data.postal_code.strip() else ""
    except TextError as exc:
        fail("postal_code", str(exc))
    try:
        record["guardian_phone"] = normalize_phone(data.guardian_phone) if data.guardian_phone.strip() else ""
    except TextError as exc:
        fail("guardian_phone", str(exc))
    email = unicodedata.normalize("NFKC", data.guardian_email).strip()
    if email and not _EMAIL.fullmatch(email):
        fail("guardian_email", _("メールアドレスの形式が正しくありません（例: name@example.jp）。"))
    record["guardian_email"] = email
    guardian_id = normalize_digits(data.guardian_id.strip()) if data.guardian_id.strip() else ""
    if guardian_id and not _PERSON_ID.fullmatch(guardian_id):
        fail("guardian_id", _("保護者の個人番号は30文字以内の英数字で入力してください。"))
    record["guardian_id"] = guardian_id

    for key, limit, allow in (("address", _MAX_TEXT, ""), ("guardian_address", _MAX_TEXT, ""),
                              ("guardian_relationship", _MAX_RELATIONSHIP, ""), ("note", _MAX_NOTE, "\r\n")):
        text = getattr(data, key).strip()
        try:
            reject_control_chars(text, _label(key), allow=allow)
        except TextError as exc:
            fail(key, str(exc))
            continue
        if len(text) > limit:
            fail(key, _("%(label)sは%(limit)d文字以内で入力してください。") % {"label": _label(key), "limit": limit})
        record[key] = text

    if data.entry_date is not None:
        record["entry_date"] = data.entry_date.isoformat()
        if not datetime.date(fiscal_year, 4, 1) <= data.entry_date <= datetime.date(fiscal_year + 1, 3, 31):
            fail("entry_date", _("入学予定日は%(year)d年度の中（%(year)d年4月1日〜%(next)d年3月31日）で入力してください。")
                 % {"year": fiscal_year, "next": fiscal_year + 1})
    else:
        record["entry_date"] = ""
    if errors:
        raise ValidationFailed(_("入力内容を確認してください。"), errors=errors)
    return {key: record.get(key, "") for key in RECORD_KEYS}, needs_review, warnings


def _flags(entry: GakureiboEntry) -> str:
    return (f"{entry.designated_school_id or ''}|{int(entry.out_of_district)}|{int(entry.special_needs)}|"
            f"{entry.status}")


def _board_for(actor: Actor, board_id: Any) -> Board:
    scope.require(actor, roles.GAKUREIBO_MANAGE)
    return scope.get_in_scope(scope.boards_for(actor, roles.GAKUREIBO_MANAGE), pk=board_id)


def _entries_in_scope(actor: Actor) -> QuerySet[GakureiboEntry]:
    return GakureiboEntry.objects.filter(board__in=scope.boards_for(actor, roles.GAKUREIBO_MANAGE))


def _entry_for_edit(actor: Actor, entry_id: Any) -> GakureiboEntry:
    scope.require(actor, roles.GAKUREIBO_MANAGE)
    return scope.get_in_scope(
        _entries_in_scope(actor).select_for_update(of=("self",)).select_related("designated_school", "board"), pk=entry_id
    )


def designatable_schools(actor: Actor, board: Board) -> QuerySet[School]:
    """Schools a board may designate: any active school with a first grade — its own (通学区域の指定校・指定校変更)
    and those of other boards (区域外就学, with the other board's consent, 施行令 §9)."""
    return School.objects.filter(is_active=True, school_type__in=ENTRANT_SCHOOL_TYPES).select_related("board")


def _school_for(actor: Actor, board: Board, school_id: Any) -> School:
    try:
        return scope.get_in_scope(designatable_schools(actor, board), pk=school_id)
    except NotFoundOrNoAccess:
        raise ValidationFailed(
            _("指定校を選び直してください。"),
            errors={"school": [_("この学校は指定できません（小学校・義務教育学校・特別支援学校から選んでください）。")]},
        ) from None


def _save_entry(entry: GakureiboEntry) -> None:
    entry.content_digest = content_digest(entry.record, flags=_flags(entry))
    entry.full_clean(exclude=["person_index", "kana_index", "last_import"])
    try:
        with transaction.atomic():
            entry.save()
    except IntegrityError:
        raise ValidationFailed(
            _("入力内容を確認してください。"),
            errors={"person_id": [_("この個人番号の児童は、この年度の学齢簿にすでに記載されています。")]},
        ) from None


def _audit(actor: Actor, action: str, entry: GakureiboEntry, *, fields: Collection[str] = (),
           detail: dict[str, Any] | None = None) -> None:
    audit_record(actor=actor.user, action=action, obj=entry, fields=fields, detail=detail or {},
                 scope=Scope(board_id=entry.board_id, school_id=entry.designated_school_id))


def _check_reason(reason: str) -> str:
    text = reason.strip()
    try:
        reject_control_chars(text, _("理由"))
    except TextError as exc:
        raise ValidationFailed(_("入力内容を確認してください。"), errors={"reason": [str(exc)]}) from None
    if len(text) > _MAX_REASON:
        raise ValidationFailed(_("入力内容を確認してください。"),
                               errors={"reason": [_("理由は200文字以内で入力してください。")]})
    return text


@transaction.atomic
def gakureibo_entry_create(*, actor: Actor, board_id: Any, fiscal_year: int, data: EntrantInput,
                           designated_school_id: Any = None, special_needs: bool = False) -> GakureiboEntry:
    """Add one child to a board's 学齢簿 by hand. Names are kept exactly as typed."""
    board = _board_for(actor, board_id)
    if not 2000 <= fiscal_year <= 2200:
        raise ValidationFailed(_("年度を確認してください。"), errors={"fiscal_year": [_("年度が正しくありません。")]})
    record, needs_review, _warnings = clean_entrant(data, fiscal_year=fiscal_year)
    entry = GakureiboEntry(board=board, fiscal_year=fiscal_year, record=record_json(record),
                           needs_review=needs_review, special_needs=special_needs,
                           source=GakureiboEntry.Source.MANUAL)
    if designated_school_id not in (None, ""):
        school = _school_for(actor, board, designated_school_id)
        entry.designated_school = school
        entry.out_of_district = school.board_id != board.pk
    _save_entry(entry)
    _audit(actor, "rosters.gakureibo_entry.created", entry, fields=[k for k, v in record.items() if v],
           detail={"fiscal_year": fiscal_year, "needs_review": needs_review})
    # A child added after the school's roster went out reaches the school as an addition.
    amendments_for_entries(actor=actor, entries=[entry], reason=_("学齢簿への追加"))
    return entry


@transaction.atomic
def gakureibo_entry_update(*, actor: Actor, entry_id: Any, data: EntrantInput, reason: str = "") -> GakureiboEntry:
    """Correct a child's record (転居, 訂正); a child already sent to a school reaches it as an amendment."""
    entry = _entry_for_edit(actor, entry_id)
    reason_text = _check_reason(reason)
    record, needs_review, _warnings = clean_entrant(data, fiscal_year=entry.fiscal_year)
    old = entry.data
    changed = [key for key in RECORD_KEYS if str(old.get(key, "")) != record[key]]
    if not changed:
        return entry
    entry.record = record_json(record)
    entry.needs_review = needs_review
    _save_entry(entry)
    _audit(actor, "rosters.gakureibo_entry.updated", entry, fields=changed)
    amendments_for_entries(actor=actor, entries=[entry], reason=reason_text or _("記載事項の訂正"))
    return entry


@transaction.atomic
def gakureibo_entry_review_clear(*, actor: Actor, entry_id: Any) -> GakureiboEntry:
    """The officer checked the flagged row (外字, missing kana, unusual birth date) and confirms it as is."""
    entry = _entry_for_edit(actor, entry_id)
    if entry.needs_review:
        entry.needs_review = False
        entry.save(update_fields=["needs_review", "updated_at"])
        _audit(actor, "rosters.gakureibo_entry.reviewed", entry, fields=["needs_review"])
    return entry


@transaction.atomic
def gakureibo_entry_status_set(*, actor: Actor, entry_id: Any, status: str, reason: str = "") -> GakureiboEntry:
    """就学予定 / 転出（市外） / 就学猶予・免除. A child leaving a sent roster is removed from it by amendment."""
    entry = _entry_for_edit(actor, entry_id)
    if status not in GakureiboEntry.Status.values:
        raise ValidationFailed(_("状態を選んでください。"),
                               errors={"status": [_("状態は「就学予定」「転出（市外）」「就学猶予・免除」から選んでください。")]})
    reason_text = _check_reason(reason)
    if entry.status == status:
        return entry
    previous = entry.status
    entry.status = status
    _save_entry(entry)
    _audit(actor, "rosters.gakureibo_entry.status_changed", entry, fields=["status"],
           detail={"from": previous, "to": status})
    amendments_for_entries(actor=actor, entries=[entry],
                           reason=reason_text or str(GakureiboEntry.Status(status).label))
    return entry


def _designate(actor: Actor, entry: GakureiboEntry, school: School | None, special_needs: bool | None) -> bool:
    new_school_id = school.pk if school else None
    out_of_district = bool(school and school.board_id != entry.board_id)
    new_special = entry.special_needs if special_needs is None else special_needs
    if (entry.designated_school_id, entry.out_of_district, entry.special_needs) == (
        new_school_id, out_of_district, new_special
    ):
        return False
    previous = entry.designated_school_id
    entry.designated_school = school
    entry.out_of_district = out_of_district
    entry.special_needs = new_special
    _save_entry(entry)
    _audit(actor, "rosters.gakureibo_entry.designated", entry,
           fields=["designated_school", "out_of_district", "special_needs"],
           detail={"from_school_id": previous, "to_school_id": new_school_id,
                   "out_of_district": out_of_district, "special_needs": new_special})
    return True


@transaction.atomic
def gakureibo_entry_designate(*, actor: Actor, entry_id: Any, school_id: Any, special_needs: bool | None = None,
                              reason: str = "") -> GakureiboEntry:
    """就学校指定 for one child: a school (of this board, or of another board = 区域外就学) or none, and whether
    the child is placed in a 特別支援学級 (None keeps it)."""
    entry = _entry_for_edit(actor, entry_id)
    reason_text = _check_reason(reason)
    school = _school_for(actor, entry.board, school_id) if school_id not in (None, "") else None
    if _designate(actor, entry, school, special_needs):
        amendments_for_entries(actor=actor, entries=[entry], reason=reason_text or _("就学校の指定変更"))
    return entry


@transaction.atomic
def gakureibo_entries_designate(*, actor: Actor, board_id: Any, entry_ids: Collection[Any], school_id: Any,
                                reason: str = "") -> int:
    """Bulk 就学校指定: the selected children of a board → one school. Returns how many changed."""
    board = _board_for(actor, board_id)
    reason_text = _check_reason(reason)
    ids: set[uuid.UUID] = set()
    for raw in entry_ids:
        try:
            ids.add(raw if isinstance(raw, uuid.UUID) else uuid.UUID(str(raw)))
        except ValueError:
            raise NotFoundOrNoAccess("見つかりません。") from None
    if not ids:
        raise ValidationFailed(_("指定する児童を選んでください。"),
                               errors={"entries": [_("一覧のチェックボックスで児童を選んでください。")]})
    school = _school_for(actor, board, school_id)
    entries = list(
        GakureiboEntry.objects.select_for_update(of=("self",)).filter(board=board, pk__in=ids).select_related("designated_school")
    )
    if len(entries) != len(ids):
        raise NotFoundOrNoAccess("見つかりません。")
    changed = [entry for entry in entries if _designate(actor, entry, school, None)]
    amendments_for_entries(actor=actor, entries=changed, reason=reason_text or _("就学校の指定変更"))
    return len(changed)


def entrant_input_as_dict(data: EntrantInput) -> dict[str, Any]:
    return asdict(data)
