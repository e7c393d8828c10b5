from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from komu.security import keys
from komu.security.services import keys_rotate


class Command(BaseCommand):
    help = (
        "暗号鍵の管理。鍵はデータベースの外（KOMU_KEY_FILE）に置き、バックアップも別に取る。"
        "create: 鍵ファイルを作る（0600）。rotate: 新しい鍵を主鍵にし、全ての暗号化列を再暗号化してから古い鍵を外す"
        "（稼働中のまま実行できる）。status: 鍵の一覧。"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("create", help="鍵ファイルを作成する")
        rotate = sub.add_parser("rotate", help="主鍵を新しくし、全データを再暗号化する")
        rotate.add_argument("--keep-old", action="store_true", help="古い鍵を鍵ファイルに残す")
        rotate.add_argument("--batch-size", type=int, default=500)
        sub.add_parser("status", help="鍵の一覧を表示する（鍵そのものは表示しない）")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(settings.KOMU_KEY_FILE)
        action = options["action"]
        if action == "create":
            try:
                keys.create_key_file(path)
            except FileExistsError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(self.style.SUCCESS(f"鍵ファイルを作成しました: {path}（このファイルを別の場所にも保管してください）"))
        elif action == "status":
            ring = keys.get_keyring()
            for name, handle in ring.handles.items():
                info = handle.keyset_info()
                ids = ", ".join(
                    f"{k.key_id}{'（主）' if k.key_id == info.primary_key_id else ''}" for k in info.key_info
                )
                self.stdout.write(f"{name}: {ids}")
        elif action == "rotate":
            report = keys_rotate(
                retire=not options["keep_old"], batch_size=options["batch_size"],
                progress=lambda line: self.stdout.write(f"  {line}"),
            )
            self.stdout.write(self.style.SUCCESS(
                f"鍵 {report.old_key_id} → {report.new_key_id}: {report.rewritten} 行を再暗号化しました。"
                + (f" 外した鍵: {', '.join(map(str, report.retired))}" if report.retired else "")
            ))
