"""`komu retention run [--dry-run]` and `komu retention show`: the retention schedule (保存期間表)."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from komu.attendance.services import retention as attendance_retention
from komu.audit import context
from komu.privacy import retention

COUNT_LABELS = {
    **attendance_retention.LABELS,
    "save_receipts": "保存の受領記録",
    "students": "児童生徒の学籍の記録",
    "guardians": "保護者の記録",
    "emergency_contacts": "緊急連絡先",
    "guardian_contacts": "保護者の連絡先（電話・メール・住所）",
    "audit_events": "監査イベント",
}


class Command(BaseCommand):
    help = (
        "保存期間表に従って期限を過ぎた記録を削除する。run: 出席簿（出欠アプリの削除処理を使用）、学籍の記録、"
        "退学等の後の連絡先、監査ログの古い部分を削除し、規則ごとの件数を記録する。--dry-run は件数の表示だけで"
        "何も削除・記録しない。show: 保存期間表と最近の実行を表示する。"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        run = sub.add_parser("run", help="期限を過ぎた記録を削除する")
        run.add_argument("--dry-run", action="store_true", help="削除する件数を表示するだけで、何も削除しない")
        sub.add_parser("show", help="保存期間表と最近の実行を表示する")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "show":
            for rule in retention.schedule():
                state = "" if rule.enabled else "（自動削除しない）"
                self.stdout.write(f"{rule.get_key_display()}: {rule.years}年{state} — {rule.basis}")
            for run in retention.last_runs(5):
                total = sum(sum(r.get("counts", {}).values()) for r in run.results)
                self.stdout.write(f"実行 {run.started_at:%Y-%m-%d %H:%M} {run.actor_username}: {total} 件")
            return
        dry_run = options["dry_run"]
        token = context.begin(context.RequestContext(
            request_id=f"cli-{uuid.uuid4().hex[:12]}", channel="cli", role="", org="komu retention run",
        ))
        try:
            report = retention.retention_run(dry_run=dry_run)
        finally:
            context.end(token)
        for result in report.results:
            counts = "、".join(f"{COUNT_LABELS.get(k, k)} {n}" for k, n in result.counts.items()) or "対象なし"
            note = f"（{result.note}）" if result.note else ""
            self.stdout.write(f"{result.label}（{result.years}年）: {counts}{note}")
        verb = "削除します（--dry-run のため何も削除していません）" if dry_run else "削除しました"
        self.stdout.write(self.style.SUCCESS(f"保存期間を過ぎた記録 {report.total} 件を{verb}。"))
