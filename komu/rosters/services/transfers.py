"""転学 (transfer) between schools: the old school records the departure and sends a package — the registry
record, the year's attendance totals and three certified PDFs — to the receiving school, or to the receiving
board when the school is not known yet (the board then designates the school: 転入学通知). The receiving school
accepts, and the pupil appears in its registry with guardians, emergency contacts and history, awaiting class
placement. Every write is atomic and audited.

Who certifies. The documents are copies and certificates "certified by the principal" (domain.md §2). Komu signs
them when the package is sent, so only the principal — or the vice-principal as 校長職務代理者, which the PDF
then says — may send a package; the school office prepares nothing on paper and asks them. There is no separate
"waiting for the principal" state: a package exists only once certified, so nothing uncertified ever travels.

The signature: Ed25519 with the seal key (the same key as 電子印, published by `komu keys public`) over a canonical
JSON payload naming the package, the document kind, the SHA-256 of the PDF bytes, the signer and the time.
`transfer_document_verify` recomputes the hash of the stored bytes and checks the signature.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.approvals.seals import canonical_bytes
from komu.attendance import arithmetic, calendar
from komu.attendance.models import Mark
from komu.attendance.registers import rules_of
from komu.audit.services import Scope, audit_record
from komu.core.codes import CodeError, validate_grade_code
from komu.core.errors import NotFoundOrNoAccess, PermissionDeniedError, ValidationFailed
from komu.core.text import TextError, reject_control_chars
from komu.core.wareki import fiscal_year_of
from komu.directory.models import Board, Role, School, SchoolYear, StaffAssignment
from komu.rosters import pdf
from komu.rosters.models import TransferDocument, TransferPackage
from komu.security.blobs import BlobMissingError, blob_put, blob_read
from komu.security.keys import DecryptionError, get_keyring
from komu.students import services as student_services
from komu.students.models import (
    LEAVING_KINDS,
    ClassMembership,
    EmergencyContact,
    EnrollmentEvent,
    EnrollmentKind,
    GuardianLink,
    Student,
)

RECORD_FORMAT = "komu-transfer/1"
SIGNATURE_FORMAT = "komu-transfer-document/1"
_MAX_REASON = 200
_MAX_SCHOOL_NAME = 100
_MAX_TEXTBOOKS = 30
_MAX_TEXTBOOK_LINE = 120
OPEN_STATUSES = (TransferPackage.Status.SENT, TransferPackage.Status.AT_BOARD)
CERTIFYING_ROLES = (Role.PRINCIPAL, Role.VICE_PRINCIPAL)

_DOCUMENTS = (
    (TransferDocument.Kind.SHIDO_YOROKU, pdf.shido_yoroku_pdf),
    (TransferDocument.Kind.ENROLLMENT_CERTIFICATE, pdf.enrollment_certificate_pdf),
    (TransferDocument.Kind.TEXTBOOK_CERTIFICATE, pdf.textbook_certificate_pdf),
)


# --- Scope ---------------------------------------------------------------------------------------------------------

def packages_for(actor: Actor) -> QuerySet[TransferPackage]:
    """Packages the actor reaches: the old school's (all states), the receiving school's once sent to it, and
    the receiving board's (its officers: those waiting for a school, and those it routed). A cancelled package
    stays with the school that sent it only."""
    schools = scope.schools_for(actor, roles.TRANSFERS_MANAGE)
    board_ids = [g.board_id for g in actor.grants_with(roles.TRANSFERS_MANAGE)
                 if g.role == Role.BOARD_OFFICER and g.board_id is not None]
    boards = Board.objects.filter(Q(pk__in=board_ids) | Q(parent_id__in=board_ids))
    live = ~Q(status=TransferPackage.Status.CANCELLED)
    q = Q(from_school__in=schools) | (live & Q(to_school__in=schools)) | (live & Q(to_board__in=boards))
    return TransferPackage.objects.filter(q)


def certifying_grant(actor: Actor, school_id: int) -> scope.Grant | None:
    """The actor's principal (or else vice-principal) grant at the school: who may certify and send."""
    grants = [g for g in actor.grants_with(roles.TRANSFERS_MANAGE)
              if g.school_id == school_id and g.role in CERTIFYING_ROLES]
    grants.sort(key=lambda g: CERTIFYING_ROLES.index(Role(g.role)))
    return grants[0] if grants else None


