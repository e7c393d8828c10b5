"""The progress database (校務DXの進捗): measured indicators per school and month, their precomputed rollups,
the yearly 校務DX checklist, and the deployments that push their snapshots to this one (federation).

No personal data here: counts and codes only. Schools are named by 学校コード (not a foreign key) because a
federated member's schools exist only as codes at the hub.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from komu.progress import checklist_texts


class IndicatorValue(models.Model):
    """One indicator of one school in one month (`month` is the first day of the month)."""

    source = models.CharField("計測元", max_length=64, default="local", help_text="local または連携先の識別子")
    school_code = models.CharField("学校コード", max_length=13)
    school_name = models.CharField("学校名", max_length=100)
    board_code = models.CharField("教育委員会コード", max_length=6)
    board_name = models.CharField("教育委員会名", max_length=100)
    prefecture_code = models.CharField("都道府県コード", max_length=2)
    month = models.DateField("月")
    indicator = models.CharField("指標", max_length=40)
    numerator = models.BigIntegerField("分子", default=0)
    denominator = models.BigIntegerField("分母", default=0)
    value = models.FloatField("値（中央値など）", null=True, blank=True)
    measured_at = models.DateTimeField("計測日時")

    class Meta:
        verbose_name = "指標の値"
        verbose_name_plural = "指標の値"
        constraints = [
            models.UniqueConstraint(fields=["school_code", "month", "indicator"], name="progress_value_uniq"),
        ]
        indexes = [
            models.Index(fields=["month", "indicator", "board_code"], name="progress_value_board"),
            models.Index(fields=["month", "indicator", "prefecture_code"], name="progress_value_pref"),
            models.Index(fields=["board_code", "indicator", "month"], name="progress_value_board_trend"),
        ]

    def __str__(self) -> str:
        return f"{self.school_code} {self.month:%Y-%m} {self.indicator}"


class Rollup(models.Model):
    """Σ of the school values of one board, prefecture or the nation for one month and indicator. Refreshed by
    rollups_refresh for the months that changed; pages read these rows only."""

    class Level(models.TextChoices):
        BOARD = "board", _("教育委員会")
        PREFECTURE = "prefecture", _("都道府県")
        NATION = "nation", _("全国")

    level = models.CharField(max_length=10, choices=Level.choices)
    key = models.CharField(max_length=6)
    name = models.CharField(max_length=100, blank=True)
    prefecture_code = models.CharField(max_length=2, blank=True)
    month = models.DateField()
    indicator = models.CharField(max_length=40)
    numerator = models.BigIntegerField(default=0)
    denominator = models.BigIntegerField(default=0)
    weighted_value = models.FloatField(default=0)
    weight = models.BigIntegerField(default=0)
    schools = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "集計"
        verbose_name_plural = "集計"
        constraints = [
            models.UniqueConstraint(fields=["level", "key", "month", "indicator"], name="progress_rollup_uniq"),
        ]
        indexes = [models.Index(fields=["level", "month", "indicator"], name="progress_rollup_level")]

    def __str__(self) -> str:
        return f"{self.level}:{self.key} {self.month:%Y-%m} {self.indicator}"


class ChecklistItem(models.Model):
    """One item of the 校務DX checklist, loaded from a fixture (replaced when MEXT revises the list)."""

    class Audience(models.TextChoices):
        SCHOOL = "school", _("学校")
        BOARD = "board", _("教育委員会")

    edition = models.CharField("版", max_length=20)
    code = models.CharField("項目番号", max_length=20)
    audience = models.CharField("回答者", max_length=10, choices=Audience.choices)
    group = models.CharField("区分", max_length=100)
    text = models.CharField("項目", max_length=300)
    indicator = models.CharField("対応する計測指標", max_length=40, blank=True)
    points = models.PositiveSmallIntegerField("配点（完全にデジタル化）", default=30)
    order = models.PositiveSmallIntegerField("並び順", default=0)

    class Meta:
        ordering = ["edition", "audience", "order"]
        verbose_name = "校務DXチェックリストの項目"
        verbose_name_plural = "校務DXチェックリストの項目"
        constraints = [models.UniqueConstraint(fields=["edition", "code"], name="progress_item_uniq")]

    def __str__(self) -> str:
        return f"{self.code} {self.text}"

    @property
    def display_group(self) -> str:
        return checklist_texts.display(self.group)

    @property
    def display_text(self) -> str:
        """The item in the screen's language if it is one of the built-in edition's, else as loaded."""
        return checklist_texts.display(self.text)


class ChecklistResponse(models.Model):
    """A school's or a board's answers for one 年度. Locked once submitted (学校→教育委員会, 教育委員会→上位)."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("回答中")
        SUBMITTED = "submitted", _("提出済み")

    year = models.PositiveIntegerField("年度")
    edition = models.CharField("版", max_length=20)
    school = models.ForeignKey("directory.School", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    board = models.ForeignKey("directory.Board", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    status = models.CharField("状態", max_length=10, choices=Status.choices, default=Status.DRAFT)
    uses_fax = models.BooleanField("FAXを使っている", default=False)
    fax_counterparties = models.JSONField("FAXの相手先", default=list, blank=True)
    requires_seal = models.BooleanField("押印を求めている", default=False)
    seal_documents = models.JSONField("押印を求める文書", default=list, blank=True)
    score = models.PositiveIntegerField("得点", default=0)
    max_score = models.PositiveIntegerField("満点", default=0)
    submitted_at = models.DateTimeField("提出日時", null=True, blank=True)
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                     related_name="+")
    updated_at = models.DateTimeField("更新日時", auto_now=True)

    class Meta:
        verbose_name = "校務DXチェックリストの回答"
        verbose_name_plural = "校務DXチェックリストの回答"
        constraints = [
            models.UniqueConstraint(fields=["year", "school"], name="progress_response_school"),
            models.UniqueConstraint(fields=["year", "board"], name="progress_response_board"),
            models.CheckConstraint(
                condition=models.Q(school__isnull=False, board__isnull=True)
                | models.Q(school__isnull=True, board__isnull=False),
                name="progress_response_one_org",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.year}年度 {self.school_id or self.board_id}"


class ChecklistAnswer(models.Model):
    class Level(models.IntegerChoices):
        FULL = 3, _("完全にデジタル化")
        MORE_THAN_HALF = 2, _("半分以上")
        PARTLY = 1, _("一部")
        NONE = 0, _("していない")

    response = models.ForeignKey(ChecklistResponse, on_delete=models.CASCADE, related_name="answers")
    item = models.ForeignKey(ChecklistItem, on_delete=models.PROTECT, related_name="+")
    level = models.PositiveSmallIntegerField("段階", choices=Level.choices)
    prefilled_level = models.PositiveSmallIntegerField("計測からの提案", null=True, blank=True)

    class Meta:
        verbose_name = "校務DXチェックリストの回答項目"
        verbose_name_plural = "校務DXチェックリストの回答項目"
        constraints = [models.UniqueConstraint(fields=["response", "item"], name="progress_answer_uniq")]

    def __str__(self) -> str:
        return f"{self.response_id}/{self.item_id}={self.level}"


class FederationMember(models.Model):
    """Another Komu deployment allowed to push its schools' indicators here (at the hub)."""

    code = models.CharField("識別子", max_length=64, unique=True)
    name = models.CharField("名称", max_length=100)
    key_id = models.CharField("公開鍵の指紋", max_length=64, unique=True)
    public_keyset = models.TextField("公開鍵（Tink JSON）")
    last_sequence = models.BigIntegerField("最後に受け付けた通番", default=0)
    last_received_at = models.DateTimeField("最終受信日時", null=True, blank=True)
    is_active = models.BooleanField("有効", default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "連携する自治体のKomu"
        verbose_name_plural = "連携する自治体のKomu"

    def __str__(self) -> str:
        return self.name


class FederationSnapshot(models.Model):
    """One accepted snapshot (at the hub): kept with its signature for audit."""

    member = models.ForeignKey(FederationMember, on_delete=models.PROTECT, related_name="snapshots")
    sequence = models.BigIntegerField("通番")
    nonce = models.CharField(max_length=64, unique=True)
    month = models.DateField("月")
    payload_sha256 = models.CharField(max_length=64)
    signature = models.TextField()
    schools = models.PositiveIntegerField("学校数")
    received_at = models.DateTimeField("受信日時")

    class Meta:
        verbose_name = "受信したスナップショット"
        verbose_name_plural = "受信したスナップショット"
        constraints = [models.UniqueConstraint(fields=["member", "sequence"], name="progress_snapshot_seq")]

    def __str__(self) -> str:
        return f"{self.member_id}#{self.sequence}"


class PushState(models.Model):
    """At a member: the last sequence number it sent (one row)."""

    hub_url = models.CharField(max_length=300, unique=True)
    last_sequence = models.BigIntegerField(default=0)
    last_pushed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.hub_url}#{self.last_sequence}"
