"""Retiring a slow consumer drops its unsent frames whole (issue #21 finding 9): on a real TCP
server transport whose peer stops reading, ``shed_backlog`` frees the queued frames and a close
frame written next reaches the peer intact after the bytes already on their way."""

from __future__ import annotations

import socket
import struct

from twisted.internet import reactor, tcp
from twisted.internet.protocol import Protocol
from twisted.trial import unittest

from openclaw_tw.protocol.websocket import shed_backlog


def text_frame(n: int, size: int) -> bytes:
    body = (b"%08d" % n) + b"x" * (size - 8)
    return struct.pack("!BBH", 0x81, 126, len(body)) + body


def parse(data: bytes) -> list[tuple[int, bytes]]:
    frames, pos = [], 0
    while pos < len(data):
        opcode, n = data[pos] & 0x0F, data[pos + 1] & 0x7F
        pos += 2
        if n == 126:
            n = struct.unpack("!H", data[pos:pos + 2])[0]
            pos += 2
        assert pos + n <= len(data), "truncated frame"
        frames.append((opcode, data[pos:pos + n]))
        pos += n
    return frames


class ShedBacklog(unittest.TestCase):
    def test_stalled_reader_backlog_dropped_whole_frames_then_close(self) -> None:
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        port = tcp.Port(0, None, reactor=reactor)
        server = tcp.Server(a, Protocol(), ("127.0.0.1", 1), port, 1, reactor)
        server.stopReading()
        self.addCleanup(server.stopWriting)
        for n in range(40):
            server.write(text_frame(n, 3000))
        server.doWrite()  # the kernel takes what fits; the rest stays, ending mid-frame
        for n in range(40, 400):
            server.write(text_frame(n, 3000))
        self.assertGreater(len(server.dataBuffer) - server.offset, 0)  # partly sent
        queued = server._tempDataLen
        self.assertGreater(queued, 0)
        self.assertEqual(shed_backlog(server), queued)
        self.assertEqual(server._tempDataLen, 0)
        server.write(struct.pack("!BBH", 0x88, 15, 1008) + b"slow consumer")
        received = b""
        b.setblocking(False)
        for _ in range(10_000):  # bounded: the peer now reads it all
            server.doWrite()
            try:
                chunk = b.recv(65536)
            except BlockingIOError:
                chunk = b""
            received += chunk
            if received.endswith(b"slow consumer"):
                break
        frames = parse(received)
        self.assertEqual(frames[-1], (8, struct.pack("!H", 1008) + b"slow consumer"))
        numbers = [int(body[:8]) for op, body in frames[:-1]]
        self.assertTrue(all(op == 1 for op, _ in frames[:-1]))
        self.assertEqual(numbers, list(range(len(numbers))))  # a prefix, no frame cut
        self.assertLess(len(numbers), 400)

    def test_tls_or_other_transports_keep_their_backlog(self) -> None:
        from twisted.internet.testing import StringTransport

        self.assertEqual(shed_backlog(StringTransport()), 0)
