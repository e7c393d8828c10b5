"""Writes to accounts: users, second factors, recovery codes, passwords, API tokens, and the sign-in trail.

Every function is atomic and records its audit event in the same transaction. In self-service actions the
actor is the signed-in user acting on their own account; `user_create` takes the access layer's Actor (or None
for the system: management commands and the demo loader).

Second-factor checks run against django-otp devices, whose own throttling (exponential back-off per device)
stays on. A failed check must still commit its throttle counter and its audit event, so those functions finish
their transaction first and raise afterwards.
"""

from __future__ import annotations

import datetime
import math
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from axes.utils import reset as axes_reset
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.contrib.auth.validators import ASCIIUsernameValidator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import EmailValidator
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _
from django_otp.models import Device, VerifyNotAllowed
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from komu.access import roles, scope
from komu.access.scope import Actor
from komu.accounts import mfa
from komu.accounts.models import ApiToken, User
from komu.audit.services import audit_record
from komu.core.errors import KomuError, NotFoundOrNoAccess, ValidationFailed

TOTP_DEFAULT_NAME = "認証アプリ"
RECOVERY_DEVICE_NAME = "復旧コード"
API_TOKEN_PREFIX = "komu_"
# last_used_at is informative: refresh it at most once a minute so a busy script does not write on every
# request.
_API_TOKEN_TOUCH_SECONDS = 60


class CodeRejected(KomuError):
    """A second-factor code was wrong, malformed or is being throttled. The message says what to do."""


# --- Users --------------------------------------------------------------------------------------------------


def normalize_username(raw: str) -> str:
    """Login IDs are ASCII; NFKC turns the full-width letters a Japanese IME may type into ASCII."""
    return unicodedata.normalize("NFKC", raw or "").strip()


@transaction.atomic
def user_create(
    *,
    actor: Actor | None,
    username: str,
    kind: str,
    display_name: str,
    email: str,
    password: str | None = None,
) -> User:
    """Create a person who can sign in. Without a password the account cannot sign in until its owner sets one
    through the password-reset e-mail."""
    if actor is not None:
        scope.require(actor, roles.STAFF_MANAGE)
    username = normalize_username(username)
    email = (email or "").strip()
    errors: dict[str, list[str]] = {}
    try:
        ASCIIUsernameValidator()(username)
    except ValidationError:
        errors.setdefault("username", []).append(_("ログインIDは半角英数字と @ . + - _ で入力してください。"))
    if not username:
        errors.setdefault("username", []).append(_("ログインIDを入力してください。"))
    elif User.objects.filter(username=username).exists():
        errors.setdefault("username", []).append(
            _("このログインIDはすでに使われています。別のIDにしてください。")
        )
    if kind not in User.Kind.values:
        errors.setdefault("kind", []).append(_("種別は「教職員・行政」か「保護者」を選んでください。"))
    if email:
        try:
            EmailValidator()(email)
        except ValidationError:
            errors.setdefault("email", []).append(
                _("メールアドレスの形式が正しくありません。例：taro@example.jp")
            )
    user = User(username=username, kind=kind, display_name=display_name.strip(), email=email)
    if password:
        try:
            validate_password(password, user)
        except ValidationError as exc:
            errors.setdefault("password", []).extend(exc.messages)
        user.set_password(password)
    else:
        user.set_unusable_password()
    if errors:
        raise ValidationFailed(_("入力内容を確認してください。"), errors=errors)
    _save(user)
    audit_record(
        actor=_user_of(actor),
        action="accounts.user.created",
        obj=user,
        fields=[name for name in ("display_name", "email") if getattr(user, name)],
        detail={"kind": kind, "password_set": bool(password)},
    )
    return user


def _user_of(actor: Actor | User | None) -> User | None:
    if actor is None:
        return None
    if isinstance(actor, Actor):
        return actor.user  # type: ignore[no-any-return]
    return actor


def _save(obj: Any) -> None:
    try:
        obj.full_clean()
    except ValidationError as exc:
        raise ValidationFailed(_("入力内容を確認してください。"), errors=exc.message_dict) from exc
    obj.save()


def _lock_user(user: User) -> None:
    """Serialise changes to one person's factors (e.g. two tabs each removing "the other" device)."""
    User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).first()


# --- Sign-in trail ------------------------------------------------------------------------------------------


