"""The agent runtime's exec hook: model tool call -> approval policy -> run (gateway or node).

A scripted provider (OpenAI-compatible API label, so it is offered the exec tool) first asks
for ``exec`` and then answers with text; the subprocess runner and the node invoker are faked,
so the tests see exactly what would run, where, and after which decision.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.agent import exec_tool
from openclaw_tw.agent.models import ModelRequest, ModelResult
from tests.support.helpers import hello, make_app
from tests.support.tmp import fresh_dir

RW = ["operator.read", "operator.write"]


class ScriptedToolModel:
    """Round 1: a tool call to exec; round 2: a text reply.  Records every request."""

    id = "scripted"
    api = "openai-completions"

    def __init__(self, command: str, host: str = "gateway", node_id: str | None = None):
        self.args: dict[str, Any] = {"command": command, "host": host}
        if node_id:
            self.args["nodeId"] = node_id
        self.requests: list[ModelRequest] = []

    def stream(self, request: ModelRequest, on_text: Any, on_tool: Any) -> Deferred[ModelResult]:
        self.requests.append(request)
        if len(self.requests) == 1:
            on_tool({"phase": "end", "toolCallId": "call_1", "name": "exec",
                     "arguments": json.dumps(self.args), "args": self.args})
            return succeed(ModelResult("", "tool_calls", 5, 1))
        on_text("done")
        return succeed(ModelResult("done", "stop", 9, 1))


def write_policy(state: Path, **defaults: str) -> None:
    (state / "exec-approvals.json").write_text(json.dumps({"version": 1,
                                                           "defaults": defaults}))


class ExecHook(SynchronousTestCase):
    def setUp(self) -> None:
        self.state = fresh_dir(self)
        (self.state / "openclaw.json").write_text(json.dumps({"tools": {"exec": {
            "enabled": True}}}))
        self.ran: list[tuple[str, list[str]]] = []
        self.patch(exec_tool, "getProcessOutputAndValue", self._fake_spawn)

    def _fake_spawn(self, executable: str, args: Any, **kw: Any) -> Deferred[Any]:
        self.ran.append((executable, list(args)))
        return succeed((b"hi\n", b"", 0))

    def start(self, model: ScriptedToolModel, **policy: str) -> Any:
        if policy:
            write_policy(self.state, **policy)
        app, clock = make_app(state_dir=self.state, config=str(self.state / "openclaw.json"))
        gw = app.hub
        self.addCleanup(app.runtime.stopService)
        app.runtime.registry.providers["scripted"] = model
        app.runtime.registry.primary = "scripted/m1"
        self.app, self.gw, self.clock = app, gw, clock
        return hello(gw, scopes=RW)

    def approver(self) -> Any:
        """An approval client (§15.1); agent-requested approvals are seen by admins."""
        return hello(self.gw, scopes=["operator.admin", "operator.approvals"],
                     caps=["exec-approvals"])

    def turn(self, client: Any, key: str = "k1") -> None:
        client.request("chat.send", {"sessionKey": "main", "message": "run it",
                                     "idempotencyKey": key})
        self.clock.advance(0)

    def tool_result(self, model: ScriptedToolModel) -> dict[str, Any]:
        tool_msgs = [m for m in model.requests[-1].messages if m.get("role") == "tool"]
        self.assertEqual(len(tool_msgs), 1, model.requests[-1].messages)
        return json.loads(tool_msgs[0]["content"])

    def test_exec_tool_is_offered_only_when_enabled(self) -> None:
        model = ScriptedToolModel("echo hi")
        (self.state / "openclaw.json").write_text("{}")
        c = self.start(model)
        self.turn(c)
        self.assertIsNone(model.requests[0].tools)
        self.assertEqual(self.ran, [])

    def test_full_security_runs_on_the_gateway_and_feeds_the_result_back(self) -> None:
        model = ScriptedToolModel("echo hi there")
        c = self.start(model, security="full", ask="off")
        self.turn(c)
        self.assertEqual([t["function"]["name"] for t in model.requests[0].tools], ["exec"])
        self.assertEqual(len(self.ran), 1)
        self.assertTrue(self.ran[0][0].endswith("echo"))
        self.assertEqual(self.ran[0][1], ["hi", "there"])
        result = self.tool_result(model)
        self.assertEqual((result["ok"], result["exitCode"], result["stdout"]), (True, 0, "hi\n"))
        history = c.response(c.request("chat.history", {"sessionKey": "main"}))["payload"]
        roles = [m["role"] for m in history["messages"]]
        self.assertEqual(roles, ["user", "toolResult", "assistant"])

    def test_the_row_counts_every_model_call_of_the_run(self) -> None:
        # input/output tokens are the run's (both calls: 5+9 in, 1+1 out); totalTokens is the
        # prompt of its last call (9), as the real gateway's usage accumulator and lastCallUsage
        c = self.start(ScriptedToolModel("echo hi"), security="full", ask="off")
        self.turn(c)
        row = c.response(c.request("sessions.describe", {"key": "main"}))["payload"]["session"]
        self.assertEqual({k: row[k] for k in ("inputTokens", "outputTokens", "totalTokens",
                                              "totalTokensFresh")},
                         {"inputTokens": 14, "outputTokens": 2, "totalTokens": 9,
                          "totalTokensFresh": True})

    def test_security_deny_never_runs(self) -> None:
        model = ScriptedToolModel("rm -rf /tmp/x")
        c = self.start(model, security="deny")
        self.turn(c)
        self.assertEqual(self.ran, [])
        self.assertIn("security=deny", self.tool_result(model)["error"])

    def test_ask_without_an_approval_route_falls_back_to_deny(self) -> None:
        model = ScriptedToolModel("echo hi")
        c = self.start(model, security="full", ask="always", askFallback="deny")
        self.turn(c)
        self.assertEqual(self.ran, [])
        result = self.tool_result(model)
        self.assertTrue(result["denied"])
        self.assertIn("no-approval-route", result["error"])

    def test_ask_goes_to_an_approval_client_and_allow_once_runs(self) -> None:
        model = ScriptedToolModel("echo approved")
        c = self.start(model, security="full", ask="always")
        approver = self.approver()
        self.turn(c)
        self.assertEqual(self.ran, [])  # waiting for the human
        asked = (approver.flush(), approver.events("exec.approval.requested"))[1]
        self.assertEqual(len(asked), 1)
        request = asked[0]["payload"]["request"]
        self.assertEqual(request["commandArgv"], ["echo", "approved"])
        self.assertEqual(request["systemRunPlan"]["argv"], ["echo", "approved"])
        res = approver.response(approver.request("exec.approval.resolve", {
            "id": asked[0]["payload"]["id"], "decision": "allow-once"}))
        self.assertTrue(res["ok"], res)
        self.clock.advance(0)
        self.assertEqual(self.ran[0][1], ["approved"])
        self.assertTrue(self.tool_result(model)["ok"])

    def test_ask_and_deny_reports_the_denial_to_the_model(self) -> None:
        model = ScriptedToolModel("echo nope")
        c = self.start(model, security="full", ask="always")
        approver = self.approver()
        self.turn(c)
        approval_id = (approver.flush(), approver.events("exec.approval.requested"))[1][0]["payload"]["id"]
        approver.request("exec.approval.resolve", {"id": approval_id, "decision": "deny"})
        self.clock.advance(0)
        self.assertEqual(self.ran, [])
        self.assertIn("denied by the approver", self.tool_result(model)["error"])

    def test_a_plan_changed_after_approval_is_refused(self) -> None:
        model = ScriptedToolModel("echo original")
        c = self.start(model, security="full", ask="always")
        approver = self.approver()
        self.turn(c)
        approval_id = (approver.flush(), approver.events("exec.approval.requested"))[1][0]["payload"]["id"]
        # Tamper with the recorded plan between approval request and execution.
        self.app.approvals.records[approval_id].request["systemRunPlan"]["argv"] = ["rm", "-rf"]
        approver.request("exec.approval.resolve", {"id": approval_id, "decision": "allow-once"})
        self.clock.advance(0)
        self.assertEqual(self.ran, [])
        self.assertIn("changed between approval and execution", self.tool_result(model)["error"])

    def test_host_node_sends_the_plan_as_system_run(self) -> None:
        model = ScriptedToolModel("uname -a", host="node", node_id="n1")
        sent: list[dict[str, Any]] = []

        class FakeInvoker:
            def invoke(self, caller: Any, params: dict[str, Any],
                       on_progress: Any = None) -> Deferred[Any]:
                sent.append(params)
                on_progress("Lin")  # node.invoke.progress reaches the exec tool's sink
                return succeed({"ok": True, "payload": {"exitCode": 0, "stdout": "Linux\n"}})

        c = self.start(model, security="full", ask="off")
        self.app.nodes.invoker = FakeInvoker()
        self.turn(c)
        self.assertEqual(self.ran, [])
        self.assertEqual(len(sent), 1)
        self.assertEqual((sent[0]["nodeId"], sent[0]["command"]), ("n1", "system.run"))
        self.assertEqual(sent[0]["params"]["command"], ["uname", "-a"])
        self.assertEqual(self.tool_result(model)["result"]["stdout"], "Linux\n")
