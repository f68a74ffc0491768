"""The fast path writes exactly what the reference pipeline (validate_event → check_scope →
build_envelope) writes, and hands every request it cannot take back to it (returns None)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from hub.topology import load_topology
from ingress.accept import build_envelope, check_scope, validate_event
from ingress.api_keys import Verified
from ingress.errors import ApiError
from ingress.event_schemas import data_models
from ingress.fast_path import FastPath

ROOT = Path(__file__).resolve().parents[3]
TOPOLOGY = load_topology(ROOT / "topics.yaml")
MODELS = data_models(TOPOLOGY)
FAST = FastPath(TOPOLOGY)
SITE = Verified("k1", "site", None, None)
NOW = datetime(2026, 11, 29, 12, 0, 0, 123456, tzinfo=UTC)
LEAD = {"name": "Maria Souza", "phone": "+55 11 98765-4321", "email": "maria@example.com", "origin": "site"}

VALID: list[tuple[dict[str, Any], str | None]] = [
    ({"type": "lead.created", "data": LEAD}, "h-1"),
    ({"type": "lead.created", "data": LEAD, "idempotency_key": "b-1"}, None),
    ({"type": "lead.created", "data": LEAD, "idempotency_key": "same"}, "same"),
    ({"type": "lead.created", "data": LEAD, "priority": 1, "source": "site"}, "h-2"),
    ({"type": "lead.created", "data": LEAD, "occurred_at": "2026-11-28T08:00:00Z"}, "h-3"),
    ({"type": "lead.created", "data": LEAD, "occurred_at": "2026-11-28T08:00:00.5-03:00"}, "h-4"),
    ({"type": "lead.created", "data": LEAD, "metadata": {"utm": {"source": "google", "campaign": "x"}}}, "h-5"),
    ({"type": "lead.created", "data": LEAD, "metadata": {"utm_source": "ig", "utm": {"medium": "cpc"}}}, "h-6"),
    ({"type": "lead.created", "data": LEAD, "metadata": {"utm": {}, "labels": {"a": "b"}}}, "h-7"),
    ({"type": "lead.created", "data": {"name": "Ana", "phone": "11987654321"}}, "h-8"),
    ({"type": "lead.created", "data": {**LEAD, "email": None, "priority": None}}, "h-9"),  # optional null
    ({"type": "lead.created", "data": {**LEAD, "extra": {"free": [1, 2]}}}, "h-10"),  # undeclared data kept
    ({"type": "lead.created", "data": LEAD, "priority": None, "source": None, "occurred_at": None}, "h-11"),
]


def reference(raw: dict[str, Any], header_key: str | None, verified: Verified = SITE) -> tuple[str, dict[str, Any]]:
    event = validate_event(raw, TOPOLOGY, MODELS, header_key)
    check_scope(event, verified, TOPOLOGY)
    prepared = build_envelope(event, verified, TOPOLOGY, header_key, "rid-1", NOW)
    return prepared.topic, orjson.loads(prepared.envelope.to_json())


@pytest.mark.parametrize(("raw", "header_key"), VALID)
def test_single_event_envelope_equals_the_reference(raw: dict[str, Any], header_key: str | None) -> None:
    fast = FAST.prepare_single(raw, SITE, header_key, "rid-1", NOW)
    assert fast is not None
    topic, expected = reference(raw, header_key)
    assert fast.topic == topic
    assert orjson.loads(fast.value) == expected
    assert fast.key == expected["idempotency_key"].encode()
    assert dict(fast.headers) == {
        "event_id": expected["event_id"].encode(),
        "event_type": b"lead.created",
        "source": b"site",
        "priority": str(expected["priority"]).encode(),
        "schema_version": b"1",
        "content-type": b"application/json",
        "request_id": b"rid-1",
    }


def test_batch_envelopes_equal_the_reference() -> None:
    items = [{**raw, "idempotency_key": f"k-{i}"} for i, (raw, _) in enumerate(VALID)]
    fast = FAST.prepare_batch(items, SITE, "rid-1", NOW)
    assert fast is not None and len(fast) == len(items)
    for envelope, item in zip(fast, items, strict=True):
        assert orjson.loads(envelope.value) == reference(item, None)[1]


REFUSED: list[tuple[Any, str | None, Verified, int]] = [
    ({"type": "lead.created", "data": LEAD}, None, SITE, 422),  # no idempotency key anywhere
    ({"type": "lead.created", "data": LEAD, "idempotency_key": "a"}, "b", SITE, 422),  # body and header differ
    ({"type": "nope.created", "data": LEAD}, "k", SITE, 422),  # unknown type
    ({"type": "lead.created", "data": {"name": "Ana"}}, "k", SITE, 422),  # required field missing
    ({"type": "lead.created", "data": LEAD, "extra": 1}, "k", SITE, 422),  # unknown field
    ({"type": "lead.created", "data": LEAD, "priority": 9}, "k", SITE, 422),
    ({"type": "lead.created", "data": LEAD, "occurred_at": "2026-11-28T08:00:00"}, "k", SITE, 422),  # naive
    ([1, 2], "k", SITE, 422),
    ({"type": 5, "data": LEAD}, "k", SITE, 422),
    ({"type": "lead.created", "data": [LEAD]}, "k", SITE, 422),
    ({"type": "lead.created", "data": {**LEAD, "phone": None}}, "k", SITE, 422),  # required field null
    ({"type": "lead.created", "data": {**LEAD, "phone": "12"}}, "k", SITE, 422),  # phone rule
    ({"type": "lead.created", "data": {**LEAD, "email": "maria@"}}, "k", SITE, 422),  # e-mail rule
    ({"type": "lead.created", "data": {**LEAD, "name": 5}}, "k", SITE, 422),  # no int -> str coercion
    ({"type": "lead.created", "data": {**LEAD, "name": "x" * 10_001}}, "k", SITE, 422),  # string bound
    ({"type": "lead.created", "data": LEAD, "metadata": {"nope": 1}}, "k", SITE, 422),
    ({"type": "lead.created", "data": LEAD, "metadata": None}, "k", SITE, 422),  # the fast path took it before
    ({"type": "lead.created", "data": LEAD, "metadata": {"utm": {"source": 5}}}, "k", SITE, 422),
    ({"type": "lead.created", "data": LEAD, "idempotency_key": "has space"}, None, SITE, 422),
    ({"type": "lead.created", "data": LEAD, "source": "crm"}, "k", SITE, 403),
    ({"type": "lead.created", "data": LEAD}, "k", Verified("k2", "site", frozenset({"x.y"}), None), 403),
    ({"type": "lead.created", "data": LEAD}, "k", Verified("k3", "crm", None, None), 403),
]


@pytest.mark.parametrize(("raw", "header_key", "verified", "status"), REFUSED)
def test_what_the_reference_refuses_the_fast_path_hands_back(
    raw: Any, header_key: str | None, verified: Verified, status: int
) -> None:
    assert FAST.prepare_single(raw, verified, header_key, None, NOW) is None
    with pytest.raises(ApiError) as refused:
        reference(raw, header_key, verified)
    assert refused.value.status == status


def test_one_bad_item_sends_the_whole_batch_to_the_per_item_path() -> None:
    items = [{"type": "lead.created", "data": LEAD, "idempotency_key": f"k-{i}"} for i in range(3)]
    assert FAST.prepare_batch(items, SITE, None, NOW) is not None
    items[1] = {**items[1], "source": "crm"}
    assert FAST.prepare_batch(items, SITE, None, NOW) is None


def test_a_batch_item_without_its_own_idempotency_key_goes_to_the_per_item_path() -> None:
    items = [{"type": "lead.created", "data": LEAD, "idempotency_key": "k-0"}, {"type": "lead.created", "data": LEAD}]
    assert FAST.prepare_batch(items, SITE, None, NOW) is None
    with pytest.raises(ApiError) as refused:
        reference(items[1], None)
    assert refused.value.status == 422


TRICKY_PHONES = [
    "+55 11 98765-4321",
    "(11) 98765-4321",
    "11987654321",
    "5511987654321",
    "551198765432100",  # 15 digits
    "119876543",  # 9 digits
    "11\t98765\t4321",  # tabs: Python's \s, not the pattern's separators
    "11 98765 4321\n",  # a final newline
    "\u0661\u0661\u0669\u0668\u0667\u0666\u0665\u0664\u0663\u0662\u0661",  # Arabic-Indic digits
    "11\u00a098765\u00a04321",  # no-break spaces
    "11 98765 4321 ramal 2",
    "",
]
TRICKY_EMAILS = [
    "maria@example.com",
    "maria@example.com\n",
    "ma ria@example.com",
    "ma\x1cria@example.com",
    "maria@exa\u2003mple.com",
    "m@e.co",
    "m@e.c",
    "@example.com",
    "maria@@example.com",
    "maria@example",
    "m" * 64 + "@example.com",
    "m" * 65 + "@example.com",
    "joão@exemplo.com.br",
]


def _reference_accepts(data: dict[str, Any]) -> bool:
    try:
        reference({"type": "lead.created", "data": data}, "k", SITE)
    except ApiError:
        return False
    return True


@pytest.mark.parametrize(
    "data",
    [{**LEAD, "phone": phone} for phone in TRICKY_PHONES] + [{**LEAD, "email": email} for email in TRICKY_EMAILS],
)
def test_the_fast_path_never_takes_what_the_reference_refuses(data: dict[str, Any]) -> None:
    """The fast path's phone and e-mail patterns accept a subset of the reference validators: whatever
    it takes, the reference takes too (what it hands back, the reference decides)."""
    fast = FAST.prepare_single({"type": "lead.created", "data": data}, SITE, "k", None, NOW)
    if fast is not None:
        assert _reference_accepts(data)


@pytest.mark.parametrize(
    "phone", ["\u0661\u0661\u0669\u0668\u0667\u0666\u0665\u0664\u0663\u0662\u0661", "\uff10\uff1111987654321"]
)
def test_digits_of_other_scripts_are_refused(phone: str) -> None:
    """str.isdigit takes them; the gateways would get a number they cannot dial."""
    assert not _reference_accepts({**LEAD, "phone": phone})


def test_the_fast_path_takes_the_usual_phones_and_emails() -> None:
    for phone in ("+55 11 98765-4321", "(11) 98765-4321", "11987654321", "5511987654321"):
        assert FAST.prepare_single({"type": "lead.created", "data": {**LEAD, "phone": phone}}, SITE, "k", None, NOW)
    for email in ("maria@example.com", "joão@exemplo.com.br", "m@e.co"):
        assert FAST.prepare_single({"type": "lead.created", "data": {**LEAD, "email": email}}, SITE, "k", None, NOW)
