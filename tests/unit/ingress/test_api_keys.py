"""API keys: stored as hashes only, expiry, scope, rotation without downtime, revocation."""

from __future__ import annotations

import json
import os
import stat
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingress.api_keys import ApiKeyStore, KeyRejected, hash_key, parse_key_id


def test_plain_key_is_never_stored(tmp_path: Path) -> None:
    store = ApiKeyStore(tmp_path / "keys.json")
    record, key = store.create("site")
    text = (tmp_path / "keys.json").read_text()
    assert key not in text and key.split("_")[-1] not in text
    assert json.loads(text)["keys"][0]["key_hash"] == hash_key(key) == record.key_hash
    assert stat.S_IMODE(os.stat(tmp_path / "keys.json").st_mode) == 0o600


def test_verify_returns_source_and_scope(tmp_path: Path) -> None:
    store = ApiKeyStore(tmp_path / "keys.json")
    _, key = store.create("crm", ["cliente.created"], rate_limit_per_second=500)
    verified = store.verify(key)
    assert verified.source == "crm"
    assert verified.event_types == frozenset({"cliente.created"})
    assert verified.rate_limit_per_second == 500


@pytest.mark.parametrize("bad", ["", "nope", "ck_", "ck_000000000000_x", "ck_short_secret"])
def test_garbage_and_unknown_keys_are_rejected(tmp_path: Path, bad: str) -> None:
    store = ApiKeyStore(tmp_path / "keys.json")
    store.create("site")
    with pytest.raises(KeyRejected, match="invalid"):
        store.verify(bad)


def test_right_id_wrong_secret_is_rejected(tmp_path: Path) -> None:
    store = ApiKeyStore(tmp_path / "keys.json")
    _, key = store.create("site")
    tampered = key[:-3] + ("aaa" if not key.endswith("aaa") else "bbb")
    assert parse_key_id(tampered) == parse_key_id(key)
    with pytest.raises(KeyRejected, match="invalid"):
        store.verify(tampered)


def test_expiry(tmp_path: Path) -> None:
    store = ApiKeyStore(tmp_path / "keys.json")
    record, key = store.create("site", expires_in=timedelta(days=1))
    assert store.verify(key).key_id == record.key_id
    with pytest.raises(KeyRejected, match="expired"):
        store.verify(key, now=datetime.now(UTC) + timedelta(days=2))


def test_rotation_keeps_both_keys_working_during_the_overlap(tmp_path: Path) -> None:
    store = ApiKeyStore(tmp_path / "keys.json")
    old, old_key = store.create("operacao", ["servico.completed"])
    new, new_key = store.rotate(old.key_id, overlap=timedelta(days=7))
    assert new.source == "operacao" and new.event_types == ["servico.completed"]
    assert store.verify(old_key).key_id == old.key_id
    assert store.verify(new_key).key_id == new.key_id
    later = datetime.now(UTC) + timedelta(days=8)
    with pytest.raises(KeyRejected, match="expired"):
        store.verify(old_key, now=later)
    assert store.verify(new_key, now=later).key_id == new.key_id


def test_rotating_an_unknown_or_revoked_key_fails(tmp_path: Path) -> None:
    store = ApiKeyStore(tmp_path / "keys.json")
    record, _ = store.create("site")
    store.revoke(record.key_id)
    with pytest.raises(KeyError):
        store.rotate(record.key_id, timedelta(days=1))
    with pytest.raises(KeyError):
        store.rotate("0123456789ab", timedelta(days=1))


def test_revocation_is_seen_by_another_store_instance(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    writer = ApiKeyStore(path)
    record, key = writer.create("site")
    reader = ApiKeyStore(path, reload_interval_s=0.0)  # the ingress re-reads on change
    assert reader.verify(key).key_id == record.key_id
    writer.revoke(record.key_id)
    with pytest.raises(KeyRejected, match="revoked"):
        reader.verify(key)


def test_missing_file_means_no_keys(tmp_path: Path) -> None:
    store = ApiKeyStore(tmp_path / "absent.json")
    assert store.records() == []
    with pytest.raises(KeyRejected):
        store.verify("ck_0123456789ab_secret")


def test_expiry_without_an_explicit_time_uses_the_clock(tmp_path: Path) -> None:
    store = ApiKeyStore(tmp_path / "keys.json")
    _, key = store.create("site", expires_in=timedelta(milliseconds=300))
    assert store.verify(key).source == "site"  # the grant is now cached for this record
    time.sleep(0.4)
    with pytest.raises(KeyRejected, match="expired"):
        store.verify(key)
