"""Pupils (児童生徒), their guardians (保護者) and class membership with 出席番号.

Every field that identifies or describes a person is an EncryptedTextField bound to its row; kana and phone
numbers have blind indexes for exact-match search. Read and write only through services/selectors, which audit.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from komu.core import codes
from komu.core.models import PersonalDataModel, TimestampedModel
from komu.core.text import normalize_kana, phone_digits
from komu.directory.models import HomeroomClass, School
from komu.security.fields import BlindIndexField, EncryptedDateField, EncryptedTextField


def _kana_key(value: str) -> str:
    return normalize_kana(value).replace(" ", "")


class Sex(models.TextChoices):
    MALE = "male", _("男")
    FEMALE = "female", _("女")
    UNSPECIFIED = "unspecified", _("未設定")


class SpecialNeedsPlacement(models.TextChoices):
    """A pupil's 特別支援教育 placement. 特別支援学級 is also a class kind (HomeroomClass.Kind), but 通級による指導
    keeps the pupil in a regular class, so the placement belongs to the pupil."""

    NONE = "none", _("なし")
    SPECIAL_NEEDS_CLASS = "special_needs_class", _("特別支援学級")
    RESOURCE_ROOM = "resource_room", _("通級による指導")


class Student(PersonalDataModel):
    """児童生徒. Names are kept exactly as entered (never normalised); kana readings are normalised."""

    school = models.ForeignKey(School, on_delete=models.PROTECT, related_name="students")
    family_name = EncryptedTextField(_("姓"))
    given_name = EncryptedTextField(_("名"))
    family_name_kana = EncryptedTextField(_("姓（ふりがな）"))
    given_name_kana = EncryptedTextField(_("名（ふりがな）"))
    kana_index = BlindIndexField(source="full_kana", normalizer=_kana_key, purpose="student.kana")
    family_kana_index = BlindIndexField(
        source="family_name_kana", normalizer=_kana_key, purpose="student.family_kana"
    )
    sex = models.CharField(_("性別"), max_length=12, choices=Sex.choices, default=Sex.UNSPECIFIED)
    birth_date = EncryptedDateField(_("生年月日"), null=True, blank=True)
    address = EncryptedTextField(_("住所"), blank=True, default="")
    health_note = EncryptedTextField(_("健康上の配慮（アレルギー等）"), blank=True, default="")
    needs_review = models.BooleanField(_("外字等の確認が必要"), default=False)
    is_active = models.BooleanField(_("在籍"), default=True)
    special_needs_placement = models.CharField(
        _("特別支援教育の形態"),
        max_length=24,
        choices=SpecialNeedsPlacement.choices,
        default=SpecialNeedsPlacement.NONE,
    )
    special_needs_category = EncryptedTextField(_("障害種別・指導の内容"), blank=True, default="")
    # 学級編制待ち: the 年度 and grade a pupil awaits a class in (an accepted entrant, a transfer-in, a pupil of
    # a class re-formed at the year roll-over). Cleared when the pupil is placed.
    pending_year = models.PositiveIntegerField(_("編制待ちの年度"), null=True, blank=True)
    pending_grade_code = models.CharField(
        _("編制待ちの学年"),
        max_length=2,
        blank=True,
        default="",
        choices=[(code, _(label)) for code, label in codes.GRADES.items()],
    )

    class Meta:
        verbose_name = _("児童生徒")
        verbose_name_plural = _("児童生徒")

    def __str__(self) -> str:
        return f"児童生徒 {self.pk}"

    @property
    def full_kana(self) -> str:
        return f"{self.family_name_kana} {self.given_name_kana}".strip()

    @property
    def full_name(self) -> str:
        return f"{self.family_name} {self.given_name}"


class ClassMembership(TimestampedModel):
    """学級在籍: a pupil in a homeroom for a school year, with 出席番号."""

    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="memberships")
    homeroom_class = models.ForeignKey(HomeroomClass, on_delete=models.CASCADE, related_name="memberships")
    shusseki_no = models.PositiveSmallIntegerField(_("出席番号"))

    class Meta:
        ordering = ["homeroom_class", "shusseki_no"]
        constraints = [
            models.UniqueConstraint(fields=["homeroom_class", "shusseki_no"], name="uniq_shusseki_no"),
            models.UniqueConstraint(fields=["homeroom_class", "student"], name="uniq_student_in_class"),
        ]
        verbose_name = _("学級在籍")
        verbose_name_plural = _("学級在籍")

    def __str__(self) -> str:
        return f"{self.homeroom_class} {self.shusseki_no}番"


class Guardian(PersonalDataModel):
    """保護者. May have a user account (to sign in on a phone) or not."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="guardian"
    )
    family_name = EncryptedTextField(_("姓"))
    given_name = EncryptedTextField(_("名"))
    family_name_kana = EncryptedTextField(_("姓（ふりがな）"), blank=True, default="")
    given_name_kana = EncryptedTextField(_("名（ふりがな）"), blank=True, default="")
    phone = EncryptedTextField(_("電話番号"), blank=True, default="")
    phone_index = BlindIndexField(source="phone", normalizer=phone_digits, purpose="guardian.phone")
    email = EncryptedTextField(_("メールアドレス"), blank=True, default="")
    address = EncryptedTextField(_("住所"), blank=True, default="")

    class Meta:
        verbose_name = _("保護者")
        verbose_name_plural = _("保護者")

    def __str__(self) -> str:
        return f"保護者 {self.pk}"

    @property
    def full_name(self) -> str:
        return f"{self.family_name} {self.given_name}"


