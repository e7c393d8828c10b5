"""OneRoster 1.2 Japan Profile: stable sourcedIds, tombstones and the API clients of the learning portals.

Komu's directory keys are integers that mean nothing outside this database; OneRoster needs identifiers that
never change for a person, a class or an organisation. `RosterObject` gives each exported object one UUID the
first time it is exported or imported and keeps it (pupils and staff keep their own UUID keys as sourcedId).
The same row is the tombstone: when a later export no longer finds the object (membership removed, pupil no
longer enrolled, assignment ended) it stamps `gone_at`, and delta exports list it as `tobedeleted`.
"""

from __future__ import annotations

import hashlib
import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from komu.directory.models import Board, School


class RosterObject(models.Model):
    """One OneRoster object as Komu knows it: its kind, Komu's key for it and its sourcedId."""

    class Kind(models.TextChoices):
        DISTRICT = "district", _("教育委員会（district）")
        SCHOOL = "school", _("学校（school）")
        SCHOOL_YEAR = "schoolYear", _("年度（schoolYear）")
        TERM = "term", _("学期（term）")
        COURSE = "course", _("コース（学年）")
        CLASS = "class", _("学級（homeroom）")
        STUDENT = "student", _("児童生徒")
        STAFF = "staff", _("教職員")
        STUDENT_ROLE = "studentRole", _("児童生徒の所属")
        STAFF_ROLE = "staffRole", _("教職員の所属")
        STUDENT_ENROLLMENT = "studentEnrollment", _("学級在籍")
        TEACHER_ENROLLMENT = "teacherEnrollment", _("学級担任")

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField("種類", max_length=20, choices=Kind.choices)
    local_key = models.CharField("Komu のキー", max_length=80)
    sourced_id = models.CharField("sourcedId", max_length=64)
    # The (board|school, kind) indexes below serve the foreign keys too: a large board's first export inserts
    # 300,000 rows, and each index is a good part of an insert's cost.
    board = models.ForeignKey(
        Board, on_delete=models.CASCADE, null=True, blank=True, related_name="+", db_index=False
    )
    school = models.ForeignKey(
        School, on_delete=models.CASCADE, null=True, blank=True, related_name="+", db_index=False
    )
    first_seen_at = models.DateTimeField("最初の出力・取込", auto_now_add=True)
    gone_at = models.DateTimeField("削除を検出した日時", null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "local_key"], name="uniq_oneroster_object"),
            # A constraint rather than unique=True: PostgreSQL then has no second, LIKE-only index on the column
            # (sourcedIds are never searched by LIKE).
            models.UniqueConstraint(fields=["sourced_id"], name="uniq_oneroster_sourced_id"),
        ]
        indexes = [
            models.Index(fields=["school", "kind"]),
            # Only districts have a board: a pupil's row costs this index nothing.
            models.Index(
                fields=["board", "kind"],
                condition=models.Q(board__isnull=False),
                name="oneroster_board_objects",
            ),
            # The tombstones, few beside the live rows: a delta export lists them, and an export finds the ones
            # that came back without looking at every live row.
            models.Index(
                fields=["kind", "gone_at"],
                condition=models.Q(gone_at__isnull=False),
                name="oneroster_tombstones",
            ),
        ]
        verbose_name = "OneRoster オブジェクト"
        verbose_name_plural = "OneRoster オブジェクト"

    def __str__(self) -> str:
        return f"{self.kind} {self.sourced_id}"


class ApiClient(models.Model):
    """A learning portal's OAuth 2 client (client credentials). Registered by a board officer for some of the
    board's schools; only the SHA-256 of the secret is kept (shown once)."""

    id = models.BigAutoField(primary_key=True)
    board = models.ForeignKey(Board, on_delete=models.PROTECT, related_name="oneroster_clients")
    name = models.CharField("接続先の名称", max_length=100)
    client_id = models.CharField("クライアントID", max_length=64, unique=True)
    secret_hash = models.CharField(max_length=64)
    scopes = models.JSONField("スコープ", default=list)
    schools = models.ManyToManyField(School, related_name="+", verbose_name="対象の学校")
    rate_limit_per_minute = models.PositiveIntegerField("1分あたりの上限", default=600)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["board", "name"]
        verbose_name = "OneRoster API クライアント"
        verbose_name_plural = "OneRoster API クライアント"

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def hash(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()


class AccessToken(models.Model):
    """A bearer token issued at the token endpoint; only its SHA-256 is stored."""

    id = models.BigAutoField(primary_key=True)
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="tokens")
    token_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "OneRoster アクセストークン"
        verbose_name_plural = "OneRoster アクセストークン"

    def __str__(self) -> str:
        return f"token {self.pk}"


def new_sourced_id() -> str:
    return str(uuid.uuid4())
