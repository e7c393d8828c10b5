"""学齢簿 (the board's school-age register of next year's entrants), the rosters it sends to schools
(入学者名簿 / 就学予定者の通知, 学校教育法施行令 §7), their amendments, and transfer packages (転学).

Personal data of an entrant lives in one encrypted JSON ``record`` per row (one AEAD operation per row keeps a
100,000-row import fast); the fields the board filters and counts on (designated school, 区域外就学, 特別支援,
review flag) are plain columns. The person id and the kana reading have blind indexes for exact-match lookup.
Read and write only through ``komu.rosters.services`` / ``selectors``, which audit.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from komu.core.models import PersonalDataModel, TimestampedModel
from komu.core.text import normalize_kana
from komu.directory.models import Board, School
from komu.security.blobs import BlobField
from komu.security.fields import BlindIndexField, EncryptedTextField

# The keys of GakureiboEntry.record (and of RosterEntry.snapshot), in display order. They are the personal
# fields of komu.interop.gakureibo.EntrantRow; dates are ISO strings.
RECORD_KEYS = (
    "person_id", "family_name", "given_name", "family_name_kana", "given_name_kana", "sex", "birth_date",
    "postal_code", "address", "guardian_id", "guardian_family_name", "guardian_given_name",
    "guardian_family_name_kana", "guardian_given_name_kana", "guardian_relationship", "guardian_phone",
    "guardian_email", "guardian_address", "entry_date", "note",
)


def _person_key(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip()


def _kana_key(value: str) -> str:
    return normalize_kana(value).replace(" ", "") if value else ""


class JsonRecordMixin:
    """``record`` is an encrypted JSON object; ``data`` reads it as a dict."""

    record: str

    @property
    def data(self) -> dict[str, Any]:
        return json.loads(self.record) if self.record else {}

    @property
    def person_id(self) -> str:
        return str(self.data.get("person_id", ""))

    @property
    def full_kana(self) -> str:
        d = self.data
        return f"{d.get('family_name_kana', '')} {d.get('given_name_kana', '')}".strip()


class GakureiboEntry(JsonRecordMixin, PersonalDataModel):
    """One child of the board's 学齢簿 for the entrants of ``fiscal_year`` (the 年度 they enter grade 1)."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("就学予定")
        MOVED_OUT = "moved_out", _("転出（市外）")
        DEFERRED = "deferred", _("就学猶予・免除")

    class Source(models.TextChoices):
        IMPORT = "import", _("ファイル取込")
        MANUAL = "manual", _("画面入力")

    board = models.ForeignKey(Board, on_delete=models.PROTECT, related_name="gakureibo_entries")
    fiscal_year = models.PositiveIntegerField("入学年度")
    record = EncryptedTextField("記載事項")
    person_index = BlindIndexField(source="person_id", normalizer=_person_key, purpose="gakureibo.person_id")
    kana_index = BlindIndexField(source="full_kana", normalizer=_kana_key, purpose="gakureibo.kana")
    # Keyed digest of the record (blind-index key, its own purpose): re-importing an unchanged row is a no-op.
    content_digest = models.CharField("内容の識別値", max_length=64, default="")
    designated_school = models.ForeignKey(
        School, on_delete=models.PROTECT, null=True, blank=True, related_name="designated_entrants",
        verbose_name="指定校",
    )
    out_of_district = models.BooleanField("区域外就学", default=False)
    special_needs = models.BooleanField("特別支援学級", default=False)
    needs_review = models.BooleanField("要確認", default=False)
    status = models.CharField("状態", max_length=12, choices=Status.choices, default=Status.ACTIVE)
    source = models.CharField("登録元", max_length=8, choices=Source.choices, default=Source.IMPORT)
    last_import = models.ForeignKey(
        "GakureiboImport", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["board", "fiscal_year", "person_index"], name="uniq_gakureibo_person"),
        ]
        indexes = [models.Index(fields=["board", "fiscal_year", "designated_school"])]
        verbose_name = "学齢簿の記載"
        verbose_name_plural = "学齢簿の記載"

    def __str__(self) -> str:
        return f"学齢簿 {self.pk}"


