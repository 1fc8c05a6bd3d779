"""The ``agent`` method and friends (reference §6.2, §9): two responses on one request id,
failure and dedupe shapes, the dynamic admin scope for /new and /reset, agent.wait, and the
agents.list / agent.identity.get shapes (vectors: traces/agent-cli*.jsonl, agent-wait.jsonl,
misc-methods*.jsonl; models.list: test_models.py).

The helpers (request shortcuts, event labels, a hand-driven fake provider, frame spies and held
commits) are in ``tests/support/agent.py``."""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.agent.models import ProviderError
from tests.support.agent import ADMIN, MAIN, READ, RW, drain, install_fake, labels, responses, send
from tests.support.helpers import WSClient, hello, make_app, make_gateway, ok, stored_row

OFFLINE_HI = "[offline model] You said: hi"
CLI_KEY = "agent:main:cli"


class AgentMethod(SynchronousTestCase):
    def setUp(self) -> None:
        self.app, self.clock = make_app()
        self.gw = self.app.hub
        self.addCleanup(self.app.runtime.stopService)  # settle runs left open
        self.c = hello(self.gw, scopes=RW)

    def agent(self, client: WSClient | None = None, message: str = "hi", idem: str = "a1",
              **extra: Any) -> str:
        params = {"message": message, "idempotencyKey": idem, "sessionKey": CLI_KEY, **extra}
        return (client or self.c).request("agent", params)

    def test_two_responses_on_one_request(self) -> None:
        rid = self.agent()
        [accepted] = responses(self.c, rid)
        self.assertTrue(accepted["ok"])
        self.assertIsInstance(accepted["payload"].pop("acceptedAt"), int)
        self.assertEqual(accepted["payload"], {"runId": "a1", "sessionKey": CLI_KEY,
                                               "agentId": "main", "status": "accepted"})
        drain(self.clock)
        first, final = responses(self.c, rid)
        self.assertTrue(final["ok"])
        payload = final["payload"]
        self.assertEqual((payload["runId"], payload["status"], payload["summary"]),
                         ("a1", "ok", "completed"))
        self.assertEqual(payload["result"]["payloads"], [{"text": OFFLINE_HI, "mediaUrl": None}])
        meta = payload["result"]["meta"]
        self.assertIsInstance(meta["durationMs"], int)
        self.assertGreaterEqual(meta["durationMs"], 0)
        row = stored_row(self.app, CLI_KEY)
        assert row is not None
        agent_meta = meta["agentMeta"]
        self.assertEqual((agent_meta["sessionId"], agent_meta["provider"], agent_meta["model"]),
                         (row.session_id, "offline", "offline-echo"))
        self.assertLessEqual({"input", "output", "total"}, set(agent_meta["usage"]))
        seen = labels(self.c, "a1")
        self.assertEqual(seen[:2], ["agent:lifecycle:start", "agent:lifecycle:model"])
        self.assertFalse([s for s in seen if s.startswith("chat:status")])
        self.assertEqual(seen[-2:], ["agent:lifecycle:end", "chat:final"])

    def test_default_session_is_main(self) -> None:
        rid = self.c.request("agent", {"message": "hello there", "agentId": "main",
                                       "idempotencyKey": "a1", "deliver": False,
                                       "timeout": 600})
        self.assertEqual(responses(self.c, rid)[0]["payload"]["sessionKey"], MAIN)

    def test_failing_provider(self) -> None:
        fake = install_fake(self.app)
        rid = self.agent()
        message = "No route-compatible authentication source is configured for openai."
        fake.calls[0].fail(ProviderError(message))
        accepted, final = responses(self.c, rid)
        self.assertEqual(accepted["payload"]["status"], "accepted")
        self.assertFalse(final["ok"])
        self.assertEqual(final["payload"], {"runId": "a1", "status": "error",
                                            "summary": message})
        self.assertEqual(final["error"], {"code": "UNAVAILABLE", "message": message})

    def test_duplicate_while_active_is_in_flight(self) -> None:
        rid = self.agent()
        dup = self.agent()
        self.assertEqual([r["payload"] for r in responses(self.c, dup)],
                         [{"runId": "a1", "status": "in_flight", "sessionKey": CLI_KEY,
                           "agentId": "main"}])
        drain(self.clock)
        self.assertEqual(len(responses(self.c, dup)), 1)
        self.assertEqual(len(responses(self.c, rid)), 2)
        self.assertEqual(labels(self.c, "a1").count("agent:lifecycle:start"), 1)

    def test_duplicate_after_completion_gets_the_original_final(self) -> None:
        rid = self.agent()
        drain(self.clock)
        final = responses(self.c, rid)[-1]
        dup = self.agent()
        drain(self.clock)
        [again] = responses(self.c, dup)
        self.assertEqual((again["ok"], again["payload"]), (True, final["payload"]))
        self.assertEqual(labels(self.c, "a1").count("agent:lifecycle:start"), 1)

    def test_new_and_reset_need_admin(self) -> None:
        for i, message in enumerate(["/new", "  /reset now", "/NEW"]):
            res = responses(self.c, self.agent(message=message, idem=f"n{i}"))[0]
            self.assertEqual(res["error"]["message"], "missing scope: operator.admin")
        self.assertIsNone(stored_row(self.app, CLI_KEY))
        admin = hello(self.gw, scopes=ADMIN)
        res = responses(admin, self.agent(admin, message="/new", idem="n9"))[0]
        self.assertEqual(res["payload"]["status"], "accepted")
        reader = hello(self.gw, scopes=READ)
        res = responses(reader, self.agent(reader, idem="r1"))[0]
        self.assertEqual(res["error"]["message"], "missing scope: operator.write")

    def test_wait_before_and_after_the_end(self) -> None:
        fake = install_fake(self.app)
        send(self.c, "main", "hi", "k1")
        early = self.c.request("agent.wait", {"runId": "k1", "timeoutMs": 100})
        self.clock.advance(0.099)
        self.assertIsNone(self.c.response(early))
        self.clock.advance(0.002)
        self.assertEqual(self.c.response(early)["payload"], {"runId": "k1", "status": "timeout"})
        pending = self.c.request("agent.wait", {"runId": "k1", "timeoutMs": 20_000})
        self.assertIsNone(self.c.response(pending))
        fake.calls[0].finish("Hello from the mock model.")
        for rid in (pending, self.c.request("agent.wait", {"runId": "k1", "timeoutMs": 1000})):
            waited = self.c.response(rid)["payload"]
            self.assertEqual((waited["runId"], waited["status"], waited["stopReason"]),
                             ("k1", "ok", "stop"))
            self.assertIsInstance(waited["endedAt"], int)
            self.assertEqual(waited["terminalReply"],
                             {"disposition": "visible", "text": "Hello from the mock model."})

    def test_timed_out_waits_leave_no_waiter_on_the_run(self) -> None:
        """A client polling agent.wait with short timeouts on a long run: each timed-out wait
        is taken off the run (1,000 answered waits used to leave 1,000 Deferreds on it)."""
        fake = install_fake(self.app)
        send(self.c, "main", "hi", "k1")
        before = len(self.app.runtime.runs["k1"].waiters)  # the chat.send's own
        for _ in range(50):
            rid = self.c.request("agent.wait", {"runId": "k1", "timeoutMs": 0})
            self.clock.advance(0.001)
            self.assertEqual(self.c.response(rid)["payload"]["status"], "timeout")
        self.assertEqual(len(self.app.runtime.runs["k1"].waiters), before)
        pending = self.c.request("agent.wait", {"runId": "k1", "timeoutMs": 20_000})
        self.assertEqual(len(self.app.runtime.runs["k1"].waiters), before + 1)
        fake.calls[0].finish("done")
        self.assertEqual(self.c.response(pending)["payload"]["status"], "ok")

    def test_wait_unknown_run_times_out(self) -> None:
        rid = self.c.request("agent.wait", {"runId": "no-such-run", "timeoutMs": 500})
        self.clock.advance(0.499)
        self.assertIsNone(self.c.response(rid))
        self.clock.advance(0.002)
        self.assertEqual(self.c.response(rid)["payload"],
                         {"runId": "no-such-run", "status": "timeout"})