def receiving_school_ids(actor: Actor) -> set[int]:
    """Schools where the actor works with TRANSFERS_MANAGE (a school role, not a board officer)."""
    return {g.school_id for g in actor.grants_with(roles.TRANSFERS_MANAGE) if g.school_id is not None}


def routing_board_ids(actor: Actor) -> set[int]:
    ids = {g.board_id for g in actor.grants_with(roles.TRANSFERS_MANAGE)
           if g.role == Role.BOARD_OFFICER and g.board_id is not None}
    ids |= set(Board.objects.filter(parent_id__in=ids).values_list("pk", flat=True))
    return ids


def _audit_scope(school: School) -> Scope:
    return Scope(school_id=school.pk, board_id=school.board_id)


# --- The record ----------------------------------------------------------------------------------------------------

def principal_name(school: School, on: datetime.date) -> str:
    """The display name of the school's principal on a day (the name certificates are issued in)."""
    assignment = (
        StaffAssignment.objects.filter(school=school, role=Role.PRINCIPAL)
        .filter(Q(start_date__isnull=True) | Q(start_date__lte=on))
        .filter(Q(end_date__isnull=True) | Q(end_date__gte=on))
        .select_related("user").order_by("-start_date").first()
    )
    if assignment is None:
        return ""
    return str(assignment.user.display_name or assignment.user.get_username())


def attendance_totals(student: Student, through: datetime.date) -> dict[str, Any]:
    """出欠の記録 of the pupil's 年度 up to `through` (inclusive), by the school's rules (arithmetic.py):
    授業日数, 出席停止・忌引等の日数, 出席しなければならない日数, 欠席日数, 出席日数, 遅刻, 早退."""
    fiscal_year = fiscal_year_of(through)
    membership = (
        ClassMembership.objects.filter(student=student, homeroom_class__school_year__year=fiscal_year)
        .select_related("homeroom_class__school_year__school").order_by("-created_at").first()
    )
    totals = arithmetic.Totals()
    if membership is not None:
        klass = membership.homeroom_class
        school_year: SchoolYear = klass.school_year
        # Days before the pupil joined this school (転入学 or 編入学 during the year) are not theirs.
        joined = (
            EnrollmentEvent.objects.filter(
                student=student, kind__in=[EnrollmentKind.ADMISSION, EnrollmentKind.READMISSION,
                                           EnrollmentKind.TRANSFER_IN],
                date__gte=school_year.start_date, date__lte=through,
            ).order_by("-date").values_list("date", flat=True).first()
        )
        start = max(school_year.start_date, joined or school_year.start_date)
        rules_model = calendar.rules_for(school_year.school)
        days = calendar.school_days(school_year, start, through, rules_model)
        closed = calendar.closure_days(klass, start, through) & set(days)
        marks = {
            m.date: arithmetic.DayMark(m.kind, m.absence_reason, m.kinship_degree)
            for m in Mark.objects.filter(student=student, date__range=(start, through))
        }
        totals = arithmetic.totals_for(days, marks, rules_of(rules_model), closed)
    return {
        "fiscal_year": fiscal_year, "through": through.isoformat(),
        "lesson_days": totals.lesson_days, "excused_days": totals.excused_days,
        "required_days": totals.required_days, "absent_days": totals.absent_days,
        "present_days": totals.present_days, "late": totals.late, "early_leave": totals.early_leave,
    }


def _current_membership(student: Student, day: datetime.date) -> ClassMembership | None:
    return (
        ClassMembership.objects.filter(student=student, homeroom_class__school_year__year=fiscal_year_of(day))
        .select_related("homeroom_class").order_by("-created_at").first()
    )


