"""Filters for the lockout page, whose context comes from django-axes (a cool-off as a timedelta)."""

from __future__ import annotations

import datetime

from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def minutes(value: datetime.timedelta | None) -> int:
    """15 for a 15-minute cool-off (rounded up, never 0)."""
    if not isinstance(value, datetime.timedelta):
        return 0
    return max(1, -(-int(value.total_seconds()) // 60))


@register.filter
def unlock_time(value: datetime.timedelta | None) -> str:
    """When a lockout that starts now ends, in Japan time ("14:35"). The page is shown at the failing attempt,
    which is when axes starts the cool-off."""
    if not isinstance(value, datetime.timedelta):
        return ""
    return timezone.localtime(timezone.now() + value).strftime("%H:%M")
