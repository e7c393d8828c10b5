"""Forms for pupils. They only parse what was typed into Python values; every rule (kana, 外字, dates, who
may change the health note) lives in komu.students.services, whose ValidationFailed the view puts back on the
form."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from komu.students.models import EnrollmentKind, SchoolNumberingRule, Sex, SpecialNeedsPlacement


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


# --- 学籍の各欄: 緊急連絡先, 学籍の異動, 特別支援教育, 保護者 ----------------------------------------------------------

class EmergencyContactRowForm(forms.Form):
    """One row of the emergency contacts list. A row left entirely blank is ignored; 順位 orders the rows."""

    order = forms.IntegerField(
        label=_("順位"), required=False, min_value=1, max_value=99,
        error_messages={"invalid": _("順位は数字で入力してください。"),
                        "min_value": _("順位は1以上の数字で入力してください。"),
                        "max_value": _("順位は99以下の数字で入力してください。")},
    )
    name = forms.CharField(label=_("氏名"), max_length=100, required=False, strip=False)
    relationship = forms.CharField(label=_("続柄"), max_length=20, required=False,
                                   help_text=_("例: 祖母、父の勤務先"))
    phone = forms.CharField(label=_("電話番号"), max_length=30, required=False,
                            widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "off"}))
    note = forms.CharField(label=_("備考"), max_length=200, required=False, help_text=_("例: 平日昼のみ"))
    delete = forms.BooleanField(label=_("削除"), required=False)

    def is_blank(self) -> bool:
        data = self.cleaned_data
        return not any((data.get("name") or "").strip() or (data.get(f) or "").strip()
                       for f in ("relationship", "phone", "note"))


EmergencyContactFormSet = forms.formset_factory(EmergencyContactRowForm, extra=2, max_num=10, absolute_max=12)


class EnrollmentEventForm(forms.Form):
    """学籍の異動を記録する (指導要録 学籍の記録)."""

    kind = forms.ChoiceField(
        label=_("異動の種類"), choices=EnrollmentKind.choices,
        error_messages={"required": _("異動の種類を選んでください。"),
                        "invalid_choice": _("異動の種類は一覧から選んでください。")},
    )
    date = forms.DateField(
        label=_("年月日"), input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"required": _("年月日を入力してください。"),
                        "invalid": _("年月日は 2027-04-06 のように 年-月-日 の形で入力してください。")},
    )
    grade_code = forms.ChoiceField(
        label=_("学年"), error_messages={"required": _("学年を選んでください。"),
                                       "invalid_choice": _("学年は一覧から選んでください。")},
    )
    other_school_name = forms.CharField(
        label=_("他校名"), max_length=100, required=False,
        help_text=_("転入学では前の学校、転学では転学先の学校の名前です。"),
    )
    other_school_code = forms.CharField(label=_("他校の学校コード"), max_length=20, required=False,
                                        help_text=_("分かれば13桁の学校コードを入力してください。"))
    reason = forms.CharField(label=_("事由"), max_length=500, required=False,
                             widget=forms.Textarea(attrs={"rows": 3}),
                             help_text=_("家庭の事情などが分かる内容は、必要な範囲で書いてください。閲覧は記録されます。"))

    def __init__(self, *args: Any, grade_choices: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["grade_code"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", _("選んでください")), *grade_choices]


class SpecialNeedsForm(forms.Form):
    special_needs_placement = forms.ChoiceField(
        label=_("特別支援教育の形態"), choices=SpecialNeedsPlacement.choices, widget=forms.RadioSelect,
        error_messages={"required": _("形態を選んでください。"),
                        "invalid_choice": _("形態は一覧から選んでください。")},
    )
    special_needs_category = forms.CharField(
        label=_("障害種別・指導の内容"), max_length=200, required=False,
        help_text=_("要配慮個人情報です。形態が「なし」のときは空欄にしてください。"),
    )


class GuardianForm(forms.Form):
    family_name = forms.CharField(label=_("姓"), max_length=100, strip=False,
                                  error_messages={"required": _("姓を入力してください。")})
    given_name = forms.CharField(label=_("名"), max_length=100, strip=False,
                                 error_messages={"required": _("名を入力してください。")})
    family_name_kana = forms.CharField(label=_("姓（ふりがな）"), max_length=100, required=False)
    given_name_kana = forms.CharField(label=_("名（ふりがな）"), max_length=100, required=False)
    relationship = forms.CharField(label=_("続柄"), max_length=20, help_text=_("例: 母、父、祖母"),
                                   error_messages={"required": _("続柄を入力してください（例: 母、父、祖母）。")})
    priority = forms.IntegerField(
        label=_("連絡順位"), min_value=1, max_value=9, initial=1,
        error_messages={"required": _("連絡順位を入力してください。"),
                        "invalid": _("連絡順位は1〜9の数字で入力してください。"),
                        "min_value": _("連絡順位は1〜9の数字で入力してください。"),
                        "max_value": _("連絡順位は1〜9の数字で入力してください。")},
    )
    phone = forms.CharField(label=_("電話番号"), max_length=30, required=False,
                            widget=forms.TextInput(attrs={"type": "tel"}))
    email = forms.CharField(label=_("メールアドレス"), max_length=254, required=False,
                            widget=forms.EmailInput())
    address = forms.CharField(label=_("住所"), max_length=200, required=False)
