"""chat.startup and chat.metadata (methods/chat_startup.py): the shapes the real 2026.9.6
gateway answered the Control UI on a fresh install and after a chat turn (captured through
tools/ws-capture.py), with this gateway's values."""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.hub.hello import EVENTS
from openclaw_tw.methods.chat_commands import commands
from tests.support.agent import MAIN, RW, drain, install_fake, send
from tests.support.helpers import call, hello, make_app, ok, stored_row

STARTUP = {"sessionKey": MAIN, "limit": 80, "maxBytes": 262144}  # what the UI sends
METADATA = {"accountSelection": {"kind": "automatic", "label": "Automatic account selection"},
            "commands": commands(), "swarmEnabled": False, "runtimeSelectionLocked": False}
# A real 2026.9.6 command entry (chat.metadata, captured), the shape every listed one follows.
REAL_COMMAND = {"name": "compact", "nativeName": "compact", "textAliases": ["/compact"],
                "description": "Compact the session context.", "category": "session",
                "source": "native", "scope": "both", "acceptsArgs": True,
                "args": [{"name": "instructions", "description": "Extra compaction instructions",
                          "type": "string"}]}


class SlashCommands(SynchronousTestCase):
    def test_only_what_the_ui_runs_through_our_methods(self) -> None:
        listed = commands()
        self.assertEqual([c["name"] for c in listed], ["help", "new", "stop", "compact", "model"])
        for entry in listed:
            self.assertLessEqual(set(entry), set(REAL_COMMAND), entry)
            self.assertEqual(entry["textAliases"], ["/" + entry["name"]])
            self.assertEqual((entry["source"], entry["scope"]), ("native", "both"))
            self.assertEqual(entry["acceptsArgs"], "args" in entry)
        # never /reset, /status, /think ...: the UI sends those as text for the gateway to run
        self.assertNotIn("reset", {c["name"] for c in listed})
        listed[0]["textAliases"].append("/x")
        self.assertEqual(commands()[0]["textAliases"], ["/help"])  # each answer is a copy

    def test_the_methods_behind_them_are_served(self) -> None:
        app, _ = make_app()
        self.addCleanup(app.runtime.stopService)
        served = set(app.hub.methods.advertised())
        self.assertLessEqual({"sessions.create", "sessions.abort", "sessions.compact",
                              "sessions.patch"}, served)


