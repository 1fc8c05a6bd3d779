"""The OpenAI-compatible provider's configuration, key sources and error mapping (in memory,
over StubTreq), and the SSE parser on its own; the provider against a fake OpenAI server on a
real port is in tests/loopback/test_openai_provider.py."""

from __future__ import annotations

from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.trial import unittest
from twisted.web.http_headers import Headers

from openclaw_tw.agent.models import Usage, build_registry
from openclaw_tw.agent.openai import OpenAIProvider, provider_factory, resolve_secret, usage_of
from openclaw_tw.agent.sse import SSEEvent, SSEParser
from tests.support.fakes.openai_server import FakeOpenAI
from tests.support.openai_provider import Run


class ConfigTests(unittest.TestCase):
    def test_resolve_secret(self) -> None:
        env = {"OPENAI_API_KEY": "sk-env", "EMPTY": ""}
        self.assertEqual(resolve_secret("sk-literal", env), "sk-literal")
        self.assertEqual(resolve_secret("${OPENAI_API_KEY}", env), "sk-env")
        self.assertEqual(resolve_secret("Bearer ${OPENAI_API_KEY}", env), "Bearer sk-env")
        self.assertEqual(resolve_secret({"env": "OPENAI_API_KEY"}, env), "sk-env")
        self.assertEqual(resolve_secret({"source": "env", "id": "OPENAI_API_KEY"}, env),
                         "sk-env")
        for missing in ("${NOPE}", {"env": "NOPE"}, "${EMPTY}", "", None, 42):
            self.assertIsNone(resolve_secret(missing, env), missing)

    def test_key_sources_and_repr(self) -> None:
        env = {"MY_KEY": "sk-from-env", "LOCAL_LLM_API_KEY": "sk-conventional"}
        p = OpenAIProvider("local-llm", {"apiKey": "${MY_KEY}"}, Clock(), http=object(),
                           environ=env)
        self.assertEqual(p.request_headers()["Authorization"], "Bearer sk-from-env")
        self.assertNotIn("sk-from-env", repr(p))
        p = OpenAIProvider("local-llm", {}, Clock(), http=object(), environ=env)
        self.assertEqual(p.request_headers()["Authorization"], "Bearer sk-conventional")
        self.assertEqual(p.url, "https://api.openai.com/v1/chat/completions")
        p = OpenAIProvider("ollama", {"baseUrl": "http://127.0.0.1:11434/v1/"}, Clock(),
                           http=object(), environ=env)
        self.assertNotIn("Authorization", p.request_headers())
        self.assertEqual(p.url, "http://127.0.0.1:11434/v1/chat/completions")
        self.assertEqual((p.id, p.api, p.timeout), ("ollama", "openai-completions", 120.0))

    def test_error_mapping(self) -> None:
        clock = Clock()
        clock.advance(1_000_000)
        p = OpenAIProvider("gw", {"headers": {"api-key": "hdr-secret-value"}}, clock,
                           http=object(), environ={})
        self.assertTrue(p.has_key)  # an auth header of its own counts as a key
        err = p.http_error(401, Headers(), b'{"error": {"message": "bad hdr-secret-value"}}')
        self.assertEqual(err.message, "bad [redacted]")
        for headers, ms in (({"retry-after-ms": ["1500"]}, 1500),
                            ({"retry-after": ["0.25"]}, 250),
                            ({"retry-after": ["Mon, 12 Jan 1970 13:46:50 GMT"]}, 10_000),
                            ({"retry-after": ["soon"]}, None), ({}, None)):
            err = p.http_error(429, Headers(headers), b"slow down")
            self.assertEqual((err.kind, err.retry_after_ms, err.preview),
                             ("rate_limit", ms, "slow down"), headers)
        err = p.http_error(400, Headers(), b'{"detail": "prompt has too many tokens"}')
        self.assertEqual(err.kind, "context_length")
        err = p.http_error(404, Headers(), b'{"error": "model not found"}')
        self.assertEqual((err.kind, err.http_status, err.preview),
                         ("unknown", 404, "model not found"))
        err = p.stream_error({"error": {"message": "slow", "code": "rate_limit_exceeded"}})
        self.assertEqual(err.kind, "rate_limit")

    def test_in_memory_with_stub_treq(self) -> None:
        clock = Clock()
        fake = FakeOpenAI(clock)
        fake.behave(chunks=["in ", "memory"], delay=0.5)
        stub = StubTreq(fake.resource)
        p = OpenAIProvider("fake", {"baseUrl": "http://fake.invalid/v1"}, clock, http=stub,
                           environ={})
        run = Run(p)
        for _ in range(8):
            stub.flush()
            clock.advance(0.5)
        self.assertEqual(self.successResultOf(run.d).text, "in memory")
        self.assertEqual(run.texts, ["in ", "memory"])
        self.assertEqual(fake.requests[-1].body["stream"], True)

    def test_registry_builds_it(self) -> None:
        config = {"models": {"providers": {"ollama": {
            "baseUrl": "http://127.0.0.1:11434/v1", "models": [{"id": "llama3.2"}]}}},
            "agents": {"defaults": {"model": {"primary": "ollama/llama3.2"}}}}
        registry = build_registry(config, provider_factory(Clock(), http=object()), object())
        provider, model = registry.resolve(None)
        self.assertIsInstance(provider, OpenAIProvider)
        self.assertEqual((provider.id, model), ("ollama", "llama3.2"))

    def test_registry_keeps_declared_windows_and_prices(self) -> None:
        config = {"models": {"providers": {"mock": {"models": [
            {"id": "priced", "contextWindow": 128000,
             "cost": {"input": 3, "output": 15, "cacheRead": 0.3, "cacheWrite": 3.75}},
            {"id": "free", "cost": {"input": 0, "output": 0}}, {"id": "bare"}]}}}}
        registry = build_registry(config, provider_factory(Clock(), http=object()), object())
        priced, free, bare = (registry.info(f"mock/{m}") for m in ("priced", "free", "bare"))
        assert priced is not None and free is not None and bare is not None
        self.assertEqual((priced.context_tokens, priced.cost), (128000, (3, 15, 0.3, 3.75)))
        self.assertEqual((free.context_tokens, free.cost), (None, (0, 0, 0, 0)))
        self.assertEqual((bare.context_tokens, bare.cost, bare.context_window),
                         (None, None, 128000))  # models.list still shows 128000 for it
        self.assertEqual(priced.cost_of(Usage(100, 6)),
                         {"input": 0.0003, "output": 0.00009, "cacheRead": 0.0,
                          "cacheWrite": 0.0, "total": 0.00039})
        self.assertIsNone(bare.cost_of(Usage(100, 6)))
        offline = registry.info("offline/offline-echo")
        assert offline is not None
        self.assertEqual(offline.context_tokens, 8192)

    def test_usage_buckets(self) -> None:
        # as the real gateway's normalizeUsage: OpenAI's cached tokens are part of
        # prompt_tokens and not input; Anthropic-style cache counts are not part of it
        self.assertEqual(usage_of({"prompt_tokens": 100, "completion_tokens": 6,
                                   "total_tokens": 106}), Usage(100, 6))
        self.assertEqual(usage_of({"prompt_tokens": 250, "completion_tokens": 7,
                                   "prompt_tokens_details": {"cached_tokens": 200}}),
                         Usage(50, 7, cache_read=200))
        self.assertEqual(usage_of({"prompt_tokens": 300, "completion_tokens": 1,
                                   "prompt_tokens_details": {"cached_tokens": 100,
                                                             "cache_write_tokens": 50}}),
                         Usage(150, 1, cache_read=100, cache_write=50))
        self.assertEqual(usage_of({"prompt_tokens": 10, "completion_tokens": 2,
                                   "cache_read_input_tokens": 30,
                                   "cache_creation_input_tokens": 5}),
                         Usage(10, 2, cache_read=30, cache_write=5))
        self.assertEqual(usage_of({}), Usage())
        self.assertFalse(usage_of({"prompt_tokens": None}).reported)
        u = Usage(50, 7, cache_read=200)
        self.assertEqual((u.prompt, u.total, u.reported), (250, 257, True))


