"""The entrant record: one JSON object per child, shared by the 学齢簿, the roster sent to a school and its
amendments. Pure helpers (no ORM): build a record from a parsed row, serialise it canonically, digest it, diff it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from komu.interop.gakureibo import EntrantRow
from komu.rosters.models import RECORD_KEYS
from komu.security.keys import get_keyring

# Japanese labels of the record keys, for tables and diffs.
RECORD_LABELS: dict[str, str] = {
    "person_id": "個人番号",
    "family_name": "氏名（姓）",
    "given_name": "氏名（名）",
    "family_name_kana": "ふりがな（姓）",
    "given_name_kana": "ふりがな（名）",
    "sex": "性別",
    "birth_date": "生年月日",
    "postal_code": "郵便番号",
    "address": "住所",
    "guardian_id": "保護者の個人番号",
    "guardian_family_name": "保護者氏名（姓）",
    "guardian_given_name": "保護者氏名（名）",
    "guardian_family_name_kana": "保護者ふりがな（姓）",
    "guardian_given_name_kana": "保護者ふりがな（名）",
    "guardian_relationship": "続柄",
    "guardian_phone": "保護者電話番号",
    "guardian_email": "保護者メールアドレス",
    "guardian_address": "保護者住所",
    "entry_date": "入学予定日",
    "note": "備考",
}

_DIGEST_PURPOSE = "gakureibo.content"


def record_from_entrant(row: EntrantRow) -> dict[str, str]:
    """The personal fields of a parsed row, as strings (dates ISO, "" when blank), in RECORD_KEYS order."""
    values = dataclasses.asdict(row)
    record: dict[str, str] = {}
    for key in RECORD_KEYS:
        value = values.get(key)
        if value is None:
            record[key] = ""
        elif isinstance(value, dt.date):
            record[key] = value.isoformat()
        else:
            record[key] = str(value)
    return record


def record_json(record: Mapping[str, Any]) -> str:
    """Canonical serialisation: RECORD_KEYS order, no ASCII escaping (names stay exactly as entered)."""
    return json.dumps({key: record.get(key, "") for key in RECORD_KEYS}, ensure_ascii=False, separators=(",", ":"))


def content_digest(record_text: str, *, flags: str = "") -> str:
    """Keyed digest of a record (and the plain columns in ``flags``): equal digests mean nothing changed.

    Keyed (the blind-index PRF with its own purpose), so the digest says nothing about the content to whoever
    reads the database."""
    return get_keyring().blind_index(_DIGEST_PURPOSE, f"{record_text}\x1f{flags}")


def record_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, list[str]]:
    """{key: [old, new]} for every key whose value differs, in RECORD_KEYS order."""
    return {
        key: [str(old.get(key, "")), str(new.get(key, ""))]
        for key in RECORD_KEYS
        if str(old.get(key, "")) != str(new.get(key, ""))
    }
