"""The global outbound budget (issue #21 finding 9): sockets that do not read cannot hold more
than MAX_TOTAL_BUFFERED_BYTES together; the slowest (largest backlog) are closed first with
1008 "slow consumer", and sockets that keep up are not touched."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.protocol.limits import MAX_TOTAL_BUFFERED_BYTES, OUTBOUND_RELIEF
from openclaw_tw.protocol.outbound import OutboundBudget
from tests.support.helpers import Closed, WSClient, hello, make_gateway

READ = ["operator.read"]


class FakeSocket:
    def __init__(self, name: str, held: int = 0) -> None:
        self.conn_id = name
        self.held = held
        self.closed: tuple[int, str] | None = None

    def buffered(self) -> int:
        return self.held

    def close_slow(self) -> None:
        self.closed = (1008, "slow consumer")


class BudgetAccounting(SynchronousTestCase):
    def test_default_limit(self) -> None:
        self.assertEqual(OutboundBudget().limit, MAX_TOTAL_BUFFERED_BYTES)

    def test_stalled_readers_cannot_hold_n_times_the_socket_cap(self) -> None:
        budget = OutboundBudget(limit=1000)
        socks = [FakeSocket(f"s{i}") for i in range(10)]
        for round_ in range(1, 20):  # every socket falls further behind
            for sock in socks:
                sock.held = 100 * round_ + int(sock.conn_id[1:])
                if sock.closed is None:
                    budget.note(sock, sock.held)
            self.assertLessEqual(budget.total, 1000)
        self.assertGreater(budget.evicted, 0)
        self.assertTrue(all(s.closed in (None, (1008, "slow consumer")) for s in socks))

    def test_largest_backlogs_closed_first_down_to_relief(self) -> None:
        budget = OutboundBudget(limit=1000)
        small, mid, big = FakeSocket("a", 100), FakeSocket("b", 300), FakeSocket("c", 500)
        for sock in (small, mid, big):
            budget.note(sock, sock.held)
        self.assertEqual((budget.total, budget.evicted), (900, 0))
        late = FakeSocket("d", 250)
        budget.note(late, late.held)  # 1150 > 1000: close c (500), then 650 <= 750
        self.assertEqual(big.closed, (1008, "slow consumer"))
        self.assertEqual([s.closed for s in (small, mid, late)], [None, None, None])
        self.assertEqual(budget.total, 650)
        self.assertLessEqual(budget.total, 1000 * OUTBOUND_RELIEF)

    def test_drained_sockets_are_measured_again_before_anyone_is_closed(self) -> None:
        budget = OutboundBudget(limit=1000)
        drained = FakeSocket("a", 900)
        budget.note(drained, 900)
        drained.held = 0  # the kernel took it all; no write since, so the report is stale
        newcomer = FakeSocket("b", 400)
        budget.note(newcomer, 400)  # noted 1300, real 400: nobody is closed
        self.assertEqual((drained.closed, newcomer.closed), (None, None))
        self.assertEqual((budget.total, len(budget)), (400, 1))

    def test_forget_and_refresh(self) -> None:
        budget = OutboundBudget(limit=1000)
        sock = FakeSocket("a", 10)
        budget.note(sock, 10)
        budget.forget(sock)
        budget.forget(sock)  # twice is harmless
        self.assertEqual((budget.total, len(budget)), (0, 0))
        budget.note(sock, 10)
        sock.held = 3
        self.assertEqual(budget.refresh(), 3)


class GatewayBudget(SynchronousTestCase):
    def setUp(self) -> None:
        self.gw, self.clock = make_gateway()

    def stall(self, client: WSClient, held: int) -> None:
        client.proto.buffered = lambda: held  # type: ignore[method-assign]

    def test_slowest_consumers_closed_1008_on_broadcast(self) -> None:
        self.gw.outbound.limit = 10_000
        fast = [hello(self.gw, scopes=READ) for _ in range(3)]
        slow = [hello(self.gw, scopes=READ) for _ in range(4)]
        for n, client in enumerate(slow):
            self.stall(client, 2000 + 1000 * n)  # 2000, 3000, 4000, 5000: 14000 together
        self.gw.broadcast("tick", {"ts": 1})
        closed = {n: c.closed() for n, c in enumerate(slow)}
        # 14000 > 10000: the 5000 and the 4000 go (5000 left <= 7500)
        self.assertEqual([(n, (x.code, x.reason)) for n, x in closed.items()
                          if isinstance(x, Closed)], [(2, (1008, "slow consumer")),
                                                      (3, (1008, "slow consumer"))])
        self.assertLessEqual(self.gw.outbound.total, 10_000)
        for client in fast:
            self.assertIsNone(client.closed())
            self.assertEqual([e["event"] for e in client.events()], ["tick"])

    def test_closed_socket_leaves_the_budget(self) -> None:
        client = hello(self.gw, scopes=READ)
        self.stall(client, 4096)
        self.gw.broadcast("tick", {"ts": 1})
        self.assertEqual(self.gw.outbound.total, 4096)
        client.close_from_client(1000)
        client.flush()
        self.clock.advance(2)
        client.flush()
        self.assertEqual((self.gw.outbound.total, len(self.gw.outbound)), (0, 0))

    def test_keepalive_refreshes_stale_reports(self) -> None:
        client = hello(self.gw, scopes=READ)
        self.stall(client, 4096)
        self.gw.broadcast("tick", {"ts": 1})
        self.stall(client, 0)
        self.clock.advance(25)  # the hub's keepalive timer
        self.assertEqual(self.gw.outbound.total, 0)

    def test_sockets_that_keep_up_cost_no_accounting(self) -> None:
        clients = [hello(self.gw, scopes=READ) for _ in range(5)]
        for _ in range(10):
            self.gw.broadcast("tick", {"ts": 1})
        self.assertEqual((self.gw.outbound.total, len(self.gw.outbound)), (0, 0))
        self.assertTrue(all(len(c.pop()) == 10 for c in clients))


class TrimAfterRelease(SynchronousTestCase):
    def test_large_backlog_gone_hands_memory_back(self) -> None:
        from openclaw_tw.daemon import malloc_trim
        from openclaw_tw.protocol.limits import TRIM_AFTER_RELEASED_BYTES

        trims: list[int] = []
        self.patch(malloc_trim, "trim", lambda: trims.append(1) or True)
        gw, clock = make_gateway()
        clock.advance(2)  # past the start-up trim
        trims.clear()
        client = hello(gw, scopes=READ)
        client.proto.buffered = lambda: TRIM_AFTER_RELEASED_BYTES  # type: ignore[method-assign]
        gw.broadcast("tick", {"ts": 1})
        client.close_from_client(1000)
        client.flush()
        clock.advance(1)
        client.flush()
        self.assertEqual(trims, [1])
        self.assertEqual(gw.outbound.total, 0)
