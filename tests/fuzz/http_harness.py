"""One in-memory gateway behind its real ``Site`` (``tap.build_site``), every HTTP route
switched on, and the checks every fuzzed HTTP request must pass.

The gateway serves hooks (with mappings), ``/v1/chat/completions``, ``/v1/responses``,
``/tools/invoke``, ``/metrics`` and the Control UI from a fake build (``tests/support/
ui_build.py``: a secret file and symlinks out of the root beside it); ``use_dashboard()``
swaps in a copy of the built-in dashboard with a secret beside it.  A request is written
as exact bytes into a fresh in-memory socket, in the reads the input asks for; the clock then
jumps from timer to timer (auth failures are answered after a delay, the offline model
streams on the clock, an unfinished request meets the header or idle timeout) until the
answer is complete or the server closes, and the client closes.

Checks: the bytes written back are well-formed responses and their number is what the
request's framing allows (one for a complete request); the connection is not left hanging;
never a 500 (the one deliberate 500 is ``/v1/embeddings`` without an embedding provider, as
the reference answers); JSON bodies parse, and the JSON endpoints' errors have their shape
(OpenAI's ``{"error": {"message", "type"}}`` and the hooks' and tools' own) and do not echo
a huge input; no file from outside the UI root; no logged failure; the per-IP pending count
is back to zero; a bystander (a WebSocket client's ``last-heartbeat`` and an HTTP
``/health``) still answers; RSS bounded.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure

from openclaw_tw import tap
from openclaw_tw.app import Components
from openclaw_tw.web import ui_build
from openclaw_tw.web.metrics import PATHS as METRICS_PATHS
from openclaw_tw.web.root import PROBE_PATHS
from openclaw_tw.web.sessions_http import is_history_path
from openclaw_tw.web.ui_build import Discovery
from tests.fuzz.harness import (
    REPORT,
    RSS_GROWTH_LIMIT,
    close_gateway,
    failure_observer,
    rss_bytes,
)
from tests.fuzz.http_wire import HttpInput, Malformed, Parsed, parse_responses
from tests.support.helpers import WSClient, make_app
from tests.support.tmp import scratch_dir
from tests.support.ui_build import SECRET, make_build

HOOK_TOKEN = "hook-secret"
MAPPINGS = [
    {"id": "gh", "match": {"path": "github", "source": "github"}, "action": "agent",
     "name": "GitHub {{action}}", "messageTemplate": "PR {{pull_request.number}}: "
     "{{pull_request.title}} by {{headers.x-sender}} {{query.q}}",
     "sessionKey": "hook:gh:{{repo}}", "sessionMode": "persistent"},
    {"match": {"path": "mail"}, "action": "wake", "textTemplate": "Mail from {{from}}"},
    {"match": {"path": "batch"}, "forEach": "events", "messageTemplate": "event {{id}} {{item}}",
     "model": "{{model}}", "timeoutSeconds": 30},
    {"match": {"path": "empty"}, "messageTemplate": "{{nothing}}"},
    {"match": {"path": "js"}, "transform": {"module": "x.js"}},
]
#: Fake seconds to wait for an answer (auth delays are at most 5 s, the idle timeout 60 s).
BUDGET_S = 200.0
MAX_JUMPS = 20_000
MAX_ERROR_BYTES = 8192
BYSTANDER_EVERY = 5
DASHBOARD_SECRET = b"DASHBOARD-SECRET-do-not-serve"
JSON_ROUTES = ("openai", "tools", "hooks", "history")
INVALID_JSON = ("Invalid JSON in request body.",)
#: What JavaScript's ``String.prototype.trim`` strips.
JS_SPACE = ("\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
            "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff")


def fuzz_config(ui_root: Path) -> dict[str, Any]:
    return {
        "hooks": {"enabled": True, "token": HOOK_TOKEN, "allowRequestSessionKey": True,
                  "allowedSessionKeyPrefixes": ["hook:", "agent:main:hook:"],
                  "mappings": MAPPINGS},
        "gateway": {"http": {"endpoints": {"chatCompletions": {"enabled": True},
                                           "responses": {"enabled": True}}},
                    "tools": {"allow": ["cron"], "deny": ["sessions_list"]},
                    "controlUi": {"root": str(ui_root)}},
        "agents": {"list": [{"id": "main"}, {"id": "ops"}]},
    }


class HttpFuzzGateway:
    def __init__(self) -> None:
        base = scratch_dir("openclaw-httpfuzz-")
        self.build = make_build(base)
        (base / "openclaw.json").write_text(json.dumps(fuzz_config(self.build.root)))
        self.app: Components
        self.app, self.clock = make_app(config=str(base / "openclaw.json"))
        self.site = tap.build_site(self.app)
        self.ui = self.site.resource.control_ui
        self.ui.discover({"PATH": str(base / "no-bin"), "HOME": str(base)})
        self.fake_build = self.ui.state
        assert isinstance(self.fake_build, Discovery) and self.fake_build.build is not None
        self.dashboard = self._dashboard_copy(base)
        self.bystander = WSClient(self.app.hub, factory=self.site.resource.ws_factory)
        hello_ok = self.bystander.connect(scopes=["operator.read"])
        assert hello_ok is not None and hello_ok["ok"], hello_ok
        self.failures: list[str] = []
        self.inputs = 0
        self.statuses: Counter[int] = Counter()
        self.rss_start = rss_bytes()
        self._observer = self._observe()
        globalLogPublisher.addObserver(self._observer)

    def _dashboard_copy(self, base: Path) -> Discovery:
        copy = base / "dash" / "dashboard"
        shutil.copytree(ui_build.DASHBOARD_ROOT, copy)
        (base / "dash" / "secret.txt").write_bytes(DASHBOARD_SECRET)
        (copy / "assets" / "out.js").symlink_to(base / "dash" / "secret.txt")
        return Discovery(ui_build.dashboard("the http fuzz tier", copy))

    def use_dashboard(self, on: bool) -> None:
        self.ui.state = self.dashboard if on else self.fake_build

    def _observe(self) -> Any:
        return failure_observer(self.failures)

    def close(self) -> None:
        close_gateway(self.app, self._observer)

    def write_report(self, name: str, failed: bool) -> None:
        """The fuzz tier's JSON line (``tests/fuzz/report.py``), with the statuses seen."""
        if REPORT:
            with Path(REPORT).open("a") as f:
                f.write(json.dumps({"test": f"http {name}", "kind": "http",
                                    "inputs": self.inputs, "failed": failed, "pending": 0,
                                    "statuses": {str(k): v for k, v in
                                                 sorted(self.statuses.items())},
                                    "rss_start": self.rss_start,
                                    "rss_end": rss_bytes()}) + "\n")
        self.inputs = 0
        self.statuses.clear()

    # -- driving -----------------------------------------------------------------------------

    def exchange(self, inp: HttpInput) -> tuple[list[Parsed], bool]:
        """Send ``inp`` on a fresh socket; (the responses, whether the server closed)."""
        addr = (IPv6Address("TCP", inp.peer, 40000) if ":" in inp.peer
                else IPv4Address("TCP", inp.peer, 40000))
        # lenient: a real socket does not mind being paused after loseConnection
        transport = StringTransport(peerAddress=addr, lenient=True,
                                    hostAddress=IPv4Address("TCP", "127.0.0.1", 18789))
        proto = self.site.buildProtocol(addr)
        transport.protocol = proto  # type: ignore[attr-defined]  # an upgrade replaces it
        proto.makeConnection(transport)
        for piece in inp.pieces():
            if transport.disconnecting:
                break
            transport.protocol.dataReceived(piece)  # type: ignore[attr-defined]
        heads = (2 if inp.framing == "twice" else 1) if inp.method == b"HEAD" else 0
        responses, rest = self._wait(transport, inp, heads)
        closed = bool(transport.disconnecting)
        transport.protocol.connectionLost(Failure(ConnectionDone()))  # type: ignore[attr-defined]
        if closed:
            responses, rest = parse_responses(transport.value(), True, heads)
        assert not rest, f"an unfinished response left on an open socket: {rest[:300]!r}"
        return responses, closed

    def _wait(self, transport: StringTransport, inp: HttpInput, heads: int
              ) -> tuple[list[Parsed], bytes]:
        start = self.clock.seconds()
        expected = {"complete": 1, "twice": 2}.get(inp.framing)
        for _ in range(MAX_JUMPS):
            responses, rest = parse_responses(transport.value(), False, heads)
            if transport.disconnecting:
                return responses, rest
            final = [r for r in responses if not 100 <= r.status <= 199]
            if (expected and len(final) >= expected and not rest) or _upgraded(responses):
                return responses, rest
            self._pong()
            waited = self.clock.seconds() - start
            if waited >= BUDGET_S:
                break
            calls = self.clock.getDelayedCalls()
            step = min((c.getTime() for c in calls), default=start + BUDGET_S)
            self.clock.advance(min(max(step - self.clock.seconds(), 0.0),
                                   start + BUDGET_S - self.clock.seconds()))
        return responses, rest

    def _sleep(self, seconds: float) -> None:
        """Let ``seconds`` of fake time pass, timer by timer, the bystander answering pings."""
        until = self.clock.seconds() + seconds
        while self.clock.seconds() < until:
            self._pong()
            step = min((c.getTime() for c in self.clock.getDelayedCalls()), default=until)
            self.clock.advance(max(min(step, until) - self.clock.seconds(), 0.0))

    def _pong(self) -> None:
        """Answer the gateway's keepalive pings: the bystander lives through long waits."""
        b = self.bystander
        b.flush()
        while b.pings and not b.lost:
            b.pings -= 1
            b.send_raw(b"", opcode=10)

    # -- checks ------------------------------------------------------------------------------

    def check(self, inp: HttpInput, bystander: bool = True) -> None:
        try:
            self._check(inp, bystander)
        except Malformed as e:
            raise AssertionError(f"malformed answer: {e}\n  request: {inp.show()}") from None
        except AssertionError as e:
            raise AssertionError(f"{e}\n  request: {inp.show()}") from None

    def _check(self, inp: HttpInput, bystander: bool) -> None:
        self.inputs += 1
        self.failures.clear()
        responses, closed = self.exchange(inp)
        route = route_of(inp.target)
        for r in responses:
            self.statuses[r.status] += 1
        assert not (responses and 100 <= responses[-1].status <= 199 and responses[-1].status
                    != 101 and closed), f"an interim {responses[-1].status} with no final " \
            f"answer after it: {[r.status for r in responses]}"
        responses = [r for r in responses if not 100 <= r.status <= 199 or r.status == 101]
        shown = [(r.status, r.body[:200]) for r in responses]
        if inp.framing == "complete" or _upgraded(responses):
            assert len(responses) == 1, \
                f"{len(responses)} responses to one request: {shown}"
        elif inp.framing == "twice":  # the second is answered unless the first closed
            assert len(responses) == 2 or (len(responses) == 1 and closed), \
                f"{len(responses)} responses to two requests: {shown}"
        elif inp.framing == "extra":  # bytes past the request: at most one more answer
            assert 1 <= len(responses) <= 2, f"{len(responses)} responses: {shown}"
        else:  # short or broken: one answer (408 for a body that never ends), then the close
            assert len(responses) == 1, f"{len(responses)} responses: {shown}"
            assert closed, f"the socket was left open after {shown}"
        for r in responses:
            self._check_response(inp, route, r)
        assert not self.failures, f"logged failure:\n{self.failures[0]}"
        retry = max((_retry_after(r) for r in responses), default=0)
        if retry:  # a throttled client waits, as it is told to (the next input is not 429)
            self._sleep(retry)
        assert not self.site.pending, f"sockets still counted as pending: {self.site.pending}"
        if bystander and self.inputs % BYSTANDER_EVERY == 0:
            self.bystander_answers()
        growth = rss_bytes() - self.rss_start
        assert growth < RSS_GROWTH_LIMIT, f"RSS grew {growth >> 20} MiB"

    def _check_response(self, inp: HttpInput, route: str, r: Parsed) -> None:
        body = r.body
        assert r.status != 500 or _deliberate_500(inp, r), \
            f"500 {r.reason}: {body[:300]!r}" + (
                f"; logged:\n{self.failures[0][-1500:]}" if self.failures else "")
        assert SECRET not in body and DASHBOARD_SECRET not in body, \
            f"a file from outside the UI root was served ({r.status})"
        policy = r.header("content-security-policy")
        if policy is not None:  # the Host header names the portal: never a directive
            directives = [d.split() for d in policy.split(";") if d.strip()]
            names = [d[0] for d in directives]
            script = next((d[1:] for d in directives if d[0] == "script-src"), [])
            assert len(names) == len(set(names)) and "*" not in script and \
                "'unsafe-inline'" not in script, f"a policy smuggled into the CSP: {policy}"
        ctype = (r.header("content-type") or "").lower()
        if "json" in ctype and inp.method != b"HEAD" and r.status != 304 and body:
            try:
                value = json.loads(body)
            except ValueError:
                raise AssertionError(f"{r.status} says JSON but is not: {body[:300]!r}") \
                    from None
            if r.status == 400 and inp.framing in ("complete", "twice") and \
                    _error_message(value) in INVALID_JSON and js_parses(inp.payload):
                raise AssertionError(f"JSON that JavaScript reads refused: {body[:300]!r}")
            if r.status >= 400:
                assert len(body) <= MAX_ERROR_BYTES, \
                    f"a {len(body)}-byte {r.status} error echoes its input: {body[:300]!r}"
                _check_error_shape(route, value, r)
        if route in JSON_ROUTES and r.status >= 400 and "x-content-type-options" in \
                r.headers and inp.method != b"HEAD":
            # answered by the route (not by twisted's parser): JSON, except the plain-text
            # answers each endpoint documents
            assert "json" in ctype or _text_allowed(inp, route, r), \
                f"{route} answered {r.status} in {ctype or 'no type'}: {body[:300]!r}"

    def bystander_answers(self) -> None:
        b = self.bystander
        assert not b.lost, "the WebSocket bystander was disconnected"
        b.pop()
        res = b.response(b.request("last-heartbeat"))
        assert res is not None and res["ok"], f"the WebSocket bystander got {res}"
        health = HttpInput("probe", b"GET", b"/health",
                           b"GET /health HTTP/1.1\r\nHost: 127.0.0.1:18789\r\n\r\n", b"",
                           "complete")
        responses, _ = self.exchange(health)
        assert [(r.status, json.loads(r.body)) for r in responses] == \
            [(200, {"ok": True, "status": "live"})], f"/health answered {responses}"


