"""`carinho dlq` against a real broker with seeded dead-letter records."""

from __future__ import annotations

import gzip
import os
import stat
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from hub.delivery import DeliveryRecord
from hub.topology import Topology
from hub.trail import TrailHop
from tests.integration.operators.conftest import RunCli
from tests.integration.operators.seed import EMAIL, NAME, PHONE, Seeder, delivery, envelope
from tests.kafka_support import read_topic

pytestmark = pytest.mark.integration


def _ids(result_lines: list[dict[str, object]]) -> set[str]:
    return {str(r["id"]) for r in result_lines}


def test_list_filters_and_stats(seeder: Seeder, carinho: RunCli) -> None:
    now = datetime.now(UTC)
    crm_400 = seeder.dead_letter(delivery("crm"), reason="http_400", status=400)
    crm_503 = seeder.dead_letter(delivery("crm"), reason="retries_exhausted", status=503)
    old_fin = seeder.dead_letter(
        delivery("financeiro", "cliente.created", path="/api/clientes"),
        reason="http_422",
        status=422,
        failed_at=now - timedelta(days=3),
    )
    target = delivery("marketing", path="/api/attributions")
    mkt = seeder.dead_letter(target, reason="retries_exhausted", status=None)
    invalid = seeder.dead_letter(b"\x00not json", reason="invalid_envelope", status=None, stage="processors")

    everything = carinho("dlq", "list", "--json")
    assert everything.code == 0, everything.err
    assert _ids(everything.json_lines()) == {crm_400, crm_503, old_fin, mkt, invalid}
    assert all(r["status"] == "pending" for r in everything.json_lines())
    # Nothing personal in a listing.
    assert PHONE not in everything.out and EMAIL not in everything.out and NAME not in everything.out

    def listed(*filters: str) -> set[str]:
        result = carinho("dlq", "list", "--json", *filters)
        assert result.code == 0, result.err
        return _ids(result.json_lines())

    assert listed("--destination", "crm") == {crm_400, crm_503}
    assert listed("--destination", "crm,marketing") == {crm_400, crm_503, mkt}
    assert listed("--event-type", "cliente.created") == {old_fin}
    assert listed("--reason", "http_4*") == {crm_400, old_fin}
    assert listed("--status-code", "5xx") == {crm_503}
    assert listed("--status-code", "422") == {old_fin}
    assert listed("--since", "1d") == {crm_400, crm_503, mkt, invalid}
    assert listed("--until", (now - timedelta(days=1)).date().isoformat()) == {old_fin}
    assert listed("--event-id", str(target.event_id)) == {mkt}
    assert listed("--id", crm_503) == {crm_503}
    none_open = carinho("dlq", "replay", "--event-id", str(uuid.uuid4()))
    assert "no open record matches" in none_open.out and "--status all" in none_open.out
    assert listed(crm_503, mkt) == {crm_503, mkt}  # IDs also positional, as `dlq show ID` takes them
    assert listed(crm_503, "--id", mkt) == {crm_503, mkt}

    table = carinho("dlq", "list", "--destination", "crm")
    assert "DESTINATION" in table.out and "http_400" in table.out and "2 shown" in table.out
    limited = carinho("dlq", "list", "--limit", "2")
    assert "2 shown, 3 more" in limited.out

    stats = carinho("dlq", "stats", "--json")
    figures = orjson.loads(stats.out)
    assert figures["total"] == 5
    assert figures["by_destination"] == {"crm": 2, "financeiro": 1, "marketing": 1, "(none)": 1}
    assert figures["by_reason"]["retries_exhausted"] == 2
    assert figures["by_age"] == {"< 1h": 4, "1d-7d": 1}
    assert figures["by_status"] == {"pending": 5}
    text = carinho("dlq", "stats", "--destination", "crm")
    assert "dead-letter records matching: 2 (status edited or pending)" in text.out
    assert "by status, whatever --status says: pending 2" in text.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--destination", "crn"], "unknown destination; known: atendimento, crm"),
        (["--event-type", "lead.criado"], "unknown event type"),
        (["--status-code", "999"], "HTTP status 100-599"),
        (["--since", "last tuesday"], "--since 'last tuesday'"),
        (["--event-id", "abc"], "not a UUID"),
        (["--status", "done"], "--status 'done'"),
        (["--reason", "http 400"], "--reason 'http 400'"),
        (["--since", "1h", "--until", "2h"], "must be before --until"),
        (["--id", "3-4"], "is not a DLQ id"),
        (["3-4"], "is not a DLQ id"),
    ],
)
def test_bad_filters_fail_clearly(carinho_offline: RunCli, args: list[str], message: str) -> None:
    """Validated before any Kafka call (the broker here is unreachable on purpose)."""
    for command in ("list", "stats", "replay", "purge", "export"):
        result = carinho_offline("dlq", command, *args)
        assert result.code == 2, (command, result.out, result.err)
        assert message in result.err, result.err
        assert "invalid filter" in result.err or "DLQ id" in result.err


