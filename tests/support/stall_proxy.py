"""A loopback TCP proxy that makes a client read a fast run's frames in one go.

Between a WebSocket client and the gateway: client bytes pass at once; gateway bytes from the
``chat.send`` acknowledgement ("status":"started") on are held until the run's terminal chat
event (or ``stall_s``) and then written in ONE write — what a client sees when it is busy
(rendering, starting up) while a fast model answers. Server frames are unmasked, so the
markers are found in the raw bytes.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import protocol, reactor
from twisted.internet.interfaces import IDelayedCall

ACK = b'"status":"started"'
TERMINAL = (b'"state":"final"', b'"state":"aborted"', b'"state":"error"')


class _ToClient(protocol.Protocol):
    """The proxy's connection to the gateway; writes what it reads to the client side."""

    def __init__(self, front: _FromClient) -> None:
        self.front = front
        self.held: bytearray | None = None
        self.timer: IDelayedCall | None = None

    def connectionMade(self) -> None:
        self.front.back = self
        if self.front.pending:
            self.transport.write(bytes(self.front.pending))
            self.front.pending.clear()
        self.front.transport.resumeProducing()

    def dataReceived(self, data: bytes) -> None:
        if self.held is not None:
            self.held += data
            if any(m in data for m in TERMINAL):
                self.release()
            return
        if ACK in data:
            self.held = bytearray(data)
            self.timer = reactor.callLater(self.front.stall_s, self.release)
            if any(m in data for m in TERMINAL):
                self.release()
            return
        self.front.transport.write(data)

    def release(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None
        held, self.held = self.held, None
        if held:
            self.front.transport.write(bytes(held))

    def connectionLost(self, reason: Any = None) -> None:
        self.release()
        self.front.transport.loseConnection()


class _FromClient(protocol.Protocol):
    def __init__(self, target_port: int, stall_s: float) -> None:
        self.target_port = target_port
        self.stall_s = stall_s
        self.back: _ToClient | None = None
        self.pending = bytearray()

    def connectionMade(self) -> None:
        self.transport.pauseProducing()
        protocol.ClientCreator(reactor, _ToClient, self).connectTCP("127.0.0.1",
                                                                    self.target_port)

    def dataReceived(self, data: bytes) -> None:
        if self.back is None:
            self.pending += data
        else:
            self.back.transport.write(data)

    def connectionLost(self, reason: Any = None) -> None:
        if self.back is not None:
            self.back.release()
            self.back.transport.loseConnection()


class StallProxyFactory(protocol.Factory):
    def __init__(self, target_port: int, stall_s: float = 0.15) -> None:
        self.target_port = target_port
        self.stall_s = stall_s

    def buildProtocol(self, addr: Any) -> _FromClient:
        return _FromClient(self.target_port, self.stall_s)
