"""Our gateway as a child process for synchronous tests (the browser tier): ``twistd -n
openclaw`` on a loopback port with its own HOME and state, started and waited for with plain
``subprocess`` (Playwright's sync API owns the test's thread), stopped with SIGTERM."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.paths import REPO

TWISTD = "from twisted.scripts.twistd import run; run()"
START_TIMEOUT_S = 30.0


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL when it has not exited within 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


class GatewaySubprocess:
    def __init__(self, home: Path, port: int, token: str, config: dict[str, Any] | None = None,
                 env: dict[str, str] | None = None, password: str | None = None) -> None:
        self.home, self.port, self.token = home, port, token
        self.password = password  # password auth instead of the token
        self.config = config
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = home / "gateway.log"
        home.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCLAW_")}
        env.update(PYTHONPATH=str(REPO), HOME=str(self.home), **self.extra_env)
        auth = ["--auth", "password", "--password", self.password] if self.password \
            else ["--token", self.token]
        argv = [sys.executable, "-c", TWISTD, "-n", "--pidfile=", "openclaw", "--port",
                str(self.port), *auth, "--state-dir", str(self.home / "state")]
        if self.config is not None:
            path = self.home / "openclaw.json"
            path.write_text(json.dumps(self.config))
            argv += ["--config", str(path)]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, env=env, cwd=str(REPO), stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited {self.proc.returncode}: {self.output()}")
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the gateway did not serve / within {START_TIMEOUT_S:.0f}s: "
                           f"{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text("utf-8", "replace")[-4000:] \
            if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def client(self, *args: str) -> subprocess.Popen[bytes]:
        """A long-running ``openclaw-tw`` client (e.g. ``node run``) against this gateway; the
        caller stops it (``stop_client``)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCLAW_")}
        env.update(PYTHONPATH=str(REPO), HOME=str(self.home / "client-home"))
        log = open(self.home / "client.log", "ab")  # noqa: SIM115 -- the child holds it
        try:
            return subprocess.Popen(
                [sys.executable, "-m", "openclaw_tw.client.cli", *args, "--url",
                 f"ws://127.0.0.1:{self.port}", "--token", self.token], env=env,
                cwd=str(REPO), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        finally:
            log.close()

    @staticmethod
    def stop_client(proc: subprocess.Popen[bytes]) -> None:
        stop_process(proc)

    def call(self, method: str, params: dict[str, Any]) -> Any:
        """One method call through ``openclaw-tw call`` (a second, non-browser client)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCLAW_")}
        env.update(PYTHONPATH=str(REPO), HOME=str(self.home))
        out = subprocess.run(
            [sys.executable, "-m", "openclaw_tw.client.cli", "call", method, "--params",
             json.dumps(params), "--url", f"ws://127.0.0.1:{self.port}", "--token", self.token,
             "--json"], env=env, cwd=str(REPO), capture_output=True, timeout=30, check=True)
        return json.loads(out.stdout)
