"""The two seams between the socket layer and the rest of the gateway.

``IHub`` is all a WebSocket connection may ask of the gateway: be admitted, authenticate,
attach once the handshake succeeded, dispatch a request (the in-flight bound lives behind it),
and detach when closed. ``IConnection`` is all the hub, the method handlers and the domain
services may know of a connection: who it is (id, role, scopes, client, device), how to send
to it (a broadcast event, a point-to-point event, a response) and how to end it. Neither side
imports the other's concrete class; ``protocol/websocket.py`` is the only module that knows
Autobahn, and tests drive handlers with ``tests.support.fakes.FakeConnection``, checked
against ``IConnection`` with ``verifyObject``.
"""

from __future__ import annotations

from zope.interface import Attribute, Interface


class IConnection(Interface):
    """One authenticated client socket, as the hub and the handlers see it."""

    conn_id = Attribute("str: this socket's id (hello-ok server.connId)")
    role = Attribute("str: 'operator' or 'node'")
    scopes = Attribute("frozenset[str]: the granted operator scopes")
    client = Attribute("dict: the connect request's client block (id, mode, version, ...)")
    caps = Attribute("frozenset[str]: declared client capabilities")
    device_id = Attribute("str | None: the paired device behind the socket")
    auth_method = Attribute("str: how the connect authenticated: 'token', 'password', 'none' "
                            "or 'device-token' (only then is the caller its device)")
    peer_ip = Attribute("str: the client's address (behind a trusted proxy: the forwarded one)")
    ephemeral = Attribute("bool: a one-shot client (cli/backend/probe) kept out of presence")
    connect_params = Attribute("dict: the connect request's params as sent")
    subscriptions = Attribute("set[str]: opt-in event streams (e.g. 'sessions')")

    def deliver(event: object, drop_if_slow: bool) -> None:
        """Send an encoded broadcast event with this socket's next seq (skipped when the
        socket is not open; dropped or closed 1008 when it is too far behind)."""

    def send_event(event: str, payload: object) -> None:
        """Send a point-to-point event without a seq (node-targeted frames)."""

    def respond(request_id: str, payload: object) -> None:
        """Send a successful response to one request."""

    def keepalive() -> None:
        """Called every ping interval: ping, or drop a socket that missed the last pong."""

    def close(code: int, reason: str = "") -> None:
        """Start a close handshake with this code (any protocol code, 1002-4999)."""

    def abort() -> None:
        """Drop the connection without a close handshake."""


class IHub(Interface):
    """What the socket layer asks of the gateway."""

    clock = Attribute("IReactorTime: every timer of the socket layer runs on it")
    handshake_timeout_s = Attribute("float: seconds a socket may take to send connect")
    max_buffered_bytes = Attribute("int: outbound bytes a socket may fall behind")
    metrics = Attribute("observe.metrics.Metrics or NullMetrics: counters the socket bumps "
                        "(events dropped, slow-consumer closes)")
    outbound = Attribute("OutboundBudget: every socket's backlog together, bounded")

    def now_ms() -> int:
        """Wall-clock milliseconds (the challenge's ``ts``)."""

    def admit(ip: str, header: object) -> object:
        """A socket opened from ``ip`` with these upgrade headers (``header(name)`` -> value):
        returns its ``PeerInfo`` (the client behind a trusted proxy) and counts it against
        that address's pre-auth budget until it attaches or detaches.  Raises
        ``httpwire.Refused`` (the HTTP answer) for forwarded headers from an untrusted peer,
        an address locked out by failed auth, one over its pre-auth budget, or a gateway
        that is stopping."""

    def authenticate(params: object, nonce: str, peer: object) -> object:
        """Run the connect checks (rate limit, params, shared secret, device identity and
        pairing, the gateway still accepting) for one connect request: a Deferred that fires
        with a ``ConnectDecision`` or fails with the ``GatewayError`` to answer (wrong
        credentials fail only after the throttling delay)."""

    def attach(conn: IConnection, request_id: str, decision: object) -> None:
        """The handshake succeeded: answer ``request_id`` with hello-ok on ``conn``, then
        register and announce it (presence)."""

    def detach(conn: IConnection, attached: bool) -> None:
        """The socket closed (``attached``: after hello-ok); release what it held."""

    def dispatch(conn: IConnection, request_id: str, method: str, params: object) -> object:
        """Run one request: a value, a Deferred, or raise ``GatewayError`` (an overloaded hub
        refuses with retryable ``UNAVAILABLE``)."""