def _build_record(student: Student, *, grade_code: str, class_label: str, departure_date: datetime.date,
                  textbooks: Sequence[str], principal: str) -> dict[str, Any]:
    school = student.school
    guardians = [
        {
            "relationship": link.relationship, "priority": link.priority,
            "family_name": link.guardian.family_name, "given_name": link.guardian.given_name,
            "family_name_kana": link.guardian.family_name_kana, "given_name_kana": link.guardian.given_name_kana,
            "phone": link.guardian.phone, "email": link.guardian.email, "address": link.guardian.address,
        }
        for link in GuardianLink.objects.filter(student=student).select_related("guardian").order_by("priority")
    ]
    contacts = [
        {"priority": c.priority, "name": c.name, "relationship": c.relationship, "phone": c.phone, "note": c.note}
        for c in EmergencyContact.objects.filter(student=student).order_by("priority")
    ]
    events = list(EnrollmentEvent.objects.filter(student=student).order_by("date", "created_at"))
    history = [
        {"kind": e.kind, "date": e.date.isoformat(), "grade_code": e.grade_code,
         "other_school_name": e.other_school_name, "other_school_code": e.other_school_code, "reason": e.reason}
        for e in events
    ]
    joined = [e.date for e in events if e.kind not in LEAVING_KINDS]
    through = min(departure_date, timezone.localdate())
    return {
        "format": RECORD_FORMAT,
        "student": {
            "family_name": student.family_name, "given_name": student.given_name,
            "family_name_kana": student.family_name_kana, "given_name_kana": student.given_name_kana,
            "sex": student.sex, "birth_date": student.birth_date.isoformat() if student.birth_date else None,
            "address": student.address, "special_needs_placement": student.special_needs_placement,
            "special_needs_category": student.special_needs_category,
        },
        "grade_code": grade_code,
        "class_label": class_label,
        "departure_date": departure_date.isoformat(),
        "enrolled_since": min(joined).isoformat() if joined else None,
        "guardians": guardians,
        "emergency_contacts": contacts,
        "history": history,
        "attendance": attendance_totals(student, through),
        "textbooks": list(textbooks),
        "from_school": {"code": school.code, "name": school.name, "address": school.address,
                        "phone": school.phone, "principal": principal},
    }


# --- Signing -------------------------------------------------------------------------------------------------------

def _signature_payload(document: TransferDocument) -> dict[str, Any]:
    return {
        "format": SIGNATURE_FORMAT,
        "package": str(document.package_id),
        "kind": document.kind,
        "sha256": document.sha256,
        "signer": str(document.signed_by_id),
        "signed_at": document.signed_at.astimezone(datetime.UTC).isoformat(timespec="microseconds"),
    }


def document_bytes(document: TransferDocument) -> bytes:
    """The PDF from the attachments store, decrypted (its hash is checked by transfer_document_verify)."""
    return blob_read(document)


def transfer_document_verify(document: TransferDocument) -> bool:
    """True when the stored PDF is exactly what was certified: its SHA-256 matches, and the principal's
    signature over (package, kind, hash, signer, time) is valid under the seal key."""
    try:
        content = document_bytes(document)
    except (BlobMissingError, DecryptionError):
        return False
    if hashlib.sha256(content).hexdigest() != document.sha256:
        return False
    return get_keyring().seal_valid(canonical_bytes(_signature_payload(document)), document.signature)


def _certify(package: TransferPackage, *, kind: str, content: bytes, signer: Any,
             at: datetime.datetime) -> TransferDocument:
    document = TransferDocument(
        package=package, kind=kind, sha256=hashlib.sha256(content).hexdigest(), size=len(content), signature="",
        signed_by=signer, signed_at=at,
    )
    # Written before the row is saved in the caller's transaction (komu.security.blobs).
    blob_put(document, content)
    document.signature = get_keyring().seal_sign(canonical_bytes(_signature_payload(document)))
    document.full_clean()
    document.save()
    return document


