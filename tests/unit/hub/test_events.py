"""Broadcast events: per-socket seq, tick, health, presence, slow consumers, keepalive and
shutdown (reference §7.1, §7.2, §10)."""

from __future__ import annotations

from typing import Any

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from tests.support.helpers import Closed, WSClient, hello, make_gateway

READ = ["operator.read"]
ADMIN = ["operator.admin"]


def answer_pings(client: WSClient, answered: dict[int, int]) -> None:
    client.flush()
    key = id(client)
    while answered.get(key, 0) < client.pings and not client.lost:
        answered[key] = answered.get(key, 0) + 1
        client.send_raw(b"", opcode=10)  # pong


def run(clock: MemoryReactorClock, seconds: float, *clients: WSClient,
        step: float = 1.0) -> None:
    """Advance in small steps (so the lag probe stays calm), answering pings as a real client
    library would."""
    answered: dict[int, int] = {}
    for _ in range(round(seconds / step)):
        clock.advance(step)
        for client in clients:
            answer_pings(client, answered)


def summary(frames: list[Any]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for f in frames:
        if isinstance(f, Closed):
            out.append(("closed", f.code, f.reason))
        elif f.get("type") == "event":
            out.append(("event", f["event"], f.get("seq")))
        else:
            out.append(("res", f["id"], f["ok"]))
    return out


class Sequencing(SynchronousTestCase):
    def setUp(self) -> None:
        self.gw, self.clock = make_gateway()
        self.reader = hello(self.gw, scopes=READ)
        self.probe = hello(self.gw, scopes=[])  # probe mode: no scopes
        self.admin = hello(self.gw, scopes=ADMIN)

    def test_presence_only_to_read_tick_to_all_with_per_socket_seq(self) -> None:
        rid = self.admin.request("system-event", {"text": "hello system event"})
        self.assertEqual(summary(self.admin.pop()),
                         [("event", "presence", 1), ("res", rid, True)])
        self.assertEqual(summary(self.reader.pop()), [("event", "presence", 1)])
        self.assertEqual(self.probe.pop(), [])

        run(self.clock, 30, self.reader, self.probe, self.admin)
        self.assertEqual(summary(self.reader.pop()), [("event", "tick", 2)])
        self.assertEqual(summary(self.probe.pop()), [("event", "tick", 1)])
        self.assertEqual(summary(self.admin.pop()), [("event", "tick", 2)])

        # at 60 s the health refresh joins the tick; both go to every socket
        run(self.clock, 30, self.reader, self.probe, self.admin)
        reader, probe = summary(self.reader.pop()), summary(self.probe.pop())
        self.assertEqual(sorted(e[1] for e in reader), ["health", "tick"])
        self.assertEqual([e[2] for e in reader], [3, 4])
        self.assertEqual(sorted(e[1] for e in probe), ["health", "tick"])
        self.assertEqual([e[2] for e in probe], [2, 3])

    def test_responses_and_challenge_carry_no_seq(self) -> None:
        rid = self.reader.request("health", {})
        res = self.reader.response(rid)
        self.assertNotIn("seq", res)
        fresh = WSClient(self.gw)
        self.assertNotIn("seq", fresh.challenge())
        fresh.connect(scopes=READ)
        run(self.clock, 30, fresh)
        ticks = fresh.events("tick")
        self.assertEqual([t["seq"] for t in ticks], [1])  # starts at 1 after hello


class Tick(SynchronousTestCase):
    def test_tick_every_30_seconds(self) -> None:
        gw, clock = make_gateway()
        client = hello(gw, scopes=READ)
        run(clock, 29, client)
        self.assertEqual(client.events("tick"), [])
        run(clock, 1, client)
        ticks = client.events("tick")
        self.assertEqual(len(ticks), 1)
        self.assertEqual(ticks[0]["payload"], {"ts": gw.now_ms()})
        self.assertNotIn("stateVersion", ticks[0])
        run(clock, 60, client)
        self.assertEqual(len(client.events("tick")), 3)
        seqs = [f["seq"] for f in client.events()]  # ticks and the 60 s health share the seq
        self.assertEqual(seqs, list(range(1, len(seqs) + 1)))


class HealthEvent(SynchronousTestCase):
    def test_health_every_60_seconds_with_bumped_state_version(self) -> None:
        gw, clock = make_gateway()
        client = WSClient(gw)
        hello_ok = client.connect(scopes=READ)
        assert hello_ok is not None
        before = hello_ok["payload"]["snapshot"]["stateVersion"]
        client.pop()
        run(clock, 59, client)
        self.assertEqual(client.events("health"), [])
        run(clock, 1, client)
        events = client.events("health")
        self.assertEqual(len(events), 1)
        event = events[0]
        self.assertEqual(event["stateVersion"],
                         {"presence": before["presence"], "health": before["health"] + 1})
        self.assertEqual(event["payload"]["ok"], True)
        self.assertEqual(event["payload"]["ts"], gw.now_ms())
        self.assertFalse(event["payload"]["eventLoop"]["degraded"])
        run(clock, 60, client)
        events = client.events("health")
        self.assertEqual([e["stateVersion"]["health"] for e in events],
                         [before["health"] + 1, before["health"] + 2])

    def test_health_event_reaches_probe_sockets(self) -> None:
        gw, clock = make_gateway()
        probe = hello(gw, scopes=[])
        run(clock, 60, probe)
        self.assertEqual(len(probe.events("health")), 1)


class SystemEventPresence(SynchronousTestCase):
    def test_presence_broadcast_before_response(self) -> None:
        gw, clock = make_gateway()
        admin = hello(gw, scopes=ADMIN)
        version = gw.presence.version
        rid = admin.request("system-event", {"text": "hello system event"})
        frames = admin.pop()
        self.assertEqual(summary(frames), [("event", "presence", 1), ("res", rid, True)])
        presence, res = frames
        self.assertEqual(res["payload"], {"ok": True})
        self.assertEqual(presence["stateVersion"]["presence"], version + 1)
        self.assertEqual(presence["stateVersion"]["health"], gw.health.version)
        entries = presence["payload"]["presence"]
        self.assertEqual(entries[0]["mode"], "gateway")
        self.assertEqual(entries[0]["reason"], "self")
        self.assertEqual(entries[-1], {"text": "hello system event", "ts": gw.now_ms()})

        rid = admin.request("system-event", {"text": "second"})
        presence = admin.pop()[0]
        self.assertEqual(presence["seq"], 2)
        self.assertEqual(presence["stateVersion"]["presence"], version + 2)
        self.assertEqual([e.get("text") for e in presence["payload"]["presence"][1:]],
                         ["hello system event", "second"])


class SlowConsumer(SynchronousTestCase):
    def setUp(self) -> None:
        self.gw, self.clock = make_gateway()
        self.slow = hello(self.gw, scopes=READ)
        self.admin = hello(self.gw, scopes=ADMIN)

    def make_slow(self) -> None:
        self.gw.max_buffered_bytes = 1024
        self.slow.proto.buffered = lambda: 10**9  # type: ignore[method-assign]

    def make_fast(self) -> None:
        self.gw.max_buffered_bytes = 50 * 1024 * 1024
        del self.slow.proto.buffered  # back to the class method

    def test_droppable_presence_skipped_but_consumes_seq(self) -> None:
        self.make_slow()
        self.admin.request("system-event", {"text": "dropped for the slow one"})
        self.assertEqual(self.slow.pop(), [])
        self.assertIsNone(self.slow.closed())
        self.assertEqual(self.slow.proto.dropped_events, 1)
        self.make_fast()
        run(self.clock, 30, self.slow, self.admin)
        frames = self.slow.pop()
        self.assertEqual(summary(frames), [("event", "tick", 2)])  # gap: seq 1 was dropped
        self.assertEqual(summary(self.admin.pop())[-1], ("event", "tick", 2))

    def test_non_droppable_tick_closes_1008(self) -> None:
        self.make_slow()
        run(self.clock, 30, self.admin)
        self.slow.flush()
        closed = self.slow.closed()
        self.assertIsNotNone(closed)
        self.assertEqual((closed.code, closed.reason), (1008, "slow consumer"))
        self.assertEqual(self.slow.events("tick"), [])
        self.assertEqual(summary(self.admin.pop()), [("event", "tick", 1)])
        # the close grace then drops the TCP connection
        run(self.clock, 1.5, self.admin, step=0.5)
        self.slow.flush()
        self.assertTrue(self.slow.transport.disconnecting)
        self.assertNotIn(self.slow.proto.conn_id, self.gw.conns)

    def test_direct_response_to_slow_socket_closes_1008(self) -> None:
        self.make_slow()
        rid = self.slow.request("health", {})
        self.assertIsNone(self.slow.response(rid))
        closed = self.slow.closed()
        self.assertEqual((closed.code, closed.reason), (1008, "slow consumer"))


class Keepalive(SynchronousTestCase):
    def test_ping_after_25s_and_abort_without_pong(self) -> None:
        gw, clock = make_gateway()
        client = hello(gw, scopes=READ)
        clock.advance(24)
        client.flush()
        self.assertEqual(client.pings, 0)
        clock.advance(1)
        client.flush()
        self.assertEqual(client.pings, 1)
        self.assertFalse(client.transport.disconnecting)
        clock.advance(24)
        client.flush()
        self.assertFalse(client.transport.disconnecting)
        clock.advance(1)
        client.flush()
        self.assertTrue(client.transport.disconnecting)
        self.assertIsNone(client.closed())  # terminated: no close frame (client sees 1006)
        self.assertNotIn(client.proto.conn_id, gw.conns)

    def test_pong_keeps_connection(self) -> None:
        gw, clock = make_gateway()
        client = hello(gw, scopes=READ)
        run(clock, 200, client)
        self.assertFalse(client.transport.disconnecting)
        self.assertEqual(client.pings, 8)
        self.assertIn(client.proto.conn_id, gw.conns)


class Shutdown(SynchronousTestCase):
    def test_shutdown_event_then_1012(self) -> None:
        gw, clock = make_gateway()
        client = hello(gw, scopes=READ)
        probe = hello(gw, scopes=[])
        gw.stopService()
        for c in (client, probe):
            frames = c.pop()
            self.assertEqual(summary(frames), [("event", "shutdown", 1),
                                               ("closed", 1012, "service restart")], c)
            self.assertEqual(frames[0]["payload"], {"reason": "gateway stopping"})
            self.assertNotIn("stateVersion", frames[0])

    def test_stop_fires_within_grace_when_client_never_answers(self) -> None:
        gw, clock = make_gateway()
        client = hello(gw, scopes=READ)
        d = gw.stopService()
        self.assertNoResult(d)
        # never flush the client: its transport never reports connectionLost
        for _ in range(41):
            clock.advance(0.05)
        self.assertIsNone(self.successResultOf(d))
        self.assertEqual(gw.conns, {})
        self.assertTrue(client.transport.disconnecting)

    def test_stop_fires_early_when_client_answers_close(self) -> None:
        gw, clock = make_gateway()
        client = hello(gw, scopes=READ)
        d = gw.stopService()
        self.assertEqual(client.closed().code, 1012)
        client.close_from_client(1012)
        clock.advance(0.05)
        self.assertIsNone(self.successResultOf(d))
        self.assertTrue(client.lost)

    def test_no_ticks_after_stop(self) -> None:
        gw, clock = make_gateway()
        client = hello(gw, scopes=READ)
        gw.stopService()
        client.pop()
        run(clock, 90, client)
        self.assertEqual(client.events("tick"), [])
        self.assertEqual(client.events("health"), [])
