"""Sync source feeds (topics.yaml `syncs`), following the changes-feed contract:

    GET /sources/<source><sync.path>?since=<ISO-8601 or empty>&cursor=<opaque or empty>&limit=<n>
    -> 200 {"items": [{"id", "updated_at", ...}], "next_cursor": str | null}

Items are ordered by (updated_at, id); `since` is exclusive (updated_at > since). The cursor is an
opaque token carrying the position within the `since` query."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class SourceFeeds:
    def __init__(self) -> None:
        self._items: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}

    def seed(self, source: str, path: str, items: list[dict[str, Any]]) -> int:
        table = self._items.setdefault((source, path), {})
        for item in items:
            if not isinstance(item, dict) or "id" not in item or "updated_at" not in item:
                raise ValueError("every item needs 'id' and 'updated_at'")
            _parse_time(str(item["updated_at"]))
            table[str(item["id"])] = {**item, "id": str(item["id"])}
        return len(table)

    def clear(self, source: str | None = None) -> None:
        if source is None:
            self._items.clear()
        else:
            for key in [k for k in self._items if k[0] == source]:
                del self._items[key]

    def count(self, source: str) -> int:
        return sum(len(v) for k, v in self._items.items() if k[0] == source)

    def page(self, source: str, path: str, since: str, cursor: str, limit: int) -> dict[str, Any]:
        table = self._items.get((source, path), {})
        items = sorted(table.values(), key=lambda i: (_parse_time(str(i["updated_at"])), i["id"]))
        if since:
            floor = _parse_time(since)
            items = [i for i in items if _parse_time(str(i["updated_at"])) > floor]
        offset = 0
        if cursor:
            offset = int(orjson.loads(base64.urlsafe_b64decode(cursor.encode()))["o"])
        page = items[offset : offset + limit]
        more = offset + limit < len(items)
        next_cursor = base64.urlsafe_b64encode(orjson.dumps({"o": offset + limit})).decode() if more else None
        return {"items": page, "next_cursor": next_cursor}
