"""出欠: the school calendar, each school's attendance rules, daily marks and the monthly 出席簿.

The arithmetic of domain.md §3 lives in komu/attendance/arithmetic.py (pure functions over these rows); a mark is
stored only for an exception — a pupil with no mark on an entered day was present. Categories that aggregates need
(kind, reason category, disease) are plain codes attached to a pupil's UUID, never to a name; free text (symptoms,
notes) is encrypted.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from komu.core.models import PersonalDataModel, TimestampedModel
from komu.directory.models import HomeroomClass, School, SchoolYear
from komu.security.fields import EncryptedTextField


class MarkKind(models.TextChoices):
    """One mark per pupil per school day. 出席 is the absence of a mark (or an explicit one after a change)."""

    PRESENT = "present", _("出席")
    ABSENT = "absent", _("欠席")
    LATE = "late", _("遅刻")
    EARLY_LEAVE = "early_leave", _("早退")
    LATE_AND_EARLY = "late_early", _("遅刻・早退")
    SUSPENSION = "suspension", _("出席停止")
    MOURNING = "mourning", _("忌引")
    OFFICIAL = "official", _("公欠")


# The symbols of the paper 出席簿 (domain.md §3), shown in the monthly register and its PDF.
PAPER_SYMBOL = {
    MarkKind.PRESENT: "",
    MarkKind.LATE: "チ",
    MarkKind.EARLY_LEAVE: "早",
    MarkKind.LATE_AND_EARLY: "チ早",
    MarkKind.SUSPENSION: "停",
    MarkKind.MOURNING: "忌",
    MarkKind.OFFICIAL: "公",
}


class AbsenceReason(models.TextChoices):
    ILLNESS = "illness", _("病気")
    ACCIDENT = "accident", _("事故")
    OTHER = "other", _("その他")


ABSENCE_SYMBOL = {AbsenceReason.ILLNESS: "病", AbsenceReason.ACCIDENT: "事", AbsenceReason.OTHER: "他"}


class SuspensionKind(models.TextChoices):
    INFECTIOUS = "infectious", _("感染症（学校保健安全法第19条）")
    CONDUCT = "conduct", _("性行不良（学校教育法第35条）")
    DISASTER = "disaster", _("非常変災")
    OTHER = "other", _("その他校長が認める事由")


class Disease(models.TextChoices):
    """Infectious diseases for 出席停止 (学校保健安全法施行規則 §18); the list is the common subset schools report."""

    INFLUENZA = "influenza", _("インフルエンザ")
    COVID19 = "covid19", _("新型コロナウイルス感染症")
    PERTUSSIS = "pertussis", _("百日咳")
    MEASLES = "measles", _("麻しん")
    MUMPS = "mumps", _("流行性耳下腺炎")
    RUBELLA = "rubella", _("風しん")
    VARICELLA = "varicella", _("水痘")
    PHARYNGOCONJUNCTIVAL = "pcf", _("咽頭結膜熱")
    TUBERCULOSIS = "tuberculosis", _("結核")
    EPIDEMIC_KERATOCONJUNCTIVITIS = "ekc", _("流行性角結膜炎")
    GASTROENTERITIS = "gastroenteritis", _("感染性胃腸炎")
    OTHER = "other", _("その他の感染症")


class MarkSource(models.TextChoices):
    TEACHER = "teacher", _("担任が入力")
    GUARDIAN = "guardian", _("保護者の連絡（アプリ）")
    PHONE = "phone", _("保護者の連絡（電話）")
    AMENDMENT = "amendment", _("承認後の訂正")


def default_bereavement_limits() -> dict[str, int]:
    # Days of 忌引 by degree of kinship (親等): a common municipal rule, configurable per school.
    return {"1": 7, "2": 3, "3": 1}


def default_excused_kinds() -> list[str]:
    return [MarkKind.SUSPENSION, MarkKind.MOURNING]


def default_reasons() -> list[dict[str, str]]:
    return [
        {"code": "fever", "label": "発熱", "category": AbsenceReason.ILLNESS},
        {"code": "cold", "label": "かぜ症状（せき・鼻水）", "category": AbsenceReason.ILLNESS},
        {"code": "stomach", "label": "腹痛・嘔吐・下痢", "category": AbsenceReason.ILLNESS},
        {"code": "hospital", "label": "通院", "category": AbsenceReason.ILLNESS},
        {"code": "family", "label": "家庭の事情", "category": AbsenceReason.ACCIDENT},
        {"code": "other", "label": "その他", "category": AbsenceReason.OTHER},
    ]


def default_symptoms() -> list[dict[str, str]]:
    return [
        {"code": "fever", "label": "発熱"},
        {"code": "cough", "label": "せき"},
        {"code": "sore_throat", "label": "のどの痛み"},
        {"code": "headache", "label": "頭痛"},
        {"code": "stomachache", "label": "腹痛"},
        {"code": "vomiting", "label": "嘔吐"},
        {"code": "diarrhea", "label": "下痢"},
        {"code": "rash", "label": "発疹"},
    ]


def default_weekdays() -> list[int]:
    return [0, 1, 2, 3, 4]  # Monday–Friday


class AttendanceRules(TimestampedModel):
    """Each school's local rules (domain.md §3: they vary and must be configurable)."""

    school = models.OneToOneField(School, on_delete=models.CASCADE, related_name="attendance_rules")
    official_absence_counts_as_present = models.BooleanField("公欠を出席として数える", default=True)
    lates_per_absence = models.PositiveSmallIntegerField(
        "遅刻・早退の何回で欠席1日とするか（0 は換算しない）", default=0
    )
    bereavement_limits = models.JSONField("忌引の日数（親等ごと）", default=default_bereavement_limits)
    excused_kinds = models.JSONField("出席停止・忌引等に数える区分", default=default_excused_kinds)
    weekdays = models.JSONField("授業を行う曜日（0=月）", default=default_weekdays)
    report_cutoff = models.TimeField("保護者連絡の締切時刻", default=datetime.time(8, 0))
    report_reasons = models.JSONField("保護者連絡の理由の選択肢", default=default_reasons)
    report_symptoms = models.JSONField("保護者連絡の症状の選択肢", default=default_symptoms)
    per_period = models.BooleanField("時限ごとに記録する（高等学校）", default=False)
    periods_per_day = models.PositiveSmallIntegerField("1日の時限数", default=6)

    class Meta:
        verbose_name = "出欠の規則"
        verbose_name_plural = "出欠の規則"

    def __str__(self) -> str:
        return f"{self.school} の出欠規則"


