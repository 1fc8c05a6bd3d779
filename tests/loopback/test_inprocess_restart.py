"""In-process restart (issue #20): a config change that needs a restart restarts the gateway
tree without the process exiting, on the same port, and loses no acknowledged turn.

The gateway is a real ``twistd -n openclaw`` child (its pid must not change); the test edits
its config file as a user would.  ``gateway.controlUi.basePath`` is a restart path.

1. A turn that is streaming and one queued behind it when the change lands are both
   answered in full (the restart drains them first); the client then gets ``shutdown`` with
   ``reason`` and ``restartExpectedMs`` and a close 1012; it reconnects to the same port and
   finds its session and both turns; the new base path is in force.
2. SIGUSR2 restarts too, several signals at once coalesce into one restart.
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from pathlib import Path
from typing import Any

from twisted.internet import error, reactor, task
from twisted.web.client import Agent, readBody

from openclaw_tw.agent.offline import reply_for
from tests.support.gateway_process import WAIT_S, Client, GatewayProcess, GatewayProcessCase
from tests.support.loopback import within

LONG = "count to 100"  # 34 chunks, 5 ms apart


def text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or [] if isinstance(p, dict))


class InProcessRestart(GatewayProcessCase):
    def setUp(self) -> None:
        super().setUp()
        self.config = Path(os.path.abspath(self.mktemp()))
        self.config.write_text("// the user's config\n{gateway: {controlUi: {enabled: true}}}\n")
        self.extra_args = ("--config", str(self.config))

    async def reconnect(self, gateway: GatewayProcess) -> Client:
        """Connect again once the new tree listens (polled every 50 ms, bounded)."""
        deadline = reactor.seconds() + WAIT_S
        while True:
            try:
                return await self.open_client(gateway)
            except (error.ConnectionRefusedError, error.ConnectError):
                if reactor.seconds() >= deadline:
                    self.fail(f"no listener again within {WAIT_S:.0f}s:\n{gateway.text[-3000:]}")
                await task.deferLater(reactor, 0.05, lambda: None)

    async def send(self, client: Client, key: str, message: str) -> str:
        run_id = str(uuid.uuid4())
        res = await client.request("chat.send", {"sessionKey": key, "message": message,
                                                 "idempotencyKey": run_id})
        self.assertTrue(res["ok"], res)
        return run_id

    async def get(self, port: int, path: str) -> int:
        response = await Agent(reactor).request(b"GET", f"http://127.0.0.1:{port}{path}".encode(),
                                                None)
        await readBody(response)
        return int(response.code)

    async def test_a_restart_path_restarts_in_process_and_loses_no_turn(self) -> None:
        gateway, client = await self.start_gateway()
        pid = gateway.transport.pid
        self.assertEqual(await self.get(gateway.port, "/"), 503)  # served at / before
        key = "restart-" + uuid.uuid4().hex[:6]
        first = await self.send(client, key, LONG)
        second = await self.send(client, key, "hello after the restart request")
        self.config.write_text(  # the watcher polls every second
            "// the user's config\n" + json.dumps({"gateway": {"controlUi": {"enabled": True, "basePath": "/ui"}}}))
        shutdown = await client.next_frame("event", "shutdown")
        self.assertEqual(shutdown["payload"]["reason"], "gateway restarting")
        self.assertIsInstance(shutdown["payload"]["restartExpectedMs"], int)
        code, _reason = await within(client.closed, "close after shutdown", WAIT_S)
        self.assertEqual(code, 1012)
        finals = {f["payload"]["runId"] for f in client.seen if f.get("event") == "chat" and
                  f["payload"].get("state") == "final"}
        self.assertEqual(finals, {first, second}, "both turns answered before the restart")

        again = await self.reconnect(gateway)
        self.assertIsNone(gateway.exit, "the process exited")
        self.assertEqual(gateway.transport.pid, pid)
        rows = await self.sessions_by_key(again)
        self.assertIn(f"agent:main:{key}", rows)
        texts = [text_of(m) for m in await self.history(again, key)]
        self.assertIn(reply_for(LONG), texts)
        self.assertIn(reply_for("hello after the restart request"), texts)
        # The new base path is in force: the UI (here its "no build found" page) moved.
        self.assertEqual(await self.get(gateway.port, "/"), 404)
        self.assertEqual(await self.get(gateway.port, "/ui/"), 503)
        self.assertIn(b"gateway restarted in process (config reload: gateway.controlUi.basePath)",
                      bytes(gateway.output))

    async def test_sigusr2_restarts_and_repeated_signals_coalesce(self) -> None:
        gateway, client = await self.start_gateway()
        for _ in range(3):
            os.kill(gateway.transport.pid, signal.SIGUSR2)
        await client.next_frame("event", "shutdown")
        await within(client.closed, "close after shutdown", WAIT_S)
        again = await self.reconnect(gateway)
        health = await again.request("health")
        self.assertTrue(health["ok"], health)
        self.assertEqual(bytes(gateway.output).count(b"gateway restarted in process"), 1,
                         gateway.text[-3000:])
        self.assertIsNone(gateway.exit)
