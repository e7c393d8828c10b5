"""Writes for OneRoster: the CSV export (a disclosure: reason asked, persons audited), the API clients of the
learning portals and their tokens. The import lives in komu.oneroster.importer."""

from __future__ import annotations

import datetime
import io
import secrets
import zipfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from komu.access import roles, scope
from komu.access.scope import Actor, Grant
from komu.audit.services import Scope as AuditScope
from komu.audit.services import audit_record
from komu.core.errors import PermissionDeniedError, ValidationFailed
from komu.core.text import TextError, reject_control_chars
from komu.directory.models import Role
from komu.oneroster import spec
from komu.oneroster.build import Scope, build_roster, gc_paused
from komu.oneroster.export import ExportFiles, PupilSync, write_files
from komu.oneroster.models import AccessToken, ApiClient
from komu.oneroster.selectors import export_schools

MAX_REASON = 200


def console_actor(*, board_ids: Collection[int] = ()) -> Actor:
    """Whoever runs `komu oneroster` on the server already holds the database: an operator, acting as the
    board officer of the boards concerned (so the registry's own services apply their usual checks)."""
    grants = [Grant(role=Role.OPERATOR, org_label="komu oneroster")]
    grants += [Grant(role=Role.BOARD_OFFICER, board_id=b, org_label="komu oneroster") for b in board_ids]
    return Actor(user=None, grants=tuple(grants))


def _clean_reason(reason: str) -> str:
    reason = reason.strip()
    errors: dict[str, list[str]] = {}
    try:
        reject_control_chars(reason, _("出力の理由"))
    except TextError as exc:
        errors["reason"] = [str(exc)]
    if not reason:
        errors["reason"] = [_("出力の理由を入力してください（例：学習eポータルへの年度当初の名簿登録）。")]
    elif len(reason) > MAX_REASON:
        errors["reason"] = [_("出力の理由は%(n)d文字以内で入力してください。") % {"n": MAX_REASON}]
    if errors:
        raise ValidationFailed(_("入力内容を確認してください。"), errors=errors)
    return reason


@dataclass
class ExportResult:
    """The files of an export, kept in spooled temporary files (`parts`): copy them out with `parts.copy_to`
    or `parts.write_zip`; `files` and `zip_bytes` read them whole (small exports, tests)."""

    parts: ExportFiles
    mode: str
    counts: dict[str, int] = field(default_factory=dict)
    persons: int = 0
    skipped_staff: int = 0

    @property
    def files(self) -> dict[str, bytes]:
        return {name: self.parts.read(name) for name in self.parts.names()}

    def zip_bytes(self) -> bytes:
        out = io.BytesIO()
        self.parts.write_zip(out)
        return out.getvalue()


