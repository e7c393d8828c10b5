"""漏えい等の事案 (breach incidents), the persons each one affects, and the retention schedule with its runs.

An incident holds what the 個人情報保護委員会 report asks for (個人情報の保護に関する法律施行規則 §7–8 and the
PPC's report form): what happened, when it became known, which data items of how many persons, whether they were
encrypted, the cause, secondary damage, what was done for the persons, publication and prevention. The free texts
may name people, so they are encrypted like other personal data. The affected persons are pupils (the fields
that were exposed are listed per person).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from komu.core.models import PersonalDataModel, TimestampedModel
from komu.directory.models import Board, School
from komu.security.fields import EncryptedTextField


class Incident(PersonalDataModel):
    class Kind(models.TextChoices):
        LOST_DOCUMENT = "lost_document", _("書類の紛失")
        LOST_DEVICE = "lost_device", _("端末の紛失・盗難")
        UNAUTHORISED_ACCESS = "unauthorised_access", _("不正アクセス")
        MISDELIVERY = "misdelivery", _("誤送付・誤送信")
        INSIDER = "insider", _("職員による不正な閲覧・持ち出し")
        OTHER = "other", _("その他")

    class Source(models.TextChoices):
        DISCLOSURE = "disclosure", _("印刷・出力の記録（通し番号）")
        AUDIT = "audit", _("監査ログ（アカウントと期間）")
        QUERY = "query", _("学校・学級の指定")
        MANUAL = "manual", _("個別の指定")

    class Status(models.TextChoices):
        OPEN = "open", _("対応中")
        PRELIMINARY = "preliminary", _("速報済み")
        FINAL = "final", _("確報済み")
        CLOSED = "closed", _("終結")

    board = models.ForeignKey(Board, on_delete=models.PROTECT, related_name="+", verbose_name="教育委員会")
    school = models.ForeignKey(School, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                               verbose_name="学校")
    title = models.CharField("件名", max_length=200)
    kind = models.CharField("事案の種類", max_length=24, choices=Kind.choices, default=Kind.OTHER)
    source = models.CharField("対象者の特定方法", max_length=12, choices=Source.choices, default=Source.MANUAL)
    # What identified the persons: {"serial": "..."} / {"user_id", "start", "end"} / {"school_id", "class_ids"}.
    source_detail = models.JSONField(default=dict, blank=True)
    found_at = models.DateTimeField("発覚日時（漏えい等を知った日時）")
    occurred_at = models.DateTimeField("発生日時", null=True, blank=True)
    # 不正の目的をもって行われたおそれがある漏えい等 (theft, unauthorised access): 確報 within 60 days, not 30.
    unlawful_purpose = models.BooleanField("不正の目的によるおそれ（盗難・不正アクセス等）", default=False)
    encrypted = models.BooleanField("高度な暗号化等の秘匿化がされていた", default=False)
    data_items = models.JSONField("漏えい等が発生し又はおそれがある個人データの項目", default=list, blank=True)
    person_count = models.PositiveIntegerField("本人の数", default=0)
    status = models.CharField("状況", max_length=12, choices=Status.choices, default=Status.OPEN)
    # The PPC report's items, editable.
    summary = EncryptedTextField("概要", blank=True, default="")
    cause = EncryptedTextField("原因", blank=True, default="")
    secondary_damage = EncryptedTextField("二次被害又はそのおそれの有無及びその内容", blank=True, default="")
    response_to_persons = EncryptedTextField("本人への対応の実施状況", blank=True, default="")
    publication = EncryptedTextField("公表の実施状況", blank=True, default="")
    prevention = EncryptedTextField("再発防止のための措置", blank=True, default="")
    preliminary_reported_at = models.DateTimeField("速報の日時", null=True, blank=True)
    final_reported_at = models.DateTimeField("確報の日時", null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                   verbose_name="記録者")

    class Meta:
        ordering = ["-found_at"]
        verbose_name = "漏えい等の事案"
        verbose_name_plural = "漏えい等の事案"

    def __str__(self) -> str:
        return self.title


class AffectedPerson(TimestampedModel):
    """One pupil an incident concerns, with the data items of theirs that were exposed."""

    id = models.BigAutoField(primary_key=True)
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="persons")
    student = models.ForeignKey("students.Student", on_delete=models.CASCADE, related_name="+")
    fields = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["incident", "student"], name="privacy_affected_once")]


class RetentionRule(TimestampedModel):
    """One line of the retention schedule (保存期間表). Data, not code: a board changes the period here."""

    class Key(models.TextChoices):
        ATTENDANCE = "attendance_registers", _("出席簿")
        YOROKU_GAKUSEKI = "yoroku_gakuseki", _("指導要録（学籍に関する記録）")
        YOROKU_GUIDANCE = "yoroku_guidance", _("指導要録（指導に関する記録）")
        CONTACTS = "contacts_after_leaving", _("連絡先（緊急連絡先・保護者の連絡先）")
        AUDIT = "audit_log", _("監査ログ")

    key = models.CharField(max_length=32, choices=Key.choices, unique=True)
    years = models.PositiveSmallIntegerField("保存年数")
    basis = models.CharField("起算点と根拠", max_length=300)
    enabled = models.BooleanField("自動削除する", default=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "保存期間"
        verbose_name_plural = "保存期間表"

    def __str__(self) -> str:
        return f"{self.get_key_display()} {self.years}年"


class RetentionRun(models.Model):
    """One run of the retention schedule: what it removed (or, dry, would remove), rule by rule."""

    id = models.BigAutoField(primary_key=True)
    started_at = models.DateTimeField(auto_now_add=True)
    dry_run = models.BooleanField(default=False)
    actor_username = models.CharField(max_length=150, blank=True)
    # [{"key": ..., "label": ..., "counts": {...}, "note": "..."}]
    results = models.JSONField(default=list)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"保存期間の実行 {self.started_at:%Y-%m-%d %H:%M}{'（試行）' if self.dry_run else ''}"
