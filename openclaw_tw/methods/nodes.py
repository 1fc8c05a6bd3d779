"""node.*: list/describe/rename, node pairing, invoke and the node-side methods (§6.4)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openclaw_tw import _json
from openclaw_tw.errors import UNAVAILABLE, GatewayError, invalid_request, missing_scope
from openclaw_tw.nodes.invoke import Invoker
from openclaw_tw.nodes.policy import required_approve_scopes
from openclaw_tw.nodes.queue import PRIORITIES, PendingQueues
from openclaw_tw.nodes.registry import NodeRegistry
from openclaw_tw.protocol import scopes as S
from openclaw_tw.protocol.dispatch import CallContext, MethodTable
from openclaw_tw.protocol.schema import (
    AnyValue,
    Arr,
    Bool,
    Int,
    Nullable,
    Obj,
    Str,
    closed,
)

if TYPE_CHECKING:
    from openclaw_tw.hub.gateway import Gateway

_S1 = Str(min_len=1)
NODE_ID = Obj(required={"nodeId": _S1})
REQUEST_ID = Obj(required={"requestId": _S1})
RENAME = Obj(required={"nodeId": _S1, "displayName": Str(min_len=1, max_len=64)})
INVOKE = closed(
    {"nodeId": _S1, "command": _S1, "idempotencyKey": _S1},
    {"params": AnyValue(), "timeoutMs": Int(minimum=0), "sessionKey": Str()},
    accepted="turnSourceChannel turnSourceTo turnSourceAccountId turnSourceThreadId")
RESULT = closed({"id": _S1, "ok": Bool()},
                {"nodeId": Str(), "payload": AnyValue(), "payloadJSON": Nullable(Str()),
                 "error": AnyValue()})
PROGRESS = closed({"invokeId": _S1, "seq": Int(minimum=0), "chunk": Str(max_len=16384)},
                  {"nodeId": Str()})
EVENT = closed({"event": _S1}, {"payload": AnyValue(), "payloadJSON": Nullable(Str())})
ACK = Obj(required={"ids": Arr(Str())})
DRAIN = Obj(optional={"maxItems": Int(minimum=1, maximum=10)})
ENQUEUE = closed({"nodeId": _S1, "type": Str(enum=["status.request", "location.request"])},
                 {"priority": Str(enum=list(PRIORITIES)), "payload": AnyValue(),
                  "expiresInMs": Int(minimum=1)})

# node.event flood control: a token bucket per node on the gateway clock.
EVENT_BURST = 50
EVENT_RATE_PER_S = 20.0
HOST_STATS_MIN_INTERVAL_S = 1.0


def register(table: MethodTable, gw: Gateway, registry: NodeRegistry) -> None:
    invoker = Invoker(registry)
    queues = PendingQueues(gw.now_ms)
    buckets: dict[str, tuple[float, float]] = {}  # node -> (tokens, at)
    stats_at: dict[str, float] = {}

    def node_list(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        nodes = [registry.describe(n) for n in registry.node_ids()]
        return {"ts": gw.now_ms(), "nodes": [n for n in nodes if n is not None]}

    def describe(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        out = registry.describe(params["nodeId"])
        if out is None:
            raise invalid_request(f"unknown nodeId: {params['nodeId']}")
        return {"ts": gw.now_ms(), **out}

    def pair_list(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        paired = []
        for node_id in sorted(registry.store.nodes):
            node = registry.store.nodes[node_id]
            paired.append({"nodeId": node_id, "displayName": node.display_name,
                           "clientId": node.client_id, "clientMode": node.client_mode,
                           "platform": node.platform, "version": node.version,
                           "deviceFamily": node.device_family, "caps": node.caps,
                           "commands": node.commands, "createdAtMs": node.created_at,
                           "approvedAtMs": node.approved_at,
                           "lastSeenAtMs": node.last_seen_at,
                           "lastSeenReason": node.last_seen_reason,
                           "connected": node_id in registry.live})
        pending = sorted(registry.pending.values(), key=lambda r: r.ts, reverse=True)
        return {"pending": [r.public() for r in pending], "paired": paired}

    def approve(ctx: CallContext, params: dict[str, Any]) -> Any:
        req = registry.pending.get(params["requestId"])
        if req is None:
            raise invalid_request("unknown requestId")
        for scope in required_approve_scopes(req.commands):
            if not S.scope_satisfied(scope, ctx.scopes):
                raise missing_scope(scope)
        return registry.approve(req.request_id)

    def node_event(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        live = registry.node_of(ctx.conn)
        now = gw.clock.seconds()
        tokens, at = buckets.get(live.node_id, (float(EVENT_BURST), now))
        tokens = min(float(EVENT_BURST), tokens + (now - at) * EVENT_RATE_PER_S)
        if tokens < 1:
            buckets[live.node_id] = (tokens, now)
            raise GatewayError(UNAVAILABLE, "node.event rate limit exceeded",
                               {"code": "RATE_LIMITED"}, retryable=True,
                               retry_after_ms=int((1 - tokens) / EVENT_RATE_PER_S * 1000) + 1)
        buckets[live.node_id] = (tokens - 1, now)
        event = params["event"]
        payload = params.get("payload")
        if isinstance(params.get("payloadJSON"), str):
            try:
                payload = _json.loads(params["payloadJSON"])
            except _json.JSONDecodeError:
                raise invalid_request("node.event payloadJSON is not valid JSON") from None
        registry.seen(live.node_id, "event")
        if event == "node.host.stats":
            live.host_stats = payload
            if now - stats_at.get(live.node_id, -1e9) < HOST_STATS_MIN_INTERVAL_S:
                return {"ok": True, "event": event, "handled": True, "reason": "throttled"}
            stats_at[live.node_id] = now
            gw.broadcast("node.hostStats", {"nodeId": live.node_id, "hostStats": payload,
                                            "ts": gw.now_ms()}, scope=S.READ, drop_if_slow=True)
            return {"ok": True, "event": event, "handled": True}
        if event in ("node.presence.alive", "exec.started", "exec.finished", "exec.denied"):
            return {"ok": True, "event": event, "handled": True}
        return {"ok": True, "event": event, "handled": False, "reason": "unsupported event"}

    def node_id_of(ctx: CallContext) -> str:
        return registry.node_of(ctx.conn).node_id

    def enqueue(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        node_id = params["nodeId"]
        if node_id not in registry.live and node_id not in registry.store.nodes:
            raise invalid_request(f"unknown nodeId: {node_id}")
        return queues.enqueue(node_id, params["type"], params.get("priority", "normal"),
                              params.get("payload"), params.get("expiresInMs"))

    table.add("node.list", node_list, closed(accepted="connected lastConnected"))
    table.add("node.describe", describe, NODE_ID)
    table.add("node.rename", lambda c, p: registry.rename(p["nodeId"], p["displayName"]), RENAME)
    table.add("node.pair.list", pair_list)
    table.add("node.pair.approve", approve, REQUEST_ID)
    table.add("node.pair.reject", lambda c, p: registry.reject(p["requestId"]), REQUEST_ID)
    table.add("node.pair.remove", lambda c, p: registry.remove(p["nodeId"]), NODE_ID)
    table.add("node.invoke", lambda c, p: invoker.invoke(c.conn, p), INVOKE)
    table.add("node.invoke.result", lambda c, p: invoker.result(c.conn, p), RESULT)
    table.add("node.invoke.progress", lambda c, p: invoker.progress(c.conn, p), PROGRESS)
    table.add("node.event", node_event, EVENT)
    table.add("node.pending.enqueue", enqueue, ENQUEUE)
    table.add("node.pending.pull", lambda c, p: queues.pull(node_id_of(c)), None)
    table.add("node.pending.ack", lambda c, p: queues.ack(node_id_of(c), p["ids"]), ACK)
    table.add("node.pending.drain",
              lambda c, p: queues.drain(node_id_of(c), p.get("maxItems", 10)), DRAIN)
    table.add("skills.bins", lambda c, p: {"bins": []}, None)