# --- Writes --------------------------------------------------------------------------------------------------------

def _clean_text(value: str, *, label: str, limit: int, field: str, errors: dict[str, list[str]],
                required: bool = False) -> str:
    try:
        reject_control_chars(value, label)
    except TextError as exc:
        errors.setdefault(field, []).append(str(exc))
        return ""
    text = value.strip()
    if required and not text:
        errors.setdefault(field, []).append(_("%(label)sを入力してください。") % {"label": label})
    elif len(text) > limit:
        errors.setdefault(field, []).append(
            _("%(label)sが長すぎます（%(length)d文字）。%(limit)d文字以内で入力してください。")
            % {"label": label, "length": len(text), "limit": limit}
        )
    return text


@transaction.atomic
def transfer_send(*, actor: Actor, student_id: Any, departure_date: datetime.date, to_school_id: Any = None,
                  to_board_id: Any = None, to_school_name: str = "", reason: str,
                  textbooks: Sequence[str] = ()) -> TransferPackage:
    """Record a pupil's 転学 and send the certified package: to the receiving school (status sent) or, when the
    school is not known, to the receiving board (status at_board). One transaction: the 転学 event, the pupil's
    leaving, the package and its three signed PDFs commit together or not at all."""
    student: Student = scope.get_in_scope(
        scope.students_for(actor, roles.TRANSFERS_MANAGE).select_related("school__board"), pk=student_id
    )
    # Two clicks on 送付 must not send two packages: the pupil's row is the lock.
    Student.objects.select_for_update().filter(pk=student.pk).values_list("pk", flat=True).first()
    student.refresh_from_db(fields=["is_active"])
    school = student.school
    grant = certifying_grant(actor, school.pk)
    if grant is None:
        raise PermissionDeniedError(
            _("転学書類は校長（または校長職務代理者の副校長）が証明して送付します。校長・副校長に送付を依頼してください。")
        )
    errors: dict[str, list[str]] = {}
    if not student.is_active:
        raise ValidationFailed(_("この児童生徒は在籍していません（転学・退学・卒業の記録があります）。"))
    if TransferPackage.objects.filter(student=student, status__in=OPEN_STATUSES).exists():
        raise ValidationFailed(_("この児童生徒の転学書類は既に送付されています。取り消してから送り直してください。"))
    reason_text = _clean_text(reason, label=_("転学の事由"), limit=_MAX_REASON, field="reason", errors=errors,
                              required=True)
    to_school: School | None = None
    to_board: Board | None = None
    if to_school_id not in (None, ""):
        to_school = School.objects.select_related("board").filter(pk=to_school_id).first() if str(
            to_school_id).isdigit() else None
        if to_school is None:
            errors["to_school"] = [_("転学先の学校が見つかりません。一覧から選んでください。")]
        elif to_school.pk == school.pk:
            errors["to_school"] = [_("転学先に自校は選べません。")]
        else:
            to_board = to_school.board
    elif to_board_id not in (None, ""):
        to_board = Board.objects.filter(pk=to_board_id).first() if str(to_board_id).isdigit() else None
        if to_board is None:
            errors["to_board"] = [_("転学先の教育委員会が見つかりません。一覧から選んでください。")]
    else:
        errors["to_school"] = [
            _("転学先の学校を選ぶか、学校が未定のときは転学先の教育委員会を選んでください。")
        ]
    name = _clean_text(to_school_name, label=_("転学先の学校名"), limit=_MAX_SCHOOL_NAME, field="to_school_name",
                       errors=errors)
    books: list[str] = []
    for line in textbooks:
        text = _clean_text(line, label=_("教科用図書"), limit=_MAX_TEXTBOOK_LINE, field="textbooks", errors=errors)
        if text:
            books.append(text)
    if len(books) > _MAX_TEXTBOOKS:
        errors.setdefault("textbooks", []).append(
            _("教科用図書は%(limit)d冊までです。") % {"limit": _MAX_TEXTBOOKS}
        )
    membership = _current_membership(student, departure_date)
    grade_code = membership.homeroom_class.grade_code if membership else student.pending_grade_code
    if not grade_code:
        errors.setdefault("departure_date", []).append(
            _("転学日の年度に所属する学級がないため学年が分かりません。先に学級に所属させてください。")
        )
    if errors:
        raise ValidationFailed(_("入力内容を確認してください。"), errors=errors)
    assert to_board is not None  # set whenever there are no errors
    destination = to_school.name if to_school else (name or _("%(board)s管内の学校（指定校未定）") % {
        "board": to_board.name})
    # The 転学 line of the old school's 学籍 (and the pupil leaves: is_active False), validated like a form.
    event = student_services.enrollment_event_record(
        actor=actor, student_id=student.pk, kind=EnrollmentKind.TRANSFER_OUT, date=departure_date,
        grade_code=grade_code, other_school_name=destination[:_MAX_SCHOOL_NAME],
        other_school_code=to_school.code if to_school else "", reason=reason_text,
    )
    student.refresh_from_db()
    now = timezone.now()
    principal = principal_name(school, timezone.localdate())
    record = _build_record(
        student, grade_code=grade_code, class_label=str(membership.homeroom_class) if membership else "",
        departure_date=departure_date, textbooks=books, principal=principal,
    )
    record["transfer_out_event"] = str(event.pk)
    package = TransferPackage(
        student=student, from_school=school, to_school=to_school, to_board=to_board,
        to_school_name=name if to_school is None else "", departure_date=departure_date,
        status=TransferPackage.Status.SENT if to_school else TransferPackage.Status.AT_BOARD,
        record=json.dumps(record, ensure_ascii=False, sort_keys=True), reason=reason_text, created_by=actor.user,
    )
    package.full_clean()
    package.save()
    signer_name = str(actor.user.display_name or actor.user.get_username())
    certifier = pdf.Certifier(
        school_name=school.name, school_address=school.address,
        principal_name=principal or (signer_name if grant.role == Role.PRINCIPAL else ""),
        signer_name=signer_name, signer_is_principal=grant.role == Role.PRINCIPAL, issued_on=timezone.localdate(),
    )
    documents = [
        _certify(package, kind=kind, content=draw(record, certifier).content, signer=actor.user, at=now)
        for kind, draw in _DOCUMENTS
    ]
    audit_record(
        actor=actor.user, action="rosters.transfer.sent", obj=package,
        fields=["student.name", "student.kana", "student.sex", "student.birth_date", "student.address",
                "student.special_needs", "guardian.name", "guardian.phone", "guardian.email", "guardian.address",
                "emergency_contact", "enrollment_event", "attendance.totals"],
        detail={"student_id": str(student.pk), "to_school": to_school.code if to_school else "",
                "to_board": to_board.code, "status": package.status, "certified_as": grant.role,
                "documents": {d.kind: d.sha256 for d in documents}},
        scope=_audit_scope(school),
    )
    return package


