"""Loopback tier: the gateway hub and its site on a real 127.0.0.1 port, real clients over TCP.

Unlike the in-memory harness (``tests/helpers.py``), everything here runs on the real reactor:
a real listening port, real Autobahn WebSocket clients, ``openclaw_tw.client.cli.call`` and a real
HTTP client.  No sleeps: every step waits on a Deferred fired by the event it needs, and
teardown waits until each TCP connection is gone on *both* sides, so trial sees a clean
reactor.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import defer, reactor, tcp
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.python.failure import Failure
from twisted.trial import unittest
from twisted.web.client import Agent, HTTPConnectionPool, readBody

from openclaw_tw import app as composition
from openclaw_tw import tap
from openclaw_tw.app import Components
from openclaw_tw.client import connection as cli
from openclaw_tw.config import settings as config

TOKEN = "loopback-secret"
WAIT_S = 5.0  # per awaited event: a missing frame fails fast, naming what never came


def within(d: defer.Deferred[Any], what: str, seconds: float = WAIT_S) -> defer.Deferred[Any]:
    """``d``, or a failure saying ``what`` did not happen within ``seconds`` (not a sleep)."""

    def timed_out(failure: Failure) -> Failure:
        failure.trap(defer.TimeoutError)
        raise unittest.FailTest(f"{what}: nothing within {seconds:.0f}s")

    return d.addTimeout(seconds, reactor).addErrback(timed_out)


# -- server side: a listening port whose connections report when they are gone --------------


class _TrackedServer(tcp.Server):
    """A server-side TCP transport that fires ``lost`` once the reactor has dropped it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lost: defer.Deferred[None] = defer.Deferred()
        self.server.connections.append(self)

    def connectionLost(self, reason: Failure) -> None:
        try:
            super().connectionLost(reason)
        finally:
            if not self.lost.called:
                self.lost.callback(None)


class _TrackedPort(tcp.Port):
    """``reactor.listenTCP`` with a record of every accepted connection (a test-only shim)."""

    transport = _TrackedServer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections: list[_TrackedServer] = []


def require_clean_reactor(case: unittest.TestCase) -> None:
    """Fail up front, naming the cause, when an earlier test left timers on the real reactor.

    Trial blames whichever reactor-using test runs next for such leftovers (typically a
    SynchronousTestCase whose objects defaulted to the global reactor), as a
    DirtyReactorAggregateError that points at the wrong test.
    """
    leftovers = [str(call) for call in reactor.getDelayedCalls() if call.active()]
    if leftovers:
        case.fail("the global reactor already had pending timers before this test started "
                  "(leaked by an earlier test, not by this one): " + "; ".join(leftovers))


def close_store(app: Components) -> None:
    """What the service tree's database services do after the hub stops: close every one."""
    for db in (app.devices_db, app.sessions_db, app.nodes_db, app.cron_db):
        db.close()


def start_gateway(case: unittest.TestCase, token: str = TOKEN) -> None:
    """A gateway with a fresh state dir on a real 127.0.0.1 port: sets ``case.app`` (every
    component), ``case.gw`` (the hub), ``case.port``, ``case.port_number`` and ``case.url``."""
    require_clean_reactor(case)
    state = os.path.abspath(case.mktemp())
    os.makedirs(state)
    settings = config.resolve({"port": "0", "token": token, "state-dir": state},
                              env={"HOME": state})
    case.app = composition.build(settings, reactor)  # type: ignore[attr-defined]
    case.gw = case.app.hub  # type: ignore[attr-defined]
    case.gw.startService()  # type: ignore[attr-defined]
    case.port = listen_loopback(tap.build_site(case.app))  # type: ignore[attr-defined]
    case.port_number = case.port.getHost().port  # type: ignore[attr-defined]
    case.url = f"ws://127.0.0.1:{case.port_number}"  # type: ignore[attr-defined]


async def stop_gateway(case: unittest.TestCase) -> None:
    """Stop listening, stop the hub, wait for every connection to go, close the stores."""
    app, port = case.app, case.port  # type: ignore[attr-defined]
    gw = app.hub
    await defer.maybeDeferred(port.stopListening)
    if gw.running:
        await gw.stopService()
    await defer.gatherResults([conn.lost for conn in port.connections])
    if app.approvals.running:
        app.approvals.stopService()
    close_store(app)


def listen_loopback(site: Any) -> _TrackedPort:
    port = _TrackedPort(0, site, interface="127.0.0.1", reactor=reactor)
    port.startListening()
    return port


# -- client side: an Autobahn client that records frames and its own close ------------------


