"""Key rotation: re-encrypt every encrypted column under the new primary key, in batches, while the system runs.

Running processes re-read the key file when it changes and can open both old and new ciphertexts throughout, so
no request fails during a rotation. Old keys are removed only after no row uses them any more.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import models, transaction

from komu.security import keys
from komu.security.fields import EncryptedMixin, Token, associated_data


def encrypted_models() -> list[tuple[type[models.Model], list[models.Field[Any, Any]]]]:
    found = []
    for model in apps.get_models():
        fields = [f for f in model._meta.concrete_fields if isinstance(f, EncryptedMixin)]
        if fields:
            found.append((model, fields))
    return found


@dataclass
class RotationReport:
    old_key_id: int
    new_key_id: int
    rewritten: int
    retired: list[int]


def _rewrite_all(primary: int, batch_size: int, progress: Callable[[str], None] | None) -> int:
    keyring = keys.get_keyring()
    rewritten = 0
    for model, fields in encrypted_models():
        names = [f.attname for f in fields]
        pks = list(model._base_manager.order_by("pk").values_list("pk", flat=True))
        for start in range(0, len(pks), batch_size):
            batch = pks[start : start + batch_size]
            with transaction.atomic():
                # Lock the batch: a request saving one of these rows meanwhile would otherwise be overwritten
                # with the re-encrypted old value (a lost update). SQLite's write lock serialises this anyway.
                rows = model._base_manager.select_for_update().filter(pk__in=batch).only("pk", *names)
                for obj in rows:
                    changes: dict[str, Token] = {}
                    for field in fields:
                        token = obj.__dict__.get(field.attname)
                        if not isinstance(token, Token) or not token:
                            continue
                        if keyring.token_key_id(token) == primary:
                            continue
                        ad = associated_data(obj, field)
                        changes[field.attname] = Token(keyring.encrypt(keyring.decrypt(token, ad), ad))
                    if changes:
                        model._base_manager.filter(pk=obj.pk).update(**changes)
                        rewritten += 1
            if progress:
                progress(f"{model._meta.label}: {min(start + batch_size, len(pks))}/{len(pks)}")
    return rewritten


def keys_rotate(*, actor: Any = None, retire: bool = True, batch_size: int = 500,
                progress: Callable[[str], None] | None = None,
                settle_seconds: float = keys.RELOAD_CHECK_SECONDS * 2 + 0.5) -> RotationReport:
    from komu.audit.services import audit_record

    path = Path(settings.KOMU_KEY_FILE)
    old_id, new_id = keys.add_primary_aead_key(path)
    # Let every running process notice the new file before rewriting, so none keeps writing under the old key
    # after its rows have been rewritten (it would become unreadable once the old key is retired).
    time.sleep(settle_seconds)
    rewritten = _rewrite_all(new_id, batch_size, progress)
    retired: list[int] = []
    if retire:
        # A request that loaded a row before it was rewritten still holds the old ciphertext; let such requests
        # finish (and save under the new key) before the old key can no longer open what they hold.
        time.sleep(settle_seconds)
        retired = keys.retire_aead_keys(path, keep={new_id})
    with transaction.atomic():
        audit_record(
            actor=actor, action="security.keys.rotated", object_type="security.keyset", object_id="aead",
            detail={"old_key_id": old_id, "new_key_id": new_id, "rows_rewritten": rewritten, "retired": retired},
        )
    return RotationReport(old_id, new_id, rewritten, retired)
