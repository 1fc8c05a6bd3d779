"""Exec approvals: pending records, delivery to approval clients, decisions, expiry (§15.1).

Unlike the reference (issue #53120), pending approvals are persisted and restored after a
restart; they still expire at their original ``expiresAtMs``.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import attrs
from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed

from openclaw_tw.errors import UNAVAILABLE, GatewayError, invalid_request
from openclaw_tw.protocol import scopes as S

if TYPE_CHECKING:
    from openclaw_tw.approvals.history import ApprovalHistory
    from openclaw_tw.hub.gateway import Gateway
    from openclaw_tw.nodes.store import NodeStore

DECISIONS = ("allow-once", "allow-always", "deny")
APPROVAL_CLIENT_IDS = frozenset({"openclaw-control-ui", "openclaw-macos", "openclaw-ios",
                                 "openclaw-android"})
APPROVAL_CAPS = frozenset({"approvals", "exec-approvals"})
DEFAULT_TIMEOUT_MS = 120_000
MAX_TIMEOUT_MS = 24 * 3600 * 1000
FINISHED_TTL_S = 600.0
MAX_PENDING = 1000  # pending approvals (each persisted, each up to 24 h); more are refused
MAX_FINISHED = 1000  # finished ones kept for get/waitDecision (FINISHED_TTL_S, oldest first)
REQUEST_FIELDS = ("command", "commandArgv", "systemRunBinding", "systemRunPlan", "cwd", "nodeId",
                  "host", "security", "ask", "warningText", "scope")
TAIL_FIELDS = ("agentId", "resolvedPath", "sessionKey", "sessionId", "runId", "toolCallId",
               "turnSourceChannel", "turnSourceTo", "turnSourceAccountId",
               "turnSourceThreadId", "cronExecutionSource", "cronOperationBinding")
REMEDIATION = ("Re-request the action; pending approvals are cleared after expiry or restart.")


def not_found() -> Exception:
    return invalid_request("unknown or expired approval id",
                           {"reason": "APPROVAL_NOT_FOUND", "remediation": REMEDIATION})


@attrs.define(eq=False)
class Approval:
    id: str
    request: dict[str, Any]
    created_at: int
    expires_at: int
    requester_conn: str | None
    requester_device: str | None
    decision: str | None = None
    resolved_by: str | None = None
    resolver: dict[str, Any] | None = None  # approval.history's {kind: device|runtime, id}
    terminal_reason: str | None = None
    waiters: list[Deferred[Any]] = attrs.Factory(list)
    timer: Any = None
    finished_at: float | None = None
    grant_expires_days: float | None = None  # an allow-always resolve's grant lifetime

    @property
    def pending(self) -> bool:
        return self.terminal_reason is None

    def decision_payload(self) -> dict[str, Any]:
        return {"id": self.id, "decision": self.decision, "createdAtMs": self.created_at,
                "expiresAtMs": self.expires_at}

    def record(self) -> dict[str, Any]:
        return {"id": self.id, "request": self.request, "createdAtMs": self.created_at,
                "expiresAtMs": self.expires_at, "requesterConn": self.requester_conn,
                "requesterDevice": self.requester_device}


def is_approval_client(conn: Any) -> bool:
    if conn.role != S.ROLE_OPERATOR:
        return False
    if S.APPROVALS not in conn.scopes and S.ADMIN not in conn.scopes:
        return False
    return (conn.client or {}).get("id") in APPROVAL_CLIENT_IDS or bool(conn.caps & APPROVAL_CAPS)


def command_analysis(argv: list[str] | None, text: str | None) -> dict[str, Any]:
    source = text or " ".join(argv or [])
    count = 1 + sum(source.count(sep) for sep in ("&&", "||", ";", "|")) - 2 * source.count("||")
    nested = source.count("$(") + source.count("`") // 2
    risks = []
    if nested:
        risks.append("command-substitution")
    if ">" in source:
        risks.append("redirection")
    return {"commandCount": max(1, count), "nestedCommandCount": nested, "riskKinds": risks,
            "warningLines": []}


class ExecApprovals(Service):
    name = "exec-approvals"

    def __init__(self, gw: Gateway, store: NodeStore,
                 history: ApprovalHistory | None = None) -> None:
        self.gw = gw
        self.store = store
        self.history = history
        self.records: dict[str, Approval] = {}  # pending and recently finished, by id
        self._finished: OrderedDict[str, float] = OrderedDict()  # id -> finished at, oldest first

    # -- restore -------------------------------------------------------------------------------

    def restore(self, rows: list[dict[str, Any]]) -> int:
        now = self.gw.now_ms()
        restored = 0
        for row in rows:
            appr = Approval(row["id"], row["request"], row["createdAtMs"], row["expiresAtMs"],
                            None, row.get("requesterDevice"))
            if appr.expires_at <= now:
                self.store.remove_approval(appr.id)
                appr.terminal_reason = "timeout"
                self._remember(appr, appr.expires_at)
                continue
            self.records[appr.id] = appr
            appr.timer = self.gw.clock.callLater((appr.expires_at - now) / 1000,
                                                 self._expire, appr)
            restored += 1
        return restored

    def stopService(self) -> None:
        super().stopService()
        for appr in self.records.values():
            if appr.timer is not None and appr.timer.active():
                appr.timer.cancel()

    # -- visibility ----------------------------------------------------------------------------

    def visible(self, appr: Approval, conn: Any) -> bool:
        if S.ADMIN in conn.scopes:
            return True
        if appr.requester_conn is not None and appr.requester_conn == conn.conn_id:
            return True
        return appr.requester_device is not None and appr.requester_device == conn.device_id

    def _audience(self, appr: Approval) -> list[Any]:
        return [c for c in self.gw.conns.values() if c.conn_id != appr.requester_conn
                and is_approval_client(c) and self.visible(appr, c)]

    # -- requests ------------------------------------------------------------------------------

    def request(self, ctx: Any, params: dict[str, Any]) -> Any:
        host = params.get("host")
        if host == "node" and not isinstance(params.get("systemRunPlan"), dict):
            raise invalid_request("systemRunPlan is required for host=node")
        if params.get("command") is None and not params.get("commandArgv") and \
                not isinstance(params.get("systemRunPlan"), dict):
            raise invalid_request("exec approval request needs command or commandArgv")
        approval_id = params.get("id") or str(uuid.uuid4())
        if approval_id in self.records:
            raise invalid_request("approval id already exists")
        if len(self.records) - len(self._finished) >= MAX_PENDING:
            raise GatewayError(UNAVAILABLE, f"too many pending approvals ({MAX_PENDING}); "
                               "resolve or let some expire first", retryable=True,
                               retry_after_ms=5000)
        request: dict[str, Any] = {k: params.get(k) for k in REQUEST_FIELDS}
        plan = params.get("systemRunPlan") or {}
        argv = request["commandArgv"] or plan.get("argv")
        text = request["command"] or plan.get("commandText")
        request["commandAnalysis"] = command_analysis(argv, text)
        request["allowedDecisions"] = list(DECISIONS)
        request.update({k: params.get(k) for k in TAIL_FIELDS})
        now = self.gw.now_ms()
        timeout = min(int(params.get("timeoutMs") or DEFAULT_TIMEOUT_MS), MAX_TIMEOUT_MS)
        appr = Approval(approval_id, request, now, now + timeout, ctx.conn.conn_id,
                        ctx.conn.device_id)
        audience = self._audience(appr)
        if not audience:
            appr.terminal_reason = "no-approval-route"
            self._keep_finished(appr)
            self._remember(appr, now)
            return appr.decision_payload()
        self.records[appr.id] = appr
        appr.timer = self.gw.clock.callLater(timeout / 1000, self._expire, appr)
        self.store.save_approval(appr.id, appr.record(), appr.expires_at)
        event = {"approvalKind": "exec", "id": appr.id, "request": request,
                 "createdAtMs": now, "expiresAtMs": appr.expires_at}
        ids = {c.conn_id for c in audience}
        self.gw.broadcast("exec.approval.requested", event, scope=S.APPROVALS, drop_if_slow=True,
                          predicate=lambda c: c.conn_id in ids)
        d: Deferred[Any] = Deferred()
        appr.waiters.append(d)
        if params.get("twoPhase"):
            ctx.respond_early({"status": "accepted", "id": appr.id,
                               "deliveryRoute": "approval-client", "createdAtMs": now,
                               "expiresAtMs": appr.expires_at})
        return d.addCallback(lambda a: a.decision_payload())

    def _terminate(self, appr: Approval, decision: str | None, reason: str,
                   resolved_by: str | None) -> None:
        appr.decision, appr.terminal_reason, appr.resolved_by = decision, reason, resolved_by
        if appr.timer is not None and appr.timer.active():
            appr.timer.cancel()
        self.store.remove_approval(appr.id)
        self._keep_finished(appr)
        self._remember(appr, self.gw.now_ms())
        waiters, appr.waiters = appr.waiters, []
        for d in waiters:
            d.callback(appr)

    def _keep_finished(self, appr: Approval) -> None:
        """Finished records answer get/waitDecision/repeat resolves for a while."""
        now = self.gw.clock.seconds()
        appr.finished_at = now
        self.records[appr.id] = appr
        finished = self._finished
        finished.pop(appr.id, None)
        finished[appr.id] = now
        while finished:
            oldest, at = next(iter(finished.items()))
            if at + FINISHED_TTL_S >= now and len(finished) <= MAX_FINISHED:
                break
            del finished[oldest]
            self.records.pop(oldest, None)

    def _remember(self, appr: Approval, resolved_at: int) -> None:
        """Write a terminal approval to the history (``approval.history``)."""
        if self.history is None:
            return
        if appr.terminal_reason == "user":
            allowed = appr.decision != "deny"
            status, reason = ("allowed" if allowed else "denied"), "user"
        elif appr.terminal_reason == "no-approval-route":
            status, reason = "denied", "no-route"
        else:
            status, reason = "expired", "timeout"
        decision = appr.decision if status == "allowed" else "deny" if status == "denied" \
            else None
        req = appr.request
        view = self.get_view(appr)
        presentation = {"kind": "exec", "commandText": view["commandText"] or "(unknown)",
                        "commandPreview": view["commandPreview"],
                        "warningText": req.get("warningText") or None,
                        "host": view["host"], "nodeId": view["nodeId"],
                        "agentId": view["agentId"],
                        "allowedDecisions": list(req.get("allowedDecisions") or DECISIONS)}
        plan = req.get("systemRunPlan") or {}
        record: dict[str, Any] = {
            "id": appr.id, "kind": "exec", "status": status, "presentation": presentation,
            "createdAtMs": appr.created_at, "expiresAtMs": appr.expires_at,
            "resolvedAtMs": resolved_at, "reason": reason, "decision": decision,
            "source": {"agentId": req.get("agentId") or plan.get("agentId"),
                       "sessionKey": req.get("sessionKey") or plan.get("sessionKey")},
            "resolver": appr.resolver if reason == "user" else None}
        self.history.record(record, appr.requester_device)

    def _expire(self, appr: Approval) -> None:
        """Timed out: the requester gets ``decision: null`` and the approval clients that saw
        the request are told it is gone -- as the real gateway, ``exec.approval.resolved``
        with ``decision: "deny"`` and ``resolvedBy: null``."""
        appr.timer = None
        if appr.pending:
            self._terminate(appr, None, "timeout", None)
            self._announce(appr, "deny", None)

    # -- methods -------------------------------------------------------------------------------

    def _get(self, approval_id: str, conn: Any) -> Approval:
        appr = self.records.get(approval_id)
        if appr is None or not self.visible(appr, conn):
            raise not_found()
        return appr

    def resolve(self, ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
        appr = self._get(params["id"], ctx.conn)
        decision = params["decision"]
        if not appr.pending:
            if appr.terminal_reason != "user":
                raise not_found()
            if appr.decision == decision:
                return {"ok": True}
            raise invalid_request("approval already resolved",
                                  {"reason": "APPROVAL_ALREADY_RESOLVED"})
        resolved_by = str((ctx.conn.client or {}).get("id") or "unknown")
        device = ctx.conn.device_id
        appr.resolver = {"kind": "device", "id": device} if device else \
            {"kind": "runtime", "id": resolved_by}
        days = params.get("grantExpiresInDays")
        if decision == "allow-always" and isinstance(days, int | float) and \
                not isinstance(days, bool) and 1 <= days <= 3650:
            appr.grant_expires_days = float(days)
        self._terminate(appr, decision, "user", resolved_by)
        self._announce(appr, decision, resolved_by)
        return {"ok": True}

    def _announce(self, appr: Approval, decision: str, resolved_by: str | None) -> None:
        self.gw.broadcast("exec.approval.resolved", {
            "id": appr.id, "decision": decision, "resolvedBy": resolved_by,
            "ts": self.gw.now_ms(), "request": appr.request}, scope=S.APPROVALS,
            predicate=lambda c: is_approval_client(c) and self.visible(appr, c))

    # -- the kind-agnostic approval.* API (used by `openclaw approvals resolve`) ------------

    def view(self, appr: Approval) -> dict[str, Any]:
        status = "pending" if appr.pending else {"user": "resolved", "timeout": "expired"}.get(
            appr.terminal_reason or "", "cancelled")
        out: dict[str, Any] = {
            "id": appr.id, "kind": "exec", "status": status,
            "presentation": {"kind": "exec", "allowedDecisions": list(DECISIONS),
                             **{k: v for k, v in self.get_view(appr).items()
                                if k not in ("id", "allowedDecisions")}},
            "request": appr.request, "createdAtMs": appr.created_at,
            "expiresAtMs": appr.expires_at}
        if status == "cancelled":
            out["reason"] = appr.terminal_reason
        if appr.terminal_reason == "user":
            out["decision"] = appr.decision
            out["resolver"] = {"kind": "client", "id": appr.resolved_by}
        return out

    def approval_get(self, ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
        return {"approval": self.view(self._get(params["id"], ctx.conn))}

    def approval_resolve(self, ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
        appr = self._get(params["id"], ctx.conn)
        applied = appr.pending
        if applied:
            self.resolve(ctx, {"id": appr.id, "decision": params["decision"]})
        return {"applied": applied, "approval": self.view(appr)}

    def get(self, ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
        return self.get_view(self._get(params["id"], ctx.conn))

    def get_view(self, appr: Approval) -> dict[str, Any]:
        req = appr.request
        plan = req.get("systemRunPlan") or {}
        return {"id": appr.id,
                "commandText": req.get("command") or plan.get("commandText")
                or " ".join(req.get("commandArgv") or []),
                "commandPreview": plan.get("commandPreview"),
                "allowedDecisions": list(req["allowedDecisions"]), "host": req.get("host"),
                "nodeId": req.get("nodeId"), "agentId": req.get("agentId"),
                "expiresAtMs": appr.expires_at}

    def list(self, ctx: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"id": a.id, "request": a.request, "createdAtMs": a.created_at,
                 "expiresAtMs": a.expires_at, "approvalKind": "exec"}
                for a in sorted(self.records.values(), key=lambda a: a.created_at)
                if a.pending and self.visible(a, ctx.conn)]

    def wait_decision(self, ctx: Any, params: dict[str, Any]) -> Any:
        appr = self._get(params["id"], ctx.conn)

        def payload(a: Approval) -> dict[str, Any]:
            return {**a.decision_payload(), "terminalReason": a.terminal_reason}

        if not appr.pending:
            return succeed(payload(appr))
        d: Deferred[Any] = Deferred()
        appr.waiters.append(d)
        return d.addCallback(payload)
