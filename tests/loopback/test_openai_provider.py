"""The OpenAI-compatible provider against a fake OpenAI server on a real loopback port (its
configuration and the SSE parser on their own are in tests/unit/agent/test_openai_provider.py)."""

from __future__ import annotations

from typing import Any

from treq.client import HTTPClient
from twisted.internet import reactor
from twisted.internet.defer import CancelledError, Deferred, inlineCallbacks
from twisted.internet.task import Clock
from twisted.trial import unittest
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.server import Site

from openclaw_tw.agent import sse
from openclaw_tw.agent.models import ProviderError
from openclaw_tw.agent.openai import OpenAIProvider
from openclaw_tw.agent.sse import SSEEvent, SSEParser
from tests.support.fakes.openai_server import (
    CONTEXT_TOO_LONG,
    RATE_LIMITED,
    SERVER_ERROR,
    FakeOpenAI,
    error_object,
)
from tests.support.openai_provider import KEY, MESSAGES, Run


class ProviderTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.server = FakeOpenAI(reactor, api_key=KEY).start()
        self.addCleanup(self.server.stop)

    def provider(self, clock: Any = None, **spec: Any) -> OpenAIProvider:
        full = {"baseUrl": self.server.base_url, "apiKey": KEY,
                "models": [{"id": "gpt-4o-mini"}], **spec}
        full = {k: v for k, v in full.items() if v is not None}
        http = None
        if clock is not None:  # timers on the clock, HTTP over the real reactor
            pool = HTTPConnectionPool(reactor, persistent=False)
            http = HTTPClient(Agent(reactor, pool=pool))
        p = OpenAIProvider("fake", full, clock or reactor, http=http, environ={})
        self.addCleanup(p.close)
        return p

    @inlineCallbacks
    def failure(self, run: Run, kind: str | None = None) -> Any:
        err = yield self.assertFailure(run.d, ProviderError)
        if kind is not None:
            self.assertEqual(err.kind, kind, err.message)
        self.assertNotIn(KEY, f"{err.message} {err.preview}")
        return err


class StreamingTests(ProviderTestCase):
    @inlineCallbacks
    def test_deltas_in_order_and_result(self) -> None:
        self.server.behave(chunks=["Hel", "lo, ", "wor", "ld!"])
        run = Run(self.provider())
        result = yield run.d
        self.assertEqual(run.texts, ["Hel", "lo, ", "wor", "ld!"])
        self.assertEqual(result.text, "Hello, world!")
        self.assertEqual(result.stop_reason, "stop")
        self.assertEqual((result.input_tokens, result.output_tokens), (7, 4))
        self.assertEqual(result.response_id, "chatcmpl-fake0001")
        self.assertEqual(result.response_model, "gpt-4o-mini")
        self.assertEqual(run.tools, [])
        finished = yield self.server.requests[-1].finished
        self.assertTrue(finished)

    @inlineCallbacks
    def test_request_is_openai_shaped(self) -> None:
        p = self.provider(headers={"X-Title": "openclaw_tw", "HTTP-Referer": "${NOPE}"})
        yield Run(p, max_tokens=64).d
        rec = self.server.requests[-1]
        self.assertEqual((rec.method, rec.path), ("POST", "/v1/chat/completions"))
        self.assertEqual(rec.body, {"model": "gpt-4o-mini", "messages": MESSAGES,
                                    "stream": True, "stream_options": {"include_usage": True},
                                    "max_tokens": 64})
        self.assertEqual(rec.headers["authorization"], f"Bearer {KEY}")
        self.assertEqual(rec.headers["content-type"], "application/json")
        self.assertEqual(rec.headers["x-title"], "openclaw_tw")
        self.assertNotIn("http-referer", rec.headers)  # an unset env reference is left out

    @inlineCallbacks
    def test_bytes_split_across_writes_crlf_and_comments(self) -> None:
        text = "every line of this reply is cut into tiny TCP writes — ünïcödé too"
        self.server.behave(text=text, split_bytes=5, crlf=True, comments=True)
        run = Run(self.provider())
        result = yield run.d
        self.assertEqual(result.text, text)
        self.assertEqual("".join(run.texts), text)
        self.assertEqual(result.response_id, "chatcmpl-fake0001")

    @inlineCallbacks
    def test_lines_really_arrive_split(self) -> None:
        fed: list[bytes] = []
        feed = SSEParser.feed
        self.patch(sse.SSEParser, "feed", lambda parser, chunk: fed.append(chunk) or
                   feed(parser, chunk))
        self.server.behave(text="split me please", split_bytes=3)
        result = yield Run(self.provider()).d
        self.assertEqual(result.text, "split me please")
        self.assertGreater(len(fed), 1)
        self.assertTrue(any(not chunk.endswith(b"\n") for chunk in fed))

    @inlineCallbacks
    def test_length_and_server_model(self) -> None:
        self.server.behave(text="cut short", finish_reason="length", model="gpt-4o-mini-2024")
        result = yield Run(self.provider()).d
        self.assertEqual((result.stop_reason, result.response_model),
                         ("length", "gpt-4o-mini-2024"))

    @inlineCallbacks
    def test_server_that_ignores_stream_answers_json(self) -> None:
        self.server.behave(text="whole reply at once", force_json=True)
        run = Run(self.provider())
        result = yield run.d
        self.assertEqual(run.texts, ["whole reply at once"])
        self.assertEqual((result.text, result.output_tokens), ("whole reply at once", 4))

    @inlineCallbacks
    def test_tool_calls(self) -> None:
        self.server.behave(text="", tool_calls=[
            {"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}',
             "split": ['{"ci', 'ty": "Pa', 'ris"}']},
            {"id": "call_2", "name": "get_time", "arguments": ""}])
        run = Run(self.provider())
        result = yield run.d
        self.assertEqual(result.stop_reason, "tool_calls")
        self.assertEqual(result.text, "")
        phases = [(t["phase"], t["toolCallId"], t["name"], t["arguments"]) for t in run.tools]
        self.assertEqual(phases, [
            ("start", "call_1", "get_weather", ""),
            ("update", "call_1", "get_weather", '{"ci'),
            ("update", "call_1", "get_weather", '{"city": "Pa'),
            ("update", "call_1", "get_weather", '{"city": "Paris"}'),
            ("end", "call_1", "get_weather", '{"city": "Paris"}'),
            ("start", "call_2", "get_time", ""),
            ("end", "call_2", "get_time", "")])
        self.assertEqual(run.tools[4]["args"], {"city": "Paris"})
        self.assertEqual(run.tools[6]["args"], {})

    @inlineCallbacks
    def test_models_endpoint(self) -> None:
        import treq

        resp = yield treq.get(f"{self.server.base_url}/models", persistent=False,
                              headers={"Authorization": f"Bearer {KEY}"})
        body = yield resp.json()
        self.assertEqual([m["id"] for m in body["data"]], ["gpt-4o-mini", "fake-model"])