@transaction.atomic
def signin_succeeded(*, user: User, next_step: str) -> None:
    """The password was right. `next_step` is what the session still owes: "mfa_verify", "mfa_enrol" or ""
    (signed in)."""
    audit_record(actor=user, action="accounts.signin.succeeded", obj=user, detail={"next_step": next_step})


@transaction.atomic
def signin_failed(*, username: str, locked_out: bool) -> None:
    """A sign-in was refused. No actor: nobody proved who they are. The attempted login ID goes in the detail
    (a login ID, not personal data); whether it exists is deliberately not recorded, so the trail is no
    oracle."""
    audit_record(
        actor=None,
        action="accounts.signin.failed",
        detail={"username": username[:150], "locked_out": locked_out},
    )


@transaction.atomic
def signout(*, user: User) -> None:
    audit_record(actor=user, action="accounts.signout", obj=user)


# --- Second-factor checks -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SecondFactorResult:
    device: Device
    method: str  # "totp" or "recovery"
    recovery_codes_left: int | None = None


def _throttled_message(info: dict[str, Any]) -> str:
    until = info.get("locked_until")
    seconds = 1
    if isinstance(until, datetime.datetime):
        seconds = max(1, math.ceil((until - timezone.now()).total_seconds()))
    return _(
        "確認コードの誤りが %(count)d 回続いたため、一時的に確認を止めています。"
        "%(seconds)d 秒たってから、もう一度入力してください。"
    ) % {"count": info.get("failure_count", 0), "seconds": seconds}


def _not_allowed_message(info: dict[str, Any] | None) -> str:
    if info and info.get("reason") == VerifyNotAllowed.N_FAILED_ATTEMPTS:
        return _throttled_message(info)
    return _("いまは確認コードを確認できません。しばらくたってから、もう一度お試しください。")


def _locked_until(info: dict[str, Any]) -> datetime.datetime:
    until = info.get("locked_until")
    return until if isinstance(until, datetime.datetime) else timezone.now()


def _check_totp(devices: list[TOTPDevice], code: str) -> tuple[TOTPDevice | None, str]:
    """Try the code on each of the person's authenticator apps; return the one that accepted it or the
    reason."""
    throttled: dict[str, Any] | None = None
    for device in devices:
        allowed, info = device.verify_is_allowed()
        if not allowed:
            throttled = info if throttled is None else max(throttled, info, key=_locked_until)
            continue
        if device.verify_token(code):
            return device, ""
    if throttled is not None:
        # The right code may belong to the throttled app: say so rather than "wrong code".
        return None, _not_allowed_message(throttled)
    return None, _("確認コードが正しくありません。認証アプリに表示されている最新の6桁を入力してください。")


def _check_recovery(user: User, code: str) -> tuple[StaticDevice | None, str, int | None]:
    device = StaticDevice.objects.select_for_update().filter(user=user, confirmed=True).first()
    if device is None:
        return None, _("復旧コードが発行されていません。認証アプリかパスキーで確認してください。"), None
    allowed, info = device.verify_is_allowed()
    if not allowed:
        return None, _not_allowed_message(info), None
    if device.verify_token(mfa.recovery_code_digest(code)):
        return device, "", device.token_set.count()
    return (
        None,
        _("復旧コードが正しくないか、すでに使われています。印刷または保存したコードを確認してください。"),
        None,
    )


def second_factor_verify(*, actor: User, code: str, purpose: str) -> SecondFactorResult:
    """Check a 6-digit TOTP code or a recovery code for sign-in (purpose "signin") or re-authentication
    ("reauth"). A recovery code is used up. Raises CodeRejected with a message for the person."""
    normalized = mfa.normalize_code(code)
    success = "accounts.mfa.verified" if purpose == "signin" else "accounts.reauth.succeeded"
    failure = "accounts.mfa.failed" if purpose == "signin" else "accounts.reauth.failed"
    error = ""
    result: SecondFactorResult | None = None
    with transaction.atomic():
        if mfa.TOTP_CODE.match(normalized):
            devices = list(
                TOTPDevice.objects.select_for_update().filter(user=actor, confirmed=True).order_by("pk")
            )
            if not devices:
                error = _("認証アプリが登録されていません。復旧コードかパスキーで確認してください。")
            else:
                totp, error = _check_totp(devices, normalized)
                if totp is not None:
                    result = SecondFactorResult(device=totp, method="totp")
        elif mfa.RECOVERY_CODE.match(normalized):
            static, error, left = _check_recovery(actor, normalized)
            if static is not None:
                result = SecondFactorResult(device=static, method="recovery", recovery_codes_left=left)
        else:
            error = _("確認コードは、認証アプリの6桁の数字か、8文字の復旧コードを入力してください。")
        if result is not None:
            detail: dict[str, Any] = {"method": result.method, "step": "second_factor"}
            if result.recovery_codes_left is not None:
                detail["recovery_codes_left"] = result.recovery_codes_left
            audit_record(actor=actor, action=success, obj=actor, detail=detail)
        else:
            method = "totp" if mfa.TOTP_CODE.match(normalized) else "recovery"
            audit_record(
                actor=actor, action=failure, obj=actor, detail={"method": method, "step": "second_factor"}
            )
    if result is None:
        raise CodeRejected(error)
    return result


