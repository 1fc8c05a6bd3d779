"""The real OpenClaw 2026.9.6 CLI (Node) for the interop tier: where its launcher is, how to run
it (non-blocking, a fresh ``HOME`` and an environment holding nothing but ``PATH`` and what each
test sets), and ``RealCLICase``, our gateway on a loopback port for it to talk to.

Skips when the reference launcher is not installed (``bash scripts/install-openclaw-reference.sh``;
``OPENCLAW_REFERENCE_BIN`` or ``OPENCLAW_REF_DIR`` point elsewhere)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial import unittest

from tests.support.loopback import start_gateway, stop_gateway

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


class RealCLICase(unittest.TestCase):
    """Our gateway on a loopback port and the real CLI against it; no tests of its own."""

    timeout = 60
    token = TOKEN  # the gateway's shared token

    def setUp(self) -> None:
        launcher, why = reference_launcher()
        if launcher is None:
            raise unittest.SkipTest(why)
        self.launcher = launcher
        start_gateway(self, self.token)

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