def _retry_after(r: Parsed) -> float:
    value = r.header("retry-after") if r.status in (429, 503) else None
    return float(value) if value is not None and value.isdigit() else 0.0


def _upgraded(responses: list[Parsed]) -> bool:
    return bool(responses) and responses[0].status == 101


def route_of(target: bytes) -> str:
    """Which endpoint answers ``target`` (``GatewayRoot``'s order, on the raw path)."""
    path = target.split(b"?", 1)[0]
    if path in PROBE_PATHS:
        return "probe"
    if path == b"/hooks" or path.startswith(b"/hooks/"):
        return "hooks"
    if path in METRICS_PATHS:
        return "metrics"
    if path in (b"/v1/models", b"/v1/embeddings", b"/v1/responses", b"/v1/chat/completions") \
            or path.startswith(b"/v1/models/"):
        return "openai"
    if path == b"/tools/invoke":
        return "tools"
    if is_history_path(path):
        return "history"
    return "ui"


def _deliberate_500(inp: HttpInput, r: Parsed) -> bool:
    """``/v1/embeddings`` has no provider: a request the reference would pass on to one is
    answered its 500; a ``transform`` mapping cannot run here (500 "hook mapping failed",
    said in the log)."""
    target = inp.target.split(b"?", 1)[0]
    if target == b"/v1/embeddings":
        return json.loads(r.body)["error"]["type"] == "api_error" and \
            _embeddable(inp.payload)
    return target == b"/hooks/js" and json.loads(r.body) == {
        "ok": False, "error": "hook mapping failed"}


