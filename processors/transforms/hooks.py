"""Python transforms for the few routes a field map cannot express (topics.yaml `hook: name`).

A hook receives the envelope as its JSON reads back (`EventEnvelope.to_document()`) and returns the
destination payload. Raising any exception sends the event to the dead-letter topic with reason
`transform_failed`; hooks must be pure (no I/O) so a replay gives the same payload, and must not
change what they receive (its `data` is the envelope's own, read by the other destinations' transforms
and the automations after them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from hub.phones import international_digits

Hook = Callable[[Mapping[str, Any]], dict[str, Any]]

_NON_DIGITS = re.compile(r"\D")


class TransformError(ValueError):
    """The event cannot be transformed for this destination (bad or missing data)."""


def _cpf_digits(value: str) -> str:
    digits = _NON_DIGITS.sub("", value)
    if len(digits) != 11:
        raise TransformError("cpf must have 11 digits")
    return digits


def _phone_e164(value: str) -> str:
    digits = international_digits(value)  # a Brazilian DDD + number gets the country code
    if not 12 <= len(digits) <= 13:
        raise TransformError("phone must have 10-13 digits")
    return "+" + digits


def cliente_to_financeiro(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """CRM cliente -> Financeiro customer record: CPF as digits, phone in E.164, plan upper-case,
    name split into first/last (Financeiro's billing profile wants both)."""
    data = envelope["data"]
    name = str(data["name"]).strip()
    if not name:
        raise TransformError("name is empty")
    first, _, last = name.partition(" ")
    payload: dict[str, Any] = {
        "cliente_id": data["cliente_id"],
        "nome": first,
        "sobrenome": last.strip(),
        "origem_evento": envelope["event_id"],
    }
    if data.get("cpf"):
        payload["documento"] = {"tipo": "CPF", "numero": _cpf_digits(str(data["cpf"]))}
    if data.get("email"):
        payload["email"] = str(data["email"]).lower()
    if data.get("phone"):
        payload["telefone"] = _phone_e164(str(data["phone"]))
    if data.get("plan"):
        payload["plano"] = str(data["plan"]).upper()
    return payload


HOOKS: dict[str, Hook] = {
    "cliente_to_financeiro": cliente_to_financeiro,
}
