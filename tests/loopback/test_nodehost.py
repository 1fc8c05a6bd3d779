"""Our own node host (`openclaw-tw node run`) and the `openclaw-tw nodes|approvals` commands,
end to end on a real loopback port: the same flow as the real node host interop test.

The node host and each CLI run are child processes (``python -m openclaw_tw.client.cli``) with a
fresh HOME/state dir; the gateway runs in-process on the real reactor.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import attrs
from twisted.internet import defer, reactor
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial import unittest

from tests.support.children import ChildProcess
from tests.support.loopback import start_gateway, stop_gateway
from tests.support.paths import REPO

TOKEN = "nodehost-secret"
ROOT = str(REPO)


class _GatewayAndCLI(unittest.TestCase):
    """A loopback gateway, and ``openclaw-tw`` runs as child processes against it."""

    timeout = 60

    def setUp(self) -> None:
        start_gateway(self, TOKEN)

    async def tearDown(self) -> None:
        await stop_gateway(self)

    def env(self, home: str | None = None) -> dict[str, str]:
        if home is None:
            home = os.path.abspath(self.mktemp())
            os.makedirs(home)
        return {"HOME": home, "OPENCLAW_STATE_DIR": os.path.join(home, ".openclaw"),
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": ROOT}

    async def cli(self, *args: str) -> tuple[int, str, str]:
        out, err, code = await getProcessOutputAndValue(
            sys.executable, ("-m", "openclaw_tw.client.cli", *args, "--url", self.url,
                             "--token", TOKEN), env=self.env(), reactor=reactor)
        return code, out.decode(), err.decode()



class OwnNodeHost(_GatewayAndCLI):
    def start_node_host(self, home: str | None = None, token: str | None = TOKEN
                        ) -> tuple[ChildProcess, defer.Deferred[Any]]:
        connected: defer.Deferred[Any] = defer.Deferred()

        def on_connect(conn: Any) -> None:
            if conn.role == "node" and not connected.called:
                connected.callback(conn)

        self.gw.on_connect.append(on_connect)
        child = ChildProcess()
        reactor.spawnProcess(
            child, sys.executable, [sys.executable, "-m", "openclaw_tw.client.cli", "node", "run",
                                    "--url", self.url, *(("--token", token) if token else ()),
                                    "--display-name", "tw-host"], env=self.env(home))

        async def stop() -> None:
            child.signal("KILL")
            await child.exited()

        self.addCleanup(lambda: defer.Deferred.fromCoroutine(stop()))
        return child, connected

    async def test_node_run_pair_approve_invoke(self) -> None:
        child, connected = self.start_node_host()
        conn = await connected
        node_id = conn.device_id
        self.assertIsNotNone(self.app.nodes.pending_for(node_id))

        code, out, err = await self.cli("nodes", "list")
        self.assertEqual(code, 0, err)
        self.assertIn(f"{node_id} \"tw-host\"  {sys.platform}  pending-approval", out)

        code, out, err = await self.cli("nodes", "approve", "--latest")
        self.assertEqual(code, 0, err)
        self.assertEqual(json.loads(out)["node"]["commands"],
                         ["system.notify", "system.run", "system.which"])

        results = await defer.gatherResults([defer.Deferred.fromCoroutine(self.cli(
            "nodes", "invoke", node_id, command, "--params", json.dumps(params)))
            for command, params in (("system.run", {"command": ["echo", "hi"]}),
                                    ("system.run", {"command": ["sh", "-c", "exit 3"]}),
                                    ("system.which", {"bins": ["sh", "no-such-bin-x"]}),
                                    ("system.notify", {"title": "hello"}))])
        for code, _, err in results:
            self.assertEqual(code, 0, err)
        run, failing, which, notify = (json.loads(out) for _, out, _ in results)
        self.assertEqual((run["payload"]["exitCode"], run["payload"]["stdout"]), (0, "hi\n"))
        self.assertEqual((failing["payload"]["exitCode"], failing["payload"]["success"]),
                         (3, False))
        self.assertEqual(list(which["payload"]["bins"]), ["sh"])
        self.assertEqual(notify["payload"], {"ok": True})

        code, out, err = await self.cli("nodes", "describe", node_id)
        self.assertEqual(json.loads(out)["approvalState"], "approved")
        code, out, err = await self.cli("nodes", "invoke", node_id, "camera.snap")
        self.assertEqual(code, 1)
        self.assertIn("requires explicit gateway.nodes.commands.allow opt-in", err)
        self.assertIn(b"node host connected", child.output)

    async def test_a_restarted_host_connects_with_its_device_token(self) -> None:
        """Issue #20: the host keeps the device token of hello-ok; started again without the
        gateway's token it connects with that token, and its approval still holds."""
        home = os.path.abspath(self.mktemp())
        os.makedirs(home)
        child, connected = self.start_node_host(home)
        conn = await connected
        node_id = conn.device_id
        code, out, err = await self.cli("nodes", "approve", "--latest")
        self.assertEqual(code, 0, err)
        stored = os.path.join(home, ".openclaw", "node", "device-tokens.json")
        with open(stored) as f:
            self.assertEqual(list(json.load(f)), [self.url])
        child.signal("KILL")
        await child.exited()
        _again, reconnected = self.start_node_host(home, token=None)
        conn2 = await reconnected
        self.assertEqual(conn2.device_id, node_id)
        self.assertEqual(conn2.connect_params["auth"].keys(), {"deviceToken"})
        self.assertIsNone(self.app.nodes.pending_for(node_id))  # no new approval needed
        self.assertEqual(self.app.nodes.effective(node_id),
                         ["system.notify", "system.run", "system.which"])

    async def test_approvals_cli(self) -> None:
        code, out, err = await self.cli("approvals", "list")
        self.assertEqual((code, out), (0, "Pending approvals (0)\n"), err)
        code, out, err = await self.cli("approvals", "resolve", "nope", "deny")
        self.assertEqual(code, 1)
        self.assertIn("unknown or expired approval id", err)


class PairingCLI(_GatewayAndCLI):
    """``openclaw-tw pairing list|approve <channel> <CODE>`` (as ``openclaw pairing``)."""

    async def test_list_then_approve_by_code(self) -> None:
        self.gw.settings = attrs.evolve(self.gw.settings, raw={
            "channels": {"irc": {"host": "127.0.0.1", "nick": "claw"}}})
        req, _ = await self.app.dm_pairing.request("irc", "default", "ann", "ann!a@host")
        code, out, err = await self.cli("pairing", "list", "irc")
        self.assertEqual(code, 0, err)
        self.assertIn(req.code, out)
        self.assertIn("irc:default  ann", out)
        code, out, err = await self.cli("pairing", "approve", "irc", req.code.lower())
        self.assertEqual(code, 0, err)
        self.assertEqual(json.loads(out)["senderId"], "ann")
        self.assertTrue(self.app.dm_pairing.is_allowed("irc", "default", "ann"))
        code, out, err = await self.cli("pairing", "approve", "irc", req.code)
        self.assertEqual(code, 1)
        self.assertIn("No pending pairing request found", err)
