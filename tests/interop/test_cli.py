"""Interop tier: the real OpenClaw 2026.9.6 CLI (Node) against our gateway on a loopback port.

The gateway runs in-process on the real reactor; the CLI runs as a child process through
``getProcessOutputAndValue`` (non-blocking), with its own fresh ``HOME`` and an environment
holding nothing but ``PATH`` and what each test sets.  Skipped when the reference launcher is
not installed (``bash scripts/install-openclaw-reference.sh``; ``OPENCLAW_REFERENCE_BIN`` or
``OPENCLAW_REF_DIR`` point elsewhere; the harness is ``tests/support/reference_cli.py``).
Each CLI run costs 1-2 s of Node start-up, so independent runs go concurrently.
"""

from __future__ import annotations

import json
import os

from twisted.internet import defer

from tests.support.reference_cli import TOKEN, RealCLICase


class RealCLIInterop(RealCLICase):
    # -- the tests ----------------------------------------------------------------------------

    async def test_gateway_call_methods(self) -> None:
        """``openclaw gateway call {health,status,system-presence,last-heartbeat} --json``."""
        methods = ("health", "status", "system-presence", "last-heartbeat")
        results = await defer.gatherResults([self.call(m) for m in methods])
        for r in results:
            self.assertEqual(r.code, 0, r)
        health, status, presence, heartbeat = (r.json() for r in results)

        self.assertIs(health["ok"], True)
        self.assertEqual(health["defaultAgentId"], "main")
        self.assertEqual(health["agents"][0]["agentId"], "main")
        self.assertIs(health["agents"][0]["isDefault"], True)

        self.assertEqual(status["runtimeVersion"], "2026.9.6")
        self.assertEqual(status["heartbeat"]["defaultAgentId"], "main")

        self.assertIsInstance(presence, list)
        gateway_entries = [e for e in presence if e.get("mode") == "gateway"]
        self.assertEqual(len(gateway_entries), 1, presence)
        self.assertEqual(gateway_entries[0]["reason"], "self")
        self.assertEqual(gateway_entries[0]["instanceId"], self.gw.instance_id)

        self.assertIsNone(heartbeat)

    async def test_gateway_probe(self) -> None:
        """``openclaw gateway probe``: the explicit target connects (scopes cleared -> degraded)."""
        r = await self.openclaw("gateway", "probe", "--url", self.url, "--token", TOKEN, "--json")
        self.assertEqual(r.code, 0, r)
        report = r.json()
        self.assertIs(report["ok"], True, r)
        self.assertEqual(report["primaryTargetId"], "explicit")
        targets = {t["id"]: t for t in report["targets"]}
        self.assertIn("explicit", targets, r)
        explicit = targets["explicit"]
        self.assertEqual(explicit["url"], self.url)
        self.assertIs(explicit["connect"]["ok"], True, r)
        self.assertEqual(explicit["server"]["version"], "2026.9.6")
        self.assertIsInstance(explicit["server"]["connId"], str)
        self.assertTrue(explicit["server"]["connId"])
        # Same as the real gateway (traces/probe.cli-stdout.txt): a device-less probe gets no
        # scopes, so read RPCs are refused and the report is "connected_no_operator_scope".
        self.assertEqual(explicit["auth"]["scopes"], [])
        self.assertEqual(report["capability"], "connected_no_operator_scope")
        self.assertEqual(explicit["connect"]["error"], "missing scope: operator.read")

    async def test_openclaw_health_text(self) -> None:
        """``openclaw health`` (no --url): the target comes from OPENCLAW_GATEWAY_URL/TOKEN,
        or from ``~/.openclaw/openclaw.json`` (gateway.port, gateway.auth.token)."""
        by_env = defer.Deferred.fromCoroutine(self.openclaw(
            "health", env={"OPENCLAW_GATEWAY_URL": self.url, "OPENCLAW_GATEWAY_TOKEN": TOKEN}))
        home = self.fresh_home()
        os.makedirs(os.path.join(home, ".openclaw"))
        with open(os.path.join(home, ".openclaw", "openclaw.json"), "w") as f:
            json.dump({"gateway": {"port": self.port_number, "auth": {"token": TOKEN}}}, f)
        by_config = defer.Deferred.fromCoroutine(self.openclaw("health", home=home))
        for r in await defer.gatherResults([by_env, by_config]):
            self.assertEqual(r.code, 0, r)
            self.assertIn("Agents: main", r.out, r)
            self.assertIn("Heartbeat interval: 30m (main)", r.out, r)

    async def test_wrong_token(self) -> None:
        r = await self.call("health", token="WRONGTOKEN")
        self.assertEqual(r.code, 1, r)
        self.assertIn("gateway token mismatch", r.err, r)
        error = r.json()["error"]
        self.assertEqual(error["code"], "INVALID_REQUEST")
        self.assertEqual(error["details"]["code"], "AUTH_TOKEN_MISMATCH")
        self.assertIs(error["details"]["canRetryWithDeviceToken"], False)