def test_show_masks_unless_reveal_which_is_audited(seeder: Seeder, carinho: RunCli) -> None:
    record = delivery("crm")
    dlq_id = seeder.dead_letter(record, error=f"422 for {EMAIL} phone {PHONE}", status=422, reason="http_422")

    masked = carinho("dlq", "show", dlq_id)
    assert masked.code == 0, masked.err
    view = orjson.loads(masked.out)
    assert view["destination"] == "crm" and view["reason"] == "http_422" and view["status_code"] == 422
    assert view["attempts"] == 6 and view["status"] == "pending"
    assert view["delivery_id"] == str(record.delivery_id)
    for secret in (PHONE, EMAIL, NAME):
        assert secret not in masked.out
    assert view["value"]["payload"]["nome"] == "M*** S***"

    revealed = carinho("dlq", "show", dlq_id, "--reveal")
    assert PHONE in revealed.out and NAME in revealed.out

    audit = carinho("audit", "--json", "--action", "dlq.show")
    entries = audit.json_lines()
    assert len(entries) == 1
    assert entries[0]["reveal"] is True and entries[0]["operator"] == "ana.operadora"
    assert entries[0]["filters"] == {"id": dlq_id}

    missing = carinho("dlq", "show", "0:99999")
    assert missing.code == 2 and "no dead-letter record 0:99999" in missing.err
    bad = carinho("dlq", "show", "zero")
    assert bad.code == 2 and "is not a DLQ id" in bad.err


def _deliveries_on(bootstrap: str, topic: str, expect: int | None = None) -> list[DeliveryRecord]:
    return [
        DeliveryRecord.from_json(r.value)
        for r in read_topic(bootstrap, topic, expect=expect, timeout=10)
        if r.value is not None
    ]


def test_replay_dry_run_then_retry_tier_then_idempotent(
    seeder: Seeder, carinho: RunCli, hub: Topology, kafka_bootstrap: str
) -> None:
    records = [delivery("crm") for _ in range(3)]
    ids = [seeder.dead_letter(r) for r in records]
    other = seeder.dead_letter(delivery("financeiro", "cliente.created", path="/api/clientes"), reason="http_409")
    retry_topic = hub.retry_topics("crm")[0]

    dry = carinho("dlq", "replay", "--destination", "crm")
    assert dry.code == 0, dry.err
    assert "would replay 3 of 3" in dry.out and retry_topic in dry.out and "dry run" in dry.out
    assert read_topic(kafka_bootstrap, retry_topic, timeout=3, idle=0.5) == []

    done = carinho("dlq", "replay", "--destination", "crm", "--yes")
    assert done.code == 0, done.err
    assert "replayed 3 of 3" in done.out
    assert "replay [" in done.err  # the progress bar, on stderr

    replayed = read_topic(kafka_bootstrap, retry_topic, expect=3)
    assert sorted(str(DeliveryRecord.from_json(r.value or b"").delivery_id) for r in replayed) == sorted(
        str(r.delivery_id) for r in records
    )
    for raw in replayed:
        assert raw.headers["replayed_from"].decode().endswith(tuple(ids))
        assert raw.headers["replayed_by"] == b"ana.operadora"
        assert raw.key is not None and raw.key.startswith(b"lead-")

    trail = read_topic(kafka_bootstrap, hub.system_topic("trail"), expect=3)
    hops = [TrailHop.from_json(r.value or b"") for r in trail]
    assert {str(h.event_id) for h in hops} == {str(r.event_id) for r in records}
    assert all(h.hop == "replayed" and h.destination == "crm" and h.detail["to"] == retry_topic for h in hops)

    statuses = {str(r["id"]): r["status"] for r in carinho("dlq", "list", "--json", "--status", "all").json_lines()}
    assert statuses == {**{i: "replayed" for i in ids}, other: "pending"}

    # A second replay finds nothing open: the default acts on open records only.
    again = carinho("dlq", "replay", "--destination", "crm", "--yes")
    assert "replayed 0 of 0" in again.out
    assert len(read_topic(kafka_bootstrap, retry_topic, timeout=3, idle=0.5)) == 3

    # Forcing it (to the main topic) sends the same delivery_id: the destination dedupes it.
    forced = carinho("dlq", "replay", "--id", ids[0], "--status", "replayed", "--to", "main", "--yes")
    assert "replayed 1 of 1" in forced.out, forced.out
    main_topic = _deliveries_on(kafka_bootstrap, hub.delivery_topic("crm"), expect=1)
    assert [d.delivery_id for d in main_topic] == [records[0].delivery_id]

    actions = carinho("audit", "--json", "--action", "dlq.replay").json_lines()
    assert [(a["dry_run"], a["count"]) for a in actions] == [(True, 3), (False, 3), (False, 0), (False, 1)]
    assert actions[1]["filters"]["destination"] == ["crm"]


