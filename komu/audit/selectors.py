"""Reading the audit trail, always within the viewer's scope."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from komu.audit.models import AuditEvent


def audit_events_for(*, actor: Any, object_type: str = "", object_id: str = "") -> QuerySet[AuditEvent]:
    """Events the actor may see: a principal their school's, a board officer their board's schools', an operator
    all events. Others see none."""
    from komu.access import scope

    visible = scope.audit_scope(actor)
    if visible is None:
        return AuditEvent.objects.none()
    qs = AuditEvent.objects.all() if visible.everything else AuditEvent.objects.filter(
        Q(school_id__in=visible.school_ids) | Q(board_id__in=visible.board_ids)
    )
    if object_type:
        qs = qs.filter(object_type=object_type)
    if object_id:
        qs = qs.filter(object_id=object_id)
    return qs.order_by("-id")


_ACTION_LABELS = {
    "students.list.viewed": _("児童生徒一覧を表示"),
    "students.student.viewed": _("児童生徒の記録を表示"),
    "students.student.created": _("児童生徒を登録"),
    "students.student.updated": _("児童生徒の記録を変更"),
    "students.membership.assigned": _("学級に所属"),
    "students.guardian.created": _("保護者を登録"),
    "accounts.user.created": _("利用者を作成"),
    "accounts.mfa.totp_added": _("認証アプリを登録"),
    "accounts.mfa.device_removed": _("二要素認証の手段を削除"),
    "accounts.mfa.recovery_codes_issued": _("復旧コードを発行"),
    "accounts.api_token.issued": _("APIトークンを発行"),
    "directory.bulk_loaded": _("組織を一括登録"),
    "security.keys.rotated": _("暗号鍵をローテーション"),
    "directory.school.created": _("学校を登録"),
    "directory.school.updated": _("学校の情報を変更"),
    "directory.board.created": _("教育委員会を登録"),
    "directory.board.updated": _("教育委員会の情報を変更"),
    "directory.school_year.created": _("年度を登録"),
    "directory.terms.set": _("学期を設定"),
    "directory.class.created": _("学級を登録"),
    "directory.class.updated": _("学級を変更"),
    "directory.staff.assigned": _("教職員を配置"),
    "directory.staff.ended": _("配置を終了"),
    "demo.loaded": _("デモデータを作成"),
    "attendance.mark.set": _("出欠を記録"),
    "attendance.guardian_report.submitted": _("保護者が欠席連絡を送信"),
    "attendance.guardian_report.viewed": _("欠席連絡を表示"),
    "attendance.register.printed": _("出席簿を印刷"),
    "approvals.request.submitted": _("決裁を申請"),
    "approvals.request.approved": _("決裁を承認"),
    "approvals.request.returned": _("決裁を差し戻し"),
}


def describe_action(action: str) -> str:
    """A label for an action code in the current language (Japanese msgids); unknown codes are shown as they
    are."""
    return str(_ACTION_LABELS.get(action, action))
