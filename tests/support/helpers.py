"""Test harness: a gateway on a MemoryReactorClock and in-memory WebSocket clients.

``WSClient`` drives a real ``GatewayProtocol`` over a ``StringTransport``: it writes the HTTP
upgrade and masked client frames into the protocol and parses the server's frames out of the
transport, so tests see exactly the bytes a socket would carry, with no sockets and no sleeps.
"""

from __future__ import annotations

import base64
import itertools
import os
import struct
from pathlib import Path
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from openclaw_tw import _json
from openclaw_tw.app import Components, build
from openclaw_tw.config import settings as config
from openclaw_tw.hub.gateway import Gateway
from openclaw_tw.protocol.websocket import GatewayFactory, GatewayProtocol
from openclaw_tw.sessions.store import SessionRow
from tests.support.tmp import scratch_dir


class _Transport(StringTransport):
    """StringTransport that tolerates Autobahn unregistering a producer it never registered."""

    def unregisterProducer(self) -> None:
        self.producer = None
        self.streaming = None


TOKEN = "secret123"
_ids = itertools.count(1)


def make_settings(state_dir: Path | None = None, **options: Any) -> config.GatewaySettings:
    state = state_dir or scratch_dir("openclaw-test-")
    opts: dict[str, Any] = {"state-dir": str(state), "token": TOKEN, "port": "0"}
    opts.update({k.replace("_", "-"): v for k, v in options.items()})
    return config.resolve(opts, env={"HOME": str(state)})


def make_app(**options: Any) -> tuple[Components, MemoryReactorClock]:
    """Every component on a MemoryReactorClock (SQLite inline), the hub and runtime started."""
    clock = MemoryReactorClock()
    clock.advance(1_795_000_000)  # a realistic epoch, so ts fields look like the real ones
    app = build(make_settings(**options), clock)
    app.hub.startService()
    app.runtime.startService()
    return app, clock


def make_gateway(**options: Any) -> tuple[Gateway, MemoryReactorClock]:
    """``make_app`` for tests that only talk to the hub."""
    app, clock = make_app(**options)
    return app.hub, clock


def ws_frame(payload: bytes, opcode: int = 1, fin: bool = True, mask: bytes = b"\x00" * 4) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if mask != b"\x00" * 4 \
        else payload
    return head + mask + masked


class Closed:
    def __init__(self, code: int | None, reason: str) -> None:
        self.code, self.reason = code, reason

    def __repr__(self) -> str:
        return f"Closed({self.code}, {self.reason!r})"


class WSClient:
    """One in-memory WebSocket client connected to the gateway's factory."""

    def __init__(self, gw: Gateway, ip: str = "127.0.0.1", headers: dict[str, str] | None = None,
                 factory: GatewayFactory | None = None) -> None:
        self.gw = gw
        self.factory = factory or GatewayFactory(gw)
        self.transport = _Transport(peerAddress=IPv4Address("TCP", ip, 40000 + next(_ids)))
        self.proto: GatewayProtocol = self.factory.buildProtocol(self.transport.getPeer())
        self.proto.makeConnection(self.transport)
        self._buf = b""
        self.received: list[Any] = []  # decoded JSON frames, Closed(...) for a close frame
        self.pings = 0
        self.lost = False
        key = base64.b64encode(os.urandom(16)).decode()
        hdrs = {"Host": "127.0.0.1:18789", "Upgrade": "websocket", "Connection": "Upgrade",
                "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13"}
        hdrs.update(headers or {})
        request = "GET / HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        self.proto.dataReceived(request.encode())
        head = self.transport.value()
        end = head.index(b"\r\n\r\n") + 4
        self.status_line = head[: head.index(b"\r\n")].decode()
        self.transport.clear()
        self.refusal: bytes | None = None  # the whole HTTP answer to a refused upgrade
        if " 101 " not in self.status_line:
            self.refusal, self.lost = head, True
            return
        self._buf = head[end:]
        self._parse()

    # -- sending -------------------------------------------------------------------------------

    def send_raw(self, payload: bytes, opcode: int = 1) -> None:
        if self.lost:
            return
        self.proto.dataReceived(ws_frame(payload, opcode, mask=b"\x01\x02\x03\x04"))
        self.flush()

    def send(self, obj: Any) -> None:
        self.send_raw(_json.dumps(obj))

    def request(self, method: str, params: Any = None, req_id: str | None = None) -> str:
        req_id = req_id or f"r{next(_ids)}"
        frame: dict[str, Any] = {"type": "req", "id": req_id, "method": method}
        if params is not None:
            frame["params"] = params
        self.send(frame)
        return req_id

    def close_from_client(self, code: int | None = None) -> None:
        self.send_raw(b"" if code is None else struct.pack("!H", code), opcode=8)

    # -- receiving -----------------------------------------------------------------------------

    def flush(self) -> None:
        data = self.transport.value()
        if data:
            self.transport.clear()
            self._buf += data
            self._parse()
        if self.transport.disconnecting and not self.lost:
            self.lost = True
            from twisted.internet.error import ConnectionDone
            from twisted.python.failure import Failure

            self.proto.connectionLost(Failure(ConnectionDone()))

    def _parse(self) -> None:
        while len(self._buf) >= 2:
            b0, b1 = self._buf[0], self._buf[1]
            n, pos = b1 & 0x7F, 2
            if n == 126:
                if len(self._buf) < 4:
                    return
                n, pos = struct.unpack("!H", self._buf[2:4])[0], 4
            elif n == 127:
                if len(self._buf) < 10:
                    return
                n, pos = struct.unpack("!Q", self._buf[2:10])[0], 10
            if len(self._buf) < pos + n:
                return
            payload, self._buf = self._buf[pos : pos + n], self._buf[pos + n :]
            opcode = b0 & 0x0F
            if opcode == 1:
                self.received.append(_json.loads(payload))
            elif opcode == 8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                self.received.append(Closed(code, payload[2:].decode("utf-8", "replace")))
            elif opcode == 9:
                self.pings += 1

    def pop(self) -> list[Any]:
        self.flush()
        out, self.received = self.received, []
        return out

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        return [f for f in self.received if isinstance(f, dict) and f.get("type") == "event"
                and (name is None or f["event"] == name)]

    def response(self, req_id: str) -> dict[str, Any] | None:
        self.flush()
        for f in self.received:
            if isinstance(f, dict) and f.get("type") == "res" and f.get("id") == req_id:
                return f
        return None

    def closed(self) -> Closed | None:
        self.flush()
        for f in self.received:
            if isinstance(f, Closed):
                return f
        return None

    # -- the handshake -------------------------------------------------------------------------

    def challenge(self) -> dict[str, Any]:
        return self.events("connect.challenge")[0]

    def connect(self, token: str | None = TOKEN, client_id: str = "cli", mode: str = "cli",
                scopes: list[str] | None = None, **extra: Any) -> dict[str, Any] | None:
        params: dict[str, Any] = {
            "minProtocol": 4, "maxProtocol": 4,
            "client": {"id": client_id, "version": "2026.9.6", "platform": "linux",
                       "mode": mode},
            "role": "operator",
            "scopes": ["operator.read"] if scopes is None else scopes,
            "caps": [],
        }
        if token is not None:
            params["auth"] = {"token": token}
        params.update(extra)
        req_id = self.request("connect", params)
        return self.response(req_id)