@transaction.atomic
def transfer_route(*, actor: Actor, package_id: Any, to_school_id: Any) -> TransferPackage:
    """転入学通知: the receiving board designates the school for a package waiting at the board (→ sent). The
    old school's 転学 line is updated to name the school."""
    package: TransferPackage = scope.get_in_scope(
        packages_for(actor).select_for_update(of=("self",)).filter(to_board_id__in=routing_board_ids(actor)),
        pk=package_id,
    )
    if package.status != TransferPackage.Status.AT_BOARD:
        raise ValidationFailed(_("この転学書類は既に学校へ送付されています。"))
    to_school = (
        School.objects.filter(pk=to_school_id, board_id=package.to_board_id or 0).first()
        if str(to_school_id).isdigit() else None
    )
    if to_school is None:
        raise ValidationFailed(_("入力内容を確認してください。"), errors={
            "to_school": [_("指定する学校を一覧から選んでください（この教育委員会の学校に限ります）。")]
        })
    if to_school.pk == package.from_school_id:
        raise ValidationFailed(_("入力内容を確認してください。"), errors={
            "to_school": [_("転学前の学校は指定できません。")]
        })
    package.to_school = to_school
    package.status = TransferPackage.Status.SENT
    package.save(update_fields=["to_school", "status", "updated_at"])
    event_id = package.data.get("transfer_out_event")
    if event_id:
        EnrollmentEvent.objects.filter(pk=event_id, student_id=package.student_id).update(
            other_school_name=to_school.name, other_school_code=to_school.code, updated_at=timezone.now()
        )
    audit_record(
        actor=actor.user, action="rosters.transfer.routed", obj=package,
        detail={"to_school": to_school.code, "to_board": to_school.board.code if to_school.board_id else "",
                "transfer_out_event": event_id or ""},
        scope=Scope(school_id=to_school.pk, board_id=package.to_board_id),
    )
    return package


