"""The Autobahn shim: one ``GatewayProtocol`` per socket, a factory that configures them.

The socket layer knows the rest of the gateway only as an ``IHub`` (admit, authenticate,
attach, dispatch, detach) and is known to it only as an ``IConnection``; it is the one module
that imports Autobahn.

States: ``AWAIT_CONNECT`` (challenge sent, 15 s timer, 64 KiB frame cap) -> ``CONNECTING``
(connect being evaluated; later frames queue, at most 15) -> ``OPEN`` (hello-ok sent, 25 MiB
cap, requests dispatched, events delivered with a per-socket seq) -> ``CLOSED``.

Autobahn's own timers use txaio's global loop, so they are switched off; the handshake
timeout, close grace and keepalive run on the gateway's injected clock instead.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Any

import autobahn.websocket.protocol as _autobahn_protocol
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny, ConnectionRequest
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from openclaw_tw.errors import UNAVAILABLE, GatewayError, invalid_request
from openclaw_tw.httpwire import Refused
from openclaw_tw.ids import uuid4_text
from openclaw_tw.interfaces import IConnection, IHub
from openclaw_tw.protocol import autobahn_tuning, frames
from openclaw_tw.protocol import scopes as S
from openclaw_tw.protocol.dispatch import is_async
from openclaw_tw.protocol.frames import EncodedEvent
from openclaw_tw.protocol.handshake import ConnectDecision, PeerInfo
from openclaw_tw.protocol.limits import (
    CLOSE_GRACE_S,
    MAX_PAYLOAD,
    MAX_PENDING_HANDSHAKE_FRAMES,
    MAX_PREAUTH_PAYLOAD,
    MAX_UNAUTHORIZED_ROLE_STREAK,
)
from openclaw_tw.protocol.outbound import SLOW_CONSUMER
from openclaw_tw.protocol.tcpio import (
    H16,
    H64,
    frame_head,
    outbound_buffered,
    send_now,
    shed_backlog,
    truncate_reason,
)

AWAIT_CONNECT, CONNECTING, OPEN, CLOSED = "await-connect", "connecting", "open", "closed"

_log = Logger(namespace="gateway/ws")
_CONNECTED = ("client connected conn={conn} client={client} mode={mode} role={role} ip={ip} "
              "auth={auth_method} device={device}")
DEBUG = bool(os.environ.get("OPENCLAW_TW_DEBUG"))
autobahn_tuning.apply()


@implementer(IConnection)
class GatewayProtocol(WebSocketServerProtocol):
    factory: GatewayFactory
    _refusal: bytes | None = None  # the HTTP answer to an upgrade the hub refused
    _hold_upgrade = False  # inside succeedHandshake: hold the 101 for onOpen
    _held_upgrade: bytes | None = None

    def __init__(self) -> None:
        super().__init__()
        self.conn_id = uuid4_text()
        self.phase = AWAIT_CONNECT
        self.nonce = uuid4_text()
        self.peer_info = PeerInfo(ip="unknown")
        self.role = S.ROLE_OPERATOR
        self.scopes: frozenset[str] = frozenset()
        self.client: dict[str, Any] = {}
        self.caps: frozenset[str] = frozenset()
        self.ephemeral = True
        self.device_id: str | None = None
        self.auth_method = "none"
        self.connect_params: dict[str, Any] = {}
        self.subscriptions: set[str] = set()
        self.seq = 0
        self.dropped_events = 0
        self.awaiting_pong = False
        self._pending: deque[bytes] = deque()
        self._handshake_timer: IDelayedCall | None = None
        self._drop_timer: IDelayedCall | None = None
        self._unauthorized_streak = 0
        self._counted_preauth = False
        self._outbound_noted = 0  # backlog last reported to the hub's outbound budget

    # Autobahn's _connectionMade copies each of ~30 options from the factory (hasattr,
    # getattr, setattr and a log tuple per option) on every connection; the factory
    # snapshots them once (GatewayFactory.config) and _connectionMade applies the snapshot.
    CONFIG_ATTRS: tuple[str, ...] = ()

    def _connectionMade(self) -> None:
        self.__dict__.update(self.factory.config)
        super()._connectionMade()

    @property
    def hub(self) -> IHub:
        return self.factory.hub

    @property
    def peer_ip(self) -> str:
        return self.peer_info.ip

    # -- Autobahn callbacks ------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        # Autobahn's Twisted adapter formats a debug log line (type names, peer) on every read
        # before handing the bytes on; that costs more than parsing a small frame.
        self._dataReceived(data)

    def onConnect(self, request: ConnectionRequest) -> None:
        try:
            self.peer_info = self.hub.admit(
                getattr(self.transport.getPeer(), "host", "unknown"), request.headers.get)
        except Refused as refused:  # our answer (failHandshake below), not Autobahn's
            self._refusal = refused.raw()
            raise ConnectionDeny(refused.status) from None
        self._counted_preauth = True
        # Autobahn copied the factory's limits onto us at connectionMade; until hello-ok a
        # frame above 64 KiB fails the connection with 1009 (Autobahn enforces the cap).
        self.maxMessagePayloadSize = MAX_PREAUTH_PAYLOAD
        self.maxFramePayloadSize = MAX_PREAUTH_PAYLOAD
        return None

    def failHandshake(self, reason: str, code: int = 400, responseHeaders: Any = None) -> None:
        if self._refusal is None:
            return super().failHandshake(reason, code, responseHeaders)
        self.wasNotCleanReason = reason
        self.sendData(self._refusal)
        self.dropConnection(abort=False)

    def succeedHandshake(self, res: Any) -> None:
        """Autobahn writes the 101 and then calls ``onOpen``, which writes the challenge: two
        writes, so the 101 waits in Twisted's buffer for a writability round trip (two
        ``epoll_ctl`` calls and a reactor iteration) and the challenge queues behind it.  The
        101 is held here instead and ``onOpen`` sends both with one ``send()``.  Whatever
        goes wrong on the way, the held 101 is written the normal way (``_release_upgrade``),
        before anything else can be."""
        self._hold_upgrade = True
        try:
            super().succeedHandshake(res)
        finally:
            self._hold_upgrade = False
            self._release_upgrade()

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        if self._hold_upgrade and self._held_upgrade is None and data[:13] == b"HTTP/1.1 101 ":
            self._held_upgrade = data
            return
        if self._held_upgrade is not None:  # never write anything ahead of the 101
            self._release_upgrade()
        super().sendData(data, sync, chopsize)

    def _release_upgrade(self) -> None:
        held, self._held_upgrade = self._held_upgrade, None
        if held is not None:
            _autobahn_protocol.WebSocketProtocol.sendData(self, held)

    def onOpen(self) -> None:
        hub = self.hub
        challenge = frames.encode_plain_event(
            "connect.challenge", {"nonce": self.nonce, "ts": hub.now_ms()})
        held, self._held_upgrade = self._held_upgrade, None
        if held is None:
            self.write_text(challenge)
        else:  # the 101 and the challenge frame in one write (see succeedHandshake)
            data = held + frame_head(len(challenge)) + challenge
            if not send_now(self.transport, data):
                self.transport.write(data)
        self._handshake_timer = hub.clock.callLater(hub.handshake_timeout_s,
                                                    self._handshake_timeout)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        try:
            if self.phase == OPEN:
                self._on_request_frame(payload, isBinary)
            elif self.phase == AWAIT_CONNECT:
                self._on_handshake_frame(payload, isBinary)
            elif self.phase == CONNECTING:
                if len(self._pending) >= MAX_PENDING_HANDSHAKE_FRAMES:
                    self.close(1008, "too many pending handshake frames")
                else:
                    self._pending.append(payload if not isBinary else b"")
        except Exception:
            _log.failure("frame handling failed conn={conn}", conn=self.conn_id)
            self.close(1011, "gateway message handler unavailable")

    def onPong(self, payload: bytes) -> None:
        self.awaiting_pong = False

    def keepalive(self) -> None:
        """Every ping interval (the hub's one timer): a socket that has not answered the last
        ping is dropped, any other open socket is pinged."""
        if self.phase != OPEN:
            return
        if self.awaiting_pong:
            _log.info("missed pong, dropping conn={conn}", conn=self.conn_id)
            self.abort()
            return
        self.awaiting_pong = True
        self.sendPing()

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        previous, self.phase = self.phase, CLOSED
        for timer in (self._handshake_timer, self._drop_timer):
            if timer is not None and timer.active():
                timer.cancel()
        self._handshake_timer = self._drop_timer = None
        if self._outbound_noted:
            self._outbound_noted = 0
            self.hub.outbound.forget(self)
        if self._counted_preauth or previous == OPEN:
            self._counted_preauth = False
            self.hub.detach(self, previous == OPEN)

    def sendCloseFrame(self, code: int | None = None, reasonUtf8: bytes | None = None,
                       isReply: bool = False) -> None:
        super().sendCloseFrame(code=code, reasonUtf8=reasonUtf8, isReply=isReply)
        # Whoever initiated the close, the TCP connection goes away within the grace period.
        if self._drop_timer is None and self.phase != CLOSED:
            self._drop_timer = self.hub.clock.callLater(CLOSE_GRACE_S, self._force_drop)

    # -- closing -------------------------------------------------------------------------------

    def close(self, code: int, reason: str = "") -> None:
        if self.phase == CLOSED:
            return
        if self._handshake_timer is not None and self._handshake_timer.active():
            self._handshake_timer.cancel()
        if self.state != self.STATE_OPEN:
            return  # a close handshake is already under way
        # Autobahn's sendClose only allows 1000 and 3000-4999 for applications; the gateway's
        # contract needs 1002/1008/1011/1012/1013 as well, so write the close frame directly.
        self.sendCloseFrame(
            code=code,
            reasonUtf8=truncate_reason(reason).encode("utf-8") if reason else None,
            isReply=False,
        )

    def close_slow(self) -> None:
        """Retire a slow consumer: drop what it has not been sent yet (its memory goes now,
        not after the close grace) and close 1008 "slow consumer", which then reaches the
        client right after the bytes already on their way."""
        if self.phase != CLOSED and self.state == self.STATE_OPEN:
            shed_backlog(self.transport)
            self.hub.metrics.slow_consumer()
        self.close(1008, SLOW_CONSUMER)

    def _fail_connection(self, code: int = 1001, reason: str = "going away") -> None:
        # The reference closes oversize frames with 1009 and an empty reason.
        super()._fail_connection(code, "" if code == 1009 else reason)

    def abort(self) -> None:
        """Drop the TCP connection without a close handshake (missed pong)."""
        if self.transport is not None:
            self.transport.abortConnection()

    def _force_drop(self) -> None:
        self._drop_timer = None
        if self.phase != CLOSED and self.transport is not None:
            self.transport.abortConnection()

    def _handshake_timeout(self) -> None:
        self._handshake_timer = None
        if self.phase in (AWAIT_CONNECT, CONNECTING):
            _log.info("handshake timeout conn={conn} ip={ip}", conn=self.conn_id, ip=self.peer_info.ip)
            self.close(1000)

    # -- sending -----------------------------------------------------------------------------

    def buffered(self) -> int:
        return outbound_buffered(self.transport)

    def _account(self) -> None:
        """Report this socket's backlog to the global budget when it changed (which may
        close the slowest sockets, this one included)."""
        held = self.buffered()
        if held != self._outbound_noted:
            self._outbound_noted = held
            self.hub.outbound.note(self, held)

    def write_text(self, data: bytes) -> None:
        """Write one unmasked, unfragmented text frame (RFC 6455 §5.2) straight to the
        transport.  Server frames need no masking and we negotiate no extensions, so this is
        exactly what Autobahn's sendMessage would write, at a tenth of its cost."""
        n = len(data)
        if n < 126:  # inline: this runs once per delivery of every broadcast
            frame = bytes((0x81, n)) + data
        elif n < 65536:
            frame = H16.pack(0x81, 126, n) + data
        else:
            self.transport.writeSequence([H64.pack(0x81, 127, n), data])
            return
        if not send_now(self.transport, frame):
            self.transport.write(frame)

    def send_frame(self, data: bytes) -> None:
        """A direct response: a socket more than 50 MiB behind is retired as a slow consumer."""
        if self.phase == CLOSED or self.state != self.STATE_OPEN:
            return
        if self.buffered() > self.hub.max_buffered_bytes:
            self.close_slow()
            return
        self.write_text(data)
        self._account()

    def deliver(self, event: EncodedEvent, drop_if_slow: bool) -> None:
        """A broadcast event: consumes a seq even when dropped, so the client sees the gap."""
        if self.phase != OPEN or self.state != self.STATE_OPEN:
            return
        self.seq += 1
        if self.buffered() + event.size > self.hub.max_buffered_bytes:
            if drop_if_slow:
                self.dropped_events += 1
                self.hub.metrics.event_dropped(event.event)
                return
            self.close_slow()
            return
        self.write_text(event.with_seq(self.seq))
        self._account()

    def send_event(self, event: str, payload: Any) -> None:
        """A point-to-point event with no seq (node-targeted frames, §7.1)."""
        self.send_frame(frames.encode_plain_event(event, payload))

    def respond(self, req_id: str, payload: Any) -> None:
        self.send_frame(frames.encode_response(req_id, payload))

    def respond_error(self, req_id: str, error: GatewayError) -> None:
        self.send_frame(frames.encode_error(req_id, error.shape(), error.payload))

    # -- handshake ---------------------------------------------------------------------------

    def _on_handshake_frame(self, payload: bytes, is_binary: bool) -> None:
        if is_binary:
            self.close(1000)
            return
        try:
            frame = frames.decode(payload)
        except frames.FrameDecodeError:
            self.close(1000)
            return
        if frames.request_problem(frame) is not None:
            self.close(1008, "invalid request frame")
            return
        if frame["method"] != "connect":
            err = invalid_request("invalid handshake: first request must be connect")
            self.respond_error(frame["id"], err)
            self.close(1008, err.message)
            return
        self.phase = CONNECTING
        params = frame.get("params")
        self.connect_params = params if isinstance(params, dict) else {}
        self._connect(frame["id"], params)

    def _connect(self, req_id: str, params: Any) -> None:
        d = self.hub.authenticate(params, self.nonce, self.peer_info)

        def failed(failure: Failure) -> None:
            if failure.check(GatewayError):
                self._refuse(req_id, failure.value)
            else:
                _log.failure("connect failed conn={conn}", failure, conn=self.conn_id)
                self._refuse(req_id, GatewayError(UNAVAILABLE, "gateway message handler "
                                                  "unavailable", close_code=1011))

        d.addCallbacks(lambda decision: self._accept(req_id, decision), failed)

    def _refuse(self, req_id: str, err: GatewayError) -> None:
        if self.phase == CLOSED:
            return
        self.respond_error(req_id, err)
        self.close(err.close_code or 1008, err.close_reason or err.message)

    def _accept(self, req_id: str, decision: ConnectDecision) -> None:
        if self.phase == CLOSED:
            return
        if self._handshake_timer is not None and self._handshake_timer.active():
            self._handshake_timer.cancel()
        self._handshake_timer = None
        self.role = decision.role
        self.scopes = frozenset(decision.scopes)
        self.client = decision.client
        self.caps = frozenset(decision.caps)
        self.ephemeral = decision.ephemeral
        self.device_id = decision.device_id
        self.auth_method = decision.auth_method
        self.maxMessagePayloadSize = MAX_PAYLOAD
        self.maxFramePayloadSize = MAX_PAYLOAD
        self._counted_preauth = False
        self.phase = OPEN
        self.hub.attach(self, req_id, decision)  # sends hello-ok, then announces the socket
        # One-shot CLI calls (ephemeral, shared secret, no device) are the bulk of connects and
        # are not logged (OPENCLAW_TW_DEBUG=1 logs them); devices, nodes and long-lived
        # clients are.  Refusals are always logged.
        if DEBUG or not decision.ephemeral or decision.device_id is not None:
            fields = dict(conn=self.conn_id, client=decision.client.get("id"),
                          mode=decision.client.get("mode"), role=decision.role,
                          ip=self.peer_info.ip, auth_method=decision.auth_method,
                          device=(decision.device_id or "-")[:12])
            # Formatted once here, passed on as a literal (braces escaped) with the fields:
            # twistd's text observer would run string.Formatter over them again (41 -> 16 us
            # a line); the JSON log still gets every field.
            text = _CONNECTED.format_map(fields)
            _log.info(text.replace("{", "{{").replace("}", "}}"), **fields)
        while self._pending and self.phase == OPEN:
            self._on_request_frame(self._pending.popleft(), False)

    # -- requests ----------------------------------------------------------------------------

    def _on_request_frame(self, payload: bytes, is_binary: bool) -> None:
        if is_binary or not payload:
            return  # the real gateway ignores non-JSON frames after hello
        frame = frames.read_request(payload)
        if frame is None:
            _log.debug("ignored non-JSON frame conn={conn}", conn=self.conn_id)
        elif isinstance(frame, frames.BadRequest):
            self.respond_error(frame.req_id, invalid_request(frame.message))
        else:
            self.handle_request(frame["id"], frame["method"], frame.get("params"))

    def handle_request(self, req_id: str, method: str, params: Any) -> None:
        try:
            result = self.hub.dispatch(self, req_id, method, params)
        except GatewayError as err:
            self._request_failed(req_id, err)
            return
        except Exception:
            _log.failure("method {method} failed", method=method)
            self.respond_error(req_id, GatewayError(UNAVAILABLE, "internal error"))
            return
        self._unauthorized_streak = 0
        if not is_async(result):
            self.respond(req_id, result)
            return

        def failed(failure: Failure) -> None:
            if failure.check(GatewayError):
                self._request_failed(req_id, failure.value)
            else:
                _log.failure("method {method} failed", failure, method=method)
                self.respond_error(req_id, GatewayError(UNAVAILABLE, "internal error"))

        result.addCallbacks(lambda value: self.respond(req_id, value), failed)

    def _request_failed(self, req_id: str, err: GatewayError) -> None:
        self.respond_error(req_id, err)
        if S.is_unauthorized_role(err):
            self._unauthorized_streak += 1
            if self._unauthorized_streak > MAX_UNAUTHORIZED_ROLE_STREAK:
                self.close(1008, "repeated unauthorized calls")
        else:
            self._unauthorized_streak = 0


