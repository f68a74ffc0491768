"""API key create, rotate and revoke are operator actions: `carinho audit` shows who did which, with
the key id and source, never the key (real broker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.topology import Topology
from ingress.api_keys import ApiKeyStore
from tests.integration.operators.conftest import RunCli


def test_key_actions_are_in_the_audit(
    hub: Topology, carinho: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keys.json"
    monkeypatch.setenv("CARINHO_KEYS_BACKEND", "file")
    monkeypatch.setenv("CARINHO_KEYS_FILE", str(path))
    created = carinho("keys", "create", "--source", "crm", "--expires", "30")
    assert created.code == 0 and "not audited" not in created.err, created.err
    key = created.out.strip()
    (first,) = ApiKeyStore(path).records()
    rotated = carinho("keys", "rotate", first.key_id, "--overlap", "1")
    assert rotated.code == 0, rotated.err
    second = next(r for r in ApiKeyStore(path).records() if r.key_id != first.key_id)
    assert carinho("keys", "revoke", first.key_id).code == 0

    audit = carinho("audit", "--json", "--action", "keys")
    assert audit.code == 0, audit.err
    entries = audit.json_lines()
    assert [(e["action"], e["detail"]["key_id"]) for e in entries] == [
        ("keys.create", first.key_id),
        ("keys.rotate", second.key_id),
        ("keys.revoke", first.key_id),
    ]
    assert all(e["operator"] == "ana.operadora" and e["detail"]["source"] == "crm" for e in entries)
    assert entries[1]["detail"]["replaces"] == first.key_id
    assert key not in audit.out and rotated.out.strip() not in audit.out
