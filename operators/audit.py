"""Audit of operator actions on the audit topic (kept 90 days, shared with the ingress's request
audit). One JSON record per action: who, when, what, how many records, with which filters.

Key = "operator:<name>" (one operator's actions stay in order on one partition); header
`audit_kind: operator_action` lets readers skip request-audit records without parsing them.
"""

from __future__ import annotations

import os
import pwd
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.masking import mask_data
from hub.topology import Topology
from operators.kafka_io import LATE_RECORDS, DeliveryErrors, flush_or_raise, producer, scan_topic

KIND = "operator_action"
KIND_HEADER = "audit_kind"


def resolve_operator(explicit: str | None, configured: str | None) -> str:
    """--operator, else CARINHO_OPERATOR, else the OS user."""
    for name in (explicit, configured):
        if name and name.strip():
            return name.strip()
    return os_user()


def os_user() -> str:
    """The account the process runs as, from its uid. Not getpass.getuser(): that returns $LOGNAME or
    $USER when set, so `USER=someone carinho dlq purge ...` would write another name in the audit's
    `os_user` (and only the settings models read the environment)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # no passwd entry (some containers)
        return "unknown"


class AuditEntry(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    kind: str = KIND
    action_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    action: str  # e.g. "dlq.replay", "dlq.edit", "dlq.show", "report.daily"
    operator: str
    os_user: str
    host: str = ""
    at: datetime
    dry_run: bool = False
    reveal: bool = False  # personal data was shown unmasked
    count: int = 0  # how many records the action touched (or would touch)
    filters: dict[str, Any] = {}
    detail: dict[str, Any] = {}  # masked; never payload values

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))


class AuditLog:
    def __init__(self, topology: Topology, bootstrap: str, operator: str) -> None:
        self.topic = topology.system_topic("audit")
        self.bootstrap = bootstrap
        self.operator = operator

    def record(
        self,
        action: str,
        *,
        count: int = 0,
        filters: dict[str, Any] | None = None,
        detail: dict[str, Any] | None = None,
        dry_run: bool = False,
        reveal: bool = False,
        timeout: float = 30.0,
    ) -> AuditEntry:
        """Write one entry and wait for the broker's acknowledgement (up to `timeout` s): an action
        that cannot be audited must not look audited."""
        entry = AuditEntry(
            action=action,
            operator=self.operator,
            os_user=os_user(),
            host=socket.gethostname(),
            at=datetime.now(UTC),
            dry_run=dry_run,
            reveal=reveal,
            count=count,
            filters={k: v for k, v in (filters or {}).items() if v not in (None, [], "")},
            detail=mask_data(detail or {}),
        )
        prod = producer(self.bootstrap)
        errors = DeliveryErrors()
        prod.produce(
            self.topic,
            key=f"operator:{self.operator}".encode(),
            value=entry.to_json(),
            headers=[(KIND_HEADER, KIND.encode()), ("action", action.encode())],
            on_delivery=errors,
        )
        flush_or_raise(prod, "audit", timeout)
        errors.raise_if_any()
        return entry


def read_audit(
    topology: Topology,
    bootstrap: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    action: str | None = None,
    operator: str | None = None,
) -> Iterator[AuditEntry]:
    """Operator actions on the audit topic, in topic order per partition (callers sort by `at`)."""
    # The audit topic also holds a record per ingress request: stop past `until` instead of at the end.
    stop = until + LATE_RECORDS if until is not None else None
    for record in scan_topic(bootstrap, topology.system_topic("audit"), since=since, until=stop):
        if record.header(KIND_HEADER) != KIND or record.value is None:
            continue
        try:
            entry = AuditEntry.model_validate_json(record.value)
        except ValidationError:
            continue
        if entry.kind != KIND:
            continue
        if until is not None and entry.at >= until:
            continue
        if since is not None and entry.at < since:
            continue
        if action and not (entry.action == action or entry.action.startswith(action.rstrip(".") + ".")):
            continue
        if operator and entry.operator != operator:
            continue
        yield entry
