"""紙・FAX で送ったもの: a board or school records, in one click, a send it still had to make outside Komu. The
counts per month (and beside them the notices and letters sent through Komu) feed the progress database."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from komu.access import roles
from komu.access.scope import Actor, require
from komu.audit.services import audit_record
from komu.core.errors import ValidationFailed
from komu.notices.models import PaperSend
from komu.notices.services.notices import sender_for


@dataclass(frozen=True)
class PaperSendInput:
    channel: str
    counterparty: str
    document_kind: str
    sent_on: datetime.date | None = None


@transaction.atomic
def paper_send_record(*, actor: Actor, data: PaperSendInput) -> PaperSend:
    require(actor, roles.NOTICES_SEND)
    sender = sender_for(actor)
    errors: dict[str, list[str]] = {}
    if data.channel not in PaperSend.Channel.values:
        errors["channel"] = [_("FAX か紙かを選んでください。")]
    if data.counterparty not in PaperSend.Counterparty.values:
        errors["counterparty"] = [_("相手先の区分を選んでください。")]
    kind = " ".join(data.document_kind.split())
    if not kind:
        errors["document_kind"] = [_("文書の種類を入力してください（例: 給食の数量変更）。")]
    elif len(kind) > 100:
        errors["document_kind"] = [_("文書の種類は100文字以内で入力してください。")]
    sent_on = data.sent_on or timezone.localdate()
    if sent_on > timezone.localdate():
        errors["sent_on"] = [_("送った日には今日までの日付を入力してください。")]
    if errors:
        raise ValidationFailed(next(iter(errors.values()))[0], errors=errors)
    record = PaperSend(school=sender.school, board=sender.board, channel=data.channel,
                       counterparty=data.counterparty, document_kind=kind, sent_on=sent_on, recorded_by=actor.user)
    record.full_clean()
    record.save()
    audit_record(actor=actor.user, action="notices.paper_send.recorded", obj=record, scope=sender.audit_scope,
                 detail={"channel": record.channel, "counterparty": record.counterparty})
    return record
