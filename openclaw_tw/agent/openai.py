"""The OpenAI-compatible streaming provider (``api: openai-completions``).

One ``stream()`` call is one ``POST {baseUrl}/chat/completions`` with ``stream: true``; the
``text/event-stream`` body is decoded incrementally (``sse.SSEParser``) and each chunk's delta
goes to ``on_text`` as it arrives.  Tool calls go to ``on_tool`` as ``{"phase": "start" |
"update" | "end", "toolCallId", "name", "arguments"}`` (``arguments``: the JSON text so far;
``end`` adds ``args``, the parsed object or None).  The result is taken when the body ends
(after ``data: [DONE]``), so a keep-alive connection is back in the pool by then.

Cancelling the returned Deferred cancels the request or drops the connection mid-body; an idle
timer on the injected clock (``timeoutSeconds``, default 120, reset by every byte) does the
same and fails with kind ``timeout``.  Every failure is a ``ProviderError``; the API key (and
any auth header) is redacted from all of them and never logged.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone

from openclaw_tw import _json
from openclaw_tw.agent import openai_errors as errors
from openclaw_tw.agent.models import ModelRequest, ModelResult, ProviderError, Usage
from openclaw_tw.agent.sse import SSEEvent, SSEParser

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_TIMEOUT_S = 120.0
MAX_ERROR_BODY = 64 * 1024
MAX_JSON_BODY = 16 * 1024 * 1024
STOP_REASONS = {"stop": "stop", "length": "length", "tool_calls": "tool_calls",
                "function_call": "tool_calls", "content_filter": "content_filter"}
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_AUTH_HEADERS = ("authorization", "api-key", "x-api-key")


def resolve_secret(value: Any, environ: Mapping[str, str]) -> str | None:
    """A config secret: a literal, ``"${NAME}"`` (also embedded), ``{"env": NAME}`` or a
    SecretRef ``{"source": "env", "id": NAME}``.  Unset or empty -> None."""
    if isinstance(value, Mapping):
        name = value.get("env") or (value.get("id") if value.get("source") == "env" else None)
        value = environ.get(str(name)) if name else None
    elif isinstance(value, str):
        value = _ENV_REF.sub(lambda m: environ.get(m.group(1), ""), value)
    return (value.strip() or None) if isinstance(value, str) else None


class _Body(Protocol):
    """Receives a response body; ``abort()`` drops the connection mid-body."""

    def __init__(self, on_data: Callable[[bytes], None], on_end: Callable[[Failure], None],
                 on_error: Callable[[Failure], None]) -> None:
        self.on_data, self.on_end, self.on_error = on_data, on_end, on_error
        self.ended = False

    def dataReceived(self, data: bytes) -> None:
        if not self.ended:
            try:
                self.on_data(data)
            except Exception:  # e.g. an on_text callback raised: fail the call, not the parser
                self.on_error(Failure())

    def connectionLost(self, reason: Failure = Failure(ResponseDone())) -> None:
        if not self.ended:
            self.ended = True
            try:
                self.on_end(reason)
            except Exception:
                self.on_error(Failure())

    def abort(self) -> None:
        if not self.ended:
            self.ended = True
            if self.transport is not None:
                self.transport.stopProducing()


class OpenAIProvider:
    """``spec`` is ``models.providers.<id>``: baseUrl, apiKey (literal, ``"${VAR}"`` or
    ``{"env": VAR}``; absent: ``<ID>_API_KEY``), headers, timeoutSeconds.  ``http`` is
    treq-like (``.post``), e.g. ``treq.testing.StubTreq``; ``reactor`` supplies the timers."""

    api = "openai-completions"

    def __init__(self, provider_id: str, spec: Mapping[str, Any], reactor: Any,
                 http: Any = None, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.id = provider_id
        self.reactor = reactor
        self.base_url = str(spec.get("baseUrl") or DEFAULT_BASE_URL).rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        conventional = re.sub(r"\W", "_", provider_id).upper() + "_API_KEY"  # OPENAI_API_KEY
        self._api_key = (resolve_secret(spec["apiKey"], env) if "apiKey" in spec
                         else env.get(conventional) or None)
        self.headers = {str(k): v for k, raw in (spec.get("headers") or {}).items()
                        if (v := resolve_secret(raw, env)) is not None}
        self._secrets = [v for k, v in self.headers.items() if k.lower() in _AUTH_HEADERS]
        if self._api_key is not None:
            self._secrets.append(self._api_key)
        self.timeout = float(spec.get("timeoutSeconds") or DEFAULT_TIMEOUT_S)
        self._pool = None
        if http is None:  # our own keep-alive pool on the real reactor, closed by close()
            from openclaw_tw.httpclient import http_client

            http, self._pool = http_client(reactor)
        self.http = http

    @property
    def has_key(self) -> bool:
        """An API key, or an auth header of its own, is configured."""
        return bool(self._secrets)

    def __repr__(self) -> str:
        return f"<OpenAIProvider {self.id} {self.base_url} key={'set' if self.has_key else 'none'}>"

    def close(self) -> Deferred[None]:
        """Close idle keep-alive connections (the gateway's shutdown; tests' cleanup)."""
        return self._pool.closeCachedConnections() if self._pool is not None else succeed(None)

    def request_headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        headers.update(self.headers)
        if self._api_key is not None:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def request_body(self, request: ModelRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"model": request.model, "messages": request.messages,
                                "stream": True, "stream_options": {"include_usage": True}}
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.tools:
            body["tools"] = request.tools
        return body

    def stream(self, request: ModelRequest, on_text: Callable[[str], None],
               on_tool: Callable[[dict[str, Any]], None]) -> Deferred[ModelResult]:
        return _Call(self, request, on_text, on_tool).start()

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def http_error(self, status: int, headers: Any, body: bytes) -> ProviderError:
        return errors.http_error(self.id, status, headers, body, has_key=self.has_key,
                                 redact=self.redact, now=self.reactor.seconds())

    def stream_error(self, payload: Any) -> ProviderError:
        return errors.stream_error(self.id, payload, self.redact)


def usage_of(raw: Mapping[str, Any]) -> Usage:
    """An OpenAI-style ``usage`` object in the real gateway's buckets (its ``normalizeUsage``):
    cached prompt tokens (``prompt_tokens_details.cached_tokens``) and cache writes named in
    the details are part of ``prompt_tokens`` there and are taken out of ``input`` here;
    Anthropic-style ``cache_read_input_tokens``/``cache_creation_input_tokens`` are not."""
    details = raw.get("prompt_tokens_details")
    details = details if isinstance(details, Mapping) else {}
    read_in_details = details.get("cached_tokens") is not None
    write_in_details = details.get("cache_write_tokens") is not None or \
        details.get("cache_creation_input_tokens") is not None
    cache_read = _count(details["cached_tokens"] if read_in_details
                        else raw.get("cache_read_input_tokens"))
    cache_write = _count(details.get("cache_write_tokens",
                                     details.get("cache_creation_input_tokens"))
                         if write_in_details else raw.get("cache_creation_input_tokens"))
    prompt = _count(raw.get("prompt_tokens", raw.get("input_tokens")))
    input_tokens = prompt - (cache_read if read_in_details else 0) - \
        (cache_write if write_in_details else 0)
    return Usage(max(0, input_tokens),
                 _count(raw.get("completion_tokens", raw.get("output_tokens"))),
                 cache_read, cache_write)


def _count(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and value >= 0 else 0


class _Call:
    """One streamed completion: request, body, idle timer and the result Deferred."""

    def __init__(self, provider: OpenAIProvider, request: ModelRequest,
                 on_text: Callable[[str], None], on_tool: Callable[[dict[str, Any]], None]):
        self.p, self.request, self.on_text, self.on_tool = provider, request, on_text, on_tool
        self.d: Deferred[ModelResult] = Deferred(self._cancel)
        self.settled = False  # the result Deferred has (or is about to have) its result
        self.req_d: Deferred[Any] | None = None
        self.body: _Body | None = None
        self.timer: IDelayedCall | None = None
        self.sse = SSEParser()
        self.text: list[str] = []
        self.refusal: list[str] = []
        self.tools: dict[int, dict[str, Any]] = {}
        self.finish: str | None = None
        self.done = False  # "data: [DONE]" seen
        self.usage = Usage()
        self.response_id: str | None = None
        self.response_model: str | None = None

    def start(self) -> Deferred[ModelResult]:
        self._touch()
        try:
            self.req_d = self.p.http.post(
                self.p.url, data=_json.dumps(self.p.request_body(self.request)),
                headers=self.p.request_headers(), unbuffered=True, allow_redirects=False)
        except Exception:  # e.g. a baseUrl treq cannot parse
            self._fail(errors.connect_error(self.p.id, self.p.base_url, Failure(),
                                            self.p.redact))
            return self.d
        self.req_d.addCallbacks(self._on_response, self._on_request_error)
        self.req_d.addErrback(self._fail)
        return self.d

    # -- lifecycle ---------------------------------------------------------------------------
    def _touch(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.reset(self.p.timeout)
        else:
            self.timer = self.p.reactor.callLater(self.p.timeout, self._idle)

    def _stop_timer(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()

    def _idle(self) -> None:
        if self.done:  # "[DONE]" came but the body never ended: take the result, drop the rest
            self._abort()
            self._succeed()
            return
        self._fail(ProviderError(f"{self.p.id} sent nothing for {self.p.timeout:g}s "
                                 f"(timeoutSeconds); request cancelled", "timeout"))

    def _abort(self) -> None:
        if self.body is not None:
            self.body.abort()
        elif self.req_d is not None:  # no-op once it has a response; before, it aborts
            self.req_d.cancel()

    def _cancel(self, d: Deferred[ModelResult]) -> None:
        self.settled = True
        self._stop_timer()
        self._abort()

    def _fail(self, err: Failure | BaseException) -> None:
        if self.settled:
            return
        self.settled = True
        self._stop_timer()
        self._abort()
        self.d.errback(err)

    def _succeed(self) -> None:
        if self.settled:
            return
        for index in sorted(self.tools):
            self._end_tool(index)
        text = "".join(self.text)
        if not text and not self.tools and (self.finish == "content_filter" or self.refusal):
            reason = "".join(self.refusal) or "the response was blocked by the content filter"
            self._fail(ProviderError(f"{self.p.id} refused: {reason}", "refusal"))
            return
        self.settled = True
        self._stop_timer()
        u = self.usage
        self.d.callback(ModelResult(text, STOP_REASONS.get(self.finish or "stop", "stop"),
                                    u.input, u.output, self.response_id, self.response_model,
                                    u.cache_read, u.cache_write))

    # -- HTTP --------------------------------------------------------------------------------
    def _on_request_error(self, failure: Failure) -> None:
        if not self.settled:
            self._fail(errors.connect_error(self.p.id, self.p.base_url, failure,
                                               self.p.redact))

    def _on_response(self, response: Any) -> None:
        if self.settled:
            return
        self._touch()
        ctype = (response.headers.getRawHeaders(b"content-type") or [b""])[0].lower()
        if response.code >= 300:
            self._collect(response, MAX_ERROR_BODY, lambda body: self._fail(
                self.p.http_error(response.code, response.headers, body)))
        elif b"application/json" in ctype:  # the server ignored "stream": a whole completion
            self._collect(response, MAX_JSON_BODY, self._on_json)
        else:
            self.body = _Body(self._on_data, self._on_end, self._fail)
            response.deliverBody(self.body)

    def _collect(self, response: Any, limit: int, done: Callable[[bytes], None]) -> None:
        parts: list[bytes] = []
        size = [0]

        def data(chunk: bytes) -> None:
            self._touch()
            if size[0] < limit:
                parts.append(chunk[: limit - size[0]])
                size[0] += len(chunk)

        def end(reason: Failure) -> None:
            if not self.settled:
                done(b"".join(parts))

        self.body = _Body(data, end, self._fail)
        response.deliverBody(self.body)

    def _on_json(self, body: bytes) -> None:
        try:
            obj = _json.loads(body)
        except _json.JSONDecodeError:
            self._fail(ProviderError(f"malformed response from {self.p.id}", "unknown",
                                     preview=self.p.redact(body[:200].decode("utf-8", "replace"))))
            return
        if not isinstance(obj, dict) or obj.get("error"):
            self._fail(self.p.stream_error(obj) if isinstance(obj, dict) else ProviderError(
                f"malformed response from {self.p.id}", "unknown"))
            return
        if isinstance(obj.get("choices"), list):
            for choice in obj["choices"]:
                if isinstance(choice, dict) and isinstance(choice.get("message"), dict):
                    choice["delta"] = choice["message"]
        self._chunk(obj)
        self._succeed()

    # -- the event stream --------------------------------------------------------------------
    def _on_data(self, data: bytes) -> None:
        if self.settled:
            return
        self._touch()
        if self.done:
            return
        try:
            events = self.sse.feed(data)
        except ValueError as e:
            self._fail(ProviderError(f"malformed stream from {self.p.id}: {e}", "unknown"))
            return
        self._events(events)

    def _on_end(self, reason: Failure) -> None:
        if self.settled:
            return
        if not self.done:
            self._events(self.sse.close())
            if self.settled:
                return
        if not (self.done or self.finish or self.text or self.tools or self.response_id):
            self._fail(ProviderError(f"{self.p.id} sent an empty stream (HTTP 200)", "unknown"))
        elif self.done or self.finish is not None or reason.check(ResponseDone):
            self._succeed()
        else:
            self._fail(ProviderError(f"{self.p.id} closed the stream before it completed: "
                                     f"{reason.getErrorMessage()}", "unknown"))

    def _events(self, events: list[SSEEvent]) -> None:
        for ev in events:
            if self.settled:
                return
            if ev.data.strip() == "[DONE]":  # the result is taken when the body ends, and by
                self.done = True  # then the connection is back in the pool
                return
            try:
                obj = _json.loads(ev.data)
            except _json.JSONDecodeError:
                obj = None
            if not isinstance(obj, dict):
                preview = self.p.redact(ev.data[:200])
                self._fail(ProviderError(f"malformed stream from {self.p.id}: not a JSON "
                                         f"object: {preview!r}", "unknown", preview=preview))
                return
            if obj.get("error") or ev.event == "error":
                self._fail(self.p.stream_error(obj))
                return
            self._chunk(obj)

    def _chunk(self, obj: dict[str, Any]) -> None:
        if isinstance(obj.get("id"), str) and self.response_id is None:
            self.response_id = obj["id"]
        if isinstance(obj.get("model"), str) and self.response_model is None:
            self.response_model = obj["model"]
        usage = obj.get("usage")
        if isinstance(usage, dict):
            self.usage = usage_of(usage)
        choices = obj.get("choices") if isinstance(obj.get("choices"), list) else []
        choice = next((c for c in choices if isinstance(c, dict) and c.get("index", 0) == 0),
                      None)
        if choice is None:
            return
        delta = choice.get("delta")
        if isinstance(delta, dict):
            content = delta.get("content")
            if isinstance(content, str) and content:
                self.text.append(content)
                self.on_text(content)
            if isinstance(delta.get("refusal"), str):
                self.refusal.append(delta["refusal"])
            if isinstance(delta.get("tool_calls"), list):
                for position, call in enumerate(delta["tool_calls"]):
                    if isinstance(call, dict):
                        self._tool_delta(call, position)
        if isinstance(choice.get("finish_reason"), str):
            self.finish = choice["finish_reason"]

    # -- tool calls --------------------------------------------------------------------------
    def _tool_delta(self, call: dict[str, Any], position: int) -> None:
        index = call.get("index") if isinstance(call.get("index"), int) else position
        fn = call.get("function") if isinstance(call.get("function"), dict) else {}
        args = fn.get("arguments") if isinstance(fn.get("arguments"), str) else ""
        entry = self.tools.get(index)
        if entry is None:
            for other in sorted(self.tools):  # calls stream one after another
                self._end_tool(other)
            entry = self.tools[index] = {
                "toolCallId": str(call.get("id") or f"call_{index}"),
                "name": str(fn.get("name") or ""), "arguments": args, "ended": False}
            self._emit_tool("start", entry)
            return
        if fn.get("name") and not entry["name"]:
            entry["name"] = str(fn["name"])
        if args and not entry["ended"]:
            entry["arguments"] += args
            self._emit_tool("update", entry)

    def _end_tool(self, index: int) -> None:
        entry = self.tools[index]
        if entry["ended"]:
            return
        entry["ended"] = True
        try:
            parsed = _json.loads(entry["arguments"]) if entry["arguments"] else {}
        except _json.JSONDecodeError:
            parsed = None
        self._emit_tool("end", entry, args=parsed)

    def _emit_tool(self, phase: str, entry: dict[str, Any], **extra: Any) -> None:
        self.on_tool({"phase": phase, "toolCallId": entry["toolCallId"], "name": entry["name"],
                      "arguments": entry["arguments"], **extra})


def provider_factory(reactor: Any, http: Any = None) -> Callable[[str, Mapping[str, Any]],
                                                            OpenAIProvider]:
    """The ``make_openai(provider_id, spec)`` factory ``build_registry`` wants."""
    return lambda provider_id, spec: OpenAIProvider(provider_id, spec, reactor, http)
