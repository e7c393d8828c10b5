from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from komu.surveys import services, sources, tasks
from komu.surveys.presets import PRESETS


class Command(BaseCommand):
    help = (
        "照会・回答の運用。templates: 用意されているひな形（感染症の週報、月例 出欠状況）と、各項目の自動入力の元を"
        "表示する（ひな形は照会の作成画面でいつでも選べる）。remind: 回答期限の前（照会ごとに設定した日数前に1回）と"
        "期限後（1日1回）に、未提出の学校へ画面の通知とメールで督促する。毎日1回実行する。"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("templates", help="ひな形の一覧と項目を表示する")
        remind = sub.add_parser("remind", help="期限の前後の自動督促を送る")
        remind.add_argument("--enqueue", action="store_true", help="その場で送らず、バックグラウンドの処理に回す")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "templates":
            for preset in PRESETS.values():
                self.stdout.write(f"{preset.code}: {preset.title}（{len(preset.fields)}項目）")
                for spec in preset.fields:
                    bound = f" ← {sources.label_of(spec.source)}" if spec.source else ""
                    self.stdout.write(f"  - {spec.label}{bound}")
            return
        if options["enqueue"]:
            result = tasks.send_reminders.enqueue()
            self.stdout.write(f"督促の処理を登録しました（{result.id}）。")
            return
        count = services.surveys_remind_due()
        self.stdout.write(f"{count}校に督促しました。")
