"""The port's HTTP side is bounded (issue #21 finding 8): a socket holding a partial request
is answered 408 and closed after the header timeout, however it trickles bytes, and one IP
cannot hold more than its budget of sockets with incomplete headers."""

from __future__ import annotations

from typing import Any

import attrs
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.protocol.limits import (
    HTTP_BODY_TIMEOUT_S,
    HTTP_HEADER_TIMEOUT_S,
    MAX_PENDING_HTTP_PER_IP,
)
from openclaw_tw.tap import build_site
from openclaw_tw.web.site import GatewaySite
from tests.support.helpers import make_app

PARTIAL = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
HEALTH = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
UPGRADE = (b"GET / HTTP/1.1\r\nHost: 127.0.0.1:18789\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           b"Sec-WebSocket-Version: 13\r\n\r\n")


class Sock:
    """One in-memory TCP connection to the site."""

    def __init__(self, site: GatewaySite, ip: str = "10.0.0.7") -> None:
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", ip, 50000),
                                         hostAddress=IPv4Address("TCP", "127.0.0.1", 18789))
        self.proto = site.buildProtocol(self.transport.getPeer())
        self.transport.protocol = self.proto  # type: ignore[attr-defined]
        self.proto.makeConnection(self.transport)
        self.lost = False

    def send(self, data: bytes) -> None:
        self.proto.dataReceived(data)

    def closing(self) -> bool:
        if self.transport.disconnecting and not self.lost:
            self.lost = True
            self.proto.connectionLost(Failure(ConnectionDone()))
        return bool(self.transport.disconnecting)

    def status(self) -> str:
        raw = self.transport.value()
        return raw[: raw.index(b"\r\n")].decode() if b"\r\n" in raw else ""


class HeaderTimeout(SynchronousTestCase):
    def setUp(self) -> None:
        self.app, self.clock = make_app()
        self.site = build_site(self.app)

    def test_slowloris_trickle_closed_after_header_timeout(self) -> None:
        sock = Sock(self.site)
        sock.send(PARTIAL)
        elapsed = 0.0
        while elapsed < HTTP_HEADER_TIMEOUT_S - 1:  # a header line every 2 s never completes
            self.clock.advance(2)
            elapsed += 2
            sock.send(b"X-a: b\r\n")
            self.assertFalse(sock.closing(), elapsed)
        self.clock.advance(HTTP_HEADER_TIMEOUT_S - elapsed)
        self.assertTrue(sock.closing())
        self.assertEqual(sock.status(), "HTTP/1.1 408 Request Timeout")
        self.assertEqual(self.site.pending, {})

    def test_silent_socket_closed_without_a_response(self) -> None:
        sock = Sock(self.site)
        self.clock.advance(HTTP_HEADER_TIMEOUT_S)
        self.assertTrue(sock.closing())
        self.assertEqual(sock.transport.value(), b"")
        self.assertEqual(self.site.pending, {})

    def test_complete_request_served_and_keepalive_deadline_restarts(self) -> None:
        sock = Sock(self.site)
        sock.send(HEALTH)
        self.assertEqual(sock.status(), "HTTP/1.1 200 OK")
        self.assertFalse(sock.closing())
        # the keep-alive socket waits for its next request's headers, on a fresh deadline
        self.assertEqual(self.site.pending, {"10.0.0.7": 1})
        self.clock.advance(HTTP_HEADER_TIMEOUT_S - 1)
        sock.transport.clear()
        sock.send(HEALTH)
        self.assertEqual(sock.status(), "HTTP/1.1 200 OK")
        self.clock.advance(HTTP_HEADER_TIMEOUT_S - 1)
        self.assertFalse(sock.closing())
        self.clock.advance(1)
        self.assertTrue(sock.closing())

    def test_pipelined_requests_each_answered(self) -> None:
        sock = Sock(self.site)
        sock.send(HEALTH + HEALTH)
        self.assertEqual(sock.transport.value().count(b"HTTP/1.1 200 OK"), 2)
        self.assertEqual(self.site.pending, {"10.0.0.7": 1})  # waiting for a third
        sock.transport.loseConnection()
        sock.closing()
        self.assertEqual(self.site.pending, {})

    def test_websocket_upgrade_leaves_the_pending_count(self) -> None:
        sock = Sock(self.site, ip="127.0.0.1")
        sock.send(UPGRADE)
        self.assertEqual(sock.status(), "HTTP/1.1 101 Switching Protocols")
        self.assertEqual(self.site.pending, {})
        channel: Any = sock.proto._channel  # type: ignore[attr-defined]
        self.assertIsNone(channel._header_timer)


