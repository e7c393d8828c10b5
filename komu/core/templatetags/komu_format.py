"""Template filters for Japanese dates: documents and screens write dates in 和暦 where Japanese users expect it."""

from __future__ import annotations

import datetime

from django import template
from django.utils import timezone, translation

from komu.core import wareki

register = template.Library()

_WEEKDAYS_JA = "月火水木金土日"


@register.filter
def wareki_date(value: datetime.date | datetime.datetime | None) -> str:
    """令和8年4月1日 in Japanese; 2026-04-01 in English."""
    if value is None or value == "":
        return ""
    if isinstance(value, datetime.datetime):
        value = timezone.localtime(value).date()
    if translation.get_language() != "ja":
        return value.isoformat()
    return wareki.to_wareki(value)


@register.filter
def wareki_weekday(value: datetime.date | None) -> str:
    """令和8年11月26日（木）: the form a school notice uses for today's date."""
    if value is None:
        return ""
    if translation.get_language() != "ja":
        return value.strftime("%A %d %B %Y")
    return f"{wareki.to_wareki(value)}（{_WEEKDAYS_JA[value.weekday()]}）"


@register.filter
def jst(value: datetime.datetime | None) -> str:
    """A timestamp in Japan time, 2026-11-26 08:15:02."""
    if value is None:
        return ""
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S")


@register.filter
def fiscal_year(value: int) -> str:
    """2026 → 2026年度（令和8年度）."""
    if translation.get_language() != "ja":
        return f"FY{value}"
    return f"{wareki.fiscal_year_title(value)}（{wareki.fiscal_year_title(value, wareki=True)}）"