class CalendarDay(models.Model):
    """An exception to the weekday rule in one school year: an extra school day (土曜授業), a holiday (長期休業,
    振替休業), or a school-wide closure (臨時休業). National holidays come from jpholiday and need no row."""

    class Kind(models.TextChoices):
        SCHOOL_DAY = "school_day", _("授業日")
        HOLIDAY = "holiday", _("休業日")
        SCHOOL_CLOSURE = "school_closure", _("臨時休業")

    school_year = models.ForeignKey(SchoolYear, on_delete=models.CASCADE, related_name="calendar_days")
    date = models.DateField("日付")
    kind = models.CharField("種別", max_length=16, choices=Kind.choices)
    note = models.CharField("備考", max_length=100, blank=True)

    class Meta:
        ordering = ["school_year", "date"]
        constraints = [models.UniqueConstraint(fields=["school_year", "date"], name="uniq_calendar_day")]
        verbose_name = "学校カレンダーの日"
        verbose_name_plural = "学校カレンダーの日"

    def __str__(self) -> str:
        return f"{self.date} {self.get_kind_display()}"

    def clean(self) -> None:
        year = getattr(self, "school_year", None)
        if year and self.date and not (year.start_date <= self.date <= year.end_date):
            raise ValidationError({"date": "年度の期間内の日付を指定してください。"})


