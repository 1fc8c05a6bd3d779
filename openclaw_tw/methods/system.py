"""System methods: health, status, presence, system events, heartbeats, gateway identity."""

from __future__ import annotations

import os
import resource
from typing import TYPE_CHECKING, Any

from openclaw_tw.hub.gateway import COMPAT_VERSION
from openclaw_tw.hub.health import HEARTBEAT_EVERY_MS
from openclaw_tw.protocol.dispatch import CallContext, MethodTable
from openclaw_tw.protocol.schema import Arr, Bool, Int, Obj, Str
from openclaw_tw.sessions.keys import agent_of, main_key, normalize_agent_id, resolve_key

if TYPE_CHECKING:
    from openclaw_tw.hub.gateway import Gateway

_S1 = Str(min_len=1)

HEALTH_PARAMS = Obj(optional={"probe": Bool()})
STATUS_PARAMS = Obj(optional={"includeChannelSummary": Bool(), "includeCliProjection": Bool()})
SYSTEM_EVENT_PARAMS = Obj(
    required={"text": _S1},
    optional={
        "instanceId": _S1, "deviceId": _S1, "host": _S1, "ip": _S1, "mode": _S1,
        "version": _S1, "platform": _S1, "deviceFamily": _S1, "modelIdentifier": _S1,
        "lastInputSeconds": Int(minimum=0), "reason": _S1, "roles": Arr(_S1),
        "scopes": Arr(_S1), "tags": Arr(_S1),
    },
)
SET_HEARTBEATS_PARAMS = Obj(required={"enabled": Bool()})
WAKE_PARAMS = Obj(required={"mode": Str(enum=("now", "next-heartbeat")), "text": _S1},
                  optional={"sessionKey": _S1, "agentId": _S1})


def register(table: MethodTable, gw: Gateway) -> None:
    def health(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("probe") or gw.health.is_stale():
            return gw.health.refresh()
        return gw.health.current()

    def status(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        return build_status(gw, ctx.is_admin)

    def system_presence(ctx: CallContext, params: dict[str, Any]) -> list[dict[str, Any]]:
        return gw.presence.snapshot()

    def system_event(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        gw.presence.add_event(params)
        gw.broadcast_presence()
        return {"ok": True}

    def last_heartbeat(ctx: CallContext, params: dict[str, Any]) -> Any:
        return gw.last_heartbeat

    def set_heartbeats(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        gw.heartbeats_enabled = params["enabled"]
        return {"ok": True, "enabled": gw.heartbeats_enabled}

    def wake(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        """Queue a system event for the agent's heartbeat; ``now`` runs the heartbeat soon."""
        agent = normalize_agent_id(params.get("agentId"))
        raw_key = params.get("sessionKey")
        key = resolve_key(raw_key, agent_id=agent) if raw_key else main_key(agent)
        gw.heartbeat.enqueue(key, params["text"], "wake")
        if params["mode"] == "now":
            gw.heartbeat.request_wake(agent_of(key), "wake")
        return {"ok": True}

    def identity(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"deviceId": gw.identity.device_id, "publicKey": gw.identity.public_key}

    table.add("health", health, HEALTH_PARAMS)
    table.add("status", status, STATUS_PARAMS)
    table.add("system-presence", system_presence)
    table.add("system-event", system_event, SYSTEM_EVENT_PARAMS)
    table.add("last-heartbeat", last_heartbeat)
    table.add("set-heartbeats", set_heartbeats, SET_HEARTBEATS_PARAMS)
    table.add("wake", wake, WAKE_PARAMS)
    table.add("gateway.identity.get", identity)


def _process_memory() -> dict[str, int]:
    rss = 0
    try:
        with open("/proc/self/statm", "rb") as f:
            rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"rssBytes": rss}


def build_status(gw: Gateway, admin: bool) -> dict[str, Any]:
    path = gw.display_path(gw.sessions_path()) if admin else "[redacted]"
    hb = getattr(gw, "heartbeat", None)
    every_ms = hb.config_for("main")["everyMs"] if hb is not None else HEARTBEAT_EVERY_MS
    every = f"{every_ms // 60000}m"
    zero_status = {"queued": 0, "running": 0, "succeeded": 0, "failed": 0, "timed_out": 0,
                   "cancelled": 0, "lost": 0}
    return {
        "runtimeVersion": COMPAT_VERSION,
        "hostDesktop": {"enabled": False, "state": "disabled", "port": 5900},
        "heartbeat": {
            "defaultAgentId": "main",
            "agents": [{"agentId": "main", "enabled": gw.heartbeats_enabled, "every": every,
                        "everyMs": every_ms}],
        },
        "channelSummary": [],
        "queuedSystemEvents": [],
        "degradedSecretOwners": [],
        "degradedPlugins": [],
        "tasks": {"total": 0, "active": 0, "terminal": 0, "failures": 0,
                  "byStatus": zero_status,
                  "byRuntime": {"subagent": 0, "acp": 0, "cli": 0, "cron": 0}},
        "taskAudit": {"total": 0, "warnings": 0, "errors": 0, "byCode": {}},
        "sessions": {
            "paths": [path] if admin else [],
            "count": 0,
            "defaults": {"model": None, "contextTokens": None},
            "recent": [],
            "byAgent": [{"agentId": "main", "path": path, "count": 0, "recent": []}],
        },
        "modelRuntime": {"degraded": False, "pendingAgents": []},
        "eventLoop": gw.health.lag.snapshot(),
        "processMemory": _process_memory(),
        "workerPools": {},
        "pid": os.getpid(),
        "shutdownBudget": {"timeoutMs": 2000, "reserveMs": 0, "nativeStopBudget": True,
                           "activeWork": {"rootRequests": gw.inflight}, "writeCustody": []},
    }
