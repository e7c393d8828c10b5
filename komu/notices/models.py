"""通知・事務連絡・依頼 between boards and schools, お便り to guardians, paper sends still made outside Komu, and
the in-app notifications (お知らせ) with their e-mail preferences."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from komu.core.models import PersonalDataModel
from komu.security.fields import EncryptedTextField


class NotificationPreference(models.Model):
    """How a person wants to hear of new notifications by e-mail. No row means immediate e-mail."""

    class EmailMode(models.TextChoices):
        IMMEDIATE = "immediate", "すぐにメールで受け取る"
        DIGEST = "digest", "1日1回まとめて受け取る"
        OFF = "off", "メールでは受け取らない"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True,
                                related_name="notification_preference")
    email_mode = models.CharField("メール通知", max_length=10, choices=EmailMode.choices,
                                  default=EmailMode.IMMEDIATE)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "通知の設定"
        verbose_name_plural = "通知の設定"

    def __str__(self) -> str:
        return f"{self.user_id}: {self.email_mode}"


class Notification(PersonalDataModel):
    """One in-app notification for one person. The title is what an e-mail may carry; the body can be personal
    and is kept encrypted."""

    class EmailState(models.TextChoices):
        NONE = "none", "送らない"
        PENDING = "pending", "まとめて送る予定"
        SENT = "sent", "送信済み"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField("種類", max_length=40)
    title = models.CharField("件名", max_length=200)
    url = models.CharField("リンク", max_length=500)
    body = EncryptedTextField("本文", blank=True, default="")
    personal = models.BooleanField("個人に関わる内容", default=False)
    read_at = models.DateTimeField("既読", null=True, blank=True)
    email_state = models.CharField("メール", max_length=10, choices=EmailState.choices, default=EmailState.NONE)
    emailed_at = models.DateTimeField("メール送信", null=True, blank=True)

    class Meta:
        verbose_name = "お知らせ"
        verbose_name_plural = "お知らせ"
        ordering = ("-created_at",)
        indexes = [
            models.Index(fields=["user", "read_at"], name="notices_notif_user_read"),
            models.Index(fields=["email_state"], name="notices_notif_email_state"),
        ]

    def __str__(self) -> str:
        return self.title

