"""node.*: list/describe/rename, node pairing, invoke and the node-side methods (§6.4)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IReactorTime

from openclaw_tw import _json
from openclaw_tw.errors import UNAVAILABLE, GatewayError, clip, invalid_request, missing_scope
from openclaw_tw.nodes.invoke import Invoker
from openclaw_tw.nodes.policy import required_approve_scopes
from openclaw_tw.nodes.queue import PRIORITIES, PendingQueues
from openclaw_tw.nodes.registry import NodeRegistry
from openclaw_tw.protocol import scopes as S
from openclaw_tw.protocol.dispatch import CallContext, rpc
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
LIST = closed(accepted="connected lastConnected")

# node.event flood control: a token bucket per node on the gateway clock.
EVENT_BURST = 50
EVENT_RATE_PER_S = 20.0
HOST_STATS_MIN_INTERVAL_S = 1.0


class NodesMethods:
    """Node listing, pairing, invoke routing, node events and the pending-work queues."""

    def __init__(self, registry: NodeRegistry, now_ms: Callable[[], int], clock: IReactorTime,
                 broadcast: Callable[..., Any]) -> None:
        self._registry = registry
        self._now_ms = now_ms
        self._clock = clock
        self._broadcast = broadcast
        self._invoker = Invoker(registry)
        self._queues = PendingQueues(now_ms)
        self._buckets: dict[str, tuple[float, float]] = {}  # node -> (tokens, at)
        self._stats_at: dict[str, float] = {}

    @rpc("node.list", LIST)
    def node_list(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        registry = self._registry
        nodes = [registry.describe(n) for n in registry.node_ids()]
        return {"ts": self._now_ms(), "nodes": [n for n in nodes if n is not None]}

    @rpc("node.describe", NODE_ID)
    def describe(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        out = self._registry.describe(params["nodeId"])
        if out is None:
            raise invalid_request(f"unknown nodeId: {clip(params['nodeId'])}")
        return {"ts": self._now_ms(), **out}

    @rpc("node.rename", RENAME)
    def rename(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        return self._registry.rename(params["nodeId"], params["displayName"])

    @rpc("node.pair.list")
    def pair_list(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        registry = self._registry
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

    @rpc("node.pair.approve", REQUEST_ID)
    def approve(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        req = self._registry.pending.get(params["requestId"])
        if req is None:
            raise invalid_request("unknown requestId")
        for scope in required_approve_scopes(req.commands):
            if not S.scope_satisfied(scope, ctx.scopes):
                raise missing_scope(scope)
        return self._registry.approve(req.request_id)

    @rpc("node.pair.reject", REQUEST_ID)
    def reject(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        return self._registry.reject(params["requestId"])

    @rpc("node.pair.remove", NODE_ID)
    def remove(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        return self._registry.remove(params["nodeId"])

    @rpc("node.invoke", INVOKE)
    def invoke(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        return self._invoker.invoke(ctx.conn, params)

    @rpc("node.invoke.result", RESULT)
    def invoke_result(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        return self._invoker.result(ctx.conn, params)

    @rpc("node.invoke.progress", PROGRESS)
    def invoke_progress(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        return self._invoker.progress(ctx.conn, params)

    @rpc("node.event", EVENT)
    def node_event(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        live = self._registry.node_of(ctx.conn)
        now = self._clock.seconds()
        tokens, at = self._buckets.get(live.node_id, (float(EVENT_BURST), now))
        tokens = min(float(EVENT_BURST), tokens + (now - at) * EVENT_RATE_PER_S)
        if tokens < 1:
            self._buckets[live.node_id] = (tokens, now)
            raise GatewayError(UNAVAILABLE, "node.event rate limit exceeded",
                               {"code": "RATE_LIMITED"}, retryable=True,
                               retry_after_ms=int((1 - tokens) / EVENT_RATE_PER_S * 1000) + 1)
        self._buckets[live.node_id] = (tokens - 1, now)
        event = params["event"]
        payload = params.get("payload")
        if isinstance(params.get("payloadJSON"), str):
            try:
                payload = _json.loads(params["payloadJSON"])
            except _json.JSONDecodeError:
                raise invalid_request("node.event payloadJSON is not valid JSON") from None
        self._registry.seen(live.node_id, "event")
        if event == "node.host.stats":
            live.host_stats = payload
            if now - self._stats_at.get(live.node_id, -1e9) < HOST_STATS_MIN_INTERVAL_S:
                return {"ok": True, "event": event, "handled": True, "reason": "throttled"}
            self._stats_at[live.node_id] = now
            self._broadcast("node.hostStats", {"nodeId": live.node_id, "hostStats": payload,
                                               "ts": self._now_ms()},
                            scope=S.READ, drop_if_slow=True)
            return {"ok": True, "event": event, "handled": True}
        if event in ("node.presence.alive", "exec.started", "exec.finished", "exec.denied"):
            return {"ok": True, "event": event, "handled": True}
        return {"ok": True, "event": event, "handled": False, "reason": "unsupported event"}

    @rpc("node.pending.enqueue", ENQUEUE)
    def enqueue(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        node_id = params["nodeId"]
        if node_id not in self._registry.live and node_id not in self._registry.store.nodes:
            raise invalid_request(f"unknown nodeId: {clip(node_id)}")
        return self._queues.enqueue(node_id, params["type"], params.get("priority", "normal"),
                                    params.get("payload"), params.get("expiresInMs"))

    @rpc("node.pending.pull")
    def pending_pull(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        return self._queues.pull(self._node_id_of(ctx))

    @rpc("node.pending.ack", ACK)
    def pending_ack(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        return self._queues.ack(self._node_id_of(ctx), params["ids"])

    @rpc("node.pending.drain", DRAIN)
    def pending_drain(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        return self._queues.drain(self._node_id_of(ctx), params.get("maxItems", 10))

    @rpc("skills.bins")
    def skills_bins(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"bins": []}

    def _node_id_of(self, ctx: CallContext) -> str:
        return self._registry.node_of(ctx.conn).node_id
