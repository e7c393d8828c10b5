from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from komu.core.errors import ValidationFailed
from komu.progress import services


def _month(raw: str | None) -> datetime.date:
    if not raw:
        return timezone.localdate().replace(day=1)
    try:
        return datetime.datetime.strptime(raw, "%Y-%m").date()
    except ValueError as exc:
        raise CommandError("月は YYYY-MM で指定してください（例: 2026-10）。") from exc


class Command(BaseCommand):
    help = (
        "校務DXの進捗データベース。measure: 学校ごとの指標をその月の実際の利用から計測し、その月の集計（教育委員会・"
        "都道府県・全国）を更新する（毎日1回、月初めには前月も）。refresh: 指定した月の集計だけを作り直す。"
        "load-checklist: 校務DXチェックリストの項目をファイルから読み込む（改訂時に差し替え）。public-key: この"
        "Komuの署名用公開鍵を表示する（ハブに登録してもらう）。register-member: ハブで、連携するKomuの公開鍵を登録する。"
        "push: その月のスナップショットに署名してハブへ送る。"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        m = sub.add_parser("measure", help="指標を計測する")
        m.add_argument("--month", help="YYYY-MM（省略時は今月）")
        m.add_argument("--previous", action="store_true", help="前月も計測する")
        r = sub.add_parser("refresh", help="集計を作り直す")
        r.add_argument("--month", required=True, help="YYYY-MM")
        c = sub.add_parser("load-checklist", help="チェックリストの項目を読み込む")
        c.add_argument("--file", default=str(services.FIXTURE))
        sub.add_parser("public-key", help="署名用の公開鍵（Tink JSON）を表示する")
        g = sub.add_parser("register-member", help="連携するKomuを登録する（ハブで実行）")
        g.add_argument("--code", required=True)
        g.add_argument("--name", required=True)
        g.add_argument("--public-key-file", required=True)
        p = sub.add_parser("push", help="スナップショットをハブへ送る")
        p.add_argument("--hub", required=True, help="ハブのURL（例: https://hub.example.jp）")
        p.add_argument("--month", help="YYYY-MM（省略時は今月）")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            if action == "measure":
                month = _month(options["month"])
                months = [month]
                if options["previous"]:
                    months.insert(0, (month - datetime.timedelta(days=1)).replace(day=1))
                for m in months:
                    n = services.indicators_measure(actor=None, month=m)
                    self.stdout.write(f"{m:%Y-%m}: {n}件の値を計測しました。")
            elif action == "refresh":
                n = services.rollups_refresh(months=[_month(options["month"])])
                self.stdout.write(f"{n}件の集計を作り直しました。")
            elif action == "load-checklist":
                n = services.checklist_items_load(path=Path(options["file"]))
                self.stdout.write(f"{n}項目を読み込みました。")
            elif action == "public-key":
                self.stdout.write(services.own_public_keyset())
            elif action == "register-member":
                try:
                    key = Path(options["public_key_file"]).read_text(encoding="utf-8")
                except OSError as exc:
                    raise CommandError(f"公開鍵のファイルを読めません: {exc}") from exc
                member = services.federation_member_register(actor=None, code=options["code"],
                                                             name=options["name"], public_keyset=key)
                self.stdout.write(f"{member.name}（{member.code}、鍵 {member.key_id}）を登録しました。")
            elif action == "push":
                result = services.snapshot_push(hub_url=options["hub"], month=_month(options["month"]))
                if result.status != 200:
                    raise CommandError(f"ハブが受け付けませんでした（{result.status}）: "
                                       f"{result.body.get('detail', '')}")
                self.stdout.write(f"送信しました: {result.body.get('status')}、学校 {result.body.get('schools')}校、"
                                  f"通番 {result.body.get('sequence')}")
        except ValidationFailed as exc:
            details = "; ".join(m for msgs in exc.errors.values() for m in msgs)
            raise CommandError(f"{exc} {details}".strip()) from exc
