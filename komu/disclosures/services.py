"""Writes of the disclosure log (開示記録): recording a print or export, closing a printed document (returned,
shredded) and reporting it lost. Every service checks capability and scope and audits in the same transaction.

The watermark text (who, when, serial) is made here, once, so the PDF, the XLSX header/footer and the CSV note
all carry the same words.
"""

from __future__ import annotations

import datetime
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone
from django.utils.translation import gettext as _

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.audit.services import Scope, audit_record
from komu.core.errors import KomuError, PermissionDeniedError, ValidationFailed
from komu.core.text import TextError, reject_control_chars
from komu.directory.models import School
from komu.disclosures.models import Disclosure
from komu.disclosures.pdf import ContactLine, PupilEntry, class_document_pdf
from komu.students.models import ClassMembership, EmergencyContact, GuardianLink

_MAX_REASON = 200
# No 0/O, 1/I/L: the serial is read aloud on the phone when a document is reported lost.
_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
# More persons than this in one document is a bulk disclosure and needs a fresh re-authentication (step-up).
BULK_PERSONS = 40


def new_serial() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def clean_reason(reason: str) -> str:
    """The reason for a print or export, stripped; ValidationFailed (on "reason") when empty, too long or holding
    control characters."""
    text = (reason or "").strip()
    try:
        reject_control_chars(text, _("出力の目的"))
    except TextError as exc:
        raise ValidationFailed(str(exc), errors={"reason": [str(exc)]}) from None
    if not text:
        message = _("出力の目的を入力してください（例: 修学旅行の引率のため）。")
        raise ValidationFailed(message, errors={"reason": [message]})
    if len(text) > _MAX_REASON:
        message = _("出力の目的は%(limit)d文字以内で入力してください。") % {"limit": _MAX_REASON}
        raise ValidationFailed(message, errors={"reason": [message]})
    return text


def is_bulk(*, person_count: int, class_count: int = 1, with_contacts: bool = False) -> bool:
    """A bulk disclosure needs step-up: more than one class, more than BULK_PERSONS persons, or contacts."""
    return class_count > 1 or person_count > BULK_PERSONS or with_contacts


def printer_name(user: Any) -> str:
    if isinstance(user, str):
        return user
    return str(getattr(user, "display_name", "") or user.get_username())


def watermark_words(*, user: Any, at: datetime.datetime, serial: str) -> str:
    """The words on every page (and in a file's header, footer or note): who, when, the serial."""
    when = timezone.localtime(at).strftime("%Y-%m-%d %H:%M")
    return _("%(name)s %(when)s 出力　通し番号 %(serial)s　持出し・複製禁止") % {
        "name": printer_name(user), "when": when, "serial": serial,
    }


def watermark_text(disclosure: Disclosure) -> str:
    return watermark_words(user=disclosure.actor, at=disclosure.created_at, serial=disclosure.serial)


def disclosure_record(*, actor: Actor, document: str, school: School | None, person_ids: Sequence[object],
                      fields: Sequence[str], reason: str, medium: str, serial: str = "") -> Disclosure:
    """Record one print or export (the serial goes on every page: pass the one already written into a file, or
    let a new one be drawn). The caller has already checked what the actor may print; this records it and
    audits "disclosures.disclosure.recorded". Call it inside the transaction that audits the output itself."""
    if medium not in Disclosure.Medium.values:
        raise ValidationFailed(_("出力の形態が正しくありません。"))
    reason_text = clean_reason(reason)
    with transaction.atomic():
        disclosure = Disclosure(
            serial=serial or new_serial(), actor=actor.user, school=school, document=document[:100], medium=medium,
            reason=reason_text, person_ids=[str(p) for p in person_ids], fields=list(fields),
        )
        disclosure.full_clean()
        disclosure.save()
        audit_record(
            actor=actor.user, action="disclosures.disclosure.recorded", obj=disclosure, fields=list(fields),
            detail={"serial": disclosure.serial, "document": disclosure.document, "medium": medium,
                    "reason": reason_text, "person_ids": disclosure.person_ids},
            scope=Scope(school_id=school.pk, board_id=school.board_id) if school else None,
        )
    return disclosure


