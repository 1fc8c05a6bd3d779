"""Starting, probing and stopping the two gateways (ours and the real OpenClaw).

Each gets its own port, token, HOME (and TMPDIR, so the real gateway's shared log file under
``$TMPDIR/openclaw`` is private to the run) and state dir.  Output goes to a log file per start.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench import procstat
from bench.client import CONNECT_ERRORS, ConnectRefused, open_session

REPO = Path(__file__).resolve().parent.parent
REF_DIR = Path(os.environ.get("OPENCLAW_REF_DIR") or
               Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
               / "openclaw_tw" / "reference")


def port_free(port: int) -> bool:
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            s.bind((host, port))
        except OSError as e:
            if family == socket.AF_INET6 and e.errno in (99, 97):  # no IPv6 loopback
                continue
            return False
        finally:
            s.close()
    return True


def port_range(env: dict[str, str] | None = None) -> tuple[int, int]:
    """``OPENCLAW_BENCH_PORTS=LO-HI`` keeps the bench's servers in a range (a shared box);
    default 20000-30000."""
    raw = (os.environ if env is None else env).get("OPENCLAW_BENCH_PORTS", "")
    lo, _, hi = raw.partition("-")
    if lo.isdigit() and hi.isdigit() and 1024 <= int(lo) < int(hi) <= 65535:
        return int(lo), int(hi)
    return 20000, 30000


def pick_port(span: int = 8, tries: int = 200) -> int:
    """A port P with P..P+span free on loopback (the real gateway may open neighbours), from
    ``OPENCLAW_BENCH_PORTS`` (or ``BENCH_PORT_RANGE``) ``LO-HI`` when set, else 20000-30000."""
    env = dict(os.environ)
    if "OPENCLAW_BENCH_PORTS" not in env and "BENCH_PORT_RANGE" in env:
        env["OPENCLAW_BENCH_PORTS"] = env["BENCH_PORT_RANGE"]
    lo, hi = port_range(env)
    step = 16 if hi - lo >= 1600 else 1  # a narrow range: every start in it
    for _ in range(tries):
        p = random.randrange(lo, max(lo + 1, hi - span), step)
        if all(port_free(p + i) for i in range(span)):
            return p
    raise RuntimeError("no free port range found")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENCLAW_", "PYTHON", "NODE_", "npm_")) and
           k not in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY")}
    env.update(extra)
    return env


@dataclass
class StartResult:
    first_accept_s: float | None
    first_hello_s: float
    unavailable_retries: int
    connect_retries: int


class Gateway:
    """One gateway under test; ``start()``/``stop()`` may be called repeatedly."""

    name = "?"

    def __init__(self, workdir: Path, token: str) -> None:
        self.workdir = workdir
        self.token = token
        self.port = pick_port()
        self.home = workdir / "home"
        self.tmp = workdir / "tmp"
        self.home.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.config: dict | None = None  # written to config_file() before each start
        self.extra_env: dict[str, str] = {}  # added to env() (e.g. where the UI build is)
        self.t_spawn = 0.0
        self.starts = 0
        self._tree: set[int] = set()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def argv(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return clean_env(HOME=str(self.home), TMPDIR=str(self.tmp), **self.extra_env)

    def config_file(self) -> Path:
        return self.home / ".openclaw" / "openclaw.json"

    def spawn(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        if not port_free(self.port):
            self.port = pick_port()
        self.starts += 1
        if self.config is not None:
            self.config_file().parent.mkdir(parents=True, exist_ok=True)
            self.config_file().write_text(json.dumps(self.config, indent=2))
        log = open(self.workdir / f"gateway-{self.starts}.log", "wb")
        self.t_spawn = time.perf_counter()
        self.proc = subprocess.Popen(self.argv(), env=self.env(), cwd=self.workdir,
                                     stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self._tree = {self.proc.pid}

    def remember_tree(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self._tree.update(procstat.tree(self.proc.pid))

    async def wait_hello(self, timeout: float) -> StartResult:
        """Retry connecting until the first hello-ok (connect errors every 20 ms, retryable
        ``UNAVAILABLE`` such as startup-sidecars after 100 ms)."""
        assert self.proc is not None
        deadline = self.t_spawn + timeout
        first_accept = None
        unavailable = conn_err = 0
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} during start "
                                   f"(see {self.workdir})")
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{self.name}: no hello-ok within {timeout}s")
            marks: dict[str, float] = {}
            try:
                s = await open_session(self.url, self.token, timeout=10, marks=marks)
            except ConnectRefused as e:
                if not e.retryable:
                    raise
                unavailable += 1
                delay = 0.1
            except CONNECT_ERRORS:
                conn_err += 1
                delay = 0.02
            else:
                t_hello = s.t_hello
                await s.close()
                first_accept = first_accept or s.t_open
                return StartResult(first_accept - self.t_spawn, t_hello - self.t_spawn,
                                   unavailable, conn_err)
            if "open" in marks and first_accept is None:
                first_accept = marks["open"]
            await asyncio.sleep(delay)

    def stop(self, grace: float = 15.0) -> tuple[float, bool]:
        """SIGTERM, wait up to ``grace`` then SIGKILL; returns (seconds to exit, killed)."""
        if self.proc is None or self.proc.poll() is not None:
            return 0.0, False
        self.remember_tree()
        t0 = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        killed = False
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            killed = True
        took = time.perf_counter() - t0
        self._reap_leftovers()
        return took, killed

    def _reap_leftovers(self) -> None:
        """Descendants we saw that outlived the root (by pid, only ones this run started)."""
        deadline = time.monotonic() + 3
        for pid in sorted(self._tree):
            if pid == self.pid:
                continue
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.05)
            if _alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def describe(self) -> str:
        return " ".join(self.argv())

    def twin(self, tag: str) -> Gateway:
        """Another instance of the same gateway (own work dir, same token)."""
        raise NotImplementedError


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return procstat.parse_stat(fh.read()).state != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


class Ours(Gateway):
    """``BENCH_OURS_REPO`` names another checkout to measure (a before/after comparison)."""

    name = "ours"
    state_dir: Path | None = None  # default: <workdir>/state

    @property
    def state(self) -> Path:
        return self.state_dir or self.workdir / "state"

    def argv(self) -> list[str]:
        twistd = Path(sys.executable).parent / "twistd"
        head = [str(twistd)] if twistd.exists() else [sys.executable, "-m", "twisted"]
        return [*head, "-n", "--pidfile=", "openclaw", "--port", str(self.port),
                "--token", self.token, "--state-dir", str(self.state)]

    def env(self) -> dict[str, str]:
        return clean_env(HOME=str(self.home), TMPDIR=str(self.tmp),
                         PYTHONPATH=os.environ.get("BENCH_OURS_REPO") or str(REPO),
                         **self.extra_env)

    def config_file(self) -> Path:
        return self.state / "openclaw.json"

    def twin(self, tag: str) -> Gateway:
        return type(self)(self.workdir.parent / f"{self.name}-{tag}", self.token)


class OursMetricsOff(Ours):
    """Ours with ``--metrics off`` (NullMetrics): the baseline of ``--metrics-ab``."""

    name = "ours-metrics-off"

    def argv(self) -> list[str]:
        return [*super().argv(), "--metrics", "off"]


class Floor(Gateway):
    """One of bench/floor.py's bare handshake servers (``--floor``): handshake and idle only."""

    def __init__(self, workdir: Path, token: str, kind: str) -> None:
        super().__init__(workdir, token)
        self.kind = kind
        self.name = f"floor-{kind}"

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "bench.floor", "serve", self.kind, str(self.port),
                self.token]

    def env(self) -> dict[str, str]:
        return clean_env(HOME=str(self.home), TMPDIR=str(self.tmp), PYTHONPATH=str(REPO))

    def twin(self, tag: str) -> Gateway:
        return Floor(self.workdir.parent / f"{self.name}-{tag}", self.token, self.kind)


class Theirs(Gateway):
    name = "theirs"

    def __init__(self, workdir: Path, token: str, launcher: Path) -> None:
        super().__init__(workdir, token)
        self.launcher = launcher

    def twin(self, tag: str) -> Gateway:
        return Theirs(self.workdir.parent / f"{self.name}-{tag}", self.token, self.launcher)

    def argv(self) -> list[str]:
        # the launcher execs node, so the spawned pid is the gateway itself
        return [str(self.launcher), "gateway", "run", "--allow-unconfigured", "--auth", "token",
                "--token", self.token, "--port", str(self.port), "--bind", "loopback"]


def find_launcher() -> Path | None:
    p = REF_DIR / "openclaw"
    return p if p.exists() else None


def node_version() -> str:
    node = REF_DIR / "node" / "bin" / "node"
    try:
        return subprocess.run([str(node), "--version"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"
