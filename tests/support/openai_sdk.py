"""The official ``openai`` SDK against our gateway on a loopback port: the shared case.

The gateway runs in-process on the real reactor; the SDK's blocking client runs in a worker
thread (``deferToThread``) and ``AsyncOpenAI`` runs in ``asyncio.run`` in a worker thread (its
own event loop, no mixing with the reactor).  Every SDK client is closed inside its thread,
and teardown waits until each server-side connection is gone.  Two backends: the offline
model, and ``tests/support/fakes/openai_server.py`` as the configured upstream provider.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from twisted.internet import defer, reactor, task
from twisted.internet.threads import deferToThread
from twisted.trial import unittest

from openclaw_tw import app as composition
from openclaw_tw import tap
from openclaw_tw.config import settings as config
from tests.support.fakes.openai_server import FakeOpenAI
from tests.support.loopback import close_store, listen_loopback, require_clean_reactor, within

try:
    import openai
except ImportError:  # pragma: no cover - the dev extra installs it
    openai = None  # type: ignore[assignment]

TOKEN = "sdk-secret"
UPSTREAM_KEY = "sk-upstream-test"
ENDPOINTS = {"chatCompletions": {"enabled": True}, "responses": {"enabled": True}}


class TrackedClock:
    """The real reactor's clock, remembering the timers set through it: the runtime keeps
    finished runs for 5 minutes (``agent.wait``); teardown cancels those timers."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def seconds(self) -> float:
        return reactor.seconds()

    def callLater(self, delay: float, f: Any, *args: Any, **kw: Any) -> Any:
        self.calls = [c for c in self.calls if c.active()]
        call = reactor.callLater(delay, f, *args, **kw)
        self.calls.append(call)
        return call

    def getDelayedCalls(self) -> list[Any]:
        return [c for c in self.calls if c.active()]

    def cancel_all(self) -> None:
        for call in self.getDelayedCalls():
            call.cancel()


def sync_client(base_url: str, token: str = TOKEN) -> Any:
    return openai.OpenAI(base_url=base_url, api_key=token, max_retries=0, timeout=20)


class SDKCase(unittest.TestCase):
    timeout = 30
    upstream = False
    upstream_input: list[str] | None = None  # the upstream model's input kinds

    def setUp(self) -> None:
        if openai is None:
            raise unittest.SkipTest("the openai SDK is not installed (pip install '.[dev]')")
        require_clean_reactor(self)
        state = os.path.abspath(self.mktemp())
        os.makedirs(state)
        cfg: dict[str, Any] = {"gateway": {"http": {"endpoints": ENDPOINTS}}}
        self.fake: FakeOpenAI | None = None
        if self.upstream:
            self.fake = FakeOpenAI(reactor, api_key=UPSTREAM_KEY).start()
            cfg["models"] = {"providers": {"fake": {
                "baseUrl": self.fake.base_url, "apiKey": UPSTREAM_KEY,
                "models": [{"id": "gpt-4o-mini",
                            **({"input": self.upstream_input} if self.upstream_input
                               else {})}]}}}
            cfg["agents"] = {"defaults": {"model": {"primary": "fake/gpt-4o-mini"}}}
        path = os.path.join(state, "openclaw.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        settings = config.resolve({"port": "0", "token": TOKEN, "state-dir": state,
                                   "config": path}, env={"HOME": state})
        self.app = composition.build(settings, reactor)
        self.gw = self.app.hub
        self.clock = TrackedClock()
        self.gw.clock = self.clock
        self.gw.startService()
        self.app.runtime.startService()
        self.port = listen_loopback(tap.build_site(self.app))
        self.base_url = f"http://127.0.0.1:{self.port.getHost().port}/v1"

    async def tearDown(self) -> None:
        await defer.maybeDeferred(self.port.stopListening)
        await self.app.runtime.stopService()
        await defer.gatherResults([defer.maybeDeferred(p.close) for p in
                                   self.app.runtime.registry.providers.values()
                                   if hasattr(p, "close")])
        if self.gw.running:
            await self.gw.stopService()
        await defer.gatherResults([conn.lost for conn in self.port.connections])
        if self.fake is not None:
            await self.fake.stop()
        close_store(self.app)
        self.clock.cancel_all()

    def in_thread(self, fn: Any, *args: Any) -> defer.Deferred[Any]:
        return within(deferToThread(fn, *args), f"SDK call {fn.__name__}", 20)

    def in_asyncio(self, coro_fn: Any) -> defer.Deferred[Any]:
        return self.in_thread(lambda: asyncio.run(coro_fn()))

    async def ended(self, run_id: str) -> Any:
        """The run's outcome, once the runtime has let go of it: ``finished()`` fires inside
        the runtime's settle step, so give the reactor one turn (no delay) before looking."""
        outcome = await within(self.app.runtime.runs[run_id].finished(),
                               "the run to end after the client hung up")
        await task.deferLater(reactor, 0, lambda: None)
        return outcome

    def assert_idle(self) -> None:
        runtime = self.app.runtime
        self.assertEqual(runtime.active, {})
        self.assertTrue(all(r.outcome is not None for r in runtime.runs.values()))
