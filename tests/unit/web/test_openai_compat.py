"""The OpenAI-compatible HTTP API (reference §11.2, §11.3): auth, models, chat completions
(non-streaming and SSE), model -> agent mapping, session routing, errors and disconnects,
through StubTreq over GatewayRoot on a MemoryReactorClock."""

from __future__ import annotations

import json
from typing import Any

import attrs

from openclaw_tw.agent.models import ProviderError
from openclaw_tw.web import openai_compat
from tests.support.helpers import hello, stored_keys, stored_rows
from tests.support.http_harness import AUTH, ENABLED, HttpCase, merge

CHAT = "/v1/chat/completions"
NO_ROUTE = "No route-compatible authentication source is configured for openai."


def user(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "openclaw", "messages": [{"role": "user", "content": text}], **extra}


class Disabled(HttpCase):
    config: dict[str, Any] = {}

    def test_endpoints_fall_through_to_404(self) -> None:
        for method, path in (("GET", "/v1/models"), ("GET", "/v1/models/openclaw"),
                             ("POST", CHAT), ("GET", CHAT), ("POST", "/v1/responses"),
                             ("POST", "/v1/embeddings")):
            reply = self.fetch(method, path, {"model": "openclaw"} if method == "POST" else None)
            self.assertEqual((reply.code, reply.body), (404, b"Not Found"), path)
            self.assertEqual(reply.header("Content-Type"), "text/plain; charset=utf-8")
            self.assert_security_headers(reply)
        self.assertEqual(self.spy.requests, [])

    def test_responses_alone_serves_models_but_not_chat(self) -> None:
        self.gw.settings = attrs.evolve(self.gw.settings, responses_enabled=True)
        self.assertEqual(self.fetch("GET", "/v1/models").code, 200)
        self.assertEqual(self.post(CHAT, user("hi")).code, 404)
        self.assertEqual(self.post("/v1/responses", {"input": "hi"}).code, 200)


class Auth(HttpCase):
    def test_missing_and_wrong_token(self) -> None:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
            reply = self.fetch("GET", "/v1/models", headers=headers)
            self.assertEqual(reply.code, 401, headers)
            self.assertEqual(reply.body,
                             b'{"error":{"message":"Unauthorized","type":"unauthorized"}}')
            self.assertEqual(reply.header("Content-Type"), "application/json; charset=utf-8")
            self.assert_security_headers(reply)

    def test_wrong_token_is_answered_after_the_limiter_delay(self) -> None:
        d = self.start("GET", "/v1/models", headers={"Authorization": "Bearer wrong"})
        self.stub.flush()
        self.assertNoResult(d)
        self.clock.advance(0.25)
        self.stub.flush()
        self.assertEqual(self.successResultOf(d).code, 401)
        # a missing token is answered at once and not counted
        d = self.start("GET", "/v1/models", headers={})
        self.stub.flush()
        self.assertEqual(self.successResultOf(d).code, 401)

    def test_password_is_accepted_too(self) -> None:
        self.gw.settings = attrs.evolve(self.gw.settings, password="pw-2")
        reply = self.fetch("GET", "/v1/models", headers={"Authorization": "Bearer pw-2"})
        self.assertEqual(reply.code, 200)

    def test_forwarded_headers_from_an_untrusted_peer_are_403(self) -> None:
        reply = self.fetch("GET", "/v1/models", headers={**AUTH, "X-Forwarded-For": "1.2.3.4"})
        self.assertEqual(reply.code, 403)
        self.assertEqual(reply.json()["error"]["type"], "proxy_attribution_required")


class Lockout(HttpCase):
    """A remote client (behind a trusted proxy) is locked out after 10 failures: 429 +
    Retry-After, even with the right token, on HTTP and WebSocket alike (one limiter)."""

    config = merge(ENABLED, {"gateway": {"trustedProxies": ["127.0.0.1"]}})

    def test_lockout(self) -> None:
        remote = {"X-Forwarded-For": "203.0.113.9"}
        for _ in range(10):
            d = self.start("GET", "/v1/models", headers={**remote, "Authorization": "Bearer x"})
            self.clock.advance(0.25)
            self.assertEqual(self.settle(d).code, 401)
        reply = self.fetch("GET", "/v1/models", headers={**remote, **AUTH})
        self.assertEqual(reply.code, 429)
        self.assertEqual(reply.json()["error"]["type"], "rate_limited")
        self.assertEqual(reply.header("Retry-After"), "300")
        self.assertIsNotNone(self.gw.auth_limiter.retry_after_ms("203.0.113.9", False))
        # other clients are not affected
        self.assertEqual(self.fetch("GET", "/v1/models").code, 200)


