"""Interop tier: remote device pairing with the real OpenClaw 2026.9.6 CLI, end to end.

The real CLI only sends a device identity to a non-loopback ``wss://`` URL, so this test runs
our gateway (``twistd openclaw --tls --bind lan``, a child process) inside a network namespace
of its own, with a veth pair whose two ends both stay in that namespace.  Every CLI run goes
through ``ip netns exec`` too, so no traffic leaves the namespace.  The flow:

1. remote CLI (HOME A, shared token, ``wss://<ns address>``): ``openclaw agent`` is refused
   with "pairing required" and a requestId;
2. local admin CLI (HOME B, ``wss://127.0.0.1``): ``openclaw devices list`` shows the pending
   request (reason not-paired, remoteIp the namespace address);
3. ``openclaw devices approve <requestId>``;
4. remote ``openclaw agent`` again: no pairing error; the CLI stores the device token it got in
   hello-ok;
5. remote ``openclaw gateway call system-presence`` with the URL from its config file and no
   token at all: the gateway accepts the stored device token (``auth=device-token``).

Skipped (with the reason) without the reference CLI, without root, without ``ip`` or when
``ip netns add`` is refused (an unprivileged sandbox).  Each CLI run costs ~1.5-2 s of Node
start-up; the steps depend on each other, so they run one after another.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from twisted.internet import defer, reactor, task
from twisted.internet.utils import getProcessOutputAndValue
from twisted.python import log
from twisted.trial import unittest

from tests.support.children import ChildProcess
from tests.support.loopback import require_clean_reactor
from tests.support.paths import REPO
from tests.support.reference_cli import CLIResult, reference_launcher

TOKEN = "interop-pairing-" + secrets.token_hex(8)
# Both veth ends live in the test's own namespace, so these never meet another network.
NS_ADDR, NS_PEER_ADDR = "10.231.7.1", "10.231.7.2"
PORT = 18789  # the namespace is brand new: nothing else can be listening in it
CLI_TIMEOUT_S = 60  # per CLI run, enforced by timeout(1) so no Node process outlives the test
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
PAIRING_RE = re.compile(r"pairing required \(requestId: ([0-9a-fA-F-]{36})\)")
_PROBE = ("import socket, sys\n"
          "socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()\n")


def _twistd() -> str:
    beside = Path(sys.executable).parent / "twistd"
    return str(beside if beside.exists() else REPO / ".venv" / "bin" / "twistd")


class RealCLIRemotePairing(unittest.TestCase):
    timeout = 120

    async def setUp(self) -> None:
        launcher, why = reference_launcher()
        if launcher is None:
            raise unittest.SkipTest(why)
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root: the test creates a network namespace")
        ip = shutil.which("ip")
        if ip is None:
            raise unittest.SkipTest("the `ip` command (iproute2) is not installed")
        require_clean_reactor(self)
        self.launcher, self.ip = launcher, ip
        self.timeout_bin = shutil.which("timeout")
        self.path_env = os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")

        self.root = tempfile.mkdtemp(prefix="openclaw-pairing-")
        self.addCleanup(shutil.rmtree, self.root, True)
        self.state = os.path.join(self.root, "state")
        self.remote_home = os.path.join(self.root, "home-remote")
        self.admin_home = os.path.join(self.root, "home-admin")
        for d in (self.state, self.remote_home, self.admin_home):
            os.makedirs(d)
        self.cert = os.path.join(self.state, "gateway", "tls", "gateway-cert.pem")

        await self.make_namespace()
        await self.start_gateway()

    # -- the namespace ------------------------------------------------------------------------

    async def run_ip(self, *args: str) -> tuple[int, str]:
        out, err, code = await getProcessOutputAndValue(
            self.ip, args, env={"PATH": self.path_env}, reactor=reactor)
        return code, (out + err).decode("utf-8", "replace").strip()

    async def make_namespace(self) -> None:
        pid = os.getpid()
        tag = secrets.token_hex(2)
        self.ns = f"oc-pair-{pid}-{tag}"
        code, text = await self.run_ip("netns", "add", self.ns)
        if code != 0:
            raise unittest.SkipTest(f"cannot create a network namespace (`ip netns add` "
                                    f"exited {code}: {text})")
        self.addCleanup(self.delete_namespace)
        # Interface names are per namespace; pid + tag keep them readable in `ip` listings.
        a, b = f"oc{pid % 100000}{tag}a", f"oc{pid % 100000}{tag}b"
        steps = [
            ("link", "set", "lo", "up"),
            ("link", "add", a, "type", "veth", "peer", "name", b),
            ("addr", "add", f"{NS_ADDR}/24", "dev", a),
            ("addr", "add", f"{NS_PEER_ADDR}/24", "dev", b),
            ("link", "set", a, "up"),
            ("link", "set", b, "up"),
        ]
        for step in steps:
            code, text = await self.run_ip("netns", "exec", self.ns, self.ip, *step)
            if code != 0:
                raise unittest.SkipTest(f"cannot set up the namespace (`ip {' '.join(step)}` "
                                        f"exited {code}: {text})")

    async def delete_namespace(self) -> None:
        code, text = await self.run_ip("netns", "del", self.ns)
        if code != 0:
            self.fail(f"`ip netns del {self.ns}` exited {code}: {text}")

    # -- the gateway --------------------------------------------------------------------------

    async def start_gateway(self) -> None:
        self.gateway = ChildProcess()
        env = {"PATH": self.path_env, "HOME": self.root, "PYTHONPATH": str(REPO),
               "OPENCLAW_STATE_DIR": self.state}
        argv = [self.ip, "netns", "exec", self.ns, _twistd(), "-n", "--pidfile=", "openclaw",
                "--tls", "--bind", "lan", "--port", str(PORT), "--token", TOKEN]
        reactor.spawnProcess(self.gateway, self.ip, argv, env=env, path=self.root)
        self.addCleanup(self.stop_gateway)
        await self.until_ready()

    async def stop_gateway(self) -> None:
        await self.gateway.stop(STOP_TIMEOUT_S)
        log.msg(f"gateway output:\n{self.gateway.text}")

    async def until_ready(self) -> None:
        """The certificate exists and the port accepts (polled, bounded; no sleeps)."""
        deadline = reactor.seconds() + READY_TIMEOUT_S
        while reactor.seconds() < deadline:
            if self.gateway.exit is not None:
                self.fail(f"the gateway exited during start-up ({self.gateway.exit.value}):\n"
                          f"{self.gateway.text}")
            if os.path.exists(self.cert) and await self.port_accepts():
                return
            await task.deferLater(reactor, 0.1, lambda: None)
        self.fail(f"the gateway was not ready within {READY_TIMEOUT_S:.0f}s:\n"
                  f"{self.gateway.text}")

    async def port_accepts(self) -> bool:
        code, _ = await self.run_ip("netns", "exec", self.ns, sys.executable, "-c", _PROBE,
                                    NS_ADDR, str(PORT))
        return code == 0

    def log_records(self) -> list[dict[str, Any]]:
        """The gateway's JSON-lines log file(s)."""
        records = []
        for path in sorted(Path(self.state, "logs").glob("openclaw-*.log")):
            for line in path.read_text("utf-8").splitlines():
                try:
                    records.append(json.loads(line))
                except ValueError:  # empty, or a line still being written
                    continue
        return records

    async def eventually(self, check: Callable[[], Any], what: str,
                         seconds: float = 5.0) -> Any:
        """``check()`` once it is truthy (log lines travel through pipes and files)."""
        deadline = reactor.seconds() + seconds
        while True:
            found = check()
            if found:
                return found
            if reactor.seconds() >= deadline:
                self.fail(f"{what}: not seen within {seconds:.0f}s\n--- gateway output\n"
                          f"{self.gateway.text[-6000:]}")
            await task.deferLater(reactor, 0.05, lambda: None)

    async def connect_logged(self, device: str, auth: str, count: int) -> None:
        """A ``client connected`` line for the remote device, with the given auth method
        (``count``: how many connects of that device the log file holds by now).

        Checked in both of the gateway's logs: the text log on its stdout and the JSON-lines
        file, whose record carries the method as the structured field ``auth_method``.
        """
        text_line = f"ip={NS_ADDR} auth={auth} device={device}"
        await self.eventually(lambda: text_line in self.gateway.text,
                              f"gateway stdout line with {text_line!r}")

        def in_file() -> list[dict[str, Any]]:
            found = []
            for r in self.log_records():
                message = str(r.get("message", ""))
                if (message.startswith("client connected ") and r.get("ip") == NS_ADDR
                        and r.get("device") == device
                        and f"ip={NS_ADDR} auth={auth} device={device}" in message
                        and r.get("auth_method") == auth):
                    found.append(r)
            return found if len(found) >= count else []

        await self.eventually(in_file, f"log file record: connect from {NS_ADDR} "
                                       f"auth={auth} device={device}")

    # -- the CLI ------------------------------------------------------------------------------

    async def openclaw(self, home: str, *args: str,
                       env: Mapping[str, str] | None = None) -> CLIResult:
        """The real CLI inside the namespace, clean env: HOME, PATH, the CA and ``env``."""
        child_env = {"HOME": home, "PATH": self.path_env, "NO_COLOR": "1",
                     "NODE_EXTRA_CA_CERTS": self.cert}
        child_env.update(env or {})
        guard = (self.timeout_bin, "-k", "5", str(CLI_TIMEOUT_S)) if self.timeout_bin else ()
        argv = ("netns", "exec", self.ns, *guard, self.launcher, *args)
        out, err, code = await getProcessOutputAndValue(
            self.ip, argv, env=child_env, path=home, reactor=reactor)
        result = CLIResult(args, out, err, code)
        log.msg(repr(result))
        return result

    def remote_agent(self) -> defer.Deferred[CLIResult]:
        return defer.Deferred.fromCoroutine(self.openclaw(
            self.remote_home, "agent", "--message", "hi", "--json",
            env={"OPENCLAW_GATEWAY_URL": f"wss://{NS_ADDR}:{PORT}",
                 "OPENCLAW_GATEWAY_TOKEN": TOKEN}))

    def admin(self, *args: str) -> defer.Deferred[CLIResult]:
        return defer.Deferred.fromCoroutine(self.openclaw(
            self.admin_home, *args, "--url", f"wss://127.0.0.1:{PORT}", "--token", TOKEN))

    # -- the test -----------------------------------------------------------------------------

    async def test_remote_device_pairing_flow(self) -> None:
        # 1. Remote, first contact: a device identity is created and sent; pairing required.
        first = await self.remote_agent()
        self.assertNotEqual(first.code, 0, first)
        match = PAIRING_RE.search(first.out + first.err)
        self.assertIsNotNone(match, first)
        assert match is not None
        request_id = match.group(1)

        # 2. Local admin: the request is pending, seen from the namespace address.
        listed = await self.admin("devices", "list", "--json")
        self.assertEqual(listed.code, 0, listed)
        pending = {p["requestId"]: p for p in listed.json()["pending"]}
        self.assertIn(request_id, pending, listed)
        entry = pending[request_id]
        # the real record (traces/pairing-remote.jsonl) carries no reason; isRepair says it
        self.assertEqual((entry["isRepair"], "reason" in entry), (False, False), listed)
        self.assertEqual(entry["remoteIp"], NS_ADDR, listed)
        self.assertEqual((entry["clientId"], entry["clientMode"], entry["role"]),
                         ("cli", "cli", "operator"), listed)
        self.assertEqual(listed.json()["paired"], [], listed)
        device = entry["deviceId"][:12]

        # 3. Local admin approves it.
        approved = await self.admin("devices", "approve", request_id)
        self.assertEqual(approved.code, 0, approved)
        self.assertIn("Approved", approved.out + approved.err, approved)
        self.assertIn(request_id, approved.out, approved)

        # 4. Remote again: paired now.  (`agent` itself needs methods we do not serve, so it
        #    may still fail, but never on pairing.)  hello-ok hands over the device token.
        again = await self.remote_agent()
        self.assertNotIn("pairing required", again.out + again.err, again)
        await self.connect_logged(device, "token", count=1)

        # 5. Remote with the URL from its config and no shared token: the stored device token.
        config_dir = os.path.join(self.remote_home, ".openclaw")
        os.makedirs(config_dir, exist_ok=True)
        with open(os.path.join(config_dir, "openclaw.json"), "w") as f:
            f.write(f'{{ gateway: {{ mode: "remote", remote: {{ url: "wss://{NS_ADDR}:{PORT}" '
                    '} } }\n')
        presence = await self.openclaw(self.remote_home, "gateway", "call", "system-presence",
                                       "--json")
        self.assertEqual(presence.code, 0, presence)
        entries = presence.json()
        self.assertIsInstance(entries, list, presence)
        self.assertIn("gateway", [e.get("mode") for e in entries], presence)
        await self.connect_logged(device, "device-token", count=1)
