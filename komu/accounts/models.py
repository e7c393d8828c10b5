"""Users and API tokens. A user's name and e-mail are personal data: encrypted, with a blind index for
e-mail."""

from __future__ import annotations

import hashlib
import uuid
from typing import ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.utils.translation import gettext_lazy as _

from komu.security.fields import BlindIndexField, EncryptedTextField


def normalize_email_for_index(value: str) -> str:
    return value.strip().lower()


class UserManager(BaseUserManager["User"]):
    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(username=username)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in: staff (MFA required) or guardian (MFA optional)."""

    class Kind(models.TextChoices):
        STAFF = "staff", _("教職員・行政")
        GUARDIAN = "guardian", _("保護者")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    username = models.CharField(_("ログインID"), max_length=150, unique=True)
    kind = models.CharField(_("種別"), max_length=10, choices=Kind.choices, default=Kind.STAFF)
    display_name = EncryptedTextField(_("氏名"), blank=True, default="")
    display_name_kana = EncryptedTextField(_("氏名（かな）"), blank=True, default="")
    email = EncryptedTextField(_("メールアドレス"), blank=True, default="")
    email_index = BlindIndexField(source="email", normalizer=normalize_email_for_index, purpose="user.email")
    is_active = models.BooleanField(_("有効"), default=True)
    is_staff = models.BooleanField(_("管理画面"), default=False)
    date_joined = models.DateTimeField(auto_now_add=True)
    preferred_language = models.CharField(max_length=8, blank=True, default="")

    objects = UserManager()

    USERNAME_FIELD = "username"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        verbose_name = _("利用者")
        verbose_name_plural = _("利用者")

    def __str__(self) -> str:
        return self.username

    @property
    def mfa_required(self) -> bool:
        return self.kind == self.Kind.STAFF


class ApiToken(models.Model):
    """A bearer token for scripts. Only its SHA-256 is stored; the token is shown once when issued."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(_("用途"), max_length=100)
    prefix = models.CharField(max_length=8)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(_("有効期限"), null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("APIトークン")
        verbose_name_plural = _("APIトークン")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def hash(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()
