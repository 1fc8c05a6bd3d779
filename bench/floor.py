"""The floor under a gateway handshake: what the same client loop costs against servers that do
nothing but the handshake, so the handshake figures can be read against what the stack allows.

``python -m bench.floor serve KIND PORT`` runs one of two bare servers; ``python -m bench --floor``
measures them beside ours (``handshake`` and ``startup``'s idle RSS) and prints ``table()``.

- ``floor-epoll``: plain ``select.epoll`` and sockets, no framework.
- ``floor-twisted``: a ``twisted.internet.protocol.Protocol`` on the epoll reactor, after
  importing what the gateway is built on (twisted.web, Autobahn, pyOpenSSL, cryptography,
  sqlite3, orjson), so its idle RSS is the import floor too; Autobahn is loaded, not used.
- ``floor-autobahn``: the same on Autobahn's ``WebSocketServerProtocol`` (its own upgrade
  parsing, framing, UTF-8 check and close handshake), as the gateway uses it.

Both do the least a v4 handshake needs: the upgrade (Sec-WebSocket-Accept), ``connect.challenge``
with a fresh nonce, ``connect`` read and the token compared, the Ed25519 signature verified over
the v3 payload when a device block is sent (the one cryptographic step a device connect cannot
skip), a ``hello-ok``, and the close handshake. No schemas, no scopes, no logs, no limits:
a measuring stick, never a server to run.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import time
from typing import Any

import orjson

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
KINDS = ("epoll", "twisted", "autobahn")


def frame(payload: bytes, opcode: int = 1) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    if n < 1 << 16:
        return bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big") + payload


def unframe(buf: bytes) -> tuple[int | None, bytes, bytes]:
    """(opcode, unmasked payload, rest); opcode None while the frame is incomplete."""
    if len(buf) < 2:
        return None, b"", buf
    n, off = buf[1] & 0x7F, 2
    if n == 126:
        n, off = int.from_bytes(buf[2:4], "big"), 4
    elif n == 127:
        n, off = int.from_bytes(buf[2:10], "big"), 10
    if len(buf) < off + 4 + n:
        return None, b"", buf
    key, data = buf[off:off + 4], buf[off + 4:off + 4 + n]
    mask = int.from_bytes((key * (n // 4 + 1))[:n], "little")
    plain = (int.from_bytes(data, "little") ^ mask).to_bytes(n, "little")
    return buf[0] & 0x0F, plain, buf[off + 4 + n:]


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_KEYS: dict[str, Any] = {}


def _public_key(text: str) -> Any:
    """Decoded keys are cached by their text, as the gateway does (the verify is per connect)."""
    key = _KEYS.get(text)
    if key is None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        key = _KEYS[text] = Ed25519PublicKey.from_public_bytes(_b64url_decode(text))
    return key


class Handshake:
    """The per-connection state both servers share: bytes in, bytes to send out."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.buf = b""
        self.upgraded = False
        self.nonce = ""
        self.ts = 0

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """Returns (bytes to send, close the connection after sending)."""
        self.buf += data
        out = b""
        if not self.upgraded:
            head, sep, rest = self.buf.partition(b"\r\n\r\n")
            if not sep:
                return b"", False
            self.buf, self.upgraded = rest, True
            key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                       if line[:18].lower() == b"sec-websocket-key:")
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            self.nonce, self.ts = os.urandom(16).hex(), int(time.time() * 1000)
            challenge = orjson.dumps({"type": "event", "event": "connect.challenge",
                                      "payload": {"nonce": self.nonce, "ts": self.ts}})
            out = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
                   + frame(challenge))
        while self.buf:
            opcode, payload, self.buf = unframe(self.buf)
            if opcode is None:
                break
            if opcode == 1:
                out += frame(orjson.dumps(self._connect(orjson.loads(payload))))
            elif opcode == 8:
                return out + frame(payload[:2], 8), True
        return out, False

    def _connect(self, req: dict[str, Any]) -> dict[str, Any]:
        params = req.get("params") or {}
        auth = params.get("auth") or {}
        ok = auth.get("token") == self.token
        device = params.get("device")
        if ok and device:
            client = params.get("client") or {}
            signed = "|".join((
                "v3", device["id"], client.get("id", ""), client.get("mode", ""),
                params.get("role") or "operator", ",".join(params.get("scopes") or ()),
                str(device["signedAt"]), auth.get("token", ""), self.nonce,
                (client.get("platform") or "").strip().lower(),
                (client.get("deviceFamily") or "").strip().lower())).encode()
            try:
                _public_key(device["publicKey"]).verify(_b64url_decode(device["signature"]),
                                                        signed)
            except Exception:
                ok = False
        if not ok:
            return {"type": "res", "id": req.get("id"), "ok": False,
                    "error": {"code": "INVALID_REQUEST", "message": "unauthorized"}}
        return {"type": "res", "id": req.get("id"), "ok": True,
                "payload": {"type": "hello-ok", "protocol": 4, "server": {"version": "floor"},
                            "features": {"methods": [], "events": []}, "snapshot": {},
                            "policy": {"maxPayload": 1 << 20, "tickIntervalMs": 30000}}}