class Models(HttpCase):
    config = merge(ENABLED, {"agents": {"list": [{"id": "main"}, {"id": "beta"}]}})

    def test_list(self) -> None:
        reply = self.fetch("GET", "/v1/models")
        self.assertEqual(reply.code, 200)
        self.assertEqual(reply.header("Content-Type"), "application/json; charset=utf-8")
        body = reply.json()
        self.assertEqual(body["object"], "list")
        self.assertEqual([m["id"] for m in body["data"]],
                         ["openclaw", "openclaw/default", "openclaw/main", "openclaw/beta"])
        self.assertEqual(body["data"][0], {"id": "openclaw", "object": "model", "created": 0,
                                           "owned_by": "openclaw", "permission": []})

    def test_one(self) -> None:
        reply = self.fetch("GET", "/v1/models/openclaw%2Fdefault")
        self.assertEqual(reply.body, b'{"id":"openclaw/default","object":"model","created":0,'
                                     b'"owned_by":"openclaw","permission":[]}')
        self.assertEqual(self.fetch("GET", "/v1/models/openclaw/beta").json()["id"],
                         "openclaw/beta")
        reply = self.fetch("GET", "/v1/models/gpt-4")
        self.assert_openai_error(reply, 404, "The model 'gpt-4' does not exist")
        self.assertEqual(reply.json()["error"]["code"], "model_not_found")

    def test_methods(self) -> None:
        reply = self.fetch("POST", "/v1/models", {})
        self.assertEqual((reply.code, reply.header("Allow")), (405, "GET"))

    def test_embeddings_without_provider(self) -> None:
        reply = self.post("/v1/embeddings", {"model": "openclaw", "input": "x"})
        self.assertEqual(reply.body, b'{"error":{"message":"internal error","type":"api_error"}}')
        self.assertEqual(reply.code, 500)

    def test_an_invalid_embeddings_request_is_a_400_not_an_internal_error(self) -> None:
        """What the reference answers (its zod schema, then its checks, in its order; the
        messages measured with its zod 4), where every request was a 500 "internal
        error" (found by the HTTP fuzz tier)."""
        for body, message in (
                ({}, "Missing `model`."),
                ({"tool": "x"}, "Missing `model`."),
                ({"model": 5, "input": 5}, "model: Invalid input: expected string, received "
                                           "number"),
                ({"model": "openclaw", "input": [1]}, "input: Invalid input"),
                ({"model": "openclaw", "encoding_format": "x"},
                 'encoding_format: Invalid option: expected one of "float"|"base64"'),
                ({"model": "openclaw", "dimensions": 1.5},
                 "dimensions: Invalid input: expected int, received number"),
                ({"model": "openclaw", "dimensions": 0},
                 "dimensions: Too small: expected number to be >0"),
                ({"model": "openclaw", "dimensions": True},
                 "dimensions: Invalid input: expected number, received boolean"),
                ({"model": "openclaw", "user": None},
                 "user: Invalid input: expected string, received null"),
                ({"model": "gpt-4", "input": "x"},
                 "Invalid `model`. Use `openclaw` or `openclaw/<agentId>`."),
                ({"model": "openclaw"}, "`input` must be a string or an array of strings."),
                ({"model": "openclaw", "input": ["a", ""]},
                 "`input` must contain at least one non-empty string."),
                ({"model": "openclaw", "input": ["a"] * 129}, "Too many inputs (max 128)."),
                ({"model": "openclaw", "input": "x" * 8193}, "Input too long (max 8192 chars)."),
                ({"model": "openclaw", "input": ["x" * 8000] * 9},
                 "Total input too large (max 65536 chars)."),
                ({"model": "openclaw/nope", "input": "x"}, "Unknown agent 'nope'.")):
            self.assert_openai_error(self.post("/v1/embeddings", body), 400, message)
        reply = self.post("/v1/embeddings", {"model": "openclaw", "input": "x"},
                          headers={**AUTH, "x-openclaw-model": "voyage/v3"})
        self.assert_openai_error(reply, 400, "This agent does not allow that embedding "
                                 "provider on `/v1/embeddings`.")


