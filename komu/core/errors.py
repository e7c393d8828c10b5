"""Errors that services raise and views turn into messages. Messages are for the user, in Japanese."""

from __future__ import annotations


class KomuError(Exception):
    """Base for expected, user-facing failures."""


class NotFoundOrNoAccess(KomuError):
    """Out of scope and missing look the same: the caller answers 404, never 403 (no existence oracle)."""


class PermissionDeniedError(KomuError):
    """In scope but the action is not allowed for the role (e.g. a teacher editing a class's roster)."""


class ValidationFailed(KomuError):
    def __init__(self, message: str, *, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or {}
