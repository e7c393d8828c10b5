"""Forms for pupils. They only parse what was typed into Python values; every rule (kana, 外字, dates, who
may change the health note) lives in komu.students.services, whose ValidationFailed the view puts back on the
form."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from komu.students.models import SchoolNumberingRule, Sex


class StudentForm(forms.Form):
    """編集: a pupil's basic record. `with_health_note=False` leaves the health note out entirely, for people
    who may edit a pupil but not read their health note (the service would refuse the field anyway)."""

    # Names are kept exactly as typed (no strip, no normalisation): the service checks them for 外字.
    family_name = forms.CharField(
        label=_("姓"), max_length=100, strip=False, error_messages={"required": _("姓を入力してください。")},
    )
    given_name = forms.CharField(
        label=_("名"), max_length=100, strip=False, error_messages={"required": _("名を入力してください。")},
    )
    family_name_kana = forms.CharField(
        label=_("姓（ふりがな）"), max_length=100, error_messages={"required": _("姓（ふりがな）を入力してください。")},
        help_text=_("カタカナまたはひらがなで入力してください（ひらがなはカタカナに直して保存します）。"),
    )
    given_name_kana = forms.CharField(
        label=_("名（ふりがな）"), max_length=100, error_messages={"required": _("名（ふりがな）を入力してください。")},
    )
    sex = forms.ChoiceField(
        label=_("性別"), choices=Sex.choices, widget=forms.RadioSelect,
        error_messages={
            "required": _("性別を選んでください。"),
            "invalid_choice": _("性別は一覧から選んでください。"),
        },
    )
    birth_date = forms.DateField(
        label=_("生年月日"), required=False, input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": _("生年月日は 2017-04-02 のように 年-月-日 の形で入力してください。")},
    )
    address = forms.CharField(label=_("住所"), max_length=200, required=False)
    health_note = forms.CharField(
        label=_("健康上の配慮（アレルギー等）"), max_length=2000, required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("要配慮個人情報です。閲覧・変更はすべて記録されます。"),
    )

    def __init__(self, *args: Any, with_health_note: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not with_health_note:
            del self.fields["health_note"]


# --- 学級編制, 年次更新, 出席番号の規則 ------------------------------------------------------------------------------

class PlacementForm(forms.Form):
    """この学級に入れる: the class chosen for the ticked pupils (the pupils themselves are a list of ids the view
    reads with getlist; the service checks each)."""

    homeroom_class = forms.IntegerField(
        label=_("入れる学級"), min_value=1,
        error_messages={"required": _("入れる学級を選んでください。"), "invalid": _("入れる学級を選んでください。")},
    )


class RolloverForm(forms.Form):
    """年次更新の実行: what the preview showed, confirmed."""

    graduation_date = forms.DateField(
        label=_("卒業の日"), input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("卒業証書の日付（卒業式の日）です。卒業生はこの日に卒業したと記録され、在籍でなくなります。"),
        error_messages={"required": _("卒業の日を入力してください。"),
                        "invalid": _("卒業の日は 2027-03-19 のように 年-月-日 の形で入力してください。")},
    )
    reform = forms.MultipleChoiceField(
        label=_("学級を編制し直す学年"), required=False, widget=forms.CheckboxSelectMultiple,
        help_text=_("チェックした学年は、次の年度に学級を編制し直します（児童生徒は学級編制の画面で振り分けます）。"
                    "チェックしない学年は、同じ名前の学級にそのまま進級します。特別支援学級は常にそのまま引き継ぎます。"),
        error_messages={"invalid_choice": _("学年は一覧から選んでください。")},
    )
    digest = forms.CharField(widget=forms.HiddenInput, max_length=64)
    confirm = forms.BooleanField(
        label=_("上の内容を確認しました。この内容で年次更新を実行します。"),
        error_messages={"required": _("内容を確認したら、チェックを入れてください。")},
    )

    def __init__(self, *args: Any, grade_choices: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["reform"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = grade_choices


class NumberingRuleForm(forms.Form):
    order = forms.ChoiceField(
        label=_("出席番号の付け方"), choices=SchoolNumberingRule.Order.choices, widget=forms.RadioSelect,
        help_text=_("変更しても、今の出席番号はそのままです。各学級の「番号を付け直す」を押すと、この付け方で付け直します。"),
        error_messages={"required": _("出席番号の付け方を選んでください。"),
                        "invalid_choice": _("出席番号の付け方は一覧から選んでください。")},
    )
