"""`carinho keys create|list|rotate|revoke`: API keys per source system (stored only as hashes)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from cli.settings import CliSettings
from cli.topics import load
from ingress.api_keys import ApiKeyRecord, ApiKeyStore
from ingress.api_keys_kafka import KeyStoreUnavailable, open_key_store

AUDIT_TIMEOUT_S = 5.0  # a key action waits this long for the audit topic, then says it is not audited


def register(sub: Any) -> None:
    keys = sub.add_parser("keys", help="create, list, rotate or revoke API keys")
    ksub = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    ksub.required = True

    create = ksub.add_parser("create", help="create a key for a source; prints it once")
    create.add_argument("--source", required=True)
    create.add_argument("--types", help="comma-separated event types this key may send (default: all of the source's)")
    create.add_argument("--expires", type=int, metavar="DAYS", help="expire after DAYS days")
    create.add_argument("--label", default="")
    create.add_argument("--rate", type=float, metavar="PER_SECOND", help="override the source's rate limit")
    create.set_defaults(func=_create)

    listing = ksub.add_parser("list", help="list keys (ids, scope, creation, expiry, rate limit; never the keys)")
    listing.add_argument("--source")
    listing.set_defaults(func=_list)

    rotate = ksub.add_parser("rotate", help="issue a new key with the same scope; the old one expires after --overlap")
    rotate.add_argument("key_id")
    rotate.add_argument(
        "--overlap", type=float, default=7.0, metavar="DAYS", help="days the old key keeps working (default 7; 0 = now)"
    )
    rotate.add_argument(
        "--expires",
        type=int,
        metavar="DAYS",
        help="the new key expires after DAYS days (default: the old key's lifetime; never if it had no expiry)",
    )
    rotate.set_defaults(func=_rotate)

    revoke = ksub.add_parser("revoke", help="revoke a key immediately")
    revoke.add_argument("key_id")
    revoke.set_defaults(func=_revoke)


def _store() -> tuple[ApiKeyStore, CliSettings]:
    settings = CliSettings()
    try:
        store = open_key_store(
            settings.keys_backend,
            keys_file=settings.keys_file,
            reload_interval_s=1.0,
            bootstrap=settings.kafka_bootstrap_servers,
            topic=load(settings).system_topic("api_keys"),
            follow=False,
        )
    except KeyStoreUnavailable as exc:
        _fail(f"the key store (CARINHO_KEYS_BACKEND=kafka) is unavailable: {exc}")
        raise SystemExit(2) from None
    return store, settings


def _audit(settings: CliSettings, action: str, record: ApiKeyRecord, **detail: Any) -> None:
    """The key action on the audit topic (`carinho audit --action keys`): who created, rotated or
    revoked which key. Never the key itself. Best effort: a leaked key must be revocable while Kafka
    is down, so a failure to audit is said on stderr, not fatal."""
    from operators.audit import AuditLog, resolve_operator

    operator = resolve_operator(None, settings.operator)
    facts = {"key_id": record.key_id, "source": record.source, **detail}
    try:
        AuditLog(load(settings), settings.kafka_bootstrap_servers, operator).record(
            action, count=1, detail=facts, timeout=AUDIT_TIMEOUT_S
        )
    except Exception as exc:  # KafkaUnavailable, KafkaException: said, not raised
        print(f"carinho keys: done, but not audited (Kafka: {exc}); `carinho audit` will not show it", file=sys.stderr)


def _fail(message: str) -> int:
    print(f"carinho keys: {message}", file=sys.stderr)
    return 2


def _create(args: argparse.Namespace) -> int:
    store, settings = _store()
    topology = load(settings)
    if args.source not in topology.sources:
        return _fail(f"unknown source {args.source!r}; topics.yaml defines: {', '.join(sorted(topology.sources))}")
    types = None
    if args.types:
        types = [t.strip() for t in args.types.split(",") if t.strip()]
        for t in types:
            if t not in topology.event_types:
                return _fail(f"unknown event type {t!r}; known: {', '.join(sorted(topology.event_types))}")
            if args.source not in topology.event_types[t].sources:
                return _fail(f"source {args.source!r} may not send {t!r} (topics.yaml event_types.{t}.sources)")
    if args.expires is not None and args.expires <= 0:
        return _fail("--expires must be a positive number of days")
    record, key = store.create(
        args.source, types, timedelta(days=args.expires) if args.expires else None, args.label, args.rate
    )
    _audit(settings, "keys.create", record, event_types=types, expires_at=record.expires_at, label=args.label)
    print(key)
    print(
        f"key id {record.key_id} for source {record.source}"
        f"{' (expires ' + record.expires_at.isoformat() + ')' if record.expires_at else ''}; "
        "store it now: it is not shown again",
        file=sys.stderr,
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    store, _ = _store()
    now = datetime.now(UTC)
    rows = [r for r in store.records() if args.source is None or r.source == args.source]
    print(
        f"{'KEY ID':<14}{'SOURCE':<13}{'STATUS':<9}{'CREATED':<27}{'EXPIRES':<27}{'RATE LIMIT':<13}{'TYPES':<40}LABEL"
    )
    for r in rows:
        created = r.created_at.isoformat(timespec="seconds")
        expires = r.expires_at.isoformat(timespec="seconds") if r.expires_at else "never"
        rate = f"{r.rate_limit_per_second:g}/s" if r.rate_limit_per_second is not None else "(source's)"
        types = ",".join(r.event_types) if r.event_types else "(all of the source's)"
        print(f"{r.key_id:<14}{r.source:<13}{r.status(now):<9}{created:<27}{expires:<27}{rate:<13}{types:<40}{r.label}")
    return 0


def _rotate(args: argparse.Namespace) -> int:
    store, settings = _store()
    if args.overlap < 0:
        return _fail("--overlap must be >= 0 days")
    if args.expires is not None and args.expires <= 0:
        return _fail("--expires must be a positive number of days")
    try:
        record, key = store.rotate(
            args.key_id, timedelta(days=args.overlap), timedelta(days=args.expires) if args.expires else None
        )
    except KeyError as exc:
        return _fail(str(exc.args[0]))
    _audit(settings, "keys.rotate", record, replaces=args.key_id, overlap_days=args.overlap)
    print(key)
    expiry = f"expires {record.expires_at.isoformat(timespec='seconds')}" if record.expires_at else "never expires"
    print(
        f"new key id {record.key_id} ({expiry}); the old key {args.key_id} keeps working for {args.overlap:g} day(s)",
        file=sys.stderr,
    )
    return 0


def _revoke(args: argparse.Namespace) -> int:
    store, settings = _store()
    try:
        record = store.revoke(args.key_id)
    except KeyError as exc:
        return _fail(str(exc.args[0]))
    print(f"revoked {record.key_id} (source {record.source})")
    _audit(settings, "keys.revoke", record)
    return 0
