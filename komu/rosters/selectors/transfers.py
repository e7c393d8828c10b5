"""Reading transfer packages (転学) within the actor's scope: the old school's outgoing list, the receiving school's
inbox, the board's packages awaiting a school, one package with its record and verified documents, and a
document's PDF. Listing names, opening a package and downloading a PDF are audited as reads of personal data."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.audit.services import Scope, audit_record
from komu.core.codes import grade_display
from komu.core.errors import NotFoundOrNoAccess
from komu.core.wareki import fiscal_year_of
from komu.directory.models import Board, School
from komu.rosters.models import TransferDocument, TransferPackage
from komu.rosters.services import transfers as services
from komu.students.models import ClassMembership, Student


@dataclass(frozen=True)
class PackageRow:
    id: uuid.UUID
    status: str
    status_label: str
    pupil: str
    pupil_kana: str
    grade_code: str
    from_school: str
    to_school: str  # the designated school, or the board with 「（指定校待ち）」
    departure_date: datetime.date
    sent_at: datetime.datetime
    accepted_at: datetime.datetime | None

    @property
    def grade_label(self) -> str:
        return grade_display(self.grade_code)


@dataclass(frozen=True)
class TransferLists:
    outgoing: list[PackageRow]
    incoming: list[PackageRow]
    at_board: list[PackageRow]
    can_send: bool


def _destination(p: TransferPackage) -> str:
    if p.to_school is not None:
        return p.to_school.name
    board = p.to_board.name if p.to_board else ""
    named = f"（{p.to_school_name}）" if p.to_school_name else ""
    return f"{board}{named}"


def _row(p: TransferPackage) -> PackageRow:
    d = p.data
    s = d.get("student", {})
    return PackageRow(
        id=p.pk, status=p.status, status_label=p.get_status_display(),
        pupil=f"{s.get('family_name', '')} {s.get('given_name', '')}".strip(),
        pupil_kana=f"{s.get('family_name_kana', '')} {s.get('given_name_kana', '')}".strip(),
        grade_code=str(d.get("grade_code", "")), from_school=p.from_school.name, to_school=_destination(p),
        departure_date=p.departure_date, sent_at=p.created_at, accepted_at=p.accepted_at,
    )


def transfer_lists_for(*, actor: Actor) -> TransferLists:
    """Outgoing packages of the actor's schools, incoming ones (sent to their schools), and — for board
    officers — those waiting at their board for a school. One audit event names how many pupils were listed."""
    qs = services.packages_for(actor).select_related("from_school", "to_school", "to_board").order_by(
        "-created_at"
    )
    own_schools = set(scope.schools_for(actor, roles.TRANSFERS_MANAGE).values_list("pk", flat=True))
    routing = services.routing_board_ids(actor)
    outgoing, incoming, at_board = [], [], []
    packages = list(qs[:500])
    for p in packages:
        if p.status == TransferPackage.Status.AT_BOARD and p.to_board_id in routing:
            at_board.append(_row(p))
        elif p.to_school_id in own_schools and p.status != TransferPackage.Status.CANCELLED:
            incoming.append(_row(p))
        if p.from_school_id in own_schools:
            outgoing.append(_row(p))
    with transaction.atomic():
        audit_record(
            actor=actor.user, action="rosters.transfer.list_viewed", object_type="rosters.transferpackage",
            fields=["student.name", "student.kana"],
            detail={"outgoing": len(outgoing), "incoming": len(incoming), "at_board": len(at_board)},
            scope=_actor_scope(actor),
        )
    can_send = any(g.role in services.CERTIFYING_ROLES for g in actor.grants_with(roles.TRANSFERS_MANAGE))
    return TransferLists(outgoing, incoming, at_board, can_send)


def _actor_scope(actor: Actor) -> Scope:
    primary = actor.primary
    if primary is None:
        return Scope()
    return Scope(school_id=primary.school_id, board_id=primary.board_id)


# The order the documents are listed in: the 指導要録 copy first, then the two certificates.
_DOCUMENT_ORDER = list(TransferDocument.Kind.values)


@dataclass(frozen=True)
class DocumentView:
    kind: str
    label: str
    sha256: str
    signed_by: str
    signed_at: datetime.datetime
    valid: bool


@dataclass(frozen=True)
class PackageView:
    package: TransferPackage
    record: dict[str, Any]
    documents: list[DocumentView]
    destination: str
    can_accept: bool
    can_route: bool
    can_cancel: bool
    route_schools: list[School]


def transfer_get_for(*, actor: Actor, package_id: Any) -> PackageView:
    """One package: the record as sent, the attendance totals, the documents with their verification, and what
    the actor may do with it. Audited as a read of the pupil's record."""
    package: TransferPackage = scope.get_in_scope(
        services.packages_for(actor).select_related("from_school", "to_school", "to_board", "student"),
        pk=package_id,
    )
    documents = [
        DocumentView(kind=d.kind, label=d.get_kind_display(), sha256=d.sha256,
                     signed_by=str(d.signed_by.display_name or d.signed_by.get_username()), signed_at=d.signed_at,
                     valid=services.transfer_document_verify(d))
        for d in sorted(TransferDocument.objects.filter(package=package).select_related("signed_by"),
                        key=lambda d: _DOCUMENT_ORDER.index(d.kind) if d.kind in _DOCUMENT_ORDER else 99)
    ]
    open_ = package.status in services.OPEN_STATUSES
    routing = services.routing_board_ids(actor)
    can_route = package.status == TransferPackage.Status.AT_BOARD and package.to_board_id in routing
    receiving = services.receiving_school_ids(actor)
    can_accept = package.status == TransferPackage.Status.SENT and package.to_school_id in receiving
    can_cancel = open_ and services.certifying_grant(actor, package.from_school_id) is not None
    route_schools = (
        list(School.objects.filter(board_id=package.to_board_id or 0).exclude(pk=package.from_school_id)
             .order_by("school_type", "code"))
        if can_route else []
    )
    with transaction.atomic():
        audit_record(
            actor=actor.user, action="rosters.transfer.viewed", obj=package,
            fields=["student", "guardian", "emergency_contact", "enrollment_event", "attendance.totals"],
            detail={"student_id": str(package.student_id)},
            scope=Scope(school_id=actor.primary.school_id if actor.primary else None,
                        board_id=actor.primary.board_id if actor.primary else None),
        )
    return PackageView(package=package, record=package.data, documents=documents, destination=_destination(package),
                       can_accept=can_accept, can_route=can_route, can_cancel=can_cancel,
                       route_schools=route_schools)


