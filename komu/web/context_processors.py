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


@dataclass(frozen=True)
class NavSection:
    """A group of the navigation (a <details>); ``open`` when it holds the current page — on narrow screens the
    others are collapsed by app.js."""

    title: str
    items: list[NavItem]
    open: bool


# Sections of the navigation, in order. The first has no heading and is always open.
_TOP, _PUPILS, _ATTENDANCE, _COMMUNICATION, _PROGRESS, _ADMIN = range(6)


def _section_titles() -> dict[int, str]:
    return {
        _TOP: "",
        _PUPILS: _("児童生徒・名簿"),
        _ATTENDANCE: _("出欠・校外活動"),
        _COMMUNICATION: _("連絡・照会・決裁"),
        _PROGRESS: _("校務DX"),
        _ADMIN: _("管理・個人情報の保護"),
    }


def _items(request: HttpRequest) -> list[tuple[int, str, str]]:
    actor = get_actor(request.user)
    items: list[tuple[int, str, str]] = [(_TOP, _("ホーム"), reverse("web:home"))]

    def add(section: int, label: str, url_name: str) -> None:
        items.append((section, label, reverse(url_name)))

    staff = not actor.is_guardian
    if actor.is_guardian:
        add(_TOP, _("わが子の情報"), "students:children")
    if actor.has(roles.ATTENDANCE_REPORT):
        add(_TOP, _("欠席・遅刻・早退の連絡"), "attendance:guardian_report")
    if actor.has(roles.LETTERS_READ):
        add(_TOP, _("学校からのお便り"), "notices:guardian_letters")
    add(_TOP, _("お知らせ"), "notices:notification_list")

    if actor.has(roles.STUDENTS_VIEW) and staff:
        add(_PUPILS, _("児童生徒"), "students:list")
    if actor.has(roles.GAKUREIBO_MANAGE):
        add(_PUPILS, _("学齢簿・入学者名簿"), "rosters:board_entries")
        add(_PUPILS, _("学齢簿の取込"), "rosters:import_list")
    if actor.has(roles.ROSTERS_RECEIVE):
        add(_PUPILS, _("入学者名簿"), "rosters:school_inbox")
    if actor.has(roles.CLASS_PLACEMENT):
        add(_PUPILS, _("学級編制"), "students:placement")
    if actor.has(roles.TRANSFERS_MANAGE):
        add(_PUPILS, _("転学"), "rosters:transfer_list")
    if actor.has(roles.STUDENTS_EXPORT) and staff:
        add(_PUPILS, _("名簿の出力"), "rosters:export_index")
        add(_PUPILS, _("名簿の印刷"), "disclosures:print_index")
    if actor.has(roles.ONEROSTER_EXPORT):
        add(_PUPILS, _("OneRoster 出力"), "oneroster:export")
    if actor.has(roles.ONEROSTER_IMPORT):
        add(_PUPILS, _("OneRoster 取込"), "oneroster:import")
    if actor.has(roles.ONEROSTER_CLIENTS):
        add(_PUPILS, _("OneRoster 接続先"), "oneroster:clients")

    if actor.has(roles.ATTENDANCE_VIEW):
        add(_ATTENDANCE, _("出欠"), "attendance:home")
        add(_ATTENDANCE, _("保護者からの連絡"), "attendance:reports")
        add(_ATTENDANCE, _("月の出席簿"), "attendance:monthly_index")
    if actor.has(roles.TRIPS_ACCOMPANY) or actor.has(roles.TRIPS_MANAGE):
        add(_ATTENDANCE, _("校外活動"), "trips:list")

    if actor.has(roles.NOTICES_RECEIVE):
        add(_COMMUNICATION, _("受信した通知"), "notices:inbox")
    if actor.has(roles.NOTICES_SEND):
        add(_COMMUNICATION, _("送信した通知"), "notices:sent")
    if actor.has(roles.LETTERS_SEND):
        add(_COMMUNICATION, _("保護者へのお便り"), "notices:letters")
    if actor.has(roles.SURVEYS_BUILD):
        add(_COMMUNICATION, _("照会（作成・集計）"), "surveys:index")
    elif actor.has(roles.SURVEYS_ANSWER):
        add(_COMMUNICATION, _("照会への回答"), "surveys:index")
    if actor.has(roles.APPROVALS_USE):
        add(_COMMUNICATION, _("決裁"), "approvals:inbox")
    if actor.has(roles.NOTICES_SEND):
        add(_COMMUNICATION, _("紙・FAXの記録"), "notices:paper_sends")

    if actor.has(roles.PROGRESS_VIEW):
        add(_PROGRESS, _("校務DXの進捗"), "progress:dashboard")
        add(_PROGRESS, _("都道府県の地図"), "progress:map")
    if actor.has(roles.CHECKLIST_ANSWER):
        add(_PROGRESS, _("校務DXチェックリスト"), "progress:checklist")
    if actor.has(roles.PROGRESS_FEDERATION):
        add(_PROGRESS, _("連携するKomu"), "progress:federation_members")
    if actor.has(roles.STATS_VIEW):
        add(_PROGRESS, _("統計"), "web:stats")

    if actor.has(roles.DIRECTORY_VIEW):
        add(_ADMIN, _("学校・学級"), "directory:schools")
    if actor.has(roles.DIRECTORY_BULK_LOAD):
        add(_ADMIN, _("一括登録"), "directory:bulk_load")
    if actor.has(roles.DISCLOSURES_MANAGE):
        add(_ADMIN, _("印刷物の管理"), "disclosures:register")
    if actor.has(roles.PRIVACY_INCIDENTS):
        add(_ADMIN, _("漏えい等の事案"), "privacy:incident_list")
    if actor.has(roles.AUDIT_VIEW):
        add(_ADMIN, _("アクセス記録"), "audit:trail")
    if actor.has(roles.SYSTEM_OPERATE):
        add(_ADMIN, _("保存期間表"), "privacy:retention")
    add(_ADMIN, _("アカウント設定"), "accounts:security")
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
    matches = [url for _s, _label, url in items if (path == url if url == "/" else path.startswith(url))]
    current = max(matches, key=len, default=None)
    nav = [NavItem(label=label, url=url, active=url == current) for _s, label, url in items]
    titles = _section_titles()
    sections = []
    for key in sorted({section for section, _label, _url in items}):
        entries = [n for (section, _l, _u), n in zip(items, nav, strict=True) if section == key]
        sections.append(NavSection(title=titles[key], items=entries, open=key == _TOP or any(n.active for n in entries)))
    primary = actor.primary
    return {
        "nav_items": nav,
        "nav_sections": sections,
        "user_display": user.display_name or user.get_username(),
        "current_role_label": (
            f"{dict(Role.choices)[primary.role]}（{primary.org_display or primary.org_label}）" if primary else ""
        ),
    }