def test_edit_keeps_original_and_replay_sends_correction(
    seeder: Seeder, carinho: RunCli, hub: Topology, kafka_bootstrap: str, tmp_path: Path
) -> None:
    record = delivery("crm", payload={"nome": NAME, "telefone": "not-a-phone", "email": EMAIL})
    dlq_id = seeder.dead_letter(record, reason="http_422", status=422)

    edited = carinho("dlq", "edit", dlq_id, "--set", f"payload.telefone={PHONE}", "--set", 'payload.origem="site"')
    assert edited.code == 0, edited.err
    assert "payload.origem, payload.telefone" in edited.out

    # Identity is protected; nonsense is refused.
    refused = carinho("dlq", "edit", dlq_id, "--set", f"delivery_id={uuid.uuid4()}")
    assert refused.code == 2 and "delivery_id cannot change" in refused.err
    invalid = carinho("dlq", "edit", dlq_id, "--set", "path=no-slash")
    assert invalid.code == 2 and "not a valid DeliveryRecord" in invalid.err
    nothing = carinho("dlq", "edit", dlq_id)
    assert nothing.code == 2 and "nothing to change" in nothing.err

    # The original record is untouched on the dead-letter topic; show gives both.
    original = read_topic(kafka_bootstrap, hub.dead_letter_topic, expect=1)[0]
    assert DeliveryRecord.from_json(original.value or b"").payload["telefone"] == "not-a-phone"
    shown = orjson.loads(carinho("dlq", "show", dlq_id, "--reveal").out)
    assert shown["status"] == "edited" and shown["edited_paths"] == ["payload.origem", "payload.telefone"]
    assert shown["value"]["payload"]["telefone"] == "not-a-phone"
    assert shown["edited_value"]["payload"]["telefone"] == PHONE

    # A whole-document correction from a file also works (the usual show --raw | fix | edit --file flow).
    raw = orjson.loads(carinho("dlq", "show", dlq_id, "--raw", "--reveal").out)
    raw["payload"]["mensagem"] = "corrigido"
    fixed = tmp_path / "fixed.json"
    fixed.write_bytes(orjson.dumps(raw))
    assert carinho("dlq", "edit", dlq_id, "--file", str(fixed)).code == 0

    assert carinho("dlq", "replay", dlq_id, "--yes").code == 0
    sent = _deliveries_on(kafka_bootstrap, hub.retry_topics("crm")[0], expect=1)
    assert len(sent) == 1
    assert sent[0].delivery_id == record.delivery_id
    assert sent[0].payload == {
        "nome": NAME,
        "telefone": PHONE,
        "email": EMAIL,
        "origem": "site",
        "mensagem": "corrigido",
    }
    # Forced again (it is `replayed` now): still the correction, never the original it corrected.
    assert carinho("dlq", "replay", dlq_id, "--status", "replayed", "--yes").code == 0
    again = _deliveries_on(kafka_bootstrap, hub.retry_topics("crm")[0], expect=2)
    assert len(again) == 2 and again[1].payload == sent[0].payload
    history = orjson.loads(carinho("dlq", "show", dlq_id).out)["history"]
    assert [h["detail"].get("edited") for h in history if h["action"] == "replay"] == [True, True]

    edits = carinho("audit", "--json", "--action", "dlq.edit").json_lines()
    assert [e["detail"]["changed_paths"] for e in edits] == [
        ["payload.origem", "payload.telefone"],
        ["payload.mensagem"],
    ]
    assert PHONE not in str(edits)


