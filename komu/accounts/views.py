"""Sign-in, second factors, re-authentication, the account security page, passwords and API tokens.

Every page here acts on the signed-in person's own account, so none needs a capability; which of them a
password-only session may reach is decided by MfaRequiredMiddleware (only the sign-in steps).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import authenticate, update_session_auth_hash
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp import login as otp_login

from komu.accounts import forms, mfa, selectors, services
from komu.accounts.models import User
from komu.core.errors import NotFoundOrNoAccess, ValidationFailed

# --- Helpers ------------------------------------------------------------------------------------------------


def _safe_next(request: HttpRequest, fallback: str = "web:home") -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url(fallback)


def _with_next(url_name: str, next_url: str) -> str:
    return f"{reverse(url_name)}?{urlencode({'next': next_url})}"


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def _crumbs(label: str) -> list[dict[str, str]]:
    return [{"label": _("アカウント設定"), "url": reverse("accounts:security")}, {"label": label, "url": ""}]


def reauth_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The view changes how the account is protected: it needs a re-authentication within KOMU_REAUTH_SECONDS.
    A GET comes back here afterwards; a POST cannot be replayed, so it returns to the page that showed the
    form."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not mfa.reauth_is_fresh(request):
            back = request.get_full_path() if request.method == "GET" else request.headers.get("Referer", "")
            if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
                back = reverse("accounts:security")
            return redirect(_with_next("accounts:reauth", back))
        return view(request, *args, **kwargs)

    return wrapped


def _code_forms(
    request: HttpRequest, step: str = ""
) -> tuple[str, forms.TotpCodeForm, forms.RecoveryCodeForm]:
    """The 6-digit and recovery-code forms of a second-factor page; `method` says which one was posted."""
    posted = request.method == "POST" and (not step or request.POST.get("step") == step)
    method = request.POST.get("method", "") if posted else ""
    totp_form = forms.TotpCodeForm(request.POST if method == "totp" else None)
    recovery_form = forms.RecoveryCodeForm(request.POST if method == "recovery" else None)
    return method, totp_form, recovery_form


def _check_code_forms(
    request: HttpRequest,
    method: str,
    totp_form: forms.TotpCodeForm,
    recovery_form: forms.RecoveryCodeForm,
    purpose: str,
) -> services.SecondFactorResult | None:
    form: Form | None = totp_form if method == "totp" else recovery_form if method == "recovery" else None
    if form is None or not form.is_valid():
        return None
    field = "code" if method == "totp" else "recovery_code"
    try:
        return services.second_factor_verify(
            actor=_user(request), code=form.cleaned_data[field], purpose=purpose
        )
    except services.CodeRejected as exc:
        form.add_error(field, str(exc))
        return None


def _after_recovery_code(request: HttpRequest, result: services.SecondFactorResult) -> None:
    left = result.recovery_codes_left or 0
    if left <= 3:
        messages.warning(
            request,
            _(
                "復旧コードを使いました。残りは %(left)d 個です。"
                "アカウント設定で新しい復旧コードを発行してください。"
            )
            % {"left": left},
        )
    else:
        messages.info(request, _("復旧コードを使いました。残りは %(left)d 個です。") % {"left": left})


# --- Sign-in ------------------------------------------------------------------------------------------------


@sensitive_post_parameters("password")
@never_cache
def login_view(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request)
    if request.user.is_authenticated and not mfa.second_factor_owed(request):
        return redirect(next_url)
    form = forms.SignInForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        username = services.normalize_username(form.cleaned_data["username"])
        # Through authenticate(): django-axes counts failures per login ID + address and refuses locked ones.
        user = authenticate(request, username=username, password=form.cleaned_data["password"])
        if user is None:
            services.signin_failed(
                username=username, locked_out=bool(getattr(request, "axes_locked_out", False))
            )
            # One message for unknown ID, wrong password and disabled account: the page is no username oracle.
            form.add_error(
                None,
                _(
                    "ログインIDまたはパスワードが正しくありません。"
                    "入力内容を確かめて、もう一度お試しください。"
                ),
            )
        else:
            auth_login(request, user)
            return _after_password(request, user, next_url)
    # Echo the page asked for (validated again by _safe_next when used), not the home-page fallback.
    asked_for = request.POST.get("next") or request.GET.get("next", "")
    return render(request, "accounts/login.html", {"form": form, "next": asked_for})


def _after_password(request: HttpRequest, user: User, next_url: str) -> HttpResponse:
    has_device = mfa.has_confirmed_device(user)
    step = "mfa_verify" if has_device else "mfa_enrol" if user.mfa_required else ""
    if has_device and not user.mfa_required:
        # A guardian who turned MFA on: the middleware holds them at verification like staff.
        request.session[mfa.SESSION_MFA_PENDING] = True
    services.signin_succeeded(user=user, next_step=step)
    if step:
        return redirect(_with_next(f"accounts:{step}", next_url))
    mfa.signin_completed(request)
    return redirect(next_url)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        services.signout(user=_user(request))
    auth_logout(request)
    messages.success(request, _("ログアウトしました。"))
    return redirect("accounts:login")


@login_required
@never_cache
def mfa_verify(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request)
    user = _user(request)
    if not mfa.second_factor_owed(request):
        return redirect(next_url)
    if not mfa.has_confirmed_device(user):
        if user.mfa_required:
            return redirect(_with_next("accounts:mfa_enrol", next_url))
        mfa.signin_completed(request)
        return redirect(next_url)
    method, totp_form, recovery_form = _code_forms(request)
    result = _check_code_forms(request, method, totp_form, recovery_form, purpose="signin")
    if result is not None:
        otp_login(request, result.device)
        mfa.signin_completed(request)
        if result.method == "recovery":
            _after_recovery_code(request, result)
        return redirect(next_url)
    overview = selectors.security_overview(actor=user)
    return render(
        request,
        "accounts/mfa_verify.html",
        {
            "totp_form": totp_form,
            "recovery_form": recovery_form,
            "method": method,
            "has_totp": any(d.kind == "totp" for d in overview.devices),
            "has_passkey": any(d.kind == "passkey" for d in overview.devices),
            "recovery_codes_left": overview.recovery_codes_left,
            "next": next_url,
        },
    )


# --- Enrolment and recovery codes ---------------------------------------------------------------------------


def _totp_setup_context(device: Any) -> dict[str, Any]:
    return {
        "device": device,
        "qr": mfa.qr_svg(device.config_url),
        "secret": mfa.totp_secret_text(device),
    }


def _show_recovery_codes(request: HttpRequest, codes: list[str], next_url: str) -> HttpResponse:
    """The one time the codes are visible: rendered straight into this response, stored nowhere in plain
    text."""
    return render(
        request,
        "accounts/recovery_codes_show.html",
        {
            "codes": codes,
            "ack_form": forms.RecoveryAckForm(),
            "next": next_url,
        },
    )


@login_required
@never_cache
def mfa_enrol(request: HttpRequest) -> HttpResponse:
    """First sign-in of a staff member: set up an authenticator app (or a passkey), then take recovery
    codes."""
    next_url = _safe_next(request)
    user = _user(request)
    if mfa.has_confirmed_device(user):
        if mfa.second_factor_owed(request):
            return redirect(_with_next("accounts:mfa_verify", next_url))
        return redirect(next_url)
    if not user.mfa_required:
        # Guardians turn MFA on from the security page, after re-authenticating.
        return redirect("accounts:totp_add")
    device = services.totp_device_add(actor=user)
    form = forms.TotpConfirmForm(request.POST or None, initial={"name": services.TOTP_DEFAULT_NAME})
    if request.method == "POST" and form.is_valid():
        try:
            services.totp_device_confirm(
                actor=user,
                device_id=device.pk,
                code=form.cleaned_data["code"],
                name=form.cleaned_data["name"],
            )
        except services.CodeRejected as exc:
            form.add_error("code", str(exc))
        else:
            device.refresh_from_db()
            otp_login(request, device)
            mfa.signin_completed(request)
            return _show_recovery_codes(request, services.recovery_codes_issue(actor=user), next_url)
    return render(
        request,
        "accounts/mfa_enrol.html",
        {
            **_totp_setup_context(device),
            "form": form,
            "next": next_url,
            "passkey_done_url": _with_next("accounts:recovery_codes", next_url),
        },
    )


@login_required
@never_cache
def recovery_codes(request: HttpRequest) -> HttpResponse:
    next_url = _safe_next(request, fallback="accounts:security")
    user = _user(request)
    action = request.POST.get("action", "") if request.method == "POST" else ""
    if action == "acknowledge":
        ack = forms.RecoveryAckForm(request.POST)
        if ack.is_valid():
            messages.success(
                request,
                _("復旧コードの準備ができました。認証アプリやパスキーを使えないときに使ってください。"),
            )
            return redirect(next_url)
        messages.warning(
            request,
            _(
                "確認のチェックが入っていませんでした。先ほどのコードを保存できなかった場合は、"
                "新しい復旧コードを発行してください（前のコードは使えなくなります）。"
            ),
        )
        return redirect(_with_next("accounts:recovery_codes", next_url))
    if action == "issue":
        if not mfa.reauth_is_fresh(request):
            return redirect(_with_next("accounts:reauth", _with_next("accounts:recovery_codes", next_url)))
        try:
            codes = services.recovery_codes_issue(actor=user)
        except ValidationFailed as exc:
            messages.error(request, str(exc))
            return redirect("accounts:security")
        return _show_recovery_codes(request, codes, next_url)
    overview = selectors.security_overview(actor=user)
    return render(
        request,
        "accounts/recovery_codes.html",
        {
            "overview": overview,
            "reauth_fresh": mfa.reauth_is_fresh(request),
            "next": next_url,
            "breadcrumbs": _crumbs(_("復旧コード")),
        },
    )


# --- Re-authentication --------------------------------------------------------------------------------------


@sensitive_post_parameters("password")
@login_required
@never_cache
def reauth(request: HttpRequest) -> HttpResponse:
    """Step-up: the password, then the current second factor (TOTP, recovery code or passkey). Valid for
    KOMU_REAUTH_SECONDS. Someone without a second factor (a guardian without MFA) gives the password only."""
    next_url = _safe_next(request, fallback="accounts:security")
    user = _user(request)
    overview = selectors.security_overview(actor=user)
    has_factor = overview.has_primary
    password_form = forms.PasswordConfirmForm(
        request.POST if request.method == "POST" and request.POST.get("step") == "password" else None
    )
    if password_form.is_bound and password_form.is_valid():
        ok = authenticate(
            request, username=user.get_username(), password=password_form.cleaned_data["password"]
        )
        accepted = ok is not None and ok.pk == user.pk
        services.reauth_password_checked(actor=user, ok=accepted)
        if accepted and has_factor:
            mfa.reauth_password_mark(request)
            return redirect(_with_next("accounts:reauth", next_url))
        if accepted:
            services.reauth_completed_without_factor(actor=user)
            mfa.reauth_mark(request)
            return redirect(next_url)
        password_form.add_error("password", _("パスワードが正しくありません。もう一度入力してください。"))
    step = "factor" if has_factor and mfa.reauth_password_is_fresh(request) else "password"
    method, totp_form, recovery_form = _code_forms(request, step="factor")
    if step == "factor":
        result = _check_code_forms(request, method, totp_form, recovery_form, purpose="reauth")
        if result is not None:
            mfa.reauth_mark(request)
            if result.method == "recovery":
                _after_recovery_code(request, result)
            return redirect(next_url)
    return render(
        request,
        "accounts/reauth.html",
        {
            "step": step,
            "password_form": password_form,
            "totp_form": totp_form,
            "recovery_form": recovery_form,
            "method": method,
            "has_totp": any(d.kind == "totp" for d in overview.devices),
            "has_passkey": any(d.kind == "passkey" for d in overview.devices),
            "recovery_codes_left": overview.recovery_codes_left,
            "minutes": max(1, mfa.reauth_window_seconds() // 60),
            "next": next_url,
        },
    )


# --- Account security ---------------------------------------------------------------------------------------


@login_required
@never_cache
def security(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    overview = selectors.security_overview(actor=user)
    reauth_fresh = mfa.reauth_is_fresh(request)
    passkey_done = (
        reverse("accounts:security")
        if overview.recovery_codes_left
        else _with_next("accounts:recovery_codes", reverse("accounts:security"))
    )
    return render(
        request,
        "accounts/security.html",
        {
            "overview": overview,
            "mfa_required": user.mfa_required,
            "reauth_fresh": reauth_fresh,
            "reauth_minutes_left": (mfa.reauth_seconds_left(request) + 59) // 60,
            "can_remove_last": not user.mfa_required,
            "passkey_done_url": passkey_done,
            "reauth_for_passkey_url": _with_next(
                "accounts:reauth", reverse("accounts:security") + "#passkeys"
            ),
            "api_tokens_allowed": user.mfa_required,
        },
    )


@login_required
@reauth_required
@never_cache
def totp_add(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    device = services.totp_device_add(actor=user)
    form = forms.TotpConfirmForm(request.POST or None, initial={"name": services.TOTP_DEFAULT_NAME})
    if request.method == "POST" and form.is_valid():
        try:
            services.totp_device_confirm(
                actor=user,
                device_id=device.pk,
                code=form.cleaned_data["code"],
                name=form.cleaned_data["name"],
            )
        except services.CodeRejected as exc:
            form.add_error("code", str(exc))
        else:
            if not user.is_verified():  # type: ignore[attr-defined]
                # A guardian turning MFA on: this session has just proved the new factor.
                device.refresh_from_db()
                otp_login(request, device)
            messages.success(request, _("認証アプリを追加しました。"))
            if not selectors.recovery_codes_left(actor=user):
                return _show_recovery_codes(
                    request, services.recovery_codes_issue(actor=user), reverse("accounts:security")
                )
            return redirect("accounts:security")
    return render(
        request,
        "accounts/totp_add.html",
        {
            **_totp_setup_context(device),
            "form": form,
            "breadcrumbs": _crumbs(_("認証アプリを追加")),
        },
    )


@login_required
@reauth_required
def device_remove(request: HttpRequest, kind: str, device_id: int) -> HttpResponse:
    user = _user(request)
    try:
        row = selectors.device_get_for(actor=user, kind=kind, device_id=device_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    devices = selectors.devices_for(actor=user)
    is_last = len(devices) == 1
    if request.method == "POST":
        try:
            removal = services.device_remove(actor=user, kind=kind, device_id=device_id)
        except NotFoundOrNoAccess:
            raise Http404 from None
        except ValidationFailed as exc:
            messages.error(request, str(exc))
            return redirect("accounts:security")
        if request.session.get(DEVICE_ID_SESSION_KEY) == removal.persistent_id:
            # The session was verified with the device just removed; the person re-authenticated moments ago,
            # so carry the verification over to a remaining device rather than signing them out mid-task.
            if removal.remaining:
                otp_login(request, removal.remaining[0])
            else:
                request.session.pop(DEVICE_ID_SESSION_KEY, None)
        if removal.mfa_disabled:
            request.session.pop(mfa.SESSION_MFA_PENDING, None)
            messages.success(
                request, _("「%(name)s」を削除しました。二要素認証はオフになりました。") % {"name": row.name}
            )
        else:
            messages.success(request, _("「%(name)s」を削除しました。") % {"name": row.name})
        return redirect("accounts:security")
    return render(
        request,
        "accounts/device_remove.html",
        {
            "row": row,
            "is_last": is_last,
            "blocked": is_last and user.mfa_required,
            "breadcrumbs": _crumbs(_("認証アプリ・パスキーの削除")),
        },
    )


# --- Passwords ----------------------------------------------------------------------------------------------


@sensitive_post_parameters()
@login_required
@never_cache
def password_change(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = forms.PasswordChangeForm(user=user, data=request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.password_change(
                actor=user, new_password=form.cleaned_data["new_password1"], via="change"
            )
        except ValidationFailed as exc:
            for field, errors in exc.errors.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        else:
            # Keep this session; the person's other sessions end on their next request.
            update_session_auth_hash(request, user)
            messages.success(request, _("パスワードを変更しました。ほかの端末でのログインは終了しました。"))
            return redirect("accounts:security")
    return render(
        request,
        "accounts/password_change.html",
        {
            "form": form,
            "breadcrumbs": _crumbs(_("パスワードの変更")),
        },
    )


@never_cache
def password_reset(request: HttpRequest) -> HttpResponse:
    form = forms.PasswordResetRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():

        def link_for(uidb64: str, token: str) -> str:
            path = reverse("accounts:password_reset_confirm", kwargs={"uidb64": uidb64, "token": token})
            return request.build_absolute_uri(path)

        services.password_reset_request(email=form.cleaned_data["email"], link_for=link_for)
        # The same page whether or not the address belongs to anyone: no account oracle.
        return redirect("accounts:password_reset_done")
    return render(request, "accounts/password_reset_form.html", {"form": form})


def password_reset_done(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/password_reset_done.html")


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's link check (token moved out of the URL into the session); the new password is saved by
    services.password_change so the change is audited."""

    template_name = "accounts/password_reset_confirm.html"
    form_class = forms.SetPasswordForm
    success_url = reverse_lazy("accounts:password_reset_complete")

    def form_valid(self, form: Any) -> HttpResponse:
        try:
            assert isinstance(self.user, User)
            services.password_change(
                actor=self.user, new_password=form.cleaned_data["new_password1"], via="reset"
            )
        except ValidationFailed as exc:
            for errors in exc.errors.values():
                for error in errors:
                    form.add_error("new_password1", error)
            return self.form_invalid(form)
        del self.request.session[auth_views.INTERNAL_RESET_SESSION_TOKEN]
        return HttpResponseRedirect(self.get_success_url())


