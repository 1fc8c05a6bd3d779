"""Resource-bound probes for issue #21 part B, against a gateway that is already running.

``python -m bench.resources SCENARIO --port P --token T --pid PID [options]`` (loopback only)

- ``hello-size``: an admin sends ``--events`` system-events of ``--text-bytes`` each (distinct
  instanceIds); then a fresh client connects: hello-ok bytes and handshake time.
- ``slowloris``: ``--sockets`` TCP sockets send a partial HTTP request and trickle a header
  line every ``--trickle`` s; when (and with what status) the gateway closes each.
- ``burst``: ``--clients`` admin clients (16 handshakes at a time) × ``--requests`` mixed
  requests (every ``--chat-every``-th a ``chat.send``, whose events are broadcast to all of them); server
  RSS idle, peak, and at 2/10/30 s after every client closed.
- ``stalled``: ``--sockets`` raw WebSocket clients complete the handshake and never read
  again (4 KiB receive buffer); an admin fills presence and sends ``--events`` more
  system-events (each a presence broadcast to every reader): server RSS peak, and how many
  stalled sockets the gateway closed and with which code.

Every loop is bounded in count and by ``--deadline``; the result is one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import select
import socket
import struct
import sys
import time
from typing import Any

import orjson

from bench import procstat
from bench.client import ADMIN_SCOPES, close_all, connect_params, open_many, open_session

MiB = 1024 * 1024


def rss_mib(pid: int) -> float:
    return round(procstat.rss_bytes(pid) / MiB, 1)


async def hello_size(a: argparse.Namespace) -> dict[str, Any]:
    admin = await open_session(a.url, a.token)
    answers: dict[str, int] = {}
    text = "x" * a.text_bytes
    for i in range(a.events):
        res = await admin.call("system-event", {"text": text, "instanceId": f"probe-{i}"})
        key = "ok" if res.get("ok") else res["error"]["code"]
        answers[key] = answers.get(key, 0) + 1
    error = None if answers.get("ok") else res.get("error")
    await admin.close()
    times, sizes = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        s = await open_session(a.url, a.token)
        times.append(round((time.perf_counter() - t0) * 1000, 1))
        sizes.append(len(orjson.dumps(s.hello)))
        await s.close()
    return {"answers": answers, "error_message_len": len(error["message"]) if error else None,
            "hello_ok_bytes": sizes[-1], "handshake_ms": times,
            "presence_entries": len(s.hello.get("snapshot", {}).get("presence", []))}


def slowloris(a: argparse.Namespace) -> dict[str, Any]:
    socks: dict[socket.socket, dict[str, Any]] = {}
    t0 = time.monotonic()
    for i in range(a.sockets):
        s = socket.create_connection(("127.0.0.1", a.port), timeout=5)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        socks[s] = {"i": i, "next": t0 + a.trickle, "status": None, "closed_s": None}
    refused = 0
    while time.monotonic() - t0 < a.deadline:
        live = [s for s, st in socks.items() if st["closed_s"] is None]
        if not live:
            break
        readable, _, _ = select.select(live, [], [], 0.2)
        now = time.monotonic()
        for s in readable:
            st = socks[s]
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if data and st["status"] is None:
                st["status"] = data.split(b"\r\n", 1)[0].decode("latin-1")
            if not data:
                st["closed_s"] = round(now - t0, 1)
        for s in live:
            st = socks[s]
            if st["closed_s"] is None and now >= st["next"]:
                st["next"] = now + a.trickle
                try:
                    s.sendall(b"X-Trickle: 1\r\n")
                except OSError:
                    refused += 1
                    st["closed_s"] = round(now - t0, 1)
    closed = [st["closed_s"] for st in socks.values() if st["closed_s"] is not None]
    statuses: dict[str, int] = {}
    for st in socks.values():
        statuses[str(st["status"])] = statuses.get(str(st["status"]), 0) + 1
    for s in socks:
        s.close()
    return {"sockets": a.sockets, "closed": len(closed), "open_at_deadline": a.sockets - len(closed),
            "first_close_s": min(closed) if closed else None,
            "last_close_s": max(closed) if closed else None, "statuses": statuses,
            "deadline_s": a.deadline}


async def burst(a: argparse.Namespace) -> dict[str, Any]:
    pid = a.pid
    await asyncio.sleep(3)
    idle = rss_mib(pid)
    peak = idle
    stop = asyncio.Event()

    async def sampler() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, rss_mib(pid))
            await asyncio.sleep(0.25)

    sampling = asyncio.create_task(sampler())
    t0 = time.perf_counter()
    sessions = await open_many(a.url, a.token, a.clients, 16, scopes=ADMIN_SCOPES,
                               timeout=a.deadline)
    mix = ["health", "last-heartbeat", "system-presence", "status", "sessions.list",
           "last-heartbeat", "health", "system-presence", "last-heartbeat"]
    done = asyncio.Event()
    counts = {"ok": 0, "error": 0}

    async def call(s: Any, method: str, params: Any) -> dict[str, Any]:
        # Lighter than Session.call: broadcast events are skipped unparsed, so the one client
        # process keeps up with 200 sockets' worth of chat events.
        rid = s.next_id()
        await s.ws.send(orjson.dumps({"type": "req", "id": rid, "method": method,
                                      "params": params}), text=True)
        marker = f'"id":"{rid}"'.encode()
        while True:
            left = a.deadline - (time.perf_counter() - t0)
            if left <= 0:
                raise TimeoutError(f"{method} timed out")
            msg = await asyncio.wait_for(s.ws.recv(decode=False), left)
            if msg.startswith(b'{"type":"res"') and marker in msg:
                return dict(orjson.loads(msg))

    async def client(i: int, s: Any) -> None:
        for n in range(a.requests):
            if time.perf_counter() - t0 > a.deadline:
                break
            if n % a.chat_every == a.chat_every - 1:
                res = await call(s, "chat.send", {"sessionKey": f"burst-{i}",
                                                  "message": f"turn {n} of client {i}",
                                                  "idempotencyKey": f"b-{i}-{n}"})
            else:
                res = await call(s, mix[n % len(mix)], {})
            counts["ok" if res.get("ok") else "error"] += 1
        # keep reading broadcasts until every client is done (a live client drains)
        while not done.is_set() and time.perf_counter() - t0 < a.deadline:
            try:
                await asyncio.wait_for(s.ws.recv(decode=False), 0.5)
            except TimeoutError:
                pass
            except Exception:
                return

    workers = [asyncio.create_task(client(i, s)) for i, s in enumerate(sessions)]
    while sum(1 for w in workers if not w.done()) and time.perf_counter() - t0 < a.deadline:
        finished = sum(1 for w in workers if w.done())
        if counts["ok"] + counts["error"] >= a.clients * a.requests or finished == len(workers):
            break
        await asyncio.sleep(0.2)
    done.set()
    failures: dict[str, int] = {}
    for outcome in await asyncio.gather(*workers, return_exceptions=True):
        if isinstance(outcome, BaseException):
            name = f"{type(outcome).__name__}: {str(outcome)[:80]}"
            failures[name] = failures.get(name, 0) + 1
    loaded = rss_mib(pid)
    await close_all(sessions)
    took = round(time.perf_counter() - t0, 1)
    after: dict[str, float] = {}
    closed_at = time.perf_counter()
    for mark in (2, 10, 30):
        await asyncio.sleep(max(0.0, mark - (time.perf_counter() - closed_at)))
        after[f"{mark}s"] = rss_mib(pid)
    stop.set()
    await sampling
    return {"clients": a.clients, "requests": counts, "failures": failures, "seconds": took, "rss_idle_mib": idle,
            "rss_peak_mib": peak, "rss_loaded_mib": loaded, "rss_after_close_mib": after}


def _ws_open_raw(port: int, token: str) -> socket.socket:
    """A raw WebSocket client through hello-ok that will never read again."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(30)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    buf = buf[buf.index(b"\r\n\r\n") + 4:]
    params = connect_params(token, scopes=["operator.read"])
    payload = orjson.dumps({"type": "req", "id": "c1", "method": "connect", "params": params})
    mask = os.urandom(4)
    head = bytes([0x81, 0x80 | 126]) + struct.pack("!H", len(payload)) if len(payload) > 125 \
        else bytes([0x81, 0x80 | len(payload)])
    s.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    while True:  # frames until the connect response
        frame, buf = _read_frame(s, buf)
        if frame[0] == 1 and b'"id":"c1"' in frame[1]:
            if b'"ok":true' not in frame[1][:64]:
                raise RuntimeError(frame[1][:200])
            return s


