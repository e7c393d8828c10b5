"""Forms of the OneRoster screens: export (scope, bulk or delta, reason), import (zip, dry run), API clients."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy

from komu.oneroster.services import SCOPE_CORE, SCOPE_DEMOGRAPHICS, SCOPE_ROSTER

MODES = [("bulk", gettext_lazy("全件（bulk）")), ("delta", gettext_lazy("差分（delta）：指定した日時より後の変更と削除"))]


class ExportForm(forms.Form):
    target = forms.ChoiceField(label=gettext_lazy("出力する範囲"),
                               error_messages={"required": gettext_lazy("出力する範囲を選んでください。"),
                                               "invalid_choice": gettext_lazy("出力する範囲を一覧から選んでください。")})
    mode = forms.ChoiceField(label=gettext_lazy("出力の種類"), widget=forms.RadioSelect, choices=MODES, initial="bulk")
    since = forms.DateTimeField(
        label=gettext_lazy("差分の起点（この日時より後の変更）"), required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        help_text=gettext_lazy("差分のときだけ使います。前回取り込んだ日時を入れてください（日本時間）。"),
        error_messages={"invalid": gettext_lazy("日時は 2026-04-01 09:00 の形で入力してください。")})
    reason = forms.CharField(
        label=gettext_lazy("出力の目的"), max_length=200,
        help_text=gettext_lazy("例：学習eポータルへの年度当初の名簿登録。出力した人・目的・対象の児童生徒と教職員は記録されます。"),
        error_messages={"required": gettext_lazy("出力の目的を入力してください（例：学習eポータルへの名簿登録）。")})

    def __init__(self, *args: Any, targets: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["target"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = targets

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("mode") == "delta" and not data.get("since") and "since" not in self.errors:
            self.add_error("since", gettext_lazy("差分では起点の日時を入力してください。"))
        return data


class ImportForm(forms.Form):
    bundle = forms.FileField(
        label=gettext_lazy("OneRoster の ZIP ファイル"),
        help_text=gettext_lazy("manifest.csv と各 CSV を1つにまとめた ZIP（200MB まで）。"),
        error_messages={"required": gettext_lazy("取り込む ZIP ファイルを選んでください。")})
    dry_run = forms.BooleanField(label=gettext_lazy("確認だけ行い、登録しない"), required=False, initial=True)


SCOPE_CHOICES = [
    (SCOPE_CORE, gettext_lazy("roster-core.readonly（組織・年度・学級・利用者）")),
    (SCOPE_ROSTER, gettext_lazy("roster.readonly（在籍と関連の取得を含む）")),
    (SCOPE_DEMOGRAPHICS, gettext_lazy("roster-demographics.readonly（生年月日・性別）")),
]


class ClientForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("接続先の名称"), max_length=100,
                           help_text=gettext_lazy("例：学習eポータル〇〇"),
                           error_messages={"required": gettext_lazy("接続先の名称を入力してください。")})
    schools = forms.MultipleChoiceField(
        label=gettext_lazy("対象の学校"), widget=forms.CheckboxSelectMultiple,
        error_messages={"required": gettext_lazy("対象の学校を1校以上選んでください。")})
    scopes = forms.MultipleChoiceField(
        label=gettext_lazy("スコープ"), widget=forms.CheckboxSelectMultiple, choices=SCOPE_CHOICES,
        initial=[SCOPE_ROSTER],
        help_text=gettext_lazy("生年月日・性別は、必要な接続先にだけ許可してください。"),
        error_messages={"required": gettext_lazy("スコープを1つ以上選んでください。")})
    rate_limit_per_minute = forms.IntegerField(
        label=gettext_lazy("1分あたりのリクエスト上限"), min_value=1, max_value=100000, initial=600,
        error_messages={"required": gettext_lazy("上限を入力してください。"),
                        "invalid": gettext_lazy("上限は整数で入力してください。")})

    def __init__(self, *args: Any, schools: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["schools"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = schools
