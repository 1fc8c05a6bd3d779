"""sessions.messages.subscribe/unsubscribe and ``session.message``; sessions.viewers.set and
sessions.observer.visibility (methods/session_messages.py).  The shapes are the real 2026.9.6
gateway's (captured with the Control UI through tools/ws-capture.py: a user message and the
reply, each with the session row flattened and as ``session``, the row saying the run is in
flight)."""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.hub.hello import EVENTS
from tests.support.agent import MAIN, RW, drain, history, install_fake, send
from tests.support.devices import Device
from tests.support.helpers import WSClient, call, hello, make_app, ok

APPROVERS = ["operator.read", "operator.write", "operator.approvals"]


class SessionMessages(SynchronousTestCase):
    def setUp(self) -> None:
        self.app, self.clock = make_app()
        self.gw = self.app.hub
        self.addCleanup(self.app.runtime.stopService)
        self.c = hello(self.gw, scopes=RW)

    def messages(self, client: WSClient) -> list[dict[str, Any]]:
        client.flush()
        return [f["payload"] for f in client.events("session.message")]

    def test_subscribe_answer(self) -> None:
        self.assertEqual(ok(self.c, "sessions.messages.subscribe", {"key": "main"}),
                         {"subscribed": True, "key": MAIN})
        self.assertEqual(ok(self.c, "sessions.messages.unsubscribe", {"key": "main"}),
                         {"subscribed": False, "key": MAIN})
        self.assertEqual(ok(self.c, "sessions.messages.subscribe",
                            {"key": "work", "agentId": "ops"})["key"], "agent:ops:work")

    def test_subscriptions_bounded_per_connection(self) -> None:
        from openclaw_tw.methods import session_messages

        self.patch(session_messages, "MAX_MESSAGE_SUBSCRIPTIONS", 3)
        for i in range(3):
            ok(self.c, "sessions.messages.subscribe", {"key": f"s{i}"})
        ok(self.c, "sessions.messages.subscribe", {"key": "s1"})  # already held: fine
        refused = call(self.c, "sessions.messages.subscribe", {"key": "s3"})
        self.assertEqual(refused["error"]["code"], "INVALID_REQUEST")
        self.assertIn("too many sessions.messages subscriptions", refused["error"]["message"])
        ok(self.c, "sessions.messages.unsubscribe", {"key": "s0"})
        ok(self.c, "sessions.messages.subscribe", {"key": "s3"})
        long_key = call(self.c, "sessions.messages.subscribe", {"key": "k" * 4097})
        self.assertEqual(long_key["error"]["code"], "INVALID_REQUEST")

    def test_approval_replay_for_a_paired_approver(self) -> None:
        ui = WSClient(self.gw)
        res = Device().connect(ui, scopes=APPROVERS)
        self.assertTrue(res and res["ok"], res)
        out = ok(ui, "sessions.messages.subscribe", {"key": MAIN, "includeApprovals": True})
        self.assertEqual(out, {"subscribed": True, "key": MAIN, "approvalReplay": {
            "sessionKey": MAIN, "updatedAtMs": self.gw.now_ms(), "approvals": [],
            "truncated": False}})

    def test_approval_replay_needs_a_device_and_the_scope(self) -> None:
        for client in (hello(self.gw, scopes=["operator.admin"]), self.c):
            res = call(client, "sessions.messages.subscribe",
                       {"key": MAIN, "includeApprovals": True})
            self.assertEqual(res["error"]["message"],
                             "sessions.messages.subscribe includeApprovals requires a paired "
                             "device and gateway scope: operator.approvals")

    def test_params(self) -> None:
        for params, message in (
                ({}, "must have required property 'key'"),
                ({"key": ""}, "at /key: must NOT have fewer than 1 characters"),
                ({"key": MAIN, "extra": 1}, "at root: unexpected property 'extra'")):
            res = call(self.c, "sessions.messages.subscribe", params)
            self.assertEqual(res["error"]["message"],
                             f"invalid sessions.messages.subscribe params: {message}")

    def test_user_message_and_reply_reach_the_subscriber(self) -> None:
        watcher = hello(self.gw, scopes=["operator.read"])
        ok(watcher, "sessions.messages.subscribe", {"key": MAIN})
        fake = install_fake(self.app)
        send(self.c, "main", "hi", "k1")
        [user] = self.messages(watcher)
        entries = history(self.c)["messages"]
        self.assertEqual(user["message"], entries[0])
        self.assertEqual((user["sessionKey"], user["agentId"], user["messageId"],
                          user["messageSeq"]),
                         (MAIN, "main", entries[0]["__openclaw"]["id"],
                          entries[0]["__openclaw"]["seq"]))
        self.assertNotIn("runId", user)
        # the run is in flight: the row says so, flat and as ``session``
        session = user["session"]
        self.assertEqual((session["key"], session["hasActiveRun"], session["status"],
                          session["activeRunIds"]), (MAIN, True, "running", ["k1"]))
        self.assertEqual({k: v for k, v in user.items() if k in session},
                         {k: v for k, v in session.items() if k != "key"})
        self.clock.advance(0.5)
        fake.calls[0].finish("hello")
        [reply] = self.messages(watcher)[1:]
        self.assertEqual(reply["message"], history(self.c)["messages"][1])
        self.assertEqual(reply["message"]["content"], [{"type": "text", "text": "hello"}])
        self.assertEqual((reply["runId"], reply["hasActiveRun"], reply["status"]),
                         ("k1", True, "running"))
        self.assertEqual(reply["session"]["inputTokens"], 4)  # the row already holds the usage

    def test_reply_comes_before_the_final_chat_event(self) -> None:
        ok(self.c, "sessions.messages.subscribe", {"key": MAIN})
        send(self.c, "main", "hi", "k1")
        drain(self.clock)
        order = [f["event"] if f["event"] != "chat" else f"chat:{f['payload']['state']}"
                 for f in self.c.pop() if f.get("type") == "event"
                 and f["event"] in ("chat", "session.message")]
        self.assertEqual(order.index("session.message", 1) < order.index("chat:final"), True)

    def test_delivery_only_to_subscribers_of_that_session(self) -> None:
        other = hello(self.gw, scopes=["operator.read"])
        ok(other, "sessions.messages.subscribe", {"key": "elsewhere"})
        lister = hello(self.gw, scopes=["operator.read"])
        ok(lister, "sessions.subscribe", {})
        quiet = hello(self.gw, scopes=["operator.read"])
        send(self.c, "main", "hi", "k1")
        drain(self.clock)
        self.assertEqual(self.messages(other), [])
        self.assertEqual(self.messages(quiet), [])
        self.assertEqual(self.messages(self.c), [])  # the sender did not subscribe either
        # sessions.subscribe (session events) receives them, as the real gateway delivers
        self.assertEqual([m["message"]["role"] for m in self.messages(lister)],
                         ["user", "assistant"])

    def test_unsubscribe_stops_delivery(self) -> None:
        ok(self.c, "sessions.messages.subscribe", {"key": MAIN})
        ok(self.c, "sessions.messages.unsubscribe", {"key": "main"})
        send(self.c, "main", "hi", "k1")
        drain(self.clock)
        self.assertEqual(self.messages(self.c), [])

    def test_injected_messages_are_delivered_too(self) -> None:
        ok(self.c, "sessions.messages.subscribe", {"key": MAIN})
        admin = hello(self.gw, scopes=["operator.admin"])
        ok(admin, "chat.inject", {"sessionKey": MAIN, "message": "note"})
        [note] = self.messages(self.c)
        self.assertEqual((note["message"]["role"], note["hasActiveRun"]), ("assistant", False))

    def test_announced(self) -> None:
        self.assertIn("session.message", EVENTS)


