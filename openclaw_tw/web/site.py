"""The HTTP site of the one port, guarded against sockets that never finish a request.

Twisted's idle timeout restarts on every byte, so a client trickling a header line (or a body
byte) every few seconds (slowloris) held its socket forever.  ``GuardedChannel`` gives each
request a header deadline (``HTTP_HEADER_TIMEOUT_S``, from the connection or from the previous
response on a keep-alive socket) and then a body deadline (``HTTP_BODY_TIMEOUT_S``, the
reference's request body timeout: 408 "Request body timeout") that bytes do not extend, and
``GatewaySite`` counts, per IP, the sockets still waiting for complete headers: past
``MAX_PENDING_HTTP_PER_IP`` a new socket is answered 503 and closed before anything is
parsed.  Trusted proxies are exempt from the per-IP count (every client behind them shares
their address).  A WebSocket upgrade leaves the count when
its headers are complete, before Autobahn takes the transport over.

An upgrade whose whole head arrives in the socket's first read (what every client sends) is
handed to Autobahn at once, which parses it -- the only parse; the hub's upgrade checks run in
``GatewayProtocol.onConnect``.  Any other upgrade (split across reads, on a keep-alive socket)
goes through twisted.web and ``GatewayRoot``, which hands it to Autobahn the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import ServerFactory
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper
from twisted.web.http import HTTPChannel, _GenericHTTPChannelProtocol
from twisted.web.server import Site

from openclaw_tw.protocol.limits import (
    HTTP_BODY_TIMEOUT_S,
    HTTP_HEADER_TIMEOUT_S,
    MAX_PENDING_HTTP_PER_IP,
)

_log = Logger(namespace="gateway/http")


def _plain(status: bytes, text: bytes, extra: bytes = b"") -> tuple[bytes, bytes]:
    """(head, body) of a plain-text answer written before twisted.web has a request."""
    return (b"HTTP/1.1 " + status + b"\r\nConnection: close\r\n" + extra
            + b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: "
            + str(len(text)).encode() + b"\r\n\r\n", text)


_TIMEOUT = _plain(b"408 Request Timeout", b"Request Timeout")
_BODY_TIMEOUT = _plain(b"408 Request Timeout", b"Request body timeout")
_TOO_MANY = _plain(b"503 Service Unavailable", b"Too many pending HTTP requests",
                   b"Retry-After: 1\r\n")
_TOO_LONG = _plain(b"431 Request Header Fields Too Large", b"Request Header Fields Too Large")


def is_websocket_upgrade(data: bytes) -> bool:
    """``data`` (a socket's first read) holds a whole ``GET`` request head, within the size
    twisted.web accepts, with exactly one ``Upgrade`` header and its value ``websocket``.
    Anything else (split across reads, another method or upgrade) goes through twisted.web
    and ``GatewayRoot``, which answer it as before."""
    end = data.find(b"\r\n\r\n")
    if end < 0 or end > HTTPChannel.totalHeadersSize or not data.startswith(b"GET "):
        return False
    head = data[:end].lower()
    at = head.find(b"\r\nupgrade:")
    if at < 0 or head.find(b"\r\nupgrade:", at + 10) >= 0:
        return False
    stop = head.find(b"\r\n", at + 10)
    return head[at + 10:stop if stop >= 0 else end].strip() == b"websocket"


class GuardedChannel(HTTPChannel):
    """An HTTP/1.1 channel with a header deadline and a place in its IP's pending count."""

    site: GatewaySite
    _ip: str | None = None  # set while counted as pending
    _header_timer: IDelayedCall | None = None
    _body_timer: IDelayedCall | None = None
    _bytes_waiting = False  # bytes of the next request arrived before its deadline
    _refused = False
    _first_read = False  # nothing read yet: a one-read WebSocket upgrade skips twisted.web

    def connectionMade(self) -> None:
        super().connectionMade()
        ip = str(getattr(self.transport.getPeer(), "host", "unknown"))
        if not self.site.admit_pending(ip):
            self._refused = True
            self.setTimeout(None)
            self.transport.write(b"".join(_TOO_MANY))
            self.loseConnection()
            return
        self._ip = ip
        self._first_read = True
        self._await_headers()

    def dataReceived(self, data: bytes) -> None:
        if self._refused:
            return
        if self._first_read:
            self._first_read = False
            upgrades = self.site.upgrades
            if upgrades is not None and is_websocket_upgrade(data):
                self._hand_over(upgrades, data)
                return
        if self._header_timer is not None:
            self._bytes_waiting = True
        super().dataReceived(data)

    def headerReceived(self, line: bytes) -> bool:
        """A ``Transfer-Encoding`` other than ``chunked`` is refused (400), as Node refuses
        one: twisted.web ignored ``identity``, so the bytes the client sent as a body were
        read as a next request (a smuggling shape behind a proxy)."""
        name, _, value = line.partition(b":")
        if name.lower() == b"transfer-encoding" and value.strip(b" \t").lower() != b"chunked":
            self._respondToBadRequestAndDisconnect()
            return False
        return bool(super().headerReceived(line))

    def lineLengthExceeded(self, line: bytes) -> None:
        """A request line or header line over twisted.web's 16 KiB: answered 431, as Node
        answers a head over its limit, then closed (twisted.web closed without a word)."""
        self._headers_done()  # answered: no header deadline's 408 after it
        self._refused = True
        self._answer(_TOO_LONG, line)
        self.loseConnection()

    def allHeadersReceived(self) -> None:
        self._headers_done()
        super().allHeadersReceived()
        if self.length != 0 and not self._refused:  # a body follows (None: chunked)
            self._body_timer = self.callLater(self.site.body_timeout_s, self._body_timeout)

    def allContentReceived(self) -> None:
        self._body_done()
        super().allContentReceived()

    def requestDone(self, request: Any) -> None:
        # Before the base class parses any pipelined bytes (which may complete the next
        # request's headers at once).
        if self.persistent and self.transport is not None:
            self._await_headers()
        super().requestDone(request)

    def connectionLost(self, reason: Any) -> None:
        self._headers_done()
        self._body_done()
        self._leave_pending()
        super().connectionLost(reason)

    def _answer(self, answer: tuple[bytes, bytes], unparsed: bytes = b"") -> None:
        """Write ``answer``; its head alone to a HEAD (the method parsed already, or the
        start of the request line still unparsed in ``unparsed``)."""
        head = getattr(self, "_command", None) == b"HEAD" or unparsed.startswith(b"HEAD ")
        self.transport.write(answer[0] if head else b"".join(answer))

    def _hand_over(self, upgrades: ServerFactory, data: bytes) -> None:
        """Give the socket to the WebSocket protocol, which parses the upgrade itself (the
        one parse of it); this channel never sees another byte."""
        self._headers_done()
        self.setTimeout(None)
        transport = self.transport
        protocol = upgrades.buildProtocol(transport.getPeer())
        if isinstance(transport, ProtocolWrapper):  # TLS: the wrapper feeds its protocol
            transport.wrappedProtocol = protocol
        elif isinstance(transport.protocol, ProtocolWrapper):  # TLS started on a TCP socket
            transport.protocol.wrappedProtocol = protocol
        else:
            transport.protocol = protocol
        self.transport = None
        protocol.makeConnection(transport)
        protocol.dataReceived(data)

    def _await_headers(self) -> None:
        if self._ip is None:
            ip = str(getattr(self.transport.getPeer(), "host", "unknown"))
            self.site.admit_pending(ip, force=True)
            self._ip = ip
        self._bytes_waiting = False
        if self._header_timer is None:
            self._header_timer = self.callLater(self.site.header_timeout_s,
                                                self._header_timeout)

    def _headers_done(self) -> None:
        if self._header_timer is not None:
            if self._header_timer.active():
                self._header_timer.cancel()
            self._header_timer = None
        self._leave_pending()

    def _leave_pending(self) -> None:
        if self._ip is not None:
            self.site.release_pending(self._ip)
            self._ip = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        self._leave_pending()
        if self.transport is None:
            return
        _log.debug("HTTP header timeout ip={ip} partial={partial}",
                   ip=getattr(self.transport.getPeer(), "host", "?"), partial=self._bytes_waiting)
        self._refused = True
        if self._bytes_waiting:  # a request had started: say why (an idle socket just closes)
            self._answer(_TIMEOUT, getattr(self, "_buffer", b""))
        self.setTimeout(None)
        self.loseConnection()
        # A peer that does not read lets the 408 sit in our buffer: abort after a grace.
        self._abortingCall = self.callLater(self.abortTimeout, self.forceAbortClient)

    def _body_done(self) -> None:
        if self._body_timer is not None:
            if self._body_timer.active():
                self._body_timer.cancel()
            self._body_timer = None

    def _body_timeout(self) -> None:
        self._body_timer = None
        if self.transport is None or self.transport.disconnecting:
            return
        _log.debug("HTTP body timeout ip={ip}", ip=getattr(self.transport.getPeer(), "host", "?"))
        self._refused = True
        self._answer(_BODY_TIMEOUT)
        self.setTimeout(None)
        self.loseConnection()
        self._abortingCall = self.callLater(self.abortTimeout, self.forceAbortClient)


class GatewaySite(Site):
    """``Site`` whose channels are ``GuardedChannel`` and which keeps the per-IP count;
    ``upgrades`` builds the protocol a one-read WebSocket upgrade is handed to."""

    def __init__(self, resource: Any, reactor: Any,
                 exempt: Callable[[str], bool] = lambda ip: False,
                 header_timeout_s: float = HTTP_HEADER_TIMEOUT_S,
                 body_timeout_s: float = HTTP_BODY_TIMEOUT_S,
                 max_pending_per_ip: int = MAX_PENDING_HTTP_PER_IP,
                 upgrades: ServerFactory | None = None) -> None:
        super().__init__(resource, reactor=reactor)
        self.upgrades = upgrades
        self.exempt = exempt
        self.header_timeout_s = header_timeout_s
        self.body_timeout_s = body_timeout_s
        self.max_pending_per_ip = max_pending_per_ip
        self.pending: dict[str, int] = {}

    def protocol(self) -> Any:  # Factory.buildProtocol calls self.protocol()
        # The same wrapper Site uses (it negotiates HTTP/2 when h2 is installed).
        return _GenericHTTPChannelProtocol(GuardedChannel())

    def admit_pending(self, ip: str, force: bool = False) -> bool:
        """Count one more socket of ``ip`` waiting for headers; False when over budget."""
        count = self.pending.get(ip, 0)
        if not force and count >= self.max_pending_per_ip and not self.exempt(ip):
            return False
        self.pending[ip] = count + 1
        return True

    def release_pending(self, ip: str) -> None:
        count = self.pending.get(ip, 0) - 1
        if count > 0:
            self.pending[ip] = count
        else:
            self.pending.pop(ip, None)
