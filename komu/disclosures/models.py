"""開示記録 (disclosure log): every print or file export of personal data, with who, when, why, which persons and
which fields, under a serial number printed on every page (the watermark). A printed document stays outstanding
until the principal records it returned or shredded, or someone reports it lost.

The person ids and field codes are the record of what left the system; names are never stored here (the lost
report decrypts them from the pupils' rows, audited).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from komu.core.models import PersonalDataModel
from komu.directory.models import School
from komu.security.fields import EncryptedTextField


class Disclosure(PersonalDataModel):
    """One printed or exported document."""

    class Medium(models.TextChoices):
        PRINT = "print", _("印刷（PDF）")
        FILE = "file", _("ファイル出力")

    class Status(models.TextChoices):
        OUTSTANDING = "outstanding", _("未回収")
        RETURNED = "returned", _("返却済み")
        SHREDDED = "shredded", _("廃棄済み（シュレッダー等）")
        LOST = "lost", _("紛失")

    serial = models.CharField("通し番号", max_length=16, unique=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                              verbose_name="出力者")
    school = models.ForeignKey(School, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    document = models.CharField("文書", max_length=100)
    medium = models.CharField("形態", max_length=8, choices=Medium.choices)
    reason = EncryptedTextField("目的")
    person_ids = models.JSONField("対象者（ID）", default=list)
    fields = models.JSONField("項目", default=list)
    status = models.CharField("状態", max_length=12, choices=Status.choices, default=Status.OUTSTANDING)
    closed_at = models.DateTimeField("状態の記録日時", null=True, blank=True)
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                  related_name="+", verbose_name="状態の記録者")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["school", "status"], name="disclosure_school_status")]
        verbose_name = "開示記録"
        verbose_name_plural = "開示記録"

    def __str__(self) -> str:
        return f"開示記録 {self.serial}"
