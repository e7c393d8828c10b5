"""Forms of the 学齢簿 and roster screens. They parse what was typed; every rule (kana, 外字, which school may be
designated, scope) lives in komu.rosters.services, whose ValidationFailed the view puts back on the form."""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from komu.core.text import TextError
from komu.core.wareki import parse_date_strict
from komu.rosters.models import GakureiboEntry


class WarekiDateField(forms.CharField):
    """A date typed as 2020-04-02, 2020/4/2, 令和2年4月2日 or R2.4.2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 30)
        super().__init__(*args, **kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, datetime.date):
            return value.isoformat()
        return value

    def clean(self, value: Any) -> datetime.date | None:
        text = super().clean(value)
        if not text:
            return None
        try:
            return parse_date_strict(text, field=str(self.label or ""))
        except TextError as exc:
            raise forms.ValidationError(str(exc)) from exc


_DATE_HELP = _("2020-04-02、2020/4/2、令和2年4月2日、R2.4.2 のどれでも入力できます。")


class EntrantForm(forms.Form):
    """One child of the 学齢簿. Names are kept exactly as typed (no strip): the service checks them for 外字."""

    person_id = forms.CharField(label=_("個人番号"), max_length=30,
                                help_text=_("教育委員会の宛名番号など。英数字で入力してください。"),
                                error_messages={"required": _("個人番号を入力してください。")})
    family_name = forms.CharField(label=_("氏名（姓）"), max_length=100, strip=False,
                                  error_messages={"required": _("氏名（姓）を入力してください。")})
    given_name = forms.CharField(label=_("氏名（名）"), max_length=100, strip=False, required=False)
    family_name_kana = forms.CharField(
        label=_("ふりがな（姓）"), max_length=100, required=False,
        help_text=_("カタカナまたはひらがなで入力してください（カタカナに直して保存します）。"),
    )
    given_name_kana = forms.CharField(label=_("ふりがな（名）"), max_length=100, required=False)
    sex = forms.ChoiceField(
        label=_("性別"), choices=[("male", _("男")), ("female", _("女")), ("unspecified", _("未設定"))],
        widget=forms.RadioSelect, initial="unspecified",
        error_messages={"required": _("性別を選んでください。")},
    )
    birth_date = WarekiDateField(label=_("生年月日"), help_text=_DATE_HELP,
                                 error_messages={"required": _("生年月日を入力してください。")})
    postal_code = forms.CharField(label=_("郵便番号"), max_length=10, required=False)
    address = forms.CharField(label=_("住所"), max_length=200, required=False)
    guardian_family_name = forms.CharField(label=_("保護者氏名（姓）"), max_length=100, strip=False,
                                           required=False)
    guardian_given_name = forms.CharField(label=_("保護者氏名（名）"), max_length=100, strip=False,
                                          required=False)
    guardian_family_name_kana = forms.CharField(label=_("保護者ふりがな（姓）"), max_length=100, required=False)
    guardian_given_name_kana = forms.CharField(label=_("保護者ふりがな（名）"), max_length=100, required=False)
    guardian_relationship = forms.CharField(label=_("続柄"), max_length=20, required=False,
                                            help_text=_("父、母、祖母 など"))
    guardian_id = forms.CharField(label=_("保護者の個人番号"), max_length=30, required=False)
    guardian_phone = forms.CharField(label=_("保護者電話番号"), max_length=30, required=False)
    guardian_email = forms.CharField(label=_("保護者メールアドレス"), max_length=254, required=False)
    guardian_address = forms.CharField(label=_("保護者住所"), max_length=200, required=False,
                                       help_text=_("児童と同じなら空欄で構いません。"))
    entry_date = WarekiDateField(label=_("入学予定日"), required=False,
                                 help_text=_("空欄なら4月1日として扱います。"))
    note = forms.CharField(label=_("備考"), max_length=1000, required=False,
                           widget=forms.Textarea(attrs={"rows": 3}))
    reason = forms.CharField(label=_("変更の理由"), max_length=200, required=False,
                             help_text=_("送付済みの名簿があるとき、学校に届く変更に添えられます（例：転居）。"))


class NewEntrantForm(EntrantForm):
    designated_school = forms.TypedChoiceField(label=_("就学校"), coerce=int, required=False, empty_value=None)
    special_needs = forms.BooleanField(label=_("特別支援学級"), required=False)

    def __init__(self, *args: Any, school_choices: list[tuple[Any, Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        del self.fields["reason"]
        self.fields["designated_school"].choices = [("", _("（未指定）")), *school_choices]  # type: ignore[attr-defined]


class DesignateForm(forms.Form):
    school = forms.TypedChoiceField(label=_("就学校"), coerce=int, required=False, empty_value=None,
                                    help_text=_("他の教育委員会の学校を選ぶと区域外就学になります。"))
    special_needs = forms.BooleanField(label=_("特別支援学級に就学"), required=False)
    reason = forms.CharField(label=_("理由"), max_length=200, required=False)

    def __init__(self, *args: Any, school_choices: list[tuple[Any, Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["school"].choices = [("", _("（未指定）")), *school_choices]  # type: ignore[attr-defined]


class StatusForm(forms.Form):
    status = forms.ChoiceField(label=_("状態"), choices=GakureiboEntry.Status.choices,
                               error_messages={"required": _("状態を選んでください。")})
    reason = forms.CharField(label=_("理由"), max_length=200, required=False,
                             help_text=_("例：市外へ転出（3月）、就学猶予の決定"))


class BulkDesignateForm(forms.Form):
    school = forms.TypedChoiceField(label=_("選んだ児童の就学校"), coerce=int,
                                    error_messages={"required": _("指定する学校を選んでください。"),
                                                    "invalid_choice": _("学校を一覧から選んでください。")})
    entries = forms.MultipleChoiceField(error_messages={"required": _("一覧のチェックボックスで児童を選んでください。")})

    def __init__(self, *args: Any, school_choices: list[tuple[Any, Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["school"].choices = [("", _("選んでください")), *school_choices]  # type: ignore[attr-defined]
        # The ids are checked by the service (scope and board); the form only collects them.
        self.fields["entries"].choices = [(v, v) for v in self.data.getlist("entries")] if self.data else []  # type: ignore[attr-defined]


class EntryFilterForm(forms.Form):
    school = forms.IntegerField(required=False, min_value=1)
    only = forms.ChoiceField(
        label=_("絞り込み"), required=False,
        choices=[("", _("すべて")), ("undesignated", _("就学校が未指定")), ("needs_review", _("要確認")),
                 ("out_of_district", _("区域外就学")), ("special_needs", _("特別支援学級")),
                 ("moved_out", _("転出（市外）")), ("deferred", _("就学猶予・免除"))],
    )
    kana = forms.CharField(label=_("ふりがなで探す"), max_length=100, required=False,
                           help_text=_("姓と名の読み全体（例：タカハシ ヨシノ）で探します。"))
    page = forms.IntegerField(required=False, min_value=1)


class SendForm(forms.Form):
    schools = forms.MultipleChoiceField(
        label=_("送付する学校"), widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("送付する学校を1校以上選んでください。")},
    )
    deadline = WarekiDateField(label=_("通知期限"), help_text=_("学校教育法施行令第5条により、通常は1月31日です。"),
                               error_messages={"required": _("通知期限を入力してください。")})
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, school_choices: list[tuple[Any, Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["schools"].choices = school_choices  # type: ignore[attr-defined]
