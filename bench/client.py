"""The protocol client used by every scenario: asyncio + ``websockets`` + orjson.

Only what the scenarios need: open a socket, answer ``connect.challenge`` with a ``connect``
request (optionally device-signed), and then raw request/response frames.  No compression, no
client pings, no proxy; frames are sent as text from orjson bytes and received undecoded.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, WebSocketException

from bench.device import DeviceKey

ADMIN_SCOPES = ["operator.admin", "operator.read", "operator.write"]
READ_SCOPES = ["operator.read"]
CLIENT_VERSION = "2026.9.6"
now = time.perf_counter


class ConnectRefused(Exception):
    """The gateway answered ``connect`` with an error."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.error = error

    @property
    def retryable(self) -> bool:
        return bool(self.error.get("retryable"))

    @property
    def reason(self) -> str | None:
        details = self.error.get("details") or {}
        return details.get("reason") if isinstance(details, dict) else None


CONNECT_ERRORS = (OSError, asyncio.TimeoutError, InvalidHandshake, WebSocketException, EOFError)


@dataclass
class Session:
    ws: ClientConnection
    hello: dict[str, Any]
    t_start: float
    t_open: float
    t_challenge: float
    t_hello: float
    _n: int = 0
    pending_events: list[Any] = field(default_factory=list)

    @property
    def hello_s(self) -> float:
        return self.t_hello - self.t_start

    def next_id(self) -> str:
        self._n += 1
        return f"b{self._n}"

    async def call(self, method: str, params: Any = None, timeout: float = 30.0) -> dict[str, Any]:
        """One request; returns the ``res`` frame (events seen meanwhile are kept)."""
        rid = self.next_id()
        frame: dict[str, Any] = {"type": "req", "id": rid, "method": method}
        if params is not None:
            frame["params"] = params
        await self.ws.send(orjson.dumps(frame), text=True)
        deadline = now() + timeout
        while True:
            left = deadline - now()
            if left <= 0:
                raise TimeoutError(f"{method} timed out")
            msg = orjson.loads(await asyncio.wait_for(self.ws.recv(decode=False), left))
            if msg.get("type") == "res" and msg.get("id") == rid:
                return msg
            if len(self.pending_events) < 10_000:
                self.pending_events.append(msg)

    async def close(self) -> None:
        try:
            await self.ws.close()
        except CONNECT_ERRORS:
            pass


def connect_params(token: str, client_id: str = "cli", mode: str = "cli",
                   scopes: list[str] | None = None) -> dict[str, Any]:
    return {
        "minProtocol": 4, "maxProtocol": 4,
        "client": {"id": client_id, "version": CLIENT_VERSION, "platform": "linux",
                   "mode": mode, "instanceId": str(uuid.uuid4())},
        "role": "operator",
        "scopes": list(ADMIN_SCOPES if scopes is None else scopes),
        "caps": [],
        "auth": {"token": token},
    }


async def open_session(url: str, token: str, *, scopes: list[str] | None = None,
                       client_id: str = "cli", mode: str = "cli",
                       device: DeviceKey | None = None, timeout: float = 30.0,
                       marks: dict[str, float] | None = None) -> Session:
    """Socket → challenge → connect → hello-ok.  ``marks['open']`` is set once the upgrade
    succeeded (so a caller can tell 'port not ready' from 'connect refused')."""
    t0 = now()
    ws = await connect(url, compression=None, ping_interval=None, proxy=None, max_size=None,
                       open_timeout=timeout, close_timeout=5, user_agent_header=None)
    t_open = now()
    if marks is not None:
        marks["open"] = t_open
    try:
        challenge = orjson.loads(await asyncio.wait_for(ws.recv(decode=False), timeout))
        t_ch = now()
        if challenge.get("event") != "connect.challenge":
            raise ConnectRefused({"code": "BENCH", "message": f"no challenge: {challenge}"})
        params = connect_params(token, client_id, mode, scopes)
        if device is not None:
            ch = challenge["payload"]
            params["device"] = device.sign_connect(params, ch["nonce"], int(ch["ts"]))
        await ws.send(orjson.dumps({"type": "req", "id": "c1", "method": "connect",
                                    "params": params}), text=True)
        while True:
            msg = orjson.loads(await asyncio.wait_for(ws.recv(decode=False), timeout))
            if msg.get("type") == "res" and msg.get("id") == "c1":
                break
        if not msg.get("ok"):
            raise ConnectRefused(msg.get("error") or {})
        return Session(ws, msg.get("payload") or {}, t0, t_open, t_ch, now())
    except BaseException:
        ws.transport.abort() if ws.transport else None
        raise


async def open_many(url: str, token: str, n: int, concurrency: int, *,
                    scopes: list[str] | None = None, timeout: float = 60.0) -> list[Session]:
    """``n`` sessions, ``concurrency`` handshakes at a time (under the pre-auth cap of 32)."""
    sessions: list[Session] = []
    it = iter(range(n))
    deadline = now() + timeout

    async def worker() -> None:
        for _ in it:
            if now() > deadline:
                raise TimeoutError("open_many timed out")
            sessions.append(await open_session(url, token, scopes=scopes))

    try:
        await asyncio.gather(*(worker() for _ in range(min(concurrency, n))))
    except BaseException:
        await close_all(sessions)
        raise
    return sessions


async def close_all(sessions: list[Session], concurrency: int = 64) -> None:
    sem = asyncio.Semaphore(concurrency)

    async def one(s: Session) -> None:
        async with sem:
            try:
                await asyncio.wait_for(s.close(), 10)
            except (TimeoutError, *CONNECT_ERRORS):
                s.ws.transport.abort() if s.ws.transport else None

    await asyncio.gather(*(one(s) for s in sessions))
