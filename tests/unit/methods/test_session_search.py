"""sessions.search (methods/session_search.py): the Control UI's command-palette search, in the
real 2026.9.6 shape -- ``results`` (one hit per matching user/assistant message: key, session
id, message id, role, timestamp, snippet, score; best first) and ``sessions`` (the rows hit).
The params are the UI's captured request: ``{query, limit: 25, scope: {includeGlobal: false,
includeUnknown: false, configuredAgentsOnly: true, excludeSubagents: true, excludeCron: true,
excludeSystem: true}}``."""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.methods.session_search import SNIPPET_MAX, score, snippet
from tests.support.agent import RW, drain, history, install_fake, send
from tests.support.helpers import call, hello, make_app, ok

UI_SCOPE = {"includeGlobal": False, "includeUnknown": False, "configuredAgentsOnly": True,
            "excludeSubagents": True, "excludeCron": True, "excludeSystem": True}


class SessionSearch(SynchronousTestCase):
    def setUp(self) -> None:
        self.app, self.clock = make_app()
        self.addCleanup(self.app.runtime.stopService)
        self.c = hello(self.app.hub, scopes=RW)
        self.fake = install_fake(self.app)

    def turn(self, key: str, text: str, reply: str) -> None:
        send(self.c, key, text, f"{key}-{len(self.fake.calls)}")
        self.clock.advance(0.5)
        self.fake.calls[-1].finish(reply)
        drain(self.clock)

    def search(self, query: str, **extra: Any) -> dict[str, Any]:
        return ok(self.c, "sessions.search", {"query": query, "limit": 25,
                                              "scope": dict(UI_SCOPE), **extra})

    def test_the_ui_search(self) -> None:
        self.turn("dashboard:alpha", "first alpha", "Hello from the model.")
        self.turn("dashboard:beta", "beta question", "An ALPHA answer, and alpha again.")
        self.turn("cron:job-1", "alpha from cron", "cron reply")
        got = self.search("Alpha")
        self.assertEqual([(h["sessionKey"], h["role"]) for h in got["results"]],
                         [("agent:main:dashboard:beta", "assistant"),
                          ("agent:main:dashboard:alpha", "user")])  # two hits score higher
        hit = got["results"][1]
        alpha = history(self.c, "agent:main:dashboard:alpha")
        user = alpha["messages"][0]
        self.assertEqual(hit["messageId"], user["__openclaw"]["id"])
        self.assertEqual(hit["sessionId"], alpha["sessionId"])
        self.assertEqual(hit["snippet"], "first alpha")
        self.assertIsInstance(hit["timestamp"], int)
        self.assertGreater(got["results"][0]["score"], hit["score"])
        self.assertEqual([s["key"] for s in got["sessions"]],
                         ["agent:main:dashboard:beta", "agent:main:dashboard:alpha"])
        self.assertEqual(got["sessions"][1]["sessionId"], alpha["sessionId"])
        # every term must occur; the cron session shows once the scope lets it in
        self.assertEqual(self.search("alpha missing")["results"], [])
        wide = ok(self.c, "sessions.search", {"query": "alpha cron"})
        self.assertEqual([h["sessionKey"] for h in wide["results"]], ["agent:main:cron:job-1"])
        keys = ok(self.c, "sessions.search", {"query": "alpha",
                                              "sessionKeys": ["agent:main:dashboard:alpha"]})
        self.assertEqual(len(keys["results"]), 1)

    def test_like_wildcards_are_literal_and_limit_holds(self) -> None:
        for i in range(4):
            self.turn("main", f"item {i} 100% done_ok", "noted")
        self.turn("main", "item 9 1000 doneXok", "noted")
        got = ok(self.c, "sessions.search", {"query": "100% done_ok", "limit": 2})
        self.assertEqual(len(got["results"]), 2)
        self.assertTrue(all("100% done_ok" in h["snippet"] for h in got["results"]))
        self.assertEqual(ok(self.c, "sessions.search", {"query": "%"})["results"][0]["snippet"],
                         "item 3 100% done_ok")  # ties: the newest first

    def test_fresh_and_bad_input(self) -> None:
        self.assertEqual(self.search("anything"), {"results": [], "sessions": []})
        for bad in ({}, {"query": ""}, {"query": "x", "limit": 26}, {"query": "x" * 4097},
                    {"query": "x", "scope": {"nope": 1}}, {"query": "x", "extra": 1},
                    {"query": 5}):
            res = call(self.c, "sessions.search", bad)
            self.assertEqual(res["error"]["code"], "INVALID_REQUEST", bad)

    def test_snippet_and_score(self) -> None:
        text = "lorem " * 60 + "needle" + " ipsum" * 60
        cut = snippet(text, ["needle"])
        self.assertIn("needle", cut)
        self.assertTrue(cut.startswith("…") and cut.endswith("…"))
        self.assertLessEqual(len(cut), SNIPPET_MAX + 2)
        self.assertEqual(score("no match here", ["needle"]), 0.0)
        self.assertGreater(score("needle", ["needle"]), score(text, ["needle"]))