class PendingBudget(SynchronousTestCase):
    def setUp(self) -> None:
        self.app, self.clock = make_app()
        self.site = build_site(self.app)

    def test_slowloris_sockets_beyond_budget_refused_503(self) -> None:
        held = [Sock(self.site) for _ in range(MAX_PENDING_HTTP_PER_IP)]
        for sock in held:
            sock.send(PARTIAL)
        extra = Sock(self.site)
        self.assertTrue(extra.closing())
        self.assertEqual(extra.status(), "HTTP/1.1 503 Service Unavailable")
        extra.transport.clear()
        extra.send(HEALTH)  # ignored: the socket was refused
        self.assertEqual(extra.transport.value(), b"")
        # another IP is not affected
        other = Sock(self.site, ip="10.0.0.8")
        other.send(HEALTH)
        self.assertEqual(other.status(), "HTTP/1.1 200 OK")
        # one held request completes (and asks to close): its slot is free again; a
        # keep-alive socket would stay counted while it waits for its next request
        held[0].send(b"Connection: close\r\n\r\n")
        self.assertEqual(held[0].status(), "HTTP/1.1 200 OK")
        self.assertTrue(held[0].closing())
        again = Sock(self.site)
        self.assertFalse(again.closing())
        self.assertEqual(self.site.pending["10.0.0.7"], MAX_PENDING_HTTP_PER_IP)
        # the header timeout frees every slot
        self.clock.advance(HTTP_HEADER_TIMEOUT_S)
        for sock in [*held, again, other]:
            self.assertTrue(sock.closing())
        self.assertEqual(self.site.pending, {})

    def test_trusted_proxy_exempt_from_the_budget(self) -> None:
        self.app.hub.settings = attrs.evolve(self.app.hub.settings,
                                             trusted_proxies=("10.0.0.9",))
        socks = [Sock(self.site, ip="10.0.0.9") for _ in range(MAX_PENDING_HTTP_PER_IP + 5)]
        self.assertFalse(any(s.closing() for s in socks))


class BodyTimeout(SynchronousTestCase):
    def setUp(self) -> None:
        self.app, self.clock = make_app()
        self.site = build_site(self.app)

    def test_a_body_that_never_completes_is_answered_408_after_the_body_deadline(self) -> None:
        for framing, first, trickle in (
                (b"Content-Length: 100\r\n", b"{", b" "),
                (b"Transfer-Encoding: chunked\r\n", b"1\r\n{\r\n", b"1\r\n \r\n")):
            sock = Sock(self.site)
            sock.send(b"POST /tools/invoke HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n" + first)
            self.assertEqual(self.site.pending, {})  # headers are complete
            elapsed = 0.0
            while elapsed < HTTP_BODY_TIMEOUT_S - 5:  # a byte every 5 s never completes it
                self.clock.advance(5)
                elapsed += 5
                sock.send(trickle)
                self.assertFalse(sock.closing(), elapsed)
            self.clock.advance(HTTP_BODY_TIMEOUT_S - elapsed)
            self.assertTrue(sock.closing(), framing)
            self.assertEqual(sock.status(), "HTTP/1.1 408 Request Timeout")
            self.assertTrue(sock.transport.value().endswith(b"\r\n\r\nRequest body timeout"))

    def test_a_body_in_time_is_served_and_the_deadline_is_gone(self) -> None:
        sock = Sock(self.site)
        sock.send(b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{")
        self.clock.advance(HTTP_BODY_TIMEOUT_S - 1)
        sock.send(b"}")
        self.assertEqual(sock.status(), "HTTP/1.1 405 Method Not Allowed")
        self.clock.advance(HTTP_BODY_TIMEOUT_S)  # only the keep-alive header deadline left
        self.assertNotIn(b"Request body timeout", sock.transport.value())
