"""A fake OpenAI-compatible server: ``POST /v1/chat/completions`` and ``GET /v1/models``.

It speaks the real wire format (``chat.completion.chunk`` SSE events, ``data: [DONE]``,
OpenAI-style ``{"error": {...}}`` bodies) on a real loopback port, scripted per test::

    server = FakeOpenAI(reactor, api_key="sk-test").start()   # listens on 127.0.0.1:<random>
    self.addCleanup(server.stop)                                # waits for every connection
    server.behave(text="Hello there", chunks=["Hel", "lo ", "there"])   # every request
    server.enqueue(status=429, headers={"Retry-After": "2"})   # just the next request
    ... server.base_url  ->  "http://127.0.0.1:<port>/v1"
    server.requests[-1].body["messages"], .headers["authorization"], yield .finished

Without sockets: ``FakeOpenAI(clock)`` and ``treq.testing.StubTreq(fake.resource)`` as the
provider's ``http``; ``stub.flush()`` / ``clock.advance()`` drive it.

``RecordedRequest.finished`` fires True once the response was written completely and False
when the client went away first (what a cancelled stream looks like from the server).
"""

from __future__ import annotations

import itertools
from typing import Any

import attrs
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.interfaces import IDelayedCall
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from openclaw_tw import _json


def error_object(message: str, type: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None) -> dict[str, Any]:
    """The body OpenAI sends with every 4xx/5xx."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


RATE_LIMITED = error_object(
    "Rate limit reached for gpt-4o-mini in organization org-fake on requests per min (RPM): "
    "Limit 3, Used 3, Requested 1. Please try again in 2s.", "requests", "rate_limit_exceeded")
CONTEXT_TOO_LONG = error_object(
    "This model's maximum context length is 8192 tokens. However, your messages resulted in "
    "9001 tokens. Please reduce the length of the messages.", param="messages",
    code="context_length_exceeded")
SERVER_ERROR = error_object("The server had an error while processing your request. Sorry "
                            "about that!", "server_error")


@attrs.define
class Behaviour:
    """How the server answers one request; every field has a realistic default."""

    text: str = "Hello from the fake model."
    chunks: list[str] | None = None  # the content deltas; default: one per word
    delay: float = 0.0  # seconds between writes, on the server's reactor (0: next iteration)
    split_bytes: int | None = None  # write the SSE bytes in pieces this small (splits lines)
    crlf: bool = False  # CRLF line ends
    comments: bool = False  # ": keep-alive" comment lines between events
    status: int = 200
    error: dict[str, Any] | bytes | None = None  # the body for status >= 400 (OpenAI-style)
    headers: dict[str, str] = attrs.field(factory=dict)  # extra response headers
    hold: bool = False  # accept the request and send nothing, not even headers
    stall_after: int | None = None  # send headers and this many writes, then go silent
    garbage: bool = False  # a non-JSON data line after the first content delta
    stream_error: dict[str, Any] | None = None  # an {"error": ...} event mid-stream, then end
    tool_calls: list[dict[str, Any]] | None = None  # [{id, name, arguments, split?}]
    finish_reason: str | None = None  # default "tool_calls" with tool calls, else "stop"
    usage: tuple[int, int] | None = None  # (prompt, completion); default: counted
    model: str | None = None  # the model the server reports; default: the requested one
    force_json: bool = False  # a whole chat.completion even when asked to stream


@attrs.define(eq=False)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    raw: bytes
    body: Any  # the parsed JSON body (None if it was not JSON)
    finished: Deferred[bool]  # True: response complete; False: the client disconnected
    gone: bool = False  # the client disconnected before the response was complete


class _Channel(HTTPChannel):
    def connectionMade(self) -> None:
        super().connectionMade()
        self.lost: Deferred[None] = Deferred()
        self.site.fake._channels.add(self)  # type: ignore[attr-defined]

    def connectionLost(self, reason: Any) -> None:
        super().connectionLost(reason)
        self.site.fake._channels.discard(self)  # type: ignore[attr-defined]
        self.lost.callback(None)


class FakeOpenAI:
    def __init__(self, reactor: Any, api_key: str | None = None,
                 models: tuple[str, ...] = ("gpt-4o-mini", "fake-model")) -> None:
        self.reactor = reactor
        self.api_key = api_key
        self.models = models
        self.behaviour = Behaviour()
        self.queue: list[Behaviour] = []
        self.requests: list[RecordedRequest] = []
        self._channels: set[_Channel] = set()
        self._calls: list[IDelayedCall] = []
        self._waiters: list[Deferred[RecordedRequest]] = []
        self._ids = itertools.count(1)
        self.resource = _Root(self)  # also usable in memory: treq.testing.StubTreq(resource)
        self.site = Site(self.resource)
        self.site.protocol = _Channel
        self.site.fake = self  # type: ignore[attr-defined]
        self.port: Any = None

    def start(self, port: int = 0) -> FakeOpenAI:
        self.port = self.reactor.listenTCP(port, self.site, interface="127.0.0.1")
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port.getHost().port}/v1"

    def behave(self, **fields: Any) -> Behaviour:
        """Answer every request this way (until changed)."""
        self.behaviour = Behaviour(**fields)
        return self.behaviour

    def enqueue(self, **fields: Any) -> Behaviour:
        """Answer the next request this way (FIFO), then fall back to ``behave``."""
        self.queue.append(Behaviour(**fields))
        return self.queue[-1]

    def received(self) -> Deferred[RecordedRequest]:
        """Fires with the next request the server records."""
        d: Deferred[RecordedRequest] = Deferred()
        self._waiters.append(d)
        return d

    def drop_connections(self) -> Deferred[Any]:
        """Close every open connection from the server side (mid-response, too)."""
        waits = [ch.lost for ch in self._channels]
        for ch in list(self._channels):
            ch.transport.loseConnection()
        return gatherResults(waits)

    def stop(self) -> Deferred[Any]:
        """Stop listening, drop open connections, and wait until every one is closed."""
        for call in self._calls:
            if call.active():
                call.cancel()
        waits = [self.drop_connections()]
        if self.port is not None:
            waits.append(self.port.stopListening())
        return gatherResults(waits)

    def later(self, delay: float, f: Any, *args: Any) -> None:
        self._calls = [c for c in self._calls if c.active()]
        self._calls.append(self.reactor.callLater(delay, f, *args))


def _send_json(request: Request, status: int, obj: Any,
               headers: dict[str, str] | None = None) -> bytes:
    request.setResponseCode(status)
    is_bytes = isinstance(obj, bytes)
    request.setHeader(b"content-type", b"text/plain" if is_bytes else b"application/json")
    for name, value in (headers or {}).items():
        request.setHeader(name.encode(), value.encode())
    return obj if is_bytes else _json.dumps(obj)


class _Root(Resource):
    isLeaf = True

    def __init__(self, fake: FakeOpenAI) -> None:
        super().__init__()
        self.fake = fake

    def _record(self, request: Request) -> RecordedRequest:
        raw = request.content.read() if request.content is not None else b""
        try:
            body = _json.loads(raw) if raw else None
        except _json.JSONDecodeError:
            body = None
        headers = {k.decode().lower(): v[-1].decode("latin-1")
                   for k, v in request.requestHeaders.getAllRawHeaders()}
        rec = RecordedRequest(request.method.decode(), request.path.decode(), headers, raw, body,
                              Deferred())

        def gone(_: Any) -> bool:
            rec.gone = True
            return False

        request.notifyFinish().addCallbacks(lambda _: True, gone).chainDeferred(rec.finished)
        self.fake.requests.append(rec)
        waiters, self.fake._waiters = self.fake._waiters, []
        for d in waiters:
            d.callback(rec)
        return rec

    def _unauthorised(self, rec: RecordedRequest) -> dict[str, Any] | None:
        if self.fake.api_key is None:
            return None
        auth = rec.headers.get("authorization", "")
        if not auth:
            return error_object("You didn't provide an API key. You need to provide your API "
                                "key in an Authorization header using Bearer auth (i.e. "
                                "Authorization: Bearer YOUR_KEY).")
        if auth != f"Bearer {self.fake.api_key}":
            given = auth.removeprefix("Bearer ")
            shown = given[:3] + "*" * 6 + given[-4:] if len(given) > 8 else "****"
            return error_object(f"Incorrect API key provided: {shown}. You can find your API "
                                "key at https://platform.openai.com/account/api-keys.",
                                code="invalid_api_key")
        return None

    def render_GET(self, request: Request) -> bytes:
        rec = self._record(request)
        denied = self._unauthorised(rec)
        if denied:
            return _send_json(request, 401, denied)
        if rec.path != "/v1/models":
            return _send_json(request, 404, error_object(f"Invalid URL (GET {rec.path})"))
        created = int(self.fake.reactor.seconds())
        return _send_json(request, 200, {"object": "list", "data": [
            {"id": m, "object": "model", "created": created, "owned_by": "fake"}
            for m in self.fake.models]})

    def render_POST(self, request: Request) -> bytes | int:
        rec = self._record(request)
        if rec.path != "/v1/chat/completions":
            return _send_json(request, 404, error_object(f"Invalid URL (POST {rec.path})"))
        denied = self._unauthorised(rec)
        if denied:
            return _send_json(request, 401, denied)
        beh = self.fake.queue.pop(0) if self.fake.queue else self.fake.behaviour
        if beh.status >= 400:
            return _send_json(request, beh.status, beh.error or SERVER_ERROR, beh.headers)
        body = rec.body if isinstance(rec.body, dict) else {}
        if not isinstance(body.get("model"), str) or not isinstance(body.get("messages"), list):
            return _send_json(request, 400, error_object(
                "you must provide a model parameter", param="model"))
        reply = _Reply(self.fake, beh, body, next(self.fake._ids))
        if not body.get("stream") or beh.force_json:
            return _send_json(request, 200, reply.completion(), beh.headers)
        if beh.hold:
            return NOT_DONE_YET
        request.setHeader(b"content-type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"cache-control", b"no-cache")
        for name, value in beh.headers.items():
            request.setHeader(name.encode(), value.encode())
        writes = reply.writes()
        stall = beh.stall_after is not None
        if stall:
            writes = writes[: beh.stall_after]
        request.write(b"")  # the status line and headers go out now

        def step(i: int) -> None:
            if rec.gone or request.finished:
                return
            if i < len(writes):
                request.write(writes[i])
                self.fake.later(beh.delay, step, i + 1)
            elif not stall:
                request.finish()

        step(0)
        return NOT_DONE_YET


class _Reply:
    """The events (or the whole completion) for one request."""

    def __init__(self, fake: FakeOpenAI, beh: Behaviour, body: dict[str, Any], n: int) -> None:
        self.beh, self.body = beh, body
        self.id = f"chatcmpl-fake{n:04d}"
        self.created = int(fake.reactor.seconds())
        self.model = beh.model or body["model"]
        self.usage_requested = bool((body.get("stream_options") or {}).get("include_usage"))
        self.parts = beh.chunks if beh.chunks is not None else _words(beh.text)
        self.finish = beh.finish_reason or ("tool_calls" if beh.tool_calls else "stop")
        prompt = sum(len(str(m.get("content", "")).split()) for m in body["messages"]
                     if isinstance(m, dict))
        args = sum(len(t.get("split") or [t.get("arguments", "")]) for t in beh.tool_calls or [])
        self.usage = beh.usage or (prompt, len(self.parts) + args)

    def usage_object(self) -> dict[str, int]:
        p, c = self.usage
        return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}

    def completion(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.parts) or None,
                                   "refusal": None}
        if self.beh.tool_calls:
            message["tool_calls"] = [
                {"id": t["id"], "type": "function",
                 "function": {"name": t["name"], "arguments": t.get("arguments", "")}}
                for t in self.beh.tool_calls]
        return {"id": self.id, "object": "chat.completion", "created": self.created,
                "model": self.model, "system_fingerprint": "fp_fake",
                "choices": [{"index": 0, "message": message, "logprobs": None,
                             "finish_reason": self.finish}],
                "usage": self.usage_object()}

    def chunk(self, delta: dict[str, Any] | None, finish: str | None = None) -> dict[str, Any]:
        obj: dict[str, Any] = {"id": self.id, "object": "chat.completion.chunk",
                               "created": self.created, "model": self.model,
                               "system_fingerprint": "fp_fake",
                               "choices": [] if delta is None else [
                                   {"index": 0, "delta": delta, "logprobs": None,
                                    "finish_reason": finish}]}
        if self.usage_requested:
            obj["usage"] = None
        return obj

    def events(self) -> list[bytes]:
        beh = self.beh
        out = [self.chunk({"role": "assistant", "content": "", "refusal": None})]
        for i, part in enumerate(self.parts):
            out.append(self.chunk({"content": part}))
            if i == 0 and beh.garbage:
                out.append(b"this is not json")
            if i == 0 and beh.stream_error is not None:
                return [_event(e) for e in [*out, beh.stream_error]]
        for index, t in enumerate(beh.tool_calls or []):
            out.append(self.chunk({"tool_calls": [{"index": index, "id": t["id"],
                                                   "type": "function", "function": {
                                                       "name": t["name"], "arguments": ""}}]}))
            for piece in t.get("split") or [t.get("arguments", "")]:
                out.append(self.chunk({"tool_calls": [{"index": index,
                                                       "function": {"arguments": piece}}]}))
        out.append(self.chunk({}, self.finish))
        if self.usage_requested:
            obj = self.chunk(None)
            obj["usage"] = self.usage_object()
            out.append(obj)
        return [_event(e) for e in out] + [b"data: [DONE]\n\n"]

    def writes(self) -> list[bytes]:
        events = self.events()
        if self.beh.comments:
            events = [w for e in events for w in (b": keep-alive\n\n", e)]
        if self.beh.crlf:
            events = [e.replace(b"\n", b"\r\n") for e in events]
        if self.beh.split_bytes:
            blob, n = b"".join(events), self.beh.split_bytes
            return [blob[i : i + n] for i in range(0, len(blob), n)]
        return events


def _event(obj: Any) -> bytes:
    data = obj if isinstance(obj, bytes) else _json.dumps(obj)
    return b"data: " + data + b"\n\n"


def _words(text: str) -> list[str]:
    words = text.split(" ")
    return [w + " " for w in words[:-1]] + [words[-1]] if text else []
