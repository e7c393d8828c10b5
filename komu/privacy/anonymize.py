"""`komu anonymize`: turn a copy of a production database into one safe for development.

Every encrypted column of every model is personal data by Komu's rule (architecture.md: "every field that
identifies or describes a person is encrypted"), so the anonymizer walks them all rather than a list that would
go stale as apps are added:

- names (a family/given pair and its kana are replaced together by one Faker ja_JP name pair, so kanji and kana
  still match; the same input gives the same fake within a run, so siblings keep one family name),
- kana alone, phones and other digit strings (digits replaced, the format kept), e-mails, addresses,
- dates (birth dates) moved within the same school cohort (2 April – 1 April), so every pupil's grade stays,
- any other text (health notes, reasons, notes) replaced by a neutral text, the same one for the same input.

Then: every password is set to one development password, second-factor devices, passkeys, API tokens, sessions
and sign-in attempt logs are removed (they are real people's secrets and addresses), the audit log's details and
client addresses are emptied and the chain is re-sealed from the start (MACs recomputed over the scrubbed rows),
and one final event records the anonymization.

Attachments (every row with a BlobField: notice and letter attachments, survey answer files, transfer documents)
get a new file in the configured store: a one-page PDF saying the original was replaced, sealed with a new data
key bound to the row, the row's SHA-256 and size set to it, its file name (plain text, often a pupil's name)
replaced. The copy's attachments therefore open, whether or not the store was copied with the database. The
original files are never deleted here (the store configured for the copy might still be production's): the
command counts those still present, and `komu blobs gc` removes them from the copy's own store.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import connection, models, transaction
from faker import Faker

from komu.audit import guard
from komu.audit.models import AuditEvent
from komu.audit.services import audit_record, canonical_bytes
from komu.security import blobs
from komu.security.fields import EncryptedDateField, EncryptedMixin, EncryptedTextField
from komu.security.keys import get_keyring

# Values that name no one: kept as they are.
_NEUTRAL = frozenset({"", "母", "父", "祖母", "祖父", "兄", "姉", "弟", "妹", "叔父", "叔母", "伯父", "伯母", "おじ",
                      "おば", "その他", "本人", "保護者", "親族", "里親", "施設職員"})
_DIGITS = re.compile(r"^[\d\-()+ ]+$")


class RefusedError(RuntimeError):
    pass


def looks_like_production() -> bool:
    """Production runs with KOMU_DEBUG off (the default once KOMU_SECRET_KEY is set)."""
    return not settings.DEBUG


@dataclass
class Replacements:
    """Consistent replacements for one run."""

    seed: int
    fake: Faker = field(init=False)
    rng: random.Random = field(init=False)
    maps: dict[str, dict[Any, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.fake = Faker("ja_JP")
        self.fake.seed_instance(self.seed)
        self.rng = random.Random(self.seed)

    def _memo(self, kind: str, key: Any, make: Callable[[], Any]) -> Any:
        table = self.maps.setdefault(kind, {})
        if key not in table:
            table[key] = make()
        return table[key]

    # Real names of the database (filled by a first pass): a fake name is never one of them, so no original
    # name survives even by chance (Faker's names are common real names).
    avoid: set[str] = field(default_factory=set)

    def _pair(self, make: Callable[[], tuple[str, str, str]]) -> tuple[str, str]:
        for _ in range(30):
            kanji, kana, _romaji = make()
            if kanji not in self.avoid:
                return kanji, kana
        kanji, kana, _romaji = make()
        return f"仮{kanji}", f"カリ{kana}"  # the pool is exhausted: a name no one has

    def family(self, kanji: str) -> tuple[str, str]:
        pair: tuple[str, str] = self._memo("family", kanji, lambda: self._pair(self.fake.last_name_pair))
        return pair

    def given(self, kanji: str) -> tuple[str, str]:
        pair: tuple[str, str] = self._memo("given", kanji, lambda: self._pair(self.fake.first_name_pair))
        return pair

    def _full(self, value: str) -> tuple[str, str]:
        def make() -> tuple[str, str]:
            family, given = self._pair(self.fake.last_name_pair), self._pair(self.fake.first_name_pair)
            return f"{family[0]} {given[0]}", f"{family[1]} {given[1]}"
        pair: tuple[str, str] = self._memo("full", value, make)
        return pair

    def full_name(self, value: str) -> str:
        return self._full(value)[0]

    def full_kana(self, value: str) -> str:
        return self._full(value)[1]

    def digits(self, value: str) -> str:
        def make() -> str:
            out = "".join(str(self.rng.randint(0, 9)) if c.isdigit() else c for c in value)
            # Keep a leading 0 (trunk prefix of phone numbers) where there was one.
            return value[0] + out[1:] if value[:1] == "0" else out
        return str(self._memo("digits", value, make))

    def email(self, value: str) -> str:
        return str(self._memo("email", value.lower(), lambda: f"user{len(self.maps.get('email', {})) + 1}@example.jp"))

    def address(self, value: str) -> str:
        return str(self._memo("address", value, lambda: f"架空県{self.fake.city()}{self.fake.town()}"
                                                            f"{self.rng.randint(1, 9)}-{self.rng.randint(1, 30)}"))

    def text(self, value: str) -> str:
        def make() -> str:
            return f"（匿名化したテキスト {hashlib.sha256(f'{self.seed}:{value}'.encode()).hexdigest()[:8]}）"
        return str(self._memo("text", value, make))

    def date(self, value: datetime.date) -> datetime.date:
        """Another day of the same school cohort (born 2 April Y – 1 April Y+1 are one grade)."""
        def make() -> datetime.date:
            start_year = value.year if (value.month, value.day) >= (4, 2) else value.year - 1
            start = datetime.date(start_year, 4, 2)
            days = (datetime.date(start_year + 1, 4, 1) - start).days
            return start + datetime.timedelta(days=self.rng.randint(0, days))
        result: datetime.date = self._memo("date", value, make)
        return result


@dataclass
class AnonymizeReport:
    rows: dict[str, int] = field(default_factory=dict)
    users: int = 0
    audit_events: int = 0
    removed: dict[str, int] = field(default_factory=dict)
    attachments: int = 0  # rows given a placeholder file
    originals_in_store: int = 0  # files of the original attachments still in the configured store


def _encrypted_fields(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    # A blob's data key is replaced with the blob itself (_replace_attachments), never as text.
    keys = {f.key_field for f in blobs.blob_fields(model)}
    return [f for f in model._meta.concrete_fields if isinstance(f, EncryptedMixin) and f.name not in keys]


def _placeholder_pdf() -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen.canvas import Canvas

    from komu.attendance.pdf import fonts

    buf = io.BytesIO()
    c = Canvas(buf, pagesize=A4, invariant=True)
    c.setTitle("匿名化した添付ファイル")
    c.setFont(fonts().text[0].name, 14)
    c.drawString(56, A4[1] - 96, "匿名化した開発用のコピーです。")
    c.drawString(56, A4[1] - 120, "元の添付ファイルの内容は置き換えました。")
    c.showPage()
    c.save()
    return buf.getvalue()


def _replace_attachments(report: AnonymizeReport) -> list[str]:
    """Point every blob row at a placeholder file; returns the original names (for counting, never deleted)."""
    content = _placeholder_pdf()
    originals: list[str] = []
    for model, fields in blobs.blob_models():
        if model._meta.proxy:
            continue
        count = 0
        for obj in model._default_manager.all().order_by("pk").iterator(chunk_size=500):
            for f in fields:
                if getattr(obj, f.attname):
                    originals.append(str(getattr(obj, f.attname)))
                stored = blobs.blob_put(obj, content, field_name=f.name)
            count += 1
            # The row's description of its one file (every blob model has one blob, with these names).
            described = {"sha256": stored.sha256, "size": stored.size, "filename": f"匿名化した添付ファイル{count}.pdf",
                         "content_type": "application/pdf", "mime": "application/pdf"}
            for name, value in described.items():
                if len(fields) == 1 and hasattr(obj, name):
                    setattr(obj, name, value)
            obj.save()
        report.attachments += count
    return originals


def _count_in_store(names: list[str]) -> int:
    storage = blobs.blob_storage()
    found = 0
    for name in names:
        try:
            found += bool(storage.exists(name))
        except OSError:
            continue
    return found


def _replace_text(fk: Replacements, name: str, value: str) -> str:
    if value.strip() in _NEUTRAL:
        return value
    if "email" in name or "mail" in name:
        return fk.email(value)
    if "kana" in name:
        return fk.full_kana(value)
    if "name" in name:
        return fk.full_name(value)
    if "address" in name:
        return fk.address(value)
    if "phone" in name or _DIGITS.match(value):
        return fk.digits(value)
    return fk.text(value)


def _anonymize_row(fk: Replacements, obj: models.Model, fields: list[models.Field[Any, Any]]) -> None:
    names = {f.name for f in fields}
    done: set[str] = set()
    # Name pairs first, so that the kana matches the kanji it belongs to.
    for part, pick in (("family_name", fk.family), ("given_name", fk.given)):
        if part in names and getattr(obj, part):
            kanji, kana = pick(getattr(obj, part))
            setattr(obj, part, kanji)
            done.add(part)
            if f"{part}_kana" in names:
                if getattr(obj, f"{part}_kana"):
                    setattr(obj, f"{part}_kana", kana)
                done.add(f"{part}_kana")
    for f in fields:
        if f.name in done:
            continue
        value = getattr(obj, f.name)
        if value in (None, ""):
            continue
        if isinstance(f, EncryptedDateField) and isinstance(value, datetime.date):
            setattr(obj, f.name, fk.date(value))
        elif isinstance(f, EncryptedTextField) and isinstance(value, str):
            setattr(obj, f.name, _replace_text(fk, f.name, value))


def _reseal_audit(report: AnonymizeReport) -> None:
    """Empty the details and client addresses of every audit event and re-seal the chain. Rows are never
    updated (the triggers allow no UPDATE): they are rewritten through the purge switch."""
    keyring = get_keyring()
    events = list(AuditEvent.objects.order_by("id"))
    with guard.purge_window():
        AuditEvent.objects.all().delete()
    prev = ""
    batch = []
    for i, event in enumerate(events, start=1):
        event.id = i
        event.detail = {}
        event.client_ip = None
        event.prev_mac = prev
        event.mac = keyring.audit_mac(canonical_bytes(event))
        prev = event.mac
        batch.append(event)
    AuditEvent.objects.bulk_create(batch, batch_size=2000)
    report.audit_events = len(batch)


def _remove(report: AnonymizeReport, label: str, model_label: str) -> None:
    try:
        model = apps.get_model(model_label)
    except LookupError:
        return
    count, _ = model.objects.all().delete()
    report.removed[label] = count


def anonymize(*, password: str, i_understand_this_is_a_copy: bool = False,
              seed: int = 20261126) -> AnonymizeReport:
    if looks_like_production() and not i_understand_this_is_a_copy:
        raise RefusedError(
            "このデータベースは本番環境のようです（KOMU_DEBUG が無効）。匿名化はデータを元に戻せない形で書き換えます。"
            "本番のコピーであることを確認したうえで --i-understand-this-is-a-copy を付けて実行してください。"
        )
    fk = Replacements(seed)
    report = AnonymizeReport()
    with transaction.atomic():
        for model in apps.get_models():
            name_fields = [f.name for f in _encrypted_fields(model) if "name" in f.name and "kana" not in f.name]
            if not name_fields or model._meta.proxy:
                continue
            for values in model._default_manager.all().iterator(chunk_size=500):
                for name in name_fields:
                    value = getattr(values, name) or ""
                    fk.avoid.add(value)
                    fk.avoid.update(value.replace("\u3000", " ").split())
        for model in apps.get_models():
            fields = _encrypted_fields(model)
            if not fields or model._meta.proxy:
                continue
            count = 0
            for obj in model._default_manager.all().order_by("pk").iterator(chunk_size=500):
                _anonymize_row(fk, obj, fields)
                obj.save()
                count += 1
            if count:
                report.rows[model._meta.label] = count
        user_model = apps.get_model(settings.AUTH_USER_MODEL)
        report.users = user_model.objects.update(password=make_password(password))
        _remove(report, "sessions", "sessions.Session")
        for label, model_label in (("totp", "otp_totp.TOTPDevice"), ("static", "otp_static.StaticDevice"),
                                   ("passkeys", "django_otp_webauthn.WebAuthnCredential"),
                                   ("api_tokens", "accounts.ApiToken"), ("axes_attempts", "axes.AccessAttempt"),
                                   ("axes_log", "axes.AccessLog"), ("axes_failures", "axes.AccessFailureLog")):
            _remove(report, label, model_label)
        originals = _replace_attachments(report)
        _reseal_audit(report)
        audit_record(actor=None, action="privacy.database.anonymized", object_type="", object_id="",
                     detail={"note": "開発用に匿名化したコピー。監査ログの詳細を消去し、連鎖を封印し直した。",
                             "rows": report.rows, "audit_events": report.audit_events,
                             "attachments": report.attachments})
    report.originals_in_store = _count_in_store(originals)
    if connection.vendor == "sqlite" and not connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("VACUUM")  # freed pages would otherwise still hold the old ciphertexts
    return report
