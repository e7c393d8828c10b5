"""The kinds of document the approvals engine can carry, registered by the apps that own them.

The engine never asks "is this a register or a survey answer?": each document type tells it, through the entry
registered here, how to compute the subject's current canonical content (and so its hash), its title, where it
is shown, and what happens to the subject when a request is approved, returned or withdrawn. An app registers
its types when Django starts (its AppConfig.ready), e.g. komu/attendance/services/monthly.py for the 出席簿.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import models
from django.utils.translation import gettext

from komu.directory.models import Role

if TYPE_CHECKING:
    from komu.approvals.models import ApprovalRequest


@dataclass(frozen=True)
class Content:
    """A subject's content in canonical form: the exact JSON text and its SHA-256, which every seal signs."""

    canonical: str
    hash: str


def content_of(data: Mapping[str, Any]) -> Content:
    """Canonical JSON (sorted keys, no spaces, UTF-8 as is) and its hash. Changing this is a format change: the
    seals of every stored document would stop verifying."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return Content(canonical=text, hash=hash_of(text))


def hash_of(canonical: str) -> str:
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# (subject, request, acting user or None for the system) → None. Runs inside the engine's transaction.
Hook = Callable[[Any, "ApprovalRequest", Any], None]


def _nothing(subject: Any, request: ApprovalRequest, user: Any) -> None:
    """A document type that keeps no state of its own needs no hook."""


@dataclass(frozen=True)
class DocumentType:
    code: str  # stored on chains and requests, e.g. "attendance.monthly_register"
    label: str  # Japanese, marked with gettext_noop where registered, e.g. "出席簿（月）"; shown as display_label
    model: type[models.Model]
    content: Callable[[Any], Content]
    title: Callable[[Any], str]
    url: Callable[[Any], str]
    on_approved: Hook = _nothing
    on_returned: Hook = _nothing
    on_withdrawn: Hook = _nothing
    default_steps: tuple[str, ...] = field(default=(Role.VICE_PRINCIPAL, Role.PRINCIPAL))

    @property
    def display_label(self) -> str:
        """The label in the current language (shown in lists and chain settings)."""
        return gettext(self.label)


class UnknownDocumentType(LookupError):
    pass


_REGISTRY: dict[str, DocumentType] = {}


def register(document_type: DocumentType) -> DocumentType:
    existing = _REGISTRY.get(document_type.code)
    if existing is not None and existing != document_type:
        raise ValueError(f"文書の種類 {document_type.code} は既に別の定義で登録されています。")
    _REGISTRY[document_type.code] = document_type
    return document_type


def get(code: str) -> DocumentType:
    try:
        return _REGISTRY[code]
    except KeyError:
        raise UnknownDocumentType(
            f"文書の種類 {code} が登録されていません（そのアプリが INSTALLED_APPS にあるか確認してください）。"
        ) from None


def all_types() -> list[DocumentType]:
    return sorted(_REGISTRY.values(), key=lambda t: t.code)


def label_of(code: str) -> str:
    entry = _REGISTRY.get(code)
    return entry.display_label if entry else code