def zip_files(files: Mapping[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name in ["manifest.csv", *(s.filename for s in spec.FILES)]:
            if name in files:
                archive.writestr(name, files[name])
    return out.getvalue()


def roster_export(
    *, actor: Actor, roster_scope: Scope, since: datetime.datetime | None, reason: str
) -> ExportResult:
    """OneRoster CSV files of the scope: bulk, or delta since a moment (active and tobedeleted rows).

    Audited as a disclosure: who, why, which schools and which persons (pupils' and staff's ids)."""
    scope.require(actor, roles.ONEROSTER_EXPORT)
    reason = _clean_reason(reason)
    allowed = set(export_schools(actor=actor).values_list("pk", flat=True))
    if not set(roster_scope.school_ids) <= allowed:
        raise PermissionDeniedError(_("この範囲の名簿を出力する権限がありません。"))
    mode = "delta" if since is not None else "bulk"
    detect_gone = roster_scope.is_current_year
    # A bulk export outside any caller's transaction stores the pupils' sourcedIds on a second connection
    # while it writes users.csv (PupilSync): that connection must see the same committed pupils.
    apart = since is None and connection.vendor == "postgresql" and not connection.in_atomic_block
    with transaction.atomic(), gc_paused():
        # Everything but the pupils is built in memory (a few thousand rows); the pupils' rows are streamed.
        roster = build_roster(roster_scope, detect_gone=detect_gone, pupils=False)
        with PupilSync(roster_scope, roster.year_ids, detect_gone=detect_gone, apart=apart) as sync:
            files, counts, person_ids = write_files(
                roster_scope, roster, since=since, tombstones=detect_gone, mode=mode, sync=sync
            )
        single_school = roster_scope.school_ids[0] if len(roster_scope.school_ids) == 1 else None
        audit_record(
            actor=actor.user,
            action="oneroster.export.created",
            object_type="oneroster.export",
            fields=["family_name", "given_name", "family_name_kana", "given_name_kana", "sex", "birth_date"],
            detail={
                "reason": reason,
                "mode": mode,
                "since": since.isoformat() if since else None,
                "year": roster_scope.year,
                "school_ids": list(roster_scope.school_ids),
                "counts": counts,
                "person_ids": person_ids,
            },
            scope=AuditScope(
                school_id=single_school,
                board_id=roster_scope.board_ids[0] if len(roster_scope.board_ids) == 1 else None,
            ),
        )
    return ExportResult(
        parts=files, mode=mode, counts=counts, persons=len(person_ids), skipped_staff=roster.skipped_staff
    )


# --- API clients -------------------------------------------------------------------------------------------------

SCOPE_CORE = "https://purl.imsglobal.org/spec/or/v1p2/scope/roster-core.readonly"
SCOPE_ROSTER = "https://purl.imsglobal.org/spec/or/v1p2/scope/roster.readonly"
SCOPE_DEMOGRAPHICS = "https://purl.imsglobal.org/spec/or/v1p2/scope/roster-demographics.readonly"
SCOPES = (SCOPE_CORE, SCOPE_ROSTER, SCOPE_DEMOGRAPHICS)
TOKEN_LIFETIME = datetime.timedelta(hours=1)
MAX_CLIENT_NAME = 100


@dataclass(frozen=True)
class IssuedClient:
    client: ApiClient
    secret: str  # shown once


def _client_board(actor: Actor, board_id: int) -> int:
    boards = {g.board_id for g in actor.grants_with(roles.ONEROSTER_CLIENTS) if g.board_id is not None}
    if board_id not in boards:
        raise PermissionDeniedError(_("この教育委員会の接続先を登録する権限がありません。"))
    return board_id


@transaction.atomic
def client_create(
    *,
    actor: Actor,
    board_id: int,
    name: str,
    school_ids: Collection[int],
    scopes: Collection[str],
    rate_limit_per_minute: int = 600,
) -> IssuedClient:
    """Register a learning portal for some of the board's schools. The secret is returned once; only its
    hash is kept."""
    scope.require(actor, roles.ONEROSTER_CLIENTS)
    _client_board(actor, board_id)
    errors: dict[str, list[str]] = {}
    name = name.strip()
    try:
        reject_control_chars(name, _("接続先の名称"))
    except TextError as exc:
        errors["name"] = [str(exc)]
    if not name:
        errors["name"] = [_("接続先の名称を入力してください（例：学習eポータル〇〇）。")]
    elif len(name) > MAX_CLIENT_NAME:
        errors["name"] = [_("接続先の名称は%(n)d文字以内で入力してください。") % {"n": MAX_CLIENT_NAME}]
    from komu.directory.models import School

    schools = list(School.objects.filter(pk__in=list(school_ids), board_id=board_id))
    if not schools or len(schools) != len(set(school_ids)):
        errors["schools"] = [_("対象の学校を1校以上、この教育委員会の学校から選んでください。")]
    unknown = [s for s in scopes if s not in SCOPES]
    if not scopes or unknown:
        errors["scopes"] = [_("スコープを1つ以上選んでください。")]
    if not 1 <= rate_limit_per_minute <= 100_000:
        errors["rate_limit_per_minute"] = [_("1分あたりの上限は 1〜100000 の整数にしてください。")]
    if errors:
        raise ValidationFailed(_("入力内容を確認してください。"), errors=errors)
    secret = secrets.token_urlsafe(32)
    client = ApiClient.objects.create(
        board_id=board_id,
        name=name,
        client_id="or-" + secrets.token_hex(10),
        secret_hash=ApiClient.hash(secret),
        scopes=sorted(set(scopes)),
        rate_limit_per_minute=rate_limit_per_minute,
        created_by=actor.user,
    )
    client.schools.set(schools)
    audit_record(
        actor=actor.user,
        action="oneroster.client.created",
        obj=client,
        fields=["name", "scopes"],
        detail={
            "client_id": client.client_id,
            "school_ids": sorted(s.pk for s in schools),
            "scopes": client.scopes,
        },
        scope=AuditScope(board_id=board_id),
    )
    return IssuedClient(client, secret)


@transaction.atomic
def client_revoke(*, actor: Actor, client_id: int) -> ApiClient:
    from komu.oneroster.selectors import client_get_for

    scope.require(actor, roles.ONEROSTER_CLIENTS)
    client = client_get_for(actor=actor, client_id=client_id)
    if client.revoked_at is None:
        client.revoked_at = timezone.now()
        client.save(update_fields=["revoked_at"])
        client.tokens.all().delete()
        audit_record(
            actor=actor.user,
            action="oneroster.client.revoked",
            obj=client,
            detail={"client_id": client.client_id},
            scope=AuditScope(board_id=client.board_id),
        )
    return client


class TokenRefused(Exception):
    """OAuth 2 error: `error` is the RFC 6749 code (invalid_client, invalid_scope, …)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass(frozen=True)
class IssuedToken:
    token: str
    scopes: list[str]
    expires_in: int


@transaction.atomic
def token_issue(*, client_id: str, client_secret: str, requested_scopes: Collection[str]) -> IssuedToken:
    """Client credentials grant: a bearer token for the requested scopes (all the client's when none asked)."""
    client = ApiClient.objects.filter(client_id=client_id, revoked_at__isnull=True).first()
    if client is None or not secrets.compare_digest(client.secret_hash, ApiClient.hash(client_secret)):
        raise TokenRefused("invalid_client", _("クライアントIDまたはシークレットが正しくありません。"))
    wanted = set(requested_scopes) or set(client.scopes)
    if not wanted <= set(client.scopes):
        raise TokenRefused("invalid_scope", _("このクライアントに許可されていないスコープが含まれています。"))
    raw = secrets.token_urlsafe(32)
    AccessToken.objects.filter(client=client, expires_at__lt=timezone.now()).delete()
    client.last_used_at = timezone.now()
    client.save(update_fields=["last_used_at"])
    AccessToken.objects.create(
        client=client,
        token_hash=ApiClient.hash(raw),
        scopes=sorted(wanted),
        expires_at=timezone.now() + TOKEN_LIFETIME,
    )
    audit_record(
        actor=None,
        action="oneroster.token.issued",
        obj=client,
        detail={"client_id": client.client_id, "scopes": sorted(wanted)},
        scope=AuditScope(board_id=client.board_id),
    )
    return IssuedToken(raw, sorted(wanted), int(TOKEN_LIFETIME.total_seconds()))


def token_authenticate(raw: str) -> AccessToken | None:
    token = (
        AccessToken.objects.select_related("client")
        .filter(
            token_hash=ApiClient.hash(raw), expires_at__gt=timezone.now(), client__revoked_at__isnull=True
        )
        .first()
    )
    return token


def rate_limit_hit(client: ApiClient) -> bool:
    """Count one request in the client's current minute; True when it is over its limit (→ 429)."""
    minute = int(timezone.now().timestamp() // 60)
    key = f"oneroster:rate:{client.client_id}:{minute}"
    if cache.add(key, 1, timeout=120):
        return client.rate_limit_per_minute < 1
    try:
        count = cache.incr(key)
    except ValueError:
        cache.set(key, 1, timeout=120)
        count = 1
    return count > client.rate_limit_per_minute


def api_read_record(*, client: ApiClient, path: str, person_ids: list[str]) -> None:
    """Audit what a learning portal read about persons (one event per response that names persons)."""
    with transaction.atomic():
        audit_record(
            actor=None,
            action="oneroster.api.read",
            obj=client,
            detail={"client_id": client.client_id, "path": path, "person_ids": person_ids},
            scope=AuditScope(board_id=client.board_id),
        )