class GuardianLink(TimestampedModel):
    """A guardian of a pupil, with 続柄 and contact priority."""

    guardian = models.ForeignKey(Guardian, on_delete=models.CASCADE, related_name="links")
    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="guardian_links")
    relationship = models.CharField(_("続柄"), max_length=20)
    priority = models.PositiveSmallIntegerField(_("連絡順位"), default=1)

    class Meta:
        ordering = ["student", "priority"]
        constraints = [models.UniqueConstraint(fields=["guardian", "student"], name="uniq_guardian_student")]
        verbose_name = _("保護者の続柄")
        verbose_name_plural = _("保護者の続柄")

    def __str__(self) -> str:
        return f"{self.relationship} (順位 {self.priority})"


class EmergencyContact(PersonalDataModel):
    """緊急連絡先: whom to call, in order, when a guardian cannot be reached (祖父母, 勤務先 …)."""

    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="emergency_contacts")
    priority = models.PositiveSmallIntegerField(_("順位"))
    name = EncryptedTextField(_("氏名"))
    relationship = EncryptedTextField(_("続柄"))
    phone = EncryptedTextField(_("電話番号"))
    phone_index = BlindIndexField(source="phone", normalizer=phone_digits, purpose="emergency_contact.phone")
    note = EncryptedTextField(_("備考"), blank=True, default="")

    class Meta:
        ordering = ["student", "priority"]
        constraints = [
            models.UniqueConstraint(fields=["student", "priority"], name="uniq_emergency_contact_priority"),
        ]
        verbose_name = _("緊急連絡先")
        verbose_name_plural = _("緊急連絡先")

    def __str__(self) -> str:
        return f"緊急連絡先 {self.priority}"


class EnrollmentKind(models.TextChoices):
    ADMISSION = "admission", _("入学")
    READMISSION = "readmission", _("編入学")
    TRANSFER_IN = "transfer_in", _("転入学")
    TRANSFER_OUT = "transfer_out", _("転学")
    WITHDRAWAL = "withdrawal", _("退学")
    GRADUATION = "graduation", _("卒業")


# The kinds after which the pupil is no longer enrolled at this school.
LEAVING_KINDS = frozenset({EnrollmentKind.TRANSFER_OUT, EnrollmentKind.WITHDRAWAL, EnrollmentKind.GRADUATION})
# The kinds that name the other school (where the pupil came from or goes to).
TRANSFER_KINDS = frozenset({EnrollmentKind.TRANSFER_IN, EnrollmentKind.TRANSFER_OUT})


class EnrollmentEvent(PersonalDataModel):
    """学籍の異動: one line of the 指導要録 学籍に関する記録 (入学・編入学・転入学・転学・退学・卒業)."""

    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="enrollment_events")
    kind = models.CharField(_("異動の種類"), max_length=16, choices=EnrollmentKind.choices)
    date = models.DateField(_("年月日"))
    grade_code = models.CharField(
        _("学年"), max_length=2, choices=[(code, _(label)) for code, label in codes.GRADES.items()]
    )
    other_school_name = models.CharField(_("他校名"), max_length=100, blank=True, default="")
    other_school_code = models.CharField(_("他校の学校コード"), max_length=13, blank=True, default="")
    reason = EncryptedTextField(_("事由"), blank=True, default="")
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("記録者")
    )

    class Meta:
        ordering = ["student", "date", "created_at"]
        verbose_name = _("学籍の異動")
        verbose_name_plural = _("学籍の異動")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.date}"


class SchoolNumberingRule(TimestampedModel):
    """How a school assigns 出席番号 within a class. Without a rule, kana order (mixed) applies."""

    class Order(models.TextChoices):
        KANA = "kana", _("五十音順（男女混合）")
        BOYS_FIRST = "boys_first", _("男子が先、女子が後")
        GIRLS_FIRST = "girls_first", _("女子が先、男子が後")

    school = models.OneToOneField(School, on_delete=models.CASCADE, related_name="numbering_rule")
    order = models.CharField(_("出席番号の付け方"), max_length=12, choices=Order.choices, default=Order.KANA)

    class Meta:
        verbose_name = _("出席番号の規則")
        verbose_name_plural = _("出席番号の規則")

    def __str__(self) -> str:
        return self.get_order_display()
