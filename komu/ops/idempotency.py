"""Idempotency keys on writes from the UI: a POST that carries a key (`Idempotency-Key` header, or the hidden form
field `_idempotency_key` that ops/idempotency.js adds to every POST form) is applied at most once per person.

The view runs inside one transaction together with the record of its key and response, so either both commit or
neither does: a server killed mid-request leaves no record and the retry runs afresh; a retry after a lost
response (or a double click) finds the record and gets the same answer back — the redirect, or the stored page —
without the write being applied again. Two copies racing each other meet at the key's unique index: the second
one's work is rolled back and it answers with the first one's response.

Only requests that carry a key are touched; only 2xx/3xx answers are kept (a form with errors wrote nothing, and
its corrected resubmission must run). Stays last in MIDDLEWARE, after CSRF, sign-in and MFA have had their say.
The morning-entry screen has its own finer-grained receipts (attendance.SaveReceipt) and needs none of this.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from komu.ops.models import IdempotentRequest

HEADER = "Idempotency-Key"
FIELD = "_idempotency_key"
_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
MAX_BODY = 256 * 1024
KEEP = datetime.timedelta(hours=24)


class _Duplicate(Exception):
    pass


def _key_of(request: HttpRequest) -> str:
    key = request.headers.get(HEADER, "")
    if not key and request.content_type in _FORM_TYPES and not request.path.startswith("/api/"):
        key = request.POST.get(FIELD, "")
    return key if _KEY.match(key) else ""


def _replay(record: IdempotentRequest) -> HttpResponse:
    if record.location:
        response = HttpResponse(status=record.status)
        response["Location"] = record.location
    else:
        response = HttpResponse(record.body, status=record.status, content_type=record.content_type or None)
    response["Idempotent-Replayed"] = "true"
    return response


class IdempotencyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func: Callable[..., HttpResponse], view_args: Any,
                     view_kwargs: Any) -> HttpResponse | None:
        if request.method in ("GET", "HEAD", "OPTIONS") or not request.user.is_authenticated:
            return None
        key = _key_of(request)
        if not key:
            return None
        user = request.user
        try:
            with transaction.atomic():
                seen = IdempotentRequest.objects.filter(user=user, key=key).first()
                if seen is not None:
                    return _replay(seen)
                response = view_func(request, *view_args, **view_kwargs)
                render = getattr(response, "render", None)
                if callable(render) and not getattr(response, "is_rendered", True):
                    render()
                if response.streaming or not 200 <= response.status_code < 400:
                    return response
                record = IdempotentRequest(user=user, key=key, method=request.method or "",
                                           route=getattr(request.resolver_match, "view_name", "") or "",
                                           status=response.status_code, location=response.get("Location", ""),
                                           content_type=response.get("Content-Type", ""))
                if not record.location and len(response.content) <= MAX_BODY:
                    record.body = response.content.decode(response.charset or "utf-8", errors="replace")
                try:
                    with transaction.atomic():
                        record.save(force_insert=True)
                except IntegrityError:
                    raise _Duplicate from None
                return response
        except _Duplicate:
            return _replay(IdempotentRequest.objects.get(user=user, key=key))


def idempotency_purge(*, now: datetime.datetime | None = None) -> int:
    """Forget keys older than a day (a browser retries within minutes). Returns how many were removed."""
    cutoff = (now or timezone.now()) - KEEP
    deleted, _ = IdempotentRequest.objects.filter(created_at__lt=cutoff).delete()
    return deleted
