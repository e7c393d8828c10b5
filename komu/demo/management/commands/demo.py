from __future__ import annotations

import time
import unicodedata
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from komu.demo.builder import DEFAULT_SEED, DEMO_PASSWORD, DemoDataExists, build_demo, existing_data
from komu.demo.selectors import DemoLogin, NotADemoAccount, TotpCodeUsed, demo_logins, demo_totp_code


def _width(text: str) -> int:
    # Full-width (kanji, kana) characters take two terminal columns.
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(_width(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell + " " * (widths[i] - _width(cell)) for i, cell in enumerate(row)).rstrip()
        for row in rows
    ]


class Command(BaseCommand):
    help = (
        "架空の自治体（こもれび市: 教育委員会、小学校3校・中学校2校、学級、児童生徒約1,000人、保護者、"
        "全役割の教職員）のデモデータを空のデータベースに作成する。実在の人物のデータは含まない。"
        "既にデータがあれば作成を拒否する（--if-empty では何もしない）。"
        "`komu demo logins` はデモ用ログインの一覧、"
        "`komu demo totp ログインID` はデモ利用者の現在の確認コードを表示する。"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--seed",
            type=int,
            default=DEFAULT_SEED,
            help=f"乱数シード（既定 {DEFAULT_SEED}）。同じシードなら同じデータ",
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="データベースに既にデータがあれば何もしない（make run 用）",
        )
        sub = parser.add_subparsers(dest="action")
        logins = sub.add_parser("logins", help="デモ用ログインの一覧（パスワード、TOTP シークレット）")
        logins.add_argument("--all", action="store_true", help="主な利用者以外も全員表示する")
        totp = sub.add_parser("totp", help="デモ利用者の現在の確認コード（6桁）を表示する")
        totp.add_argument("username", help="ログインID（例: demo-principal）")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options.get("action")
        if action == "logins":
            self.logins(show_all=options["all"])
        elif action == "totp":
            self.totp(options["username"])
        else:
            self.load(seed=options["seed"], if_empty=options["if_empty"])

    def load(self, *, seed: int, if_empty: bool) -> None:
        if if_empty and existing_data():
            self.stdout.write("データベースに既にデータがあるため、デモデータは作成しませんでした。")
            return
        if not settings.DEBUG:
            # Not refused: a public trial server runs without DEBUG too. But say what is being created.
            self.stderr.write(
                "注意: 本番設定（DEBUG 無効）でデモデータを作成します。デモ用のアカウントは全員共通の"
                "公開パスワードと公開の TOTP シークレットを持つため、"
                "実データを扱うサーバーでは使わないでください。"
            )
        started = time.monotonic()
        try:
            summary = build_demo(seed=seed)
        except DemoDataExists as exc:
            raise CommandError(str(exc)) from exc
        elapsed = time.monotonic() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"デモデータを作成しました（{summary.fiscal_year}年度、乱数シード {summary.seed}、"
                f"{elapsed:.1f} 秒）: "
                f"学校 {summary.schools} 校、学級 {summary.classes}、児童生徒 {summary.students} 人、"
                f"保護者 {summary.guardians} 人（うちログインあり {summary.guardian_accounts} 人）、"
                f"教職員・行政のログイン {summary.staff_accounts} 人。"
            )
        )
        self.stdout.write("ログインの一覧: komu demo logins")

    def logins(self, *, show_all: bool) -> None:
        logins = demo_logins()
        if not logins:
            # Not an error: `make run` calls this on every start, also for databases without the demo.
            self.stdout.write("デモ用のログインはありません（デモデータは `komu demo` で作成できます）。")
            return
        key = [login for login in logins if login.is_key_persona]
        rest = [login for login in logins if not login.is_key_persona]
        self.stdout.write("デモ用ログイン（すべて架空の人物です）")
        self.stdout.write(f"全員共通のパスワード: {DEMO_PASSWORD}")
        self.stdout.write(
            "教職員は二要素認証が必要です。認証アプリに TOTP シークレット（または otpauth:// URI）を"
            "登録するか、`komu demo totp <ログインID>` で現在の確認コードを表示してください。"
        )
        self.section("主な利用者", key)
        if show_all:
            self.section("その他の利用者", rest)
        elif rest:
            self.stdout.write(
                f"\nほかに {len(rest)} 人のデモ利用者がいます（`komu demo logins --all` で全員を表示）。"
            )

    def section(self, title: str, logins: list[DemoLogin]) -> None:
        self.stdout.write(f"\n■ {title}")
        header = ["ログインID", "役割", "所属", "パスワード", "TOTP シークレット"]
        rows = [
            [login.username, login.role, login.organisation, DEMO_PASSWORD, login.totp_secret or "（不要）"]
            for login in logins
        ]
        for line in _table([header, *rows]):
            self.stdout.write(f"  {line}")
        self.stdout.write("  otpauth:// URI（認証アプリに登録できます）:")
        for login in logins:
            if login.otpauth_uri:
                self.stdout.write(f"  {login.username}: {login.otpauth_uri}")

    def totp(self, username: str) -> None:
        try:
            result = demo_totp_code(username=username)
        except (NotADemoAccount, TotpCodeUsed) as exc:
            raise CommandError(str(exc)) from exc
        # The code alone on stdout, so scripts and browser tests can read it; the explanation goes to stderr.
        self.stdout.write(result.code)
        note = "（今の時間枠のコードは使用済みのため、次のコード）" if result.next_step else ""
        self.stderr.write(f"{username} の確認コード{note}: あと約 {result.seconds_left} 秒有効です。")