def password_reset_complete(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/password_reset_complete.html")


# --- API tokens ---------------------------------------------------------------------------------------------


@login_required
@never_cache
def api_tokens(request: HttpRequest) -> HttpResponse:
    """Bearer tokens for scripts (staff only: a token skips the second factor, so it is issued after
    re-auth)."""
    user = _user(request)
    if not user.mfa_required:
        raise Http404
    reauth_fresh = mfa.reauth_is_fresh(request)
    form = forms.ApiTokenForm(request.POST or None)
    if request.method == "POST":
        if not reauth_fresh:
            return redirect(_with_next("accounts:reauth", reverse("accounts:api_tokens")))
        if form.is_valid():
            try:
                issued = services.api_token_issue(
                    actor=user, name=form.cleaned_data["name"], expires_at=form.expires_at()
                )
            except ValidationFailed as exc:
                for field, errors in exc.errors.items():
                    for error in errors:
                        form.add_error(field if field in form.fields else None, error)
            else:
                return render(
                    request,
                    "accounts/api_token_created.html",
                    {
                        "issued": issued,
                        "breadcrumbs": _crumbs(_("APIトークン")),
                    },
                )
    return render(
        request,
        "accounts/api_tokens.html",
        {
            "form": form,
            "tokens": selectors.api_tokens_for(actor=user),
            "reauth_fresh": reauth_fresh,
            "reauth_url": _with_next("accounts:reauth", reverse("accounts:api_tokens")),
            "now": timezone.now(),
            "breadcrumbs": _crumbs(_("APIトークン")),
        },
    )


@login_required
@require_POST
def api_token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    try:
        token = services.api_token_revoke(actor=_user(request), token_id=token_id)
    except NotFoundOrNoAccess:
        raise Http404 from None
    messages.success(request, _("APIトークン「%(name)s」を無効にしました。") % {"name": token.name})
    return redirect("accounts:api_tokens")
