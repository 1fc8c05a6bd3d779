"""The private Twisted attributes the gateway relies on still exist (the Autobahn half is in
tests/unit/test_library_internals.py).

``twisted`` and ``autobahn`` are not pinned, and a few hot paths read their internals: the
direct-send fast path and the outbound-buffer accounting (``protocol/tcpio.py``), the
per-read shortcut past Autobahn's Twisted adapter, the switched-off ``pformat`` of Autobahn's
per-connection debug line, the early-abort checks of HTTP handlers (``Request._disconnected``),
the quiet connection pool of the channel pollers and the descriptors systemd passed (read
before the ``systemd:`` endpoint plugin is looked up). When an upgrade renames one of them the
code would silently take the slow path, mis-count buffers or crash on the first message; this
test makes that upgrade fail loudly in CI instead. The tested version ranges are in README.md.

These build a real TCP server transport over a socketpair (never listening) on the global
reactor, hence this tier.
"""

from __future__ import annotations

import socket

from twisted.internet import reactor, ssl, tcp
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import StringTransport
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.trial import unittest
from twisted.web.client import HTTPConnectionPool
from twisted.web.server import Request
from twisted.web.test.requesthelper import DummyChannel


class TwistedInternals(unittest.TestCase):
    def test_tcp_server_transport_buffers(self) -> None:
        """``send_now`` and ``outbound_buffered`` read these on every delivery."""
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        port = tcp.Port(0, None, reactor=reactor)  # never listens: only names a server
        server = tcp.Server(a, Protocol(), ("127.0.0.1", 1), port, 1, reactor)
        server.stopReading()  # constructed to be inspected, never served
        for name in ("_writeDisconnected", "_tempDataLen", "_tempDataBuffer", "dataBuffer", "offset", "TLS",
                     "socket", "connected", "disconnecting"):
            self.assertTrue(hasattr(server, name), f"tcp.Server lost {name}")
        self.assertIsInstance(server.dataBuffer, bytes)
        self.assertIsInstance(server._tempDataLen, int)
        self.assertIsInstance(server._tempDataBuffer, list)  # shed_backlog replaces it

    def test_tls_protocol_app_send_buffer(self) -> None:
        factory = TLSMemoryBIOFactory(ssl.optionsForClientTLS("gateway.test"), True,
                                      Factory.forProtocol(Protocol))
        tls = factory.buildProtocol(None)
        tls.makeConnection(StringTransport())
        self.assertIsInstance(tls._appSendBuffer, list)

    def test_request_disconnected_flag(self) -> None:
        request = Request(DummyChannel())
        self.assertIs(request._disconnected, False)

    def test_systemd_descriptors_as_read_at_import(self) -> None:
        """``daemon/listen.py`` asks this before looking up the ``systemd:`` plugin."""
        from twisted.internet.endpoints import _SystemdParser

        self.assertIsInstance(_SystemdParser._sddaemon.inheritedDescriptors(), list)

    def test_connection_pool_factory(self) -> None:
        pool = HTTPConnectionPool(reactor, persistent=False)
        self.assertTrue(isinstance(pool._factory, type), pool._factory)
