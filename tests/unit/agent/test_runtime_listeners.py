"""The runtime's delta listeners and per-turn system prompt (used by the HTTP API's SSE):
listeners see every text delta of their run and nothing after it settles; a failing listener
does not disturb the run; ``system_prompt`` reaches the model ahead of the transcript."""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from tests.support.helpers import make_app, resolved


class Listeners(SynchronousTestCase):
    def setUp(self) -> None:
        self.app, self.clock = make_app()
        self.gw = self.app.hub
        self.runtime = self.app.runtime

    def run_turn(self, message: str, **kw: Any) -> Any:
        row = resolved(self.app.sessions.ensure("agent:main:listeners"))
        run = self.successResultOf(self.runtime.accept(row, message, f"r-{message}", "agent",
                                                       None, **kw))
        for _ in range(200):
            if run.outcome is not None:
                break
            self.clock.advance(0.005)
        return run

    def test_listeners_get_every_delta(self) -> None:
        seen: list[str] = []
        run = self.run_turn("count to 20", listeners=[seen.append])
        self.assertEqual(run.outcome.status, "ok")
        self.assertGreater(len(seen), 2)
        self.assertEqual("".join(seen), run.outcome.text)
        self.assertEqual(run.listeners, [])  # dropped when the run settled

    def test_a_failing_listener_does_not_break_the_run(self) -> None:
        seen: list[str] = []

        def broken(text: str) -> None:
            raise RuntimeError("listener bug")

        run = self.run_turn("count to 9", listeners=[broken, seen.append])
        self.assertEqual(run.outcome.status, "ok")
        self.assertEqual("".join(seen), "1, 2, 3, 4, 5, 6, 7, 8, 9.")
        self.assertTrue(self.flushLoggedErrors(RuntimeError))

    def test_system_prompt_goes_first(self) -> None:
        requests: list[Any] = []
        offline = self.runtime.registry.providers["offline"]

        class Spy:
            id, api = offline.id, offline.api

            def stream(self, request: Any, on_text: Any, on_tool: Any) -> Any:
                requests.append(request)
                return offline.stream(request, on_text, on_tool)

        self.runtime.registry.providers["offline"] = Spy()
        self.run_turn("first")
        self.run_turn("second", system_prompt="Be brief.")
        self.assertEqual(requests[0].messages[0]["role"], "user")
        self.assertEqual(requests[1].messages[0], {"role": "system", "content": "Be brief."})
        self.assertEqual([m["content"] for m in requests[1].messages[1:]
                          if m["role"] == "user"], ["first", "second"])
        # the prompt is the turn's own: it is not stored in the transcript
        entries = self.successResultOf(self.app.sessions.history("agent:main:listeners", 10))
        self.assertNotIn("Be brief.", str([e.body for e in entries]))
