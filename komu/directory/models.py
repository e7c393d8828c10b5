"""The directory: prefectures, boards of education, schools, school years, terms, homeroom classes, staff.

None of this is personal data except the staff assignment's link to a user, which names no one by itself.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from komu.core import codes, wareki
from komu.core.models import TimestampedModel


class Prefecture(models.Model):
    """都道府県, keyed by its JIS code 01–47."""

    code = models.CharField(_("都道府県コード"), max_length=2, primary_key=True)
    name = models.CharField(_("名称"), max_length=10)

    class Meta:
        ordering = ["code"]
        verbose_name = _("都道府県")
        verbose_name_plural = _("都道府県")

    def __str__(self) -> str:
        return self.name


class Board(TimestampedModel):
    """教育委員会: prefectural (runs prefectural high schools) or municipal (runs elementary and junior highs)."""

    class Kind(models.TextChoices):
        PREFECTURAL = "prefectural", _("都道府県教育委員会")
        MUNICIPAL = "municipal", _("市区町村教育委員会")

    code = models.CharField(_("教育委員会コード"), max_length=6, unique=True)
    name = models.CharField(_("名称"), max_length=100)
    kind = models.CharField(_("種別"), max_length=12, choices=Kind.choices)
    prefecture = models.ForeignKey(Prefecture, on_delete=models.PROTECT, related_name="boards")
    parent = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
        verbose_name=_("上位の教育委員会"),
    )

    class Meta:
        ordering = ["code"]
        verbose_name = _("教育委員会")
        verbose_name_plural = _("教育委員会")

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        try:
            codes.validate_board_code(self.code)
        except ValueError as exc:
            raise ValidationError({"code": str(exc)}) from exc
        if self.prefecture_id and self.code[:2] != self.prefecture_id:
            raise ValidationError(
                {"code": _("教育委員会コードの先頭2桁は都道府県コードと一致させてください。")}
            )


# The school types' names on screens (translated); codes.SCHOOL_TYPES keeps the Japanese names that codes and
# files use. A type missing here is shown by its Japanese name.
_SCHOOL_TYPE_LABELS = {
    "A1": _("幼稚園"),
    "A2": _("幼保連携型認定こども園"),
    "B1": _("小学校"),
    "C1": _("中学校"),
    "C2": _("義務教育学校"),
    "D1": _("高等学校"),
    "D2": _("中等教育学校"),
    "E1": _("特別支援学校"),
    "F1": _("大学"),
    "F2": _("短期大学"),
    "G1": _("高等専門学校"),
}
SCHOOL_TYPE_CHOICES = [
    (code, _SCHOOL_TYPE_LABELS.get(code, label)) for code, label in codes.SCHOOL_TYPES.items()
]


class School(TimestampedModel):
    """学校, identified by its 13-character 学校コード (type, prefecture, 設置区分, number, check digit)."""

    code = models.CharField(_("学校コード"), max_length=13, unique=True)
    name = models.CharField(_("学校名"), max_length=100)
    school_type = models.CharField(_("学校種"), max_length=2, choices=SCHOOL_TYPE_CHOICES)
    board = models.ForeignKey(
        Board, on_delete=models.PROTECT, related_name="schools", verbose_name=_("設置者")
    )
    prefecture = models.ForeignKey(Prefecture, on_delete=models.PROTECT, related_name="schools")
    address = models.CharField(_("所在地"), max_length=200, blank=True)
    phone = models.CharField(_("代表電話"), max_length=20, blank=True)
    is_active = models.BooleanField(_("運営中"), default=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("学校")
        verbose_name_plural = _("学校")

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        try:
            parsed = codes.validate_school_code(self.code)
        except ValueError as exc:
            raise ValidationError({"code": str(exc)}) from exc
        if parsed.school_type != self.school_type:
            raise ValidationError({"school_type": _("学校種が学校コードの先頭2文字と一致しません。")})
        if self.prefecture_id and parsed.prefecture_code != self.prefecture_id:
            raise ValidationError({"code": _("学校コードの都道府県が所在都道府県と一致しません。")})


class SchoolYear(TimestampedModel):
    """年度 of one school: 1 April to 31 March unless the board says otherwise."""

    school = models.ForeignKey(School, on_delete=models.CASCADE, related_name="years")
    year = models.PositiveIntegerField(_("年度"))
    start_date = models.DateField(_("開始日"))
    end_date = models.DateField(_("終了日"))

    class Meta:
        ordering = ["school", "-year"]
        constraints = [models.UniqueConstraint(fields=["school", "year"], name="uniq_school_year")]
        verbose_name = _("年度")
        verbose_name_plural = _("年度")

    def __str__(self) -> str:
        return f"{self.year}年度"

    @property
    def title(self) -> str:
        """2026年度（令和8年度）: how screens and documents name the year; FY2026 on English screens (as the
        fiscal_year template filter)."""
        if (translation.get_language() or "ja") != "ja":
            return f"FY{self.year}"
        return f"{wareki.fiscal_year_title(self.year)}（{wareki.fiscal_year_title(self.year, wareki=True)}）"

    def clean(self) -> None:
        if self.start_date and self.end_date and self.start_date >= self.end_date:
            raise ValidationError({"end_date": _("終了日は開始日より後にしてください。")})


class Term(models.Model):
    """学期 within a school year (2 or 3 terms, set by the board)."""

    school_year = models.ForeignKey(SchoolYear, on_delete=models.CASCADE, related_name="terms")
    number = models.PositiveSmallIntegerField(_("学期"))
    name = models.CharField(_("名称"), max_length=20)
    start_date = models.DateField(_("開始日"))
    end_date = models.DateField(_("終了日"))

    class Meta:
        ordering = ["school_year", "number"]
        constraints = [models.UniqueConstraint(fields=["school_year", "number"], name="uniq_term_number")]
        verbose_name = _("学期")
        verbose_name_plural = _("学期")

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.start_date and self.end_date and self.start_date > self.end_date:
            raise ValidationError({"end_date": _("終了日は開始日以降にしてください。")})
        year = getattr(self, "school_year", None)
        if (
            year
            and self.start_date
            and self.end_date
            and (self.start_date < year.start_date or self.end_date > year.end_date)
        ):
            raise ValidationError(_("学期は年度の期間内に収めてください。"))


class HomeroomClass(TimestampedModel):
    """学級 (homeroom) for one school year, including 特別支援学級."""

    class Kind(models.TextChoices):
        REGULAR = "regular", _("通常の学級")
        SPECIAL_NEEDS = "special_needs", _("特別支援学級")

    class SpecialNeedsCategory(models.TextChoices):
        """The kinds of 特別支援学級 that 学校教育法 §81(2) lists (自閉症・情緒障害 per MEXT notice 2009)."""

        INTELLECTUAL = "intellectual", _("知的障害")
        PHYSICAL = "physical", _("肢体不自由")
        HEALTH = "health", _("病弱・身体虚弱")
        LOW_VISION = "low_vision", _("弱視")
        HARD_OF_HEARING = "hard_of_hearing", _("難聴")
        SPEECH = "speech", _("言語障害")
        AUTISM_EMOTIONAL = "autism_emotional", _("自閉症・情緒障害")

    school_year = models.ForeignKey(SchoolYear, on_delete=models.CASCADE, related_name="classes")
    grade_code = models.CharField(
        _("学年"), max_length=2, choices=[(code, _(label)) for code, label in codes.GRADES.items()]
    )
    name = models.CharField(_("学級名"), max_length=30)
    kind = models.CharField(_("種別"), max_length=16, choices=Kind.choices, default=Kind.REGULAR)
    special_needs_category = models.CharField(
        _("障害種別"), max_length=30, blank=True, choices=SpecialNeedsCategory.choices
    )
    sort_order = models.PositiveSmallIntegerField(_("並び順"), default=0)

    class Meta:
        ordering = ["school_year", "grade_code", "sort_order", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["school_year", "grade_code", "name"], name="uniq_class_name_per_grade"
            )
        ]
        verbose_name = _("学級")
        verbose_name_plural = _("学級")

    def __str__(self) -> str:
        # Japanese whatever the screen's language: str() reaches API payloads, audit details, transfer records
        # and printed documents. Pages show display_label.
        return f"{codes.grade_label(self.grade_code)} {self.name}"

    @property
    def display_label(self) -> str:
        """「小学1年 1組」 in the screen's language: the grade translated, the class name as the school typed it."""
        return f"{codes.grade_display(self.grade_code)} {self.name}"

    @property
    def school(self) -> School:
        return self.school_year.school

    def clean(self) -> None:
        year = getattr(self, "school_year", None)
        if year is not None and self.grade_code not in codes.grades_for_school_type(year.school.school_type):
            raise ValidationError({"grade_code": _("この学校種にない学年です。")})
        if self.kind == self.Kind.REGULAR and self.special_needs_category:
            raise ValidationError({"special_needs_category": _("障害種別は特別支援学級にだけ設定できます。")})
        if self.kind == self.Kind.SPECIAL_NEEDS and not self.special_needs_category:
            raise ValidationError({"special_needs_category": _("特別支援学級には障害種別を選んでください。")})


