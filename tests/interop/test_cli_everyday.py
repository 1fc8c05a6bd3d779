"""The real CLI's everyday commands against our gateway: ``models list``, ``gateway
usage-cost``, ``doctor --non-interactive``, ``status``, ``status --all`` and ``health``.

The CLI runs as a local client (its ``~/.openclaw/openclaw.json`` names our port and token,
and ``OPENCLAW_GATEWAY_PORT`` says the gateway is there: without it ``models list`` reads its
own cache when no gateway lock of its ``HOME`` names a running gateway).  The model is a fake
OpenAI server configured as provider ``fake``; one ``openclaw agent`` turn on it (10 input and
6 output tokens at 3/15 USD per million) gives ``usage-cost`` something to sum.

Every request the gateway gets is recorded: each command must succeed, print nothing
"unknown method" or "failed", and call the methods it calls on the real gateway (2026.9.6,
captured through a frame-logging proxy): models list -> models.list; usage-cost ->
usage.cost; doctor -> health, status, channels.status, diagnostics.stability,
doctor.memory.status, device.pair.list; status -> health, status, system-presence (a probe
connection without scopes: FORBIDDEN there too); status --all -> those plus channels.status
and diagnostics.stability twice (delivery events, then telemetry exporters).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from twisted.internet import defer, reactor
from twisted.trial import unittest

from openclaw_tw.errors import GatewayError
from tests.support.fakes.openai_server import FakeOpenAI
from tests.support.loopback import start_gateway, stop_gateway
from tests.support.reference_cli import TOKEN, CLIResult, reference_launcher, run_cli

PRICES = {"input": 3, "output": 15, "cacheRead": 0.3, "cacheWrite": 3.75}
FAILURE_WORDS = ("unknown method", "failed", "does not support required capability",
                 "probe unavailable")
# What the CLI says about this machine, whichever gateway it talks to (no systemd here).
LOCAL_ONLY = "inspection failed: no supported service"


class EverydayCase(unittest.TestCase):
    """Our gateway with the fake model, the real CLI as a local client of it, and every
    request recorded (``calls``, ``refused``); no tests of its own."""

    timeout = 240

    def setUp(self) -> None:
        launcher, why = reference_launcher()
        if launcher is None:
            raise unittest.SkipTest(why)
        self.launcher = launcher
        start_gateway(self, TOKEN, self.config)
        self.app.runtime.startService()
        self.calls: Counter[str] = Counter()
        self.refused: list[tuple[str, str]] = []
        invoke = self.app.table.invoke

        def recording(ctx: Any, params: Any) -> Any:
            self.calls[ctx.method] += 1
            try:
                return invoke(ctx, params)
            except GatewayError as e:
                self.refused.append((ctx.method, e.message))
                raise

        self.patch(self.app.table, "invoke", recording)
        self.home = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(self.home, ".openclaw"))
        with open(os.path.join(self.home, ".openclaw", "openclaw.json"), "w") as f:
            json.dump({"gateway": {"mode": "local", "port": self.port_number,
                                   "auth": {"mode": "token", "token": TOKEN}}}, f)

    def config(self) -> dict[str, Any]:
        self.model = FakeOpenAI(reactor, api_key="sk-fake").start()
        self.addCleanup(self.model.stop)
        self.model.behave(text="Hello from the fake model.", usage=(10, 6))
        return {"models": {"providers": {"fake": {
            "baseUrl": self.model.base_url, "apiKey": "sk-fake", "api": "openai-completions",
            "models": [{"id": "fake-model", "name": "Fake model", "input": ["text"],
                        "contextWindow": 128000, "cost": PRICES}]}}},
            "agents": {"defaults": {"model": {"primary": "fake/fake-model"}}}}

    async def tearDown(self) -> None:
        await self.app.runtime.stopService()
        await defer.gatherResults([defer.maybeDeferred(p.close) for p in
                                   self.app.runtime.registry.providers.values()
                                   if hasattr(p, "close")])
        await stop_gateway(self)

    async def openclaw(self, *args: str) -> CLIResult:
        self.calls.clear()
        return await run_cli(self.launcher, args, self.home,
                             {"OPENCLAW_GATEWAY_PORT": str(self.port_number)})

    def succeeded(self, r: CLIResult) -> None:
        self.assertEqual(r.code, 0, r)
        for line in (r.out + "\n" + r.err).lower().splitlines():
            if LOCAL_ONLY not in line:
                for word in FAILURE_WORDS:
                    self.assertNotIn(word, line, r)
        unknown = [m for m, message in self.refused if message.startswith("unknown method")]
        self.assertEqual(unknown, [], r)


class EverydayCLI(EverydayCase):
    async def test_models_list(self) -> None:
        r = await self.openclaw("models", "list")
        self.succeeded(r)
        self.assertEqual(self.calls, Counter({"models.list": 1}))
        lines = r.out.splitlines()
        self.assertEqual(lines[0].split(), ["Model", "Input", "Ctx", "Local", "Auth", "Tags"])
        self.assertEqual(lines[1].split(), ["fake/fake-model", "text", "128k", "yes", "yes",
                                            "default"])
        self.assertEqual(lines[2].split(), ["offline/offline-echo", "text", "8k", "yes", "yes",
                                            "offline"])
        listing = (await self.openclaw("models", "list", "--json")).json()
        self.assertEqual(listing["count"], 2)
        self.assertEqual(listing["models"][0], {
            "key": "fake/fake-model", "name": "Fake model", "input": "text",
            "contextWindow": 128000, "local": True, "available": True, "tags": ["default"]})

    async def test_usage_cost_after_a_turn(self) -> None:
        empty = await self.openclaw("gateway", "usage-cost")
        self.succeeded(empty)
        self.assertEqual(self.calls, Counter({"usage.cost": 1}))
        today = datetime.now(UTC).date().isoformat()
        self.assertEqual(empty.out.splitlines(), [
            "Usage cost (30 days)", "Total: $0.0000 · 0 tokens",
            f"Latest day: {today} · $0.0000 · 0 tokens"])
        turn = await self.openclaw("agent", "--agent", "main", "--message", "hello", "--json")
        self.assertEqual(turn.code, 0, turn)
        r = await self.openclaw("gateway", "usage-cost")
        self.succeeded(r)
        self.assertEqual(r.out.splitlines(), [
            "Usage cost (30 days)", "Total: $0.0001 · 16 tokens",
            f"Latest day: {today} · $0.0001 · 16 tokens"])
        summary = (await self.openclaw("gateway", "usage-cost", "--json")).json()
        self.assertEqual((summary["days"], len(summary["daily"])), (30, 30))
        self.assertEqual(summary["totals"], {
            "input": 10, "output": 6, "cacheRead": 0, "cacheWrite": 0, "totalTokens": 16,
            "totalCost": 0.00012, "inputCost": 3e-05, "outputCost": 9e-05,
            "cacheReadCost": 0, "cacheWriteCost": 0, "missingCostEntries": 0})

    async def test_doctor(self) -> None:
        r = await self.openclaw("doctor", "--non-interactive")
        self.succeeded(r)
        self.assertLessEqual({"health", "status", "channels.status", "diagnostics.stability",
                              "doctor.memory.status", "device.pair.list"}, set(self.calls))
        self.assertIn("Doctor complete.", r.out)
        self.assertNotIn("Telemetry exporters", r.out)  # an empty exporter table: no note

    async def test_status_and_health(self) -> None:
        r = await self.openclaw("status")
        self.succeeded(r)
        self.assertLessEqual({"health", "status", "system-presence"}, set(self.calls))
        self.assertIn(f"ws://127.0.0.1:{self.port_number} (local loopback) · reachable", r.out)
        everything = await self.openclaw("status", "--all")
        self.succeeded(everything)
        self.assertEqual(self.calls["diagnostics.stability"], 2)
        self.assertIn("channels.status", self.calls)
        self.assertIn("Inbound delivery telemetry: received 0 · dispatch 0/0 · turns 0 · "
                      "processed 0", everything.out)
        self.assertNotIn("unavailable", everything.out)
        health = await self.openclaw("health")
        self.succeeded(health)
        self.assertIn("Agents: main (default)", health.out)
        # the probe connection of `status` holds no scopes: refused, as on the real gateway
        self.assertEqual([m for m, _ in self.refused], ["system-presence", "system-presence"])


    async def test_status_json(self) -> None:
        """`status --json` as on the real gateway: the agents' projection present (without it
        the CLI reports defaultId/ownership null and "does not expose the CLI configuration
        projection"), a session counted but not listed to a reader, every audit code."""
        turn = await self.openclaw("agent", "--agent", "main", "--message", "hello")
        self.assertEqual(turn.code, 0, turn)
        r = await self.openclaw("status", "--json")
        self.assertEqual(r.code, 0, r)  # (its JSON holds "failed" counts: not `succeeded`)
        self.assertEqual([m for m, _ in self.refused], ["system-presence"])  # the probe's
        self.assertLessEqual({"health", "status", "system-presence"}, set(self.calls))
        s = r.json()
        self.assertEqual((s["agents"]["defaultId"], s["agents"]["ownership"],
                          s["agents"]["selectionRequired"]), ("main", "sole", False))
        self.assertEqual(s["memoryPlugin"],
                         {"enabled": False, "slot": None, "reason": "no memory plugin"})
        reasons = [n["reason"] for n in s["collection"]["notCollected"]]
        self.assertFalse([x for x in reasons if "projection" in x], reasons)
        self.assertEqual((s["sessions"]["count"], s["sessions"]["recent"]), (1, []))
        self.assertEqual(len(s["taskAudit"]["byCode"]), 6)