class ChatCompletions(HttpCase):
    config = merge(ENABLED, {"agents": {"list": [{"id": "main"}, {"id": "beta"}]}})

    def keys(self) -> list[str]:
        return sorted(stored_keys(self.app))

    def test_non_streaming_shape(self) -> None:
        reply = self.post(CHAT, user("hi there", model="openclaw/default"))
        self.assertEqual(reply.code, 200, reply)
        self.assertEqual(reply.header("Content-Type"), "application/json; charset=utf-8")
        self.assert_security_headers(reply)
        body = reply.json()
        self.assertEqual(list(body), ["id", "object", "created", "model", "choices", "usage"])
        self.assertTrue(body["id"].startswith("chatcmpl_"))
        self.assertEqual(body["object"], "chat.completion")
        self.assertEqual(body["model"], "openclaw/default")
        self.assertEqual(body["created"], self.gw.now_ms() // 1000)
        self.assertEqual(body["choices"], [{
            "index": 0, "message": {"role": "assistant",
                                    "content": "[offline model] You said: hi there"},
            "finish_reason": "stop"}])
        # the offline model reports no usage: zeros, as the real gateway answers for a
        # provider that sends none (its word counts are not tokens)
        self.assertEqual(body["usage"],
                         {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})

    def test_model_defaults_to_openclaw(self) -> None:
        reply = self.post(CHAT, {"messages": [{"role": "user", "content": "x"}]})
        self.assertEqual((reply.code, reply.json()["model"]), (200, "openclaw"))

    def test_streaming_shape(self) -> None:
        reply = self.post(CHAT, user("count to 7", stream=True,
                                     stream_options={"include_usage": True}))
        self.assertEqual(reply.code, 200)
        self.assertEqual(reply.header("Content-Type"), "text/event-stream; charset=utf-8")
        self.assertEqual(reply.header("Cache-Control"), "no-cache")
        self.assert_security_headers(reply)
        frames = reply.sse()
        self.assertEqual(frames[-1], (None, "[DONE]"))
        chunks = [json.loads(data) for _, data in frames[:-1]]
        self.assertEqual({c["id"] for c in chunks}, {chunks[0]["id"]})
        self.assertTrue(all(c["object"] == "chat.completion.chunk" for c in chunks))
        self.assertEqual(chunks[0]["choices"],
                         [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}])
        contents = [c["choices"][0]["delta"]["content"] for c in chunks[1:-2]]
        self.assertEqual("".join(contents), "1, 2, 3, 4, 5, 6, 7.")
        self.assertGreater(len(contents), 1)
        self.assertEqual(chunks[-2]["choices"],
                         [{"index": 0, "delta": {}, "finish_reason": "stop"}])
        self.assertEqual(chunks[-1]["choices"], [])
        self.assertEqual(set(chunks[-1]["usage"]),
                         {"prompt_tokens", "completion_tokens", "total_tokens"})

    def test_streaming_without_include_usage_has_no_usage_chunk(self) -> None:
        frames = self.post(CHAT, user("hello", stream=True)).sse()
        chunks = [json.loads(data) for _, data in frames[:-1]]
        self.assertEqual(chunks[-1]["choices"][0]["finish_reason"], "stop")
        self.assertFalse(any("usage" in c for c in chunks))

    def test_bad_model(self) -> None:
        for model in ("gpt-4o", "openai/", "openclaw/Bad Id"):
            reply = self.post(CHAT, user("hi", model=model))
            self.assertEqual(reply.code, 400)
            self.assertEqual(reply.body, b'{"error":{"message":"Invalid `model`. Use `openclaw` '
                                         b'or `openclaw/<agentId>`.","type":'
                                         b'"invalid_request_error"}}')
        self.assertEqual(self.spy.requests, [])

    def test_model_agent_mapping(self) -> None:
        for model, agent in (("openclaw", "main"), ("openclaw/default", "main"),
                             ("openclaw/beta", "beta"), ("openclaw:beta", "beta"),
                             ("agent:BETA", "beta"), ("openclaw/main", "main")):
            before = set(stored_keys(self.app))
            self.assertEqual(self.post(CHAT, user("hi", model=model)).code, 200, model)
            (key,) = set(stored_keys(self.app)) - before
            self.assertTrue(key.startswith(f"agent:{agent}:openai:"), (model, key))
        reply = self.post(CHAT, user("hi", model="openclaw/ghost"))
        self.assert_openai_error(reply, 400, "Unknown agent 'ghost'.")

    def test_agent_header_overrides_the_model(self) -> None:
        self.post(CHAT, user("hi"), headers={**AUTH, "x-openclaw-agent-id": "beta"})
        self.assertTrue(self.keys()[0].startswith("agent:beta:openai:"))
        reply = self.post(CHAT, user("hi"), headers={**AUTH, "x-openclaw-agent-id": "nobody"})
        self.assert_openai_error(reply, 400, "Unknown agent 'nobody'.")

    def test_session_routing(self) -> None:
        self.post(CHAT, user("a"), headers={**AUTH, "x-openclaw-session-key": "http-test-1"})
        self.post(CHAT, user("b", user="conv:abc"))
        self.post(CHAT, user("c", user="conv:abc"))
        self.post(CHAT, user("d"))
        self.post(CHAT, user("e"))
        keys = self.keys()
        self.assertIn("agent:main:http-test-1", keys)
        self.assertIn("agent:main:openai-user:conv:abc", keys)
        fresh = [k for k in keys if k.startswith("agent:main:openai:")]
        self.assertEqual(len(fresh), 2)
        self.assertEqual(len(keys), 4)
        # the per-user session keeps both turns
        entries = self.transcript("agent:main:openai-user:conv:abc")
        self.assertEqual([e.role for e in entries], ["user", "assistant", "user", "assistant"])
        # a full key in the header is kept as it is
        self.post(CHAT, user("f"), headers={**AUTH, "x-openclaw-session-key":
                                             "agent:beta:openai:custom"})
        self.assertIn("agent:beta:openai:custom", self.keys())

    def test_reserved_session_keys(self) -> None:
        for key in ("subagent:x", "cron:job", "acp:1", "agent:main:subagent:y"):
            reply = self.post(CHAT, user("hi"), headers={**AUTH, "x-openclaw-session-key": key})
            self.assertEqual(reply.code, 400, key)
            self.assertEqual(reply.body, b'{"error":{"message":"`x-openclaw-session-key` cannot '
                                         b'use reserved internal session namespaces.","type":'
                                         b'"invalid_request_error"}}')
        self.assertEqual(self.keys(), [])

    def test_missing_user_message(self) -> None:
        for messages in (None, [], "hi", [{"role": "system", "content": "be brief"}],
                         [{"role": "assistant", "content": "hello"}],
                         [{"role": "user", "content": "   "}], [{"content": "no role"}]):
            body: dict[str, Any] = {"model": "openclaw"}
            if messages is not None:
                body["messages"] = messages
            reply = self.post(CHAT, body)
            self.assertEqual(reply.code, 400, messages)
            self.assertEqual(reply.body, b'{"error":{"message":"Missing user message in '
                                         b'`messages`.","type":"invalid_request_error"}}')
        self.assertEqual(self.spy.requests, [])

    def test_system_messages_and_history_become_system_prompt(self) -> None:
        reply = self.post(CHAT, {"model": "openclaw", "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "No emoji."}]},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": [{"type": "text", "text": "second"},
                                         {"type": "input_text", "text": "question"},
                                         {"type": "image_url", "image_url": {"url": "x"}}]}]})
        self.assertEqual(reply.code, 200)
        self.assertEqual(reply.json()["choices"][0]["message"]["content"],
                         "[offline model] You said: second\nquestion")
        (request,) = self.spy.requests
        system, *rest = request.messages
        self.assertEqual(system["role"], "system")
        self.assertTrue(system["content"].startswith("You are terse.\n\nNo emoji.\n\n"))
        self.assertIn("User: first question\nAssistant: first answer", system["content"])
        self.assertEqual(rest, [{"role": "user", "content": "second\nquestion"}])
        # the transcript keeps only the turn itself
        (row,) = stored_rows(self.app)
        self.assertEqual(self.transcript(row.key)[0].body["content"], "second\nquestion")

    def test_malformed_json_and_non_objects(self) -> None:
        for raw in (b"{not json", b"[1, 2]", b"", b"\xff\xfe"):
            reply = self.post(CHAT, raw=raw)
            self.assertEqual(reply.code, 400, raw)
            self.assertEqual(reply.json()["error"]["type"], "invalid_request_error")

    def test_body_limit(self) -> None:
        self.assertEqual(openai_compat.MAX_BODY_BYTES, 20 * 1024 * 1024)
        self.patch(openai_compat, "MAX_BODY_BYTES", 1000)
        reply = self.post(CHAT, user("x" * 2000))
        self.assert_openai_error(reply, 413, "Payload too large")
        self.assertEqual(self.spy.requests, [])
        self.assertEqual(self.post(CHAT, user("x" * 100)).code, 200)

    def test_sampling_options_are_validated(self) -> None:
        for extra in ({"temperature": 3}, {"top_p": -0.1}, {"frequency_penalty": 2.5},
                      {"presence_penalty": "1"}, {"seed": 1.5}, {"stop": ["a"] * 5},
                      {"max_tokens": 0}, {"max_completion_tokens": "9"}):
            self.assertEqual(self.post(CHAT, user("hi", **extra)).code, 400, extra)
        ok = {"temperature": 0.2, "top_p": 1, "seed": 7, "stop": ["\n"], "max_tokens": 50,
              "tools": [], "tool_choice": "none", "n": 1}
        self.assertEqual(self.post(CHAT, user("hi", **ok)).code, 200)

    def test_get_is_405(self) -> None:
        reply = self.fetch("GET", CHAT)
        self.assertEqual((reply.code, reply.header("Allow"), reply.body),
                         (405, "POST", b"Method Not Allowed"))

    def test_model_override_header(self) -> None:
        headers = {**AUTH, "x-openclaw-model": "offline/offline-echo"}
        self.assertEqual(self.post(CHAT, user("hi"), headers=headers).code, 200)
        self.assertEqual(self.spy.requests[-1].model, "offline-echo")
        for bad in ("nope/x", "offline/"):
            reply = self.post(CHAT, user("hi"), headers={**AUTH, "x-openclaw-model": bad})
            self.assert_openai_error(reply, 400, "Invalid `x-openclaw-model`.")

    def test_ws_subscribers_see_the_http_run(self) -> None:
        client = hello(self.gw, scopes=["operator.read"])
        reply = self.post(CHAT, user("hi"), headers={**AUTH, "x-openclaw-session-key": "obs"})
        run_id = reply.json()["id"]
        client.flush()
        events = [f for f in client.events() if f["payload"].get("runId") == run_id]
        chat_states = [f["payload"]["state"] for f in events if f["event"] == "chat"]
        self.assertIn("delta", chat_states)
        self.assertEqual(chat_states[-1], "final")
        phases = [f["payload"]["data"].get("phase") for f in events
                  if f["event"] == "agent" and f["payload"]["stream"] == "lifecycle"]
        self.assertEqual(phases[0], "start")
        self.assertEqual(phases[-1], "end")
        self.assertEqual({f["payload"]["sessionKey"] for f in events}, {"agent:main:obs"})


