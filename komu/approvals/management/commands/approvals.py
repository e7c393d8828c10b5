from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from komu.approvals import selectors, services, tasks
from komu.directory.models import School


class Command(BaseCommand):
    help = (
        "決裁の運用。verify: 電子印（承認の電子署名）をすべて検証する。署名・記録・内容（現在の内容、または訂正前の版は"
        "申請時の記録）のどれかが合わない電子印が1つでもあれば終了コード1で終わる。remind: 決裁が一定日数止まっている"
        "申請の決裁者にメールで督促する（既定 3 日、KOMU_APPROVAL_REMIND_DAYS）。"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        verify = sub.add_parser("verify", help="電子印を検証する（無効が1つでもあれば終了コード1）")
        verify.add_argument("--school", metavar="CODE", help="学校コードで絞り込む")
        verify.add_argument("--request", metavar="ID", type=int, help="決裁の番号で絞り込む")
        remind = sub.add_parser("remind", help="止まっている決裁を督促する")
        remind.add_argument("--days", type=int, default=None, help="この日数以上止まっている決裁を督促する")
        remind.add_argument("--enqueue", action="store_true", help="その場で送らず、バックグラウンドの処理に回す")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "verify":
            self._verify(options["school"], options["request"])
        else:
            self._remind(options["days"], options["enqueue"])

    def _verify(self, school_code: str | None, request_id: int | None) -> None:
        if school_code and not School.objects.filter(code=school_code).exists():
            raise CommandError(f"学校コード {school_code} の学校はありません。")
        checks = selectors.verify_all(school_code=school_code, request_id=request_id)
        invalid = [c for c in checks if not c.valid]
        for c in checks:
            when = timezone.localtime(c.at).strftime("%Y-%m-%d %H:%M")
            behalf = f"（{c.on_behalf_of}の代決）" if c.on_behalf_of else ""
            mark = "有効" if c.valid else "無効"
            line = (f"[{mark}] 決裁#{c.request_id} 第{c.revision}版 {c.step + 1}段目 {c.role_label} "
                    f"{c.approver}{behalf} {when}: {c.reason}")
            self.stdout.write(self.style.SUCCESS(line) if c.valid else self.style.ERROR(line))
        summary = f"電子印 {len(checks)} 件を検証しました: 有効 {len(checks) - len(invalid)} 件、無効 {len(invalid)} 件。"
        if invalid:
            raise CommandError(summary)
        self.stdout.write(summary)

    def _remind(self, days: int | None, enqueue: bool) -> None:
        if days is not None and days < 1:
            raise CommandError("--days には1以上の日数を指定してください。")
        if enqueue:
            result = tasks.send_reminders.enqueue(older_than_days=days)
            self.stdout.write(f"督促をバックグラウンドの処理に登録しました（{result.id}）。")
            return
        sent = services.approvals_remind(older_than_days=days, base_url=getattr(settings, "KOMU_BASE_URL", ""))
        self.stdout.write(f"督促のメールを {sent} 通送りました。")
