from __future__ import annotations

import importlib
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from komu.audit.services import audit_verify

# The event triggers' SQL lives in the migration that installs them (one source for both).
_PARTITIONS = importlib.import_module("komu.audit.migrations.0003_event_partitions")


def ddl_guard_installed() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_event_trigger WHERE evtname IN "
            "('komu_audit_guard_drop', 'komu_audit_guard_alter') AND evtenabled <> 'D'"
        )
        return int(cursor.fetchone()[0]) == 2


class Command(BaseCommand):
    help = (
        "監査ログを検証する: `komu audit verify` は HMAC 連鎖を先頭から順に確かめ、変更・削除・並べ替えられた"
        "最初のイベントを報告して非ゼロで終了する。`komu audit ddl-guard` は PostgreSQL で監査ログの"
        "パーティションの DROP・DETACH を拒むイベントトリガーの有無を表示し、無ければ postgres で実行する SQL を"
        "表示する（--install でスーパーユーザーとして作成）。"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("verify", help="HMAC 連鎖を検証する")
        guard = sub.add_parser("ddl-guard", help="監査ログの DDL ガード（イベントトリガー）を確かめる・作る")
        guard.add_argument(
            "--install",
            action="store_true",
            help="イベントトリガーを作る（PostgreSQL のスーパーユーザーで接続しているとき）",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "verify":
            checked, broken = audit_verify()
            if broken is not None:
                raise CommandError(
                    f"監査ログの連鎖が壊れています: イベント #{broken.event_id} — {broken.reason}"
                    f"（それまでの {checked} 件は正常）"
                )
            self.stdout.write(self.style.SUCCESS(f"監査ログは正常です（{checked} 件を検証）。"))
            return
        self._ddl_guard(install=options["install"])

    def _ddl_guard(self, *, install: bool) -> None:
        if connection.vendor != "postgresql":
            self.stdout.write(
                "SQLite ではパーティションもイベントトリガーも使いません（追記専用のトリガーのみ）。"
            )
            return
        if ddl_guard_installed():
            self.stdout.write(self.style.SUCCESS("監査ログの DDL ガードは有効です。"))
            return
        if install:
            with connection.cursor() as cursor:
                if not _PARTITIONS.is_superuser(cursor):
                    raise CommandError(
                        "イベントトリガーの作成には PostgreSQL のスーパーユーザーが必要です。"
                        "下の SQL を postgres で実行してください（--install なしで表示）。"
                    )
                for sql in _PARTITIONS.DDL_GUARD:
                    cursor.execute(sql, params=None)
            self.stdout.write(self.style.SUCCESS("監査ログの DDL ガードを作成しました。"))
            return
        self.stdout.write(
            "-- 監査ログの DDL ガードがありません。Komu のデータベースで postgres として一度実行してください:"
        )
        for sql in _PARTITIONS.DDL_GUARD:
            self.stdout.write(f"{sql};")
        raise CommandError("監査ログの DDL ガードがありません（上の SQL を postgres で実行）。")
