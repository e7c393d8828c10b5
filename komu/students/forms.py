"""Forms for pupils. They only parse what was typed into Python values; every rule (kana, 外字, dates, who
may change the health note) lives in komu.students.services, whose ValidationFailed the view puts back on the
form."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from komu.students.models import Sex


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
