"""Loopback harness: the gateway hub and its site on a real 127.0.0.1 port, real clients over TCP.

Unlike the in-memory harness (``tests/support/helpers.py``), everything here runs on the real
reactor: a real listening port, real Autobahn WebSocket clients, ``openclaw_tw.client.cli.call``
and a real HTTP client.  No sleeps: every step waits on a Deferred fired by the event it needs, and
teardown waits until each TCP connection is gone on *both* sides, so trial sees a clean
reactor.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Callable
from typing import Any

from autobahn.twisted.websocket import WebSocketClientProtocol
from twisted.internet import defer, reactor, tcp
from twisted.python.failure import Failure
from twisted.trial import unittest

from openclaw_tw import app as composition
from openclaw_tw import tap
from openclaw_tw.app import Components
from openclaw_tw.client import connection as cli
from openclaw_tw.config import settings as config

TOKEN = "loopback-secret"
WAIT_S = 5.0  # per awaited event: a missing frame fails fast, naming what never came


def free_port() -> int:
    """A loopback port nobody listens on right now (bind port 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


def start_gateway(case: unittest.TestCase, token: str = TOKEN,
                  config_file: Callable[[], dict[str, Any]] | None = None,
                  state_dir: str | None = None) -> None:
    """A gateway with a fresh state dir on a real 127.0.0.1 port: sets ``case.app`` (every
    component), ``case.gw`` (the hub), ``case.port``, ``case.port_number`` and ``case.url``.
    ``config_file`` returns the JSON config file's content (e.g. ``models.providers``); it is
    called after the reactor was found clean, so it may start servers the config names.
    ``state_dir``: use this state directory (e.g. a real CLI's ``~/.openclaw``)."""
    require_clean_reactor(case)
    state = state_dir or os.path.abspath(case.mktemp())
    os.makedirs(state, exist_ok=True)
    options = {"port": "0", "token": token, "state-dir": state}
    if config_file is not None:
        options["config"] = os.path.join(state, "openclaw.json")
        with open(options["config"], "w") as f:
            json.dump(config_file(), f)
    settings = config.resolve(options, env={"HOME": state})
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
