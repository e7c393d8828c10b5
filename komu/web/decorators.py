from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse

from komu.access.scope import get_actor
from komu.core.errors import NotFoundOrNoAccess


def require_capability(capability: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Declare the named capability a view needs. Without it the page does not exist for this person (404)."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not get_actor(request.user).has(capability):
                raise Http404
            return view(request, *args, **kwargs)

        wrapped.required_capability = capability  # type: ignore[attr-defined]
        return wrapped

    return decorator


def found_or_404(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A view whose selectors and services raise NotFoundOrNoAccess answers 404: missing and out-of-scope objects
    look alike, never 403 (no existence oracle)."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except NotFoundOrNoAccess as exc:
            raise Http404 from exc

    return wrapped