@transaction.atomic
def reauth_password_checked(*, actor: User, ok: bool) -> None:
    """The password step of a re-authentication (the password itself was checked through authenticate(), so
    django-axes counts failures here exactly as at sign-in)."""
    action = "accounts.reauth.password_accepted" if ok else "accounts.reauth.failed"
    audit_record(actor=actor, action=action, obj=actor, detail={"step": "password"})


@transaction.atomic
def reauth_completed_without_factor(*, actor: User) -> None:
    """Re-authentication of someone with no second factor (a guardian who has not turned MFA on)."""
    audit_record(actor=actor, action="accounts.reauth.succeeded", obj=actor, detail={"method": "password"})


@transaction.atomic
def passkey_verified(*, actor: User, device: WebAuthnCredential, purpose: str) -> None:
    action = "accounts.mfa.verified" if purpose == "signin" else "accounts.reauth.succeeded"
    audit_record(
        actor=actor,
        action=action,
        obj=actor,
        detail={"method": "passkey", "device_id": device.pk, "step": "second_factor"},
    )


@transaction.atomic
def passkey_rejected(*, actor: User, purpose: str, reason: str) -> None:
    action = "accounts.mfa.failed" if purpose == "signin" else "accounts.reauth.failed"
    audit_record(
        actor=actor,
        action=action,
        obj=actor,
        detail={"method": "passkey", "reason": reason[:64], "step": "second_factor"},
    )


# --- Devices ------------------------------------------------------------------------------------------------


@transaction.atomic
def totp_device_add(*, actor: User) -> TOTPDevice:
    """Start adding an authenticator app: an unconfirmed device with a fresh secret. One waiting device per
    person is reused, so reloading the page shows the same QR code instead of piling up secrets."""
    pending = TOTPDevice.objects.filter(user=actor, confirmed=False).order_by("-pk").first()
    if pending is not None:
        return pending
    device = TOTPDevice(user=actor, name=TOTP_DEFAULT_NAME, confirmed=False)
    _save(device)
    audit_record(actor=actor, action="accounts.totp_device.added", obj=device, detail={"confirmed": False})
    return device


def totp_device_confirm(*, actor: User, device_id: int, code: str, name: str = "") -> TOTPDevice:
    """Confirm a waiting authenticator app with a code it shows: from now on it is a second factor."""
    error = ""
    with transaction.atomic():
        _lock_user(actor)
        device = (
            TOTPDevice.objects.select_for_update().filter(user=actor, pk=device_id, confirmed=False).first()
        )
        if device is None:
            raise NotFoundOrNoAccess(_("見つかりません。"))
        normalized = mfa.normalize_code(code)
        if not mfa.TOTP_CODE.match(normalized):
            error = _("認証アプリに表示されている6桁の数字を入力してください。")
        else:
            accepted, error = _check_totp([device], normalized)
            if accepted is not None:
                device.confirmed = True
                device.name = (name or "").strip()[:64] or TOTP_DEFAULT_NAME
                _save(device)
                audit_record(actor=actor, action="accounts.totp_device.confirmed", obj=device)
            else:
                audit_record(actor=actor, action="accounts.totp_device.confirm_failed", obj=device)
    if error:
        raise CodeRejected(error)
    return device


