"""Request bodies: the public `POST /v1/events` shape, and one pydantic model per event type built
from topics.yaml `event_types.*.data`, so a schema violation names the field path and the rule."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, NotRequired, Required

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, create_model, with_config
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict

from hub.envelope import IDEMPOTENCY_KEY_PATTERN, Utm
from hub.topology import DataSpec, FieldKind, Topology

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


# Errors typed by the field's kind, so a 422 names the rule ("phone", "cpf") rather than pydantic's
# generic "value_error".
def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise PydanticCustomError("email", "must be an e-mail address (name@domain.tld)")
    return value


def _phone(value: str) -> str:
    digits = re.sub(r"[\s().+-]", "", value)
    if not (digits.isascii() and digits.isdigit()) or not 10 <= len(digits) <= 13:  # full-width digits are digits too
        raise PydanticCustomError("phone", "must be a phone number with 10-13 digits (area code included)")
    return value


def _cpf(value: str) -> str:
    digits = re.sub(r"[.-]", "", value)
    if len(digits) != 11 or not (digits.isascii() and digits.isdigit()):
        raise PydanticCustomError("cpf", "must be a CPF: 11 digits (dots and dash optional)")
    if digits == digits[0] * 11:
        raise PydanticCustomError("cpf", "is not a valid CPF (all digits equal)")
    for size in (9, 10):
        total = sum(int(d) * w for d, w in zip(digits[:size], range(size + 1, 1, -1), strict=True))
        check = (total * 10) % 11 % 10
        if check != int(digits[size]):
            raise PydanticCustomError("cpf", "is not a valid CPF (check digits do not match)")
    return value


MAX_STRING = 10_000  # characters in one string field of an event's data

_KINDS: dict[FieldKind, Any] = {
    "string": Annotated[str, Field(max_length=MAX_STRING)],
    "integer": int,
    "number": float,
    "boolean": bool,
    "object": dict[str, Any],
    "array": list[Any],
    "datetime": AwareDatetime,
    "date": date,
    "email": Annotated[str, AfterValidator(_email)],
    "phone": Annotated[str, AfterValidator(_phone)],
    "cpf": Annotated[str, AfterValidator(_cpf)],
}


# The fast path (data_typed_dict) only needs valid or not; anything it refuses goes to the reference
# models above, whose Python validators word the error. So there the e-mail and phone rules are
# patterns pydantic-core checks itself (no call back into Python per field), written so that they
# accept a subset of what the validators accept: ASCII digits and separators only, and for e-mails the
# exact whitespace set of Python's str.isspace (Rust's \s lacks \x1c-\x1f). Rust's `$` is the end of
# the text (Python's also matches before a final newline). tests/unit/ingress/test_fast_path.py checks
# the subset on tricky inputs.
_FAST_KINDS: dict[FieldKind, Any] = {
    **_KINDS,
    "email": Annotated[str, Field(pattern=r"^[^@\s\x1c-\x1f]{1,64}@[^@\s\x1c-\x1f]+\.[^@\s\x1c-\x1f]{2,}$")],
    "phone": Annotated[str, Field(pattern=r"^[ ().+\-]*(?:[0-9][ ().+\-]*){10,13}$")],
}


# extra="allow": sources may send more than we declare; declared fields are checked strictly.
_DATA_CONFIG = ConfigDict(extra="allow", strict=False)


def data_model(event_type: str, spec: DataSpec) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for name, kind in spec.fields.items():
        annotation = _KINDS[kind]
        if name in spec.required:
            fields[name] = (annotation, ...)
        else:
            fields[name] = (annotation | None, None)
    model_name = "Data_" + event_type.replace(".", "_")
    return create_model(model_name, __config__=_DATA_CONFIG, **fields)


def data_typed_dict(event_type: str, spec: DataSpec) -> type:
    """The same rules as `data_model`, as a TypedDict: pydantic-core builds no model instance per event,
    for the ingress fast path that only needs valid/invalid (docs/benchmarks.md, ninth session)."""
    fields: dict[str, Any] = {
        name: Required[_FAST_KINDS[kind]] if name in spec.required else NotRequired[_FAST_KINDS[kind] | None]
        for name, kind in spec.fields.items()
    }
    typed = TypedDict("Data_" + event_type.replace(".", "_"), fields, total=False)  # type: ignore[misc]
    return with_config(_DATA_CONFIG)(typed)


def data_models(topology: Topology) -> dict[str, type[BaseModel]]:
    return {name: data_model(name, et.data) for name, et in topology.event_types.items()}


class MetadataIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    utm: Utm | None = None
    labels: dict[str, Annotated[str, Field(max_length=500)]] = Field(default_factory=dict, max_length=50)
    # Flat UTM fields are accepted too (utm_source=... as sent by most sites) and folded into `utm`.
    utm_source: str | None = Field(default=None, max_length=200)
    utm_medium: str | None = Field(default=None, max_length=200)
    utm_campaign: str | None = Field(default=None, max_length=200)
    utm_term: str | None = Field(default=None, max_length=200)
    utm_content: str | None = Field(default=None, max_length=200)

    def utm_dict(self) -> dict[str, str] | None:
        """UTM fields, flat (utm_source=...) and nested (utm.source) merged; nested wins. Already validated."""
        merged = {
            name: value
            for name in ("source", "medium", "campaign", "term", "content")
            if (value := getattr(self, f"utm_{name}")) is not None
        }
        if self.utm is not None:
            merged.update({k: v for k, v in self.utm.__dict__.items() if v is not None})
        return merged or None

    def utm_merged(self) -> Utm | None:
        flat = (self.utm_source, self.utm_medium, self.utm_campaign, self.utm_term, self.utm_content)
        if all(v is None for v in flat):
            return self.utm  # the common case needs no new model
        merged = self.utm_dict()
        return Utm.model_validate(merged) if merged else None


class EventIn(BaseModel):
    """Body of POST /v1/events (and each item of a batch)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "type": "lead.created",
                    "data": {
                        "name": "Maria Souza",
                        "phone": "+55 11 98765-4321",
                        "email": "maria@example.com",
                        "origin": "site",
                    },
                    "idempotency_key": "site-form-7f3a9c",
                    "metadata": {"utm": {"source": "google", "medium": "cpc", "campaign": "cuidado-idosos"}},
                }
            ]
        },
    )

    type: str = Field(min_length=1, max_length=100, description="event type from topics.yaml")
    data: dict[str, Any]
    source: str | None = Field(default=None, description="must equal the API key's source when given")
    priority: int | None = Field(default=None, ge=1, le=5, description="1 critical .. 5 bulk; default from the route")
    idempotency_key: str | None = Field(
        default=None, pattern=IDEMPOTENCY_KEY_PATTERN, description="required here or in the Idempotency-Key header"
    )
    occurred_at: AwareDatetime | None = None
    metadata: MetadataIn = Field(default_factory=MetadataIn)


class BatchIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "events": [
                        {
                            "type": "cuidador.updated",
                            "idempotency_key": "cuid-881-v3",
                            "data": {"cuidador_id": "881", "status": "ativo"},
                        },
                        {
                            "type": "cuidador.updated",
                            "idempotency_key": "cuid-882-v7",
                            "data": {"cuidador_id": "882", "status": "ferias"},
                        },
                    ]
                }
            ]
        },
    )

    events: list[dict[str, Any]] = Field(min_length=1, description="up to CARINHO_BATCH_MAX_EVENTS (500) events")


class Accepted(BaseModel):
    event_id: str
    status: str = "accepted"
    topic: str
    priority: int


class ErrorItem(BaseModel):
    field: str
    rule: str
    message: str


class ErrorBody(BaseModel):
    status: int
    error: str
    message: str
    errors: list[ErrorItem] = []
    request_id: str | None = None


class BatchItemResult(BaseModel):
    index: int
    status: int
    event_id: str | None = None
    error: ErrorBody | None = None


class BatchResult(BaseModel):
    accepted: int
    rejected: int
    results: list[BatchItemResult]