class ClassClosure(TimestampedModel):
    """学級閉鎖: the days count as 出席停止・忌引等 for every pupil of the class (学校保健安全法 §20)."""

    homeroom_class = models.ForeignKey(HomeroomClass, on_delete=models.CASCADE, related_name="closures")
    start_date = models.DateField("開始日")
    end_date = models.DateField("終了日")
    disease = models.CharField("原因の感染症", max_length=20, choices=Disease.choices, blank=True)
    note = models.CharField("備考", max_length=100, blank=True)

    class Meta:
        ordering = ["homeroom_class", "start_date"]
        verbose_name = "学級閉鎖"
        verbose_name_plural = "学級閉鎖"

    def __str__(self) -> str:
        return f"{self.homeroom_class} {self.start_date}〜{self.end_date}"

    def clean(self) -> None:
        if self.start_date and self.end_date and self.start_date > self.end_date:
            raise ValidationError({"end_date": "終了日は開始日以降にしてください。"})


class DailyRegister(TimestampedModel):
    """One class's register for one day: that it was entered, by whom. The principal's overview lists the classes
    without one; a pupil without a Mark on an entered day was present."""

    homeroom_class = models.ForeignKey(HomeroomClass, on_delete=models.CASCADE, related_name="daily_registers")
    date = models.DateField("日付")
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    entered_at = models.DateTimeField("入力日時")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["homeroom_class", "date"], name="uniq_daily_register")]
        verbose_name = "日々の出席簿"
        verbose_name_plural = "日々の出席簿"

    def __str__(self) -> str:
        return f"{self.homeroom_class} {self.date}"


class Mark(PersonalDataModel):
    """An exception in the register: one pupil, one day. `version` gives optimistic concurrency: a save carries
    the version it was based on, and a stale one is refused with the current value shown."""

    student = models.ForeignKey("students.Student", on_delete=models.CASCADE, related_name="attendance_marks")
    homeroom_class = models.ForeignKey(HomeroomClass, on_delete=models.CASCADE, related_name="marks")
    date = models.DateField("日付", db_index=True)
    kind = models.CharField("区分", max_length=16, choices=MarkKind.choices)
    absence_reason = models.CharField("欠席理由", max_length=10, choices=AbsenceReason.choices, blank=True)
    suspension_kind = models.CharField("出席停止の事由", max_length=12, choices=SuspensionKind.choices, blank=True)
    disease = models.CharField("感染症", max_length=20, choices=Disease.choices, blank=True)
    kinship_degree = models.PositiveSmallIntegerField("忌引の親等", null=True, blank=True)
    detail = EncryptedTextField("症状・備考", blank=True, default="")
    source = models.CharField("入力元", max_length=10, choices=MarkSource.choices, default=MarkSource.TEACHER)
    guardian_report = models.ForeignKey(
        "attendance.GuardianReport", on_delete=models.SET_NULL, null=True, blank=True, related_name="marks"
    )
    version = models.PositiveIntegerField(default=1)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["homeroom_class", "date"]
        constraints = [models.UniqueConstraint(fields=["student", "date"], name="uniq_mark_per_day")]
        indexes = [models.Index(fields=["homeroom_class", "date"], name="mark_class_date")]
        verbose_name = "出欠の記録"
        verbose_name_plural = "出欠の記録"

    def __str__(self) -> str:
        return f"{self.date} {self.get_kind_display()}"

    def clean(self) -> None:
        if self.kind == MarkKind.ABSENT and not self.absence_reason:
            raise ValidationError({"absence_reason": "欠席の理由（病気・事故・その他）を選んでください。"})
        if self.kind != MarkKind.ABSENT and self.absence_reason:
            raise ValidationError({"absence_reason": "欠席理由は欠席のときだけ指定できます。"})
        if self.kind == MarkKind.SUSPENSION and not self.suspension_kind:
            raise ValidationError({"suspension_kind": "出席停止の事由を選んでください。"})
        if self.suspension_kind == SuspensionKind.INFECTIOUS and not self.disease:
            raise ValidationError({"disease": "感染症による出席停止では感染症名を選んでください。"})
        if self.kind == MarkKind.MOURNING and not self.kinship_degree:
            raise ValidationError({"kinship_degree": "忌引の親等を選んでください。"})


