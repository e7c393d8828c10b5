from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connection

from komu.ops import partitions


class Command(BaseCommand):
    help = (
        "月ごとのパーティション（PostgreSQL の出欠の記録と監査ログ）: `komu partitions ensure` は今月から先の月の"
        "パーティションを作る（毎日タイマーで実行し、揃っていれば何もしない。systemd の komu-partitions.timer）。`komu partitions list` は一覧。"
        "SQLite では何もしない。"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        ensure = sub.add_parser("ensure", help="今月から先の月のパーティションを作る")
        ensure.add_argument("--months-ahead", type=int, default=partitions.MONTHS_AHEAD,
                            help=f"何か月先まで作るか（既定 {partitions.MONTHS_AHEAD}）")
        sub.add_parser("list", help="パーティションの一覧")

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql":
            self.stdout.write("SQLite ではパーティションを使いません（通常のテーブルです）。")
            return
        if options["action"] == "ensure":
            created = partitions.partitions_ensure(months_ahead=options["months_ahead"])
            message = f"作成しました: {', '.join(created)}" if created else "必要なパーティションは揃っています。"
            self.stdout.write(self.style.SUCCESS(message))
            return
        for table in partitions.PARTITIONED:
            for part in partitions.partitions_of(table):
                self.stdout.write(f"{table}\t{part.name}\t{part.start}〜{part.end}")
