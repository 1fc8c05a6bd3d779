"""An idempotency key reused across the sending methods (issue #21 finding 4).

``chat.send`` then ``sessions.send``/``sessions.create`` with the same key was an internal
error, and replaced the first turn's run record.  The real gateway's answers (asked with the
real CLI): the same input again gets the first turn's state; different input is refused with
INVALID_REQUEST, details.reason "chat-request-conflict".
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.methods.reused_keys import CONFLICT_MESSAGE
from tests.support.agent import MAIN, RW, drain, send, send_now, transcript
from tests.support.helpers import call, hello, make_app


class ReusedKeys(SynchronousTestCase):
    def setUp(self) -> None:
        self.app, self.clock = make_app()
        self.addCleanup(self.app.runtime.stopService)
        self.c = hello(self.app.hub, scopes=RW)

    def sessions_send(self, message: str, key: str = MAIN, idem: str = "k1") -> dict[str, Any]:
        return call(self.c, "sessions.send", {"key": key, "message": message,
                                               "idempotencyKey": idem})

    def assert_conflict(self, res: dict[str, Any]) -> None:
        self.assertFalse(res["ok"], res)
        self.assertEqual(res["error"]["code"], "INVALID_REQUEST")
        self.assertEqual(res["error"]["message"], CONFLICT_MESSAGE)
        self.assertEqual(res["error"]["details"], {"reason": "chat-request-conflict"})

    def test_key_reused_by_sessions_send_is_not_an_internal_error(self) -> None:
        send(self.c, MAIN, "hi", "k1")
        first_run = self.app.runtime.runs["k1"]
        # while the chat.send turn runs: the same input is that turn, in flight
        same = self.sessions_send("hi")
        self.assertEqual(same["payload"], {"runId": "k1", "status": "in_flight"})
        self.assert_conflict(self.sessions_send("something else"))
        self.assert_conflict(self.sessions_send("hi", key="agent:main:other"))
        self.assertIs(self.app.runtime.runs["k1"], first_run)  # not replaced
        drain(self.clock)
        done = self.sessions_send("hi")
        self.assertEqual(done["payload"], {"runId": "k1", "status": "ok"})
        self.assertEqual(len(transcript(self.app)), 2)  # one turn: user + reply
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_key_reused_by_sessions_create_is_not_an_internal_error(self) -> None:
        send(self.c, MAIN, "hi", "k1")
        drain(self.clock)
        res = call(self.c, "sessions.create", {"key": "fresh", "message": "other input",
                                                "idempotencyKey": "k1"})
        self.assert_conflict(res)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_chat_send_after_sessions_send_with_the_key(self) -> None:
        self.assertEqual(self.sessions_send("hi")["payload"]["status"], "started")
        self.assertEqual(send_now(self.c, MAIN, "hi", "k1")["payload"],
                         {"runId": "k1", "status": "in_flight"})
        self.assert_conflict(send_now(self.c, MAIN, "changed", "k1"))
        drain(self.clock)
        self.assertEqual(send_now(self.c, MAIN, "hi", "k1")["payload"],
                         {"runId": "k1", "status": "ok"})
        # the refused and the replayed requests left no in-flight entry behind
        entry = self.app.dedupe.get("chat:k1")
        self.assertTrue(entry is None or not entry.active)

    def test_chat_send_twice_with_different_input_is_refused(self) -> None:
        send(self.c, MAIN, "hi", "k1")
        self.assert_conflict(send_now(self.c, MAIN, "not hi", "k1"))
        drain(self.clock)
        self.assert_conflict(send_now(self.c, MAIN, "not hi", "k1"))
        self.assertEqual(send_now(self.c, MAIN, "hi", "k1")["payload"],
                         {"runId": "k1", "status": "ok"})
