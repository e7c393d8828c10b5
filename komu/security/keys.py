"""The key file: every secret that must not live in the database or its backups.

One JSON file (path from KOMU_KEY_FILE, mode 0600) holds four Tink keysets:
  aead          AES-256-GCM, encrypts personal fields; rotated by `komu keys rotate`
  blind_index   HMAC-SHA256 PRF, keyed exact-match lookups (kana, phone, e-mail)
  audit_mac     HMAC-SHA256 MAC, the audit log's hash chain
  seal_signing  Ed25519 signatures, the electronic seals of approvals (komu.approvals); its public half is
                printed by `komu keys public` so anyone can check a seal outside Komu

A key file written before a section existed gains it with `komu keys upgrade` (automatically where
KOMU_CREATE_KEY_FILE is true, i.e. development and tests).

A stolen database dump therefore reveals neither the data nor a way to forge the audit chain. Processes re-read
the file when it changes, so a rotation reaches running servers without a restart.
"""

from __future__ import annotations

import base64
import fcntl
import functools
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
from tink import aead, json_proto_keyset_format, mac, prf, secret_key_access, signature

aead.register()
mac.register()
prf.register()
signature.register()

RELOAD_CHECK_SECONDS = 2.0
_SECTIONS = ("aead", "blind_index", "audit_mac", "seal_signing")


class DecryptionError(Exception):
    """A ciphertext could not be opened: wrong key, wrong row binding, or tampering. Never silently ignored."""


