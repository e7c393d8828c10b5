"""Reading and writing encrypted columns behind the ORM's back, as someone holding a database dump would."""

from __future__ import annotations

import base64
from typing import Any

from django.db import connection, models


def _pk(model: type[models.Model], pk: Any) -> Any:
    # SQLite keeps a UUID key as 32 hex digits, PostgreSQL as uuid: let the field say which.
    return model._meta.pk.get_db_prep_value(pk, connection)  # type: ignore[union-attr]


def raw_value(model: type[models.Model], pk: Any, field: str) -> Any:
    """The stored column value, exactly as in the database."""
    qn = connection.ops.quote_name
    column = model._meta.get_field(field).column  # type: ignore[union-attr]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {qn(column)} FROM {qn(model._meta.db_table)} WHERE {qn(model._meta.pk.column)} = %s",  # type: ignore[union-attr]
            [_pk(model, pk)],
        )
        row = cursor.fetchone()
    assert row is not None, f"{model.__name__} {pk} is not in the database"
    return row[0]


def raw_set(model: type[models.Model], pk: Any, field: str, value: Any) -> None:
    """Overwrite one stored column, bypassing every field method (an attacker with database access)."""
    qn = connection.ops.quote_name
    column = model._meta.get_field(field).column  # type: ignore[union-attr]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {qn(model._meta.db_table)} SET {qn(column)} = %s WHERE {qn(model._meta.pk.column)} = %s",  # type: ignore[union-attr]
            [value, _pk(model, pk)],
        )
        assert cursor.rowcount == 1


def tink_key_id(token: str) -> int:
    """The key id in a Tink ciphertext's 5-byte prefix; fails the test if `token` is not one."""
    raw = base64.urlsafe_b64decode(token.encode("ascii"))
    # version byte 0x01, 4-byte key id, 12-byte IV, ciphertext, 16-byte GCM tag
    assert raw[0] == 0x01, f"not a Tink ciphertext: {token[:20]}…"
    assert len(raw) >= 1 + 4 + 12 + 16
    return int.from_bytes(raw[1:5], "big")


def flip_byte(token: str, index: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(token.encode("ascii")))
    raw[index] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).decode("ascii")
