"""A WebSocket upgrade that arrives in one read goes straight to Autobahn (the one parse of
it, issue #22); one split across reads goes through twisted.web and ``GatewayRoot``.  Both
answer the same: 101 and the challenge, or the hub's refusal (403 / 429 / 503) with the same
status, headers and body."""

from __future__ import annotations

import gc
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.tap import build_site
from openclaw_tw.web.root import GatewayRoot
from openclaw_tw.web.site import is_websocket_upgrade
from tests.support.helpers import make_app
from tests.unit.web.test_slowloris import UPGRADE, Sock

SECURITY = (b"X-Content-Type-Options: nosniff", b"Referrer-Policy: no-referrer",
            b"Permissions-Policy: camera=(), microphone=(self), geolocation=()")


def with_header(line: bytes) -> bytes:
    return UPGRADE[:-2] + line + b"\r\n\r\n"


class Sniff(SynchronousTestCase):
    def test_what_counts_as_a_one_read_upgrade(self) -> None:
        self.assertTrue(is_websocket_upgrade(UPGRADE))
        self.assertTrue(is_websocket_upgrade(UPGRADE.replace(b"Upgrade: websocket",
                                                             b"upgrade:WebSocket ")))
        self.assertTrue(is_websocket_upgrade(UPGRADE + b"\x81\x85frame-bytes"))
        for data in (UPGRADE[:-2],                                  # head not complete
                     UPGRADE.replace(b"GET ", b"POST "),             # another method
                     UPGRADE.replace(b"websocket", b"h2c"),          # another upgrade
                     UPGRADE.replace(b"websocket", b"websocket, x"),
                     with_header(b"Upgrade: h2c"),                   # two Upgrade headers
                     UPGRADE.replace(b"Upgrade: websocket\r\n", b""),
                     with_header(b"X-Big: " + b"a" * 17000)):       # over twisted.web's cap
            self.assertFalse(is_websocket_upgrade(data), data[:80])


