"""Standing grants (issue #20): "Always allow" on an automation's exec approval mints a grant;
later runs of that job run that exact command without prompting; a changed job, a changed
command or a revoke brings the prompt back.  exec.approval.grants.list/revoke in the real
shapes (the fields of the real gateway's list entry, outcomes revoked/already-revoked/
not-found)."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.agent import exec_tool
from openclaw_tw.agent.models import ModelRequest, ModelResult
from tests.support.helpers import hello, make_app
from tests.support.tmp import fresh_dir

ADMIN = ["operator.admin", "operator.approvals", "operator.read", "operator.write"]


class ExecEveryRun:
    """Calls exec in each run's first round, then answers."""

    id, api = "scripted", "openai-completions"

    def __init__(self) -> None:
        self.command = "ls -la"

    def stream(self, request: ModelRequest, on_text: Any, on_tool: Any) -> Deferred[ModelResult]:
        if request.messages[-1].get("role") == "tool":
            on_text("done")
            return succeed(ModelResult("done", "stop", 1, 1))
        args = {"command": self.command}
        on_tool({"phase": "end", "toolCallId": "c1", "name": "exec",
                 "arguments": json.dumps(args), "args": args})
        return succeed(ModelResult("", "tool_calls", 1, 1))


class Grants(SynchronousTestCase):
    def setUp(self) -> None:
        state = fresh_dir(self)
        (state / "openclaw.json").write_text(json.dumps({"tools": {"exec": {"enabled": True}}}))
        (state / "exec-approvals.json").write_text(json.dumps({
            "version": 1, "defaults": {"security": "full", "ask": "always"}}))
        self.ran: list[list[str]] = []
        self.patch(exec_tool, "getProcessOutputAndValue", self._spawn)
        self.app, self.clock = make_app(state_dir=state, config=str(state / "openclaw.json"))
        self.addCleanup(self.app.runtime.stopService)
        self.model = ExecEveryRun()
        self.app.runtime.registry.providers["scripted"] = self.model
        self.app.runtime.registry.primary = "scripted/m1"
        self.approver = hello(self.app.hub, scopes=ADMIN, caps=["exec-approvals"])
        self.job = {"id": "job-1", "name": "nightly listing", "enabled": True,
                    "createdAtMs": 0, "updatedAtMs": 0,
                    "schedule": {"kind": "every", "everyMs": 86_400_000, "anchorMs": 0},
                    "sessionTarget": "isolated", "wakeMode": "now",
                    "payload": {"kind": "agentTurn", "message": "list the files"},
                    "state": {}}
        self.app.cron.jobs[self.job["id"]] = self.job

    def _spawn(self, executable: str, args: Any, **kw: Any) -> Deferred[Any]:
        self.ran.append(list(args))
        return succeed((b"ok\n", b"", 0))

    def run_job(self) -> list[dict[str, Any]]:
        """One manual run; the approval requests it raised."""
        self.approver.flush()
        self.approver.received.clear()
        d = self.app.cron.start_run(self.job, "manual")
        self.clock.advance(0)
        self.approver.flush()
        requested = [e["payload"] for e in self.approver.events("exec.approval.requested")]
        self.run_d = d
        return requested

    def resolve(self, approval_id: str, decision: str, **extra: Any) -> None:
        res = self.approver.response(self.approver.request(
            "exec.approval.resolve", {"id": approval_id, "decision": decision, **extra}))
        self.assertTrue(res["ok"], res)
        self.clock.advance(0)

    def grants(self) -> list[dict[str, Any]]:
        res = self.approver.response(self.approver.request("exec.approval.grants.list", {}))
        return res["payload"]["grants"]

    def test_allow_always_mints_a_grant_and_later_runs_do_not_prompt(self) -> None:
        [first] = self.run_job()
        self.resolve(first["id"], "allow-always", grantExpiresInDays=30)
        self.assertEqual(len(self.ran), 1)
        [grant] = self.grants()
        now = self.app.hub.now_ms()
        self.assertEqual(set(grant), {"grantId", "mintedByApprovalId", "agentId", "cronJobId",
                                      "cronJobName", "command", "cwd", "createdAtMs",
                                      "expiresAtMs", "revokedAtMs", "revokedBy",
                                      "lastUsedAtMs", "useCount"})
        self.assertEqual((grant["mintedByApprovalId"], grant["cronJobId"], grant["cronJobName"],
                          grant["command"], grant["useCount"]),
                         (first["id"], "job-1", "nightly listing", "ls -la", 0))
        self.assertEqual(grant["expiresAtMs"], grant["createdAtMs"] + 30 * 86_400_000)
        self.assertLessEqual(grant["createdAtMs"], now)

        self.assertEqual(self.run_job(), [])  # no prompt: the grant covers it
        self.assertEqual(len(self.ran), 2)
        self.assertEqual(self.grants()[0]["useCount"], 1)

        # a different command is not covered
        self.model.command = "ls -la /etc"
        [again] = self.run_job()
        self.resolve(again["id"], "deny")
        self.assertEqual(len(self.ran), 2)

    def test_a_changed_job_or_a_revoke_brings_the_prompt_back(self) -> None:
        [first] = self.run_job()
        self.resolve(first["id"], "allow-always")
        [grant] = self.grants()
        self.assertIsNone(grant["expiresAtMs"])  # until revoked
        self.job["payload"] = {"kind": "agentTurn", "message": "list the files, please"}
        [prompt] = self.run_job()
        self.resolve(prompt["id"], "allow-once")
        self.job["payload"] = {"kind": "agentTurn", "message": "list the files"}  # restored
        self.assertEqual(self.run_job(), [])  # the same definition as minted matches again

        def revoke(grant_id: str) -> str:
            res = self.approver.response(self.approver.request(
                "exec.approval.grants.revoke", {"grantId": grant_id}))
            return res["payload"]["outcome"]

        self.assertEqual(revoke(grant["grantId"]), "revoked")
        self.assertEqual(revoke(grant["grantId"]), "already-revoked")
        self.assertEqual(revoke("no-such-grant"), "not-found")
        revoked = self.grants()[0]
        self.assertIsNotNone(revoked["revokedAtMs"])
        self.assertEqual(len(self.run_job()), 1)  # prompts again

    def test_an_interactive_allow_always_mints_nothing(self) -> None:
        c = hello(self.app.hub, scopes=ADMIN)
        c.request("chat.send", {"sessionKey": "main", "message": "go", "idempotencyKey": "i1"})
        self.clock.advance(0)
        self.approver.flush()
        [req] = [e["payload"] for e in self.approver.events("exec.approval.requested")]
        self.resolve(req["id"], "allow-always")
        self.assertEqual(self.grants(), [])

    def test_grants_survive_a_restart(self) -> None:
        [first] = self.run_job()
        self.resolve(first["id"], "allow-always")
        state = self.app.hub.settings.state_dir
        app2, _ = make_app(state_dir=state, config=str(state / "openclaw.json"))
        self.addCleanup(app2.runtime.stopService)
        self.assertEqual([g["cronJobId"] for g in app2.grants.listing(None)], ["job-1"])
