"""The ``exec`` tool: a model asks to run a command; the approvals policy decides.

Offered to OpenAI-compatible models when ``tools.exec.enabled`` is true (it is off by default:
it runs commands).  The policy (``exec-approvals.json`` defaults and per-agent overrides)
gives ``security`` (deny | allowlist | full), ``ask`` (off | on-miss | always) and
``askFallback`` (what to do when nobody can be asked).  When it asks, an exec approval goes to
the approval clients and the turn waits for the decision.  The plan that was approved is frozen
and compared with what is about to run, so nothing can change between approval and execution;
``host: node`` sends exactly that plan as ``node.invoke system.run``.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import uuid
from collections.abc import Callable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.internet.utils import getProcessOutputAndValue

from openclaw_tw import _json
from openclaw_tw.errors import GatewayError

if TYPE_CHECKING:
    from openclaw_tw.approvals.grants import StandingGrants
    from openclaw_tw.approvals.service import ExecApprovals
    from openclaw_tw.nodes.registry import NodeRegistry

TOOL_NAME = "exec"
APPROVAL_TIMEOUT_MS = 120_000
RUN_TIMEOUT_MS = 60_000
MAX_OUTPUT_CHARS = 20_000
ALLOW = ("allow-once", "allow-always")

EXEC_TOOL = {
    "type": "function",
    "function": {
        "name": TOOL_NAME,
        "description": "Run a command on the gateway host or on a paired node. The owner's "
                       "approval policy may ask a human first.",
        "parameters": {
            "type": "object",
            "properties": {
                "command": {"type": "string", "description": "the command line"},
                "host": {"type": "string", "enum": ["gateway", "node"]},
                "nodeId": {"type": "string"},
                "cwd": {"type": "string"},
            },
            "required": ["command"],
        },
    },
}


def exec_enabled(raw_config: dict[str, Any]) -> bool:
    tools = raw_config.get("tools") or {}
    spec = tools.get("exec") if isinstance(tools, dict) else None
    return isinstance(spec, dict) and spec.get("enabled") is True


def plan_digest(plan: dict[str, Any]) -> str:
    return hashlib.sha256(_json.dumps(plan)).hexdigest()


def _result(**fields: Any) -> str:
    return _json.dumps(fields).decode("utf-8")


class ExecTool:
    def __init__(self, reactor: Any, approvals: ExecApprovals, nodes: NodeRegistry,
                 policy: Any, grants: StandingGrants | None = None,
                 cron_job: Callable[[str], dict[str, Any] | None] = lambda job_id: None,
                 grant_expiry_days: Callable[[], float | None] = lambda: None) -> None:
        self.reactor = reactor
        self.approvals = approvals
        self.nodes = nodes
        self.policy = policy
        self.grants = grants  # standing grants of automations (approvals/grants.py)
        self.cron_job = cron_job  # a cron job by id, as it is now
        self.grant_expiry_days = grant_expiry_days  # tools.exec.grantExpiryDays

    def automation_of(self, plan: dict[str, Any]) -> dict[str, Any] | None:
        """The cron job whose isolated run asks (``agent:<id>:cron:<jobId>``), if any."""
        parts = str(plan.get("sessionKey") or "").split(":")
        if len(parts) == 4 and parts[0] == "agent" and parts[2] == "cron":
            return self.cron_job(parts[3])
        return None

    async def __call__(self, args: dict[str, Any], agent_id: str, session_key: str,
                       on_output: Any = None) -> str:
        """Run (or refuse) one exec call; ``on_output`` gets a node's streamed output
        (``node.invoke.progress``) as it arrives."""
        command = args.get("command")
        if not isinstance(command, str) or not command.strip():
            return _result(ok=False, error="exec needs a non-empty command")
        try:
            argv = shlex.split(command)
        except ValueError as e:
            return _result(ok=False, error=f"cannot parse command: {e}")
        host = args.get("host") or "gateway"
        if host not in ("gateway", "node"):
            return _result(ok=False, error="host must be gateway or node")
        plan = {"argv": argv, "cwd": args.get("cwd"), "commandText": command, "host": host,
                "nodeId": args.get("nodeId"), "agentId": agent_id, "sessionKey": session_key}
        if host == "node" and not plan["nodeId"]:
            return _result(ok=False, error="host=node needs nodeId")
        decision = self.policy.decide(agent_id)
        verdict = await self._decide(plan, decision)
        if verdict is not None:
            return _result(ok=False, denied=True, error=verdict)
        return await self._run(plan, on_output)

    async def _decide(self, plan: dict[str, Any], decision: dict[str, Any]) -> str | None:
        """``None`` to run, else why not."""
        security, ask = decision.get("security", "full"), decision.get("ask", "off")
        if security == "deny":
            return "exec is denied by the approval policy (security=deny)"
        if ask == "off":
            return None if security == "full" else \
                "command is not on the allowlist (security=allowlist, ask=off)"
        approvals = self.approvals
        if approvals is None:
            return "no approval service"
        job = self.automation_of(plan)
        if job is not None and self.grants is not None:
            grant = self.grants.match(plan["agentId"], job, plan["commandText"], plan["cwd"])
            if grant is not None:  # "Always allow" was given for exactly this before
                self.grants.used(grant)
                return None
        digest = plan_digest(plan)
        ctx = SimpleNamespace(conn=SimpleNamespace(conn_id=f"agent:{uuid.uuid4()}",
                                                   device_id=None, scopes=frozenset()),
                              respond_early=lambda payload: None)
        params = {"command": plan["commandText"], "commandArgv": plan["argv"],
                  "host": plan["host"], "cwd": plan["cwd"], "nodeId": plan["nodeId"],
                  "agentId": plan["agentId"], "sessionKey": plan["sessionKey"],
                  "systemRunPlan": dict(plan), "timeoutMs": APPROVAL_TIMEOUT_MS,
                  "twoPhase": True}
        try:
            answer = approvals.request(ctx, params)
            if isinstance(answer, Deferred):
                answer = await answer
        except GatewayError as err:
            return f"approval request failed: {err.message}"
        chosen = answer.get("decision")
        approved = approvals.records.get(answer.get("id")) if answer.get("id") else None
        if chosen is None:
            fallback = decision.get("askFallback", "deny")
            if fallback != "full":
                reason = (approved.terminal_reason if approved else None) or "no decision"
                return f"no approval ({reason}); askFallback={fallback}"
        elif chosen not in ALLOW:
            return f"denied by the approver ({chosen})"
        approved_plan = (approved.request.get("systemRunPlan") if approved else None) or plan
        if plan_digest(approved_plan) != digest:
            return "the command changed between approval and execution; refused"
        if chosen == "allow-always" and job is not None and self.grants is not None and \
                approved is not None:
            self.grants.mint(approved.id, plan["agentId"], job, plan["commandText"],
                             plan["cwd"], approved.grant_expires_days or
                             self.grant_expiry_days())
        return None

    async def _run(self, plan: dict[str, Any], on_output: Any = None) -> str:
        if plan["host"] == "node":
            nodes = self.nodes
            if nodes is None or nodes.invoker is None:
                return _result(ok=False, error="no node registry")
            try:
                reply = await nodes.invoker.invoke(None, {
                    "nodeId": plan["nodeId"], "command": "system.run",
                    "params": {"command": plan["argv"], "cwd": plan["cwd"]},
                    "idempotencyKey": str(uuid.uuid4()), "timeoutMs": RUN_TIMEOUT_MS},
                    on_output)
            except GatewayError as err:
                return _result(ok=False, error=err.message)
            return _result(ok=True, host="node", nodeId=plan["nodeId"],
                           result=reply.get("payload"))
        argv = plan["argv"]
        executable = shutil.which(argv[0]) or argv[0]
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL")}
        try:
            out, err, code = await getProcessOutputAndValue(
                executable, argv[1:], env=env, path=plan["cwd"] or None,
                reactor=self.reactor)
        except Exception as e:  # the executable is missing, cwd is wrong, ...
            return _result(ok=False, error=f"could not run {argv[0]!r}: {e}")
        return _result(ok=code == 0, exitCode=code,
                       stdout=out.decode("utf-8", "replace")[:MAX_OUTPUT_CHARS],
                       stderr=err.decode("utf-8", "replace")[:MAX_OUTPUT_CHARS])