class OneReadUpgrade(SynchronousTestCase):
    def setUp(self) -> None:
        self.app, self.clock = make_app()
        self.gw = self.app.hub
        self.site = build_site(self.app)
        self.rendered: list[bytes] = []
        real = GatewayRoot.render

        def spy(root: GatewayRoot, request: Any) -> Any:
            self.rendered.append(request.path)
            return real(root, request)

        self.patch(GatewayRoot, "render", spy)

    def upgrade(self, *reads: bytes, ip: str = "127.0.0.1") -> Sock:
        sock = Sock(self.site, ip=ip)
        for data in reads:
            sock.send(data)
        return sock

    def test_one_read_skips_twisted_web(self) -> None:
        sock = self.upgrade(UPGRADE)
        raw = sock.transport.value()
        self.assertEqual(sock.status(), "HTTP/1.1 101 Switching Protocols")
        self.assertIn(b'"event":"connect.challenge"', raw)
        self.assertEqual(self.rendered, [])  # no twisted.web request was made
        self.assertEqual(self.site.pending, {})  # left the pending-headers count
        self.assertEqual(self.gw.preauth_count("127.0.0.1"), 1)
        self.assertIsNot(sock.transport.protocol, sock.proto)  # type: ignore[attr-defined]
        # The header deadline no longer applies: the socket is the WebSocket's now.
        self.clock.advance(14)
        self.assertFalse(sock.transport.disconnecting)

    def test_an_empty_origin_upgrades_either_way(self) -> None:
        blank = UPGRADE.replace(b"\r\n\r\n", b"\r\nOrigin: \t \r\n\r\n", 1)
        self.assertIn(b"Origin: \t \r\n", blank)
        for reads in ((blank,), (blank[:30], blank[30:])):
            sock = self.upgrade(*reads)
            self.assertEqual(sock.status(), "HTTP/1.1 101 Switching Protocols")
            self.assertIn(b'"event":"connect.challenge"', sock.transport.value())

    def test_split_read_goes_through_the_root(self) -> None:
        sock = self.upgrade(UPGRADE[:30], UPGRADE[30:])
        self.assertEqual(sock.status(), "HTTP/1.1 101 Switching Protocols")
        self.assertIn(b'"event":"connect.challenge"', sock.transport.value())
        self.assertEqual(self.rendered, [b"/"])
        self.assertEqual(self.gw.preauth_count("127.0.0.1"), 1)

    def refusals(self, *extra: bytes, ip: str = "127.0.0.1") -> list[bytes]:
        """The raw answers of a one-read and a split upgrade (same request)."""
        request = with_header(b"\r\n".join(extra)) if extra else UPGRADE
        one = self.upgrade(request, ip=ip)
        split = self.upgrade(request[:20], request[20:], ip=ip)
        return [_without_date(s.transport.value()) for s in (one, split)]

    def assert_refused(self, answers: list[bytes], status: bytes, body: bytes,
                       *headers: bytes) -> None:
        for raw in answers:
            head, _, got = raw.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            self.assertEqual(lines[0], status)
            self.assertEqual(got, body)
            for header in SECURITY + headers + (b"Content-Length: %d" % len(body),):
                self.assertIn(header, lines, raw)
        self.assertEqual(self.gw.preauth_count("127.0.0.1"), 0)

    def test_untrusted_forwarded_headers_403(self) -> None:
        self.assert_refused(
            self.refusals(b"X-Forwarded-For: 203.0.113.5"), b"HTTP/1.1 403 Forbidden",
            b'{"error":{"message":"Proxy client attribution is required. Add the proxy address '
            b'to gateway.trustedProxies or connect directly.",'
            b'"type":"proxy_attribution_required"}}',
            b"Content-Type: application/json; charset=utf-8", b"Cache-Control: no-store")

    def test_over_the_preauth_budget_503(self) -> None:
        self.gw.max_preauth_per_ip = 0
        self.assert_refused(self.refusals(), b"HTTP/1.1 503 Service Unavailable",
                            b"Too many unauthenticated sockets",
                            b"Content-Type: text/plain; charset=utf-8")

    def test_stopping_503(self) -> None:
        self.gw.shutting_down = True
        self.assert_refused(self.refusals(), b"HTTP/1.1 503 Service Unavailable",
                            b"Service Unavailable")

    def test_locked_out_429_with_retry_after(self) -> None:
        for _ in range(10):
            self.gw.auth_limiter.record_failure("203.0.113.9", False)
        self.assertIsNotNone(self.gw.auth_limiter.retry_after_ms("203.0.113.9", False))
        self.assert_refused(self.refusals(ip="203.0.113.9"),
                            b"HTTP/1.1 429 Too Many Requests", b"Too Many Requests",
                            b"Retry-After: 300")

    def test_another_upgrade_is_400_from_the_root(self) -> None:
        sock = self.upgrade(UPGRADE.replace(b"websocket", b"h2c"))
        self.assertEqual(sock.status(), "HTTP/1.1 400 Bad Request")
        self.assertEqual(self.rendered, [b"/"])

    def test_plain_requests_unchanged(self) -> None:
        sock = self.upgrade(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        self.assertEqual(sock.status(), "HTTP/1.1 200 OK")
        self.assertEqual(self.rendered, [b"/health"])


def _without_date(raw: bytes) -> bytes:
    head, sep, body = raw.partition(b"\r\n\r\n")
    keep = [ln for ln in head.split(b"\r\n") if not ln.lower().startswith((b"date:", b"server:"))]
    return b"\r\n".join(keep) + sep + body


class HeldUpgrade(SynchronousTestCase):
    """The 101 waits for ``onOpen`` and leaves with the challenge in one write; when anything
    on the way fails, the 101 is still written the normal way, ahead of everything else."""

    def setUp(self) -> None:
        self.app, self.clock = make_app()
        self.site = build_site(self.app)

    def open(self, *reads: bytes) -> tuple[Sock, list[bytes]]:
        log: list[bytes] = []
        sock = Sock(self.site, ip="127.0.0.1")
        real = sock.transport.write

        def write(data: bytes) -> None:
            log.append(data)
            real(data)

        sock.transport.write = write  # type: ignore[method-assign]
        for data in reads:
            sock.send(data)
        return sock, log

    def test_one_write_carries_the_101_and_the_challenge(self) -> None:
        for reads in ((UPGRADE,), (UPGRADE[:30], UPGRADE[30:])):  # one read, and twisted.web
            sock, log = self.open(*reads)
            self.assertEqual(len(log), 1, log)
            head, _, rest = log[0].partition(b"\r\n\r\n")
            self.assertTrue(head.startswith(b"HTTP/1.1 101 Switching Protocols"))
            self.assertIn(b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", head)
            self.assertEqual(rest[:2], bytes((0x81, len(rest) - 2)))  # one whole text frame
            self.assertIn(b'"event":"connect.challenge"', rest)
            self.assertEqual(sock.transport.value(), log[0])

    def test_a_failing_on_open_still_writes_the_101(self) -> None:
        from openclaw_tw.protocol import websocket

        def broken(*args: Any) -> bytes:
            raise RuntimeError("boom")

        self.patch(websocket.frames, "encode_plain_event", broken)
        sock, log = self.open(UPGRADE)
        self.assertEqual(sock.status(), "HTTP/1.1 101 Switching Protocols")
        self.assertEqual(len(log), 1)
        self.assertTrue(log[0].endswith(b"\r\n\r\n"))  # the 101 alone
        gc.collect()  # the error surfaces from Autobahn's Deferred, as it did before
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_nothing_overtakes_a_held_101(self) -> None:
        """Anything Autobahn writes while the 101 is held (here: a close, from a handler that
        fails the socket) goes after it."""
        from openclaw_tw.protocol.websocket import GatewayProtocol

        def open_then_close(proto: GatewayProtocol) -> None:
            proto.close(1008, "no")

        self.patch(GatewayProtocol, "onOpen", open_then_close)
        sock, log = self.open(UPGRADE)
        raw = sock.transport.value()
        self.assertEqual(sock.status(), "HTTP/1.1 101 Switching Protocols")
        head, _, rest = raw.partition(b"\r\n\r\n")
        self.assertEqual(rest[:1], b"\x88")  # the close frame, after the 101
        self.assertEqual(rest[4:], b"no")

    def test_refusals_are_not_held(self) -> None:
        self.app.hub.shutting_down = True
        sock, log = self.open(UPGRADE)
        self.assertEqual(sock.status(), "HTTP/1.1 503 Service Unavailable")
        self.assertEqual(len(log), 1)
