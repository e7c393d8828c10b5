"""What the demo loader created, so demo conveniences never reach a real account.

`komu demo totp` prints a live second-factor code: it must refuse for anyone the demo did not create. A
username prefix alone would not do (an operator may name a real account "demo-…"), so the loader records each
account it made here, with the order in which `komu demo logins` lists it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class DemoAccount(models.Model):
    """デモ利用者: a sign-in created by `komu demo`, never a real person."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="demo_account", verbose_name="利用者"
    )
    is_key_persona = models.BooleanField("主な利用者", default=False)
    position = models.PositiveIntegerField("表示順")

    class Meta:
        ordering = ("position",)
        verbose_name = "デモ利用者"
        verbose_name_plural = "デモ利用者"

    def __str__(self) -> str:
        return f"デモ利用者 {self.position}"