class GakureiboImport(PersonalDataModel):
    """One upload of a 学齢簿 extract: dry run first, then apply — both as a background task with progress.

    The uploaded bytes are kept encrypted only until the import is applied, discarded or fails."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("待機中")
        VALIDATING = "validating", _("検証中")
        VALIDATED = "validated", _("検証済み")
        APPLYING = "applying", _("取込中")
        APPLIED = "applied", _("取込完了")
        FAILED = "failed", _("失敗")
        DISCARDED = "discarded", pgettext_lazy("status", "取消")

    board = models.ForeignKey(Board, on_delete=models.PROTECT, related_name="gakureibo_imports")
    fiscal_year = models.PositiveIntegerField("入学年度")
    filename = models.CharField("ファイル名", max_length=255)
    layout = models.CharField("形式", max_length=8, default="auto")
    size = models.PositiveBigIntegerField("サイズ", default=0)
    sha256 = models.CharField("SHA-256", max_length=64, default="")
    content = EncryptedTextField("ファイル内容（base64）", blank=True, default="")
    status = models.CharField("状態", max_length=12, choices=Status.choices, default=Status.QUEUED)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    # Counts and the first issues (JSON, encrypted: an issue quotes the cell value).
    report = EncryptedTextField("結果", blank=True, default="")
    error_count = models.PositiveIntegerField(default=0)
    warning_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "学齢簿の取込"
        verbose_name_plural = "学齢簿の取込"

    def __str__(self) -> str:
        return f"取込 {self.filename}"

    @property
    def data(self) -> dict[str, Any]:
        return json.loads(self.report) if self.report else {}


class Roster(TimestampedModel):
    """入学者名簿: what a board sends one school for one 年度 — a structured record per child."""

    class Status(models.TextChoices):
        SENT = "sent", _("送付済み")
        OPENED = "opened", _("開封済み")
        ACCEPTED = "accepted", _("受入済み")

    board = models.ForeignKey(Board, on_delete=models.PROTECT, related_name="rosters")
    school = models.ForeignKey(School, on_delete=models.PROTECT, related_name="rosters")
    fiscal_year = models.PositiveIntegerField("入学年度")
    status = models.CharField("状態", max_length=10, choices=Status.choices, default=Status.SENT)
    deadline = models.DateField("通知期限")
    sent_at = models.DateTimeField("送付日時")
    sent_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    opened_at = models.DateTimeField("開封日時", null=True, blank=True)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    accepted_at = models.DateTimeField("受入日時", null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["school", "fiscal_year"], name="uniq_roster_school_year")]
        ordering = ["-fiscal_year", "school__code"]
        verbose_name = "入学者名簿"
        verbose_name_plural = "入学者名簿"

    def __str__(self) -> str:
        return f"{self.fiscal_year}年度 入学者名簿"


class RosterEntry(JsonRecordMixin, PersonalDataModel):
    """One child on a sent roster: the record as the school received it (``record``), and, once accepted, the
    pupil it became."""

    class State(models.TextChoices):
        SENT = "sent", _("未受入")
        ACCEPTED = "accepted", _("受入済み")
        WITHDRAWN = "withdrawn", _("取消（指定変更・転出）")

    roster = models.ForeignKey(Roster, on_delete=models.CASCADE, related_name="entries")
    entry = models.ForeignKey(GakureiboEntry, on_delete=models.PROTECT, related_name="roster_entries")
    record = EncryptedTextField("送付した記載事項")
    special_needs = models.BooleanField("特別支援学級", default=False)
    out_of_district = models.BooleanField("区域外就学", default=False)
    state = models.CharField("状態", max_length=10, choices=State.choices, default=State.SENT)
    student = models.ForeignKey(
        "students.Student", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["roster", "entry"], name="uniq_roster_entry")]
        verbose_name = "入学者名簿の記載"
        verbose_name_plural = "入学者名簿の記載"

    def __str__(self) -> str:
        return f"名簿記載 {self.pk}"


class RosterAmendment(PersonalDataModel):
    """A change to an already-sent roster (転居, 訂正, 指定変更): a diff the school accepts."""

    class Kind(models.TextChoices):
        ADDED = "added", _("追加")
        CHANGED = "changed", pgettext_lazy("amendment", "変更")
        REMOVED = "removed", pgettext_lazy("amendment", "取消")

    roster = models.ForeignKey(Roster, on_delete=models.CASCADE, related_name="amendments")
    roster_entry = models.ForeignKey(RosterEntry, on_delete=models.CASCADE, related_name="amendments")
    kind = models.CharField("種類", max_length=8, choices=Kind.choices)
    # JSON {"field": [old, new], ...} and the full new record, both encrypted.
    diff = EncryptedTextField("変更内容")
    new_record = EncryptedTextField("変更後の記載事項", blank=True, default="")
    reason = models.CharField("理由", max_length=200, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    accepted_at = models.DateTimeField("反映日時", null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # JSON {"field": message}: parts of an accepted change the registry could not take (e.g. the 入学予定日 once
    # the school year has begun), left for the school to handle by hand.
    not_applied = EncryptedTextField("反映できなかった項目", blank=True, default="")
    # The school's note that it has handled those parts by hand (e.g. recorded as 学籍の異動), and who and when.
    not_applied_resolved_at = models.DateTimeField("対応済みにした日時", null=True, blank=True)
    not_applied_resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    not_applied_note = EncryptedTextField("対応の内容", blank=True, default="")

    class Meta:
        ordering = ["created_at"]
        verbose_name = "入学者名簿の変更"
        verbose_name_plural = "入学者名簿の変更"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.pk}"

    @property
    def changes(self) -> dict[str, list[Any]]:
        return json.loads(self.diff) if self.diff else {}

    @property
    def problems(self) -> dict[str, str]:
        return json.loads(self.not_applied) if self.not_applied else {}


class TransferPackage(PersonalDataModel):
    """転学: what the old school sends — the registry record, the year's attendance totals and the PDFs — to the
    receiving school, or to the receiving board when the school is not known yet."""

    class Status(models.TextChoices):
        SENT = "sent", _("送付済み（受入待ち）")
        AT_BOARD = "at_board", _("教育委員会で指定校待ち")
        ACCEPTED = "accepted", _("受入済み")
        CANCELLED = "cancelled", pgettext_lazy("status", "取消")

    student = models.ForeignKey("students.Student", on_delete=models.PROTECT, related_name="transfers_out")
    from_school = models.ForeignKey(School, on_delete=models.PROTECT, related_name="transfers_out")
    to_school = models.ForeignKey(
        School, on_delete=models.PROTECT, null=True, blank=True, related_name="transfers_in"
    )
    to_board = models.ForeignKey(
        Board, on_delete=models.PROTECT, null=True, blank=True, related_name="transfers_in"
    )
    # Where the pupil goes when the school is outside Komu (name only, e.g. 他市の学校).
    to_school_name = models.CharField("転学先（学校名）", max_length=100, blank=True, default="")
    departure_date = models.DateField("転学日")
    status = models.CharField("状態", max_length=10, choices=Status.choices, default=Status.SENT)
    # JSON: the registry record, guardians, history and attendance totals, as sent (encrypted).
    record = EncryptedTextField("送付内容")
    reason = EncryptedTextField("転学の事由", blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    accepted_at = models.DateTimeField("受入日時", null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    received_student = models.ForeignKey(
        "students.Student", on_delete=models.SET_NULL, null=True, blank=True, related_name="transfers_in"
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "転学の送付"
        verbose_name_plural = "転学の送付"

    def __str__(self) -> str:
        return f"転学 {self.pk}"

    @property
    def data(self) -> dict[str, Any]:
        return json.loads(self.record) if self.record else {}


class TransferDocument(PersonalDataModel):
    """A PDF in a transfer package (指導要録 学籍 copy, 在学証明書, 教科用図書給与証明書), certified by the
    principal: an Ed25519 signature (the seal key) over its SHA-256. The PDF is an encrypted file in the attachments
    store (komu.security.blobs), its data key kept here encrypted and bound to this row."""

    class Kind(models.TextChoices):
        SHIDO_YOROKU = "shido_yoroku", _("指導要録（学籍に関する記録）の写し")
        ENROLLMENT_CERTIFICATE = "zaigaku", _("在学証明書")
        TEXTBOOK_CERTIFICATE = "textbook", _("教科用図書給与証明書")

    package = models.ForeignKey(TransferPackage, on_delete=models.CASCADE, related_name="documents")
    kind = models.CharField("種類", max_length=16, choices=Kind.choices)
    blob = BlobField("保存名", unique=True)
    blob_key = EncryptedTextField("ファイルの暗号鍵")
    sha256 = models.CharField("SHA-256", max_length=64)
    size = models.PositiveIntegerField("大きさ")
    signature = models.TextField("電子署名")
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signed_at = models.DateTimeField("署名日時")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["package", "kind"], name="uniq_transfer_document_kind")]
        verbose_name = "転学書類"
        verbose_name_plural = "転学書類"

    def __str__(self) -> str:
        return self.get_kind_display()
