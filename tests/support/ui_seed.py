"""Seed a running gateway with everyday data for the browser tier's non-fresh flows, over its
public surfaces only: a device-signed operator socket (``Rpc``, websockets' sync client), a
remote device behind a trusted proxy (a pending pairing request), the real ``openclaw node
run`` host, and child processes for the mock model (``bench.mockllm``) and the fake Telegram
Bot API (``tests/support/fakes/telegram_api.py``)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from tests.support.devices import Device
from tests.support.gateway_subprocess import stop_process
from tests.support.paths import REPO

ADMIN = ["operator.admin", "operator.read", "operator.write", "operator.approvals",
         "operator.pairing"]
WAIT_S = 30.0


class RpcError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.error = error


class Rpc:
    """One device-signed operator connection (sync); ``call`` returns the payload."""

    def __init__(self, port: int, token: str, scopes: list[str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        from websockets.sync.client import connect

        self.device = Device()
        self.ws = connect(f"ws://127.0.0.1:{port}", additional_headers=headers or {},
                          max_size=None, open_timeout=10)
        nonce = json.loads(self.ws.recv(10))["payload"]["nonce"]
        params = self.device.params(nonce, int(time.time() * 1000), token=token,
                                    scopes=ADMIN if scopes is None else scopes)
        self.hello = self._request("connect", params)

    def _request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        rid = uuid.uuid4().hex
        self.ws.send(json.dumps({"type": "req", "id": rid, "method": method, "params": params}))
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            frame = json.loads(self.ws.recv(max(0.1, deadline - time.monotonic())))
            if frame.get("type") == "res" and frame.get("id") == rid:
                return frame
        raise TimeoutError(method)

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        frame = self._request(method, params or {})
        if not frame.get("ok"):
            raise RpcError(frame.get("error") or {})
        return frame.get("payload")

    def close(self) -> None:
        self.ws.close()


def pending_device(port: int, token: str, remote_ip: str = "10.77.0.9") -> str:
    """A device connecting through the trusted proxy from ``remote_ip``: refused with a pending
    pairing request; its id."""
    rpc = Rpc(port, token, scopes=["operator.read"], headers={"X-Forwarded-For": remote_ip})
    try:
        error = rpc.hello.get("error") or {}
        return str(error["details"]["requestId"])
    finally:
        rpc.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child(argv: list[str], log: Path, env: dict[str, str] | None = None,
          cwd: Path = REPO) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=str(cwd),
                                env=env or {**os.environ, "PYTHONPATH": str(REPO)})


stop = stop_process  # SIGTERM, then SIGKILL

def wait_port(port: int, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def mock_model(log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = child([sys.executable, "-m", "bench.mockllm", str(port)], log)
    wait_port(port)
    return proc, port


def fake_telegram(token: str, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = child([sys.executable, "-m", "tests.support.fakes.telegram_api", str(port), token],
                 log)
    wait_port(port)
    return proc, port


def node_host(launcher: str, port: int, token: str, home: Path) -> subprocess.Popen[bytes]:
    """The real headless node host (``openclaw node run``) in its own HOME."""
    home.mkdir(parents=True, exist_ok=True)
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NO_COLOR": "1",
           "OPENCLAW_GATEWAY_TOKEN": token}
    return child([launcher, "node", "run", "--host", "127.0.0.1", "--port", str(port)],
                 home / "node-host.log", env=env, cwd=home)


def until(check: Any, what: str, seconds: float = WAIT_S) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise TimeoutError(what)