class PeriodMark(TimestampedModel):
    """時限ごとの出欠 (high schools): the daily Mark derives from these by the school's rule."""

    student = models.ForeignKey("students.Student", on_delete=models.CASCADE, related_name="period_marks")
    homeroom_class = models.ForeignKey(HomeroomClass, on_delete=models.CASCADE, related_name="period_marks")
    date = models.DateField("日付")
    period = models.PositiveSmallIntegerField("時限")
    kind = models.CharField("区分", max_length=16, choices=MarkKind.choices)
    version = models.PositiveIntegerField(default=1)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["student", "date", "period"], name="uniq_period_mark")]
        verbose_name = "時限ごとの出欠"
        verbose_name_plural = "時限ごとの出欠"

    def __str__(self) -> str:
        return f"{self.date} {self.period}限 {self.get_kind_display()}"


class MarkChange(models.Model):
    """Every change to a pupil's day, kept for ever with the register: the digital 訂正印. Amendments after
    approval carry a reason; the monthly register shows the old value struck through with who and when."""

    student = models.ForeignKey("students.Student", on_delete=models.CASCADE, related_name="+")
    homeroom_class = models.ForeignKey(HomeroomClass, on_delete=models.CASCADE, related_name="mark_changes")
    date = models.DateField("日付")
    old_kind = models.CharField(max_length=16, choices=MarkKind.choices)
    old_reason = models.CharField(max_length=10, blank=True)
    new_kind = models.CharField(max_length=16, choices=MarkKind.choices)
    new_reason = models.CharField(max_length=10, blank=True)
    is_amendment = models.BooleanField("承認後の訂正", default=False)
    amendment_reason = models.CharField("訂正理由", max_length=200, blank=True)
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    changed_at = models.DateTimeField()
    # The pupil's day's version after this change. A day set back to 出席 has no Mark row, so its version lives
    # here: a save based on a version from before the deletion must still be refused (no ABA).
    version = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["homeroom_class", "date", "changed_at"]
        indexes = [models.Index(fields=["homeroom_class", "date"], name="markchange_class_date")]
        verbose_name = "出欠の訂正履歴"
        verbose_name_plural = "出欠の訂正履歴"

    def __str__(self) -> str:
        return f"{self.date} {self.old_kind}→{self.new_kind}"


class GuardianReport(PersonalDataModel):
    """A guardian's 欠席・遅刻・早退 report from a phone. Kept as proof of the guardian's intent (MEXT
    2文科初第1026号): login id, time, content and its hash; the health content (symptoms, note) is encrypted."""

    class Kind(models.TextChoices):
        ABSENT = "absent", _("欠席")
        LATE = "late", _("遅刻")
        EARLY_LEAVE = "early_leave", _("早退")

    student = models.ForeignKey("students.Student", on_delete=models.CASCADE, related_name="guardian_reports")
    guardian_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    login_id = models.CharField("ログインID（送信時）", max_length=150)
    date = models.DateField("対象日")
    kind = models.CharField("連絡の種類", max_length=12, choices=Kind.choices)
    reason_code = models.CharField("理由", max_length=30)
    reason_category = models.CharField("理由の区分", max_length=10, choices=AbsenceReason.choices)
    symptoms = EncryptedTextField("症状", blank=True, default="")
    note = EncryptedTextField("連絡事項", blank=True, default="")
    expected_time = models.TimeField("登校・下校予定時刻", null=True, blank=True)
    submitted_at = models.DateTimeField("送信日時")
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    content_hash = models.CharField("送信内容のハッシュ", max_length=64)
    read_at = models.DateTimeField("既読日時", null=True, blank=True)
    read_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                related_name="+")
    withdrawn_at = models.DateTimeField("取消日時", null=True, blank=True)

    class Meta:
        ordering = ["-submitted_at"]
        indexes = [models.Index(fields=["date", "student"], name="report_date_student")]
        verbose_name = "保護者からの欠席連絡"
        verbose_name_plural = "保護者からの欠席連絡"

    def __str__(self) -> str:
        return f"{self.date} {self.get_kind_display()}"


