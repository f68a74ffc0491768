"""The request audit line skips masking only when every field noted is one of the ingress's own
(ids, the key's source and id, a known type, counts): any other field is masked as before."""

from __future__ import annotations

import io
import logging
from typing import Any

from ingress.audit import AuditRecord
from tests.unit.hub.test_logging import json_handler_alone, lines, stream

__all__ = ["stream"]  # the fixture, used by name below

PHONE = "11987654321"


def audit_line(stream: io.StringIO, noted: dict[str, Any], path: str = "/v1/events") -> dict[str, object]:
    scope: dict[str, Any] = {"type": "http", "method": "POST", "path": path, "headers": []}
    with json_handler_alone():
        assert logging.getLogger("ingress.audit").isEnabledFor(logging.INFO)
        record = AuditRecord(scope)
        record.fields.update(noted)
        record.finish(scope, 202, {}, route_path="/v1/events")
    (line,) = lines(stream)
    return line


def test_the_ingress_own_fields_are_written_as_noted(stream: io.StringIO) -> None:
    own = {"source": "site", "key_id": "k_abc123", "event_type": "lead.created", "events": 3, "accepted": 3}
    line = audit_line(stream, {**own, "event_id": "5b2f0a0c-1111-4222-8333-444455556666"})
    assert {k: line[k] for k in own} == own
    assert line["event_id"] == "5b2f0a0c-1111-4222-8333-444455556666" and line["path"] == "/v1/events"


def test_a_field_the_ingress_does_not_own_is_masked(stream: io.StringIO) -> None:
    line = audit_line(stream, {"source": "site", "contact": f"call {PHONE}"})
    assert PHONE not in stream.getvalue()
    assert line["source"] == "site" and line["contact"] != f"call {PHONE}"


def test_a_path_that_is_not_the_route_template_is_masked(stream: io.StringIO) -> None:
    audit_line(stream, {"source": "site"}, path=f"/v1/events/{PHONE}")
    assert PHONE not in stream.getvalue()
