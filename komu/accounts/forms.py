"""Forms of the sign-in and account pages. They only check input shape; the rules live in services."""

from __future__ import annotations

import datetime
from typing import Any, ClassVar

from django import forms
from django.contrib.auth import forms as auth_forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

_REQUIRED = {"required": _("入力してください。")}


def _text(attrs: dict[str, str]) -> forms.TextInput:
    return forms.TextInput(
        attrs={"autocapitalize": "none", "autocorrect": "off", "spellcheck": "false", **attrs}
    )


class SignInForm(forms.Form):
    username = forms.CharField(
        label=_("ログインID"),
        max_length=150,
        error_messages={"required": _("ログインIDを入力してください。")},
        widget=_text({"autocomplete": "username", "autofocus": "autofocus"}),
    )
    password = forms.CharField(
        label=_("パスワード"),
        strip=False,
        max_length=4096,
        error_messages={"required": _("パスワードを入力してください。")},
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class PasswordConfirmForm(forms.Form):
    """The password step of re-authentication."""

    password = forms.CharField(
        label=_("パスワード"),
        strip=False,
        max_length=4096,
        error_messages={"required": _("パスワードを入力してください。")},
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": "autofocus"}),
    )


class TotpCodeForm(forms.Form):
    code = forms.CharField(
        label=_("確認コード（6桁）"),
        max_length=32,
        help_text=_("認証アプリに表示されている6桁の数字を入力してください。"),
        error_messages={"required": _("認証アプリに表示されている6桁の数字を入力してください。")},
        widget=_text({"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": "autofocus"}),
    )


class RecoveryCodeForm(forms.Form):
    recovery_code = forms.CharField(
        label=_("復旧コード（8文字）"),
        max_length=32,
        help_text=_(
            "印刷または保存した復旧コードのうち、まだ使っていないものを1つ入力してください。"
            "使ったコードは二度と使えません。"
        ),
        error_messages={"required": _("復旧コードを入力してください。")},
        widget=_text({"autocomplete": "off"}),
    )


class TotpConfirmForm(TotpCodeForm):
    name = forms.CharField(
        label=_("この認証アプリの名前"),
        max_length=64,
        required=False,
        help_text=_("複数の端末を登録したときに見分けるための名前です。例：仕事用スマートフォン"),
    )


class RecoveryAckForm(forms.Form):
    acknowledged = forms.BooleanField(
        label=_("復旧コードを印刷するか、安全な場所に保存しました"),
        error_messages={"required": _("復旧コードを印刷または保存してから、チェックを入れてください。")},
    )


class ApiTokenForm(forms.Form):
    EXPIRY_CHOICES: ClassVar[list[tuple[str, Any]]] = [
        ("30", _("30日")),
        ("90", _("90日")),
        ("365", _("1年")),
        ("never", _("無期限（おすすめしません）")),
    ]

    name = forms.CharField(
        label=_("用途"),
        max_length=100,
        help_text=_("何に使うトークンかを書いてください。例：出欠集計スクリプト"),
        error_messages={"required": _("用途を入力してください。例：出欠集計スクリプト")},
    )
    expires_in = forms.ChoiceField(
        label=_("有効期限"),
        choices=EXPIRY_CHOICES,
        initial="90",
        widget=forms.RadioSelect,
    )

    def expires_at(self) -> datetime.datetime | None:
        value = self.cleaned_data["expires_in"]
        if value == "never":
            return None
        return timezone.now() + datetime.timedelta(days=int(value))


class PasswordResetRequestForm(forms.Form):
    email = forms.EmailField(
        label=_("メールアドレス"),
        max_length=254,
        error_messages={
            "required": _("登録しているメールアドレスを入力してください。"),
            "invalid": _("メールアドレスの形式が正しくありません。例：taro@example.jp"),
        },
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": "autofocus"}),
    )


class PasswordChangeForm(auth_forms.PasswordChangeForm):
    """Django's form (old password checked, validators applied); saving goes through
    services.password_change."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["old_password"].label = _("現在のパスワード")
        self.fields["new_password1"].label = _("新しいパスワード")
        self.fields["new_password2"].label = _("新しいパスワード（確認）")
        self.fields["new_password2"].help_text = _("確認のため、もう一度入力してください。")


class SetPasswordForm(auth_forms.SetPasswordForm):  # type: ignore[type-arg]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["new_password1"].label = _("新しいパスワード")
        self.fields["new_password2"].label = _("新しいパスワード（確認）")
        self.fields["new_password2"].help_text = _("確認のため、もう一度入力してください。")
