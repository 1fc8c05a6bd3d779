"""In-memory harness for the HTTP API: a gateway on a MemoryReactorClock with a config file,
``StubTreq`` over ``GatewayRoot`` (requests arrive from 127.0.0.1, a loopback peer), SSE
parsing, and a provider spy that records what the runtime asks the model."""

from __future__ import annotations

import json
from typing import Any

from treq.testing import StubTreq
from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.agent.models import ModelRequest, ModelResult, ProviderError
from openclaw_tw.web.root import GatewayRoot
from tests.support.helpers import TOKEN, make_app
from tests.support.tmp import scratch_dir

BASE = "http://127.0.0.1:18789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ENABLED = {"gateway": {"http": {"endpoints": {"chatCompletions": {"enabled": True},
                                              "responses": {"enabled": True}}}}}
# hooks on (with their token) and a tools policy: the /hooks and /tools/invoke tests
HOOK_TOKEN = "hook-secret"
HOOKS = {"hooks": {"enabled": True, "token": HOOK_TOKEN},
         "gateway": {"tools": {"allow": ["cron"], "deny": ["sessions_list"]}}}
BEARER = {"Authorization": f"Bearer {HOOK_TOKEN}"}


def write_config(config: dict[str, Any]) -> str:
    path = scratch_dir("openclaw-http-") / "openclaw.json"
    path.write_text(json.dumps(config))
    return str(path)


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class Reply:
    def __init__(self, code: int, headers: Any, body: bytes) -> None:
        self.code, self.headers, self.body = code, headers, body

    def header(self, name: str) -> str | None:
        values = self.headers.getRawHeaders(name)
        return values[0] if values else None

    def json(self) -> Any:
        return json.loads(self.body)

    def sse(self) -> list[tuple[str | None, str]]:
        """(event name or None, data) per SSE frame."""
        out = []
        for frame in self.body.decode().split("\n\n"):
            if not frame.strip():
                continue
            event, data = None, []
            for line in frame.split("\n"):
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data.append(line[6:])
            out.append((event, "\n".join(data)))
        return out

    def __repr__(self) -> str:
        return f"Reply({self.code}, {self.body[:300]!r})"


class SpyProvider:
    """Wraps a provider: records every ModelRequest; ``fail`` makes the next calls fail."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.id, self.api = inner.id, inner.api
        self.requests: list[ModelRequest] = []
        self.fail: ProviderError | None = None
        self.hold = False  # answer nothing until cancelled
        self.cancelled = 0

    def stream(self, request: ModelRequest, on_text: Any, on_tool: Any) -> Deferred[ModelResult]:
        self.requests.append(request)
        if self.fail is not None:
            d: Deferred[ModelResult] = Deferred()
            d.errback(self.fail)
            return d
        if self.hold:
            def cancel(_: Any) -> None:
                self.cancelled += 1
            on_text("partial ")
            return Deferred(cancel)
        return self.inner.stream(request, on_text, on_tool)


class HttpCase(SynchronousTestCase):
    config: dict[str, Any] = ENABLED

    def setUp(self) -> None:
        self.app, self.clock = make_app(config=write_config(self.config))
        self.gw = self.app.hub
        self.root = GatewayRoot(self.app)
        self.stub = StubTreq(self.root)
        self.spy = SpyProvider(self.app.runtime.registry.providers["offline"])
        self.app.runtime.registry.providers["offline"] = self.spy

    def start(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None
              = None, raw: bytes | None = None) -> Deferred[Any]:
        hdrs = dict(headers if headers is not None else AUTH)
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        return self.stub.request(method, BASE + path, headers=hdrs, data=data)

    def settle(self, d: Deferred[Any], steps: int = 2000) -> Any:
        """Drive the clock (offline model: a chunk per 5 ms) until ``d`` fires."""
        fired: list[bool] = []
        d.addBoth(lambda r: (fired.append(True), r)[1])
        for _ in range(steps):
            self.stub.flush()
            if fired:
                break
            self.clock.advance(0.005)
        return self.successResultOf(d)

    def fetch(self, method: str, path: str, body: Any = None,
              headers: dict[str, str] | None = None, raw: bytes | None = None) -> Reply:
        response = self.settle(self.start(method, path, body, headers, raw))
        content = self.settle(response.content())
        return Reply(response.code, response.headers, content)

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None,
             **kw: Any) -> Reply:
        return self.fetch("POST", path, body, headers, **kw)

    def assert_security_headers(self, reply: Reply) -> None:
        self.assertEqual(reply.header("X-Content-Type-Options"), "nosniff")
        self.assertEqual(reply.header("Referrer-Policy"), "no-referrer")
        self.assertEqual(reply.header("Permissions-Policy"),
                         "camera=(), microphone=(self), geolocation=()")

    def assert_openai_error(self, reply: Reply, code: int, message: str | None = None,
                            type_: str = "invalid_request_error") -> None:
        self.assertEqual(reply.code, code, reply)
        self.assertEqual(reply.header("Content-Type"), "application/json; charset=utf-8")
        error = reply.json()["error"]
        self.assertEqual(error["type"], type_, reply)
        if message is not None:
            self.assertEqual(error["message"], message)

    def transcript(self, key: str) -> list[Any]:
        return self.successResultOf(self.app.sessions.history(key, 100))
