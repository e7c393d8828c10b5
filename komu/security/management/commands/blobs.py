from __future__ import annotations

import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from komu.security.blobs import DEFAULT_GRACE, blobs_gc


class Command(BaseCommand):
    help = (
        "添付ファイルの保存先（KOMU_STORAGE）の整理。ファイルは行より先に書くので、取り消された処理のファイルが"
        "残ることがある。gc: どの行からも参照されず、猶予期間（既定24時間）より古いファイルを削除する。"
        "check: 行が参照しているのに保存先にないファイルを数える（あれば終了コード1）。"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        gc = sub.add_parser("gc", help="参照されていない古いファイルを削除する")
        gc.add_argument(
            "--grace-hours",
            type=float,
            default=DEFAULT_GRACE.total_seconds() / 3600,
            help="これより新しいファイルは残す（書き込み中の処理のため。既定24）",
        )
        gc.add_argument("--dry-run", action="store_true", help="削除せずに件数だけ表示する")
        sub.add_parser("check", help="行が参照しているファイルがすべて保存先にあるか確かめる")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "gc":
            grace = datetime.timedelta(hours=options["grace_hours"])
            if grace < datetime.timedelta(0):
                raise CommandError("--grace-hours には 0 以上の数を指定してください。")
            report = blobs_gc(grace=grace, dry_run=options["dry_run"])
            verb = "削除対象" if options["dry_run"] else "削除"
            self.stdout.write(
                f"保存先のファイル {report.stored}、参照されているファイル {report.referenced}、"
                f"{verb} {len(report.removed)}、猶予期間内のため残したもの {report.young}。"
            )
        else:
            # Nothing is older than a century: a dry run that only lists.
            report = blobs_gc(grace=datetime.timedelta(days=36500), dry_run=True)
        if report.missing:
            raise CommandError(
                f"行が参照しているのに保存先にないファイルが {len(report.missing)} 件あります"
                f"（例: {report.missing[0]}）。データベースと添付ファイルを同じバックアップから戻してください。"
            )
        if options["action"] == "check":
            self.stdout.write(
                self.style.SUCCESS(f"参照されているファイル {report.referenced} 件はすべて保存先にあります。")
            )
