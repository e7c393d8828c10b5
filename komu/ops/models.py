from __future__ import annotations

from django.conf import settings
from django.db import models

from komu.core.models import PersonalDataModel
from komu.security.fields import EncryptedTextField


class IdempotentRequest(PersonalDataModel):
    """A write from the UI that was applied, by the idempotency key its form or request carried (komu.ops.idempotency).

    Stored in the same transaction as the write itself: a retried or double-submitted POST with the same key is
    answered with this response instead of being applied again. The response body may show personal data, so it is
    encrypted; redirects keep only their target. Kept a day (`komu idempotency purge` / the purge task)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=64)
    method = models.CharField(max_length=8)
    route = models.CharField(max_length=120, blank=True)
    status = models.PositiveSmallIntegerField()
    location = models.CharField(max_length=500, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    body = EncryptedTextField(blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="uniq_idempotent_request")]
        indexes = [models.Index(fields=["created_at"], name="idempotent_request_created")]
        verbose_name = "冪等キー付きの書き込み"
        verbose_name_plural = "冪等キー付きの書き込み"

    def __str__(self) -> str:
        return f"{self.key} → {self.status}"