class ErrorTests(ProviderTestCase):
    @inlineCallbacks
    def test_rate_limit(self) -> None:
        self.server.enqueue(status=429, error=RATE_LIMITED, headers={"Retry-After": "2"})
        err = yield self.failure(Run(self.provider()), "rate_limit")
        self.assertEqual((err.retry_after_ms, err.http_status, err.provider_error_type),
                         (2000, 429, "requests"))
        self.assertIn("Rate limit reached", err.preview)

    @inlineCallbacks
    def test_401_without_a_key(self) -> None:
        err = yield self.failure(Run(self.provider(apiKey=None)), "unknown")
        self.assertEqual(err.message,
                         "No route-compatible authentication source is configured for fake.")
        self.assertEqual(err.http_status, 401)
        self.assertNotIn("authorization", self.server.requests[-1].headers)

    @inlineCallbacks
    def test_401_with_a_wrong_key(self) -> None:
        wrong = "sk-wrong-key-9876543210"
        err = yield self.failure(Run(self.provider(apiKey=wrong)), "unknown")
        self.assertTrue(err.message.startswith("Incorrect API key provided: sk-******3210."))
        self.assertEqual((err.http_status, err.provider_error_type),
                         (401, "invalid_request_error"))

    @inlineCallbacks
    def test_500(self) -> None:
        self.server.enqueue(status=500, error=SERVER_ERROR)
        err = yield self.failure(Run(self.provider()), "unknown")
        self.assertEqual((err.http_status, err.provider_error_type), (500, "server_error"))
        self.assertIn("The server had an error", err.preview)
        self.assertIn("fake HTTP 500", err.message)

    @inlineCallbacks
    def test_plain_text_error_body_and_key_redaction(self) -> None:
        self.server.enqueue(status=502, error=f"upstream said no to {KEY}".encode())
        err = yield self.failure(Run(self.provider()), "unknown")
        self.assertEqual(err.http_status, 502)
        self.assertEqual(err.preview, "upstream said no to [redacted]")

    @inlineCallbacks
    def test_context_length(self) -> None:
        self.server.enqueue(status=400, error=CONTEXT_TOO_LONG)
        err = yield self.failure(Run(self.provider()), "context_length")
        self.assertEqual(err.http_status, 400)
        self.assertIn("maximum context length", err.message)

    @inlineCallbacks
    def test_garbage_in_the_stream(self) -> None:
        self.server.behave(chunks=["ok ", "then"], garbage=True)
        run = Run(self.provider())
        err = yield self.failure(run, "unknown")
        self.assertIn("malformed stream from fake", err.message)
        self.assertEqual(run.texts, ["ok "])

    @inlineCallbacks
    def test_error_event_in_the_stream(self) -> None:
        self.server.behave(chunks=["partial ", "more"],
                           stream_error=error_object("overloaded", "server_error"))
        err = yield self.failure(Run(self.provider()), "unknown")
        self.assertEqual((err.message, err.provider_error_type),
                         ("fake stream error: overloaded", "server_error"))

    @inlineCallbacks
    def test_content_filter_without_text_is_a_refusal(self) -> None:
        self.server.behave(text="", finish_reason="content_filter")
        yield self.failure(Run(self.provider()), "refusal")

    @inlineCallbacks
    def test_server_drops_the_connection_mid_stream(self) -> None:
        self.server.behave(chunks=["one ", "two"], stall_after=2)
        run = Run(self.provider())
        yield run.first_text
        yield self.server.drop_connections()
        err = yield self.failure(run, "unknown")
        self.assertIn("closed the stream before it completed", err.message)

    @inlineCallbacks
    def test_connection_refused(self) -> None:
        port = reactor.listenTCP(0, Site(None), interface="127.0.0.1")
        number = port.getHost().port
        yield port.stopListening()
        run = Run(self.provider(baseUrl=f"http://127.0.0.1:{number}/v1/"))
        err = yield self.failure(run, "unknown")
        self.assertEqual(err.message,
                         f"fake unreachable at http://127.0.0.1:{number}/v1: connection refused")

    @inlineCallbacks
    def test_on_text_raising_fails_the_call_and_drops_the_connection(self) -> None:
        self.server.behave(chunks=["a", "b"], stall_after=3)

        def boom(text: str) -> None:
            raise RuntimeError("consumer broke")

        run = Run(self.provider(), on_text=boom)
        yield self.assertFailure(run.d, RuntimeError)
        finished = yield self.server.requests[-1].finished
        self.assertFalse(finished)