def _managed(actor: Actor, serial: str) -> Disclosure:
    if not actor.has(roles.DISCLOSURES_MANAGE):
        raise PermissionDeniedError(_("出力した文書を管理する権限がありません。"))
    schools = scope.schools_for(actor, roles.DISCLOSURES_MANAGE)
    return scope.get_in_scope(
        Disclosure.objects.select_related("actor", "school").filter(school__in=schools).select_for_update(),
        serial=str(serial).strip().upper(),
    )


def disclosure_close(*, actor: Actor, serial: str, status: str) -> Disclosure:
    """The principal records a printed document returned or shredded. A closed document stays closed."""
    if status not in (Disclosure.Status.RETURNED, Disclosure.Status.SHREDDED):
        raise ValidationFailed(_("返却済みか廃棄済みを選んでください。"))
    with transaction.atomic():
        disclosure = _managed(actor, serial)
        if disclosure.status != Disclosure.Status.OUTSTANDING:
            raise ValidationFailed(_("この文書はすでに「%(status)s」と記録されています。")
                                   % {"status": disclosure.get_status_display()})
        disclosure.status = status
        disclosure.closed_at = timezone.now()
        disclosure.closed_by = actor.user
        disclosure.save(update_fields=["status", "closed_at", "closed_by", "updated_at"])
        audit_record(actor=actor.user, action=f"disclosures.disclosure.{status}", obj=disclosure,
                     detail={"serial": disclosure.serial}, scope=_scope(disclosure))
    return disclosure


def _scope(disclosure: Disclosure) -> Scope | None:
    school = disclosure.school
    return Scope(school_id=school.pk, board_id=school.board_id) if school else None


def privacy_incident_for_lost_document(*, actor: Actor, serial: str) -> str:
    """Draft the breach-response incident (komu.privacy) from the lost document: its persons and data items are
    exactly those recorded under the serial. The incident's id; "" when the actor may not record incidents
    (the privacy service checks privacy.incidents itself)."""
    from komu.privacy.services import incident_create_from_lost_document

    if not actor.has(roles.PRIVACY_INCIDENTS):
        return ""
    incident = incident_create_from_lost_document(actor=actor, serial=serial)
    return str(incident.pk)


def disclosure_report_lost(*, actor: Actor, serial: str) -> Disclosure:
    """Record a printed document as lost (from outstanding, or even after it was marked returned by mistake)."""
    with transaction.atomic():
        disclosure = _managed(actor, serial)
        if disclosure.status == Disclosure.Status.LOST:
            return disclosure
        disclosure.status = Disclosure.Status.LOST
        disclosure.closed_at = timezone.now()
        disclosure.closed_by = actor.user
        disclosure.save(update_fields=["status", "closed_at", "closed_by", "updated_at"])
        audit_record(actor=actor.user, action="disclosures.disclosure.lost", obj=disclosure,
                     fields=disclosure.fields,
                     detail={"serial": disclosure.serial, "person_ids": disclosure.person_ids},
                     scope=_scope(disclosure))
    return disclosure


class StepUpRequired(KomuError):
    """A bulk disclosure without a re-authentication in the last KOMU_REAUTH_SECONDS: the view sends the person
    to accounts:reauth and back."""


# The printed class documents: kind → (title, field codes).
CLASS_DOCUMENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "class_list": ("学級名簿", ("shusseki_no", "name", "kana", "sex")),
    "contacts": ("緊急連絡先一覧（連絡網）",
                 ("shusseki_no", "name", "guardian_name", "guardian_relationship", "guardian_phone",
                  "emergency_contacts")),
}
_SEX = {"male": "男", "female": "女"}


@dataclass(frozen=True)
class PrintOutcome:
    content: bytes
    filename: str
    disclosure: Disclosure


