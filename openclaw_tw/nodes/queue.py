"""Per-node pending work (node.pending.*): items an operator queued for a node to pull."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

MAX_ITEMS_PER_NODE = 100
PRIORITIES = {"high": 0, "normal": 1, "low": 2}


class PendingQueues:
    def __init__(self, now_ms: Callable[[], int]) -> None:
        self.now_ms = now_ms
        self.items: dict[str, list[dict[str, Any]]] = {}
        self.revision: dict[str, int] = {}

    def _live(self, node_id: str) -> list[dict[str, Any]]:
        now = self.now_ms()
        items = [i for i in self.items.get(node_id, [])
                 if i.get("expiresAtMs") is None or i["expiresAtMs"] > now]
        items.sort(key=lambda i: (PRIORITIES.get(i["priority"], 1), i["createdAtMs"]))
        self.items[node_id] = items
        return items

    def _bump(self, node_id: str) -> int:
        self.revision[node_id] = self.revision.get(node_id, 0) + 1
        return self.revision[node_id]

    def enqueue(self, node_id: str, kind: str, priority: str, payload: Any,
                expires_in_ms: int | None) -> dict[str, Any]:
        now = self.now_ms()
        item: dict[str, Any] = {"id": str(uuid.uuid4()), "type": kind, "priority": priority,
                                "createdAtMs": now}
        if expires_in_ms:
            item["expiresAtMs"] = now + expires_in_ms
        if payload is not None:
            item["payload"] = payload
        items = self._live(node_id)
        items.append(item)
        del items[:-MAX_ITEMS_PER_NODE]
        return {"nodeId": node_id, "revision": self._bump(node_id), "item": item}

    def pull(self, node_id: str) -> dict[str, Any]:
        items = self._live(node_id)
        return {"nodeId": node_id, "revision": self.revision.get(node_id, 0),
                "items": list(items), "hasMore": False}

    def ack(self, node_id: str, ids: list[str]) -> dict[str, Any]:
        items = self._live(node_id)
        keep = [i for i in items if i["id"] not in set(ids)]
        removed = len(items) - len(keep)
        self.items[node_id] = keep
        revision = self._bump(node_id) if removed else self.revision.get(node_id, 0)
        return {"nodeId": node_id, "revision": revision, "acked": removed}

    def drain(self, node_id: str, max_items: int) -> dict[str, Any]:
        items = self._live(node_id)
        out, rest = items[:max_items], items[max_items:]
        self.items[node_id] = rest
        revision = self._bump(node_id) if out else self.revision.get(node_id, 0)
        return {"nodeId": node_id, "revision": revision, "items": out, "hasMore": bool(rest)}
