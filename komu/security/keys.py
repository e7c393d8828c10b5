"""The key file: every secret that must not live in the database or its backups.

One JSON file (path from KOMU_KEY_FILE, mode 0600) holds three Tink keysets:
  aead         AES-256-GCM, encrypts personal fields; rotated by `komu keys rotate`
  blind_index  HMAC-SHA256 PRF, keyed exact-match lookups (kana, phone, e-mail)
  audit_mac    HMAC-SHA256 MAC, the audit log's hash chain

A stolen database dump therefore reveals neither the data nor a way to forge the audit chain. Processes re-read
the file when it changes, so a rotation reaches running servers without a restart.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tink
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from tink import aead, json_proto_keyset_format, mac, prf, secret_key_access

aead.register()
mac.register()
prf.register()

RELOAD_CHECK_SECONDS = 2.0
_SECTIONS = ("aead", "blind_index", "audit_mac")


class DecryptionError(Exception):
    """A ciphertext could not be opened: wrong key, wrong row binding, or tampering. Never silently ignored."""


def _new_handle(section: str) -> tink.KeysetHandle:
    template = {
        "aead": aead.aead_key_templates.AES256_GCM,
        "blind_index": prf.prf_key_templates.HMAC_SHA256,
        "audit_mac": mac.mac_key_templates.HMAC_SHA256_256BITTAG,
    }[section]
    return tink.new_keyset_handle(template)


def _serialize(handle: tink.KeysetHandle) -> Any:
    return json.loads(json_proto_keyset_format.serialize(handle, secret_key_access.TOKEN))


def _parse(obj: Any) -> tink.KeysetHandle:
    return json_proto_keyset_format.parse(json.dumps(obj), secret_key_access.TOKEN)


def write_key_file(path: Path, handles: dict[str, tink.KeysetHandle]) -> None:
    """Write atomically with 0600 permissions: a reader sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    payload = {"format": "komu-keys/1", **{name: _serialize(h) for name, h in handles.items()}}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def create_key_file(path: Path) -> None:
    if path.exists():
        raise FileExistsError(f"鍵ファイルは既にあります: {path}")
    write_key_file(path, {name: _new_handle(name) for name in _SECTIONS})


@dataclass(frozen=True)
class Keyring:
    """The loaded keysets and the primitives built from them."""

    path: Path
    mtime_ns: int
    handles: dict[str, tink.KeysetHandle]

    @property
    def _aead(self) -> aead.Aead:
        return self.handles["aead"].primitive(aead.Aead)

    def encrypt(self, plaintext: str, associated: str) -> str:
        token = self._aead.encrypt(plaintext.encode("utf-8"), associated.encode("utf-8"))
        return base64.urlsafe_b64encode(token).decode("ascii")

    def decrypt(self, token: str, associated: str) -> str:
        try:
            raw = base64.urlsafe_b64decode(token.encode("ascii"))
            return self._aead.decrypt(raw, associated.encode("utf-8")).decode("utf-8")
        except (tink.TinkError, ValueError, UnicodeError) as exc:
            raise DecryptionError(f"復号できません（{associated}）: 鍵が違うか、データが改ざんされています。") from exc

    def primary_key_id(self) -> int:
        return int(self.handles["aead"].keyset_info().primary_key_id)

    def token_key_id(self, token: str) -> int:
        raw = base64.urlsafe_b64decode(token.encode("ascii"))
        # Tink's output prefix: one version byte, then the 4-byte big-endian key id.
        return int.from_bytes(raw[1:5], "big")

    def blind_index(self, purpose: str, normalized_value: str) -> str:
        prf_set = self.handles["blind_index"].primitive(prf.PrfSet)
        data = f"{purpose}\x00{normalized_value}".encode()
        return prf_set.primary().compute(data, 16).hex()

    def audit_mac(self, data: bytes) -> str:
        return self.handles["audit_mac"].primitive(mac.Mac).compute_mac(data).hex()

    def audit_mac_valid(self, data: bytes, tag_hex: str) -> bool:
        try:
            self.handles["audit_mac"].primitive(mac.Mac).verify_mac(bytes.fromhex(tag_hex), data)
        except (tink.TinkError, ValueError):
            return False
        return True


_lock = threading.Lock()
_cached: Keyring | None = None
_last_check = 0.0


def _load(path: Path) -> Keyring:
    try:
        stat = path.stat()
    except FileNotFoundError:
        if getattr(settings, "KOMU_CREATE_KEY_FILE", False):
            create_key_file(path)
            stat = path.stat()
        else:
            raise ImproperlyConfigured(
                f"鍵ファイル {path} がありません。`komu keys create` で作成し、KOMU_KEY_FILE で場所を指定してください。"
            ) from None
    if stat.st_mode & 0o077:
        raise ImproperlyConfigured(f"鍵ファイル {path} は所有者だけが読めるように (chmod 600) してください。")
    payload = json.loads(path.read_text())
    if payload.get("format") != "komu-keys/1":
        raise ImproperlyConfigured(f"鍵ファイル {path} の形式が違います。")
    handles = {name: _parse(payload[name]) for name in _SECTIONS}
    return Keyring(path=path, mtime_ns=stat.st_mtime_ns, handles=handles)


def get_keyring() -> Keyring:
    """The current keyring, re-read when the key file has changed (rotation reaches running processes)."""
    global _cached, _last_check
    path = Path(settings.KOMU_KEY_FILE)
    now = time.monotonic()
    cached = _cached
    if cached is not None and cached.path == path and now - _last_check < RELOAD_CHECK_SECONDS:
        return cached
    with _lock:
        _last_check = now
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            mtime = -1
        if _cached is None or _cached.path != path or _cached.mtime_ns != mtime:
            _cached = _load(path)
        return _cached


def reset_cache() -> None:
    global _cached
    with _lock:
        _cached = None


def add_primary_aead_key(path: Path) -> tuple[int, int]:
    """Add a fresh AES-256-GCM key and make it primary; old keys stay so existing ciphertexts still open."""
    ring = _load(path)
    keyset = _serialize(ring.handles["aead"])
    old_primary = int(keyset["primaryKeyId"])
    fresh = _serialize(_new_handle("aead"))
    new_key = fresh["key"][0]
    keyset["key"].append(new_key)
    keyset["primaryKeyId"] = new_key["keyId"]
    handles = dict(ring.handles)
    handles["aead"] = _parse(keyset)
    write_key_file(path, handles)
    reset_cache()
    return old_primary, int(new_key["keyId"])


def retire_aead_keys(path: Path, keep: set[int]) -> list[int]:
    """Remove AEAD keys not in `keep` (called only after every ciphertext has been re-encrypted)."""
    ring = _load(path)
    keyset = _serialize(ring.handles["aead"])
    removed = [int(k["keyId"]) for k in keyset["key"] if int(k["keyId"]) not in keep]
    keyset["key"] = [k for k in keyset["key"] if int(k["keyId"]) in keep]
    handles = dict(ring.handles)
    handles["aead"] = _parse(keyset)
    write_key_file(path, handles)
    reset_cache()
    return removed