def test_envelope_and_garbage_replay(seeder: Seeder, carinho: RunCli, hub: Topology, kafka_bootstrap: str) -> None:
    env = envelope()
    env_id = seeder.dead_letter(env, reason="transform_failed", status=None, stage="processors")
    junk_id = seeder.dead_letter(b"{broken", reason="invalid_envelope", status=None, stage="processors")
    result = carinho("dlq", "replay", "--yes", "--reason", "transform_failed,invalid_envelope")
    assert result.code == 0, result.err
    assert "replayed 1 of 2" in result.out and "skipped: not a delivery record nor an event envelope" in result.out
    back = read_topic(kafka_bootstrap, hub.priority_topic(2), expect=1)
    assert back[0].key == env.kafka_key() and back[0].headers["event_id"] == str(env.event_id).encode()
    statuses = {str(r["id"]): r["status"] for r in carinho("dlq", "list", "--json", "--status", "all").json_lines()}
    assert statuses == {env_id: "replayed", junk_id: "pending"}


def test_purge_and_archive_need_confirmation(seeder: Seeder, carinho: RunCli, tmp_path: Path) -> None:
    purge_ids = [
        seeder.dead_letter(delivery("marketing", path="/api/attributions"), reason="http_410", status=410)
        for _ in range(2)
    ]
    keep = seeder.dead_letter(delivery("crm"), reason="http_400")
    archive_id = seeder.dead_letter(
        delivery("operacao", "agenda.updated", path="/api/agenda"), reason="http_404", status=404
    )

    unconfirmed = carinho("dlq", "purge", "--destination", "marketing")
    assert unconfirmed.code == 0 and "would purge 2 record(s); nothing changed" in unconfirmed.out
    assert len(carinho("dlq", "list", "--json").json_lines()) == 4

    purged = carinho("dlq", "purge", "--destination", "marketing", "--yes")
    assert "purged 2 record(s)" in purged.out
    archive_dir = tmp_path / "archives"  # created by the command: only its owner may enter it
    archived = carinho("dlq", "archive", "--reason", "http_404", "--yes", "--dir", str(archive_dir))
    assert "archived 1 record(s)" in archived.out, archived.out + archived.err

    open_ids = _ids(carinho("dlq", "list", "--json").json_lines())
    assert open_ids == {keep}
    everything = {str(r["id"]): r["status"] for r in carinho("dlq", "list", "--json", "--status", "all").json_lines()}
    assert everything == {purge_ids[0]: "purged", purge_ids[1]: "purged", keep: "pending", archive_id: "archived"}

    assert stat.S_IMODE(os.stat(archive_dir).st_mode) == 0o700
    files = list(archive_dir.glob("dlq-archive-*.jsonl.gz"))
    assert len(files) == 1
    assert stat.S_IMODE(os.stat(files[0]).st_mode) == 0o600
    lines = [orjson.loads(line) for line in gzip.decompress(files[0].read_bytes()).splitlines()]
    assert [line["dlq_id"] for line in lines] == [archive_id]
    assert lines[0]["headers"]["dlq.reason"] == "http_404" and lines[0]["value_b64"]

    closed = carinho("dlq", "edit", purge_ids[0], "--set", "payload.x=1")
    assert closed.code == 2 and "is purged" in closed.err
    nothing = carinho("dlq", "purge", "--destination", "marketing", "--yes")
    assert "nothing to purge" in nothing.out

    audit = carinho("audit", "--json", "--action", "dlq").json_lines()
    actions = [(a["action"], a["dry_run"], a["count"]) for a in audit]
    assert ("dlq.purge", False, 2) in actions and ("dlq.archive", False, 1) in actions


def test_export_masked_and_revealed(seeder: Seeder, carinho: RunCli, tmp_path: Path) -> None:
    for _ in range(3):
        seeder.dead_letter(delivery("crm"))
    out = tmp_path / "dlq.jsonl"
    masked = carinho("dlq", "export", "--out", str(out))
    assert masked.code == 0 and "exported 3 record(s)" in masked.err
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert len(lines) == 3 and all(line["status"] == "pending" for line in lines)
    assert PHONE not in out.read_text() and EMAIL not in out.read_text()

    revealed = carinho("dlq", "export", "--reveal")
    assert PHONE in revealed.out and len(revealed.out.splitlines()) == 3
    exports = carinho("audit", "--json", "--action", "dlq.export").json_lines()
    assert [(e["reveal"], e["count"]) for e in exports] == [(False, 3), (True, 3)]

    table = carinho("audit")
    assert "dlq.export" in table.out and "REVEAL" in table.out and "ana.operadora" in table.out
    other = carinho("audit", "--by", "someone.else", "--json")
    assert other.json_lines() == []
    # --until: entries at/after it are left out (and the scan stops an hour past it, not at the end).
    assert carinho("audit", "--json", "--action", "dlq.export", "--until", "2h").json_lines() == []
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    assert len(carinho("audit", "--json", "--action", "dlq.export", "--until", later).json_lines()) == 2
