"""決裁: a generic approval chain over any document (a monthly 出席簿 now, survey answers and notices next).

A request points at its subject by (content type, object id), keeps a snapshot of the chain's steps and the
canonical hash of the subject's content at submission, and collects actions. Every approval is an electronic seal:
a Tink signature (key outside the database) over the hash, the approver's identity, role and time. Verifying a seal
re-computes the subject's hash and checks the signature (`komu approvals verify`).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from komu.core.models import PersonalDataModel, TimestampedModel
from komu.directory.models import Role, School
from komu.security.fields import EncryptedTextField


def default_steps() -> list[dict[str, str]]:
    return [{"role": Role.VICE_PRINCIPAL}, {"role": Role.PRINCIPAL}]


class ApprovalChain(TimestampedModel):
    """The steps a kind of document goes through at one school, in order (e.g. 副校長 → 校長)."""

    school = models.ForeignKey(School, on_delete=models.CASCADE, related_name="approval_chains")
    document_type = models.CharField("文書の種類", max_length=60)
    steps = models.JSONField("決裁の順序", default=default_steps)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["school", "document_type"], name="uniq_chain_per_type")]
        verbose_name = "決裁ルート"
        verbose_name_plural = "決裁ルート"

    def __str__(self) -> str:
        return f"{self.school} {self.document_type}"


class ApprovalRequest(TimestampedModel):
    class Status(models.TextChoices):
        PENDING = "pending", _("決裁中")
        APPROVED = "approved", _("承認済み")
        RETURNED = "returned", _("差し戻し")
        WITHDRAWN = "withdrawn", _("取り下げ")
        SUPERSEDED = "superseded", _("訂正により再決裁")

    school = models.ForeignKey(School, on_delete=models.CASCADE, related_name="approval_requests")
    document_type = models.CharField("文書の種類", max_length=60)
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT)
    object_id = models.CharField(max_length=64)
    subject = GenericForeignKey("content_type", "object_id")
    title = models.CharField("件名", max_length=200)
    content_hash = models.CharField("内容のハッシュ", max_length=64)
    steps = models.JSONField("決裁の順序（申請時点）")
    current_step = models.PositiveSmallIntegerField(default=0)
    status = models.CharField("状態", max_length=12, choices=Status.choices, default=Status.PENDING)
    revision = models.PositiveSmallIntegerField("版", default=1)
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    submitted_at = models.DateTimeField("申請日時")
    completed_at = models.DateTimeField("完了日時", null=True, blank=True)
    # Kept when a later amendment supersedes the request: "was this revision ever fully approved?"
    approved_at = models.DateTimeField("最終承認日時", null=True, blank=True)
    last_reminded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-submitted_at"]
        indexes = [
            models.Index(fields=["content_type", "object_id"], name="approval_subject"),
            models.Index(fields=["school", "status"], name="approval_school_status"),
        ]
        verbose_name = "決裁"
        verbose_name_plural = "決裁"

    def __str__(self) -> str:
        return self.title


class ApprovalAction(models.Model):
    """One step taken: submitted, approved (sealed), returned, delegated, withdrawn."""

    class Kind(models.TextChoices):
        SUBMIT = "submit", _("申請")
        APPROVE = "approve", _("承認")
        RETURN = "return", _("差し戻し")
        WITHDRAW = "withdraw", _("取り下げ")
        REMIND = "remind", pgettext_lazy("approval action", "督促")
        SUPERSEDE = "supersede", _("訂正により再決裁")

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="actions")
    step = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # Empty for what the system does by itself (a scheduled reminder).
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_role = models.CharField(max_length=24)
    on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        verbose_name="代決の元の決裁者",
    )
    comment = models.CharField("コメント", max_length=500, blank=True)
    at = models.DateTimeField()
    content_hash = models.CharField(max_length=64, blank=True)
    seal_payload = models.JSONField("電子印の署名対象", default=dict, blank=True)
    signature = models.TextField("電子署名", blank=True)

    class Meta:
        ordering = ["request", "at"]
        verbose_name = "決裁の操作"
        verbose_name_plural = "決裁の操作"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.step})"


class ApprovalSnapshot(PersonalDataModel):
    """The exact content a request sealed (canonical JSON), kept so that the seals of a superseded revision still
    verify against what their approvers saw. Encrypted: a register's content is pupils' attendance."""

    request = models.OneToOneField(ApprovalRequest, on_delete=models.CASCADE, related_name="snapshot")
    content = EncryptedTextField("申請時の内容（正規化JSON）")
    content_hash = models.CharField("内容のハッシュ", max_length=64)

    class Meta:
        verbose_name = "申請時の内容"
        verbose_name_plural = "申請時の内容"

    def __str__(self) -> str:
        return f"{self.request_id} {self.content_hash[:12]}"


class Delegation(TimestampedModel):
    """代決: while an approver is absent, a named colleague approves in their place (recorded as on behalf of)."""

    school = models.ForeignKey(School, on_delete=models.CASCADE, related_name="delegations")
    delegator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    delegate = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    start_date = models.DateField("開始日")
    end_date = models.DateField("終了日")
    document_type = models.CharField("文書の種類（空欄はすべて）", max_length=60, blank=True)

    class Meta:
        ordering = ["school", "start_date"]
        verbose_name = "代決の設定"
        verbose_name_plural = "代決の設定"

    def __str__(self) -> str:
        return f"{self.start_date}〜{self.end_date}"