def feed_all(parser: SSEParser, pieces: list[bytes]) -> list[SSEEvent]:
    return [ev for piece in pieces for ev in parser.feed(piece)]


class SSEParserTests(unittest.TestCase):
    STREAM = (b': hello\n\ndata: {"a": 1}\n\nevent: error\ndata: {"b":\ndata: 2}\n\n'
              b"data: [DONE]\n\n")
    EVENTS = [SSEEvent("message", '{"a": 1}'), SSEEvent("error", '{"b":\n2}'),
              SSEEvent("message", "[DONE]")]

    def test_multiple_events_in_one_chunk(self) -> None:
        self.assertEqual(SSEParser().feed(self.STREAM), self.EVENTS)

    def test_every_split_point(self) -> None:
        for i in range(len(self.STREAM) + 1):
            pieces = [self.STREAM[:i], self.STREAM[i:]]
            self.assertEqual(feed_all(SSEParser(), pieces), self.EVENTS, i)
        self.assertEqual(feed_all(SSEParser(), [bytes([b]) for b in self.STREAM]), self.EVENTS)

    def test_crlf_and_cr_even_split_between_cr_and_lf(self) -> None:
        crlf = self.STREAM.replace(b"\n", b"\r\n")
        for i in range(len(crlf) + 1):
            self.assertEqual(feed_all(SSEParser(), [crlf[:i], crlf[i:]]), self.EVENTS, i)
        cr = self.STREAM.replace(b"\n", b"\r")
        self.assertEqual(feed_all(SSEParser(), [bytes([b]) for b in cr]), self.EVENTS)

    def test_comments_fields_and_spaces(self) -> None:
        stream = b":ping\nid: 7\nretry: 100\ndata:no-space\ndata:  two\nunknown: x\n\n"
        self.assertEqual(SSEParser().feed(stream), [SSEEvent("message", "no-space\n two")])

    def test_utf8_split_inside_a_character(self) -> None:
        data = "data: héllo ✓\n\n".encode()
        self.assertEqual(feed_all(SSEParser(), [bytes([b]) for b in data]),
                         [SSEEvent("message", "héllo ✓")])

    def test_blank_lines_without_data_and_close_flushes(self) -> None:
        parser = SSEParser()
        self.assertEqual(parser.feed(b"\n\n"), [])
        self.assertEqual(parser.feed(b'data: {"last": true}'), [])
        self.assertEqual(parser.close(), [SSEEvent("message", '{"last": true}')])

    def test_bom_and_overlong_line(self) -> None:
        self.assertEqual(SSEParser().feed("\ufeffdata: x\n\n".encode()),
                         [SSEEvent("message", "x")])
        parser = SSEParser(max_line=16)
        with self.assertRaises(ValueError):
            parser.feed(b"data: " + b"x" * 32)