@dataclass(frozen=True)
class DocumentFile:
    filename: str
    content: bytes
    valid: bool


def transfer_document_get_for(*, actor: Actor, package_id: Any, kind: str) -> DocumentFile:
    """A package's PDF for download, with its verification; audited as a read of the pupil's personal data."""
    package: TransferPackage = scope.get_in_scope(services.packages_for(actor), pk=package_id)
    document = TransferDocument.objects.filter(package=package, kind=kind).first()
    if document is None:
        raise NotFoundOrNoAccess("見つかりません。")
    valid = services.transfer_document_verify(document)
    name = package.data.get("student", {})
    filename = f"{document.get_kind_display()}_{name.get('family_name', '')}{name.get('given_name', '')}.pdf"
    with transaction.atomic():
        audit_record(
            actor=actor.user, action="rosters.transfer.document_downloaded", obj=package,
            fields=["document." + kind],
            detail={"student_id": str(package.student_id), "kind": kind, "sha256": document.sha256,
                    "valid": valid},
            scope=_actor_scope(actor),
        )
    return DocumentFile(filename=filename, content=services.document_bytes(document), valid=valid)


@dataclass(frozen=True)
class SendForm:
    """What the 転学の手続き form needs: the pupil (name and class only), and where a package can go."""

    student_id: uuid.UUID
    pupil: str
    pupil_kana: str
    class_label: str
    school: School
    schools: list[School]
    boards: list[Board]
    may_certify: bool


def transfer_send_form_for(*, actor: Actor, student_id: Any) -> SendForm:
    """The pupil a transfer is being prepared for (in the actor's TRANSFERS_MANAGE scope, enrolled), and every
    school and municipal board in Komu as destinations. Reading the name is audited."""
    student: Student = scope.get_in_scope(
        scope.students_for(actor, roles.TRANSFERS_MANAGE).filter(is_active=True).select_related("school"),
        pk=student_id,
    )
    # Today's class: after a roll-over prepared in March the pupil also has next year's membership.
    membership = (
        ClassMembership.objects.filter(student=student, homeroom_class__school_year__year__lte=fiscal_year_of(
            timezone.localdate())).select_related("homeroom_class__school_year")
        .order_by("-homeroom_class__school_year__year").first()
    )
    with transaction.atomic():
        audit_record(
            actor=actor.user, action="students.student.viewed", obj=student,
            fields=["family_name", "given_name", "family_name_kana", "given_name_kana"],
            detail={"purpose": "rosters.transfer.form"},
            scope=Scope(school_id=student.school_id, board_id=student.school.board_id),
        )
    return SendForm(
        student_id=student.pk, pupil=student.full_name, pupil_kana=student.full_kana,
        class_label=membership.homeroom_class.display_label if membership else "", school=student.school,
        schools=list(School.objects.exclude(pk=student.school_id).select_related("board")
                     .order_by("board__code", "school_type", "code")),
        boards=list(Board.objects.filter(kind=Board.Kind.MUNICIPAL).order_by("code")),
        may_certify=services.certifying_grant(actor, student.school_id) is not None,
    )


@dataclass(frozen=True)
class TransferTodo:
    incoming: int
    at_board: int


def transfer_todo_for(*, actor: Actor) -> TransferTodo:
    """Counts for the home page (no names, not audited): packages waiting for the actor's school to accept
    (「転入の書類が届いています」) and, for a board officer, waiting for a school to be designated."""
    if not actor.has(roles.TRANSFERS_MANAGE):
        return TransferTodo(0, 0)
    qs = services.packages_for(actor)
    incoming = qs.filter(status=TransferPackage.Status.SENT,
                         to_school_id__in=services.receiving_school_ids(actor)).count()
    at_board = qs.filter(status=TransferPackage.Status.AT_BOARD,
                         to_board_id__in=services.routing_board_ids(actor)).count()
    return TransferTodo(incoming, at_board)
