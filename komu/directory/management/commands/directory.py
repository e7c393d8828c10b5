from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from komu.access import roles
from komu.access.scope import Actor, Grant, get_actor
from komu.audit import context
from komu.core.tabular import DEFAULT_MAX_BYTES
from komu.directory.models import Role
from komu.directory.services import LoadKind, bulk_load


class Command(BaseCommand):
    help = (
        "学校名簿の一括登録: `komu directory load FILE --kind boards|schools|classes|staff [--dry-run]`。"
        "CSV（UTF-8・BOM付きUTF-8・CP932）または XLSX の全行を確認し、エラーが1件でもあれば何も登録せずに"
        "ファイル名・行・列と直し方を表示して終了コード1で終わる。エラーがなければ1つのトランザクションで登録し、"
        "監査ログに1件記録する。同じコードの行は更新するので、同じファイルを2回読み込んでも2回目は何も変わらない。"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        load = sub.add_parser("load", help="ファイルから教育委員会・学校・学級・教職員の配置を登録する")
        load.add_argument("file", help="CSV または XLSX ファイル")
        load.add_argument(
            "--kind",
            required=True,
            choices=LoadKind.values,
            help="boards（教育委員会）、schools（学校）、classes（学級）、staff（教職員の配置）",
        )
        load.add_argument("--dry-run", action="store_true", help="確認だけして、何も登録しない")
        load.add_argument(
            "--user",
            default="",
            help="操作する運用者のログインID（監査ログに記録する。省略すると system として記録）",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(_("ファイルが見つかりません: %(path)s") % {"path": path})
        if path.stat().st_size > DEFAULT_MAX_BYTES:
            raise CommandError(
                _("%(file)s: ファイルが大きすぎます。%(mb)dMB以下に分けてください。")
                % {"file": path.name, "mb": DEFAULT_MAX_BYTES // (1024 * 1024)}
            )
        actor = self._actor(options["user"])
        token = context.begin(
            context.RequestContext(
                request_id=f"cli-{uuid.uuid4().hex[:12]}",
                channel="cli",
                role=Role.OPERATOR,
                org="komu directory",
            )
        )
        try:
            report = bulk_load(
                actor=actor,
                kind=options["kind"],
                data=path.read_bytes(),
                filename=path.name,
                dry_run=options["dry_run"],
            )
        finally:
            context.end(token)
        for issue in report.errors:
            self.stderr.write(str(issue))
        if report.errors:
            raise CommandError(
                _(
                    "%(n)d件のエラーがあります。何も登録していません。ファイルを直してから、もう一度実行してください。"
                )
                % {"n": len(report.errors)}
            )
        if options["verbosity"] >= 2:
            for change in report.changes:
                where = _("%(n)d行目") % {"n": change.line} if change.line else _("（自動）")
                fields = f"（{'、'.join(change.fields)}）" if change.fields else ""
                self.stdout.write(
                    f"{where} {change.action_label} {change.target} {change.key} {change.label}{fields}"
                )
        counts = {
            "file": path.name,
            "created": report.created,
            "updated": report.updated,
            "unchanged": report.unchanged,
        }
        if report.dry_run:
            self.stdout.write(
                _(
                    "確認のみ（--dry-run）: %(file)s にエラーはありません。新規 %(created)d 件、更新 %(updated)d 件、"
                    "変更なし %(unchanged)d 件。登録はしていません。"
                )
                % counts
            )
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    _(
                        "%(file)s を登録しました: 新規 %(created)d 件、更新 %(updated)d 件、変更なし %(unchanged)d 件。"
                    )
                    % counts
                )
            )

    def _actor(self, login_id: str) -> Actor:
        if not login_id:
            # Whoever runs the command on the server already has the operator's power over the database.
            return Actor(user=None, grants=(Grant(role=Role.OPERATOR, org_label="komu directory"),))
        user = get_user_model().objects.filter(username=login_id, is_active=True).first()
        actor = get_actor(user) if user is not None else None
        if actor is None or not actor.has(roles.DIRECTORY_BULK_LOAD):
            raise CommandError(
                _("ログインID「%(login_id)s」は一括登録できる運用者ではありません。") % {"login_id": login_id}
            )
        return actor