class SharedHome(unittest.TestCase):
    """The README's own set-up: `make run` keeps its state in ~/.openclaw and the real CLI runs
    in the same HOME. The CLI opens the real gateway's database files there by itself; ours
    must not sit at those paths (it refused them: "uses schema version 3")."""

    timeout = 180

    def setUp(self) -> None:
        launcher, why = reference_launcher()
        if launcher is None:
            raise unittest.SkipTest(why)
        self.launcher = launcher
        self.home = os.path.abspath(self.mktemp())
        start_gateway(self, TOKEN, state_dir=os.path.join(self.home, ".openclaw"))
        self.app.runtime.startService()
        with open(os.path.join(self.home, ".openclaw", "openclaw.json"), "w") as f:
            json.dump({"gateway": {"mode": "local", "port": self.port_number,
                                   "auth": {"mode": "token", "token": TOKEN}}}, f)

    async def tearDown(self) -> None:
        await self.app.runtime.stopService()
        await stop_gateway(self)

    async def openclaw(self, *args: str) -> CLIResult:
        return await run_cli(self.launcher, args, self.home,
                             {"OPENCLAW_GATEWAY_PORT": str(self.port_number)})

    async def test_status_and_doctor_in_the_gateways_home(self) -> None:
        turn = await self.openclaw("agent", "--agent", "main", "--message", "count to 2")
        self.assertEqual((turn.code, turn.out.strip()), (0, "1, 2."), turn)
        for args in (("status",), ("doctor", "--non-interactive")):
            r = await self.openclaw(*args)
            self.assertEqual(r.code, 0, r)
            self.assertNotIn("schema version", r.out + r.err, r)
            self.assertNotIn("The CLI command failed", r.out + r.err, r)
