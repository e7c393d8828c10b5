"""通知・事務連絡・依頼 between boards and schools, お便り to guardians, paper sends still made outside Komu, and
the in-app notifications (お知らせ) with their e-mail preferences."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from komu.core.models import PersonalDataModel
from komu.security.blobs import BlobField
from komu.security.fields import EncryptedTextField


class NotificationPreference(models.Model):
    """How a person wants to hear of new notifications by e-mail. No row means immediate e-mail."""

    class EmailMode(models.TextChoices):
        IMMEDIATE = "immediate", _("すぐにメールで受け取る")
        DIGEST = "digest", _("1日1回まとめて受け取る")
        OFF = "off", _("メールでは受け取らない")

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
        NONE = "none", _("送らない")
        PENDING = "pending", _("まとめて送る予定")
        SENT = "sent", _("送信済み")

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



# --- 通知・事務連絡・依頼 ------------------------------------------------------------------------------------------


class Notice(models.Model):
    """A notice from a board (or a school) to schools or boards. A notice a board received and passed on to its
    schools is a new Notice whose `forwarded_from` names the one received: the chain stays visible."""

    class Kind(models.TextChoices):
        TSUCHI = "tsuchi", _("通知")
        JIMU_RENRAKU = "jimu_renraku", _("事務連絡")
        IRAI = "irai", _("依頼")
        HOKOKU = "hokoku", _("報告")

    kind = models.CharField("種別", max_length=16, choices=Kind.choices)
    title = models.CharField("件名", max_length=200)
    body = models.TextField("本文", blank=True, default="")
    sender_board = models.ForeignKey("directory.Board", on_delete=models.PROTECT, null=True, blank=True,
                                     related_name="+")
    sender_school = models.ForeignKey("directory.School", on_delete=models.PROTECT, null=True, blank=True,
                                      related_name="+")
    sent_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    sent_at = models.DateTimeField("送信日時")
    deadline = models.DateField("期限", null=True, blank=True)
    ack_required = models.BooleanField("受領の確認を求める", default=False)
    audience_label = models.CharField("送付先", max_length=200)
    forwarded_from = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True,
                                       related_name="forwards")

    class Meta:
        ordering = ("-sent_at",)
        verbose_name = "通知"
        verbose_name_plural = "通知"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(sender_board__isnull=False, sender_school__isnull=True)
                | models.Q(sender_board__isnull=True, sender_school__isnull=False),
                name="notice_one_sender",
            ),
        ]
        indexes = [models.Index(fields=["deadline"], name="notices_notice_deadline")]

    def __str__(self) -> str:
        return self.title


class NoticeRecipient(models.Model):
    """One school or board a notice was delivered to, with when it was opened and acknowledged (受領)."""

    notice = models.ForeignKey(Notice, on_delete=models.CASCADE, related_name="recipients")
    school = models.ForeignKey("directory.School", on_delete=models.PROTECT, null=True, blank=True,
                               related_name="+")
    board = models.ForeignKey("directory.Board", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    delivered_at = models.DateTimeField("配信日時")
    opened_at = models.DateTimeField("開封日時", null=True, blank=True)
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                  related_name="+")
    acknowledged_at = models.DateTimeField("受領日時", null=True, blank=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                        related_name="+")
    reminded_at = models.DateTimeField("最終督促日時", null=True, blank=True)
    reminder_count = models.PositiveSmallIntegerField("督促回数", default=0)

    class Meta:
        verbose_name = "通知の送付先"
        verbose_name_plural = "通知の送付先"
        constraints = [
            models.UniqueConstraint(fields=["notice", "school"], name="notices_recipient_uniq_school"),
            models.UniqueConstraint(fields=["notice", "board"], name="notices_recipient_uniq_board"),
            models.CheckConstraint(
                condition=models.Q(school__isnull=False, board__isnull=True)
                | models.Q(school__isnull=True, board__isnull=False),
                name="notices_recipient_one_target",
            ),
        ]
        indexes = [
            models.Index(fields=["school", "opened_at"], name="notices_recipient_school"),
            models.Index(fields=["board", "opened_at"], name="notices_recipient_board"),
        ]

    def __str__(self) -> str:
        return f"{self.notice_id} → {self.school_id or self.board_id}"


# --- お便り ------------------------------------------------------------------------------------------------------


class Letter(models.Model):
    """A letter (お便り) from a school to the guardians of a class, a grade or the whole school."""

    class Audience(models.TextChoices):
        CLASS = "class", _("学級")
        GRADE = "grade", _("学年")
        SCHOOL = "school", _("全校")

    class ReplyKind(models.TextChoices):
        NONE = "none", _("返信なし")
        CONSENT = "consent", _("同意・不同意を返信してもらう")

    school = models.ForeignKey("directory.School", on_delete=models.PROTECT, related_name="+")
    sent_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    sent_at = models.DateTimeField("送信日時")
    title = models.CharField("件名", max_length=200)
    body = models.TextField("本文", blank=True, default="")
    audience = models.CharField("送付先", max_length=10, choices=Audience.choices)
    homeroom_class = models.ForeignKey("directory.HomeroomClass", on_delete=models.PROTECT, null=True, blank=True,
                                       related_name="+")
    grade_code = models.CharField("学年", max_length=2, blank=True, default="")
    audience_label = models.CharField("送付先の表示", max_length=100)
    reply_kind = models.CharField("返信", max_length=10, choices=ReplyKind.choices, default=ReplyKind.NONE)
    reply_deadline = models.DateField("返信の期限", null=True, blank=True)
    # A board writing to the guardians of its schools sends one letter per school, each naming the board.
    via_board = models.ForeignKey("directory.Board", on_delete=models.PROTECT, null=True, blank=True,
                                  related_name="+", verbose_name="送信した教育委員会")

    class Meta:
        ordering = ("-sent_at",)
        verbose_name = "お便り"
        verbose_name_plural = "お便り"

    def __str__(self) -> str:
        return self.title


class LetterRecipient(models.Model):
    """One pupil whose guardians a letter went to; read receipts are per pupil (any of their guardians)."""

    letter = models.ForeignKey(Letter, on_delete=models.CASCADE, related_name="recipients")
    student = models.ForeignKey("students.Student", on_delete=models.CASCADE, related_name="+")
    homeroom_class = models.ForeignKey("directory.HomeroomClass", on_delete=models.PROTECT, related_name="+")
    read_at = models.DateTimeField("既読日時", null=True, blank=True)
    read_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                related_name="+")

    class Meta:
        verbose_name = "お便りの宛先"
        verbose_name_plural = "お便りの宛先"
        constraints = [models.UniqueConstraint(fields=["letter", "student"], name="notices_letter_uniq_student")]

    def __str__(self) -> str:
        return f"{self.letter_id} → {self.student_id}"


class LetterReply(PersonalDataModel):
    """A guardian's reply to a letter — kept as proof of intent like an absence report: login id, time, the
    content and its hash. A later reply for the same pupil supersedes the earlier one; both are kept."""

    class Choice(models.TextChoices):
        AGREE = "agree", _("参加に同意する")
        DISAGREE = "disagree", _("同意しない")

    recipient = models.ForeignKey(LetterRecipient, on_delete=models.CASCADE, related_name="replies")
    guardian_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    login_id = models.CharField("ログインID（送信時）", max_length=150)
    choice = models.CharField("回答", max_length=10, choices=Choice.choices)
    comment = EncryptedTextField("連絡事項", blank=True, default="")
    submitted_at = models.DateTimeField("送信日時")
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    content_hash = models.CharField("送信内容のハッシュ", max_length=64)

    class Meta:
        ordering = ("-submitted_at",)
        verbose_name = "お便りへの返信"
        verbose_name_plural = "お便りへの返信"

    def __str__(self) -> str:
        return f"{self.recipient_id}: {self.choice}"


# --- 添付ファイル -------------------------------------------------------------------------------------------------


class Attachment(PersonalDataModel):
    """A file attached to a notice or a letter. The bytes are an encrypted file in the attachments store
    (komu.security.blobs: its own data key, kept here encrypted and bound to this row), never under the web root,
    and are served only to the sender and the recipients."""

    notice = models.ForeignKey(Notice, on_delete=models.CASCADE, null=True, blank=True, related_name="attachments")
    letter = models.ForeignKey(Letter, on_delete=models.CASCADE, null=True, blank=True, related_name="attachments")
    filename = models.CharField("ファイル名", max_length=200)
    content_type = models.CharField("種類", max_length=100)
    size = models.PositiveIntegerField("大きさ")
    sha256 = models.CharField(max_length=64)
    blob = BlobField("保存名", unique=True)
    blob_key = EncryptedTextField("ファイルの暗号鍵")

    class Meta:
        ordering = ("created_at",)
        verbose_name = "添付ファイル"
        verbose_name_plural = "添付ファイル"

    def __str__(self) -> str:
        return self.filename


# --- 紙・FAX で送ったもの -----------------------------------------------------------------------------------------


class PaperSend(models.Model):
    """One send a board or school still had to make by fax or paper to someone outside Komu. Counted per month
    for the progress database; holds no personal data (a category and a kind of document only)."""

    class Channel(models.TextChoices):
        FAX = "fax", "FAX"
        PAPER = "paper", _("紙（郵送・手渡し）")

    class Counterparty(models.TextChoices):
        LUNCH_CENTRE = "lunch_centre", _("給食センター")
        PRIVATE = "private", _("民間事業者")
        GOVERNMENT = "government", _("他の行政機関")
        GUARDIAN = "guardian", _("保護者")
        OTHER = "other", _("その他")

    school = models.ForeignKey("directory.School", on_delete=models.PROTECT, null=True, blank=True,
                               related_name="+")
    board = models.ForeignKey("directory.Board", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    channel = models.CharField("手段", max_length=8, choices=Channel.choices)
    counterparty = models.CharField("相手先の区分", max_length=16, choices=Counterparty.choices)
    document_kind = models.CharField("文書の種類", max_length=100)
    sent_on = models.DateField("送った日")
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-sent_on", "-created_at")
        verbose_name = "紙・FAXでの送付"
        verbose_name_plural = "紙・FAXでの送付"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(school__isnull=False, board__isnull=True)
                | models.Q(school__isnull=True, board__isnull=False),
                name="notices_papersend_one_org",
            ),
        ]
        indexes = [
            models.Index(fields=["school", "sent_on"], name="notices_paper_school"),
            models.Index(fields=["board", "sent_on"], name="notices_paper_board"),
        ]

    def __str__(self) -> str:
        return f"{self.sent_on} {self.document_kind}"