class Viewers(SynchronousTestCase):
    def setUp(self) -> None:
        self.app, _ = make_app()
        self.c = hello(self.app.hub, scopes=["operator.read"])

    def test_replaces_and_answers_canonical_keys(self) -> None:
        out = ok(self.c, "sessions.viewers.set", {"sessionKeys": ["main", "agent:main:main",
                                                                  "work"]})
        self.assertEqual(out, {"sessionKeys": [MAIN, "agent:main:work"]})
        self.assertEqual(ok(self.c, "sessions.viewers.set",
                            {"sessionKeys": ["x"], "agentId": "ops"}),
                         {"sessionKeys": ["agent:ops:x"]})
        conn = next(iter(self.app.hub.conns.values()))
        self.assertEqual({s for s in conn.subscriptions if s.startswith("viewing:")},
                         {"viewing:agent:ops:x"})
        self.assertEqual(ok(self.c, "sessions.viewers.set", {"sessionKeys": []}),
                         {"sessionKeys": []})

    def test_params(self) -> None:
        res = call(self.c, "sessions.viewers.set", {"sessionKeys": ["  "]})
        self.assertEqual(res["error"]["message"], "invalid sessions.viewers.set params")
        res = call(self.c, "sessions.viewers.set", {"sessionKeys": ["k"] * 33})
        self.assertEqual(res["error"]["message"], "invalid sessions.viewers.set params: "
                         "at /sessionKeys: must NOT have more than 32 items")

    def test_no_session_observer(self) -> None:
        res = call(self.c, "sessions.observer.visibility", {"visible": True})
        self.assertEqual(res["error"], {"code": "UNAVAILABLE",
                                        "message": "Session observer is unavailable."})
        res = call(self.c, "sessions.observer.visibility", {})
        self.assertEqual(res["error"]["message"], "invalid sessions.observer.visibility "
                         "params: must have required property 'visible'")
