"""Presence: who is connected (non-ephemeral clients), the gateway itself, system-event texts.

``version`` is the presence half of ``stateVersion``; it bumps on every change.
"""

from __future__ import annotations

import socket
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

MAX_TEXT_ENTRIES = 50


class PresenceRegistry:
    def __init__(self, now_ms: Callable[[], int], self_entry: dict[str, Any]) -> None:
        self._now_ms = now_ms
        self._self = self_entry
        self._entries: OrderedDict[str, dict[str, Any]] = OrderedDict()
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
        if self._entries.pop(key, None) is None:
            return False
        self.version += 1
        return True

    def add_event(self, params: dict[str, Any]) -> None:
        """A ``system-event``: keyed by instanceId when given, else a text entry."""
        now = self._now_ms()
        entry: dict[str, Any] = {
            k: v for k, v in params.items() if k in _EVENT_FIELDS and v is not None
        }
        entry["ts"] = now
        key = params.get("instanceId") or f"text:{now}:{len(self._entries)}"
        self.upsert(str(key), entry)
        texts = [k for k in self._entries if k.startswith("text:")]
        for old in texts[:-MAX_TEXT_ENTRIES]:
            del self._entries[old]


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
