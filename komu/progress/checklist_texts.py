"""The 区分 and item texts of the built-in 校務DX checklist (fixtures/checklist_items.json), written out so
makemessages extracts them (it does not read JSON). Pages show a built-in text in the screen's language; the
database keeps it in Japanese, and an edition loaded from another file shows its texts exactly as typed.
Change this list together with the fixture (a test keeps them equal)."""

from __future__ import annotations

from typing import Final

from django.utils.translation import gettext, gettext_noop

GROUPS: Final = frozenset({
    gettext_noop("A 教師と保護者間の連絡"),
    gettext_noop("B 教師と児童生徒間の連絡"),
    gettext_noop("C 教職員間の連絡"),
    gettext_noop("D その他の校務"),
    gettext_noop("E 教育委員会の業務のデジタル化"),
    gettext_noop("F 次世代の校務DXに向けた環境整備"),
})

ITEMS: Final = frozenset({
    # A 教師と保護者間の連絡
    gettext_noop("学校からのお知らせ（学校だより・学年だより等）の配信"),
    gettext_noop("欠席・遅刻・早退の連絡の受付"),
    gettext_noop("保護者アンケート・調査の実施"),
    gettext_noop("校外学習・行事等の参加同意の取得"),
    gettext_noop("個人面談・家庭訪問等の日程調整"),
    gettext_noop("緊急時の連絡（一斉配信）"),
    gettext_noop("集金・会計に関する連絡"),
    gettext_noop("各種届出・申請の受付"),
    gettext_noop("学校評価（保護者アンケート）の実施"),
    gettext_noop("PTA活動に関する連絡"),
    # B 教師と児童生徒間の連絡
    gettext_noop("児童生徒へのお知らせの配信"),
    gettext_noop("課題・提出物の配布と回収"),
    gettext_noop("児童生徒アンケート・振り返りの実施"),
    gettext_noop("健康観察の記録"),
    gettext_noop("時間割・行事予定の共有"),
    gettext_noop("児童生徒からの相談の受付"),
    gettext_noop("学習成果物の共有・保存"),
    gettext_noop("欠席した児童生徒への学習資料の提供"),
    # C 教職員間の連絡
    gettext_noop("職員会議の資料の共有（ペーパーレス化）"),
    gettext_noop("教職員間の連絡・情報共有"),
    gettext_noop("教職員の出退勤・勤務時間の管理"),
    gettext_noop("教職員の休暇等の申請と決裁"),
    gettext_noop("出席簿の作成と決裁"),
    gettext_noop("校内文書の起案と決裁"),
    gettext_noop("校内の予定・施設予約の共有"),
    gettext_noop("校務情報へのアクセスに多要素認証を用いている"),
    # D その他の校務
    gettext_noop("教育委員会との連絡・文書の授受"),
    gettext_noop("教育委員会からの調査・照会への回答"),
    gettext_noop("入学者名簿の受け取り"),
    gettext_noop("通知表の作成"),
    gettext_noop("指導要録の作成・保存"),
    gettext_noop("転学時の書類（指導要録の写し等）の送付"),
    gettext_noop("学校徴収金の管理"),
    gettext_noop("物品・備品の管理"),
    # E 教育委員会の業務のデジタル化
    gettext_noop("学校への通知・依頼・照会の発出"),
    gettext_noop("学校からの報告・回答の収集と集計"),
    gettext_noop("学齢簿の電子化と入学者名簿のデータ送付"),
    gettext_noop("教育委員会内の文書の起案と決裁"),
    gettext_noop("学校との会議のオンライン化"),
    # F 次世代の校務DXに向けた環境整備
    gettext_noop("校務系・学習系ネットワークの統合（アクセス制御による対策）"),
    gettext_noop("校務支援システムのクラウド化"),
    gettext_noop("教職員の多要素認証の導入"),
    gettext_noop("FAXの原則廃止に向けた取組"),
    gettext_noop("押印の原則廃止に向けた取組"),
})


def display(text: str) -> str:
    """A built-in group or item text in the screen's language; any other text as it is."""
    return gettext(text) if text in GROUPS or text in ITEMS else text
