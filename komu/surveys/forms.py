"""Forms of the survey builder and of publishing. The answer form is drawn from the survey's fields
(komu.surveys.fields parses it); no rules live here beyond the shape of the input."""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from komu.core.codes import SCHOOL_TYPES
from komu.surveys import fields as rules
from komu.surveys.presets import PRESETS
from komu.surveys.sources import SOURCES


def _date(label: Any, required: bool = False) -> forms.DateField:
    return forms.DateField(label=label, required=required, widget=forms.DateInput(attrs={"type": "date"}),
                           error_messages={"invalid": _("日付を正しく入力してください（例: 2026-11-26）。")})


class SurveyHeaderForm(forms.Form):
    template = forms.ChoiceField(
        label=_("ひな形"), required=False,
        help_text=_("ひな形を選ぶと、項目と自動入力の設定が入った状態で作成されます。あとから項目を追加・削除できます。"),
    )
    title = forms.CharField(label=_("件名"), max_length=120, required=False,
                            help_text=_("ひな形を選んだ場合は空欄でもかまいません（ひな形の件名になります）。"))
    description = forms.CharField(label=_("説明"), max_length=2000, required=False,
                                  widget=forms.Textarea(attrs={"rows": 4}))
    period_start = _date(_("対象期間（開始日）"))
    period_end = _date(_("対象期間（終了日）"))

    def __init__(self, *args: Any, with_template: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if with_template:
            field = self.fields["template"]
            assert isinstance(field, forms.ChoiceField)
            field.choices = [("", _("使わない（空の照会）"))] + [(p.code, p.title) for p in PRESETS.values()]
        else:
            del self.fields["template"]
            self.fields["title"].required = True
            self.fields["title"].help_text = ""


class FieldForm(forms.Form):
    label = forms.CharField(label=_("項目名"), max_length=120)
    kind = forms.ChoiceField(label=_("種類"), choices=[
        ("number", _("数値")), ("text", _("文字")), ("single", _("単一選択")), ("multiple", _("複数選択")),
        ("date", _("日付")), ("table", _("表（行と列）")), ("file", _("ファイル")),
    ])
    required = forms.BooleanField(label=_("必須にする"), required=False)
    help_text = forms.CharField(label=_("回答者への説明"), max_length=300, required=False)
    min = forms.CharField(label=_("最小値（数値）"), required=False)
    max = forms.CharField(label=_("最大値（数値）"), required=False)
    unit = forms.CharField(label=_("単位（数値）"), max_length=10, required=False, help_text=_("例: 人、学級"))
    source = forms.ChoiceField(label=_("自動入力の元（数値）"), required=False,
                               help_text=_("学校の出欠・学籍の記録から値を入れておきます。学校は確認して修正できます。"))
    max_length = forms.CharField(label=_("最大文字数（文字）"), required=False)
    choices = forms.CharField(label=_("選択肢（選択）"), required=False, widget=forms.Textarea(attrs={"rows": 3}),
                              help_text=_("1行に1つずつ入力してください。"))
    columns = forms.CharField(
        label=_("列（表）"), required=False, widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("1行に1列、「列名:数値」または「列名:文字」の形で入力してください（例: 人数:数値）。"))
    rows = forms.CharField(
        label=_("行（表）"), required=False, widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("決まった行があれば1行に1つずつ。空欄なら学校が行を追加します。"))
    max_rows = forms.CharField(label=_("最大行数（表・行が自由な場合）"), required=False)
    types = forms.MultipleChoiceField(label=_("受け付ける形式（ファイル）"), required=False,
                                      choices=list(rules.FILE_TYPES.items()), widget=forms.CheckboxSelectMultiple)
    max_mb = forms.CharField(label=_("最大サイズMB（ファイル）"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["source"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", _("なし（学校が入力）")), *SOURCES.items()]

    def config(self) -> dict[str, Any]:
        return {k: self.cleaned_data.get(k) for k in
                ("min", "max", "unit", "max_length", "choices", "columns", "rows", "max_rows", "types", "max_mb")}


class PublishForm(forms.Form):
    target = forms.ChoiceField(label=_("送付先"), widget=forms.RadioSelect, choices=[
        ("all", _("所管のすべての学校")), ("type", _("学校種を指定")), ("list", _("学校を指定")),
    ])
    school_type = forms.ChoiceField(label=_("学校種"), required=False)
    schools = forms.MultipleChoiceField(label=_("学校"), required=False, widget=forms.CheckboxSelectMultiple)
    deadline_date = _date(_("回答期限（日）"), required=True)
    deadline_time = forms.TimeField(label=_("回答期限（時刻）"), initial=datetime.time(17, 0),
                                    widget=forms.TimeInput(attrs={"type": "time"}),
                                    error_messages={"invalid": _("時刻を正しく入力してください（例: 17:00）。")})
    remind_before_days = forms.IntegerField(
        label=_("期限前の自動督促（日前）"), min_value=0, max_value=14, initial=1,
        help_text=_("未提出の学校に、期限の何日前に自動で督促するか。0なら送りません。期限後は毎日督促します。"))

    def __init__(self, *args: Any, schools: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        kinds = self.fields["school_type"]
        assert isinstance(kinds, forms.ChoiceField)
        kinds.choices = [("", _("選んでください")), *SCHOOL_TYPES.items()]
        chosen = self.fields["schools"]
        assert isinstance(chosen, forms.MultipleChoiceField)
        chosen.choices = schools

    def deadline(self) -> datetime.datetime | None:
        day, time = self.cleaned_data.get("deadline_date"), self.cleaned_data.get("deadline_time")
        if day is None or time is None:
            return None
        return timezone.make_aware(datetime.datetime.combine(day, time))


class ReopenForm(forms.Form):
    reason = forms.CharField(label=_("訂正を求める理由"), max_length=300, widget=forms.Textarea(attrs={"rows": 3}),
                             help_text=_("学校に表示されます。どの項目をどう直してほしいか書いてください。"))
