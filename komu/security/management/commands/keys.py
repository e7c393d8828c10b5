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
        "（稼働中のまま実行できる）。status: 鍵の一覧。upgrade: 古い鍵ファイルに新しい種類の鍵（電子印の署名鍵など）を"
        "追加する（既存の鍵はそのまま）。public: 電子印を Komu の外で検証するための公開鍵を表示する（秘密鍵は含まない）。"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("create", help="鍵ファイルを作成する")
        rotate = sub.add_parser("rotate", help="主鍵を新しくし、全データを再暗号化する")
        rotate.add_argument("--keep-old", action="store_true", help="古い鍵を鍵ファイルに残す")
        rotate.add_argument("--batch-size", type=int, default=500)
        rotate.add_argument(
            "--settle-seconds", type=float, default=None,
            help=(
                "新しい鍵を稼働中の全プロセスが読み込むまで待つ秒数"
                "（既定: 再読込間隔の2倍強。単一プロセスなら 0 でよい）"
            ),
        )
        sub.add_parser("status", help="鍵の一覧を表示する（鍵そのものは表示しない）")
        sub.add_parser("upgrade", help="鍵ファイルに足りない種類の鍵を追加する（既存の鍵は変えない）")
        sub.add_parser("public", help="電子印の検証用公開鍵（Tink JSON）を表示する")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(settings.KOMU_KEY_FILE)
        action = options["action"]
        if action == "create":
            try:
                keys.create_key_file(path)
            except FileExistsError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(self.style.SUCCESS(f"鍵ファイルを作成しました: {path}（このファイルを別の場所にも保管してください）"))
        elif action == "upgrade":
            if not path.exists():
                raise CommandError(f"鍵ファイル {path} がありません。`komu keys create` で作成してください。")
            try:
                added = keys.upgrade_key_file(path)
            except (ValueError, KeyError, TypeError) as exc:
                raise CommandError(f"鍵ファイル {path} の形式が違うか、壊れています。バックアップから戻してください。") from exc
            keys.reset_cache()
            if added:
                self.stdout.write(self.style.SUCCESS(
                    f"鍵を追加しました: {'、'.join(added)}（鍵ファイルのバックアップを取り直してください）"
                ))
            else:
                self.stdout.write("追加が必要な鍵はありません。")
        elif action == "public":
            self.stdout.write(keys.get_keyring().seal_public_keyset())
        elif action == "status":
            ring = keys.get_keyring()
            for name, handle in ring.handles.items():
                info = handle.keyset_info()
                ids = ", ".join(
                    f"{k.key_id}{'（主）' if k.key_id == info.primary_key_id else ''}" for k in info.key_info
                )
                self.stdout.write(f"{name}: {ids}")
        elif action == "rotate":
            settle = options["settle_seconds"]
            report = keys_rotate(
                retire=not options["keep_old"], batch_size=options["batch_size"],
                progress=lambda line: self.stdout.write(f"  {line}"),
                **({} if settle is None else {"settle_seconds": max(settle, 0.0)}),
            )
            self.stdout.write(self.style.SUCCESS(
                f"鍵 {report.old_key_id} → {report.new_key_id}: {report.rewritten} 行を再暗号化しました。"
                + (f" 外した鍵: {', '.join(map(str, report.retired))}" if report.retired else "")
            ))
