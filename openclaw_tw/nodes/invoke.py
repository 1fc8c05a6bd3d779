"""node.invoke routing: the request event to the node, the result back to the caller.

Timeouts run on the gateway clock.  A node that disconnects fails its invokes at once; a node
answering ``NODE_NOT_READY`` is asked again (new invoke id) while the deadline allows.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import attrs
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from openclaw_tw import _json
from openclaw_tw.errors import UNAVAILABLE, GatewayError, clip, invalid_request

if TYPE_CHECKING:
    from openclaw_tw.nodes.registry import LiveNode, NodeRegistry

_log = Logger(namespace="nodes")

DEFAULT_TIMEOUT_MS = 30_000
MAX_TIMEOUT_MS = 600_000
NOT_READY_RETRIES = 4
NOT_READY_BACKOFF_S = 0.25
MAX_FINISHED = 1024
MAX_HELD_CHUNKS = 64  # progress chunks waiting for an earlier seq; more are dropped


@attrs.define(eq=False)
class Invoke:
    id: str
    node_id: str
    node_conn: Any
    caller: Any
    command: str
    params_json: str | None
    idempotency_key: str
    session_key: str | None
    deadline: float
    done: Deferred[dict[str, Any]]
    timer: Any = None
    attempts: int = 0
    # node.invoke.progress: chunks handed to the caller in ``seq`` order (a gap is held,
    # bounded); ``on_progress`` is an in-gateway caller's (the exec tool's) sink.
    on_progress: Any = None
    next_seq: int = 0
    held: dict[int, str] = attrs.field(factory=dict)


def _error(code: str, message: str, detail: str, retryable: bool = False) -> GatewayError:
    return GatewayError(code, message, {"code": detail}, retryable=retryable or None)


class Invoker:
    def __init__(self, registry: NodeRegistry) -> None:
        self.registry = registry
        self.gw = registry.gw
        self.clock = registry.gw.clock
        self.inflight: dict[str, Invoke] = {}
        self.finished: OrderedDict[str, tuple[str, str]] = OrderedDict()  # id -> (node, why)
        registry.invoker = self

    # -- operator side -------------------------------------------------------------------------

    def invoke(self, caller: Any, params: dict[str, Any],
               on_progress: Any = None) -> Deferred[dict[str, Any]]:
        node_id, command = params["nodeId"], params["command"]
        reg = self.registry
        live = reg.live.get(node_id)
        if live is None and node_id not in reg.store.nodes:
            raise GatewayError(UNAVAILABLE, "node pairing changed while invocation was active",
                               {"code": "PAIRING_CHANGED"}, retryable=True)
        if live is None:
            raise _error(UNAVAILABLE, "node not connected", "NOT_CONNECTED", retryable=True)
        approved = reg.store.nodes.get(node_id)
        refusal = reg.policy.refusal(command, live.platform, live.declared,
                                     approved.commands if approved else [])
        if refusal is not None:
            raise refusal
        call_params = params.get("params")
        if command == "system.run":
            call_params = dict(call_params) if isinstance(call_params, dict) else {}
            call_params.setdefault("runId", str(uuid.uuid4()))
        return self._start(live, caller, command, call_params, params.get("timeoutMs"),
                           params["idempotencyKey"], params.get("sessionKey"), on_progress)

    def relay(self, node_id: str, command: str, params: Any) -> Deferred[Any]:
        """A command the gateway itself sends a node on an operator's behalf (not one the node
        declared, so no command policy): ``exec.approvals.node.*`` -> ``system.execApprovals.*``.
        Fires with the node's payload."""
        live = self.registry.live.get(node_id)
        if live is None:
            raise GatewayError(UNAVAILABLE, "NOT_CONNECTED: node not connected", {
                "nodeError": {"code": "NOT_CONNECTED", "message": "node not connected"},
                "nodeCommandDispatched": False})
        d = self._start(live, None, command, params, None, str(uuid.uuid4()), None)
        return d.addCallback(lambda result: result["payload"])

    def _start(self, live: LiveNode, caller: Any, command: str, call_params: Any,
               timeout_ms: int | None, idempotency_key: str,
               session_key: str | None, on_progress: Any = None) -> Deferred[dict[str, Any]]:
        timeout_ms = max(1, min(int(timeout_ms or DEFAULT_TIMEOUT_MS), MAX_TIMEOUT_MS))
        inv = Invoke(str(uuid.uuid4()), live.node_id, live.conn, caller, command,
                     None if call_params is None else _json.dumps(call_params).decode(),
                     idempotency_key, session_key,
                     self.clock.seconds() + timeout_ms / 1000, Deferred())
        inv.on_progress = on_progress
        inv.timer = self.clock.callLater(timeout_ms / 1000, self._timed_out, inv)
        self._send(inv, live)
        return inv.done

    def _send(self, inv: Invoke, live: LiveNode) -> None:
        inv.attempts += 1
        inv.node_conn = live.conn
        self.inflight[inv.id] = inv
        remaining = max(1, int((inv.deadline - self.clock.seconds()) * 1000))
        payload: dict[str, Any] = {"id": inv.id, "nodeId": inv.node_id, "command": inv.command,
                                   "paramsJSON": inv.params_json, "timeoutMs": remaining,
                                   "idempotencyKey": inv.idempotency_key}
        if inv.session_key:
            payload["sessionKey"] = inv.session_key
        live.conn.send_event("node.invoke.request", payload)

    def _finish(self, inv: Invoke, why: str, result: Any) -> None:
        self.inflight.pop(inv.id, None)
        self.finished[inv.id] = (inv.node_id, why)
        while len(self.finished) > MAX_FINISHED:
            self.finished.popitem(last=False)
        if inv.timer is not None and inv.timer.active():
            inv.timer.cancel()
        if not inv.done.called:
            failed = isinstance(result, Exception)
            self.gw.metrics.node_invoke(("error" if why == "result" else why) if failed else "ok")
            if isinstance(result, Exception):
                inv.done.errback(result)
            else:
                inv.done.callback(result)

    def _cancel_on_node(self, inv: Invoke) -> None:
        inv.node_conn.send_event("node.invoke.cancel",
                                        {"invokeId": inv.id, "nodeId": inv.node_id})

    def _timed_out(self, inv: Invoke) -> None:
        inv.timer = None
        if self.inflight.get(inv.id) is inv:
            self._cancel_on_node(inv)
        self._finish(inv, "timeout", _error(
            UNAVAILABLE, f"node invoke timed out: {inv.command}", "TIMEOUT", retryable=True))

    # -- socket hooks --------------------------------------------------------------------------

    def node_gone(self, conn: Any) -> None:
        for inv in [i for i in self.inflight.values() if i.node_conn is conn]:
            self._finish(inv, "disconnected", _error(
                UNAVAILABLE, "node disconnected during invoke", "NODE_DISCONNECTED",
                retryable=True))

    def conn_gone(self, conn: Any) -> None:
        self.node_gone(conn)
        for inv in [i for i in self.inflight.values() if i.caller is conn]:
            self._cancel_on_node(inv)
            self._finish(inv, "aborted", _error(UNAVAILABLE, "invoke caller disconnected",
                                                "ABORTED"))

    # -- node side -----------------------------------------------------------------------------

    def _check(self, live: LiveNode, invoke_id: str, node_id: Any) -> Invoke:
        inv = self.inflight.get(invoke_id)
        if inv is None:
            done = self.finished.get(invoke_id)
            if done is None:
                raise invalid_request(f"unknown invoke id: {clip(invoke_id)}",
                                      {"reason": "UNKNOWN_INVOKE_ID"})
            if done[0] != live.node_id:
                raise _mismatch(invoke_id)
            if done[1] == "result":
                raise invalid_request(f"duplicate result for invoke id: {clip(invoke_id)}",
                                      {"reason": "DUPLICATE_RESULT"})
            raise invalid_request(f"invoke already finished ({done[1]}): {clip(invoke_id)}",
                                  {"reason": "INVOKE_FINISHED", "finishedBy": done[1]})
        if inv.node_conn is not live.conn or (node_id is not None and node_id != inv.node_id):
            raise _mismatch(invoke_id)
        return inv

    def result(self, conn: Any, params: dict[str, Any]) -> dict[str, Any]:
        live = self.registry.node_of(conn)
        inv = self._check(live, params["id"], params.get("nodeId"))
        self.registry.seen(live.node_id, "invoke-result")
        if params.get("ok"):
            payload, payload_json = params.get("payload"), params.get("payloadJSON")
            if payload is None and isinstance(payload_json, str):
                try:
                    payload = _json.loads(payload_json)
                except _json.JSONDecodeError:
                    payload = None
            self._finish(inv, "result", {"ok": True, "nodeId": inv.node_id,
                                         "command": inv.command, "payload": payload,
                                         "payloadJSON": payload_json})
            return {"ok": True}
        error = params.get("error") if isinstance(params.get("error"), dict) else {}
        code = str(error.get("code") or UNAVAILABLE)
        message = str(error.get("message") or "node invoke failed")
        if code == "NODE_NOT_READY" and inv.attempts <= NOT_READY_RETRIES and \
                self.clock.seconds() + NOT_READY_BACKOFF_S < inv.deadline:
            self.inflight.pop(inv.id, None)
            self.finished[inv.id] = (inv.node_id, "retried")
            inv.id = str(uuid.uuid4())
            self.clock.callLater(NOT_READY_BACKOFF_S, self._retry, inv)
            return {"ok": True}
        self._finish(inv, "result", GatewayError(code, message, {"nodeError": error}))
        return {"ok": True}

    def _retry(self, inv: Invoke) -> None:
        if inv.done.called:
            return
        live = self.registry.live.get(inv.node_id)
        if live is None:
            self._finish(inv, "disconnected", _error(
                UNAVAILABLE, "node disconnected during invoke", "NODE_DISCONNECTED", True))
            return
        self._send(inv, live)

    def progress(self, conn: Any, params: dict[str, Any]) -> dict[str, Any]:
        """A chunk of a streaming command's output: handed on in ``seq`` order (held across
        a gap, bounded), then acknowledged; a repeated or stale ``seq`` is ignored."""
        live = self.registry.node_of(conn)
        inv = self._check(live, params["invokeId"], params.get("nodeId"))
        self.registry.seen(live.node_id, "invoke-progress")
        seq, chunk = params["seq"], params["chunk"]
        if seq >= inv.next_seq and seq not in inv.held and len(inv.held) < MAX_HELD_CHUNKS:
            inv.held[seq] = chunk
        while inv.next_seq in inv.held:
            text = inv.held.pop(inv.next_seq)
            inv.next_seq += 1
            if inv.on_progress is not None:
                try:
                    inv.on_progress(text)
                except Exception:  # a caller's sink must not fail the node's request
                    _log.failure("invoke {id}: progress sink failed", id=inv.id)
        return {"ok": True}


def _mismatch(invoke_id: str) -> GatewayError:
    return invalid_request(f"invoke {clip(invoke_id)} belongs to a different node",
                           {"reason": "NODE_MISMATCH"})