class GatewayFactory(WebSocketServerFactory):
    protocol = GatewayProtocol

    def __init__(self, hub: IHub) -> None:
        super().__init__(reactor=hub.clock)  # Autobahn's own timers are all switched off
        self.hub = hub
        self.setProtocolOptions(
            maxFramePayloadSize=MAX_PAYLOAD,
            maxMessagePayloadSize=MAX_PAYLOAD,
            autoFragmentSize=0,
            failByDrop=False,
            openHandshakeTimeout=0,
            closeHandshakeTimeout=0,
            autoPingInterval=0,
            perMessageCompressionAccept=lambda offers: None,
            requireMaskedClientFrames=True,
            echoCloseCodeReason=False,
            # Origin is decided at connect (handshake.check_browser_origin), as the reference
            # does: a "null" Origin gets the refusal with its reason, not a bare 400.
            allowNullOrigin=True,
        )
        # Not a setProtocolOptions key; the close grace on our own clock replaces it.
        self.serverConnectionDropTimeout = 0
        self.config = self.protocol_config()

    def protocol_config(self) -> dict[str, Any]:
        """What Autobahn's per-connection copy would give a new protocol: the factory's value
        of every server option the protocol class does not define itself."""
        return {name: getattr(self, name) for name in WebSocketServerProtocol.CONFIG_ATTRS
                if not hasattr(GatewayProtocol, name)}

    def setProtocolOptions(self, *args: Any, **kwargs: Any) -> None:
        super().setProtocolOptions(*args, **kwargs)
        if hasattr(self, "config"):
            self.config = self.protocol_config()