class RecordingClient(WebSocketClientProtocol):
    """A real WebSocket client; frames land in a queue, close and loss fire Deferreds."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: defer.DeferredQueue[Any] = defer.DeferredQueue()
        self.opened: defer.Deferred[None] = defer.Deferred()
        self.closed: defer.Deferred[tuple[int | None, str | None]] = defer.Deferred()
        self.lost: defer.Deferred[None] = defer.Deferred()

    def onOpen(self) -> None:
        self.opened.callback(None)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.frames.put(json.loads(payload))

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if not self.opened.called:
            self.opened.errback(Failure(ConnectionError(f"handshake failed: {reason}")))
        if not self.closed.called:
            self.closed.callback((code, reason))

    def connectionLost(self, reason: Failure) -> None:
        try:
            super().connectionLost(reason)
        finally:
            if not self.lost.called:
                self.lost.callback(None)

    def send_json(self, obj: Any) -> None:
        self.sendMessage(json.dumps(obj).encode())

    async def next_frame(self, type_: str, name: str | None = None,
                         req_id: str | None = None) -> dict[str, Any]:
        """The next frame of ``type_`` (event name / response id); others are skipped."""
        while True:
            frame = await within(self.frames.get(), f"waiting for {type_} {name or req_id}")
            if frame.get("type") != type_:
                continue
            if name is not None and frame.get("event") != name:
                continue
            if req_id is not None and frame.get("id") != req_id:
                continue
            return frame

    async def request(self, method: str, params: Any = None) -> dict[str, Any]:
        req_id = f"{method}:{uuid.uuid4()}"
        frame: dict[str, Any] = {"type": "req", "id": req_id, "method": method}
        if params is not None:
            frame["params"] = params
        self.send_json(frame)
        return await self.next_frame("res", req_id=req_id)


def connect_params(token: str | None, scopes: list[str] | None = None) -> dict[str, Any]:
    """What the real CLI sends for ``openclaw gateway call`` (traces/status.jsonl)."""
    params: dict[str, Any] = {
        "minProtocol": 4, "maxProtocol": 4,
        "client": {"id": "cli", "version": "2026.9.6", "platform": "linux", "mode": "cli",
                   "instanceId": str(uuid.uuid4())},
        "caps": [], "role": "operator",
        "scopes": ["operator.read"] if scopes is None else scopes,
    }
    if token is not None:
        params["auth"] = {"token": token}
    return params


class _TrackedCallProtocol(cli._CallProtocol):
    """``openclaw_tw.client.cli``'s client protocol, plus a record of when its socket is gone."""

    instances: list[_TrackedCallProtocol] = []

    def __init__(self) -> None:
        super().__init__()
        self.lost: defer.Deferred[None] = defer.Deferred()
        self.instances.append(self)

    def connectionLost(self, reason: Failure) -> None:
        try:
            super().connectionLost(reason)
        finally:
            if not self.lost.called:
                self.lost.callback(None)


