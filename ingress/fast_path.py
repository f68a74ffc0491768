"""The ingress hot path: one pydantic-core call validates a whole request (a discriminated union of
one TypedDict per event type), and envelopes are serialized straight to bytes.

Validation through `accept.validate_event` + `build_envelope` costs ~110 us an event; this path a
fraction of that. It only takes requests where everything is valid and in scope: any problem returns
None and the caller runs the reference pipeline (`ingress.accept`), which produces the exact error
(field path and rule) — so the error contract has one implementation. Tests check that both paths
write the same envelope.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, Required

import orjson
from pydantic import AwareDatetime, ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict

from hub.data_rules import data_problems
from hub.envelope import IDEMPOTENCY_KEY_PATTERN, SCHEMA_VERSION, derive_event_id_str, json_time
from hub.topology import Topology
from ingress.accept import IDEMPOTENCY_KEY
from ingress.api_keys import Verified
from ingress.event_schemas import MetadataIn, data_typed_dict


# Items are validated into TypedDicts, not models: pydantic-core builds no model instance per event
# (14 % less ingress CPU per batch, bench.ingress_ab; the path only needs valid/invalid plus a few
# fields). Same rules as `event_schemas.EventIn` plus the type's data model; tests check both refuse
# the same requests.
@with_config(ConfigDict(extra="forbid"))
class _SingleBase(TypedDict, total=False):
    """POST /v1/events: the idempotency key may come from the header instead."""

    source: str | None
    priority: Annotated[int, Field(ge=1, le=5)] | None
    idempotency_key: Annotated[str, Field(pattern=IDEMPOTENCY_KEY_PATTERN)] | None
    occurred_at: AwareDatetime | None
    metadata: MetadataIn  # not nullable: EventIn refuses null metadata too


class _BatchBase(_SingleBase, total=False):
    idempotency_key: Required[Annotated[str, Field(pattern=IDEMPOTENCY_KEY_PATTERN)]]  # type: ignore[misc]  # a batch has no header to fall back on


class FastEnvelope:
    """What a route needs to publish one event."""

    __slots__ = ("event_id", "headers", "key", "priority", "topic", "type", "value")

    def __init__(
        self,
        event_id: str,
        type_: str,
        priority: int,
        topic: str,
        key: bytes,
        value: bytes,
        headers: list[tuple[str, bytes]],
    ):
        self.event_id = event_id
        self.type = type_
        self.priority = priority
        self.topic = topic
        self.key = key
        self.value = value
        self.headers = headers


class FastPath:
    def __init__(self, topology: Topology):
        self.topology = topology
        data = {name: data_typed_dict(name, et.data) for name, et in topology.event_types.items()}
        self._single: TypeAdapter[Any] = TypeAdapter(_item_union(_SingleBase, data))
        self._batch: TypeAdapter[list[Any]] = TypeAdapter(list[_item_union(_BatchBase, data)])  # type: ignore[misc]
        self._allowed_sources = {name: frozenset(et.sources) for name, et in topology.event_types.items()}
        self._data_specs = {name: et.data for name, et in topology.event_types.items()}
        self._default_priority = {name: topology.default_priority(name) for name in topology.event_types}
        self._topics = {level: topology.priority_topic(level) for level in range(1, 6)}
        self._header_cache: dict[tuple[str, str, int, str | None], list[tuple[str, bytes]]] = {}
        self._bare_metadata: dict[str | None, orjson.Fragment] = {}

    def prepare_single(
        self, raw: Any, verified: Verified, header_key: str | None, request_id: str | None, received_at: datetime
    ) -> FastEnvelope | None:
        """The envelope for one event, or None when it needs the reference path (an error)."""
        try:
            item = self._single.validate_python(raw)
        except ValidationError:
            return None
        body_key: str | None = item.get("idempotency_key")
        if body_key is not None and header_key is not None and body_key != header_key:
            return None
        key = body_key or header_key
        if key is None or (header_key is not None and not IDEMPOTENCY_KEY.match(header_key)):
            return None
        return self._envelope(raw, item, key, verified, request_id, json_time(received_at))

    def prepare_batch(
        self, items: list[Any], verified: Verified, request_id: str | None, received_at: datetime
    ) -> list[FastEnvelope] | None:
        """Envelopes for every item, or None when any item needs the per-item path (an error)."""
        try:
            validated = self._batch.validate_python(items)
        except ValidationError:
            return None
        if len({item["idempotency_key"] for item in validated}) != len(validated):
            return None  # a key twice in one batch: the per-item path refuses the repeats
        received = json_time(received_at)
        out: list[FastEnvelope] = []
        for raw, item in zip(items, validated, strict=True):
            envelope = self._envelope(raw, item, item["idempotency_key"], verified, request_id, received)
            if envelope is None:
                return None
            out.append(envelope)
        return out

    def _metadata(self, metadata: MetadataIn | None, request_id: str | None) -> Any:
        """The envelope's metadata; without metadata in the request (most batch items) it is the same
        for every event of the request, so it is serialized once (an orjson Fragment)."""
        if metadata is not None:
            return _metadata(metadata, request_id)
        fragment = self._bare_metadata.get(request_id)
        if fragment is None:
            if len(self._bare_metadata) >= 256:  # request ids vary: keep the cache small
                self._bare_metadata.clear()
            fragment = self._bare_metadata[request_id] = orjson.Fragment(orjson.dumps(_metadata(None, request_id)))
        return fragment

    def _headers(self, event_type: str, source: str, priority: int, request_id: str | None) -> list[tuple[str, bytes]]:
        """The headers every event of this type, source and priority shares (all but event_id)."""
        cache_key = (event_type, source, priority, request_id)
        headers = self._header_cache.get(cache_key)
        if headers is None:
            headers = [
                ("event_type", event_type.encode()),
                ("source", source.encode()),
                ("priority", str(priority).encode()),
                ("schema_version", b"1"),
                ("content-type", b"application/json"),
            ]
            if request_id is not None:
                headers.append(("request_id", request_id.encode()))
            if len(self._header_cache) >= 256:  # request ids vary: keep the cache small
                self._header_cache.clear()
            self._header_cache[cache_key] = headers
        return headers

    def _envelope(
        self, raw: Any, item: dict[str, Any], key: str, verified: Verified, request_id: str | None, received: str
    ) -> FastEnvelope | None:
        source = verified.source
        event_type: str = item["type"]
        claimed = item.get("source")
        if (
            (claimed is not None and claimed != source)
            or source not in self._allowed_sources[event_type]
            or (verified.event_types is not None and event_type not in verified.event_types)
        ):
            return None  # a 403: the reference path names the rule
        if data_problems(raw["data"], self._data_specs[event_type]):
            return None  # the processors' rules on the data as sent: the reference path's 422
        priority: int = item.get("priority") or self._default_priority[event_type]
        event_id = derive_event_id_str(source, key)
        value = orjson.dumps(
            {
                "schema_version": SCHEMA_VERSION,
                "event_id": event_id,
                "type": event_type,
                "source": source,
                "priority": priority,
                "idempotency_key": key,
                "occurred_at": json_time(occurred) if (occurred := item.get("occurred_at")) is not None else received,
                "received_at": received,
                "data": raw["data"],
                "metadata": self._metadata(item.get("metadata"), request_id),
            }
        )
        headers = [("event_id", event_id.encode()), *self._headers(event_type, source, priority, request_id)]
        return FastEnvelope(event_id, event_type, priority, self._topics[priority], key.encode(), value, headers)


def _metadata(metadata: MetadataIn | None, request_id: str | None) -> dict[str, Any]:
    """Same as EventEnvelope.to_json's metadata for an envelope built by accept.build_envelope."""
    out: dict[str, Any] = {"labels": metadata.labels if metadata is not None else {}}
    if request_id is not None:
        out["request_id"] = request_id
    utm = metadata.utm_merged() if metadata is not None else None
    if utm is not None:
        out["utm"] = {k: v for k, v in utm.__dict__.items() if v is not None}
    return out


def _item_union(base: type, data: dict[str, type]) -> Any:
    """One TypedDict per event type (the base's fields plus `type` and `data`), discriminated by type."""
    variants = [
        with_config(ConfigDict(extra="forbid"))(  # TypedDicts do not inherit their base's config
            type(base)(
                f"{base.__name__.strip('_')}_{name.replace('.', '_')}",
                (base,),
                {"__annotations__": {"type": Required[Literal[name]], "data": Required[typed]}},
                total=False,
            )
        )
        for name, typed in data.items()
    ]
    return variants[0] if len(variants) == 1 else Annotated[_union(variants), Field(discriminator="type")]


def _union(variants: Sequence[type]) -> Any:
    from typing import Union

    return Union[tuple(variants)]  # noqa: UP007 - built from a runtime list
