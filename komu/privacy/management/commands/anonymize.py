"""`komu anonymize [--i-understand-this-is-a-copy]`: make a copy of a production database safe for development."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from komu.privacy.anonymize import RefusedError, anonymize


class Command(BaseCommand):
    help = (
        "本番データベースのコピーを開発用に匿名化する。氏名（漢字とかなを対で）、連絡先、住所、メールアドレス、"
        "健康上の配慮などの自由記述を架空の値に置き換え（同じ値は同じ架空の値に）、生年月日は同じ学年の範囲で"
        "ずらす。全員のパスワードを開発用の1つに設定し、二要素認証の端末・パスキー・APIトークン・セッションを削除し、"
        "監査ログの詳細を消して連鎖を封印し直し、添付ファイルを置き換え用の PDF にする。本番のように見える（KOMU_DEBUG が無効）データベースでは "
        "--i-understand-this-is-a-copy なしには実行しない。"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--i-understand-this-is-a-copy", action="store_true", dest="is_copy",
                            help="本番のコピーであることを確認した（KOMU_DEBUG が無効でも実行する）")
        parser.add_argument("--password", default="komu-dev-pass", help="全員に設定する開発用パスワード")
        parser.add_argument("--seed", type=int, default=20261126, help="架空の値の乱数の種")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = anonymize(i_understand_this_is_a_copy=options["is_copy"], password=options["password"],
                               seed=options["seed"])
        except RefusedError as exc:
            raise CommandError(str(exc)) from exc
        for label, n in sorted(report.rows.items()):
            self.stdout.write(f"{label}: {n} 行")
        removed = "、".join(f"{k} {n}" for k, n in report.removed.items() if n) or "なし"
        self.stdout.write(f"削除: {removed}")
        self.stdout.write(f"監査ログ: {report.audit_events} 件の詳細を消去し、連鎖を封印し直しました。")
        self.stdout.write(f"添付ファイル: {report.attachments} 件を置き換え用の PDF にしました（ファイル名も置き換え）。")
        if report.originals_in_store:
            self.stdout.write(self.style.WARNING(
                f"元の添付ファイル {report.originals_in_store} 件が保存先（KOMU_STORAGE）に残っています。"
                "本番と別の、このコピー用の保存先であることを確かめてから `komu blobs gc --grace-hours 0` で"
                "削除してください。"))
        if connection.vendor == "postgresql":
            self.stdout.write("PostgreSQL: 古い行の版がディスクに残らないよう、続けて VACUUM FULL を実行してください。")
        self.stdout.write(self.style.SUCCESS(
            f"匿名化しました。{report.users} 人のパスワードを「{options['password']}」にしました。"
            "二要素認証は初回サインイン時に登録し直します。"))