def passkey_add(
    *, actor: User, register: Callable[[], WebAuthnCredential], name: str = ""
) -> WebAuthnCredential:
    """Finish a passkey registration ceremony: `register` verifies the browser's answer and stores the
    credential (django-otp-webauthn's helper); it runs in this transaction so the credential and its audit
    event commit together."""
    with transaction.atomic():
        _lock_user(actor)
        device = register()
        device.name = (name or "").strip()[:64] or _("パスキー（%(date)s 登録）") % {
            "date": timezone.localdate().strftime("%Y/%m/%d")
        }
        device.save(update_fields=["name"])
        audit_record(actor=actor, action="accounts.passkey.added", obj=device)
    return device


def _primary_devices(user: User) -> list[Device]:
    return [
        *TOTPDevice.objects.filter(user=user, confirmed=True),
        *WebAuthnCredential.objects.filter(user=user, confirmed=True),
    ]


DEVICE_MODELS: dict[str, type[Device]] = {"totp": TOTPDevice, "passkey": WebAuthnCredential}


@dataclass(frozen=True)
class DeviceRemoval:
    kind: str
    persistent_id: str  # taken before deletion: the session may hold it as the device it was verified with
    mfa_disabled: bool
    remaining: list[Device]


@transaction.atomic
def device_remove(*, actor: User, kind: str, device_id: int) -> DeviceRemoval:
    """Remove an authenticator app or passkey. Staff keep at least one (MFA stays required for them); a
    guardian removing their last one turns MFA off, and their recovery codes go with it."""
    model = DEVICE_MODELS.get(kind)
    if model is None:
        raise NotFoundOrNoAccess(_("見つかりません。"))
    _lock_user(actor)
    device = model.objects.filter(user=actor, pk=device_id, confirmed=True).first()
    if device is None:
        raise NotFoundOrNoAccess(_("見つかりません。"))
    persistent_id = device.persistent_id
    remaining = [d for d in _primary_devices(actor) if d.persistent_id != persistent_id]
    if not remaining and actor.mfa_required:
        raise ValidationFailed(
            _(
                "教職員のアカウントでは、最後の認証アプリまたはパスキーは削除できません。"
                "先に別の認証アプリかパスキーを追加してから削除してください。"
            )
        )
    device.delete()
    mfa_disabled = not remaining
    if mfa_disabled:
        StaticDevice.objects.filter(user=actor).delete()
        TOTPDevice.objects.filter(user=actor, confirmed=False).delete()
    audit_record(
        actor=actor,
        action="accounts.device.removed",
        object_type=model._meta.label_lower,
        object_id=str(device_id),
        detail={"kind": kind, "mfa_disabled": mfa_disabled},
    )
    return DeviceRemoval(
        kind=kind, persistent_id=persistent_id, mfa_disabled=mfa_disabled, remaining=remaining
    )


@transaction.atomic
def recovery_codes_issue(*, actor: User) -> list[str]:
    """Issue a new set of recovery codes, replacing any earlier set. Returns the codes (formatted for
    display): they are shown once and only their keyed digests are kept."""
    _lock_user(actor)
    if not _primary_devices(actor):
        raise ValidationFailed(_("復旧コードは、認証アプリかパスキーを登録してから発行できます。"))
    device = StaticDevice.objects.filter(user=actor).order_by("pk").first()
    replaced = 0
    if device is None:
        device = StaticDevice(user=actor, name=RECOVERY_DEVICE_NAME, confirmed=True)
        _save(device)
    else:
        replaced = device.token_set.count()
        device.token_set.all().delete()
        device.confirmed = True
        device.throttle_reset(commit=False)
        device.save()
    codes: set[str] = set()
    while len(codes) < mfa.RECOVERY_CODE_COUNT:
        codes.add(StaticToken.random_token())
    StaticToken.objects.bulk_create(
        [StaticToken(device=device, token=mfa.recovery_code_digest(code)) for code in sorted(codes)]
    )
    audit_record(
        actor=actor,
        action="accounts.recovery_codes.issued",
        obj=device,
        detail={"count": len(codes), "replaced": replaced},
    )
    return [mfa.format_recovery_code(code) for code in sorted(codes)]


# --- Passwords ----------------------------------------------------------------------------------------------


@transaction.atomic
def password_change(*, actor: User, new_password: str, via: str) -> None:
    """Set a new password: by the signed-in person ("change") or through a reset link ("reset"). Other
    sessions of the person end on their next request (Django binds sessions to the password hash)."""
    try:
        validate_password(new_password, actor)
    except ValidationError as exc:
        raise ValidationFailed(
            _("パスワードを確認してください。"), errors={"new_password1": exc.messages}
        ) from exc
    actor.set_password(new_password)
    actor.save(update_fields=["password"])
    if via == "reset":
        # The link proved control of the mailbox: lift a lockout on this login ID so the new password works
        # now. Lockout is still per login ID + address for everyone else (axes keeps counting new failures).
        axes_reset(username=actor.get_username())
    audit_record(actor=actor, action="accounts.password.changed", obj=actor, detail={"via": via})


