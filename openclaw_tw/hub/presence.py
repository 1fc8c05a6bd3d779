"""Presence: who is connected (non-ephemeral clients), the gateway itself, system-event texts.

``version`` is the presence half of ``stateVersion``; it bumps on every change.  Entries
from ``system-event`` are bounded in count and in encoded bytes (``protocol/limits.py``):
the oldest go first, so every snapshot (and hello-ok, which carries one) stays small
whatever clients send.  Connected clients' entries are bounded by the sockets themselves.
"""

from __future__ import annotations

import socket
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from openclaw_tw import _json
from openclaw_tw.protocol.limits import (
    MAX_PRESENCE_EVENT_BYTES,
    MAX_PRESENCE_EVENT_ENTRIES,
    MAX_PRESENCE_FIELD_CHARS,
    MAX_PRESENCE_LIST_ITEMS,
    MAX_PRESENCE_TEXT_CHARS,
    MAX_PRESENCE_TEXT_ENTRIES,
)


class PresenceRegistry:
    def __init__(self, now_ms: Callable[[], int], self_entry: dict[str, Any]) -> None:
        self._now_ms = now_ms
        self._self = self_entry
        self._entries: OrderedDict[str, dict[str, Any]] = OrderedDict()
        # system-event entries, oldest first: key -> encoded size
        self._events: OrderedDict[str, int] = OrderedDict()
        self._event_bytes = 0
        self.version = 1

    def snapshot(self) -> list[dict[str, Any]]:
        entries = [{**self._self, "ts": self._now_ms()}]
        entries.extend(self._entries.values())
        return entries

    def upsert(self, key: str, entry: dict[str, Any]) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        self.version += 1

    def remove(self, key: str) -> bool:
        self._forget_event(key)
        if self._entries.pop(key, None) is None:
            return False
        self.version += 1
        return True

    def event_usage(self) -> tuple[int, int]:
        """(system-event entries held, their encoded bytes)."""
        return len(self._events), self._event_bytes

    def add_event(self, params: dict[str, Any]) -> None:
        """A ``system-event``: keyed by instanceId when given, else a text entry.

        The params schema already bounds each field; strings are clipped here as well, so
        the registry's bounds hold for any caller."""
        now = self._now_ms()
        entry: dict[str, Any] = {
            k: _clip(k, v) for k, v in params.items() if k in _EVENT_FIELDS and v is not None
        }
        entry["ts"] = now
        key = str(params.get("instanceId") or f"text:{now}:{self.version}")
        self._forget_event(key)
        self.upsert(key, entry)
        size = len(_json.dumps(entry))
        self._events[key] = size
        self._event_bytes += size
        self._evict_events()

    def _evict_events(self) -> None:
        texts = sum(1 for k in self._events if k.startswith("text:"))
        while self._events and (len(self._events) > MAX_PRESENCE_EVENT_ENTRIES
                                or self._event_bytes > MAX_PRESENCE_EVENT_BYTES
                                or texts > MAX_PRESENCE_TEXT_ENTRIES):
            if texts > MAX_PRESENCE_TEXT_ENTRIES:
                old = next(k for k in self._events if k.startswith("text:"))
            else:
                old = next(iter(self._events))
            texts -= old.startswith("text:")
            self._forget_event(old)
            self._entries.pop(old, None)

    def _forget_event(self, key: str) -> None:
        size = self._events.pop(key, None)
        if size is not None:
            self._event_bytes -= size


def _clip(field: str, value: Any) -> Any:
    if isinstance(value, str):
        limit = MAX_PRESENCE_TEXT_CHARS if field == "text" else MAX_PRESENCE_FIELD_CHARS
        return value[:limit]
    if isinstance(value, list):
        return [v[:MAX_PRESENCE_FIELD_CHARS] if isinstance(v, str) else v
                for v in value[:MAX_PRESENCE_LIST_ITEMS]]
    return value


_EVENT_FIELDS = frozenset(
    {"text", "host", "ip", "version", "platform", "deviceFamily", "modelIdentifier",
     "mode", "reason", "instanceId", "lastInputSeconds", "tags", "deviceId", "roles", "scopes"}
)


def gateway_self_entry(version: str, instance_id: str, ip: str) -> dict[str, Any]:
    host = socket.gethostname().split(".")[0] or "openclaw"
    import platform as _platform

    plat = f"{_platform.system().lower()} {_platform.release()}"
    return {
        "host": host,
        "ip": ip,
        "version": version,
        "platform": plat,
        "deviceFamily": _platform.system() or "Linux",
        "mode": "gateway",
        "reason": "self",
        "instanceId": instance_id,
        "text": f"Gateway: {host} ({ip}) · app {version} · mode gateway · reason self",
    }


def client_entry(client: dict[str, Any], ip: str, conn_id: str, scopes: list[str],
                 role: str, now_ms: int, device_id: str | None = None) -> dict[str, Any]:
    """A connection's presence entry.  ``deviceId`` (a device-signed connect) is how the Control
    UI's Devices page ties the live entry to its paired device; without it every connected
    device also shows as "connected without pairing"."""
    entry: dict[str, Any] = {
        "host": client.get("displayName") or client.get("id"),
        "clientId": client.get("id"),
        "ip": ip,
        "version": client.get("version"),
        "platform": client.get("platform"),
        "deviceFamily": client.get("deviceFamily"),
        "modelIdentifier": client.get("modelIdentifier"),
        "timeZone": client.get("timeZone"),
        "mode": client.get("mode"),
        "reason": "connect",
        "deviceId": device_id,
        "instanceId": client.get("instanceId") or conn_id,
        "roles": [role],
        "scopes": scopes,
        "ts": now_ms,
        "onlineSince": now_ms,
    }
    return {k: v for k, v in entry.items() if v is not None}
