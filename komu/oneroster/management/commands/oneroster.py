"""`komu oneroster export|import`: OneRoster 1.2 CSV (Japan Profile) out to learning portals and in from other
systems.

export: the current 年度's roster of one board (--board 教育委員会コード), one school (--school 学校コード) or
every school, bulk or delta (--since), as CSV files in --out or one zip (--zip). A disclosure: --reason is
required and the export is audited with the persons it names.
import: validates every file (errors by file, line and column) and applies all or nothing; --dry-run checks
everything against the database and then rolls back.
"""

from __future__ import annotations

import datetime
import uuid
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from komu.access import roles
from komu.access.scope import Actor, get_actor
from komu.audit import context
from komu.core.errors import KomuError, ValidationFailed
from komu.directory.models import Board, School
from komu.oneroster import bundle
from komu.oneroster.importer import roster_import
from komu.oneroster.selectors import export_scope_for
from komu.oneroster.services import console_actor, roster_export


def _parse_since(value: str) -> datetime.datetime:
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise CommandError(f"--since「{value}」は ISO 8601 の日時（例 2026-04-01T09:00:00+09:00）で指定してください。") from exc
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


class Command(BaseCommand):
    help = ("OneRoster 1.2 日本プロファイルの CSV を出力（export）・取込（import）します。出力は開示として理由と対象者を"
            "監査に記録し、取込はすべてのファイルを検証してから全件まとめて登録します（1件でも誤りがあれば何も登録しません）。")

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        export = sub.add_parser("export", help="CSV を出力する")
        export.add_argument("--out", required=True, help="出力先のフォルダ")
        group = export.add_mutually_exclusive_group()
        group.add_argument("--board", default="", help="教育委員会コード（その教育委員会の学校すべて）")
        group.add_argument("--school", default="", help="学校コード（1校）")
        export.add_argument("--since", default="", help="この日時より後の変更だけを差分（delta）で出力する")
        export.add_argument("--year", type=int, default=None, help="年度（省略時は今年度）")
        export.add_argument("--zip", action="store_true", help="oneroster.zip 1つにまとめて出力する")
        export.add_argument("--reason", default="", help="出力の理由（監査に記録されます。必須）")
        export.add_argument("--as", dest="login_id", default="", help="この利用者の権限で出力する（省略時は運用者）")
        imp = sub.add_parser("import", help="CSV を取り込む")
        imp.add_argument("path", help="CSV のフォルダまたは ZIP ファイル")
        imp.add_argument("--dry-run", action="store_true", help="検証だけ行い、登録しない")
        imp.add_argument("--as", dest="login_id", default="", help="この利用者の権限で取り込む（省略時は運用者）")

    def handle(self, *args: Any, **options: Any) -> None:
        token = context.begin(context.RequestContext(request_id=f"cli-{uuid.uuid4().hex[:12]}", channel="cli"))
        try:
            if options["action"] == "export":
                self._export(options)
            else:
                self._import(options)
        finally:
            context.end(token)

    def _actor(self, login_id: str, capability: str, board_ids: list[int]) -> Actor:
        if not login_id:
            return console_actor(board_ids=board_ids)
        user = get_user_model().objects.filter(username=login_id, is_active=True).first()
        actor = get_actor(user) if user is not None else None
        if actor is None or not actor.has(capability):
            raise CommandError(f"ログインID「{login_id}」にはこの操作の権限がありません。")
        return actor

    def _export(self, options: dict[str, Any]) -> None:
        if options["board"]:
            board_ids = list(Board.objects.filter(code=options["board"]).values_list("pk", flat=True))
        elif options["school"]:
            board_ids = list(School.objects.filter(code=options["school"]).values_list("board_id", flat=True))
        else:
            board_ids = list(Board.objects.values_list("pk", flat=True))
        actor = self._actor(options["login_id"], roles.ONEROSTER_EXPORT, board_ids)
        since = _parse_since(options["since"]) if options["since"] else None
        try:
            roster_scope = export_scope_for(actor=actor, board_code=options["board"], school_code=options["school"],
                                            year=options["year"])
            result = roster_export(actor=actor, roster_scope=roster_scope, since=since, reason=options["reason"])
        except ValidationFailed as exc:
            raise CommandError(" ".join(m for ms in exc.errors.values() for m in ms) or str(exc)) from exc
        except KomuError as exc:
            raise CommandError(f"出力できません: {exc}（教育委員会コード・学校コードを確認してください）") from exc
        out = Path(options["out"])
        out.mkdir(parents=True, exist_ok=True)
        try:
            if options["zip"]:
                with (out / "oneroster.zip").open("wb") as archive:
                    result.parts.write_zip(archive)
            else:
                for name in result.parts.names():
                    with (out / name).open("wb") as target:
                        result.parts.copy_to(name, target)
        finally:
            result.parts.close()
        summary = "、".join(f"{name} {count}件" for name, count in result.counts.items())
        self.stdout.write(self.style.SUCCESS(f"{result.mode} で出力しました（{out}）: {summary}。対象者 {result.persons} 名。"))
        if result.skipped_staff:
            self.stdout.write(f"教職員 {result.skipped_staff} 名は氏名を姓と名に分けられないか、ふりがながないため出力していません。")

    def _import(self, options: dict[str, Any]) -> None:
        path = Path(options["path"])
        try:
            if path.is_dir():
                files = {p.name: p.read_bytes() for p in sorted(path.glob("*.csv"))}
            else:
                files = bundle.read_zip(path.read_bytes())
        except (OSError, bundle.BundleReadError) as exc:
            raise CommandError(f"読み込めません: {exc}") from exc
        login_id = options["login_id"]
        actor = self._actor(login_id, roles.ONEROSTER_IMPORT, []) if login_id else None
        report = roster_import(actor=actor, files=files, dry_run=options["dry_run"])
        for error in report.errors:
            self.stderr.write(str(error))
        if report.errors:
            raise CommandError(f"{len(report.errors)}件のエラーがあります。何も登録していません。ファイルを直してから、もう一度実行してください。")
        for note in report.notes:
            self.stdout.write(note)
        summary = "、".join(f"{label} {count}件" for label, count in report.created.items())
        if options["dry_run"]:
            self.stdout.write(f"確認のみ（--dry-run）: エラーはありません。登録予定: {summary or 'なし'}。登録はしていません。")
        else:
            self.stdout.write(self.style.SUCCESS(f"取り込みました: {summary or '新規なし'}。"))
