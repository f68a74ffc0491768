"""What a record on a retry tier carries in its headers: attempts so far, when it is due, the first and
last failure, and where it originally came from (for the dead-letter headers). The value stays the
original DeliveryRecord bytes, the key the original key."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

PREFIX = "retry."
_INT_FIELDS = ("attempts", "tier", "original_partition", "original_offset", "last_status")


@dataclass(frozen=True)
class RetryState:
    attempts: int = 0  # HTTP attempts already made
    due_at_ms: int = 0  # epoch ms before which the record must not be attempted
    tier: int = 0  # retry tier it sits on (0 = main topic)
    first_failed_at: datetime | None = None
    last_status: int | None = None
    error_class: str | None = None
    original_topic: str | None = None
    original_partition: int | None = None
    original_offset: int | None = None
    parked: bool = False  # waiting for not_before, not a failure

    def to_headers(self) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        for name, value in self.__dict__.items():
            if value is None:
                continue
            if isinstance(value, datetime):
                text = value.isoformat()
            elif isinstance(value, bool):
                text = "true" if value else "false"
            else:
                text = str(value)
            out.append((PREFIX + name, text.encode()))
        return out

    @classmethod
    def from_headers(cls, headers: list[tuple[str, bytes]] | None) -> RetryState:
        values: dict[str, object] = {}
        for key, raw in headers or []:
            if not key.startswith(PREFIX) or raw is None:
                continue
            name, text = key[len(PREFIX) :], raw.decode("utf-8", "replace")
            try:
                if name in _INT_FIELDS or name == "due_at_ms":
                    values[name] = int(text)
                elif name == "first_failed_at":
                    values[name] = datetime.fromisoformat(text)
                elif name == "parked":
                    values[name] = text == "true"
                elif name in ("error_class", "original_topic"):
                    values[name] = text
            except ValueError:
                continue  # a damaged header must not make the record undeliverable
        return cls(**values)  # type: ignore[arg-type]

    def origin(self, topic: str, partition: int, offset: int) -> tuple[str, int, int]:
        """Where the record first entered the connector (the main topic), else the given coordinates."""
        if self.original_topic and self.original_partition is not None and self.original_offset is not None:
            return self.original_topic, self.original_partition, self.original_offset
        return topic, partition, offset

    def with_failure(
        self,
        *,
        tier: int,
        due_at_ms: int,
        status: int | None,
        error_class: str | None,
        origin: tuple[str, int, int],
        attempts: int,
        now: datetime,
    ) -> RetryState:
        topic, partition, offset = origin
        return replace(
            self,
            attempts=attempts,
            tier=tier,
            due_at_ms=due_at_ms,
            last_status=status,
            error_class=error_class,
            first_failed_at=self.first_failed_at or now,
            parked=False,
            original_topic=self.original_topic or topic,
            original_partition=self.original_partition if self.original_topic else partition,
            original_offset=self.original_offset if self.original_topic else offset,
        )


def strip_retry_headers(headers: list[tuple[str, bytes]] | None) -> list[tuple[str, bytes]]:
    return [(k, v) for k, v in headers or [] if not k.startswith(PREFIX)]


def epoch_ms(when: datetime | None = None) -> int:
    return int((when or datetime.now(UTC)).timestamp() * 1000)
