"""Writes of the progress database: measuring, rollups, the 校務DX checklist and federation.

Every write is atomic and audited (`progress.*` action codes). Measuring and rollups are batch work run by
`komu progress measure` (and after a checklist submission or a received snapshot); pages only read the
precomputed rows (selectors.py).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tink
from django.db import transaction
from django.db.models import Count, F, Max, Q, Sum
from django.utils import timezone
from tink import json_proto_keyset_format, signature

from komu.access import roles
from komu.access.scope import Actor, boards_for, get_in_scope, require, schools_for
from komu.audit.services import Scope, audit_record
from komu.core import codes
from komu.core.errors import PermissionDeniedError, ValidationFailed
from komu.core.wareki import fiscal_year_of
from komu.directory.models import Board, Role, School
from komu.progress import indicators, measure
from komu.progress.models import (
    ChecklistAnswer,
    ChecklistItem,
    ChecklistResponse,
    FederationMember,
    FederationSnapshot,
    IndicatorValue,
    PushState,
    Rollup,
)
from komu.security.keys import get_keyring

signature.register()

LOCAL = "local"
FIXTURE = Path(__file__).parent / "fixtures" / "checklist_items.json"
# The message signed by a deployment: a fixed prefix keeps a snapshot signature from ever being valid as an
# approval seal (the same Ed25519 keyset signs both).
SIGNING_CONTEXT = b"komu-progress-snapshot-v1\n"
TIMESTAMP_WINDOW = datetime.timedelta(minutes=5)
MAX_SNAPSHOT_BYTES = 20 * 1024 * 1024


def first_of_month(day: datetime.date) -> datetime.date:
    return day.replace(day=1)


# --- measuring and rollups ---------------------------------------------------------------------------------------


def _store(rows: list[IndicatorValue]) -> None:
    IndicatorValue.objects.bulk_create(
        rows, batch_size=2000, update_conflicts=True, unique_fields=["school_code", "month", "indicator"],
        update_fields=["source", "school_name", "board_code", "board_name", "prefecture_code", "numerator",
                       "denominator", "value", "measured_at"],
    )


def _row(school: School, month: datetime.date, code: str, figure: measure.Figure,
         now: datetime.datetime) -> IndicatorValue:
    num, den, value = figure
    return IndicatorValue(source=LOCAL, school_code=school.code, school_name=school.name,
                          board_code=school.board.code, board_name=school.board.name,
                          prefecture_code=school.prefecture_id, month=month, indicator=code, numerator=num,
                          denominator=den, value=value, measured_at=now)


def _measure(schools: Any, month: datetime.date, user: Any) -> int:
    now = timezone.now()
    with transaction.atomic():
        rows = [_row(school, month, code, figure, now)
                for school in schools for code, figure in measure.measure_school(school, month).items()]
        _store(rows)
        rollups_refresh(months=[month])
        audit_record(actor=user, action="progress.indicators.measured",
                     object_type="progress.month", object_id=f"{month:%Y-%m}",
                     detail={"values": len(rows), "schools": len({r.school_code for r in rows})})
    return len(rows)


def indicators_measure(*, actor: Actor | None, month: datetime.date, school_ids: list[int] | None = None) -> int:
    """Measure every indicator of the local active schools for `month` and refresh that month's rollups.
    Run by `komu progress measure` (actor None: the system) or by an operator."""
    if actor is not None:
        require(actor, roles.PROGRESS_FEDERATION)
    month = first_of_month(month)
    if month > timezone.localdate():
        raise ValidationFailed("まだ始まっていない月は計測できません。")
    schools = School.objects.filter(is_active=True).select_related("board")
    if school_ids is not None:
        schools = schools.filter(pk__in=school_ids)
    return _measure(schools, month, actor.user if actor else None)


MEASURING_ROLES = frozenset({Role.BOARD_OFFICER, Role.PRINCIPAL, Role.VICE_PRINCIPAL})


def indicators_measure_own(*, actor: Actor) -> int:
    """「最新の値に更新」: a board officer (its schools) or a principal (their school) measures this month and the
    previous one now instead of waiting for the nightly run. Analysts cannot: their reach is a prefecture or the nation."""
    require(actor, roles.PROGRESS_VIEW)
    grants = [g for g in actor.grants_with(roles.PROGRESS_VIEW) if g.role in MEASURING_ROLES]
    if not grants:
        raise PermissionDeniedError("最新の値への更新は、教育委員会の担当者と校長・副校長が行えます。")
    q = Q(pk__in=[])
    for g in grants:
        if g.board_id is not None:
            q |= Q(board_id=g.board_id) | Q(board__parent_id=g.board_id)
        if g.school_id is not None:
            q |= Q(pk=g.school_id)
    schools = School.objects.filter(q, is_active=True).select_related("board")
    this_month = timezone.localdate().replace(day=1)
    previous = (this_month - datetime.timedelta(days=1)).replace(day=1)
    # Last month too: its registers are approved in the first days of this one.
    return _measure(schools, previous, actor.user) + _measure(schools, this_month, actor.user)


def _add(acc: dict[tuple[str, str, str], list[Any]], level: str, key: str, name: str, pref: str, ind: str,
         g: dict[str, Any]) -> None:
    slot = acc.setdefault((level, key, ind), [name, pref, 0, 0, 0.0, 0, 0])
    slot[2] += g["num"] or 0
    slot[3] += g["den"] or 0
    slot[4] += g["wv"] or 0.0
    slot[5] += g["w"] or 0
    slot[6] += g["n"]


def rollups_refresh(*, months: list[datetime.date], indicator_codes: list[str] | None = None) -> int:
    """Recompute the board, prefecture and nation rows of the given months from the school values: one GROUP BY
    per month, so a change in one month never recomputes the others."""
    written = 0
    pref_names = dict(codes.PREFECTURES)
    for month in sorted(set(first_of_month(m) for m in months)):
        values = IndicatorValue.objects.filter(month=month)
        old = Rollup.objects.filter(month=month)
        if indicator_codes is not None:
            values = values.filter(indicator__in=indicator_codes)
            old = old.filter(indicator__in=indicator_codes)
        groups = values.values("board_code", "prefecture_code", "indicator").annotate(
            name=Max("board_name"), num=Sum("numerator"), den=Sum("denominator"),
            wv=Sum(F("value") * F("numerator"), filter=Q(value__isnull=False)),
            w=Sum("numerator", filter=Q(value__isnull=False)), n=Count("pk"),
        )
        acc: dict[tuple[str, str, str], list[Any]] = {}
        for group in groups:
            g: dict[str, Any] = dict(group)
            ind, pref = g["indicator"], g["prefecture_code"]
            _add(acc, Rollup.Level.BOARD, g["board_code"], g["name"] or "", pref, ind, g)
            _add(acc, Rollup.Level.PREFECTURE, pref, pref_names.get(pref, pref), pref, ind, g)
            _add(acc, Rollup.Level.NATION, "JP", "全国", "", ind, g)
        old.delete()
        Rollup.objects.bulk_create(
            [Rollup(level=level, key=key, name=s[0], prefecture_code=s[1], month=month, indicator=ind,
                    numerator=s[2], denominator=s[3], weighted_value=s[4], weight=s[5], schools=s[6])
             for (level, key, ind), s in acc.items()],
            batch_size=5000,
        )
        written += len(acc)
    return written


# --- the 校務DX checklist ---------------------------------------------------------------------------------------


def checklist_items_load(*, path: Path = FIXTURE) -> int:
    """Load (or replace) the checklist items of the fixture's edition. Items no longer listed stay for the
    answers already given, but a new response only uses the file's items."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        edition = str(data["edition"])
        items = data["items"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValidationFailed(f"チェックリストのファイルを読めません: {exc}") from exc
    with transaction.atomic():
        for order, item in enumerate(items):
            if item.get("audience") not in ChecklistItem.Audience.values:
                raise ValidationFailed(f"項目 {item.get('code')}: 回答者は school か board です。")
            if item.get("indicator") and item["indicator"] not in indicators.INDICATORS:
                raise ValidationFailed(f"項目 {item.get('code')}: 指標 {item['indicator']} はありません。")
            ChecklistItem.objects.update_or_create(
                edition=edition, code=str(item["code"]),
                defaults={"audience": item["audience"], "group": item["group"], "text": item["text"],
                          "indicator": item.get("indicator") or "", "points": int(item.get("points", 30)),
                          "order": order},
            )
        audit_record(actor=None, action="progress.checklist.items_loaded", object_type="progress.edition",
                     object_id=edition, detail={"items": len(items)})
    return len(items)


def current_edition() -> str:
    edition = ChecklistItem.objects.order_by("-edition").values_list("edition", flat=True).first()
    if edition is None:
        checklist_items_load()
        edition = ChecklistItem.objects.order_by("-edition").values_list("edition", flat=True).first()
    return str(edition)


def level_from_ratio(num: int, den: int) -> int | None:
    if den <= 0:
        return None
    share = num / den
    if share >= 0.999:
        return ChecklistAnswer.Level.FULL
    if share >= 0.5:
        return ChecklistAnswer.Level.MORE_THAN_HALF
    if share > 0:
        return ChecklistAnswer.Level.PARTLY
    return ChecklistAnswer.Level.NONE


def _prefill(item: ChecklistItem, *, year: int, school_codes: list[str]) -> int | None:
    """The level the measured indicator suggests over the 年度 so far (Σ of its months), or None."""
    ind = indicators.get(item.indicator) if item.indicator else None
    if ind is None or ind.kind != indicators.RATIO:
        return None
    start, end = datetime.date(year, 4, 1), datetime.date(year + 1, 3, 1)
    agg = IndicatorValue.objects.filter(school_code__in=school_codes, indicator=ind.code, month__gte=start,
                                        month__lte=end).aggregate(num=Sum("numerator"), den=Sum("denominator"))
    return level_from_ratio(agg["num"] or 0, agg["den"] or 0)


def _org_of(actor: Actor, *, school_id: int | None, board_id: int | None) -> tuple[School | None, Board | None]:
    if (school_id is None) == (board_id is None):
        raise ValidationFailed("学校か教育委員会のどちらかを指定してください。")
    if school_id is not None:
        school = get_in_scope(schools_for(actor, roles.CHECKLIST_ANSWER).select_related("board"), pk=school_id)
        return school, None
    board = get_in_scope(boards_for(actor, roles.CHECKLIST_ANSWER), pk=board_id)
    # A school's principal reaches its board for reading, never to answer for it.
    if not any(g.board_id == board.pk for g in actor.grants_with(roles.CHECKLIST_ANSWER)):
        raise PermissionDeniedError("教育委員会の回答は、その教育委員会の担当者だけが入力できます。")
    return None, board


def checklist_response_open(*, actor: Actor, year: int, school_id: int | None = None,
                            board_id: int | None = None) -> ChecklistResponse:
    """The 年度's response of a school or board, created (prefilled from the measured indicators) on first
    opening."""
    require(actor, roles.CHECKLIST_ANSWER)
    school, board = _org_of(actor, school_id=school_id, board_id=board_id)
    existing = ChecklistResponse.objects.filter(year=year, school=school, board=board).first()
    if existing is not None:
        return existing
    edition = current_edition()
    audience = ChecklistItem.Audience.SCHOOL if school else ChecklistItem.Audience.BOARD
    if school is not None:
        school_codes = [school.code]
    else:
        assert board is not None
        school_codes = list(School.objects.filter(Q(board=board) | Q(board__parent=board))
                            .values_list("code", flat=True))
    with transaction.atomic():
        response = ChecklistResponse(year=year, edition=edition, school=school, board=board)
        response.full_clean()
        response.save()
        answers = []
        for item in ChecklistItem.objects.filter(edition=edition, audience=audience):
            suggested = _prefill(item, year=year, school_codes=school_codes)
            answers.append(ChecklistAnswer(response=response, item=item, level=suggested or 0,
                                           prefilled_level=suggested))
        ChecklistAnswer.objects.bulk_create(answers)
        _score(response)
        audit_record(actor=actor.user, action="progress.checklist.opened", obj=response,
                     detail={"year": year, "prefilled": sum(1 for a in answers if a.prefilled_level is not None)},
                     scope=Scope(school_id=school.pk if school else None, board_id=board.pk if board else None))
    return response


def _score(response: ChecklistResponse) -> None:
    score = maximum = 0
    for answer in response.answers.select_related("item"):
        # 完全にデジタル化 earns the item's points, 半分以上 two thirds, 一部 one third, していない none.
        score += answer.item.points * answer.level // 3
        maximum += answer.item.points
    response.score, response.max_score = score, maximum
    response.save(update_fields=["score", "max_score", "updated_at"])


def response_locked(response: ChecklistResponse) -> bool:
    if response.status == ChecklistResponse.Status.SUBMITTED:
        return True
    if response.school_id is not None:
        board = response.school.board if response.school else None
        boards = [b for b in (board, board.parent if board else None) if b is not None]
        return ChecklistResponse.objects.filter(year=response.year, board__in=boards,
                                                status=ChecklistResponse.Status.SUBMITTED).exists()
    return False


def checklist_response_get_for(*, actor: Actor, response_id: int) -> ChecklistResponse:
    """One response within the actor's reach to answer (404 otherwise)."""
    require(actor, roles.CHECKLIST_ANSWER)
    qs = ChecklistResponse.objects.select_related("school", "school__board", "board")
    response = get_in_scope(qs, pk=response_id)
    _org_of(actor, school_id=response.school_id, board_id=response.board_id)  # scope, again
    return response


FAX_COUNTERPARTIES = [
    ("private", "民間事業者"), ("school", "他の学校"), ("board", "教育委員会"), ("city", "市区町村の部局"),
    ("lunch_centre", "給食センター"), ("guardian", "保護者"), ("other", "その他"),
]
SEAL_DOCUMENTS = [
    ("applications", "各種申請書"), ("consent", "校外学習・部活動などの同意書"), ("report_cards", "通知表"),
    ("certificates", "証明書"), ("contracts", "契約・支出の書類"), ("other", "その他"),
]


def checklist_response_save(*, actor: Actor, response_id: int, levels: dict[int, int], uses_fax: bool,
                            fax_counterparties: list[str], requires_seal: bool,
                            seal_documents: list[str]) -> ChecklistResponse:
    response = checklist_response_get_for(actor=actor, response_id=response_id)
    if response_locked(response):
        raise ValidationFailed("この年度の回答は提出済みのため変更できません。")
    errors: dict[str, list[str]] = {}
    valid_levels = set(ChecklistAnswer.Level.values)
    answers = {a.item_id: a for a in response.answers.all()}
    for item_id, level in levels.items():
        if item_id not in answers:
            errors.setdefault("levels", []).append(f"項目 {item_id} はこの回答にありません。")
        elif level not in valid_levels:
            errors.setdefault(f"item_{item_id}", []).append("4つの段階から選んでください。")
    bad_fax = set(fax_counterparties) - {c for c, _ in FAX_COUNTERPARTIES}
    bad_seal = set(seal_documents) - {c for c, _ in SEAL_DOCUMENTS}
    if bad_fax:
        errors.setdefault("fax_counterparties", []).append("相手先は一覧から選んでください。")
    if bad_seal:
        errors.setdefault("seal_documents", []).append("文書の種類は一覧から選んでください。")
    if uses_fax and not fax_counterparties:
        errors.setdefault("fax_counterparties", []).append("FAXを使っている場合は、相手先を1つ以上選んでください。")
    if requires_seal and not seal_documents:
        errors.setdefault("seal_documents", []).append("押印を求めている場合は、文書の種類を1つ以上選んでください。")
    if errors:
        raise ValidationFailed("入力内容を確認してください。", errors=errors)
    with transaction.atomic():
        changed = []
        for item_id, level in levels.items():
            answer = answers[item_id]
            if answer.level != level:
                answer.level = level
                changed.append(answer)
        ChecklistAnswer.objects.bulk_update(changed, ["level"])
        response.uses_fax = uses_fax
        response.fax_counterparties = sorted(set(fax_counterparties)) if uses_fax else []
        response.requires_seal = requires_seal
        response.seal_documents = sorted(set(seal_documents)) if requires_seal else []
        response.save()
        _score(response)
        audit_record(actor=actor.user, action="progress.checklist.saved", obj=response,
                     detail={"changed_items": len(changed), "score": response.score},
                     scope=Scope(school_id=response.school_id, board_id=response.board_id))
    return response


def checklist_response_submit(*, actor: Actor, response_id: int) -> ChecklistResponse:
    """Submit (学校→教育委員会, 教育委員会→上位). The answers are locked from then on; a school's score enters the
    rollups as the indicator `checklist_score` of the 年度's April."""
    response = checklist_response_get_for(actor=actor, response_id=response_id)
    if response_locked(response):
        raise ValidationFailed("この年度の回答はすでに提出済みです。")
    with transaction.atomic():
        response.status = ChecklistResponse.Status.SUBMITTED
        response.submitted_at = timezone.now()
        response.submitted_by = actor.user
        response.save()
        _score(response)
        if response.school is not None:
            april = datetime.date(response.year, 4, 1)
            _store([_row(response.school, april, "checklist_score",
                         (response.score, response.max_score, None), timezone.now())])
            rollups_refresh(months=[april], indicator_codes=["checklist_score"])
        audit_record(actor=actor.user, action="progress.checklist.submitted", obj=response,
                     detail={"year": response.year, "score": response.score, "max": response.max_score},
                     scope=Scope(school_id=response.school_id, board_id=response.board_id))
    return response


def checklist_response_return(*, actor: Actor, response_id: int) -> ChecklistResponse:
    """The board hands a school's submitted answers back for correction, while the board has not submitted."""
    require(actor, roles.CHECKLIST_ANSWER)
    response = get_in_scope(ChecklistResponse.objects.select_related("school", "school__board"), pk=response_id,
                            school__in=schools_for(actor, roles.CHECKLIST_ANSWER))
    if not any(g.board_id is not None for g in actor.grants_with(roles.CHECKLIST_ANSWER)):
        raise PermissionDeniedError("差し戻しは教育委員会の担当者が行います。")
    if response.status != ChecklistResponse.Status.SUBMITTED:
        raise ValidationFailed("提出されていない回答は差し戻せません。")
    board = response.school.board if response.school else None
    if ChecklistResponse.objects.filter(year=response.year, board=board,
                                        status=ChecklistResponse.Status.SUBMITTED).exists():
        raise ValidationFailed("教育委員会がすでに上位へ提出したため、差し戻せません。")
    with transaction.atomic():
        response.status = ChecklistResponse.Status.DRAFT
        response.submitted_at = None
        response.submitted_by = None
        response.save()
        audit_record(actor=actor.user, action="progress.checklist.returned", obj=response,
                     scope=Scope(school_id=response.school_id))
    return response


# --- federation ---------------------------------------------------------------------------------------------------


def key_fingerprint(public_keyset: str) -> str:
    return hashlib.sha256(public_keyset.strip().encode("utf-8")).hexdigest()[:32]


def own_public_keyset() -> str:
    return get_keyring().seal_public_keyset()


def _verifier(public_keyset: str) -> signature.PublicKeyVerify:
    try:
        handle = json_proto_keyset_format.parse_without_secret(public_keyset)
        return handle.primitive(signature.PublicKeyVerify)
    except (tink.TinkError, ValueError, TypeError) as exc:
        raise ValidationFailed("公開鍵（Tink の JSON 形式の Ed25519 公開鍵）として読めません。") from exc


def federation_member_register(*, actor: Actor | None, code: str, name: str,
                               public_keyset: str) -> FederationMember:
    """Allow another deployment to push: its identifier, a name and the public half of its signing key
    (`komu progress public-key` on that deployment). actor None: the command line of the hub's operator."""
    if actor is not None:
        require(actor, roles.PROGRESS_FEDERATION)
    code, name, public_keyset = code.strip(), name.strip(), public_keyset.strip()
    errors: dict[str, list[str]] = {}
    if not code or not code.isascii() or len(code) > 64 or not code.replace("-", "").replace("_", "").isalnum():
        errors["code"] = ["識別子は半角英数字とハイフンで64文字以内で入力してください。"]
    elif code == LOCAL:
        errors["code"] = ["local は使えません。"]
    if not name:
        errors["name"] = ["名称を入力してください。"]
    if errors:
        raise ValidationFailed("入力内容を確認してください。", errors=errors)
    _verifier(public_keyset)
    key_id = key_fingerprint(public_keyset)
    if FederationMember.objects.filter(Q(code=code) | Q(key_id=key_id)).exists():
        raise ValidationFailed("この識別子または公開鍵はすでに登録されています。")
    with transaction.atomic():
        member = FederationMember(code=code, name=name, key_id=key_id, public_keyset=public_keyset)
        member.full_clean()
        member.save()
        audit_record(actor=actor.user if actor else None, action="progress.member.registered", obj=member,
                     detail={"code": code, "key_id": key_id})
    return member


def snapshot_build(*, month: datetime.date, sequence: int, now: datetime.datetime | None = None) -> dict[str, Any]:
    """The month's indicator values of this deployment's own schools, ready to sign."""
    month = first_of_month(month)
    schools: dict[str, dict[str, Any]] = {}
    for v in IndicatorValue.objects.filter(source=LOCAL, month=month).order_by("school_code", "indicator"):
        s = schools.setdefault(v.school_code, {"code": v.school_code, "name": v.school_name,
                                               "board_code": v.board_code, "board_name": v.board_name,
                                               "prefecture": v.prefecture_code, "values": {}})
        s["values"][v.indicator] = [v.numerator, v.denominator, v.value]
    return {"version": 1, "month": f"{month:%Y-%m}", "sequence": sequence,
            "created_at": (now or timezone.now()).isoformat(), "nonce": secrets.token_hex(16),
            "schools": list(schools.values())}


def snapshot_envelope(payload: dict[str, Any]) -> bytes:
    raw = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    sig = get_keyring().seal_sign(SIGNING_CONTEXT + raw)
    return json.dumps({"key_id": key_fingerprint(own_public_keyset()),
                       "payload": base64.b64encode(raw).decode("ascii"), "signature": sig}).encode("utf-8")


@dataclass(frozen=True)
class PushResult:
    status: int
    body: dict[str, Any]


def snapshot_push(*, hub_url: str, month: datetime.date, timeout: float = 30.0) -> PushResult:
    """Send the month's signed snapshot to a hub (`komu progress push --hub URL`)."""
    if not hub_url.startswith(("http://", "https://")):
        raise ValidationFailed("ハブのURLは http:// か https:// で始めてください。")
    url = hub_url.rstrip("/") + "/progress/federation/snapshots/"
    with transaction.atomic():
        state, _ = PushState.objects.select_for_update().get_or_create(hub_url=hub_url.rstrip("/"))
        state.last_sequence += 1
        state.last_pushed_at = timezone.now()
        state.save()
        payload = snapshot_build(month=month, sequence=state.last_sequence)
        audit_record(actor=None, action="progress.snapshot.pushed", object_type="progress.hub", object_id=url[:64],
                     detail={"month": payload["month"], "sequence": state.last_sequence,
                             "schools": len(payload["schools"])})
    request = urllib.request.Request(url, data=snapshot_envelope(payload), method="POST",  # noqa: S310
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 (scheme checked above)
            return PushResult(resp.status, json.loads(resp.read() or b"{}"))
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read() or b"{}")
        except ValueError:
            body = {}
        return PushResult(exc.code, body)


class SnapshotRejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _parse_payload(payload: dict[str, Any]) -> tuple[datetime.date, int, datetime.datetime, str, list[Any]]:
    try:
        month = datetime.datetime.strptime(str(payload["month"]), "%Y-%m").date()
        sequence = int(payload["sequence"])
        created = datetime.datetime.fromisoformat(str(payload["created_at"]))
        nonce = str(payload["nonce"])
        schools = payload["schools"]
        if created.tzinfo is None or not isinstance(schools, list) or not (8 <= len(nonce) <= 64) or sequence < 1:
            raise ValueError
    except (KeyError, ValueError, TypeError) as exc:
        raise SnapshotRejected(400, "スナップショットの形式が正しくありません。") from exc
    return month, sequence, created, nonce, schools


def _member_rows(member: FederationMember, month: datetime.date, schools: list[Any],
                 now: datetime.datetime) -> list[IndicatorValue]:
    rows = []
    for s in schools:
        try:
            code, board_code, pref = str(s["code"]), str(s["board_code"]), str(s["prefecture"])
            if len(code) != 13 or len(board_code) != 6 or pref not in dict(codes.PREFECTURES):
                raise ValueError
            for ind, (num, den, value) in dict(s["values"]).items():
                if ind not in indicators.INDICATORS or int(num) < 0 or int(den) < 0:
                    raise ValueError
                rows.append(IndicatorValue(
                    source=member.code, school_code=code, school_name=str(s["name"])[:100],
                    board_code=board_code, board_name=str(s["board_name"])[:100], prefecture_code=pref,
                    month=month, indicator=ind, numerator=int(num), denominator=int(den),
                    value=None if value is None else float(value), measured_at=now))
        except (KeyError, ValueError, TypeError) as exc:
            raise SnapshotRejected(400, "学校の値の形式が正しくありません。") from exc
    return rows


def snapshot_receive(*, body: bytes, now: datetime.datetime | None = None) -> dict[str, Any]:
    """At the hub: verify, check for replays, store the member's values for the month (replacing what it sent
    before for that month) and refresh the month's rollups. Raises SnapshotRejected (status, message)."""
    now = now or timezone.now()
    if len(body) > MAX_SNAPSHOT_BYTES:
        raise SnapshotRejected(413, "スナップショットが大きすぎます。")
    try:
        envelope = json.loads(body)
        key_id, sig = str(envelope["key_id"]), str(envelope["signature"])
        raw = base64.b64decode(str(envelope["payload"]).encode("ascii"), validate=True)
    except (ValueError, KeyError, TypeError) as exc:
        raise SnapshotRejected(400, "送信内容の形式が正しくありません。") from exc
    member = FederationMember.objects.filter(key_id=key_id, is_active=True).first()
    if member is None:
        raise SnapshotRejected(403, "登録されていない鍵です。")
    try:
        _verifier(member.public_keyset).verify(base64.b64decode(sig.encode("ascii"), validate=True),
                                               SIGNING_CONTEXT + raw)
    except (tink.TinkError, ValueError) as exc:
        raise SnapshotRejected(403, "署名を検証できません（改ざんされたか、鍵が違います）。") from exc
    try:
        payload = json.loads(raw)
    except ValueError as exc:
        raise SnapshotRejected(400, "スナップショットの形式が正しくありません。") from exc
    month, sequence, created, nonce, schools = _parse_payload(payload)
    if abs(now - created) > TIMESTAMP_WINDOW:
        raise SnapshotRejected(409, "作成時刻が受付の時間幅を外れています（再送または時計のずれ）。")
    digest = hashlib.sha256(raw).hexdigest()
    with transaction.atomic():
        member = FederationMember.objects.select_for_update().get(pk=member.pk)
        previous = FederationSnapshot.objects.filter(member=member, sequence=sequence).first()
        if previous is not None and previous.payload_sha256 == digest:
            return {"status": "duplicate", "sequence": sequence, "schools": previous.schools}
        if sequence <= member.last_sequence or FederationSnapshot.objects.filter(nonce=nonce).exists():
            raise SnapshotRejected(409, "すでに受け付けた通番か nonce です（再送攻撃の可能性）。")
        rows = _member_rows(member, month, schools, now)
        codes_sent = {r.school_code for r in rows}
        clash = IndicatorValue.objects.filter(school_code__in=codes_sent).exclude(source=member.code).exists() or \
            School.objects.filter(code__in=codes_sent).exists()
        if clash:
            raise SnapshotRejected(409, "このハブの学校、または別の連携先の学校と学校コードが重なっています。")
        IndicatorValue.objects.filter(source=member.code, month=month).delete()
        IndicatorValue.objects.bulk_create(rows, batch_size=2000)
        FederationSnapshot.objects.create(member=member, sequence=sequence, nonce=nonce, month=month,
                                          payload_sha256=digest, signature=sig, schools=len(codes_sent),
                                          received_at=now)
        member.last_sequence = sequence
        member.last_received_at = now
        member.save(update_fields=["last_sequence", "last_received_at"])
        rollups_refresh(months=[month])
        audit_record(actor=None, action="progress.snapshot.received", obj=member,
                     detail={"month": f"{month:%Y-%m}", "sequence": sequence, "schools": len(codes_sent),
                             "values": len(rows)})
    return {"status": "stored", "sequence": sequence, "schools": len(codes_sent)}


def months_between(start: datetime.date, end: datetime.date) -> list[datetime.date]:
    out, m = [], first_of_month(start)
    while m <= end:
        out.append(m)
        m = (m + datetime.timedelta(days=32)).replace(day=1)
    return out


def fiscal_year_now() -> int:
    return fiscal_year_of(timezone.localdate())