class CancelAndTimeoutTests(ProviderTestCase):
    @inlineCallbacks
    def test_cancel_mid_stream_aborts_the_connection(self) -> None:
        self.server.behave(chunks=["first ", "second"], stall_after=2)
        run = Run(self.provider())
        yield run.first_text
        run.d.cancel()
        yield self.assertFailure(run.d, CancelledError)
        finished = yield self.server.requests[-1].finished
        self.assertFalse(finished)  # the server saw the client go away
        self.assertEqual(run.texts, ["first "])

    @inlineCallbacks
    def test_cancel_before_the_response(self) -> None:
        self.server.behave(hold=True)
        received = self.server.received()
        run = Run(self.provider())
        rec = yield received
        run.d.cancel()
        yield self.assertFailure(run.d, CancelledError)
        self.assertFalse((yield rec.finished))

    @inlineCallbacks
    def test_idle_timeout_mid_stream_on_the_clock(self) -> None:
        clock = Clock()
        self.server.behave(chunks=["first ", "second"], stall_after=2)
        run = Run(self.provider(clock, timeoutSeconds=30))
        yield run.first_text
        clock.advance(29.9)
        self.assertFalse(run.d.called)
        clock.advance(0.1)
        err = yield self.failure(run, "timeout")
        self.assertIn("30s", err.message)
        self.assertFalse((yield self.server.requests[-1].finished))
        self.assertEqual(clock.getDelayedCalls(), [])

    @inlineCallbacks
    def test_idle_timeout_before_headers_default_120s(self) -> None:
        clock = Clock()
        self.server.behave(hold=True)
        received = self.server.received()
        run = Run(self.provider(clock))
        rec = yield received
        clock.advance(120)
        yield self.failure(run, "timeout")
        self.assertFalse((yield rec.finished))

    @inlineCallbacks
    def test_done_then_silence_still_delivers_the_result(self) -> None:
        clock = Clock()
        saw_done: Deferred[None] = Deferred()
        feed = SSEParser.feed

        def spy(parser: SSEParser, chunk: bytes) -> list[SSEEvent]:
            events = feed(parser, chunk)
            if any(ev.data == "[DONE]" for ev in events):  # once the provider has seen it
                reactor.callLater(0, saw_done.callback, None)
            return events

        self.patch(sse.SSEParser, "feed", spy)
        self.server.behave(chunks=["all ", "there"], stall_after=6)  # [DONE], no end of body
        run = Run(self.provider(clock))
        yield saw_done
        self.assertFalse(run.d.called)
        clock.advance(120)
        result = yield run.d
        self.assertEqual(result.text, "all there")
        self.assertFalse((yield self.server.requests[-1].finished))  # the connection dropped

    @inlineCallbacks
    def test_completed_stream_leaves_no_timer(self) -> None:
        clock = Clock()
        result = yield Run(self.provider(clock)).d
        self.assertEqual(result.text, "Hello from the fake model.")
        yield self.server.requests[-1].finished
        self.assertEqual(clock.getDelayedCalls(), [])
