"""Request admission (busy) and the per-IP budget of unauthenticated sockets (reference §3,
§4.5 step 1, §10)."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.app import Components
from openclaw_tw.tap import build_site
from tests.support.helpers import WSClient, hello, make_app, make_gateway
from tests.support.tmp import fresh_dir

BUSY = "The server is busy. Please try again in a moment."
UPGRADE = (b"GET / HTTP/1.1\r\nHost: 127.0.0.1:18789\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           b"Sec-WebSocket-Version: 13\r\n\r\n")


def upgrade_through_root(app: Components, ip: str = "127.0.0.1",
                         forwarded_for: str | None = None) -> tuple[str, bytes]:
    """A WebSocket upgrade through the real Site and GatewayRoot: (status line, raw bytes)."""
    site = build_site(app)
    transport = StringTransport(peerAddress=IPv4Address("TCP", ip, 51000),
                                hostAddress=IPv4Address("TCP", "127.0.0.1", 18789))
    proto = site.buildProtocol(transport.getPeer())
    transport.protocol = proto  # type: ignore[attr-defined]  # TCP transports have it
    proto.makeConnection(transport)
    request = UPGRADE
    if forwarded_for is not None:
        request = request[:-2] + b"X-Forwarded-For: " + forwarded_for.encode() + b"\r\n\r\n"
    proto.dataReceived(request)
    raw = transport.value()
    return raw[: raw.index(b"\r\n")].decode(), raw


class Overload(SynchronousTestCase):
    def setUp(self) -> None:
        self.gw, self.clock = make_gateway()
        self.pending: list[tuple[Deferred[Any], Any, tuple[Any, ...]]] = []

        def run_later(fn: Any, *args: Any) -> Deferred[Any]:
            d: Deferred[Any] = Deferred()
            self.pending.append((d, fn, args))
            return d

        self.gw.run_blocking = run_later  # logs.tail now stays in flight until we finish it

    def finish_pending(self) -> None:
        while self.pending:
            d, fn, args = self.pending.pop(0)
            d.callback(fn(*args))

    def assert_busy(self, res: dict[str, Any] | None) -> None:
        assert res is not None
        self.assertFalse(res["ok"])
        error = res["error"]
        self.assertEqual((error["code"], error["message"], error["retryable"]),
                         ("UNAVAILABLE", BUSY, True))
        self.assertIsInstance(error["retryAfterMs"], int)
        self.assertGreater(error["retryAfterMs"], 0)

    def test_zero_capacity_refuses_every_request(self) -> None:
        self.gw.max_inflight = 0
        client = hello(self.gw, scopes=["operator.read"])
        self.assert_busy(client.response(client.request("health", {})))
        self.assert_busy(client.response(client.request("status", {})))
        self.assertIsNone(client.closed())  # busy is an answer, not a disconnect

    def test_bystander_served_once_inflight_drops(self) -> None:
        self.gw.max_inflight = 1
        busy_one = hello(self.gw, scopes=["operator.read"])
        bystander = hello(self.gw, scopes=["operator.read"])
        slow_id = busy_one.request("logs.tail", {"limit": 1})
        self.assertIsNone(busy_one.response(slow_id))
        self.assertEqual(self.gw.inflight, 1)

        self.assert_busy(bystander.response(bystander.request("health", {})))
        self.assert_busy(busy_one.response(busy_one.request("health", {})))

        self.finish_pending()
        self.assertEqual(self.gw.inflight, 0)
        slow = busy_one.response(slow_id)
        assert slow is not None
        self.assertTrue(slow["ok"], slow)
        res = bystander.response(bystander.request("health", {}))
        assert res is not None
        self.assertTrue(res["ok"], res)

    def test_filled_inflight_counter(self) -> None:
        client = hello(self.gw, scopes=["operator.read"])
        self.gw.inflight = self.gw.max_inflight
        self.assert_busy(client.response(client.request("health", {})))
        self.gw.inflight = 0
        res = client.response(client.request("health", {}))
        assert res is not None
        self.assertTrue(res["ok"])

    def test_failed_async_request_releases_its_slot(self) -> None:
        self.gw.max_inflight = 1
        client = hello(self.gw, scopes=["operator.read"])
        rid = client.request("logs.tail", {})
        d, _, _ = self.pending.pop()
        d.errback(Failure(RuntimeError("disk on fire")))
        res = client.response(rid)
        assert res is not None
        self.assertEqual(res["error"]["code"], "UNAVAILABLE")
        self.assertEqual(self.gw.inflight, 0)
        self.flushLoggedErrors(RuntimeError)


class PreauthBudget(SynchronousTestCase):
    def setUp(self) -> None:
        self.app, self.clock = make_app()
        self.gw = self.app.hub

    def test_32_unauthenticated_fine_33rd_upgrade_gets_503(self) -> None:
        clients = [WSClient(self.gw) for _ in range(32)]
        for client in clients:
            self.assertIn("101", client.status_line)
            self.assertEqual(len(client.events("connect.challenge")), 1)
        self.assertEqual(self.gw.preauth_count("127.0.0.1"), 32)

        status, raw = upgrade_through_root(self.app)
        self.assertEqual(status, "HTTP/1.1 503 Service Unavailable")
        self.assertTrue(raw.endswith(b"\r\n\r\nToo many unauthenticated sockets"), raw)
        self.assertEqual(self.gw.preauth_count("127.0.0.1"), 32)

        # the budget is per IP
        status, _ = upgrade_through_root(self.app, ip="127.0.0.2")
        self.assertEqual(status, "HTTP/1.1 101 Switching Protocols")
        self.assertEqual(self.gw.preauth_count("127.0.0.2"), 1)

    def test_upgrade_through_root_counts_and_answers_challenge(self) -> None:
        status, raw = upgrade_through_root(self.app)
        self.assertEqual(status, "HTTP/1.1 101 Switching Protocols")
        self.assertIn(b'"event":"connect.challenge"', raw)
        self.assertEqual(self.gw.preauth_count("127.0.0.1"), 1)

    def test_hello_releases_the_budget(self) -> None:
        waiting = [WSClient(self.gw) for _ in range(32)]
        self.assertEqual(self.gw.preauth_count("127.0.0.1"), 32)
        res = waiting[0].connect(scopes=["operator.read"])
        assert res is not None
        self.assertTrue(res["ok"])
        self.assertEqual(self.gw.preauth_count("127.0.0.1"), 31)
        status, _ = upgrade_through_root(self.app)
        self.assertEqual(status, "HTTP/1.1 101 Switching Protocols")
        self.assertEqual(self.gw.preauth_count("127.0.0.1"), 32)

    def test_lost_connection_releases_the_budget(self) -> None:
        a, b = WSClient(self.gw), WSClient(self.gw)
        self.assertEqual(self.gw.preauth_count("127.0.0.1"), 2)
        a.proto.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.gw.preauth_count("127.0.0.1"), 1)
        b.proto.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.gw.preauth_count("127.0.0.1"), 0)

    def test_handshake_timeout_closes_and_releases(self) -> None:
        client = WSClient(self.gw)
        self.clock.advance(14)
        self.assertIsNone(client.closed())
        self.clock.advance(1)
        closed = client.closed()
        self.assertIsNotNone(closed)
        self.assertEqual(closed.code, 1000)
        self.clock.advance(1)  # close grace: the server drops the TCP connection
        client.flush()
        self.assertTrue(client.lost)
        self.assertEqual(self.gw.preauth_count("127.0.0.1"), 0)

    def test_authenticated_close_does_not_go_negative(self) -> None:
        client = hello(self.gw, scopes=["operator.read"])
        other = WSClient(self.gw)
        self.assertEqual(self.gw.preauth_count("127.0.0.1"), 1)
        client.proto.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.gw.preauth_count("127.0.0.1"), 1)
        other.proto.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.gw.preauth_count("127.0.0.1"), 0)


class PreauthBudgetBehindTrustedProxy(SynchronousTestCase):
    """Behind a trusted proxy the client IP is the forwarded one, for counting and checking."""

    def setUp(self) -> None:
        state = fresh_dir(self)
        (state / "openclaw.json").write_text(
            json.dumps({"gateway": {"trustedProxies": ["127.0.0.1"]}}))
        self.app, self.clock = make_app(state_dir=state)
        self.gw = self.app.hub

    def test_forwarded_client_counted_under_its_own_ip(self) -> None:
        status, _ = upgrade_through_root(self.app, forwarded_for="203.0.113.9")
        self.assertEqual(status, "HTTP/1.1 101 Switching Protocols")
        self.assertEqual(self.gw.preauth_count("203.0.113.9"), 1)
        self.assertEqual(self.gw.preauth_count("127.0.0.1"), 0)

    def test_33rd_forwarded_upgrade_gets_503(self) -> None:
        for _ in range(32):
            status, _ = upgrade_through_root(self.app, forwarded_for="203.0.113.9")
            self.assertEqual(status, "HTTP/1.1 101 Switching Protocols")
        self.assertEqual(self.gw.preauth_count("203.0.113.9"), 32)
        status, _ = upgrade_through_root(self.app, forwarded_for="203.0.113.9")
        self.assertEqual(status, "HTTP/1.1 503 Service Unavailable")
        # another client behind the same proxy is not affected
        status, _ = upgrade_through_root(self.app, forwarded_for="203.0.113.10")
        self.assertEqual(status, "HTTP/1.1 101 Switching Protocols")
