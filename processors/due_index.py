"""Which delayed messages are still pending, and when each is due, kept in memory beside the
`scheduled` table, so the once-a-second release reads only those entries.

The table also keeps every fired message for 8 days (a re-sent completion must not fire twice),
and on disk reading an entry means decoding it: walking the whole table every second cost ~95 ms of
CPU per second with 8,000 entries (`bench.processors_release`). The index is rebuilt from the table
after every rebalance (the table then holds what recovery replayed for the partitions this worker
now owns); between rebalances the scheduler agent adds what it parks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, MutableMapping
from datetime import datetime
from typing import Any, TypeGuard

from processors import state_store


def pending(value: Any) -> TypeGuard[dict[str, Any]]:
    """A table entry still waiting to be released."""
    return isinstance(value, dict) and value.get("state") == "pending"


class DueIndex:
    def __init__(self) -> None:
        self._due: dict[Any, tuple[datetime, Any]] = {}  # key -> (due_at, partition)
        self.generation: int | None = None  # the rebalance generation it was built for

    def add(self, key: Any, value: Any) -> None:
        """Note a table entry (ignored unless pending)."""
        if pending(value):
            self._due[key] = (datetime.fromisoformat(value["due_at"]), value.get("partition"))

    def discard(self, key: Any) -> None:
        self._due.pop(key, None)

    async def rebuild(self, store: MutableMapping[Any, Any], generation: int) -> None:
        """Every pending entry of the table, walked in chunks (the routers run between them). Entries
        the agent parks meanwhile go into the same dict, so none is missed."""
        self._due = {}
        self.generation = generation
        for chunk in state_store.chunks(store, 1_000):
            for key, value in chunk:
                self.add(key, value)
            await asyncio.sleep(0)

    def split(self, now: datetime, partitions: Iterable[Any]) -> tuple[list[Any], int]:
        """The keys due by `now` in `partitions`, and how many there wait for later."""
        owned = set(partitions)
        due: list[Any] = []
        waiting = 0
        for key, (due_at, partition) in self._due.items():
            if partition not in owned:
                continue
            if due_at > now:
                waiting += 1
            else:
                due.append(key)
        return due, waiting

    def __len__(self) -> int:
        return len(self._due)


__all__ = ["DueIndex", "pending"]