def users_for_reset_email(email: str) -> list[User]:
    """Active people whose (encrypted) e-mail is this address, found through the blind index."""
    index = User._meta.get_field("email_index").lookup_value(email)
    if not index:
        return []
    wanted = email.strip().lower()
    return [
        user
        for user in User.objects.filter(email_index=index, is_active=True)
        # The index is a keyed hash: confirm on the decrypted value so a collision can never mail a stranger.
        if user.email.strip().lower() == wanted
    ]


def password_reset_request(*, email: str, link_for: Callable[[str, str], str]) -> int:
    """Send a reset link to every active account with this address. The caller answers the same whether or not
    one exists (no oracle). `link_for(uidb64, token)` builds the absolute link. Returns how many were sent."""
    users = users_for_reset_email(email)
    outgoing: list[tuple[str, str, str]] = []
    with transaction.atomic():
        for user in users:
            uid = urlsafe_base64_encode(force_bytes(user.pk))
            token = default_token_generator.make_token(user)
            context = {"link": link_for(uid, token), "username": user.get_username()}
            subject = " ".join(render_to_string("accounts/email/password_reset_subject.txt", context).split())
            body = str(render_to_string("accounts/email/password_reset_body.txt", context))
            outgoing.append((subject, body, user.email))
            audit_record(actor=None, action="accounts.password.reset_requested", obj=user, fields=["email"])
    # Mail only once the audit rows are committed: a failed request sends nothing.
    for subject, body, recipient in outgoing:
        send_mail(subject, body, None, [recipient], fail_silently=False)
    return len(outgoing)


# --- API tokens ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    raw: str  # shown once; never stored


@transaction.atomic
def api_token_issue(*, actor: User, name: str, expires_at: datetime.datetime | None) -> IssuedToken:
    name = (name or "").strip()
    errors: dict[str, list[str]] = {}
    if not name:
        errors["name"] = [_("用途を入力してください。例：出欠集計スクリプト")]
    elif len(name) > 100:
        errors["name"] = [_("用途は100文字以内で入力してください。")]
    if expires_at is not None and expires_at <= timezone.now():
        errors["expires_at"] = [_("有効期限には未来の日時を指定してください。")]
    if errors:
        raise ValidationFailed(_("入力内容を確認してください。"), errors=errors)
    secret = secrets.token_urlsafe(32)
    raw = f"{API_TOKEN_PREFIX}{secret}"
    token = ApiToken(
        user=actor, name=name, prefix=secret[:8], token_hash=ApiToken.hash(raw), expires_at=expires_at
    )
    _save(token)
    audit_record(
        actor=actor,
        action="accounts.api_token.issued",
        obj=token,
        detail={"expires_at": expires_at.isoformat() if expires_at else None},
    )
    return IssuedToken(token=token, raw=raw)


@transaction.atomic
def api_token_revoke(*, actor: User, token_id: int) -> ApiToken:
    token = ApiToken.objects.select_for_update().filter(user=actor, pk=token_id).first()
    if token is None:
        raise NotFoundOrNoAccess(_("見つかりません。"))
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(actor=actor, action="accounts.api_token.revoked", obj=token)
    return token


def api_token_authenticate(raw: str) -> User | None:
    """The user a bearer token belongs to, or None when it is unknown, revoked, expired or its user inactive.

    Only the SHA-256 of the token is stored, so the lookup is by hash; the comparison is the database's
    equality on a hash of a 256-bit secret, which leaks nothing useful through timing.
    """
    raw = (raw or "").strip()
    if not raw.startswith(API_TOKEN_PREFIX) or len(raw) > 200:
        return None
    digest = ApiToken.hash(raw)
    token = ApiToken.objects.select_related("user").filter(token_hash=digest).first()
    if token is None or not secrets.compare_digest(token.token_hash, digest):
        return None
    now = timezone.now()
    if token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
        return None
    if not token.user.is_active:
        return None
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() >= _API_TOKEN_TOUCH_SECONDS:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user
