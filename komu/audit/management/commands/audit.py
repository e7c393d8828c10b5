from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from komu.audit.services import audit_verify


class Command(BaseCommand):
    help = (
        "監査ログを検証する: `komu audit verify` は HMAC 連鎖を先頭から順に確かめ、変更・削除・並べ替えられた"
        "最初のイベントを報告して非ゼロで終了する。"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("verify", help="HMAC 連鎖を検証する")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "verify":
            checked, broken = audit_verify()
            if broken is not None:
                raise CommandError(
                    f"監査ログの連鎖が壊れています: イベント #{broken.event_id} — {broken.reason}"
                    f"（それまでの {checked} 件は正常）"
                )
            self.stdout.write(self.style.SUCCESS(f"監査ログは正常です（{checked} 件を検証）。"))