def _read_frame(s: socket.socket, buf: bytes) -> tuple[tuple[int, bytes], bytes]:
    def need(n: int) -> None:
        nonlocal buf
        while len(buf) < n:
            chunk = s.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk

    need(2)
    opcode, n, pos = buf[0] & 0x0F, buf[1] & 0x7F, 2
    if n == 126:
        need(4)
        n, pos = struct.unpack("!H", buf[2:4])[0], 4
    elif n == 127:
        need(10)
        n, pos = struct.unpack("!Q", buf[2:10])[0], 10
    need(pos + n)
    return (opcode, buf[pos:pos + n]), buf[pos + n:]


def _drain(s: socket.socket, limit_s: float) -> str:
    """Read a stalled socket to its end: its close frame's code, or how it ended."""
    s.settimeout(limit_s)
    buf = b""
    try:
        while True:
            (opcode, data), buf = _read_frame(s, buf)
            if opcode == 8:
                code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
                return f"close {code} {data[2:].decode('utf-8', 'replace')}"
    except (ConnectionError, OSError) as e:
        return f"ended ({type(e).__name__})"


async def stalled(a: argparse.Namespace) -> dict[str, Any]:
    pid = a.pid
    admin = await open_session(a.url, a.token)
    text = "p" * 2000
    for i in range(120):  # presence of ~256 KB: every broadcast below is that large
        await admin.call("system-event", {"text": text, "instanceId": f"fill-{i}"})
    idle = rss_mib(pid)
    socks = [_ws_open_raw(a.port, a.token) for _ in range(a.sockets)]
    peak = idle
    t0 = time.perf_counter()
    sent = 0
    for i in range(a.events):
        if time.perf_counter() - t0 > a.deadline:
            break
        await admin.call("system-event", {"text": text, "instanceId": f"fill-{i % 120}"})
        sent += 1
        if i % 10 == 0:
            peak = max(peak, rss_mib(pid))
    await asyncio.sleep(1)
    peak = max(peak, rss_mib(pid))
    held = rss_mib(pid)
    outcomes: dict[str, int] = {}
    for s in socks:
        how = await asyncio.to_thread(_drain, s, 5.0)
        outcomes[how] = outcomes.get(how, 0) + 1
        s.close()
    await admin.close()
    await asyncio.sleep(3)
    return {"stalled_sockets": a.sockets, "events_sent": sent, "rss_before_mib": idle,
            "rss_peak_mib": peak, "rss_held_mib": held, "rss_after_mib": rss_mib(pid),
            "outcomes": outcomes}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.resources", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", choices=["hello-size", "slowloris", "burst", "stalled"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--pid", type=int, default=0, help="the gateway's pid (RSS)")
    p.add_argument("--events", type=int, default=5)
    p.add_argument("--text-bytes", type=int, default=1024 * 1024)
    p.add_argument("--sockets", type=int, default=50)
    p.add_argument("--trickle", type=float, default=5.0)
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--requests", type=int, default=50)
    p.add_argument("--chat-every", type=int, default=10, help="burst: every Nth is chat.send")
    p.add_argument("--deadline", type=float, default=120.0)
    a = p.parse_args(argv)
    a.url = f"ws://127.0.0.1:{a.port}/"
    if a.scenario == "slowloris":
        result = slowloris(a)
    else:
        result = asyncio.run({"hello-size": hello_size, "burst": burst,
                              "stalled": stalled}[a.scenario](a))
    sys.stdout.write(orjson.dumps({"scenario": a.scenario, **result}).decode() + "\n")


if __name__ == "__main__":
    main()
