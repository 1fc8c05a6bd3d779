"""sessions.branches.list (methods/session_branches.py): none on a fresh install, one active
branch after a turn (the real 2026.9.6 answer: leaf entry, the reply as headline, 2 messages,
an ISO timestamp)."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.methods.session_branches import HEADLINE_MAX
from openclaw_tw.timefmt import iso_ms
from tests.support.agent import MAIN, RW, drain, history, install_fake, send
from tests.support.helpers import call, hello, make_app, ok


class SessionBranches(SynchronousTestCase):
    def setUp(self) -> None:
        self.app, self.clock = make_app()
        self.addCleanup(self.app.runtime.stopService)
        self.c = hello(self.app.hub, scopes=RW)

    def branches(self, key: str = MAIN) -> list[dict[str, object]]:
        return ok(self.c, "sessions.branches.list", {"sessionKey": key})["branches"]

    def test_fresh(self) -> None:
        self.assertEqual(self.branches(), [])
        ok(self.c, "sessions.create", {"key": "empty"})
        self.assertEqual(self.branches("agent:main:empty"), [])

    def test_after_a_turn(self) -> None:
        fake = install_fake(self.app)
        send(self.c, "main", "hi", "k1")
        self.clock.advance(0.5)
        fake.calls[0].finish("Hello  from\nthe   model.")
        drain(self.clock)
        messages = history(self.c)["messages"]
        leaf = messages[-1]["__openclaw"]["id"]
        ts = self.app.sessions_db.run_now(lambda c: c.execute(
            "SELECT ts FROM transcript WHERE entry_id=?", (leaf,)).fetchone()[0])
        self.assertEqual(self.branches("main"), [{
            "leafEntryId": leaf, "headline": "Hello from the model.", "messageCount": 2,
            "updatedAt": iso_ms(ts), "active": True}])

    def test_markers_are_not_messages(self) -> None:
        fake = install_fake(self.app)
        send(self.c, "main", "hi", "k1")
        self.clock.advance(0.5)
        ok(self.c, "chat.abort", {"sessionKey": MAIN})
        drain(self.clock)
        self.assertTrue(fake.calls[0].cancelled)
        [branch] = self.branches()
        # the user message, and the run-aborted marker as the leaf (no reply was said)
        self.assertEqual((branch["messageCount"], branch["headline"]), (1, "hi"))
        self.assertEqual(branch["leafEntryId"], history(self.c)["messages"][-1]["__openclaw"]
                         ["id"])

    def test_long_headline(self) -> None:
        send(self.c, "main", "x" * 300, "k1")
        ok(self.c, "chat.abort", {"sessionKey": MAIN})
        drain(self.clock)
        headline = self.branches()[0]["headline"]
        self.assertEqual((len(headline), headline[-1]), (HEADLINE_MAX, "…"))

    def test_params(self) -> None:
        res = call(self.c, "sessions.branches.list", {"key": MAIN})
        self.assertEqual(res["error"]["message"], "invalid sessions.branches.list params: "
                         "must have required property 'sessionKey'")