class Role(models.TextChoices):
    """The roles of domain.md §1 / issue 2. Capabilities per role live in komu.access.roles."""

    OPERATOR = "operator", _("システム運用者")
    NATIONAL_ANALYST = "national_analyst", _("国の分析担当")
    PREFECTURAL_ANALYST = "prefectural_analyst", _("都道府県の分析担当")
    BOARD_OFFICER = "board_officer", _("教育委員会担当者")
    SCHOOL_ADMIN = "school_admin", _("学校事務・教頭")
    PRINCIPAL = "principal", _("校長")
    VICE_PRINCIPAL = "vice_principal", _("副校長")
    HOMEROOM_TEACHER = "homeroom_teacher", _("学級担任")
    TEACHER = "teacher", _("教員")
    SCHOOL_NURSE = "school_nurse", _("養護教諭")
    GUARDIAN = "guardian", _("保護者")


BOARD_ROLES = {Role.BOARD_OFFICER}
SCHOOL_ROLES = {
    Role.SCHOOL_ADMIN,
    Role.PRINCIPAL,
    Role.VICE_PRINCIPAL,
    Role.HOMEROOM_TEACHER,
    Role.TEACHER,
    Role.SCHOOL_NURSE,
}


class StaffAssignment(TimestampedModel):
    """配置: a user's role at an organisation. The scope of every read and write derives from these rows.

    Exactly one of prefecture/board/school applies, by role; a homeroom teacher's assignment also names the class.
    Guardians are not assigned here: their scope is their children (students.GuardianLink).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    role = models.CharField(
        _("役割"), max_length=24, choices=[c for c in Role.choices if c[0] != Role.GUARDIAN]
    )
    prefecture = models.ForeignKey(Prefecture, on_delete=models.PROTECT, null=True, blank=True)
    board = models.ForeignKey(Board, on_delete=models.PROTECT, null=True, blank=True)
    school = models.ForeignKey(School, on_delete=models.PROTECT, null=True, blank=True)
    homeroom_class = models.ForeignKey(HomeroomClass, on_delete=models.PROTECT, null=True, blank=True)
    start_date = models.DateField(_("開始日"), null=True, blank=True)
    end_date = models.DateField(_("終了日"), null=True, blank=True)

    class Meta:
        ordering = ["user", "role"]
        verbose_name = _("配置")
        verbose_name_plural = _("配置")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "role", "board", "school", "homeroom_class"], name="uniq_assignment"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_role_display()} @ {self.organisation_label}"

    @property
    def organisation_label(self) -> str:
        if self.homeroom_class_id:
            return f"{self.school} {self.homeroom_class}"
        if self.school_id:
            return str(self.school)
        if self.board_id:
            return str(self.board)
        if self.prefecture_id:
            return str(self.prefecture)
        return gettext("全国")

    @property
    def organisation_display(self) -> str:
        """organisation_label for pages: a class's grade in the screen's language."""
        if self.homeroom_class is not None:
            return f"{self.school} {self.homeroom_class.display_label}"
        return self.organisation_label

    @property
    def organisation_code(self) -> str:
        if self.school is not None:
            return self.school.code
        if self.board is not None:
            return self.board.code
        if self.prefecture_id:
            return str(self.prefecture_id)
        return ""

    def clean(self) -> None:
        role = self.role
        if role == Role.HOMEROOM_TEACHER and not self.homeroom_class_id:
            raise ValidationError({"homeroom_class": _("学級担任には担当学級を指定してください。")})
        if role in SCHOOL_ROLES and not self.school_id:
            raise ValidationError({"school": _("学校の役割には学校を指定してください。")})
        if role in BOARD_ROLES and not self.board_id:
            raise ValidationError({"board": _("教育委員会担当者には教育委員会を指定してください。")})
        if role == Role.PREFECTURAL_ANALYST and not self.prefecture_id:
            raise ValidationError({"prefecture": _("都道府県の分析担当には都道府県を指定してください。")})
        if role not in SCHOOL_ROLES and (self.school_id or self.homeroom_class_id):
            raise ValidationError(_("この役割には学校を指定できません。"))
        klass = self.homeroom_class
        if klass is not None and self.school_id and klass.school_year.school_id != self.school_id:
            raise ValidationError({"homeroom_class": _("担当学級は配置先の学校の学級にしてください。")})
        if self.start_date and self.end_date and self.start_date > self.end_date:
            raise ValidationError({"end_date": _("終了日は開始日以降にしてください。")})
