"""`komu attendance ...`: operator commands of the attendance app, one subcommand each (add others beside
close-year and purge as subparsers here)."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from komu.attendance.services import monthly, retention
from komu.audit import context
from komu.core.errors import ValidationFailed
from komu.directory.models import School


class Command(BaseCommand):
    help = (
        "出欠の運用。close-year: 年度末確定。その年度のすべての学級・すべての月の出席簿を確定し、以後は変更も訂正も"
        "できなくする（電子の記録が原本）。授業日のある月がすべて承認済みで、年度の最後の授業日を過ぎているときだけ"
        "実行できる。校長の画面の「年度末確定」と同じ処理。"
        "purge: 保存期間（年度終了後5年、学校教育法施行規則第28条）を過ぎた年度の出席簿（日々の記録、時限の記録、"
        "訂正履歴、日々・月の出席簿、長期欠席の理由）を削除し、学校・年度ごとの件数を監査ログに記録する。"
        "--before-year より前の年度が対象で、保存期間内の年度が含まれるときは何も削除しない。--dry-run は件数の表示だけ。"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        close = sub.add_parser("close-year", help="年度の出席簿を確定する（以後変更不可）")
        close.add_argument("--school", metavar="CODE", required=True, help="学校コード（13桁）")
        close.add_argument("--year", metavar="YYYY", type=int, required=True, help="年度（例: 2026）")
        purge = sub.add_parser("purge", help="保存期間（年度終了後5年）を過ぎた出席簿を削除する")
        purge.add_argument("--before-year", metavar="YYYY", type=int, default=None,
                           help="この年度より前を削除する（省略時は保存期間を過ぎたすべての年度）")
        purge.add_argument("--dry-run", action="store_true", help="削除する件数を表示するだけで、何も削除しない")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "close-year":
            self._close_year(options["school"], options["year"])
        elif options["action"] == "purge":
            self._purge(options["before_year"], options["dry_run"])

    def _purge(self, before_year: int | None, dry_run: bool) -> None:
        year = before_year if before_year is not None else retention.latest_purgeable_before_year()
        token = context.begin(context.RequestContext(
            request_id=f"cli-{uuid.uuid4().hex[:12]}", channel="cli", role="", org="komu attendance purge",
        ))
        try:
            report = retention.attendance_purge(before_year=year, dry_run=dry_run)
        except ValidationFailed as exc:
            raise CommandError(str(exc)) from exc
        finally:
            context.end(token)
        verb = "削除します（--dry-run のため削除していません）" if dry_run else "削除しました"
        for entry in report.years:
            counts = "、".join(f"{retention.LABELS[k]} {n}" for k, n in entry.counts.items() if n)
            self.stdout.write(f"{entry.school_name}（{entry.school_code}） {entry.year}年度: {counts}")
        if not report.years:
            self.stdout.write(f"{year}年度より前に、保存期間を過ぎた出席簿はありません。")
        else:
            self.stdout.write(self.style.SUCCESS(
                f"{year}年度より前の出席簿 {report.total} 件を{verb}（{len(report.years)} 校・年度）。"
            ))

    def _close_year(self, code: str, fiscal_year: int) -> None:
        try:
            school = School.objects.get(code=code)
        except School.DoesNotExist:
            raise CommandError(f"学校コード {code} の学校はありません。") from None
        try:
            result = monthly.attendance_year_close(actor=None, school=school, fiscal_year=fiscal_year)
        except ValidationFailed as exc:
            problems = exc.errors.get("year") or [str(exc)]
            for problem in problems:
                self.stderr.write(f"  {problem}")
            raise CommandError(f"{school.name} の {fiscal_year}年度 は確定できません（出席簿が承認されていません）。"
                               if "承認されていません" in str(exc) else str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(
            f"{school.name} の {fiscal_year}年度 の出席簿を確定しました: {result.locked} 件（以後は変更できません）。"
        ))
