"""Forms of the directory screens. They give the input its shape; the rules live in the services."""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from komu.core import codes, wareki
from komu.core.text import TextError
from komu.directory.models import SCHOOL_TYPE_CHOICES, Board, HomeroomClass, Role
from komu.directory.services import LoadKind
from komu.directory.services.school_years import DEFAULT_TERM_NAMES

_CODE_ATTRS = {"autocomplete": "off", "spellcheck": "false", "autocapitalize": "characters"}


class JapaneseDateField(forms.DateField):
    """A date typed as 2026-04-01, 2026/4/1, 令和8年4月1日 or R8.4.1 (the browser's date picker sends the first)."""

    widget = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")

    def to_python(self, value: Any) -> datetime.date | None:
        if value in self.empty_values:
            return None
        if isinstance(value, datetime.date):
            return value
        try:
            return wareki.parse_date_strict(str(value), field=str(self.label or _("日付")))
        except TextError as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from exc


class SchoolSearchForm(forms.Form):
    q = forms.CharField(label=_("学校名・学校コード"), required=False, max_length=100)
    type = forms.ChoiceField(
        label=_("学校種"),
        required=False,
        choices=[("", _("すべて")), *SCHOOL_TYPE_CHOICES],
    )


class BoardSearchForm(forms.Form):
    q = forms.CharField(label=_("名称・教育委員会コード"), required=False, max_length=100)


