"""照会・回答: a board's survey (its fields, its recipients) and each school's answer with its history.

The answer's values may hold names (a table of pupils, free text), so they are stored encrypted and the board's
reads of them are audited (komu.surveys.selectors). Uploaded files are encrypted too.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from komu.core.models import PersonalDataModel, TimestampedModel
from komu.directory.models import Board, School
from komu.security.blobs import BlobField
from komu.security.fields import EncryptedTextField


class Survey(TimestampedModel):
    """照会: built by a board officer as a draft, published once to a set of schools with a deadline."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("作成中")
        PUBLISHED = "published", _("照会中")
        CLOSED = "closed", _("締切済み")

    board = models.ForeignKey(Board, on_delete=models.PROTECT, related_name="surveys", verbose_name="照会元")
    title = models.CharField("件名", max_length=120)
    description = models.TextField("説明", max_length=2000, blank=True)
    status = models.CharField("状態", max_length=10, choices=Status.choices, default=Status.DRAFT)
    # 対象期間: the week or month the figures are about; prefilled figures are counted over it.
    period_start = models.DateField("対象期間（開始）", null=True, blank=True)
    period_end = models.DateField("対象期間（終了）", null=True, blank=True)
    deadline = models.DateTimeField("回答期限", null=True, blank=True)
    template_code = models.CharField("元にしたひな形", max_length=40, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    published_at = models.DateTimeField("発出日時", null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # How the recipients were chosen, shown on the progress page ("全校", "中学校", "3校を指定").
    target_label = models.CharField("送付先", max_length=200, blank=True)
    # Automatic reminders: days before the deadline (0 = none); late schools are reminded once a day.
    remind_before_days = models.PositiveSmallIntegerField("期限前の自動督促（日前）", default=1)
    reminded_before_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "照会"
        verbose_name_plural = "照会"

    def __str__(self) -> str:
        return self.title


class SurveyField(models.Model):
    """One question of a survey. `config` holds the kind's settings (min/max, max_length, choices, columns, rows,
    file limits) as validated by komu.surveys.fields; `source` binds a number to a figure Komu already holds."""

    class Kind(models.TextChoices):
        NUMBER = "number", _("数値")
        TEXT = "text", _("文字")
        SINGLE = "single", _("単一選択")
        MULTIPLE = "multiple", _("複数選択")
        DATE = "date", _("日付")
        TABLE = "table", _("表")
        FILE = "file", _("ファイル")

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="fields")
    key = models.CharField("識別子", max_length=20)
    position = models.PositiveSmallIntegerField("並び順")
    label = models.CharField("項目名", max_length=120)
    kind = models.CharField("種類", max_length=10, choices=Kind.choices)
    required = models.BooleanField("必須", default=False)
    help_text = models.CharField("説明", max_length=300, blank=True)
    config = models.JSONField("設定", default=dict, blank=True)
    source = models.CharField("自動入力の元", max_length=60, blank=True)

    class Meta:
        ordering = ["survey", "position"]
        constraints = [models.UniqueConstraint(fields=["survey", "key"], name="uniq_survey_field_key")]
        verbose_name = "照会の項目"
        verbose_name_plural = "照会の項目"

    def __str__(self) -> str:
        return self.label


class SurveyAnswer(PersonalDataModel):
    """One school's answer to one survey: created for every recipient when the survey is published."""

    class Status(models.TextChoices):
        NOT_STARTED = "not_started", _("未着手")
        DRAFT = "draft", _("作成中")
        IN_APPROVAL = "in_approval", _("決裁中")
        SUBMITTED = "submitted", _("提出済み")

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="answers")
    school = models.ForeignKey(School, on_delete=models.PROTECT, related_name="survey_answers")
    status = models.CharField("状態", max_length=12, choices=Status.choices, default=Status.NOT_STARTED)
    # JSON {field key: value}; encrypted because a table or a text may name pupils.
    values = EncryptedTextField("回答内容", blank=True, default="")
    # JSON {field key: the figure Komu proposed}: edited = value differs from it.
    prefilled = models.JSONField("自動入力した値", default=dict, blank=True)
    version = models.PositiveIntegerField("版", default=1)
    started_at = models.DateTimeField("着手日時", null=True, blank=True)
    saved_at = models.DateTimeField("最終保存日時", null=True, blank=True)
    saved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    approval = models.ForeignKey(
        "approvals.ApprovalRequest", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    submitted_at = models.DateTimeField("提出日時", null=True, blank=True)
    last_reminded_at = models.DateTimeField("最終督促日時", null=True, blank=True)
    reminder_count = models.PositiveSmallIntegerField("督促回数", default=0)

    class Meta:
        ordering = ["survey", "school__code"]
        constraints = [models.UniqueConstraint(fields=["survey", "school"], name="uniq_survey_answer")]
        verbose_name = "照会への回答"
        verbose_name_plural = "照会への回答"

    def __str__(self) -> str:
        return f"{self.survey} / {self.school}"


class SurveyAnswerVersion(PersonalDataModel):
    """A submitted version of an answer, kept when the board reopens it for correction (訂正の履歴)."""

    answer = models.ForeignKey(SurveyAnswer, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField("版")
    values = EncryptedTextField("回答内容", blank=True, default="")
    prefilled = models.JSONField("自動入力した値", default=dict, blank=True)
    submitted_at = models.DateTimeField("提出日時")
    reopened_at = models.DateTimeField("再提出依頼日時")
    reopened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField("訂正を求める理由", max_length=300)

    class Meta:
        ordering = ["answer", "-version"]
        constraints = [models.UniqueConstraint(fields=["answer", "version"], name="uniq_survey_answer_version")]
        verbose_name = "回答の旧版"
        verbose_name_plural = "回答の旧版"

    def __str__(self) -> str:
        return f"{self.answer} 第{self.version}版"


class SurveyFile(PersonalDataModel):
    """A file uploaded into a file field of an answer; the bytes are an encrypted file in the attachments store
    (komu.security.blobs), its data key kept here encrypted and bound to this row."""

    answer = models.ForeignKey(SurveyAnswer, on_delete=models.CASCADE, related_name="files")
    field_key = models.CharField(max_length=20)
    filename = models.CharField("ファイル名", max_length=200)
    mime = models.CharField("形式", max_length=100)
    size = models.PositiveIntegerField("サイズ")
    sha256 = models.CharField(max_length=64)
    blob = BlobField("保存名", unique=True)
    blob_key = EncryptedTextField("ファイルの暗号鍵")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name = "回答の添付ファイル"
        verbose_name_plural = "回答の添付ファイル"

    def __str__(self) -> str:
        return self.filename
