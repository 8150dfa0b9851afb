"""The audit trail's keyring: HMAC keys held outside the database (issue 26).

Keys come from settings — ``ONETRIP_AUDIT_KEYS`` ("kid:base64secret,kid2:...") and/or the file
``ONETRIP_AUDIT_KEY_FILE`` (one "kid:base64secret" per line, ``#`` comments) — and ``ONETRIP_AUDIT_KEY_ID``
names the active one (default: the last one given). Rotation = a new line and a new active id; old keys
stay so the rows they signed keep verifying. With neither set, development generates a key file under the
data directory (and warns); production refuses to write audit rows. The database only ever holds key ids.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path

from onetrip.config import Environment, Settings, get_settings

log = logging.getLogger("onetrip.audit")

MIN_KEY_BYTES = 32
KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,16}$")  # audit_event.key_id is String(16)
DEV_KEY_FILE = "audit.keys"


class AuditKeyError(ValueError):
    """The keyring's configuration is unusable; the message says what to fix (中文 / English)."""


@dataclass(frozen=True)
class Keyring:
    """Key id → secret, the active id, and one keyed ``hmac`` object per key (copied per row: building an
    HMAC re-derives its pads, copying does not)."""

    keys: dict[str, bytes]
    active: str
    macs: dict[str, hmac.HMAC] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.active not in self.keys:
            raise AuditKeyError(f"当前审计密钥 {self.active!r} 不在密钥环中 / the active audit key id {self.active!r} "
                                "is not in the keyring (ONETRIP_AUDIT_KEY_ID must name a key of ONETRIP_AUDIT_KEYS "
                                "or ONETRIP_AUDIT_KEY_FILE)")
        object.__setattr__(self, "macs", {k: hmac.new(v, digestmod=hashlib.sha256) for k, v in self.keys.items()})

    @property
    def active_mac(self) -> hmac.HMAC:
        return self.macs[self.active]

    def checkpoint_mac(self, kid: str) -> hmac.HMAC | None:
        """The key that signs checkpoint lines: derived from row key ``kid`` (a signature over a line can
        never pass for a row hash, or the other way round)."""
        key = self.keys.get(kid)
        if key is None:
            return None
        derived = hmac.new(key, b"onetrip audit checkpoint v1", hashlib.sha256).digest()
        return hmac.new(derived, digestmod=hashlib.sha256)


def parse_keys(text: str, where: str) -> list[tuple[str, bytes]]:
    """"kid:base64secret" entries separated by commas or new lines (``#`` starts a comment)."""
    found: list[tuple[str, bytes]] = []
    for raw in re.split(r"[,\n]", text):
        entry = raw.split("#", 1)[0].strip()
        if not entry:
            continue
        kid, sep, b64 = entry.partition(":")
        kid = kid.strip()
        if not sep or not KEY_ID.match(kid):
            raise AuditKeyError(f"{where}: 每项应为 \"密钥编号:base64密钥\"，编号为 1–16 个字母、数字、_.- / each entry "
                                f"must be \"kid:base64secret\" with a key id of 1-16 letters, digits or _.- (got {kid!r})")
        try:
            secret = base64.b64decode(b64.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise AuditKeyError(f"{where}: 密钥 {kid!r} 不是有效的 base64 / key {kid!r} is not valid base64") from None
        if len(secret) < MIN_KEY_BYTES:
            raise AuditKeyError(f"{where}: 密钥 {kid!r} 至少需要 {MIN_KEY_BYTES} 字节 / key {kid!r} must be at least "
                                f"{MIN_KEY_BYTES} random bytes (got {len(secret)}); make one with "
                                "`onetrip audit rotate-key`")
        found.append((kid, secret))
    return found


def new_key_line(kid: str) -> str:
    """A fresh "kid:base64secret" line for an operator to add (``onetrip audit rotate-key``)."""
    if not KEY_ID.match(kid):
        raise AuditKeyError(f"密钥编号 {kid!r} 应为 1–16 个字母、数字、_.- / key id {kid!r} must be 1-16 letters, "
                            "digits or _.-")
    return f"{kid}:{base64.b64encode(secrets.token_bytes(MIN_KEY_BYTES)).decode()}"


def data_dir() -> Path:
    """Where development keeps its generated audit key and checkpoints (outside the repository and the
    database): $XDG_DATA_HOME/onetrip, else ~/.local/share/onetrip."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "onetrip"


def _dev_key_file() -> Path:
    """The generated development key file, created once (atomically: a racing process reads the winner's)."""
    path = data_dir() / DEV_KEY_FILE
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{DEV_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# OneTrip audit key for DEVELOPMENT only (generated) — never use in production\n")
        f.write(new_key_line("dev1") + "\n")
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, path)  # fails if another process won: then its key is the one
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_keyring(settings: Settings) -> Keyring:
    """The keyring the settings describe (see the module docstring). Raises AuditKeyError with what to fix."""
    entries: list[tuple[str, bytes]] = []
    key_file = settings.audit_key_file
    if key_file is None and settings.audit_keys is None:
        if settings.env == Environment.production:
            raise AuditKeyError("生产环境必须设置审计密钥 ONETRIP_AUDIT_KEYS 或 ONETRIP_AUDIT_KEY_FILE / production "
                                "needs an audit key: set ONETRIP_AUDIT_KEYS or ONETRIP_AUDIT_KEY_FILE (make one with "
                                "`onetrip audit rotate-key`)")
        key_file = _dev_key_file()
        log.warning("审计密钥未配置，开发环境使用生成的密钥文件 / no audit key configured: development uses the "
                    "generated key file %s (set ONETRIP_AUDIT_KEYS or ONETRIP_AUDIT_KEY_FILE in production)", key_file)
    if key_file is not None:
        try:
            text = Path(key_file).read_text("utf-8")
        except OSError as e:
            raise AuditKeyError(f"无法读取审计密钥文件 / cannot read the audit key file {key_file} "
                                f"(ONETRIP_AUDIT_KEY_FILE): {e.strerror or e}") from None
        entries += parse_keys(text, f"ONETRIP_AUDIT_KEY_FILE ({key_file})")
    if settings.audit_keys is not None:
        entries += parse_keys(settings.audit_keys.get_secret_value(), "ONETRIP_AUDIT_KEYS")
    keys: dict[str, bytes] = {}
    for kid, secret in entries:
        if kid in keys and not hmac.compare_digest(keys[kid], secret):
            raise AuditKeyError(f"审计密钥编号 {kid!r} 出现两次且密钥不同 / audit key id {kid!r} is given twice with "
                                "different secrets: a key id names one key for ever")
        keys[kid] = secret
    if not keys:
        raise AuditKeyError("审计密钥环为空 / the audit keyring is empty: give at least one \"kid:base64secret\"")
    return Keyring(keys, settings.audit_key_id or entries[-1][0])


_lock = threading.Lock()
_cached: tuple[Settings, Keyring] | None = None


def current_keyring() -> Keyring:
    """The keyring of the process's settings, built once per settings object (the writer calls this on
    every audited request: one identity check)."""
    global _cached
    settings = get_settings()
    cached = _cached
    if cached is not None and cached[0] is settings:
        return cached[1]
    with _lock:
        keyring = load_keyring(settings)
        _cached = (settings, keyring)
    return keyring