class SchoolForm(forms.Form):
    code = forms.CharField(
        label=_("学校コード"),
        max_length=20,
        widget=forms.TextInput(attrs=_CODE_ATTRS),
        help_text=_("13桁の英数字（例: B113200000015）。学校種・都道府県・設置区分はコードから決まります。"),
    )
    name = forms.CharField(label=_("学校名"), max_length=100)
    board = forms.ModelChoiceField(
        label=_("設置者（教育委員会）"), queryset=Board.objects.none(), empty_label=_("選んでください")
    )
    address = forms.CharField(label=_("所在地"), max_length=200, required=False)
    phone = forms.CharField(
        label=_("代表電話"),
        max_length=20,
        required=False,
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off"}),
        help_text=_("例: 03-1234-5678"),
    )
    is_active = forms.BooleanField(label=_("運営中"), required=False, initial=True)

    def __init__(
        self, *args: Any, boards: QuerySet[Board], identity_editable: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        board_field = self.fields["board"]
        assert isinstance(board_field, forms.ModelChoiceField)
        board_field.queryset = boards.order_by("code")
        if not identity_editable:
            # The school's own staff see the code and board but change them through their board.
            for name in ("code", "board", "is_active"):
                self.fields[name].disabled = True
                self.fields[name].help_text = _("変更は教育委員会の担当者に依頼してください。")


class BoardForm(forms.Form):
    code = forms.CharField(
        label=_("教育委員会コード"),
        max_length=10,
        widget=forms.TextInput(attrs=_CODE_ATTRS),
        help_text=_("6桁の数字（都道府県コード2桁＋番号4桁。例: 131000）"),
    )
    name = forms.CharField(label=_("名称"), max_length=100)
    kind = forms.ChoiceField(
        label=_("種別"),
        required=False,
        choices=[("", _("コードから判定（XX1000 は都道府県教育委員会）")), *Board.Kind.choices],
    )
    parent = forms.ModelChoiceField(
        label=_("上位の教育委員会"),
        required=False,
        queryset=Board.objects.none(),
        empty_label=_("なし"),
        help_text=_("市区町村教育委員会の場合は、その都道府県の教育委員会を選びます。"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        parent_field = self.fields["parent"]
        assert isinstance(parent_field, forms.ModelChoiceField)
        parent_field.queryset = Board.objects.filter(kind=Board.Kind.PREFECTURAL).order_by("code")


class SchoolYearForm(forms.Form):
    year = forms.IntegerField(
        label=_("年度（西暦）"),
        min_value=1990,
        max_value=2100,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
        help_text=_("4月に始まる年の西暦です（例: 2026 → 2026年度（令和8年度））。"),
    )
    start_date = JapaneseDateField(label=_("開始日"), required=False, help_text=_("空欄なら4月1日です。"))
    end_date = JapaneseDateField(label=_("終了日"), required=False, help_text=_("空欄なら翌年3月31日です。"))


class TermsForm(forms.Form):
    """2 or 3 terms; the third row is used only when 3学期制 is chosen."""

    count = forms.TypedChoiceField(
        label=_("学期の数"),
        coerce=int,
        widget=forms.RadioSelect,
        choices=[(3, _("3学期制（1学期・2学期・3学期）")), (2, _("2学期制（前期・後期）"))],
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for n in (1, 2, 3):
            self.fields[f"term{n}_name"] = forms.CharField(
                label=_("%(n)dつ目の名称") % {"n": n},
                required=False,
                max_length=20,
                help_text=_("空欄なら「前期・後期」または「n学期」になります。"),
            )
            self.fields[f"term{n}_start"] = JapaneseDateField(
                label=_("%(n)dつ目の開始日") % {"n": n}, required=False
            )
            self.fields[f"term{n}_end"] = JapaneseDateField(
                label=_("%(n)dつ目の終了日") % {"n": n}, required=False
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        count = cleaned.get("count")
        if count:
            for n in range(1, int(count) + 1):
                for part, label in (("start", _("開始日")), ("end", _("終了日"))):
                    if not cleaned.get(f"term{n}_{part}") and f"term{n}_{part}" not in self.errors:
                        self.add_error(
                            f"term{n}_{part}",
                            _("%(n)dつ目の学期の%(label)sを入力してください。") % {"n": n, "label": label},
                        )
        return cleaned

    def rows(self) -> list[tuple[int, list[forms.BoundField]]]:
        return [(n, [self[f"term{n}_name"], self[f"term{n}_start"], self[f"term{n}_end"]]) for n in (1, 2, 3)]

    @staticmethod
    def default_names(count: int) -> tuple[str, ...]:
        return DEFAULT_TERM_NAMES[count]


class HomeroomClassForm(forms.Form):
    grade_code = forms.ChoiceField(label=_("学年"))
    name = forms.CharField(label=_("学級名"), max_length=30, help_text=_("例: 1組、ひまわり学級"))
    kind = forms.ChoiceField(
        label=_("種別"),
        choices=HomeroomClass.Kind.choices,
        initial=HomeroomClass.Kind.REGULAR,
        widget=forms.RadioSelect,
    )
    special_needs_category = forms.ChoiceField(
        label=_("障害種別"),
        required=False,
        choices=[("", _("（なし）")), *HomeroomClass.SpecialNeedsCategory.choices],
        help_text=_("特別支援学級のときに選びます。"),
    )
    sort_order = forms.IntegerField(
        label=_("並び順"),
        required=False,
        min_value=0,
        max_value=999,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
        help_text=_("同じ学年の中で小さい順に並びます。空欄なら0です。"),
    )

    def __init__(self, *args: Any, school_type: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        grade_field = self.fields["grade_code"]
        assert isinstance(grade_field, forms.ChoiceField)
        grade_field.choices = [
            (code, codes.grade_display(code)) for code in codes.grades_for_school_type(school_type)
        ]


class StaffAssignForm(forms.Form):
    login_id = forms.CharField(
        label=_("ログインID"),
        max_length=150,
        widget=forms.TextInput(attrs={**_CODE_ATTRS, "autocapitalize": "none"}),
        help_text=_("登録済みの教職員のログインIDを入力します。"),
    )
    role = forms.ChoiceField(label=_("役割"))
    homeroom_class = forms.ModelChoiceField(
        label=_("担当学級"),
        required=False,
        queryset=HomeroomClass.objects.none(),
        empty_label=_("なし"),
        help_text=_("学級担任のときに選びます（今年度の学級）。"),
    )
    start_date = JapaneseDateField(label=_("開始日"), required=False, help_text=_("空欄なら今日からです。"))

    def __init__(
        self, *args: Any, roles: list[str], classes: QuerySet[HomeroomClass] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        labels = dict(Role.choices)
        role_field = self.fields["role"]
        assert isinstance(role_field, forms.ChoiceField)
        role_field.choices = [("", _("選んでください")), *((r, labels[r]) for r in roles)]
        class_field = self.fields["homeroom_class"]
        assert isinstance(class_field, forms.ModelChoiceField)
        if classes is None:
            del self.fields["homeroom_class"]
        else:
            class_field.queryset = classes


class StaffEndForm(forms.Form):
    end_date = JapaneseDateField(
        label=_("終了日（最後の日）"),
        initial=timezone.localdate,
        help_text=_("この日の翌日から、この役割での利用はできなくなります。"),
    )


class BulkLoadForm(forms.Form):
    kind = forms.ChoiceField(label=_("登録するもの"), choices=LoadKind.choices, widget=forms.RadioSelect)
    file = forms.FileField(
        label=_("ファイル"),
        help_text=_("CSV（UTF-8、BOM付きUTF-8、Shift_JIS）または Excel（.xlsx）。10MBまで。"),
        widget=forms.ClearableFileInput(
            attrs={
                "accept": ".csv,.xlsx,text/csv,"
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            }
        ),
    )
