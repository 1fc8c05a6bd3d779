"""Requests the HTTP fuzz tier (``tests/fuzz/test_http.py``) found answered wrongly on the
wire, each named after what its fix prevents."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.tap import build_site
from tests.support.helpers import make_app
from tests.unit.web.test_slowloris import Sock


class Wire(SynchronousTestCase):
    def setUp(self) -> None:
        self.app, self.clock = make_app()
        self.site = build_site(self.app)

    def send(self, data: bytes, ip: str = "127.0.0.1") -> Sock:
        sock = Sock(self.site, ip=ip)
        sock.send(data)
        return sock

    def test_an_overlong_request_line_or_header_is_answered_not_dropped(self) -> None:
        for data in (b"GET /" + b"a" * 17_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                     b"GET /health HTTP/1.1\r\nX-Big: " + b"b" * 17_000 + b"\r\n\r\n",
                     b"GET /health?q=" + b"q" * 20_000):  # not even a whole line yet
            sock = self.send(data)
            self.assertTrue(sock.closing(), data[:40])
            self.assertEqual(sock.status(), "HTTP/1.1 431 Request Header Fields Too Large")
            self.assertTrue(sock.transport.value().endswith(
                b"\r\n\r\nRequest Header Fields Too Large"))
            self.assertEqual(self.site.pending, {})

    def test_a_head_refused_413_gets_no_body(self) -> None:
        for method, body in ((b"HEAD", b""), (b"POST", b"Payload Too Large")):
            sock = self.send(method + b" /health HTTP/1.1\r\nContent-Length: 20971521\r\n\r\n{")
            self.assertTrue(sock.closing())
            self.assertEqual(sock.status(), "HTTP/1.1 413 Payload Too Large")
            raw = sock.transport.value()
            self.assertIn(b"\r\nContent-Length: 17\r\n", raw)
            self.assertEqual(raw[raw.index(b"\r\n\r\n") + 4:], body, method)
