"""校外活動 (trips and outside activities): the participants' emergency contacts and the health notes the school
nurse released are readable on each chaperone's phone during the trip's window only, so that no list needs to be
printed and carried (domain.md §6: the lists lost on school trips).

Access is checked on every request against the window and the chaperone's revocation; nothing is cached on the
device (offline mode is not built).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from komu.core.models import PersonalDataModel, TimestampedModel
from komu.directory.models import HomeroomClass, School
from komu.security.fields import EncryptedTextField
from komu.students.models import Student


class Trip(TimestampedModel):
    """A trip or outside activity (修学旅行, 遠足, 校外学習 …) of one school."""

    school = models.ForeignKey(School, on_delete=models.PROTECT, related_name="+")
    title = models.CharField("名称", max_length=100)
    starts_at = models.DateTimeField("閲覧開始")
    ends_at = models.DateTimeField("閲覧終了")
    classes = models.ManyToManyField(HomeroomClass, blank=True, related_name="+", verbose_name="参加学級")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                   verbose_name="作成者")

    class Meta:
        ordering = ["-starts_at"]
        constraints = [models.CheckConstraint(condition=models.Q(ends_at__gt=models.F("starts_at")),
                                              name="trip_window_ordered")]
        verbose_name = "校外活動"
        verbose_name_plural = "校外活動"

    def __str__(self) -> str:
        return self.title


class TripParticipant(TimestampedModel):
    """A pupil taking part (whole classes are expanded into their pupils when the trip is set up)."""

    trip = models.ForeignKey(Trip, on_delete=models.CASCADE, related_name="participants")
    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["trip", "student"], name="uniq_trip_participant")]
        verbose_name = "参加者"
        verbose_name_plural = "参加者"

    def __str__(self) -> str:
        return f"参加者 {self.student_id}"


class TripChaperone(TimestampedModel):
    """引率者: a staff member of the school who reads the contacts during the window, until revoked. The lost-phone
    code (kept as a hash only) lets them report the loss from any device without signing in.

    One row is one time a person was a chaperone of the trip (from `created_at`). Removing them when the trip is
    edited (解除) keeps the row with `removed_at`/`removed_by`, so the trip's page can say who could read the
    contacts and until when; a removed row grants nothing, and every lookup of chaperones filters on
    `removed_at__isnull=True` (komu.trips.selectors and services). Adding the same person again makes a new row,
    hence the uniqueness only among rows not removed. Revocation (取消, lost phone) is different: the chaperone
    stays on the trip, refused, and cannot be chosen again."""

    trip = models.ForeignKey(Trip, on_delete=models.CASCADE, related_name="chaperones")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                             verbose_name="引率者")
    revoked_at = models.DateTimeField("取消日時", null=True, blank=True)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="+", verbose_name="取消者")
    revoke_reason = models.CharField("取消の理由", max_length=200, blank=True, default="")
    lost_code_hash = models.CharField("紛失届コード（ハッシュ）", max_length=64, blank=True, default="",
                                      db_index=True)
    removed_at = models.DateTimeField("解除日時", null=True, blank=True)
    removed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="+", verbose_name="解除した人")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["trip", "user"], condition=models.Q(removed_at__isnull=True),
                                               name="uniq_trip_chaperone_current")]
        verbose_name = "引率者"
        verbose_name_plural = "引率者"

    def __str__(self) -> str:
        return f"引率者 {self.user_id}"


class TripHealthRelease(PersonalDataModel):
    """A health note (allergies, medication) the school nurse released to the chaperones for this trip."""

    trip = models.ForeignKey(Trip, on_delete=models.CASCADE, related_name="health_releases")
    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="+")
    note = EncryptedTextField("引率者に伝える健康上の配慮")
    released_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                    verbose_name="公開した養護教諭")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["trip", "student"], name="uniq_trip_health_release")]
        verbose_name = "健康上の配慮の公開"
        verbose_name_plural = "健康上の配慮の公開"

    def __str__(self) -> str:
        return f"健康上の配慮 {self.student_id}"


class TripIncident(PersonalDataModel):
    """A lost phone reported by a chaperone (signed in elsewhere, or with the lost-phone code): the access was
    revoked at the same moment. `privacy_incident` names the breach-response incident when one was drafted."""

    trip = models.ForeignKey(Trip, on_delete=models.PROTECT, related_name="incidents")
    chaperone = models.ForeignKey(TripChaperone, on_delete=models.PROTECT, related_name="incidents")
    reported_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="+", verbose_name="届出者")
    channel = models.CharField("届出の方法", max_length=12,
                               choices=[("signed_in", "サインインして届出"), ("code", "紛失届コード")])
    note = EncryptedTextField("状況", blank=True, default="")
    person_count = models.PositiveIntegerField("閲覧できた児童生徒の数")
    privacy_incident = models.CharField("事故報告の番号", max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "端末紛失の届出"
        verbose_name_plural = "端末紛失の届出"

    def __str__(self) -> str:
        return f"端末紛失 {self.created_at:%Y-%m-%d}"