class Failures(HttpCase):
    def test_auth_failure_non_streaming_is_401(self) -> None:
        self.spy.fail = ProviderError(NO_ROUTE, "unknown", http_status=401)
        reply = self.post(CHAT, user("hi"))
        self.assertEqual(reply.code, 401)
        self.assertEqual(reply.json(), {"error": {"message": NO_ROUTE,
                                                  "type": "authentication_error"}})

    def test_other_failures_map_to_statuses(self) -> None:
        for err, status, type_ in (
                (ProviderError("slow down", "rate_limit", http_status=429), 429,
                 "rate_limit_error"),
                (ProviderError("too long", "context_length", http_status=400), 400,
                 "invalid_request_error"),
                (ProviderError("upstream 500", "unknown", http_status=500), 502, "api_error"),
                (ProviderError("no answer", "timeout"), 504, "api_error"),
                (ProviderError("boom"), 500, "api_error")):
            self.spy.fail = err
            self.assert_openai_error(self.post(CHAT, user("hi")), status, err.message, type_)

    def test_streaming_failure_is_an_error_chunk(self) -> None:
        self.spy.fail = ProviderError(NO_ROUTE, "unknown", http_status=401)
        reply = self.post(CHAT, user("hi", stream=True))
        self.assertEqual(reply.code, 200)
        frames = reply.sse()
        self.assertEqual(len(frames), 3)
        role = json.loads(frames[0][1])
        self.assertEqual(role["choices"][0]["delta"], {"role": "assistant"})
        self.assertEqual(json.loads(frames[1][1]),
                         {"error": {"message": NO_ROUTE, "type": "authentication_error"}})
        self.assertEqual(frames[2], (None, "[DONE]"))

    def test_refused_while_stopping(self) -> None:
        self.gw.shutting_down = True
        reply = self.post(CHAT, user("hi"))
        self.assert_openai_error(reply, 503, None, "api_error")

    def test_too_many_unfinished_runs_is_429(self) -> None:
        from openclaw_tw.agent import runtime

        self.patch(runtime, "MAX_UNFINISHED", 0)
        reply = self.post(CHAT, user("hi"))
        self.assertEqual(reply.code, 429)
        self.assertEqual(reply.json()["error"]["type"], "rate_limit_error")
        self.assertIn("unfinished runs", reply.json()["error"]["message"])


