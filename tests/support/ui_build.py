"""A small fake Control UI build and raw HTTP against the real ``Site`` (no StubTreq: it would
normalize the ``..`` and ``%2e`` paths the security tests send).

``make_build(dir)`` writes, under ``dir``:

- ``pkg/`` -- an installed ``openclaw`` package: ``package.json``, ``openclaw.mjs`` and
  ``dist/control-ui/`` (the build: ``index.html`` with an inline script and a build id,
  ``assets/app-abc123.js`` with ``.br``/``.gz`` siblings, ``assets/big-def456.js`` (large
  enough to stream once a test lowers the threshold), ``sw.js``, ``favicon.svg``, a symlink inside the build and two out of it, a hard
  link to a file outside);
- ``secret.txt`` and ``outside/`` -- what no request may read.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import attrs
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

SECRET = b"TOP-SECRET-do-not-serve"
BUILD_ID = "9.9.9-test-" + "0123456789abcdef" * 4
INLINE_SCRIPT = "globalThis.__boot = 1;"
INDEX = f"""<!doctype html>
<html {'data-openclaw-control-ui-build-id'}="{BUILD_ID}" lang="en">
  <head>
    <title>OpenClaw Control</title>
    <link rel="icon" type="image/svg+xml" href="./favicon.svg" />
    <link rel="manifest" href="./manifest.webmanifest" />
    <script>{INLINE_SCRIPT}</script>
    <script type="module" crossorigin src="./assets/app-abc123.js"></script>
    <link rel="stylesheet" crossorigin href="./assets/app-abc123.css">
  </head>
  <body><openclaw-app></openclaw-app></body>
</html>
"""
APP_JS = b"export const app = 'identity';\n" * 20
APP_BR = b"\x8b\x02\x80fake-brotli-bytes\x03"  # served as-is; never decoded by the gateway
BIG_SIZE = 300 * 1024 + 123  # streamed when the test lowers ui_build.STREAM_OVER


@attrs.frozen
class FakeBuild:
    base: Path       # the test's directory
    package: Path    # <base>/pkg: the openclaw package
    root: Path       # <base>/pkg/dist/control-ui: the build
    big: bytes       # assets/big-def456.js


def make_build(base: Path, version: str = "2026.9.6") -> FakeBuild:
    package = base / "pkg"
    root = package / "dist" / "control-ui"
    (root / "assets").mkdir(parents=True)
    (package / "package.json").write_text(json.dumps({"name": "openclaw", "version": version}))
    (package / "openclaw.mjs").write_text("#!/usr/bin/env node\n")
    (package / "openclaw.mjs").chmod(0o755)
    (root / "index.html").write_text(INDEX)
    (root / "assets" / "app-abc123.js").write_bytes(APP_JS)
    (root / "assets" / "app-abc123.js.br").write_bytes(APP_BR)
    (root / "assets" / "app-abc123.js.gz").write_bytes(gzip.compress(APP_JS, mtime=0))
    (root / "assets" / "app-abc123.css").write_text("body{}\n")
    big = bytes(range(256)) * (BIG_SIZE // 256) + b"x" * (BIG_SIZE % 256)
    (root / "assets" / "big-def456.js").write_bytes(big)
    (root / "sw.js").write_text("self.addEventListener('fetch', () => {});\n")
    (root / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>\n")
    (root / "manifest.webmanifest").write_text("{}\n")
    (base / "secret.txt").write_bytes(SECRET)
    (base / "outside").mkdir()
    (base / "outside" / "secret.txt").write_bytes(SECRET)
    (base / "outside" / "linked.js").write_bytes(SECRET)
    os.symlink(base / "secret.txt", root / "leak.txt")            # a file out of the root
    os.symlink(base / "outside", root / "leakdir")                 # a directory out of it
    os.symlink(root / "assets" / "app-abc123.js", root / "alias.js")  # inside: fine
    os.link(base / "outside" / "linked.js", root / "hard.js")      # a hard link
    return FakeBuild(base, package, root, big)


@attrs.frozen
class RawReply:
    status: int
    reason: str
    headers: dict[str, list[str]]  # lower-case names
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


def raw_request(site: Any, method: str, target: str | bytes,
                headers: dict[str, str] | None = None, peer: str = "127.0.0.1",
                clock: Any = None) -> RawReply:
    """Send one request, exactly as written, through ``site``; the whole answer (advancing
    ``clock``, when given, until one comes: an auth failure is answered after a delay)."""
    proto = site.buildProtocol(IPv4Address("TCP", peer, 40000))
    transport = StringTransport(peerAddress=IPv4Address("TCP", peer, 40001),
                                hostAddress=IPv4Address("TCP", "127.0.0.1", 18789))
    proto.makeConnection(transport)
    hdrs = {"Host": "127.0.0.1:18789", "Connection": "close"}
    hdrs.update(headers or {})
    line = target if isinstance(target, bytes) else target.encode("latin-1")
    raw = method.encode() + b" " + line + b" HTTP/1.1\r\n" + b"".join(
        f"{k}: {v}\r\n".encode("latin-1") for k, v in hdrs.items()) + b"\r\n"
    proto.dataReceived(raw)
    for _ in range(100):
        if transport.value() or clock is None:
            break
        clock.advance(0.1)
    data = transport.value()
    proto.connectionLost(Failure(ConnectionDone()))
    return parse_reply(data, head_only=method == "HEAD")


def parse_reply(data: bytes, head_only: bool = False) -> RawReply:
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    _, status, reason = (lines[0].split(" ", 2) + [""])[:3]
    headers: dict[str, list[str]] = {}
    for ln in lines[1:]:
        name, _, value = ln.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    if head_only:
        return RawReply(int(status), reason, headers, rest)
    if "chunked" in (headers.get("transfer-encoding") or [""])[0]:
        body, buf = b"", rest
        while buf:
            size_line, _, buf = buf.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            body, buf = body + buf[:size], buf[size + 2:]
        rest = body
    elif "content-length" in headers:
        rest = rest[: int(headers["content-length"][0])]
    return RawReply(int(status), reason, headers, rest)
