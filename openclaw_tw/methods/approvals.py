"""exec.approval.* (request/resolve/get/list/waitDecision) and exec.approvals.get/set (§6.5)."""

from __future__ import annotations

from typing import Any

from openclaw_tw.approvals.policyfile import PolicyFile
from openclaw_tw.approvals.service import DECISIONS, ExecApprovals
from openclaw_tw.protocol.dispatch import MethodTable
from openclaw_tw.protocol.schema import AnyValue, Arr, Bool, Int, Obj, Str, closed

_S1 = Str(min_len=1)
ID = Obj(required={"id": _S1})
REQUEST = closed(
    optional={"command": Str(), "commandArgv": Arr(Str()), "systemRunPlan": AnyValue(),
              "cwd": AnyValue(), "nodeId": AnyValue(), "host": AnyValue(),
              "timeoutMs": Int(minimum=1), "twoPhase": Bool(), "id": _S1},
    accepted="env security ask warningText scope agentId sessionKey sessionId runId "
             "toolCallId turnSourceChannel turnSourceTo turnSourceAccountId "
             "turnSourceThreadId resolvedPath systemRunBinding cronExecutionSource "
             "cronOperationBinding commandPreview")
RESOLVE = closed({"id": _S1, "decision": Str(enum=list(DECISIONS))},
                 accepted="reviewer grantExpiresInDays")
SET = Obj(required={"file": AnyValue()}, optional={"baseHash": Str()})


def register(table: MethodTable, approvals: ExecApprovals, policy: PolicyFile) -> None:
    table.add("exec.approval.request", approvals.request, REQUEST)
    table.add("exec.approval.resolve", approvals.resolve, RESOLVE)
    table.add("exec.approval.get", approvals.get, ID)
    table.add("exec.approval.list", approvals.list, closed(accepted="agentId sessionKey"))
    table.add("exec.approval.waitDecision", approvals.wait_decision, ID)

    def get(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
        return policy.snapshot()

    def set_(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
        return policy.write(params["file"], params.get("baseHash"))

    # No plugin approvals exist here; the real `openclaw approvals pending` lists these too.
    table.add("approval.get", approvals.approval_get, closed({"id": _S1}, accepted="kind"))
    table.add("approval.resolve", approvals.approval_resolve,
              closed({"id": _S1, "decision": Str(enum=list(DECISIONS))},
                     accepted="kind reviewer grantExpiresInDays reason"))
    table.add("plugin.approval.list", lambda ctx, params: [], None)
    table.add("openclaw.approval.list", lambda ctx, params: [], None)
    table.add("exec.approvals.get", get)
    table.add("exec.approvals.set", set_, SET)
