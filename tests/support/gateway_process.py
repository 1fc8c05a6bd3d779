"""The gateway as a real child process (``twistd -n openclaw`` on a free loopback port) and
recording WebSocket clients talking to it: for tests that need the whole process -- its
signals, its exit, its restart, its files -- rather than the in-process loopback harness.

No sleeps: every wait is on an event (a frame, a close, a process exit) with a bound and a
message naming what never came; the only polling is the start-up probe (connect, retry
every 50 ms, bounded).
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autobahn.twisted.websocket import WebSocketClientFactory
from twisted.internet import defer, error, reactor, task
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.python import log
from twisted.trial import unittest

from tests.support.children import ChildProcess
from tests.support.loopback import (
    RecordingClient,
    connect_params,
    free_port,
    require_clean_reactor,
    within,
)
from tests.support.paths import REPO

TOKEN = "gateway-process-" + uuid.uuid4().hex[:12]
SCOPES = ["operator.write", "operator.read"]
# `python -m twisted.scripts.twistd` does nothing (that module has no __main__ block), so the
# child runs twistd's entry point through -c, with the test's own interpreter.
TWISTD = "from twisted.scripts.twistd import run; run()"
READY_TIMEOUT_S = 30.0
EXIT_TIMEOUT_S = 10.0
WAIT_S = 10.0


class GatewayProcess(ChildProcess):
    """``twistd -n openclaw`` as a child process on ``port``."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port

    def ended(self, seconds: float, what: str) -> defer.Deferred[None]:
        """Fires once the process has exited; fails naming ``what`` after ``seconds``."""
        return within(self.exited(), f"{what} (gateway output:\n{self.text[-3000:]})", seconds)

    async def stop(self, timeout_s: float = EXIT_TIMEOUT_S) -> None:
        """Cleanup: SIGTERM and wait; SIGKILL when the exit does not come."""
        if self.exit is not None:
            return
        self.signal("TERM")
        try:
            await self.ended(timeout_s, "gateway exit after SIGTERM (cleanup)")
        except unittest.FailTest:
            self.signal("KILL")
            await self.ended(timeout_s, "gateway exit after SIGKILL (cleanup)")


class Client(RecordingClient):
    """A recording client that also keeps every frame in order and can hook each one."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[dict[str, Any]] = []
        self.on_frame: Callable[[dict[str, Any]], None] | None = None

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        frame = json.loads(payload)
        self.seen.append(frame)
        if self.on_frame is not None:
            self.on_frame(frame)
        self.frames.put(frame)


class GatewayProcessCase(unittest.TestCase):
    """Spawns gateways on a fresh state dir; stops clients, then processes, at cleanup."""

    timeout = 90
    extra_args: tuple[str, ...] = ()  # more twistd openclaw options, e.g. --config

    def setUp(self) -> None:
        require_clean_reactor(self)
        self.state = Path(os.path.abspath(self.mktemp()))
        self.state.mkdir(parents=True)
        self.clients: list[Client] = []
        self.gateways: list[GatewayProcess] = []
        self.addCleanup(self._cleanup)

    async def _cleanup(self) -> None:
        # Clients first (a clean close where the socket is still open), then the processes.
        for client in self.clients:
            if client.state == client.STATE_OPEN:
                client.sendClose()
            elif not client.lost.called and client.transport is not None:
                client.transport.abortConnection()
        for client in self.clients:
            if not client.lost.called:
                try:
                    await within(client.lost, "client socket gone (cleanup)", WAIT_S)
                except unittest.FailTest:
                    client.transport.abortConnection()
                    await client.lost
        for gateway in self.gateways:
            await gateway.stop()
            log.msg(f"gateway on port {gateway.port} exited ({gateway.exit_code}); output:\n"
                    f"{gateway.text[-4000:]}")

    # -- helpers --------------------------------------------------------------------------------

    def spawn_gateway(self) -> GatewayProcess:
        gateway = GatewayProcess(free_port())
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCLAW_")}
        env.update(PYTHONPATH=str(REPO), HOME=str(self.state))
        argv = [sys.executable, "-c", TWISTD, "-n", "--pidfile=", "openclaw",
                "--port", str(gateway.port), "--token", TOKEN, "--state-dir", str(self.state),
                *self.extra_args]
        reactor.spawnProcess(gateway, sys.executable, argv, env=env, path=str(REPO))
        self.gateways.append(gateway)
        return gateway

    async def start_gateway(self) -> tuple[GatewayProcess, Client]:
        """Spawn the gateway and wait until a client gets through the handshake and a
        ``health`` answer (connect polled every 50 ms, bounded)."""
        started = reactor.seconds()
        gateway = self.spawn_gateway()
        deadline = started + READY_TIMEOUT_S
        while True:
            if gateway.exit is not None:
                self.fail(f"the gateway exited during start-up ({gateway.exit.value}):\n"
                          f"{gateway.text[-4000:]}")
            try:
                client = await self.open_client(gateway)
                break
            except (error.ConnectionRefusedError, error.ConnectError):
                if reactor.seconds() >= deadline:
                    self.fail(f"the gateway did not accept connections within "
                              f"{READY_TIMEOUT_S:.0f}s:\n{gateway.text[-4000:]}")
                await task.deferLater(reactor, 0.05, lambda: None)
        health = await client.request("health")
        self.assertTrue(health["ok"], f"health after start-up: {health}")
        self.assertIs(health["payload"]["ok"], True, health)
        log.msg(f"gateway on port {gateway.port} ready in "
                f"{reactor.seconds() - started:.2f}s")
        return gateway, client

    async def open_client(self, gateway: GatewayProcess) -> Client:
        factory = WebSocketClientFactory(f"ws://127.0.0.1:{gateway.port}")
        factory.protocol = Client
        factory.setProtocolOptions(closeHandshakeTimeout=0, openHandshakeTimeout=5)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", gateway.port, timeout=5)
        client: Client = await endpoint.connect(factory)
        self.clients.append(client)
        await within(client.opened, "WebSocket opening handshake")
        await client.next_frame("event", "connect.challenge")
        res = await client.request("connect", connect_params(TOKEN, SCOPES))
        self.assertTrue(res["ok"], f"connect refused: {res}")
        return client

    async def history(self, client: Client, key: str) -> list[dict[str, Any]]:
        res = await client.request("chat.history", {"sessionKey": key, "limit": 1000})
        self.assertTrue(res["ok"], f"chat.history {key}: {res}")
        self.assertFalse(res["payload"]["hasMore"], f"chat.history {key}: more than 1000")
        return res["payload"]["messages"]

    async def sessions_by_key(self, client: Client) -> dict[str, dict[str, Any]]:
        res = await client.request("sessions.list", {"limit": 1000})
        self.assertTrue(res["ok"], f"sessions.list: {res}")
        return {row["key"]: row for row in res["payload"]["sessions"]}
