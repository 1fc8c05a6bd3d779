"""Which session an ``agent`` turn runs in, as the real gateway (2026.9.6) chooses it, checked
live: ``openclaw agent --session-id X`` sends ``sessionId: X`` with ``sessionKey:
agent:main:explicit:X`` (the CLI's own store has no row of that id), and the row's
``sessionId`` is then X; a session id alone names the row that has it, else
``agent:<agent>:explicit:<id>`` (the key lowercased, the id as sent); a key with another id
gives that row the requested id (a new transcript); no target at all files the turn under
``agent:main:explicit:<run id>`` with the run id as the session id."""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.support.agent import MAIN, RW, drain, responses
from tests.support.helpers import hello, make_app, ok, stored_row


class AgentSessionId(SynchronousTestCase):
    def setUp(self) -> None:
        self.app, self.clock = make_app()
        self.addCleanup(self.app.runtime.stopService)
        self.c = hello(self.app.hub, scopes=RW)

    def turn(self, idem: str, **params: Any) -> tuple[str, str]:
        """Run one turn: (the accepted sessionKey, the final agentMeta.sessionId)."""
        rid = self.c.request("agent", {"message": "hi", "idempotencyKey": idem, **params})
        drain(self.clock)
        accepted, final = responses(self.c, rid)
        self.assertTrue(final["ok"], final)
        meta = final["payload"]["result"]["meta"]["agentMeta"]
        self.assertEqual(meta["sessionFile"], accepted["payload"]["sessionKey"])
        return accepted["payload"]["sessionKey"], meta["sessionId"]

    def history(self, key: str) -> list[str]:
        page = ok(self.c, "chat.history", {"sessionKey": key})
        return [m["role"] for m in page["messages"]]

    def test_the_cli_shape_keeps_the_id(self) -> None:
        key = "agent:main:explicit:sid-one"
        for idem in ("r1", "r2"):
            self.assertEqual(self.turn(idem, sessionId="sid-one", sessionKey=key),
                             (key, "sid-one"))
        row = stored_row(self.app, key)
        assert row is not None
        self.assertEqual(row.session_id, "sid-one")
        self.assertEqual(self.history(key), ["user", "assistant"] * 2)
        listed = ok(self.c, "sessions.list", {})["sessions"]
        self.assertEqual([(r["key"], r["sessionId"]) for r in listed], [(key, "sid-one")])

    def test_an_id_alone_without_a_row_is_explicit(self) -> None:
        self.assertEqual(self.turn("r1", sessionId="only-id"),
                         ("agent:main:explicit:only-id", "only-id"))
        self.assertEqual(self.turn("r2", sessionId="A b"), ("agent:main:explicit:a b", "A b"))
        # found again by its id: the same row
        self.assertEqual(self.turn("r3", sessionId="A b"), ("agent:main:explicit:a b", "A b"))

    def test_an_id_alone_names_the_row_that_has_it(self) -> None:
        key, main_id = self.turn("r1", sessionKey="main")
        self.assertEqual(key, MAIN)
        self.assertEqual(self.turn("r2", sessionId=main_id), (MAIN, main_id))
        self.assertEqual(self.history(MAIN), ["user", "assistant"] * 2)

    def test_a_key_with_another_id_starts_that_session_there(self) -> None:
        _, old = self.turn("r1", sessionKey="main")
        self.assertNotEqual(old, "swap-id")
        self.assertEqual(self.turn("r2", sessionKey="main", sessionId="swap-id"),
                         (MAIN, "swap-id"))
        row = stored_row(self.app, MAIN)
        assert row is not None
        self.assertEqual(row.session_id, "swap-id")
        self.assertEqual(self.history(MAIN), ["user", "assistant"])

    def test_no_target_is_a_session_of_its_own(self) -> None:
        self.assertEqual(self.turn("Run-1"), ("agent:main:explicit:run-1", "Run-1"))
        self.assertEqual(self.turn("r2", sessionId="  ", sessionKey=""),
                         ("agent:main:explicit:r2", "r2"))
        self.assertEqual(self.turn("r3", agentId="main"), (MAIN, self.turn_id(MAIN)))

    def turn_id(self, key: str) -> str:
        row = stored_row(self.app, key)
        assert row is not None
        return row.session_id
