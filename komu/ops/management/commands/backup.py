from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from komu.ops.backup import BackupError, backup_create


class Command(BaseCommand):
    help = (
        "バックアップを作成する: データベースの一貫したダンプ、そのダンプが参照する添付ファイル（暗号化されたまま。"
        "保存先がフォルダでも S3 でも同じ）、チェックサム付きの manifest.json を1つのフォルダに書き出す。"
        "鍵ファイルは含めない（鍵は別に保管する。docs/operations.md）。"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--output", default=".", help="バックアップのフォルダを作る場所（既定: 現在のフォルダ）"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = backup_create(output=Path(options["output"]))
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        manifest = result.manifest
        rows = sum(manifest["tables"].values())
        self.stdout.write(
            self.style.SUCCESS(
                f"バックアップを作成しました: {result.folder}（テーブル {len(manifest['tables'])}、行 {rows}、"
                f"添付ファイル {len(manifest['blobs'])}、その他のファイル {manifest['media_files']}）。"
                "鍵ファイルは含まれていません。"
            )
        )
