"""A document type for the engine's own tests: a school's 学期 (Term), approved through the same chain as any
document. It shows the engine is generic: nothing in komu.approvals knows what a Term is."""

from __future__ import annotations

from typing import Any

from komu.approvals import registry
from komu.approvals.models import ApprovalRequest
from komu.directory.models import Term

# What the hooks saw, in order: (event, term id, request id).
EVENTS: list[tuple[str, int, int]] = []


def _content(term: Term) -> registry.Content:
    return registry.content_of({"term": term.pk, "name": term.name, "start": term.start_date.isoformat(),
                                "end": term.end_date.isoformat()})


def _hook(event: str) -> registry.Hook:
    def hook(term: Any, request: ApprovalRequest, user: Any) -> None:
        EVENTS.append((event, term.pk, request.pk))

    return hook


TERM_DOCUMENT = registry.register(registry.DocumentType(
    code="test.term",
    label="学期（テスト）",
    model=Term,
    content=_content,
    title=lambda term: f"{term.name} の日程",
    url=lambda term: f"/terms/{term.pk}/",
    on_approved=_hook("approved"),
    on_returned=_hook("returned"),
    on_withdrawn=_hook("withdrawn"),
))
