"""Routing rules: validate a raw record, choose its entity key, fan out one DeliveryRecord per
destination (topics.yaml `routes`), and add the automations' messages.

Everything here is pure (no Kafka): the Faust agents, the confluent-kafka and quixstreams benchmark
loops all call `Router.route` so they do exactly the same work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from hub.data_rules import data_problems
from hub.delivery import DeliveryRecord, derive_delivery_id
from hub.envelope import EventEnvelope
from hub.masking import mask_text
from hub.topology import DataSpec, Topology
from processors.automations.feedback import ScheduledMessage, feedback_request
from processors.automations.lead_auto_reply import lead_auto_reply
from processors.transforms.hooks import HOOKS, Hook
from processors.transforms.mapping import check_map, compile_map


class InvalidRecord(ValueError):
    """Not a routable envelope. `reason` is the dead-letter reason (machine-friendly)."""

    def __init__(
        self,
        reason: str,
        message: str,
        error_class: str = "InvalidRecord",
        event_id: str | None = None,
        event_type: str | None = None,
    ):
        super().__init__(message)
        self.reason = reason
        self.error_class = error_class
        self.event_id = event_id
        self.event_type = event_type


class TransformFailed(RuntimeError):
    """A route's map or hook failed for one destination."""

    def __init__(self, destination: str, cause: BaseException):
        super().__init__(f"transform for {destination} failed: {type(cause).__name__}: {cause}")
        self.destination = destination
        self.cause = cause


def check_data(data: Mapping[str, Any], spec: DataSpec) -> list[str]:
    """Required fields present and not blank, declared fields of the right JSON kind (extra fields
    pass): hub.data_rules, the rules the ingress refuses with 422 too."""
    return [problem.message for problem in data_problems(data, spec)]


def hinted_event_id(headers: Any) -> str | None:
    """The `event_id` header of a record (Kafka headers as pairs or a mapping), if it has one: the id
    a refused record's trail hop and dead letter are filed under."""
    if not headers:
        return None
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in pairs:
        if name in ("event_id", b"event_id"):
            return value.decode(errors="replace")[:64] if isinstance(value, bytes) else None
    return None


def parse_record(value: bytes | None, topology: Topology, headers: Any = None) -> EventEnvelope:
    """The envelope in a raw events.pN record, or InvalidRecord with the reason. `headers` (pairs or a
    mapping, as the Kafka client gives them) are read only when the record is refused."""
    if value is None:
        raise InvalidRecord("empty_record", "record has no value", event_id=hinted_event_id(headers))
    if len(value) > topology.defaults.max_event_bytes:
        raise InvalidRecord(
            "too_large",
            f"record is {len(value)} bytes; max_event_bytes is {topology.defaults.max_event_bytes}",
            event_id=hinted_event_id(headers),
        )
    try:
        envelope = EventEnvelope.from_json(value)
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": str(exc)}
        where = ".".join(str(p) for p in first["loc"]) or "(record)"
        reason = "not_json" if first.get("type") == "json_invalid" else "invalid_envelope"
        raise InvalidRecord(
            reason, mask_text(f"{where}: {first['msg']}"), "ValidationError", event_id=hinted_event_id(headers)
        ) from None
    event_id = envelope.event_id_str
    event_type = topology.event_types.get(envelope.type)
    if event_type is None:
        raise InvalidRecord(
            "unknown_event_type", f"unknown event type {envelope.type!r}", event_id=event_id, event_type=envelope.type
        )
    if envelope.source not in event_type.sources:
        raise InvalidRecord(
            "source_not_allowed",
            f"source {envelope.source!r} may not send {envelope.type!r}",
            event_id=event_id,
            event_type=envelope.type,
        )
    problems = check_data(envelope.data, event_type.data)
    if problems:
        raise InvalidRecord("invalid_data", "; ".join(problems), event_id=event_id, event_type=envelope.type)
    return envelope