def hello(gw: Gateway, scopes: list[str] | None = None, **kw: Any) -> WSClient:
    """A client through the handshake; asserts it got hello-ok."""
    client = WSClient(gw)
    res = client.connect(scopes=scopes, **kw)
    assert res is not None and res["ok"], res
    client.pop()
    return client


def call(client: Any, method: str, params: Any = None) -> dict[str, Any]:
    """One request on an in-memory client; its response frame."""
    res = client.response(client.request(method, params))
    assert res is not None, f"no response to {method}"
    return res


def ok(client: Any, method: str, params: Any = None) -> Any:
    """One request that must succeed; its payload."""
    res = call(client, method, params)
    assert res["ok"], res
    return res["payload"]


def open_client(gw: Gateway, **kw: Any) -> WSClient:
    """A fresh socket with its challenge already consumed."""
    c = WSClient(gw, **kw)
    frames = c.pop()
    assert [f["event"] for f in frames] == ["connect.challenge"], frames
    return c


def send_connect(gw: Gateway, p: Any, **kw: Any) -> tuple[WSClient, list[Any]]:
    """Send one connect (id ``c1``) and return everything the server sent after the challenge."""
    c = open_client(gw, **kw)
    c.request("connect", p, req_id="c1")
    return c, c.pop()


def hello_ok(gw: Gateway, p: dict[str, Any], **kw: Any) -> tuple[WSClient, dict[str, Any]]:
    """``send_connect``, asserting it got hello-ok; (the client, the hello-ok payload)."""
    c, frames = send_connect(gw, p, **kw)
    res = [f for f in frames if isinstance(f, dict) and f.get("id") == "c1"]
    assert len(res) == 1 and res[0]["ok"], frames
    return c, res[0]["payload"]



def resolved(d: Deferred[Any]) -> Any:
    """The result of a Deferred that already fired (the store's SQLite is inline in tests)."""
    out: list[Any] = []
    d.addBoth(out.append)
    if not out:
        raise AssertionError(f"{d!r} has not fired")
    if isinstance(out[0], Failure):
        out[0].raiseException()
    return out[0]


def stored_row(app: Components, key: str) -> SessionRow | None:
    """The session row of ``key`` (the live object when one is in use)."""
    row: SessionRow | None = resolved(app.sessions.get(key))
    return row


def stored_keys(app: Components) -> list[str]:
    """Every stored session's key, in creation order."""
    return app.sessions.db.run_now(
        lambda conn: [k for (k,) in conn.execute("SELECT key FROM sessions ORDER BY rowid")])


def stored_rows(app: Components) -> list[SessionRow]:
    return [row for key in stored_keys(app) if (row := stored_row(app, key)) is not None]