class LoopbackTests(unittest.TestCase):
    timeout = 20

    def setUp(self) -> None:
        require_clean_reactor(self)
        state = os.path.abspath(self.mktemp())
        os.makedirs(state)
        self.settings = config.resolve(
            {"port": "0", "token": TOKEN, "state-dir": state}, env={"HOME": state})
        self.app = composition.build(self.settings, reactor)
        self.gw = self.app.hub
        self.gw.startService()
        self.port = listen_loopback(tap.build_site(self.app))
        self.port_number = self.port.getHost().port
        self.url = f"ws://127.0.0.1:{self.port_number}"
        self.clients: list[RecordingClient] = []
        self.pool: HTTPConnectionPool | None = None
        _TrackedCallProtocol.instances = []
        self.patch(cli._CallFactory, "protocol", _TrackedCallProtocol)

    async def tearDown(self) -> None:
        # 1. Clients go first: close what is still open and wait for each socket to be gone.
        for client in self.clients:
            if client.state == client.STATE_OPEN:
                client.sendClose()
            elif not client.lost.called and client.state != client.STATE_CLOSING:
                client.transport.loseConnection()  # a test stopped mid-handshake
        waits = [c.lost for c in self.clients] + [c.lost for c in _TrackedCallProtocol.instances]
        if self.pool is not None:
            waits.append(self.pool.closeCachedConnections())
        await defer.gatherResults(waits)
        # 2. Then the server, in the same order as the service tree stops (tap.makeService):
        #    the port stops accepting, then the hub sends shutdown and closes its sockets.
        await defer.maybeDeferred(self.port.stopListening)  # None when already stopped
        if self.gw.running:
            await self.gw.stopService()
        await defer.gatherResults([conn.lost for conn in self.port.connections])
        close_store(self.app)
        self.assertEqual(self.gw.conns, {})

    async def open_client(self) -> RecordingClient:
        factory = WebSocketClientFactory(self.url)
        factory.protocol = RecordingClient
        # No Autobahn close-handshake timer: the test waits for the drop itself.
        factory.setProtocolOptions(closeHandshakeTimeout=0, openHandshakeTimeout=5)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.port_number)
        client: RecordingClient = await endpoint.connect(factory)
        self.clients.append(client)
        await client.opened
        return client

    async def hello(self, scopes: list[str] | None = None) -> tuple[RecordingClient, dict]:
        client = await self.open_client()
        await client.next_frame("event", "connect.challenge")
        res = await client.request("connect", connect_params(TOKEN, scopes))
        self.assertTrue(res["ok"], res)
        return client, res["payload"]

    # -- the tests ----------------------------------------------------------------------------

    async def test_handshake_then_health(self) -> None:
        """challenge -> connect -> hello-ok -> health, over a real socket."""
        client = await self.open_client()
        challenge = await client.next_frame("event", "connect.challenge")
        self.assertNotIn("seq", challenge)
        self.assertIsInstance(challenge["payload"]["nonce"], str)
        self.assertIsInstance(challenge["payload"]["ts"], int)

        res = await client.request("connect", connect_params(TOKEN))
        self.assertTrue(res["ok"], res)
        hello = res["payload"]
        self.assertEqual(hello["type"], "hello-ok")
        self.assertEqual(hello["protocol"], 4)
        self.assertEqual(hello["server"]["version"], "2026.9.6")
        self.assertIn(hello["server"]["connId"], self.gw.conns)
        self.assertIn("health", hello["features"]["methods"])
        self.assertEqual(hello["auth"]["role"], "operator")
        self.assertEqual(hello["auth"]["scopes"], ["operator.read"])
        self.assertEqual(hello["policy"]["tickIntervalMs"], 30_000)
        self.assertIsInstance(hello["snapshot"]["presence"], list)

        res = await client.request("health")
        self.assertTrue(res["ok"], res)
        self.assertIs(res["payload"]["ok"], True)
        self.assertEqual(res["payload"]["agents"][0]["agentId"], "main")

        # The CLI's way out: an empty close frame; the gateway answers 1000 and drops TCP.
        client.sendClose()
        code, _reason = await within(client.closed, "close frame")
        self.assertEqual(code, 1000)
        await client.lost

    async def test_concurrent_requests_correlate_by_id(self) -> None:
        """Several requests in flight at once each get the response with their own id."""
        client, _hello = await self.hello()
        results = await defer.gatherResults([
            defer.Deferred.fromCoroutine(client.request(m))
            for m in ("health", "status", "system-presence", "last-heartbeat")
        ])
        self.assertTrue(all(r["ok"] for r in results), results)
        health, status, presence, heartbeat = (r["payload"] for r in results)
        self.assertIs(health["ok"], True)
        self.assertEqual(status["runtimeVersion"], "2026.9.6")
        self.assertIn("gateway", [entry.get("mode") for entry in presence])
        self.assertIsNone(heartbeat)

    async def test_cli_call_status(self) -> None:
        """``openclaw_tw.client.cli.call`` (the ``openclaw-tw`` client) against the real port."""
        status = await cli.call(reactor, self.url, TOKEN, "status", None)
        self.assertEqual(status["runtimeVersion"], "2026.9.6")
        self.assertEqual(status["heartbeat"]["agents"][0]["agentId"], "main")

    async def test_cli_call_wrong_token(self) -> None:
        with self.assertRaises(cli.CallError) as ctx:
            await cli.call(reactor, self.url, "WRONG", "health", None)
        self.assertEqual(ctx.exception.error["details"]["code"], "AUTH_TOKEN_MISMATCH")

    async def test_wrong_token_is_refused(self) -> None:
        client = await self.open_client()
        await client.next_frame("event", "connect.challenge")
        res = await client.request("connect", connect_params("WRONG"))
        self.assertFalse(res["ok"])
        error = res["error"]
        self.assertEqual(error["code"], "INVALID_REQUEST")
        self.assertIn("gateway token mismatch", error["message"])
        self.assertEqual(error["details"]["code"], "AUTH_TOKEN_MISMATCH")
        self.assertEqual(error["details"]["authReason"], "token_mismatch")
        code, reason = await within(client.closed, "close frame")
        self.assertEqual(code, 1008)
        self.assertIn("gateway token mismatch", reason or "")
        await client.lost
        self.assertEqual(self.gw.conns, {})

    async def test_http_health_probe(self) -> None:
        """GET /health on the same port, through a real HTTP client."""
        self.pool = HTTPConnectionPool(reactor)
        agent = Agent(reactor, pool=self.pool)
        response = await agent.request(b"GET", f"http://127.0.0.1:{self.port_number}/health"
                                       .encode())
        body = await readBody(response)
        self.assertEqual(response.code, 200)
        self.assertEqual(json.loads(body), {"ok": True, "status": "live"})

    async def test_stop_service_sends_shutdown_and_1012(self) -> None:
        """Stopping the hub with a client connected: ``shutdown`` event, then close 1012."""
        client, _hello = await self.hello()
        # Stop accepting first (the service tree's order), then stop the hub.
        await self.port.stopListening()
        stopped = self.gw.stopService()
        event = await client.next_frame("event", "shutdown")
        self.assertEqual(event["payload"], {"reason": "gateway stopping"})
        self.assertIsInstance(event["seq"], int)
        code, reason = await within(client.closed, "close frame")
        self.assertEqual((code, reason), (1012, "service restart"))
        await client.lost
        await stopped
        self.assertFalse(self.gw.running)
        self.assertEqual(self.gw.conns, {})
