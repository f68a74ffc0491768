"""API keys: stored as hashes only, expiry, scope, rotation without downtime, revocation."""

from __future__ import annotations

import contextlib
import io
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
    # The secret is everything after "ck_<key id>_" (it may itself contain "_": split it no further).
    secret = key.split("_", 2)[2]
    assert key not in text and secret not in text
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


def test_a_key_created_after_the_last_check_works_on_its_first_request(tmp_path: Path) -> None:
    # The ingress checked the file a moment ago (its interval has not passed); the CLI then creates a
    # key, and the client uses it at once: no 401 until the next periodic check.
    path = tmp_path / "keys.json"
    reader = ApiKeyStore(path, reload_interval_s=3600.0)
    writer = ApiKeyStore(path)
    record, key = writer.create("site")
    assert reader.verify(key).key_id == record.key_id
    # A second write in the same mtime tick still counts as a change: the CLI replaces the file.
    before = path.stat().st_mtime_ns
    second, second_key = writer.create("crm")
    os.utime(path, ns=(before, before))
    assert reader.verify(second_key).key_id == second.key_id
    with pytest.raises(KeyRejected, match="invalid"):
        reader.verify("ck_0123456789ab_secret")  # still unknown after the look


def test_revocation_waits_for_the_reload_interval(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    writer = ApiKeyStore(path)
    record, key = writer.create("site")
    reader = ApiKeyStore(path, reload_interval_s=3600.0)
    assert reader.verify(key).key_id == record.key_id
    writer.revoke(record.key_id)
    assert reader.verify(key).key_id == record.key_id  # a known key does not trigger a look
    reader._checked_at -= 3600.0  # the interval passes
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


def test_rotation_keeps_the_old_keys_lifetime(tmp_path: Path) -> None:
    store = ApiKeyStore(tmp_path / "keys.json")
    old, _ = store.create("crm", expires_in=timedelta(days=90))
    new, _ = store.rotate(old.key_id, overlap=timedelta(days=7))
    assert new.expires_at is not None
    assert new.expires_at - new.created_at == timedelta(days=90)
    stored_old = next(r for r in store.records() if r.key_id == old.key_id)
    assert stored_old.expires_at == min(old.expires_at, new.created_at + timedelta(days=7))  # type: ignore[type-var]


def test_rotation_of_a_key_without_expiry_gives_a_key_without_expiry(tmp_path: Path) -> None:
    store = ApiKeyStore(tmp_path / "keys.json")
    old, _ = store.create("crm")
    new, _ = store.rotate(old.key_id, overlap=timedelta(days=7))
    assert new.expires_at is None


def test_rotation_with_an_explicit_expiry_overrides_the_old_lifetime(tmp_path: Path) -> None:
    store = ApiKeyStore(tmp_path / "keys.json")
    old, _ = store.create("crm", expires_in=timedelta(days=90))
    new, _ = store.rotate(old.key_id, overlap=timedelta(days=7), expires_in=timedelta(days=30))
    assert new.expires_at is not None and new.expires_at - new.created_at == timedelta(days=30)
    never, _ = store.create("crm")
    renewed, _ = store.rotate(never.key_id, overlap=timedelta(0), expires_in=timedelta(days=10))
    assert renewed.expires_at is not None and renewed.expires_at - renewed.created_at == timedelta(days=10)


def _carinho(monkeypatch: pytest.MonkeyPatch, path: Path, *argv: str) -> tuple[int, str, str]:
    from cli.main import main

    monkeypatch.setenv("CARINHO_KEYS_BACKEND", "file")
    monkeypatch.setenv("CARINHO_KEYS_FILE", str(path))
    # No broker: the key actions' audit records are tested against the real one (tests/integration/operators).
    monkeypatch.setenv("CARINHO_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")
    monkeypatch.setattr("cli.keys.AUDIT_TIMEOUT_S", 0.3)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_cli_rotate_keeps_the_expiry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    assert _carinho(monkeypatch, path, "keys", "create", "--source", "crm", "--expires", "90")[0] == 0
    (old,) = ApiKeyStore(path).records()
    code, _, err = _carinho(monkeypatch, path, "keys", "rotate", old.key_id, "--overlap", "7")
    assert code == 0
    new = next(r for r in ApiKeyStore(path).records() if r.key_id != old.key_id)
    assert new.expires_at is not None and new.expires_at - new.created_at == timedelta(days=90)
    assert "never expires" not in err
    code, _, err = _carinho(monkeypatch, path, "keys", "rotate", new.key_id, "--expires", "0")
    assert code == 2 and "--expires" in err


def test_cli_list_shows_creation_and_rate_limit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    _carinho(monkeypatch, path, "keys", "create", "--source", "crm", "--rate", "250")
    _carinho(monkeypatch, path, "keys", "create", "--source", "site")
    records = {r.source: r for r in ApiKeyStore(path).records()}
    code, out, _ = _carinho(monkeypatch, path, "keys", "list")
    assert code == 0
    header, *lines = out.splitlines()
    assert "CREATED" in header and "RATE LIMIT" in header
    assert header.index("CREATED") < header.index("EXPIRES")
    crm = next(line for line in lines if records["crm"].key_id in line)
    site = next(line for line in lines if records["site"].key_id in line)
    assert records["crm"].created_at.isoformat(timespec="seconds") in crm
    assert records["site"].created_at.isoformat(timespec="seconds") in site
    assert "250/s" in crm and "(source's)" in site


def test_a_key_is_revoked_even_when_its_audit_record_cannot_be_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A leaked key must be revocable while Kafka is down: the CLI says it is not audited, and revokes."""
    path = tmp_path / "keys.json"
    assert _carinho(monkeypatch, path, "keys", "create", "--source", "crm")[0] == 0
    (record,) = ApiKeyStore(path).records()
    code, out, err = _carinho(monkeypatch, path, "keys", "revoke", record.key_id)
    assert code == 0 and f"revoked {record.key_id}" in out
    assert "not audited" in err
    (after,) = ApiKeyStore(path).records()
    assert after.revoked_at is not None