@transaction.atomic
def transfer_accept(*, actor: Actor, package_id: Any, transfer_in_date: datetime.date) -> Student:
    """The receiving school accepts: the pupil is created in its registry — name, kana, sex, birth date, address,
    special-needs placement, guardians, emergency contacts, the old school's enrolment history and a 転入学 line
    naming it — awaiting class placement in the grade. Accepting twice returns the same pupil."""
    package: TransferPackage = scope.get_in_scope(
        packages_for(actor).select_for_update(of=("self",)).select_related("from_school", "to_school__board")
        .filter(to_school_id__in=receiving_school_ids(actor)),
        pk=package_id,
    )
    if package.status == TransferPackage.Status.ACCEPTED and package.received_student_id is not None:
        received: Student = Student.objects.get(pk=package.received_student_id)
        return received
    if package.status != TransferPackage.Status.SENT or package.to_school is None:
        raise ValidationFailed(_("この転学書類は受け入れられる状態ではありません。"))
    school = package.to_school
    record = package.data
    departure = datetime.date.fromisoformat(record["departure_date"])
    if transfer_in_date < departure:
        raise ValidationFailed(_("入力内容を確認してください。"), errors={"transfer_in_date": [
            _("転入学日は転学日（%(date)s）以降の日付を入力してください。") % {"date": departure.isoformat()}
        ]})
    try:
        grade = validate_grade_code(str(record["grade_code"]), school_type=school.school_type)
    except CodeError:
        raise ValidationFailed(
            _("転学前の学年（%(grade)s）はこの学校の学年にありません。学校の種類を確認してください。")
            % {"grade": record["grade_code"]}
        ) from None
    p = record["student"]
    student = student_services.student_create(actor=actor, school=school, data=student_services.StudentInput(
        family_name=p["family_name"], given_name=p["given_name"], family_name_kana=p["family_name_kana"],
        given_name_kana=p["given_name_kana"], sex=p["sex"],
        birth_date=datetime.date.fromisoformat(p["birth_date"]) if p.get("birth_date") else None,
        address=p.get("address", ""),
    ))
    # The placement travels with the record (the old school decided it); awaiting a class in the grade.
    student.special_needs_placement = p.get("special_needs_placement") or "none"
    student.special_needs_category = p.get("special_needs_category") or ""
    student.pending_year = fiscal_year_of(transfer_in_date)
    student.pending_grade_code = grade
    student.full_clean()
    student.save()
    for g in record.get("guardians", []):
        student_services.guardian_create_for(
            actor=actor, student=student, relationship=(g.get("relationship") or _("保護者"))[:20],
            priority=int(g.get("priority") or 1),
            data=student_services.GuardianInput(
                family_name=g["family_name"], given_name=g["given_name"],
                family_name_kana=g.get("family_name_kana", ""), given_name_kana=g.get("given_name_kana", ""),
                phone=g.get("phone", ""), email=g.get("email", ""), address=g.get("address", ""),
            ),
        )
    contacts = record.get("emergency_contacts", [])
    if contacts:
        student_services.emergency_contact_set(actor=actor, student_id=student.pk, contacts=[
            student_services.EmergencyContactInput(name=c["name"], relationship=c["relationship"],
                                                   phone=c["phone"], note=c.get("note", ""))
            for c in contacts
        ])
    old = record["from_school"]
    for e in record.get("history", []):
        if e["kind"] in LEAVING_KINDS:
            continue  # the old school's 転学 is this school's 転入学, recorded below
        code = e.get("other_school_code") or old["code"]
        student_services.enrollment_event_record(
            actor=actor, student_id=student.pk, kind=e["kind"], date=datetime.date.fromisoformat(e["date"]),
            grade_code=e["grade_code"], other_school_name=e.get("other_school_name") or old["name"],
            other_school_code="" if code == school.code else code, reason=e.get("reason", ""),
        )
    student_services.enrollment_event_record(
        actor=actor, student_id=student.pk, kind=EnrollmentKind.TRANSFER_IN, date=transfer_in_date,
        grade_code=grade, other_school_name=old["name"], other_school_code=old["code"], reason=package.reason,
    )
    package.status = TransferPackage.Status.ACCEPTED
    package.accepted_at = timezone.now()
    package.accepted_by = actor.user
    package.received_student = student
    package.save(update_fields=["status", "accepted_at", "accepted_by", "received_student", "updated_at"])
    audit_record(
        actor=actor.user, action="rosters.transfer.accepted", obj=package,
        fields=["student", "guardian", "emergency_contact", "enrollment_event"],
        detail={"student_id": str(student.pk), "from_school": old["code"], "pending_year": student.pending_year,
                "pending_grade_code": grade},
        scope=_audit_scope(school),
    )
    return student