class Disconnects(HttpCase):
    """A client that goes away aborts its run: nothing stays active or queued."""

    def body_protocol(self, response: Any) -> Any:
        from twisted.internet.protocol import Protocol

        class Collect(Protocol):
            data = b""

            def dataReceived(self, data: bytes) -> None:
                self.data += data

        proto = Collect()
        response.deliverBody(proto)
        return proto

    def check_aborted(self, key_prefix: str) -> None:
        runtime = self.app.runtime
        self.assertEqual(runtime.active, {})
        self.assertEqual(runtime.queues, {})
        self.assertTrue(all(r.outcome is not None for r in runtime.runs.values()))
        (row,) = [r for r in stored_rows(self.app) if r.key.startswith(key_prefix)]
        self.assertEqual(row.status, "aborted")
        entries = self.transcript(row.key)
        self.assertEqual(entries[-1].role, "assistant")
        self.assertTrue(entries[-1].body["aborted"])
        self.assertEqual(entries[-1].body["abortReason"], "disconnect")

    def test_streaming_disconnect_aborts(self) -> None:
        self.spy.hold = True
        response = self.settle(self.start("POST", CHAT, user("hi", stream=True)))
        proto = self.body_protocol(response)
        self.stub.flush()
        self.assertIn(b"partial ", proto.data)
        self.assertEqual(len(self.app.runtime.active), 1)
        proto.transport.stopProducing()  # the client drops the connection mid-stream
        self.stub.flush()
        self.assertEqual(self.spy.cancelled, 1)
        self.check_aborted("agent:main:openai:")

    def test_non_streaming_disconnect_aborts(self) -> None:
        self.spy.hold = True
        d = self.start("POST", CHAT, user("hi"))
        self.stub.flush()
        self.assertEqual(len(self.app.runtime.active), 1)
        d.cancel()  # the client gives up before the answer
        self.stub.flush()
        self.failureResultOf(d)
        self.assertEqual(self.spy.cancelled, 1)
        self.check_aborted("agent:main:openai:")

    def test_queued_run_of_a_gone_client_is_dropped(self) -> None:
        self.spy.hold = True
        headers = {**AUTH, "x-openclaw-session-key": "shared"}
        first = self.start("POST", CHAT, user("one"), headers=headers)
        second = self.start("POST", CHAT, user("two"), headers=headers)
        self.stub.flush()
        self.assertEqual(len(self.app.runtime.queues["agent:main:shared"]), 1)
        second.cancel()
        self.stub.flush()
        self.failureResultOf(second)
        self.assertEqual(list(self.app.runtime.queues.get("agent:main:shared", [])), [])
        first.cancel()
        self.stub.flush()
        self.failureResultOf(first)
        self.assertEqual(self.app.runtime.active, {})
        self.assertTrue(all(r.outcome is not None for r in self.app.runtime.runs.values()))
