"""The measured indicators of the progress database (校務DXの進捗): what each counts and from where.

Pure data: the definitions page, the open-data dictionary, the measurement (komu.progress.measure) and the
checklist prefill all read this table. Adding an indicator means adding it here and a measuring function in
measure.py (the two change together).

Every stored figure is a numerator and a denominator (and, for medians, a value). How a figure is read:
  ratio   numerator / denominator, shown as a percentage (rolled up as Σnumerator / Σdenominator)
  count   numerator per school (denominator = 1 per school; rolled up as an average per school)
  median  `value` (hours), weighted by the numerator when rolled up (the mean of the schools' medians,
          weighted by how many each measured) — a median of medians would need every raw time.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext, gettext_noop


@dataclass(frozen=True)
class Indicator:
    code: str
    label: str
    kind: str  # ratio | count | median
    unit: str
    higher_is_better: bool
    counts: str
    source: str
    # Figures about pupils and guardians: a school-level figure could reveal a small class (open data rules).
    pupil_derived: bool = False

    # label and unit stay Japanese in the open data, its dictionary and the federation snapshots; pages show
    # these (the names and units are marked with gettext_noop below).
    @property
    def display_label(self) -> str:
        return gettext(self.label)

    @property
    def display_unit(self) -> str:
        return gettext(self.unit)

    # What it counts and where from: Japanese in the open-data dictionary, in the screen's language on pages.
    @property
    def display_counts(self) -> str:
        return gettext(self.counts)

    @property
    def display_source(self) -> str:
        return gettext(self.source)


RATIO, COUNT, MEDIAN = "ratio", "count", "median"

PAPER_COUNTERPARTIES = [
    ("lunch_centre", "給食センター"),
    ("private", "民間事業者"),
    ("government", "他の行政機関"),
    ("guardian", "保護者"),
    ("other", "その他"),
]

# The per-counterparty names written out, so makemessages extracts them (it cannot read an f-string); each is
# 「FAX・紙での送付（相手先）」 (a test checks it). Change them together with PAPER_COUNTERPARTIES.
_PAPER_LABELS = {
    "lunch_centre": gettext_noop("FAX・紙での送付（給食センター）"),
    "private": gettext_noop("FAX・紙での送付（民間事業者）"),
    "government": gettext_noop("FAX・紙での送付（他の行政機関）"),
    "guardian": gettext_noop("FAX・紙での送付（保護者）"),
    "other": gettext_noop("FAX・紙での送付（その他）"),
}
# Likewise what each counts: 「その月に学校が相手先区分「相手先」へFAXまたは紙で送ったと記録した件数。」
_PAPER_COUNTS = {
    "lunch_centre": gettext_noop("その月に学校が相手先区分「給食センター」へFAXまたは紙で送ったと記録した件数。"),
    "private": gettext_noop("その月に学校が相手先区分「民間事業者」へFAXまたは紙で送ったと記録した件数。"),
    "government": gettext_noop("その月に学校が相手先区分「他の行政機関」へFAXまたは紙で送ったと記録した件数。"),
    "guardian": gettext_noop("その月に学校が相手先区分「保護者」へFAXまたは紙で送ったと記録した件数。"),
    "other": gettext_noop("その月に学校が相手先区分「その他」へFAXまたは紙で送ったと記録した件数。"),
}

_LIST = [
    Indicator(
        "comm_digital", gettext_noop("校務連絡のデジタル化率"), RATIO, "%", True,
        gettext_noop("その月に学校がKomuで送った通知とお便りの件数を、それにFAX・紙で送ったと記録した件数を加えた総数で割った割合。"),
        gettext_noop("通知（komu.notices）の送信記録と「紙・FAXで送ったもの」の記録。"),
    ),
    *[
        Indicator(
            f"paper_{code}", _PAPER_LABELS[code], COUNT, gettext_noop("件/校"), False,
            _PAPER_COUNTS[code],
            gettext_noop("「紙・FAXで送ったもの」の記録（相手先の区分ごと）。"),
        )
        for code, _label in PAPER_COUNTERPARTIES
    ],
    Indicator(
        "notice_ack_hours", gettext_noop("通知の受領までの時間（中央値）"), MEDIAN, gettext_noop("時間"), False,
        gettext_noop("その月に学校へ配信された通知のうち受領済みのものについて、配信から「受領しました」までの時間の中央値。"
                     "教育委員会・都道府県・全国の値は、学校ごとの中央値を受領件数で重み付けした平均。"),
        gettext_noop("通知の送付先の記録（配信日時・受領日時）。"),
    ),
    Indicator(
        "survey_on_time", gettext_noop("照会への期限内回答率"), RATIO, "%", True,
        gettext_noop("回答期限がその月にある照会のうち、期限までに提出した回答の割合。"),
        gettext_noop("照会・回答（komu.surveys）の回答期限と提出日時。"),
    ),
    Indicator(
        "registers_electronic", gettext_noop("出席簿の電子決裁率"), RATIO, "%", True,
        gettext_noop("その月の月別出席簿のうち、Komuの決裁で承認された（年度末確定・訂正中を含む）学級の割合。分母はその年度の学級数。"
                     "出席簿は月が終わってから提出されるため、月が終わるまでは未計測です。"),
        gettext_noop("月別出席簿（komu.attendance）の状態。"),
    ),
    Indicator(
        "rosters_as_data", gettext_noop("入学者名簿のデータ受領率"), RATIO, "%", True,
        gettext_noop("その月に入学した児童生徒のうち、教育委員会から届いた入学者名簿（データ）を受け入れて登録された人数の割合。"
                     "残りは画面で手入力された入学。"),
        gettext_noop("入学者名簿の記載（komu.rosters）と学籍の異動（入学）。"),
        pupil_derived=True,
    ),
    Indicator(
        "absence_digital", gettext_noop("欠席連絡のデジタル受付率"), RATIO, "%", True,
        gettext_noop("その月の保護者からの欠席・遅刻・早退の連絡のうち、アプリで届いたものの割合。"
                     "分母はアプリと、担任が記録した電話連絡の合計。"),
        gettext_noop("出欠の記録（komu.attendance）の入力元（保護者の連絡（アプリ）／保護者の連絡（電話））。"),
        pupil_derived=True,
    ),
    Indicator(
        "letters_digital", gettext_noop("保護者へのお便りのデジタル配信率"), RATIO, "%", True,
        gettext_noop("その月に学校が保護者へ送ったお便りのうち、Komuで配信したものの割合。分母はKomuのお便りと、"
                     "相手先「保護者」へ紙・FAXで送ったと記録した件数の合計。"),
        gettext_noop("お便り（komu.notices）と「紙・FAXで送ったもの」の記録。"),
    ),
    Indicator(
        "staff_mfa", gettext_noop("教職員の多要素認証の設定率"), RATIO, "%", True,
        gettext_noop("その月の計測時点で学校に配置されている教職員のうち、認証アプリ（TOTP）またはパスキーを登録している人の割合。"
                     "過去の月は計測した時点の値のまま残ります。"),
        gettext_noop("アカウント（komu.accounts）の二要素認証の登録と、教職員の配置。"),
    ),
    Indicator(
        "personal_data_outputs", gettext_noop("個人情報を含む文書の印刷・出力"), COUNT, gettext_noop("件/校"), False,
        gettext_noop("その月に学校で作成された、個人情報を含む名簿の出力（CSV・Excel）と出席簿・出欠の記録の印刷（PDF）の件数。"),
        gettext_noop("監査ログの出力・印刷の記録（students.export.created、attendance.register.printed、"
                     "attendance.annual_record.printed）。開示記録（komu.disclosures）はこの機能の作成時点で未実装のため使っていません。"),
    ),
    Indicator(
        "checklist_score", gettext_noop("校務DXチェックリストの得点率"), RATIO, "%", True,
        gettext_noop("その年度に提出した校務DXチェックリストの得点を満点で割った割合（年度の4月の値として記録）。"),
        gettext_noop("校務DXチェックリストの回答（この機能）。"),
    ),
]

INDICATORS: dict[str, Indicator] = {i.code: i for i in _LIST}
CODES: list[str] = [i.code for i in _LIST]


def get(code: str) -> Indicator | None:
    return INDICATORS.get(code)
