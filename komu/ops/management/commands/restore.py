from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from komu.ops.backup import BackupError, backup_restore


class Command(BaseCommand):
    help = (
        "バックアップを空のデータベースと空の保存先に戻す: チェックサムを確かめ、ダンプを戻し、添付ファイルを"
        "設定された保存先（KOMU_STORAGE）に書き戻し、全テーブルの件数を manifest と照合し、参照される添付ファイルが"
        "すべてあることと監査ログの連鎖を検証する（鍵ファイルは KOMU_KEY_FILE で別に用意する）。"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("folder", help="komu backup が作ったフォルダ")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = backup_restore(folder=Path(options["folder"]))
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        if result.mismatched:
            lines = "、".join(f"{name}（{a}→{b}）" for name, (a, b) in result.mismatched.items())
            raise CommandError(f"戻したテーブルの件数が manifest と一致しません: {lines}")
        self.stdout.write(
            self.style.SUCCESS(
                f"戻しました: テーブル {result.tables}、行 {result.rows}、添付ファイル {result.blobs}、"
                f"その他のファイル {result.media_files}。"
                f"監査ログ {result.audit_events} 件の連鎖を検証しました。"
            )
        )
        if result.ddl_guard_left_out:
            self.stdout.write(
                self.style.WARNING(
                    "監査ログの DDL ガード（イベントトリガー）は PostgreSQL のスーパーユーザーしか作れないため、"
                    "戻していません。続けて `komu audit ddl-guard | sudo -u postgres psql <データベース名>` を実行するか、"
                    "スーパーユーザーの KOMU_DATABASE_URL で `komu audit ddl-guard --install` を実行してください。"
                )
            )