def serve_epoll(port: int, token: str) -> None:
    import select
    import socket

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(512)
    listener.setblocking(False)
    ep = select.epoll()
    ep.register(listener.fileno(), select.EPOLLIN)
    conns: dict[int, tuple[socket.socket, Handshake]] = {}
    while True:
        for fd, _ in ep.poll():
            if fd == listener.fileno():
                try:
                    sock, _ = listener.accept()
                except BlockingIOError:
                    continue
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                ep.register(sock.fileno(), select.EPOLLIN)
                conns[sock.fileno()] = (sock, Handshake(token))
                continue
            sock, hs = conns[fd]
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if data:
                out, done = hs.feed(data)
                if out:
                    sock.send(out)
                if done:
                    sock.shutdown(socket.SHUT_WR)
                continue
            ep.unregister(fd)
            sock.close()
            del conns[fd]


def serve_twisted(port: int, token: str) -> None:
    import sqlite3  # noqa: F401  (the import floor: what the gateway loads)

    import autobahn.twisted.websocket  # noqa: F401
    import cryptography.hazmat.primitives.asymmetric.ed25519  # noqa: F401
    import OpenSSL  # noqa: F401
    import twisted.web.server  # noqa: F401
    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import protocol, reactor

    class Floor(protocol.Protocol):
        def connectionMade(self) -> None:
            self.hs = Handshake(token)
            self.transport.setTcpNoDelay(True)
            self.timer = reactor.callLater(30, self.transport.abortConnection)

        def dataReceived(self, data: bytes) -> None:
            out, done = self.hs.feed(data)
            if out:
                self.transport.write(out)
            if done:
                self.transport.loseConnection()

        def connectionLost(self, reason: object = None) -> None:
            if self.timer.active():
                self.timer.cancel()

    reactor.listenTCP(port, protocol.Factory.forProtocol(Floor), backlog=512,
                      interface="127.0.0.1")
    reactor.run()


FLOORS = ("floor-autobahn", "floor-twisted", "floor-epoll")
FLOOR_FIGURES = (("handshake", "token-seq", "cpu_per_op", "token handshake, sequential: CPU"),
                 ("handshake", "token-c16", "cpu_per_op", "token handshake, 16 concurrent: CPU"),
                 ("handshake", "device-seq", "cpu_per_op", "device-signed, sequential: CPU"),
                 ("handshake", "device-c16", "cpu_per_op", "device-signed, 16 concurrent: CPU"),
                 ("idle", "fresh", "rss_root", "idle RSS"))


def _fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "—"
    return f"{v / 2**20:.1f} MiB" if unit == "MiB" else f"{v * 1e3:.2f} ms"


def table(rows: list[dict[str, Any]]) -> str:
    """Ours beside the two floors (medians over repetitions); empty without ``--floor``."""
    import statistics

    if not any(r.get("server") in FLOORS for r in rows):
        return ""
    servers = ("ours", *FLOORS)
    lines = ["", "### The floor under the handshake (`--floor`, bench/floor.py)", "",
             "| figure | ours | floor-autobahn | floor-twisted | floor-epoll "
             "| ours − floor-twisted |", "|---|---|---|---|---|---|"]
    for scenario, variant, key, label in FLOOR_FIGURES:
        med: dict[str, float | None] = {}
        for s in servers:
            vals = [r[key] for r in rows if r.get("scenario") == scenario and
                    r.get("variant") == variant and r.get("server") == s and
                    isinstance(r.get(key), (int, float))]
            med[s] = statistics.median(vals) if vals else None
        unit = "MiB" if key == "rss_root" else "ms"
        ours, twisted = med["ours"], med["floor-twisted"]
        gap = _fmt(ours - twisted, unit) if ours is not None and twisted is not None else "—"
        lines.append(f"| {label} | {' | '.join(_fmt(med[s], unit) for s in servers)} | {gap} |")
    return "\n".join(lines) + "\n"


def serve_autobahn(port: int, token: str) -> None:
    import sqlite3  # noqa: F401

    import cryptography.hazmat.primitives.asymmetric.ed25519  # noqa: F401
    import OpenSSL  # noqa: F401
    import twisted.web.server  # noqa: F401
    from twisted.internet import epollreactor

    epollreactor.install()
    from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
    from twisted.internet import reactor

    class Floor(WebSocketServerProtocol):
        def onOpen(self) -> None:
            self.hs = Handshake(token)
            self.hs.nonce, self.hs.ts = os.urandom(16).hex(), int(time.time() * 1000)
            self.sendMessage(orjson.dumps({"type": "event", "event": "connect.challenge",
                                           "payload": {"nonce": self.hs.nonce,
                                                       "ts": self.hs.ts}}))

        def onMessage(self, payload: bytes, isBinary: bool) -> None:
            self.sendMessage(orjson.dumps(self.hs._connect(orjson.loads(payload))))

    factory = WebSocketServerFactory(f"ws://127.0.0.1:{port}")
    factory.protocol = Floor
    factory.setProtocolOptions(openHandshakeTimeout=30, autoPingInterval=0)
    reactor.listenTCP(port, factory, backlog=512, interface="127.0.0.1")
    reactor.run()


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[0] != "serve" or argv[1] not in KINDS:
        print("usage: python -m bench.floor serve {epoll|twisted|autobahn} PORT TOKEN", file=sys.stderr)
        return 2
    serve = {"epoll": serve_epoll, "twisted": serve_twisted, "autobahn": serve_autobahn}
    serve[argv[1]](int(argv[2]), argv[3])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
