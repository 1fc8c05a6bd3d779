"""Loopback tier: the gateway hub and its site on a real 127.0.0.1 port, real clients over TCP
(the harness is ``tests/support/loopback.py``): the handshake, concurrent requests, the
``openclaw-tw`` client, a wrong token, the HTTP probe and the shutdown close, each waiting on
the event it needs (no sleeps) and tearing down until every connection is gone on both sides.
"""

from __future__ import annotations

import json
import os

from autobahn.twisted.websocket import WebSocketClientFactory
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.trial import unittest
from twisted.web.client import Agent, HTTPConnectionPool, readBody

from openclaw_tw import app as composition
from openclaw_tw import tap
from openclaw_tw.client import connection as cli
from openclaw_tw.config import settings as config
from tests.support.loopback import (
    TOKEN,
    RecordingClient,
    _TrackedCallProtocol,
    close_store,
    connect_params,
    listen_loopback,
    require_clean_reactor,
    within,
)


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
