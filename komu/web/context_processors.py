"""What every page's shell needs: the navigation for the signed-in person and how they are shown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext as _

from komu.access import roles
from komu.access.scope import get_actor
from komu.directory.models import Role


@dataclass(frozen=True)
class NavItem:
    label: str
    url: str
    active: bool


def _items(request: HttpRequest) -> list[tuple[str, str]]:
    actor = get_actor(request.user)
    items = [(_("ホーム"), reverse("web:home"))]
    if actor.is_guardian:
        items.append((_("わが子の情報"), reverse("students:children")))
    if actor.has(roles.STUDENTS_VIEW) and not actor.is_guardian:
        items.append((_("児童生徒"), reverse("students:list")))
    if actor.has(roles.GAKUREIBO_MANAGE):
        items.append((_("学齢簿・入学者名簿"), reverse("rosters:board_entries")))
        items.append((_("学齢簿の取込"), reverse("rosters:import_list")))
    if actor.has(roles.ROSTERS_RECEIVE):
        items.append((_("入学者名簿"), reverse("rosters:school_inbox")))
    if actor.has(roles.CLASS_PLACEMENT):
        items.append((_("学級編制"), reverse("students:placement")))
    if actor.has(roles.TRANSFERS_MANAGE):
        items.append((_("転学"), reverse("rosters:transfer_list")))
    if actor.has(roles.STUDENTS_EXPORT) and not actor.is_guardian:
        items.append((_("名簿の出力"), reverse("rosters:export_index")))
    if actor.has(roles.STUDENTS_EXPORT) and not actor.is_guardian:
        items.append((_("名簿の印刷"), reverse("disclosures:print_index")))
    if actor.has(roles.DISCLOSURES_MANAGE):
        items.append((_("印刷物の管理"), reverse("disclosures:register")))
    if actor.has(roles.TRIPS_ACCOMPANY) or actor.has(roles.TRIPS_MANAGE):
        items.append((_("校外活動"), reverse("trips:list")))
    if actor.has(roles.ONEROSTER_EXPORT):
        items.append((_("OneRoster 出力"), reverse("oneroster:export")))
    if actor.has(roles.ONEROSTER_IMPORT):
        items.append((_("OneRoster 取込"), reverse("oneroster:import")))
    if actor.has(roles.ONEROSTER_CLIENTS):
        items.append((_("OneRoster 接続先"), reverse("oneroster:clients")))
    if actor.has(roles.ATTENDANCE_REPORT):
        items.append((_("欠席・遅刻・早退の連絡"), reverse("attendance:guardian_report")))
    if actor.has(roles.ATTENDANCE_VIEW):
        items.append((_("出欠"), reverse("attendance:home")))
        items.append((_("保護者からの連絡"), reverse("attendance:reports")))
        items.append((_("月の出席簿"), reverse("attendance:monthly_index")))
    if actor.has(roles.NOTICES_RECEIVE):
        items.append((_("受信した通知"), reverse("notices:inbox")))
    if actor.has(roles.NOTICES_SEND):
        items.append((_("送信した通知"), reverse("notices:sent")))
    if actor.has(roles.LETTERS_SEND):
        items.append((_("保護者へのお便り"), reverse("notices:letters")))
    if actor.has(roles.LETTERS_READ):
        items.append((_("学校からのお便り"), reverse("notices:guardian_letters")))
    if actor.has(roles.SURVEYS_BUILD):
        items.append((_("照会（作成・集計）"), reverse("surveys:index")))
    elif actor.has(roles.SURVEYS_ANSWER):
        items.append((_("照会への回答"), reverse("surveys:index")))
    if actor.has(roles.APPROVALS_USE):
        items.append((_("決裁"), reverse("approvals:inbox")))
    if actor.has(roles.DIRECTORY_VIEW):
        items.append((_("学校・学級"), reverse("directory:schools")))
    if actor.has(roles.PRIVACY_INCIDENTS):
        items.append((_("漏えい等の事案"), reverse("privacy:incident_list")))
    if actor.has(roles.SYSTEM_OPERATE):
        items.append((_("保存期間表"), reverse("privacy:retention")))
    if actor.has(roles.PROGRESS_VIEW):
        items.append((_("校務DXの進捗"), reverse("progress:dashboard")))
        items.append((_("都道府県の地図"), reverse("progress:map")))
    if actor.has(roles.CHECKLIST_ANSWER):
        items.append((_("校務DXチェックリスト"), reverse("progress:checklist")))
    if actor.has(roles.PROGRESS_FEDERATION):
        items.append((_("連携するKomu"), reverse("progress:federation_members")))
    if actor.has(roles.STATS_VIEW):
        items.append((_("統計"), reverse("web:stats")))
    if actor.has(roles.AUDIT_VIEW):
        items.append((_("アクセス記録"), reverse("audit:trail")))
    if actor.has(roles.DIRECTORY_BULK_LOAD):
        items.append((_("一括登録"), reverse("directory:bulk_load")))
    if actor.has(roles.NOTICES_SEND):
        items.append((_("紙・FAXの記録"), reverse("notices:paper_sends")))
    items.append((_("お知らせ"), reverse("notices:notification_list")))
    items.append((_("アカウント設定"), reverse("accounts:security")))
    return items


def shell(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    actor = get_actor(user)
    path = request.path
    items = _items(request)
    # The current page is the item with the longest URL prefix of the path (/attendance/reports/ is 保護者からの連絡,
    # not 出欠); the home page only matches itself.
    matches = [url for _label, url in items if (path == url if url == "/" else path.startswith(url))]
    current = max(matches, key=len, default=None)
    nav = [NavItem(label=label, url=url, active=url == current) for label, url in items]
    primary = actor.primary
    return {
        "nav_items": nav,
        "user_display": user.display_name or user.get_username(),
        "current_role_label": (
            f"{dict(Role.choices)[primary.role]}（{primary.org_label}）" if primary else ""
        ),
    }
