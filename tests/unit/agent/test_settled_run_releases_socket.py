"""A settled run keeps no socket alive (issue #21 finding 9): runs are remembered for 300 s
after they end (agent.wait), and each held its caller's connection — 1,000 turns from clients
that had all closed kept 1,000 protocols and their buffers."""

from __future__ import annotations

import gc

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.protocol.websocket import GatewayProtocol
from tests.support.helpers import hello, make_app, ok


class SettledRunReleasesSocket(SynchronousTestCase):
    def test_closed_client_not_retained_by_its_settled_runs(self) -> None:
        app, clock = make_app()
        client = hello(app.hub, scopes=["operator.write", "operator.read"])
        ok(client, "chat.send", {"sessionKey": "main", "message": "hi", "idempotencyKey": "k1"})
        for _ in range(400):
            clock.advance(0.01)
        runs = list(app.runtime.runs.values())
        self.assertEqual([r.state for r in runs], ["done"])
        self.assertIsNone(runs[0].origin)
        proto_id = id(client.proto)
        client.close_from_client(1000)
        client.flush()
        clock.advance(2)
        client.flush()
        del client
        gc.collect()
        self.assertFalse(any(id(o) == proto_id for o in gc.get_objects()
                             if isinstance(o, GatewayProtocol)))
        self.assertEqual(len(app.runtime.runs), 1)  # still there for agent.wait


class SettledRunsBounded(SynchronousTestCase):
    """Settled runs are kept for agent.wait, but never more than MAX_SETTLED_RUNS of them:
    each holds its whole reply, and a client can finish turns as fast as the model answers."""

    def test_oldest_settled_runs_forgotten_beyond_the_cap(self) -> None:
        from openclaw_tw.agent import settled

        self.patch(settled, "MAX_SETTLED_RUNS", 3)
        app, clock = make_app()
        client = hello(app.hub, scopes=["operator.write", "operator.read"])
        for i in range(5):
            ok(client, "chat.send", {"sessionKey": f"s{i}", "message": "hi",
                                     "idempotencyKey": f"k{i}"})
            for _ in range(400):
                clock.advance(0.01)
        self.assertEqual(sorted(app.runtime.runs), ["k2", "k3", "k4"])
        self.assertTrue(all(r.state == "done" for r in app.runtime.runs.values()))
        long_timers = [c for c in clock.getDelayedCalls()
                       if c.getTime() - clock.seconds() > 200]
        self.assertEqual(len(long_timers), 3, "the evicted runs' forget timers are cancelled")
        newest = ok(client, "agent.wait", {"runId": "k4", "timeoutMs": 1000})
        self.assertEqual(newest["status"], "ok")
        evicted = client.request("agent.wait", {"runId": "k0", "timeoutMs": 500})
        clock.advance(0.501)
        self.assertEqual(client.response(evicted)["payload"], {"runId": "k0", "status": "timeout"})
        clock.advance(300)
        self.assertEqual(app.runtime.runs, {})