def entity_field(event_type: str, spec: DataSpec) -> str | None:
    """The data field naming the entity an event is about: `<entity>_id` for `<entity>.<action>`
    (cliente.created -> cliente_id), else the first required `*_id` field, else None."""
    entity = event_type.split(".", 1)[0]
    if f"{entity}_id" in spec.fields:
        return f"{entity}_id"
    return next((name for name in spec.required if name.endswith("_id")), None)


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs ~1 µs more, once per event
class RouteOutcome:
    deliveries: list[DeliveryRecord]
    scheduled: list[ScheduledMessage] = field(default_factory=list)

    @property
    def destinations(self) -> list[str]:
        return [d.destination for d in self.deliveries]


class Router:
    """topics.yaml routes + automations, compiled once per worker."""

    def __init__(self, topology: Topology, hooks: Mapping[str, Hook] | None = None):
        self.topology = topology
        self.hooks = dict(HOOKS if hooks is None else hooks)
        self._entity_fields = {name: entity_field(name, et.data) for name, et in topology.event_types.items()}
        problems = self.problems()
        if problems:
            raise ValueError("routes in topics.yaml cannot be compiled:\n  " + "\n  ".join(problems))
        # Every (event type, destination) transform ready to call: the hook, or the compiled map.
        self._transforms: dict[tuple[str, str], Callable[[dict[str, Any]], Any]] = {
            (event_type, dest): self.hooks[target.hook] if target.hook is not None else compile_map(target.map or {})
            for event_type, route in topology.routes.items()
            for dest, target in route.to.items()
        }

    def problems(self) -> list[str]:
        problems = []
        for event_type, route in self.topology.routes.items():
            for dest, target in route.to.items():
                if target.hook is not None and target.hook not in self.hooks:
                    problems.append(
                        f"routes.{event_type}.to.{dest}.hook: no hook named {target.hook!r} "
                        f"in processors/transforms/hooks.py"
                    )
                if target.map is not None:
                    problems += [f"routes.{event_type}.to.{dest}.map: {p}" for p in check_map(target.map)]
        return problems

    def entity_key(self, envelope: EventEnvelope) -> str:
        """Kafka key of the deliveries: `<entity>:<id>` so one entity's deliveries stay in order;
        events without an entity id (leads) fall back to their idempotency key."""
        name = self._entity_fields.get(envelope.type)
        value = envelope.data.get(name) if name else None
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
            return f"{envelope.type.split('.', 1)[0]}:{value}"
        return f"{envelope.source}:{envelope.idempotency_key}"

    def route(self, envelope: EventEnvelope, now: datetime) -> RouteOutcome:
        """Deliveries for every destination of the event's route plus automation messages.
        Raises TransformFailed (whole event to the dead-letter topic: no partial fan-out)."""
        key = self.entity_key(envelope)
        deliveries: list[DeliveryRecord] = []
        route = self.topology.routes.get(envelope.type)
        if route is not None:
            document = envelope.to_document()
            transforms = self._transforms
            event_id = envelope.event_id_str
            for dest, target in route.to.items():
                try:
                    payload = transforms[(envelope.type, dest)](document)
                    if not isinstance(payload, dict):
                        raise TypeError(f"transform returned {type(payload).__name__}, not an object")
                except Exception as exc:
                    raise TransformFailed(dest, exc) from exc
                deliveries.append(
                    DeliveryRecord.from_router(
                        delivery_id=derive_delivery_id(event_id, dest),
                        event_id=envelope.event_id,
                        event_type=envelope.type,
                        source=envelope.source,
                        destination=dest,
                        priority=envelope.priority,
                        entity_key=key,
                        method=target.method,
                        path=target.path,
                        payload=payload,
                        created_at=now,
                    )
                )
        automations = self.topology.automations
        reply = lead_auto_reply(envelope, automations.lead_auto_reply, entity_key=key, now=now)
        if reply is not None:
            deliveries.append(reply)
        scheduled: list[ScheduledMessage] = []
        feedback = feedback_request(envelope, automations.feedback_request, entity_key=key, now=now)
        if feedback is not None:
            scheduled.append(feedback)
        return RouteOutcome(deliveries, scheduled)
