"""Interop tier: the real OpenClaw 2026.9.6 CLI (Node) against our gateway on a loopback port.

The gateway runs in-process on the real reactor; the CLI runs as a child process through
``getProcessOutputAndValue`` (non-blocking), with its own fresh ``HOME`` and an environment
holding nothing but ``PATH`` and what each test sets.  Skipped when the reference launcher is
not installed (``bash scripts/install-openclaw-reference.sh``; ``OPENCLAW_REFERENCE_BIN`` or
``OPENCLAW_REF_DIR`` point elsewhere).  Each CLI run costs 1-2 s of Node start-up, so
independent runs go concurrently.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial import unittest

from tests.test_loopback import start_gateway, stop_gateway

TOKEN = "interop-secret"


def reference_launcher() -> tuple[str | None, str]:
    """``(path, why)``: the ``openclaw`` launcher to run, or ``None`` and where we looked."""
    explicit = os.environ.get("OPENCLAW_REFERENCE_BIN")
    if explicit:
        candidates = [Path(explicit)]
    else:
        candidates = []
        if os.environ.get("OPENCLAW_REF_DIR"):
            candidates.append(Path(os.environ["OPENCLAW_REF_DIR"]) / "openclaw")
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        candidates.append(Path(cache) / "openclaw_tw" / "reference" / "openclaw")
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path), ""
    looked = ", ".join(str(p) for p in candidates)
    return None, (f"reference openclaw CLI not installed (looked at {looked}); "
                  "run `bash scripts/install-openclaw-reference.sh`")


class CLIResult:
    def __init__(self, args: tuple[str, ...], out: bytes, err: bytes, code: int) -> None:
        self.args = args
        self.out = out.decode("utf-8", "replace")
        self.err = err.decode("utf-8", "replace")
        self.code = code

    def json(self) -> Any:
        return json.loads(self.out)

    def __repr__(self) -> str:
        return (f"openclaw {' '.join(self.args)} -> exit {self.code}\n"
                f"--- stdout\n{self.out[:4000]}\n--- stderr\n{self.err[:4000]}")


def cli_env(home: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment for the real CLI: its own HOME, PATH, no colours, and ``extra``."""
    return {"HOME": home, "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NO_COLOR": "1",
            **(extra or {})}


async def run_cli(launcher: str, args: tuple[str, ...], home: str,
                  env: Mapping[str, str] | None = None) -> CLIResult:
    """Run the real CLI in ``home`` (non-blocking) and collect what it printed."""
    out, err, code = await getProcessOutputAndValue(
        launcher, args, env=cli_env(home, env), path=home, reactor=reactor)
    return CLIResult(args, out, err, code)


class RealCLIInterop(unittest.TestCase):
    timeout = 60

    def setUp(self) -> None:
        launcher, why = reference_launcher()
        if launcher is None:
            raise unittest.SkipTest(why)
        self.launcher = launcher
        start_gateway(self, TOKEN)

    async def tearDown(self) -> None:
        await stop_gateway(self)
        self.assertEqual(self.gw.conns, {})

    # -- running the CLI ----------------------------------------------------------------------

    def fresh_home(self) -> str:
        home = os.path.abspath(self.mktemp())
        os.makedirs(home)
        return home

    async def openclaw(self, *args: str, env: Mapping[str, str] | None = None,
                       home: str | None = None) -> CLIResult:
        """Run the real CLI with a clean environment: HOME, PATH and ``env`` only."""
        return await run_cli(self.launcher, args, home or self.fresh_home(), env)

    def call(self, method: str, token: str = TOKEN) -> defer.Deferred[CLIResult]:
        return defer.Deferred.fromCoroutine(self.openclaw(
            "gateway", "call", method, "--url", self.url, "--token", token, "--json"))

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
