from __future__ import annotations

import time
import unicodedata
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from komu.demo.builder import DEFAULT_SEED, DEMO_PASSWORD, DemoDataExists, build_demo, existing_data
from komu.demo.gakureibo import Encoding, demo_gakureibo
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
        gakureibo = sub.add_parser(
            "gakureibo", help="デモ用の学齢簿ファイル（来年度の新1年生、Komu形式のCSV）を書き出す"
        )
        gakureibo.add_argument("--out", required=True, help="書き出すファイル")
        gakureibo.add_argument(
            "--encoding", choices=["cp932", "utf-8-sig", "utf-8"], default="cp932",
            help="文字コード（既定 cp932: Excel で保存した CSV と同じ）",
        )
        gakureibo.add_argument(
            "--flawed", action="store_true", help="取込の検証で見つかるべき誤りを2行に入れる（生年月日、学校コード）"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        action = options.get("action")
        if action == "logins":
            self.logins(show_all=options["all"])
        elif action == "totp":
            self.totp(options["username"])
        elif action == "gakureibo":
            self.gakureibo(out=options["out"], encoding=options["encoding"], flawed=options["flawed"], seed=options["seed"])
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

    def gakureibo(self, *, out: str, encoding: Encoding, flawed: bool, seed: int) -> None:
        extract = demo_gakureibo(today=timezone.localdate(), seed=seed, encoding=encoding, flawed=flawed)
        Path(out).write_bytes(extract.data)
        flaws = (
            f"（誤りのある行: {'、'.join(f'{n}行目' for n in extract.flawed_lines)}）" if extract.flawed_lines else ""
        )
        self.stdout.write(
            f"{out} に {extract.fiscal_year}年度の新1年生 {extract.rows} 人の学齢簿を書き出しました"
            f"（{encoding}、教育委員会コード {extract.board_code}）{flaws}。"
        )

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
