"""Interop tier: the real headless node host (`openclaw node run`, OpenClaw 2026.9.6) against
our gateway on a loopback port, managed with the real `openclaw nodes` CLI.

The node host is a child process (spawnProcess) with its own fresh HOME; it is terminated in
cleanup.  Skipped when the reference launcher is not installed (see tests/support/reference_cli.py).
"""

from __future__ import annotations

import json
import os
from typing import Any

from autobahn.twisted.websocket import WebSocketClientFactory
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint

from tests.support.children import ChildProcess
from tests.support.loopback import (
    RecordingClient,
    connect_params,
)
from tests.support.reference_cli import RealCLICase, cli_env

TOKEN = "interop-nodes-secret"


class _Interop(RealCLICase):
    """Our gateway on a loopback port, the real CLI and node host; no tests of its own."""

    timeout = 90
    token = TOKEN

    def env(self, home: str) -> dict[str, str]:
        return cli_env(home)

    def start_node_host(self) -> tuple[ChildProcess, defer.Deferred[Any]]:
        connected: defer.Deferred[Any] = defer.Deferred()

        def on_connect(conn: Any) -> None:
            if conn.role == "node" and not connected.called:
                connected.callback(conn)

        self.gw.on_connect.append(on_connect)
        home = self.fresh_home()
        env = self.env(home)
        env["OPENCLAW_GATEWAY_TOKEN"] = TOKEN
        host = ChildProcess()
        reactor.spawnProcess(
            host, self.launcher, [self.launcher, "node", "run", "--host", "127.0.0.1",
                                  "--port", str(self.port_number)], env=env, path=home)

        self.addCleanup(lambda: defer.Deferred.fromCoroutine(host.stop(10)))
        return host, connected



class RealNodeHost(_Interop):
    async def test_node_run_pair_approve_invoke(self) -> None:
        host, connected = self.start_node_host()
        conn = await connected
        node_id = conn.device_id
        request = self.app.nodes.pending_for(node_id)
        self.assertIsNotNone(request, host.output)

        listing = await self.openclaw("nodes", "list", "--json", "--url", self.url,
                                      "--token", TOKEN)
        self.assertEqual(listing.code, 0, listing)
        pending = listing.json()["pending"]
        self.assertEqual([p["requestId"] for p in pending], [request.request_id])
        self.assertEqual(pending[0]["nodeId"], node_id)
        self.assertIn("system.which", pending[0]["commands"])
        self.assertEqual(pending[0]["requiredApproveScopes"],
                         ["operator.pairing", "operator.admin"])

        approved = await self.openclaw("nodes", "approve", request.request_id, "--url",
                                       self.url, "--token", TOKEN, "--json")
        self.assertEqual(approved.code, 0, approved)
        self.assertEqual(approved.json()["node"]["nodeId"], node_id)
        self.assertIn("system.run", self.app.nodes.effective(node_id))

        which, run = await defer.gatherResults([
            defer.Deferred.fromCoroutine(self.openclaw(
                "nodes", "invoke", "--node", node_id, "--command", "system.which",
                "--params", json.dumps({"bins": ["sh"]}), "--json", "--url", self.url,
                "--token", TOKEN)),
            defer.Deferred.fromCoroutine(self.openclaw(
                "gateway", "call", "node.invoke", "--json", "--url", self.url, "--token", TOKEN,
                "--params", json.dumps({"nodeId": node_id, "command": "system.run",
                                        "params": {"command": ["echo", "hi"]},
                                        "idempotencyKey": "interop-run-1",
                                        "timeoutMs": 15000}))),
        ])
        self.assertEqual(which.code, 0, which)
        result = which.json()
        self.assertIs(result["ok"], True)
        self.assertEqual(result["command"], "system.which")
        self.assertTrue(result["payload"]["bins"]["sh"].endswith("/sh"), which)
        self.assertEqual(run.code, 0, run)
        payload = run.json()["payload"]
        self.assertEqual((payload["exitCode"], payload["stdout"]), (0, "hi\n"), run)

        described = await self.openclaw("nodes", "describe", "--node", node_id, "--json",
                                        "--url", self.url, "--token", TOKEN)
        self.assertEqual(described.code, 0, described)

        # The node's own exec approvals policy (#20): the real CLI asks our gateway, which
        # relays to the real node host (system.execApprovals.get).
        policy = await self.openclaw("approvals", "get", "--node", node_id, "--json",
                                     "--url", self.url, "--token", TOKEN)
        self.assertEqual(policy.code, 0, policy)
        snapshot = policy.json()  # the real node host's own answer, relayed as it was
        self.assertEqual(snapshot["file"]["version"], 1, policy)
        self.assertTrue(snapshot["hash"] and snapshot["path"], policy)
        if os.environ.get("OPENCLAW_TW_SHOW_CLI"):
            print(listing, approved, which, run)


class RealApprovalsCLI(_Interop):
    """`openclaw approvals pending/resolve` as the human's tool, with a requester socket and
    an approval-client socket (caps exec-approvals) on our gateway."""

    async def client(self, scopes: list[str], caps: list[str]) -> RecordingClient:
        factory = WebSocketClientFactory(self.url)
        factory.protocol = RecordingClient
        factory.setProtocolOptions(closeHandshakeTimeout=0, openHandshakeTimeout=5)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.port_number)
        client: RecordingClient = await endpoint.connect(factory)
        await client.opened
        await client.next_frame("event", "connect.challenge")
        params = connect_params(TOKEN, scopes)
        params["caps"] = caps
        res = await client.request("connect", params)
        self.assertTrue(res["ok"], res)
        return client

    async def test_approval_resolved_with_the_real_cli(self) -> None:
        approver = await self.client(["operator.admin", "operator.approvals"],
                                     ["exec-approvals"])
        requester = await self.client(["operator.approvals"], [])
        req_id = "approval-1"
        requester.send_json({"type": "req", "id": req_id, "method": "exec.approval.request",
                             "params": {"command": "echo hi", "commandArgv": ["echo", "hi"],
                                        "host": "gateway", "cwd": "/tmp", "timeoutMs": 60000,
                                        "twoPhase": True, "agentId": "main",
                                        "sessionKey": "agent:main:main"}})
        accepted = await requester.next_frame("res", req_id=req_id)
        self.assertEqual(accepted["payload"]["status"], "accepted", accepted)
        approval_id = accepted["payload"]["id"]
        requested = await approver.next_frame("event", "exec.approval.requested")
        self.assertEqual(requested["payload"]["id"], approval_id)

        pending = await self.openclaw("approvals", "pending", "--json", "--url", self.url,
                                      "--token", TOKEN)
        self.assertEqual(pending.code, 0, pending)
        self.assertIn(approval_id, pending.out)

        resolved = await self.openclaw("approvals", "resolve", approval_id, "allow-once",
                                       "--url", self.url, "--token", TOKEN)
        self.assertEqual(resolved.code, 0, resolved)
        self.assertIn(f"Approval {approval_id} resolved allow-once by client:cli",
                      resolved.out, resolved)
        if os.environ.get("OPENCLAW_TW_SHOW_CLI"):
            print(pending, resolved)
        decision = await requester.next_frame("res", req_id=req_id)
        self.assertEqual(decision["payload"]["decision"], "allow-once")
        event = await approver.next_frame("event", "exec.approval.resolved")
        self.assertEqual(event["payload"]["decision"], "allow-once")
        for c in (approver, requester):
            c.sendClose()
        await defer.gatherResults([approver.lost, requester.lost])
