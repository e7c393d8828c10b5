from __future__ import annotations

from django.db import models


class AuditEvent(models.Model):
    """監査イベント — one append-only row per write to personal data and per read of class I/II data.

    Holds identifiers and field names, never the personal values themselves. Each row's MAC covers its content and
    the previous row's MAC (an HMAC chain keyed outside the database), so `komu audit verify` finds an edited,
    deleted or reordered row. Triggers (migration 0002) reject UPDATE and DELETE.
    """

    id = models.BigIntegerField(primary_key=True)
    occurred_at = models.DateTimeField(db_index=True)
    actor_id = models.CharField(max_length=64, blank=True, db_index=True)
    actor_username = models.CharField(max_length=150, blank=True)
    actor_role = models.CharField(max_length=40, blank=True)
    actor_org = models.CharField(max_length=40, blank=True)
    action = models.CharField(max_length=100, db_index=True)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True, db_index=True)
    fields = models.JSONField(default=list, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    school_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    board_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    request_id = models.CharField(max_length=64, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    channel = models.CharField(max_length=10, default="web")
    prev_mac = models.CharField(max_length=128, blank=True)
    mac = models.CharField(max_length=128)

    class Meta:
        ordering = ["id"]
        verbose_name = "監査イベント"
        verbose_name_plural = "監査イベント"

    def __str__(self) -> str:
        return f"#{self.id} {self.action} {self.object_type}:{self.object_id}"