def class_document_print(*, actor: Actor, class_id: object, kind: str, reason: str,
                         reauthenticated: bool) -> PrintOutcome:
    """Print one class's 学級名簿 or 緊急連絡先一覧 as a watermarked PDF. Needs students.export for the class (a
    homeroom teacher: their own) and, for contacts, guardians.view_contact; contacts or more than BULK_PERSONS
    pupils need a fresh re-authentication. Recorded in the disclosure log (serial on every page) and audited."""
    from komu.students.exports import export_class_get

    if not actor.has(roles.STUDENTS_EXPORT):
        raise PermissionDeniedError(_("名簿を印刷する権限がありません。"))
    klass = export_class_get(actor=actor, class_id=class_id)
    if kind not in CLASS_DOCUMENTS:
        message = _("印刷する文書を選んでください。")
        raise ValidationFailed(message, errors={"kind": [message]})
    clean_reason(reason)
    title, fields = CLASS_DOCUMENTS[kind]
    school = klass.school_year.school
    with_contacts = kind == "contacts"
    if with_contacts and not scope.schools_for(actor, roles.GUARDIANS_VIEW_CONTACT).filter(pk=school.pk).exists():
        raise PermissionDeniedError(_("保護者の連絡先を印刷する権限がありません。"))
    memberships = list(
        ClassMembership.objects.filter(homeroom_class=klass, student__is_active=True)
        .select_related("student")
        .prefetch_related(
            Prefetch("student__guardian_links", to_attr="ordered_links",
                     queryset=GuardianLink.objects.select_related("guardian").order_by("priority")),
            Prefetch("student__emergency_contacts", to_attr="ordered_contacts",
                     queryset=EmergencyContact.objects.order_by("priority")),
        )
        .order_by("shusseki_no")
    )
    if is_bulk(person_count=len(memberships), with_contacts=with_contacts) and not reauthenticated:
        raise StepUpRequired(_("連絡先や多数の個人データを印刷するには、もう一度本人確認をしてください。"))
    disclosure = disclosure_record(
        actor=actor, document=f"{title} {klass}", school=school, person_ids=[m.student_id for m in memberships],
        fields=fields, reason=reason, medium=Disclosure.Medium.PRINT,
    )
    pupils = []
    for m in memberships:
        s = m.student
        contacts: list[ContactLine] = []
        if with_contacts:
            contacts = [ContactLine(link.relationship, link.guardian.full_name, link.guardian.phone)
                        for link in s.ordered_links]  # type: ignore[attr-defined]
            contacts += [ContactLine(_("緊急%(n)d（%(rel)s）") % {"n": ec.priority, "rel": ec.relationship},
                                     ec.name, ec.phone) for ec in s.ordered_contacts]  # type: ignore[attr-defined]
        pupils.append(PupilEntry(m.shusseki_no, s.full_name, s.full_kana, _SEX.get(s.sex, ""), contacts))
    subtitle = _("%(school)s %(klass)s　%(n)d名　目的: %(reason)s") % {
        "school": school.name, "klass": klass, "n": len(pupils), "reason": disclosure.reason}
    result = class_document_pdf(title=title, subtitle=subtitle, pupils=pupils, with_contacts=with_contacts,
                                watermark=watermark_text(disclosure), serial=disclosure.serial)
    filename = f"{title}_{klass}_{disclosure.serial}.pdf"
    return PrintOutcome(result.content, filename, disclosure)


def transfer_document_disclosed(*, actor: Actor, package_id: object, label: str) -> Disclosure:
    """A 転学 document downloaded (komu.rosters): recorded as a file disclosure of that pupil. Its purpose is the
    transfer itself, so no reason is asked; no watermark is drawn either, because the PDF is the electronically
    signed original whose bytes the receiving school verifies — the serial goes in the file name."""
    from komu.rosters.services.transfers import packages_for

    package = scope.get_in_scope(packages_for(actor), pk=package_id)
    own = scope.schools_for(actor, roles.TRANSFERS_MANAGE)
    school = None
    for candidate in (package.from_school_id, package.to_school_id):
        if candidate is not None and own.filter(pk=candidate).exists():
            school = School.objects.get(pk=candidate)
            break
    return disclosure_record(
        actor=actor, document=_("転学書類（%(label)s）") % {"label": label}, school=school,
        person_ids=[package.student_id], fields=["transfer_documents"],
        reason=_("転学の手続き（電子署名付き転学書類の保存・印刷）"), medium=Disclosure.Medium.FILE,
    )