@transaction.atomic
def transfer_cancel(*, actor: Actor, package_id: Any, reason: str) -> TransferPackage:
    """The old school withdraws a package not yet accepted (the family stayed, the wrong school was chosen): the
    pupil is enrolled again and the 転学 line the package recorded is removed."""
    package: TransferPackage = scope.get_in_scope(
        packages_for(actor).select_for_update(of=("self",)).select_related("from_school"), pk=package_id
    )
    if certifying_grant(actor, package.from_school_id) is None:
        if package.from_school_id in receiving_school_ids(actor):
            raise PermissionDeniedError(_("転学書類の取消は校長・副校長が行います。"))
        raise NotFoundOrNoAccess("見つかりません。")
    if package.status not in OPEN_STATUSES:
        raise ValidationFailed(_("受け入れ済み・取消済みの転学書類は取り消せません。"))
    errors: dict[str, list[str]] = {}
    reason_text = _clean_text(reason, label=_("取消の理由"), limit=_MAX_REASON, field="reason", errors=errors,
                              required=True)
    if errors:
        raise ValidationFailed(_("入力内容を確認してください。"), errors=errors)
    event_id = package.data.get("transfer_out_event")
    removed = 0
    if event_id:
        removed = EnrollmentEvent.objects.filter(
            pk=event_id, student_id=package.student_id, kind=EnrollmentKind.TRANSFER_OUT
        ).delete()[0]
    Student.objects.filter(pk=package.student_id).update(is_active=True, updated_at=timezone.now())
    record = package.data
    # The reason may tell family circumstances: it is kept in the encrypted record, not in the audit detail.
    record["cancelled"] = {"reason": reason_text, "at": timezone.now().isoformat(), "by": str(actor.user.pk)}
    package.record = json.dumps(record, ensure_ascii=False, sort_keys=True)
    package.status = TransferPackage.Status.CANCELLED
    package.save(update_fields=["status", "record", "updated_at"])
    audit_record(
        actor=actor.user, action="rosters.transfer.cancelled", obj=package, fields=["reason"],
        detail={"student_id": str(package.student_id), "transfer_out_event": event_id or "",
                "event_removed": bool(removed)},
        scope=_audit_scope(package.from_school),
    )
    return package
