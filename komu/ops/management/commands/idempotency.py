from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from komu.ops.idempotency import idempotency_purge


class Command(BaseCommand):
    help = "冪等キーの記録: `komu idempotency purge` は1日より古い記録を消す（毎日タイマーで実行）。"

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("purge", help="1日より古い冪等キーの記録を消す")

    def handle(self, *args: Any, **options: Any) -> None:
        removed = idempotency_purge()
        self.stdout.write(self.style.SUCCESS(f"古い冪等キーの記録を {removed} 件消しました。"))