def _embeddable(payload: bytes) -> bool:
    """A body ``/v1/embeddings`` takes as far as its provider: an agent model, one to 128
    non-empty strings."""
    try:
        body = json.loads(payload.decode("utf-8", "replace").strip(JS_SPACE))
    except ValueError:
        return False
    model, texts = body.get("model"), body.get("input") if isinstance(body, dict) else None
    texts = [texts] if isinstance(texts, str) else texts
    return isinstance(model, str) and model.strip().lower().startswith(("openclaw", "agent:")) \
        and isinstance(texts, list) and 0 < len(texts) <= 128 and all(
            isinstance(t, str) and 0 < len(t) <= 8192 for t in texts)


def _error_message(value: Any) -> Any:
    err = value.get("error") if isinstance(value, dict) else None
    return err.get("message") if isinstance(err, dict) else err


def js_parses(payload: bytes) -> bool:
    """Would the reference read this body (``Buffer.toString("utf8")``, ``trim()``,
    ``JSON.parse``)?  Python's parser, made to agree: no NaN/Infinity, long ints as doubles;
    nesting past its recursion limit counts as refused (ours stops at orjson's 1024)."""
    text = payload.decode("utf-8", "replace").strip(JS_SPACE)
    if not text:
        return False
    try:
        json.loads(text, parse_constant=_refuse,
                   parse_int=lambda s: int(s) if len(s) <= 20 else float(s))
    except (ValueError, RecursionError):
        return False
    return True


