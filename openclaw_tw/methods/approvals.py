"""exec.approval.* (request/resolve/get/list/waitDecision) and exec.approvals.get/set (§6.5)."""

from __future__ import annotations

from typing import Any

import attrs

from openclaw_tw.approvals.policyfile import PolicyFile
from openclaw_tw.approvals.service import DECISIONS, ExecApprovals
from openclaw_tw.protocol.dispatch import CallContext, rpc
from openclaw_tw.protocol.schema import (
    AnyValue,
    Arr,
    Bool,
    Int,
    Nullable,
    Num,
    Obj,
    OneOf,
    Record,
    Str,
    closed,
)

_S1 = Str(min_len=1)
ID = Obj(required={"id": _S1})
_NS = Nullable(Str())
# The reference's systemRunPlan, typed where the service reads it (argv, commandText, and the
# preview shown to approvers); a plan that is not an object was an internal error.
RUN_PLAN = closed(optional={"argv": Arr(Str()), "cwd": _NS, "commandText": Str(),
                            "commandPreview": _NS, "agentId": _NS, "sessionKey": _NS},
                  accepted="policySnapshot mutableFileOperand")
REQUEST = closed(
    optional={"command": Str(), "commandArgv": Arr(Str()), "systemRunPlan": RUN_PLAN,
              "cwd": _NS, "nodeId": Nullable(_S1), "host": _NS, "env": Record(Str()),
              "security": _NS, "ask": _NS, "warningText": _NS, "agentId": _NS,
              "resolvedPath": _NS, "sessionKey": _NS, "sessionId": _NS, "runId": _NS,
              "toolCallId": _NS, "turnSourceChannel": _NS, "turnSourceTo": _NS,
              "turnSourceAccountId": _NS,
              "turnSourceThreadId": Nullable(OneOf(Str(), Num())),
              "timeoutMs": Int(minimum=1), "twoPhase": Bool(), "id": _S1},
    accepted="scope systemRunBinding cronExecutionSource cronOperationBinding commandPreview "
             "unavailableDecisions commandSpans approvalReviewerDeviceIds "
             "requireDeliveryRoute suppressDelivery deliverToApprovalClientsOnly")
RESOLVE = closed({"id": _S1, "decision": Str(enum=list(DECISIONS))},
                 accepted="reviewer grantExpiresInDays")
SET = Obj(required={"file": AnyValue()}, optional={"baseHash": Str()})
LIST = closed(accepted="agentId sessionKey")
APPROVAL_GET = closed({"id": _S1}, accepted="kind")
APPROVAL_RESOLVE = closed({"id": _S1, "decision": Str(enum=list(DECISIONS))},
                          accepted="kind reviewer grantExpiresInDays reason")


@attrs.define
class ApprovalsMethods:
    """Exec approvals (held by ``ExecApprovals``) and the approvals policy file."""

    _approvals: ExecApprovals
    _policy: PolicyFile

    @rpc("exec.approval.request", REQUEST)
    def request(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        return self._approvals.request(ctx, params)

    @rpc("exec.approval.resolve", RESOLVE)
    def resolve(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._approvals.resolve(ctx, params)

    @rpc("exec.approval.get", ID)
    def get(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._approvals.get(ctx, params)

    @rpc("exec.approval.list", LIST)
    def list_(self, ctx: CallContext, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self._approvals.list(ctx, params)

    @rpc("exec.approval.waitDecision", ID)
    def wait_decision(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        return self._approvals.wait_decision(ctx, params)

    # No plugin approvals exist here; the real `openclaw approvals pending` lists these too.
    @rpc("approval.get", APPROVAL_GET)
    def approval_get(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._approvals.approval_get(ctx, params)

    @rpc("approval.resolve", APPROVAL_RESOLVE)
    def approval_resolve(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._approvals.approval_resolve(ctx, params)

    @rpc("plugin.approval.list")
    def plugin_approval_list(self, ctx: CallContext, params: dict[str, Any]) -> list[Any]:
        return []

    @rpc("openclaw.approval.list")
    def openclaw_approval_list(self, ctx: CallContext, params: dict[str, Any]) -> list[Any]:
        return []

    @rpc("exec.approvals.get")
    def policy_get(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._policy.snapshot()

    @rpc("exec.approvals.set", SET)
    def policy_set(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        return self._policy.write(params["file"], params.get("baseHash"))