class ChatStartup(SynchronousTestCase):
    def setUp(self) -> None:
        self.app, self.clock = make_app()
        self.addCleanup(self.app.runtime.stopService)
        self.c = hello(self.app.hub, scopes=RW)

    def startup(self, **params: Any) -> Any:
        return ok(self.c, "chat.startup", {**STARTUP, **params})

    def test_fresh_install(self) -> None:
        out = self.startup()
        # the real fresh answer: no sessionId, no messages, the missing session's row
        self.assertEqual(list(out), ["sessionKey", "messages", "pendingInputs", "hasMore",
                                     "totalMessages", "defaults", "sessionInfo",
                                     "thinkingLevel", "metadata"])
        self.assertEqual((out["sessionKey"], out["messages"], out["hasMore"],
                          out["totalMessages"]), (MAIN, [], False, 0))
        self.assertEqual(out["pendingInputs"], {"items": [], "total": 0})
        self.assertEqual(out["thinkingLevel"], "off")
        info = out["sessionInfo"]
        self.assertEqual((info["key"], info["isMain"], info["updatedAt"], info["hasActiveRun"]),
                         (MAIN, True, None, False))
        self.assertNotIn("activeLeafEntryId", info)
        self.assertEqual(out["metadata"], ok(self.c, "chat.metadata", {"sessionKey": MAIN}))

    def test_after_a_turn(self) -> None:
        send(self.c, "main", "hi", "k1")
        drain(self.clock)
        self.c.pop()
        out = self.startup()
        history = ok(self.c, "chat.history", {"sessionKey": MAIN, "limit": 80})
        self.assertEqual(out["messages"], history["messages"])
        self.assertEqual([m["role"] for m in out["messages"]], ["user", "assistant"])
        self.assertEqual((out["sessionId"], out["totalMessages"], out["hasMore"]),
                         (stored_row(self.app, MAIN).session_id, 2, False))
        info = out["sessionInfo"]
        self.assertEqual(info["activeLeafEntryId"], out["messages"][-1]["__openclaw"]["id"])
        self.assertEqual((info["status"], info["hasActiveRun"]), ("done", False))
        self.assertNotIn("inFlightRun", out)

    def test_total_counts_the_session_not_the_page(self) -> None:
        for i in range(3):
            send(self.c, "main", f"turn {i}", f"k{i}")
            drain(self.clock)
        out = self.startup(limit=2)
        self.assertEqual((len(out["messages"]), out["totalMessages"], out["hasMore"]),
                         (2, 6, True))

    def test_a_reset_session_counts_its_own_entries(self) -> None:
        send(self.c, "main", "before", "k1")
        drain(self.clock)
        ok(hello(self.app.hub, scopes=["operator.admin"]), "sessions.reset", {"key": MAIN})
        out = self.startup()
        self.assertEqual((out["messages"], out["totalMessages"]), ([], 0))

    def test_reply_in_flight(self) -> None:
        fake = install_fake(self.app)
        send(self.c, "main", "hi", "k1")
        self.clock.advance(0.5)  # past the ack grace; the reply streams
        fake.calls[0].say("Hello")
        out = self.startup()
        run = self.app.runtime.active[MAIN]
        self.assertEqual(out["inFlightRun"], {"runId": "k1", "text": "Hello",
                                              "startedAt": run.started_at})
        self.assertEqual((out["sessionInfo"]["hasActiveRun"], out["sessionInfo"]["status"]),
                         (True, "running"))
        fake.calls[0].finish(" there")
        drain(self.clock)
        self.assertNotIn("inFlightRun", self.startup())

    def test_short_id_form_finds_nothing(self) -> None:
        self.assertEqual(ok(self.c, "chat.startup", {"shortId": "abc123", "agentId": "main"}),
                         {"resolution": {"ok": False}})

    def test_params(self) -> None:
        for params in ({}, {"sessionKey": ""}, {**STARTUP, "limit": 1001},
                       {**STARTUP, "maxBytes": 10}, {**STARTUP, "bogus": 1},
                       {"shortId": "x"}):
            res = call(self.c, "chat.startup", params)
            self.assertFalse(res["ok"], params)
            self.assertEqual(res["error"]["message"],
                             "invalid chat.startup params: must match a schema in anyOf")

    def test_read_scope_is_enough(self) -> None:
        reader = hello(self.app.hub, scopes=["operator.read"])
        self.assertTrue(call(reader, "chat.startup", STARTUP)["ok"])


class ChatMetadata(SynchronousTestCase):
    def setUp(self) -> None:
        self.app, _ = make_app()
        self.c = hello(self.app.hub, scopes=["operator.read"])

    def test_shape(self) -> None:
        out = ok(self.c, "chat.metadata", {"agentId": "main", "sessionKey": MAIN})
        self.assertEqual({k: v for k, v in out.items() if k != "models"}, METADATA)
        # the composer's model list is the models.list catalog
        self.assertEqual(out["models"], ok(self.c, "models.list", {})["models"])
        self.assertEqual(ok(self.c, "chat.metadata", {}), out)

    def test_unknown_agent(self) -> None:
        res = call(self.c, "chat.metadata", {"agentId": "ghost"})
        self.assertEqual(res["error"]["message"], 'unknown agent id "ghost"')

    def test_closed_params(self) -> None:
        res = call(self.c, "chat.metadata", {"bogus": True})
        self.assertEqual(res["error"]["message"],
                         "invalid chat.metadata params: at root: unexpected property 'bogus'")

    def test_changed_is_never_announced(self) -> None:
        # nothing of the metadata changes while the gateway runs, so the event is not sent
        self.assertNotIn("chat.metadata.changed", EVENTS)
