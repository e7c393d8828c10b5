"""Helpers shared by the directory's services: validation that collects every message, and the audit scope."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Model
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from komu.access.scope import Actor
from komu.audit.services import Scope
from komu.core.errors import PermissionDeniedError, ValidationFailed
from komu.core.text import TextError, reject_control_chars
from komu.directory.models import Role

Errors = dict[str, list[str]]

INPUT_INVALID = gettext_lazy("入力内容を確認してください。")


def add_error(errors: Errors, key: str, message: str) -> None:
    errors.setdefault(key, []).append(message)


def model_errors(obj: Model, *, exclude: Iterable[str] = (), check_unique: bool = True) -> Errors:
    """full_clean()'s messages by field, without raising. ``exclude`` skips fields whose references the caller
    has already resolved (a bulk load's rows point at objects not yet saved)."""
    try:
        obj.full_clean(
            exclude=list(exclude) or None, validate_unique=check_unique, validate_constraints=check_unique
        )
    except ValidationError as exc:
        return {key: list(messages) for key, messages in exc.message_dict.items()}
    return {}


def raise_if(errors: Errors) -> None:
    if errors:
        raise ValidationFailed(str(INPUT_INVALID), errors=errors)


def save_validated(obj: Model, *, exclude: Iterable[str] = ()) -> None:
    """full_clean() before save, as every service does; the messages come back as ValidationFailed."""
    raise_if(model_errors(obj, exclude=exclude))
    obj.save()


def clean_line(value: str, *, key: str, label: str, errors: Errors, required: bool = False) -> str:
    """One line of free text (a name, an address): no control characters, surrounding blanks removed.

    The text itself is kept as typed: official names are not ours to normalise.
    """
    try:
        reject_control_chars(value, label)
    except TextError as exc:
        add_error(errors, key, exc.message)
        return value
    cleaned = value.strip()
    if required and not cleaned:
        add_error(errors, key, _("%(label)sを入力してください。") % {"label": label})
    return cleaned


def audit_scope(*, school_id: int | None = None, board_id: int | None = None) -> Scope:
    return Scope(school_id=school_id, board_id=board_id)


def require_nationwide(actor: Actor, capability: str) -> None:
    """Boards and nationwide roles are the operator's to change."""
    if not any(g.role == Role.OPERATOR for g in actor.grants_with(capability)):
        raise PermissionDeniedError(_("この操作はシステム運用者だけが行えます。"))


def user_of(actor: Actor) -> Any:
    """The user to record in the audit log; None (recorded as "system") for a command run without --user."""
    user = actor.user
    return user if getattr(user, "is_authenticated", False) else None
