"""systemd socket activation and the watchdog, without systemd: the gateway runs as
``twistd -n openclaw`` in a child process that inherits a pre-bound listening socket as fd 3
with ``LISTEN_FDS=1`` and ``LISTEN_PID`` set to its own pid (as systemd does), and a
``NOTIFY_SOCKET`` datagram socket standing in for systemd's, with ``WATCHDOG_USEC`` set."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
import tempfile

import treq
from twisted.internet import defer, error, reactor, task
from twisted.trial import unittest

from tests.support.children import ChildProcess
from tests.support.loopback import free_port, within
from tests.support.paths import REPO

TWISTD = "from twisted.scripts.twistd import run; run()"
TOKEN = "activation-secret"
READY_TIMEOUT_S = 30.0


class SocketActivation(unittest.TestCase):
    timeout = 90

    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="sd-")  # short: an AF_UNIX path has 108 bytes
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(self.listener.close)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(self.notify.close)
        self.notify_path = os.path.join(self.dir, "notify")
        self.notify.bind(self.notify_path)
        self.notify.setblocking(False)

    def spawn(self, unused_port: int) -> ChildProcess:
        child = ChildProcess()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("OPENCLAW_", "LISTEN_", "WATCHDOG_", "NOTIFY_"))}
        env.update(PYTHONPATH=str(REPO), HOME=self.dir, LISTEN_FDS="1",
                   LISTEN_FDNAMES="openclaw",
                   NOTIFY_SOCKET=self.notify_path, WATCHDOG_USEC="400000")
        # sh sets LISTEN_PID to its own pid, which exec hands on to the gateway
        argv = ["/bin/sh", "-c", 'export LISTEN_PID=$$; exec "$@"', "sh", sys.executable, "-c", TWISTD,
                "-n", "--pidfile=", "openclaw", "--port", str(unused_port), "--token", TOKEN,
                "--state-dir", os.path.join(self.dir, "state")]
        reactor.spawnProcess(child, "/bin/sh", argv, env=env, path=str(REPO),
                             childFDs={0: "w", 1: "r", 2: "r", 3: self.listener.fileno()})
        self.addCleanup(lambda: defer.ensureDeferred(child.stop()))
        return child

    async def datagrams(self, want: set[bytes], seconds: float) -> list[bytes]:
        """Notify datagrams until one starting with each of ``want`` arrived (bounded)."""
        got: list[bytes] = []
        deadline = reactor.seconds() + seconds
        while not all(any(g.startswith(w) for g in got) for w in want):
            if reactor.seconds() > deadline:
                self.fail(f"notify datagrams: wanted {want}, got {got}")
            try:
                got.append(self.notify.recv(4096))
                continue
            except BlockingIOError:
                pass
            await task.deferLater(reactor, 0.05, lambda: None)
        return got

    async def test_serves_the_inherited_socket_and_pings_the_watchdog(self) -> None:
        unused = free_port()
        child = self.spawn(unused)
        got = await self.datagrams({b"READY=1"}, READY_TIMEOUT_S)
        self.assertIsNone(child.exit, child.text[-3000:])
        response = await within(treq.get(f"http://127.0.0.1:{self.port}/health",
                                         persistent=False), "GET /health on the fd", 10)
        self.assertEqual(response.code, 200)
        self.assertEqual(await response.json(), {"ok": True, "status": "live"})
        # /metrics answers on it too, behind the token
        response = await within(treq.get(f"http://127.0.0.1:{self.port}/metrics",
                                         headers={"Authorization": f"Bearer {TOKEN}"},
                                         persistent=False), "GET /metrics", 10)
        self.assertEqual(response.code, 200)
        self.assertIn(b"openclaw_gateway_connections", await response.content())
        # the configured port was not bound: systemd's socket replaces it
        with self.assertRaises(error.ConnectionRefusedError):
            await within(treq.get(f"http://127.0.0.1:{unused}/health", persistent=False),
                         "GET on the unused port", 10)
        # WATCHDOG_USEC=0.4 s: a ping every 0.2 s from the reactor
        got += await self.datagrams({b"WATCHDOG=1"}, 5)
        pings = [g for g in got if g == b"WATCHDOG=1"]
        more = await self.datagrams({b"WATCHDOG=1"}, 5)
        self.assertTrue(pings and more, got)
        self.assertIn("socket activation: serving 1 socket(s)", child.text)
        # the log names the socket systemd passed, not gateway.port (the spawn's unused port)
        self.assertIn(f"gateway listening on ws://127.0.0.1:{self.port} ", child.text)
        self.assertEqual(child.text.count("gateway listening on"), 1, child.text)
        await child.stop()
        # a clean stop: twistd exits 0 or (Twisted >= 23) re-raises SIGTERM on itself
        exit_signal = getattr(child.exit.value if child.exit else None, "signal", None)
        self.assertTrue(child.exit_code == 0 or exit_signal == signal.SIGTERM, child.text)
        self.assertIn("Server Shut Down.", child.text)
        rest = []
        while True:
            try:
                rest.append(self.notify.recv(4096))
            except BlockingIOError:
                break
        self.assertIn(b"STOPPING=1", rest)

    async def test_an_in_process_restart_keeps_serving_the_inherited_socket(self) -> None:
        """SIGUSR2 (issue #20): the new tree adopts systemd's socket again (the old one closed
        only its duplicate of fd 3)."""
        child = self.spawn(free_port())
        await self.datagrams({b"READY=1"}, READY_TIMEOUT_S)
        os.kill(child.transport.pid, signal.SIGUSR2)
        deadline = reactor.seconds() + 20
        while b"gateway restarted in process" not in child.output:
            if reactor.seconds() > deadline or child.exit is not None:
                self.fail(f"no restart: {child.text[-3000:]}")
            await task.deferLater(reactor, 0.05, lambda: None)
        response = await within(treq.get(f"http://127.0.0.1:{self.port}/health",
                                         persistent=False), "GET /health after restart", 10)
        self.assertEqual(response.code, 200)
        await response.content()
        self.assertEqual(child.text.count("socket activation: serving 1 socket(s)"), 2,
                         child.text[-3000:])

    async def test_a_socket_that_is_not_listening_is_refused(self) -> None:
        self.listener.close()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(self.listener.close)
        self.listener.bind(("127.0.0.1", 0))  # bound, never listen()ed
        child = self.spawn(free_port())
        await within(child.exited(), "the gateway's exit", READY_TIMEOUT_S)
        self.assertNotEqual(child.exit_code, 0, child.text)
        self.assertIn("is not a listening TCP socket", child.text)
