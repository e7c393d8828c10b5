"""Who is acting, from where: set once per request (or command) and read by every audit record."""

from __future__ import annotations

import contextvars
import uuid
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class RequestContext:
    request_id: str
    client_ip: str | None = None
    role: str = ""
    org: str = ""
    channel: str = "web"


_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar("komu_request", default=None)


def current() -> RequestContext:
    ctx = _current.get()
    if ctx is None:
        return RequestContext(request_id=f"cli-{uuid.uuid4().hex[:12]}", channel="cli")
    return ctx


def begin(ctx: RequestContext) -> contextvars.Token[RequestContext | None]:
    return _current.set(ctx)


def end(token: contextvars.Token[RequestContext | None]) -> None:
    _current.reset(token)


def set_acting_role(role: str, org: str) -> None:
    ctx = _current.get()
    if ctx is not None:
        _current.set(replace(ctx, role=role, org=org))
