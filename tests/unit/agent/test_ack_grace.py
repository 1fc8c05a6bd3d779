"""Interactive UIs see a run end no sooner than ACK_GRACE_S after their chat.send was acked.

The real TUI (and UIs built like it) settles its pending send when the run's terminal event
arrives, then re-arms it when its ``chat.send`` call returns; if both frames come in one socket
read, it stays "agent is busy" for good. A loopback model can finish within milliseconds of
the ack, so the runtime holds the terminal events of a run started by a ``ui``/``webchat``
client until the grace has passed; one-shot clients are never held.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.agent.runtime import ACK_GRACE_S
from tests.support.agent import RW, drain, labels, send
from tests.support.devices import Device
from tests.support.helpers import WSClient, make_app


class AckGrace(SynchronousTestCase):
    def setUp(self) -> None:
        self.app, self.clock = make_app()
        self.addCleanup(self.app.runtime.stopService)

    def finished_after(self, client_id: str, mode: str) -> float:
        """Clock seconds from the ack until the run's final event, for this kind of client."""
        c = WSClient(self.app.hub)
        hello_ok = Device().connect(c, scopes=RW, client_id=client_id, mode=mode)
        assert hello_ok is not None and hello_ok["ok"], hello_ok  # paired silently (loopback)
        ack = c.response(send(c, "main", "count to 3", "k1"))
        assert ack is not None and ack["ok"], ack
        start = self.clock.seconds()
        for _ in range(200):
            if "chat:final" in labels(c, "k1"):
                return self.clock.seconds() - start
            drain(self.clock, 1)
        self.fail("the run never ended")

    def test_the_tui_sees_the_final_only_after_the_grace(self) -> None:
        self.assertEqual(ACK_GRACE_S, 0.25)
        elapsed = self.finished_after("openclaw-tui", "ui")
        self.assertGreaterEqual(elapsed, 0.245)  # the offline reply alone takes ~15 ms
        self.assertLess(elapsed, 0.3)

    def test_one_shot_clients_are_not_held(self) -> None:
        self.assertLess(self.finished_after("cli", "cli"), 0.1)
