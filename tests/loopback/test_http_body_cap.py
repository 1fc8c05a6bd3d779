"""The site refuses request bodies over 20 MB with 413 before buffering them (declared by
Content-Length or counted across chunks), on a real loopback port with a raw TCP client.

The server closes right after the 413; a client still sending then may see a reset instead
of the 413 (no lingering close), so these clients stop writing where the refusal happens."""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.trial import unittest

from openclaw_tw import app as composition
from openclaw_tw import tap
from openclaw_tw.config import settings as config
from openclaw_tw.web.http import MAX_REQUEST_BODY
from tests.support.loopback import close_store, listen_loopback, require_clean_reactor, within


class RawClient(protocol.Protocol):
    def __init__(self) -> None:
        self.data = b""
        self.lost: defer.Deferred[bytes] = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Any) -> None:
        self.lost.callback(self.data)


class BodyCap(unittest.TestCase):
    timeout = 20

    def setUp(self) -> None:
        require_clean_reactor(self)
        state = os.path.abspath(self.mktemp())
        os.makedirs(state)
        settings = config.resolve({"port": "0", "token": "t", "state-dir": state},
                                  env={"HOME": state})
        self.app = composition.build(settings, reactor)
        self.gw = self.app.hub
        self.port = listen_loopback(tap.build_site(self.app))

    async def tearDown(self) -> None:
        await defer.maybeDeferred(self.port.stopListening)
        await defer.gatherResults([conn.lost for conn in self.port.connections])
        close_store(self.app)

    async def exchange(self, head: bytes, body: bytes) -> bytes:
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.port.getHost().port)
        client = RawClient()
        await connectProtocol(endpoint, client)
        client.transport.write(head + body)
        return await within(client.lost, "the server to answer and close")

    async def test_declared_length_over_the_cap(self) -> None:
        head = (b"POST /tools/invoke HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % (MAX_REQUEST_BODY + 1))
        reply = await self.exchange(head, b"")  # refused on the headers alone
        self.assertTrue(reply.startswith(b"HTTP/1.1 413 Payload Too Large\r\n"), reply)
        self.assertIn(b"X-Content-Type-Options: nosniff\r\n", reply)
        self.assertTrue(reply.endswith(b"\r\n\r\nPayload Too Large"))

    async def test_chunked_body_over_the_cap(self) -> None:
        head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")
        piece = b"x" * (1024 * 1024)
        chunk = b"%x\r\n%s\r\n" % (len(piece), piece)
        # exactly the cap, then one byte more: the server refuses on that byte (the client
        # sends nothing after it, so the close is clean and the 413 is not lost to a reset)
        reply = await self.exchange(head, chunk * (MAX_REQUEST_BODY // len(piece)) + b"1\r\nx")
        self.assertTrue(reply.startswith(b"HTTP/1.1 413 Payload Too Large\r\n"), reply[:200])

    async def test_small_bodies_pass(self) -> None:
        body = b'{"tool": "exec"}'
        head = (b"POST /tools/invoke HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body))
        reply = await self.exchange(head, body)
        self.assertTrue(reply.startswith(b"HTTP/1.1 401 Unauthorized\r\n"), reply)