class MonthlyRegister(TimestampedModel):
    """月の出席簿 of one class: submitted by the homeroom teacher and approved through komu.approvals. `content_hash`
    is the canonical hash of the month's marks and totals at submission: each approval seal signs it."""

    class Status(models.TextChoices):
        OPEN = "open", _("入力中")
        SUBMITTED = "submitted", _("決裁中")
        APPROVED = "approved", _("承認済み")
        AMENDED = "amended", _("訂正あり（再決裁待ち）")
        LOCKED = "locked", _("年度末確定")

    homeroom_class = models.ForeignKey(HomeroomClass, on_delete=models.CASCADE, related_name="monthly_registers")
    year = models.PositiveIntegerField("年")
    month = models.PositiveSmallIntegerField("月")
    status = models.CharField("状態", max_length=12, choices=Status.choices, default=Status.OPEN)
    content_hash = models.CharField(max_length=64, blank=True)
    approval = models.ForeignKey(
        "approvals.ApprovalRequest", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["homeroom_class", "year", "month"]
        constraints = [
            models.UniqueConstraint(fields=["homeroom_class", "year", "month"], name="uniq_monthly_register")
        ]
        verbose_name = "月の出席簿"
        verbose_name_plural = "月の出席簿"

    def __str__(self) -> str:
        return f"{self.homeroom_class} {self.year}年{self.month}月"


class SaveReceipt(models.Model):
    """A save from the morning-entry screen that has been applied, by its idempotency key: a POST retried after a
    lost response is recognised and answered with the current row instead of being applied twice. Receipts are
    only needed while a tablet may still retry; retention removes them after a few days."""

    key = models.CharField(max_length=64)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    student = models.ForeignKey("students.Student", on_delete=models.CASCADE, related_name="+")
    date = models.DateField()
    response_version = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["actor", "key"], name="uniq_save_receipt")]
        verbose_name = "保存の受付記録"
        verbose_name_plural = "保存の受付記録"

    def __str__(self) -> str:
        return f"{self.key} → v{self.response_version}"


class LongAbsenceCategory(models.TextChoices):
    """The reason categories of MEXT's 児童生徒の問題行動・不登校等生徒指導上の諸課題に関する調査 (長期欠席)."""

    ILLNESS = "illness", _("病気")
    ECONOMIC = "economic", _("経済的理由")
    FUTOKO = "futoko", _("不登校")
    OTHER = "other", _("その他")


class LongAbsenceRecord(TimestampedModel):
    """長期欠席 (30 days or more in a school year): the reason category the school reports to MEXT for a pupil."""

    student = models.ForeignKey("students.Student", on_delete=models.CASCADE, related_name="long_absence_records")
    school_year = models.ForeignKey(SchoolYear, on_delete=models.CASCADE, related_name="long_absence_records")
    category = models.CharField("長期欠席の理由の区分", max_length=10, choices=LongAbsenceCategory.choices)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField("記録日時")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["student", "school_year"], name="uniq_long_absence_per_year")
        ]
        verbose_name = "長期欠席の理由"
        verbose_name_plural = "長期欠席の理由"

    def __str__(self) -> str:
        return f"{self.school_year} {self.get_category_display()}"
