"""API keys per source system: stored only as SHA-256 hashes, several active per source (rotation
without downtime), optional expiry, scoped to a source and the event types it may send.

Key format: `ck_<key_id>_<secret>`. The key id finds the record in O(1); the secret is compared by
hash with hmac.compare_digest (constant time). Keys are 256-bit random, so a fast hash is enough: a
slow KDF would only cost throughput on every request.

The store is a JSON file (0600) written atomically under an exclusive lock by `carinho keys`, and
re-read by the ingress when it changes, so keys rotate without a restart. With several ingress
replicas, CARINHO_KEYS_BACKEND=kafka keeps the same records on a compacted topic instead
(`ingress.api_keys_kafka`).
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

KEY_PREFIX = "ck_"


class ApiKeyRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: str = Field(pattern=r"^[0-9a-f]{12}$")
    source: str
    key_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    event_types: list[str] | None = None  # None: every type the source may send
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    label: str = ""
    rate_limit_per_second: float | None = Field(default=None, gt=0)  # overrides the source's limit

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    def status(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"


class KeyFile(BaseModel):
    version: int = 1
    keys: list[ApiKeyRecord] = Field(default_factory=list)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> tuple[str, str]:
    key_id = secrets.token_hex(6)
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def parse_key_id(key: str) -> str | None:
    if not key.startswith(KEY_PREFIX):
        return None
    key_id, sep, secret = key[len(KEY_PREFIX) :].partition("_")
    if not sep or len(key_id) != 12 or not secret:
        return None
    return key_id


@dataclass(frozen=True)
class Verified:
    key_id: str
    source: str
    event_types: frozenset[str] | None
    rate_limit_per_second: float | None


class KeyRejected(Exception):
    """401: why (never reveals whether the key id exists)."""


class ApiKeyStore:
    """File-backed key store. Readers call `verify`; the CLI calls create/rotate/revoke."""

    def __init__(self, path: Path, reload_interval_s: float = 1.0):
        self.path = Path(path)
        self.reload_interval_s = reload_interval_s
        self._by_id: dict[str, ApiKeyRecord] = {}
        self._grants: dict[str, tuple[ApiKeyRecord, Verified, float | None]] = {}  # see verify
        self._version: tuple[int, int, int] | None = None  # the file's (inode, mtime, size) when read
        self._checked_at = 0.0
        self._reload(force=True)

    # ---- reading (ingress) ------------------------------------------------------------------------
    def _reload(self, force: bool = False, *, look_now: bool = False) -> None:
        """Re-read the file when it changed: at most once per interval, or now with `look_now`
        (a stat; the file is read only if it changed) or `force` (always read)."""
        now = time.monotonic()
        if not (force or look_now) and now - self._checked_at < self.reload_interval_s:
            return
        self._checked_at = now
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._by_id, self._version = {}, None
            return
        # The CLI replaces the file (a new inode each write), so two writes within one mtime tick
        # still differ.
        version = (st.st_ino, st.st_mtime_ns, st.st_size)
        if not force and version == self._version:
            return
        data = self._read()
        self._by_id = {k.key_id: k for k in data.keys}
        self._version = version

    def _read(self) -> KeyFile:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return KeyFile()
        return KeyFile.model_validate_json(text) if text.strip() else KeyFile()

    def verify(self, presented: str, now: datetime | None = None) -> Verified:
        self._reload()
        key_id = parse_key_id(presented)
        digest = hash_key(presented)
        record = self._matching(key_id, digest)
        if record is None and key_id:
            # A key created or rotated a moment ago works on its first request, not only after the
            # next periodic check: a stat per refused key (unknown id or wrong secret alike, so the
            # look does not tell which ids exist either); revocations still wait for the interval.
            self._reload(look_now=True)
            record = self._matching(key_id, digest)
        if record is None:
            raise KeyRejected("invalid API key")
        # What a record grants is built once per record (every request of a source asks again);
        # a reload that replaces the record replaces the entry.
        cached = self._grants.get(record.key_id)
        if cached is None or cached[0] is not record:
            types = frozenset(record.event_types) if record.event_types is not None else None
            expires = record.expires_at.timestamp() if record.expires_at is not None else None
            verified = Verified(record.key_id, record.source, types, record.rate_limit_per_second)
            cached = self._grants[record.key_id] = (record, verified, expires)
        if record.revoked_at is not None:
            raise KeyRejected("API key revoked")
        expires = cached[2]
        if expires is not None and (now.timestamp() if now is not None else time.time()) >= expires:
            raise KeyRejected("API key expired")
        return cached[1]

    def _matching(self, key_id: str | None, digest: str) -> ApiKeyRecord | None:
        """The record of `key_id` if `digest` is its hash."""
        record = self._by_id.get(key_id) if key_id else None
        # Compared even when the id is unknown so timing does not tell which ids exist.
        matches = hmac.compare_digest(digest, record.key_hash if record else "0" * 64)
        return record if matches else None

    def close(self) -> None:
        """Nothing to release for the file store (the Kafka store stops its reader)."""

    def records(self) -> list[ApiKeyRecord]:
        self._reload(force=True)
        return sorted(self._by_id.values(), key=lambda r: (r.source, r.created_at))

    # ---- writing (CLI) ----------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[KeyFile]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_suffix(self.path.suffix + ".lock")
        with open(lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self._read()
            yield data
            tmp = self.path.with_suffix(self.path.suffix + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(json.dumps(data.model_dump(mode="json"), indent=2))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        self._reload(force=True)

    def create(
        self,
        source: str,
        event_types: list[str] | None = None,
        expires_in: timedelta | None = None,
        label: str = "",
        rate_limit_per_second: float | None = None,
    ) -> tuple[ApiKeyRecord, str]:
        """Returns the record and the plain key (shown once, never stored)."""
        key_id, key = generate_key()
        now = datetime.now(UTC)
        record = ApiKeyRecord(
            key_id=key_id,
            source=source,
            key_hash=hash_key(key),
            event_types=event_types,
            created_at=now,
            expires_at=now + expires_in if expires_in else None,
            label=label,
            rate_limit_per_second=rate_limit_per_second,
        )
        with self._locked() as data:
            data.keys.append(record)
        return record, key

    def rotate(self, key_id: str, overlap: timedelta, expires_in: timedelta | None = None) -> tuple[ApiKeyRecord, str]:
        """New key with the same scope; the old one keeps working for `overlap`, then expires.

        The new key keeps the old key's lifetime policy: with `expires_in` None, a key that had an
        expiry gets one the same length of time (old expires_at - old created_at) after its own
        creation, and a key that never expired does not either. `expires_in` overrides that.
        """
        new_id, key = generate_key()
        now = datetime.now(UTC)
        with self._locked() as data:
            old = next((k for k in data.keys if k.key_id == key_id), None)
            if old is None or not old.active(now):
                raise KeyError(f"no active key {key_id}")
            lifetime = expires_in if expires_in is not None else _lifetime(old)
            record = ApiKeyRecord(
                key_id=new_id,
                source=old.source,
                key_hash=hash_key(key),
                event_types=old.event_types,
                created_at=now,
                expires_at=now + lifetime if lifetime is not None else None,
                label=old.label,
                rate_limit_per_second=old.rate_limit_per_second,
            )
            old_expiry = now + overlap
            if old.expires_at is not None:
                old_expiry = min(old_expiry, old.expires_at)
            data.keys[data.keys.index(old)] = old.model_copy(update={"expires_at": old_expiry})
            data.keys.append(record)
        return record, key

    def revoke(self, key_id: str) -> ApiKeyRecord:
        now = datetime.now(UTC)
        with self._locked() as data:
            old = next((k for k in data.keys if k.key_id == key_id), None)
            if old is None:
                raise KeyError(f"no key {key_id}")
            revoked = old.model_copy(update={"revoked_at": old.revoked_at or now})
            data.keys[data.keys.index(old)] = revoked
        return revoked


def _lifetime(record: ApiKeyRecord) -> timedelta | None:
    """How long the key was issued for (None: it never expires)."""
    if record.expires_at is None:
        return None
    return record.expires_at - record.created_at