def _new_handle(section: str) -> tink.KeysetHandle:
    template = {
        "aead": aead.aead_key_templates.AES256_GCM,
        "blind_index": prf.prf_key_templates.HMAC_SHA256,
        "audit_mac": mac.mac_key_templates.HMAC_SHA256_256BITTAG,
        "seal_signing": signature.signature_key_templates.ED25519,
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
    # (mtime_ns, inode, size) of the file this was read from. A rewrite is an os.replace onto a new inode, so
    # the stamp changes even when two writes land within one tick of the file system's coarse clock.
    stamp: tuple[int, int, int]
    handles: dict[str, tink.KeysetHandle]

    # Building a Tink primitive costs far more than one encryption: build each once per loaded keyring.
    @functools.cached_property
    def _aead(self) -> aead.Aead:
        return self.handles["aead"].primitive(aead.Aead)

    @functools.cached_property
    def _prf(self) -> prf.Prf:
        return self.handles["blind_index"].primitive(prf.PrfSet).primary()

    @functools.cached_property
    def _mac(self) -> mac.Mac:
        return self.handles["audit_mac"].primitive(mac.Mac)

    def encrypt(self, plaintext: str, associated: str) -> str:
        token = self._aead.encrypt(plaintext.encode("utf-8"), associated.encode("utf-8"))
        return base64.urlsafe_b64encode(token).decode("ascii")

    def decrypt(self, token: str, associated: str) -> str:
        try:
            raw = base64.urlsafe_b64decode(token.encode("ascii"))
            plain: bytes = self._aead.decrypt(raw, associated.encode("utf-8"))
            return plain.decode("utf-8")
        except (tink.TinkError, ValueError, UnicodeError) as exc:
            raise DecryptionError(f"復号できません（{associated}）: 鍵が違うか、データが改ざんされています。") from exc

    def primary_key_id(self) -> int:
        return int(self.handles["aead"].keyset_info().primary_key_id)

    def token_key_id(self, token: str) -> int:
        """The id of the key a ciphertext was sealed with, or -1 when it is not a Tink ciphertext at all."""
        try:
            raw = base64.urlsafe_b64decode(token.encode("ascii"))
        except (ValueError, UnicodeError):
            return -1
        # Tink's output prefix: one version byte (0x01), then the 4-byte big-endian key id.
        if len(raw) < 5 or raw[0] != 0x01:
            return -1
        return int.from_bytes(raw[1:5], "big")

    def blind_index(self, purpose: str, normalized_value: str) -> str:
        data = f"{purpose}\x00{normalized_value}".encode()
        digest: bytes = self._prf.compute(data, 16)
        return digest.hex()

    def audit_mac(self, data: bytes) -> str:
        tag: bytes = self._mac.compute_mac(data)
        return tag.hex()

    def audit_mac_valid(self, data: bytes, tag_hex: str) -> bool:
        try:
            self._mac.verify_mac(bytes.fromhex(tag_hex), data)
        except (tink.TinkError, ValueError):
            return False
        return True

    @functools.cached_property
    def _seal_signer(self) -> signature.PublicKeySign:
        return self.handles["seal_signing"].primitive(signature.PublicKeySign)

    @functools.cached_property
    def _seal_verifier(self) -> signature.PublicKeyVerify:
        # Verify with the public half only: exactly what someone outside Komu holds (`komu keys public`).
        return self.handles["seal_signing"].public_keyset_handle().primitive(signature.PublicKeyVerify)

    def seal_sign(self, data: bytes) -> str:
        return base64.b64encode(self._seal_signer.sign(data)).decode("ascii")

    def seal_valid(self, data: bytes, signature_b64: str) -> bool:
        try:
            self._seal_verifier.verify(base64.b64decode(signature_b64.encode("ascii"), validate=True), data)
        except (tink.TinkError, ValueError, UnicodeError):
            return False
        return True

    def seal_public_keyset(self) -> str:
        """The seal keyset's public keys as Tink JSON: no secret, safe to publish."""
        public = self.handles["seal_signing"].public_keyset_handle()
        return str(json_proto_keyset_format.serialize_without_secret(public))


_lock = threading.Lock()
_cached: Keyring | None = None
_cached_setting: object = None
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
    try:
        payload = json.loads(path.read_text())
        if not isinstance(payload, dict) or payload.get("format") != "komu-keys/1":
            raise ValueError("format")
        if missing_sections(payload):
            if not getattr(settings, "KOMU_CREATE_KEY_FILE", False):
                raise ImproperlyConfigured(
                    f"鍵ファイル {path} に新しい鍵（{'、'.join(missing_sections(payload))}）がありません。"
                    "`komu keys upgrade` を実行して鍵を追加してから、もう一度起動してください。"
                )
            upgrade_key_file(path)
            return _load(path)
        handles = {name: _parse(payload[name]) for name in _SECTIONS}
    except (ValueError, KeyError, TypeError, tink.TinkError) as exc:
        # A truncated or hand-edited file must stop the process with a message, not a parser traceback.
        raise ImproperlyConfigured(
            f"鍵ファイル {path} の形式が違うか、壊れています。バックアップから戻してください。"
        ) from exc
    return Keyring(path=path, stamp=_stamp(stat), handles=handles)


def _stamp(stat: os.stat_result) -> tuple[int, int, int]:
    return (stat.st_mtime_ns, stat.st_ino, stat.st_size)


def get_keyring() -> Keyring:
    """The current keyring, re-read when the key file has changed (rotation reaches running processes).

    Called once per encrypted value, so the common path is two comparisons: same setting, checked recently.
    """
    global _cached, _cached_setting, _last_check
    setting = settings.KOMU_KEY_FILE
    now = time.monotonic()
    cached = _cached
    if cached is not None and setting is _cached_setting and now - _last_check < RELOAD_CHECK_SECONDS:
        return cached
    path = Path(setting)
    with _lock:
        _last_check = now
        try:
            stamp = _stamp(path.stat())
        except FileNotFoundError:
            stamp = (-1, -1, -1)
        if _cached is None or _cached.path != path or _cached.stamp != stamp:
            _cached = _load(path)
        _cached_setting = setting
        return _cached


def missing_sections(payload: dict[str, Any]) -> list[str]:
    return [name for name in _SECTIONS if name not in payload]


def upgrade_key_file(path: Path) -> list[str]:
    """Add the sections a key file written by an older Komu lacks; existing keys stay as they are. Returns the
    names added. An exclusive lock makes concurrent upgrades (several processes starting at once) add each key
    once: two would otherwise each write a different new key and one process would sign with a lost key."""
    lock_path = path.with_name(f".{path.name}.lock")
    fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        payload = json.loads(path.read_text())
        added = missing_sections(payload)
        if added:
            handles = {name: _parse(payload[name]) for name in _SECTIONS if name in payload}
            handles.update({name: _new_handle(name) for name in added})
            write_key_file(path, {name: handles[name] for name in _SECTIONS})
    finally:
        os.close(fd)
    # No reset_cache() here: _load calls this while holding the cache lock. A changed file is re-read anyway.
    return added


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
