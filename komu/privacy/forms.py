from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from komu.privacy.models import Incident

# The data items a school selection may expose (a list that left the school: name, class, contacts...).
QUERY_FIELDS = [
    ("family_name", _("氏名")),
    ("family_name_kana", _("氏名のふりがな")),
    ("shusseki_no", _("出席番号")),
    ("birth_date", _("生年月日")),
    ("address", _("住所")),
    ("guardian_name", _("保護者氏名")),
    ("guardian_phone", _("保護者の電話番号")),
    ("emergency_contacts", _("緊急連絡先")),
    ("health_note", _("健康上の配慮（アレルギー等）")),
]
def _set_choices(field: forms.Field, choices: list[tuple[str, Any]]) -> None:
    assert isinstance(field, forms.ChoiceField)
    field.choices = choices


DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class IncidentForm(forms.Form):
    source = forms.ChoiceField(
        label=_("対象者の特定方法"), widget=forms.RadioSelect, initial=Incident.Source.DISCLOSURE,
        choices=[(Incident.Source.DISCLOSURE, _("紛失した印刷物の通し番号から")),
                 (Incident.Source.AUDIT, _("あるアカウントが期間内に閲覧した記録（監査ログ）から")),
                 (Incident.Source.QUERY, _("学校・学級の指定から"))],
        error_messages={"required": _("対象者の特定方法を選んでください。")},
    )
    title = forms.CharField(label=_("件名"), max_length=200, required=False,
                            help_text=_("例：校外学習で緊急連絡先一覧を紛失。通し番号から作成する場合は空欄で自動入力されます。"))
    kind = forms.ChoiceField(label=_("事案の種類"), choices=Incident.Kind.choices, initial=Incident.Kind.LOST_DOCUMENT)
    found_at = forms.DateTimeField(label=_("発覚日時（漏えい等を知った日時）"), widget=DATETIME,
                                   input_formats=["%Y-%m-%dT%H:%M"],
                                   error_messages={"required": _("発覚日時を入力してください。"),
                                                   "invalid": _("発覚日時を正しく入力してください。")})
    unlawful_purpose = forms.BooleanField(
        label=_("盗難・不正アクセスなど不正の目的によるおそれがある"), required=False,
        help_text=_("チェックすると確報の期限が60日になります。"))
    encrypted = forms.BooleanField(label=_("データは高度な暗号化で保護されていた"), required=False)
    serial = forms.CharField(label=_("通し番号"), max_length=20, required=False,
                             help_text=_("印刷物の各ページに印字された番号"))
    account = forms.ChoiceField(label=_("アカウント"), required=False)
    start = forms.DateTimeField(label=_("期間の開始"), required=False, widget=DATETIME, input_formats=["%Y-%m-%dT%H:%M"],
                                error_messages={"invalid": _("開始日時を正しく入力してください。")})
    end = forms.DateTimeField(label=_("期間の終了"), required=False, widget=DATETIME, input_formats=["%Y-%m-%dT%H:%M"],
                              error_messages={"invalid": _("終了日時を正しく入力してください。")})
    school = forms.ChoiceField(label=_("学校"), required=False)
    classes = forms.MultipleChoiceField(label=_("学級（指定しなければ全校）"), required=False,
                                        widget=forms.CheckboxSelectMultiple)
    items = forms.MultipleChoiceField(label=_("漏えい等のおそれがある項目"), required=False, choices=QUERY_FIELDS,
                                       widget=forms.CheckboxSelectMultiple)
    summary = forms.CharField(label=_("概要"), required=False, widget=forms.Textarea(attrs={"rows": 3}),
                              max_length=4000)

    def __init__(self, *args: Any, accounts: list[tuple[str, str]], schools: list[tuple[str, str]],
                 classes: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _set_choices(self.fields["account"], [("", _("選んでください")), *accounts])
        _set_choices(self.fields["school"], [("", _("選んでください")), *schools])
        _set_choices(self.fields["classes"], classes)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        source = data.get("source")
        if source == Incident.Source.DISCLOSURE and not data.get("serial"):
            self.add_error("serial", _("通し番号を入力してください。"))
        if source == Incident.Source.AUDIT:
            for name, message in (("account", _("アカウントを選んでください。")),
                                  ("start", _("期間の開始を入力してください。")),
                                  ("end", _("期間の終了を入力してください。"))):
                if not data.get(name) and name not in self.errors:
                    self.add_error(name, message)
        if source == Incident.Source.QUERY:
            if not data.get("school"):
                self.add_error("school", _("学校を選んでください。"))
            if not data.get("items"):
                self.add_error("items", _("漏えい等のおそれがある項目を1つ以上選んでください。"))
        if source != Incident.Source.DISCLOSURE and not (data.get("title") or "").strip():
            self.add_error("title", _("件名を入力してください（例：校外学習で名簿を紛失）。"))
        return data


class ReportForm(forms.Form):
    title = forms.CharField(label=_("件名"), max_length=200,
                            error_messages={"required": _("件名を入力してください。")})
    summary = forms.CharField(label=_("概要"), required=False, max_length=4000,
                              widget=forms.Textarea(attrs={"rows": 4}))
    cause = forms.CharField(label=_("原因"), required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 3}))
    secondary_damage = forms.CharField(label=_("二次被害又はそのおそれの有無及びその内容"), required=False,
                                       max_length=4000, widget=forms.Textarea(attrs={"rows": 3}))
    response_to_persons = forms.CharField(label=_("本人への対応の実施状況"), required=False, max_length=4000,
                                          widget=forms.Textarea(attrs={"rows": 3}))
    publication = forms.CharField(label=_("公表の実施状況"), required=False, max_length=4000,
                                  widget=forms.Textarea(attrs={"rows": 2}))
    prevention = forms.CharField(label=_("再発防止のための措置"), required=False, max_length=4000,
                                 widget=forms.Textarea(attrs={"rows": 3}))
    unlawful_purpose = forms.BooleanField(label=_("盗難・不正アクセスなど不正の目的によるおそれがある（確報60日）"),
                                          required=False)
    encrypted = forms.BooleanField(label=_("データは高度な暗号化で保護されていた"), required=False)
    status = forms.ChoiceField(label=_("状況"), choices=Incident.Status.choices)


class LockoutForm(forms.Form):
    target = forms.ChoiceField(label=_("対象"), error_messages={"required": _("対象の学校または教育委員会を選んでください。")})
    reason = forms.CharField(label=_("理由"), max_length=500, widget=forms.Textarea(attrs={"rows": 2}),
                             error_messages={"required": _("理由を入力してください（例：端末の盗難による不正アクセスのおそれ）。")})
    confirm = forms.BooleanField(
        label=_("対象の教職員全員がサインアウトされ、パスワードの再設定が必要になることを理解しました"),
        error_messages={"required": _("確認のチェックを入れてください。")})

    def __init__(self, *args: Any, targets: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _set_choices(self.fields["target"], [("", _("選んでください")), *targets])
