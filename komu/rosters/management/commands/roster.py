from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from komu.access import roles
from komu.access.scope import Actor, get_actor
from komu.audit import context
from komu.core.errors import KomuError, ValidationFailed
from komu.directory.models import Board, Role
from komu.rosters.models import GakureiboImport
from komu.rosters.selectors.rosters import gakureibo_default_year
from komu.rosters.services import imports

# Below this many rows the whole run takes a moment: no progress line.
_PROGRESS_FROM_ROWS = 5000


class Command(BaseCommand):
    help = (
        "学齢簿の取込: `komu roster import FILE --board CODE --as USERNAME [--year YYYY] [--layout auto|komu|applic] "
        "[--dry-run]`。画面の取込と同じ確認（全行）をしてから、エラーが1件もなければ1つのトランザクションで学齢簿に"
        "反映する。エラーがあれば何も反映せず、ファイル・行・列・値と直し方を標準エラーに表示して終了コード1で終わる。"
        "同じファイルを2回取り込んでも2回目は何も変わらない。学齢簿は個人情報なので、運用者ではなく、その教育委員会の"
        "担当者（--as）の操作として記録し、その人の権限と範囲で確認する。"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        load = sub.add_parser("import", help="学齢簿のファイル（CSV・XLSX）を確認して取り込む")
        load.add_argument("file", help="CSV（UTF-8・BOM付きUTF-8・CP932）または XLSX ファイル")
        load.add_argument("--board", required=True, help="教育委員会コード（6桁）")
        load.add_argument(
            "--as", dest="username", required=True,
            help="取り込みを行う教育委員会の担当者のログインID（監査ログにこの人の操作として記録する）",
        )
        load.add_argument("--year", type=int, default=None, help="入学年度（西暦。省略すると来年度）")
        load.add_argument("--layout", choices=imports.LAYOUTS, default="auto", help="ファイルの形式（既定: auto）")
        load.add_argument("--dry-run", action="store_true", help="確認だけして、何も反映しない")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(_("ファイルが見つかりません: %(path)s") % {"path": path})
        if path.stat().st_size > imports.MAX_FILE_BYTES:
            raise CommandError(
                _("%(file)s: ファイルが大きすぎます。%(mb)dMB以下に分けてください。")
                % {"file": path.name, "mb": imports.MAX_FILE_BYTES // (1024 * 1024)}
            )
        board = Board.objects.filter(code=options["board"].strip()).first()
        if board is None:
            raise CommandError(
                _("教育委員会コード「%(code)s」の教育委員会がありません。6桁のコードを確認してください。")
                % {"code": options["board"]}
            )
        actor = self._actor(options["username"], board)
        year = options["year"] or gakureibo_default_year()
        token = context.begin(context.RequestContext(
            request_id=f"cli-{uuid.uuid4().hex[:12]}", channel="cli", role=Role.BOARD_OFFICER, org=board.code,
        ))
        try:
            self._run(actor, board, year, path, options["layout"], options["dry_run"])
        finally:
            context.end(token)

    def _actor(self, username: str, board: Board) -> Actor:
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        actor = get_actor(user) if user is not None else None
        if actor is None or not imports.gakureibo_boards_for(actor=actor).filter(pk=board.pk).exists():
            raise CommandError(
                _("ログインID「%(username)s」は、%(board)s の学齢簿を扱える担当者ではありません。")
                % {"username": username, "board": board.name}
            )
        assert actor.has(roles.GAKUREIBO_MANAGE)
        return actor

    def _progress(self, label: str) -> Any:
        def show(done: int, total: int) -> None:
            if total >= _PROGRESS_FROM_ROWS:
                self.stderr.write(f"\r{label} {done:,} / {total:,} 行", ending="")
                if done >= total:
                    self.stderr.write("")
        return show

    def _run(self, actor: Actor, board: Board, year: int, path: Path, layout: str, dry_run: bool) -> None:
        try:
            imp = imports.gakureibo_import_create(
                actor=actor, board=board, fiscal_year=year, filename=path.name, data=path.read_bytes(),
                layout=layout,
            )
        except ValidationFailed as exc:
            messages = [m for errors in exc.errors.values() for m in errors] or [str(exc)]
            raise CommandError(f"{path.name}: " + " ".join(messages)) from None
        imp = imports.gakureibo_import_validate(import_id=imp.pk, on_progress=self._progress(_("確認中")))
        report = imp.data
        if report.get("failure"):
            raise CommandError(f"{path.name}: {report['failure']}")
        for issue in report.get("errors", []):
            self.stderr.write(_format_issue(issue, _("エラー")))
        for issue in report.get("warnings", []):
            self.stderr.write(_format_issue(issue, _("警告")))
        if report.get("warning_total", 0) > len(report.get("warnings", [])):
            self.stderr.write(_("（警告は最初の %(n)d 件だけ表示しました）") % {"n": len(report.get("warnings", []))})
        if imp.error_count:
            raise CommandError(
                _("%(n)d件のエラーがあります。何も反映していません。ファイルを直してから、もう一度実行してください。")
                % {"n": imp.error_count}
            )
        counts = {"file": path.name, "year": year, **report.get("counts", {}), "warnings": imp.warning_count}
        if dry_run:
            imports.gakureibo_import_discard(actor=actor, import_id=imp.pk)
            self.stdout.write(
                _("確認のみ（--dry-run）: %(file)s（%(year)d年度）にエラーはありません。新規 %(new)d 人、変更 %(changed)d 人、"
                  "変更なし %(unchanged)d 人、警告 %(warnings)d 件。何も反映していません。") % counts
            )
            return
        try:
            imp = imports.gakureibo_import_apply(
                actor=actor, import_id=imp.pk, on_progress=self._progress(_("取込中"))
            )
        except KomuError as exc:
            raise CommandError(f"{path.name}: {exc}") from None
        applied = imp.data.get("applied", {})
        assert imp.status == GakureiboImport.Status.APPLIED
        self.stdout.write(self.style.SUCCESS(
            _("%(file)s を学齢簿（%(year)d年度）に反映しました: 新規 %(new)d 人、変更 %(changed)d 人、"
              "変更なし %(unchanged)d 人、警告 %(warnings)d 件、送付済み名簿への変更 %(amended)d 件。")
            % {**counts, **applied}
        ))


def _format_issue(issue: dict[str, Any], kind: str) -> str:
    where = str(issue.get("file", ""))
    if issue.get("line") is not None:
        where += _(" %(line)d行目") % {"line": issue["line"]}
    if issue.get("column"):
        where += f"「{issue['column']}」"
    value = _(" 値「%(value)s」") % {"value": issue["value"]} if issue.get("value") else ""
    return f"{kind}: {where}{value}: {issue.get('message', '')}"
