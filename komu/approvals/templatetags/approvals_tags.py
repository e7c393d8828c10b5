"""The 印影 of an electronic seal, drawn as an inline SVG: a red circle with the approver's family name set
vertically, as a Japanese 認印 looks. Only an image of who sealed: the seal itself is the signature record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import template

from komu.approvals import seals
from komu.approvals.models import ApprovalAction

register = template.Library()

# In a 100 × 100 box: the ring, and the square inside it the characters may fill.
_CENTRE = 50.0
_INNER = 62.0


@dataclass(frozen=True)
class Glyph:
    text: str
    x: float
    y: float


def layout(name: str) -> tuple[list[Glyph], float]:
    """Where each character of the seal goes and the font size: columns from right to left, each read top to
    bottom, centred in the ring."""
    columns = seals.seal_columns(name)
    if not columns:
        return [], 0.0
    longest = max(len(c) for c in columns)
    size = min(_INNER / longest, _INNER / len(columns), 40.0)
    glyphs = []
    right = _CENTRE + size * (len(columns) - 1) / 2
    for ci, column in enumerate(columns):
        x = right - ci * size
        top = _CENTRE - size * len(column) / 2
        for ri, char in enumerate(column):
            glyphs.append(Glyph(char, round(x, 2), round(top + size * (ri + 0.5), 2)))
    return glyphs, round(size * 0.92, 2)


@register.inclusion_tag("approvals/partials/inkan.html")
def inkan(name: str, size: int = 64, label: str = "") -> dict[str, Any]:
    glyphs, font_size = layout(name)
    return {"glyphs": glyphs, "font_size": font_size, "size": size, "label": label or name}


@register.filter
def seal_name(action: ApprovalAction) -> str:
    """The family name on the 印影, as signed (the payload), not as the account reads today."""
    approver = (action.seal_payload or {}).get("approver") or {}
    display = str(approver.get("display_name") or "")
    if not display and action.actor is not None:
        display = action.actor.display_name
    return seals.seal_name(display, str(approver.get("username") or ""))


@register.filter
def signed_name(action: ApprovalAction) -> str:
    approver = (action.seal_payload or {}).get("approver") or {}
    name = str(approver.get("display_name") or approver.get("username") or "")
    if not name and action.actor is not None:
        name = action.actor.display_name or action.actor.get_username()
    return name


@register.filter
def behalf_name(action: ApprovalAction) -> str:
    behalf = (action.seal_payload or {}).get("on_behalf_of") or {}
    name = str(behalf.get("display_name") or behalf.get("username") or "")
    if not name and action.on_behalf_of is not None:
        name = action.on_behalf_of.display_name or action.on_behalf_of.get_username()
    return name


@register.filter
def role_label(role: str) -> str:
    from komu.approvals.selectors import role_label as label

    return label(role)


@register.filter
def document_label(code: str) -> str:
    from komu.approvals.registry import label_of

    return label_of(code)