class AgentCatalog(SynchronousTestCase):
    def setUp(self) -> None:
        self.gw, self.clock = make_gateway()
        self.c = hello(self.gw, scopes=READ)

    def test_agents_list(self) -> None:
        listing = ok(self.c, "agents.list", {})
        self.assertEqual({k: listing[k] for k in ("defaultId", "ownership", "selectionRequired",
                                                  "mainKey", "scope")},
                         {"defaultId": "main", "ownership": "sole", "selectionRequired": False,
                          "mainKey": "main", "scope": "per-sender"})
        main = listing["agents"][0]
        self.assertLessEqual({"id", "workspace", "workspaceGit", "agentRuntime",
                              "thinkingLevels", "thinkingOptions", "thinkingDefault", "model",
                              "defaultPermissionMode"}, set(main))
        self.assertEqual((main["id"], main["model"]), ("main", {"primary": "offline/offline-echo"}))
        self.assertIsInstance(main["workspace"], str)
        self.assertIn(main["thinkingDefault"], main["thinkingOptions"])

    def test_agent_identity_shape(self) -> None:
        identity = ok(self.c, "agent.identity.get", {"agentId": "main"})
        self.assertEqual(set(identity), {"agentId", "name", "nameSource", "avatar"})
        self.assertEqual((identity["agentId"], identity["nameSource"]), ("main", "default"))
        other = ok(self.c, "agent.identity.get", {"sessionKey": "agent:Ops:x"})
        self.assertEqual(other["agentId"], "ops")

    def test_agent_identity_default_matches_trace(self) -> None:
        """misc-methods-2.jsonl: an unconfigured main agent is "Assistant" with avatar "A"."""
        self.assertEqual(ok(self.c, "agent.identity.get", {"agentId": "main"}),
                         {"agentId": "main", "name": "Assistant", "nameSource": "default",
                          "avatar": "A"})
