from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from komu.notices import tasks
from komu.notices.notifications import notifications_digest_send
from komu.notices.services.notices import notices_remind_due


class Command(BaseCommand):
    help = (
        "通知とお知らせの定期処理。remind: 期限が近い（既定で翌日まで）通知のうち、まだ受領（受領を求めない通知は開封）"
        "していない送り先に督促する（同じ送り先には1日1回まで）。digest: 「1日1回まとめて受け取る」を選んだ人に、"
        "まだメールしていないお知らせをまとめて1通で送る。どちらもスケジューラから毎日実行する。"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        remind = sub.add_parser("remind", help="期限が近い通知の未確認の送り先に督促する")
        remind.add_argument("--days", type=int, default=1, help="期限のこの日数前から督促する（既定 1）")
        remind.add_argument("--enqueue", action="store_true", help="その場で送らず、バックグラウンドの処理に回す")
        sub.add_parser("digest", help="お知らせのまとめメールを送る")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "digest":
            sent = notifications_digest_send()
            self.stdout.write(f"まとめメールを {sent} 通送りました。")
            return
        days = options["days"]
        if days < 0:
            raise CommandError("--days には0以上の日数を指定してください。")
        if options["enqueue"]:
            result = tasks.remind_due.enqueue(days_before=days)
            self.stdout.write(f"督促をバックグラウンドの処理に登録しました（{result.id}）。")
            return
        count = notices_remind_due(days_before=days)
        self.stdout.write(f"{count} か所に督促しました。")