def _refuse(text: str) -> Any:
    raise ValueError(text)


def _check_error_shape(route: str, value: Any, r: Parsed) -> None:
    err = value.get("error") if isinstance(value, dict) else None
    openai = isinstance(err, dict) and isinstance(err.get("message"), str) and \
        isinstance(err.get("type"), str)
    if route == "openai":
        assert openai, f"{r.status} not in the OpenAI error shape: {value}"
    elif route == "tools":  # its own {ok: false, error: {type, message}}, or the auth answer
        assert openai and (value.get("ok") is False or r.status in (401, 403, 429)), \
            f"{r.status} not in the tools error shape: {value}"
    elif route in ("hooks", "history"):
        assert (value.get("ok") is False and isinstance(err, str)) or \
            (openai and r.status in (401, 403, 429)), \
            f"{r.status} not in the {route} error shape: {value}"


def _text_allowed(inp: HttpInput, route: str, r: Parsed) -> bool:
    """Plain-text answers the JSON endpoints give: 405, the site's 413 for a body over the
    largest cap, and the hooks' 401/404/429 and query-token 400."""
    if r.status in (405, 413) and b"{" not in r.body[:1]:
        return True
    if r.status == 400 and r.body == b"Bad Request" and b"\r\nupgrade:" in inp.head.lower():
        return True  # GatewayRoot: an Upgrade other than websocket, before any route
    return route == "hooks" and r.status in (400, 401, 404, 429)
