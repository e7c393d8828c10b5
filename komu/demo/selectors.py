"""Reading the demo accounts for `komu demo logins` and `komu demo totp`.

Only accounts recorded in DemoAccount are ever shown: a live second-factor code or secret of a real account
must never be printable by a convenience command. Nothing here decrypts personal data: the listing names
usernames, roles and organisations, never a person's name.
"""

from __future__ import annotations

import time
from base64 import b32encode
from dataclasses import dataclass

from django_otp.oath import hotp
from django_otp.plugins.otp_totp.models import TOTPDevice

from komu.access.roles import ROLE_PRECEDENCE
from komu.core.errors import KomuError
from komu.demo.models import DemoAccount
from komu.directory.models import Role, StaffAssignment
from komu.students.models import GuardianLink


class NotADemoAccount(KomuError):
    """The username is not an account the demo created (or it has no authenticator)."""


class TotpCodeUsed(KomuError):
    """Every code the device would accept right now has been used: wait for the next time step."""


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: str
    organisation: str
    is_key_persona: bool
    totp_secret: str  # base32, as authenticator apps take it; "" when the account has no TOTP device
    otpauth_uri: str


@dataclass(frozen=True)
class TotpCode:
    code: str
    seconds_left: int
    next_step: bool  # the current code was already used to sign in, so this is the next one (still accepted)


def demo_logins() -> list[DemoLogin]:
    """Every demo account, key personas first, in the order the loader recorded."""
    accounts = list(DemoAccount.objects.select_related("user").order_by("position"))
    user_ids = [a.user_id for a in accounts]
    assignments: dict[object, list[StaffAssignment]] = {}
    for assignment in StaffAssignment.objects.filter(user_id__in=user_ids).select_related(
        "school", "board", "prefecture", "homeroom_class__school_year__school"
    ):
        assignments.setdefault(assignment.user_id, []).append(assignment)
    devices = {
        d.user_id: d
        for d in TOTPDevice.objects.filter(user_id__in=user_ids, confirmed=True).select_related("user")
    }
    # A guardian's organisation is where their children are; the children themselves are not named.
    children_schools: dict[object, set[tuple[str, str]]] = {}
    children_count: dict[object, int] = {}
    for link in GuardianLink.objects.filter(guardian__user_id__in=user_ids).select_related(
        "guardian", "student__school"
    ):
        user_id = link.guardian.user_id
        children_schools.setdefault(user_id, set()).add((link.student.school.code, link.student.school.name))
        children_count[user_id] = children_count.get(user_id, 0) + 1
    order = {role: i for i, role in enumerate(ROLE_PRECEDENCE)}
    logins = []
    for account in accounts:
        user = account.user
        mine = sorted(assignments.get(user.pk, []), key=lambda a: order.get(Role(a.role), 99))
        if mine:
            role, organisation = mine[0].get_role_display(), mine[0].organisation_label
        else:
            schools = "・".join(name for _code, name in sorted(children_schools.get(user.pk, set())))
            role = str(Role.GUARDIAN.label)
            organisation = f"{schools}（子 {children_count.get(user.pk, 0)} 人）"
        device = devices.get(user.pk)
        logins.append(
            DemoLogin(
                username=user.username,
                role=role,
                organisation=organisation,
                is_key_persona=account.is_key_persona,
                totp_secret=b32encode(device.bin_key).decode("ascii") if device else "",
                otpauth_uri=device.config_url if device else "",
            )
        )
    return logins


def demo_totp_code(*, username: str, now: float | None = None) -> TotpCode:
    """The 6-digit code a demo account's authenticator would show now. Refuses for any other account."""
    account = DemoAccount.objects.select_related("user").filter(user__username=username).first()
    if account is None:
        raise NotADemoAccount(
            f"「{username}」はデモで作成された利用者ではありません。"
            "確認コードを表示できるのは `komu demo logins` に載っているデモ用の利用者だけです。"
        )
    device = TOTPDevice.objects.filter(user=account.user, confirmed=True).first()
    if device is None:
        raise NotADemoAccount(
            f"「{username}」には TOTP の認証アプリが登録されていません"
            "（保護者のデモ利用者はパスワードだけでログインできます）。"
        )
    moment = time.time() if now is None else now
    current = int(moment - device.t0) // device.step + device.drift
    # A code is accepted once: after a sign-in in this time step, the next step's code (inside the device's
    # tolerance) is the one that still works.
    step = max(current, device.last_t + 1)
    seconds_left = device.step - int(moment - device.t0) % device.step
    if step - current > device.tolerance:
        raise TotpCodeUsed(
            f"今使える確認コードはすべて使用済みです。{seconds_left} 秒後にもう一度実行してください。"
        )
    code = hotp(device.bin_key, step, digits=device.digits)
    return TotpCode(code=f"{code:0{device.digits}d}", seconds_left=seconds_left, next_step=step != current)
