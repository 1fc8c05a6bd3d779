"""``POST /v1/responses`` (reference §11.3, traces/http-openai-compat*.txt): request shapes,
non-streaming and streaming answers, failures, ``previous_response_id`` continuity."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import succeed

from openclaw_tw.agent.models import ModelResult, ProviderError
from openclaw_tw.web import responses
from tests.support.helpers import stored_keys, stored_rows
from tests.support.http_harness import AUTH, HttpCase

PATH = "/v1/responses"
NO_ROUTE = "No route-compatible authentication source is configured for openai."
USAGE_KEYS = ["input_tokens", "input_tokens_details", "output_tokens", "output_tokens_details",
              "total_tokens"]
STREAM_TYPES = ["response.created", "response.in_progress", "response.output_item.added",
                "response.content_part.added"]
DONE_TYPES = ["response.output_text.done", "response.content_part.done",
              "response.output_item.done", "response.completed"]


def events(reply: Any) -> list[tuple[str | None, Any]]:
    frames = reply.sse()
    return [(e, d if d == "[DONE]" else json.loads(d)) for e, d in frames]


class Responses(HttpCase):
    def test_non_streaming_shape(self) -> None:
        reply = self.post(PATH, {"model": "openclaw", "input": "hello there"})
        self.assertEqual(reply.code, 200, reply)
        self.assert_security_headers(reply)
        body = reply.json()
        self.assertEqual(list(body), ["id", "object", "created_at", "status", "model", "output",
                                      "usage"])
        self.assertTrue(body["id"].startswith("resp_"))
        self.assertEqual((body["object"], body["status"], body["model"]),
                         ("response", "completed", "openclaw"))
        (item,) = body["output"]
        self.assertTrue(item.pop("id").startswith("msg_"))
        self.assertEqual(item, {"type": "message", "role": "assistant", "content": [
            {"type": "output_text", "text": "[offline model] You said: hello there"}],
            "phase": "final_answer", "status": "completed"})
        usage = body["usage"]
        self.assertEqual(list(usage), USAGE_KEYS)
        self.assertEqual(usage["input_tokens_details"], {"cached_tokens": 0,
                                                         "cache_write_tokens": 0})
        self.assertEqual(usage["output_tokens_details"], {"reasoning_tokens": 0})
        self.assertEqual(usage["total_tokens"], usage["input_tokens"] + usage["output_tokens"])
        (key,) = stored_keys(self.app)
        self.assertTrue(key.startswith("agent:main:openresponses:"), key)

    def test_streaming_events(self) -> None:
        reply = self.post(PATH, {"model": "openclaw", "input": "count to 10", "stream": True})
        self.assertEqual(reply.code, 200)
        self.assertEqual(reply.header("Content-Type"), "text/event-stream; charset=utf-8")
        evs = events(reply)
        self.assertEqual(evs[-1], (None, "[DONE]"))
        named = evs[:-1]
        for name, data in named:
            self.assertEqual(name, data["type"])
        types = [n for n, _ in named]
        deltas = [d for n, d in named if n == "response.output_text.delta"]
        self.assertEqual(types, STREAM_TYPES + ["response.output_text.delta"] * len(deltas)
                         + DONE_TYPES)
        self.assertGreater(len(deltas), 1)
        text = "".join(d["delta"] for d in deltas)
        self.assertEqual(text, "1, 2, 3, 4, 5, 6, 7, 8, 9, 10.")
        created, in_progress, added, part = (d for _, d in named[:4])
        rid = created["response"]["id"]
        self.assertEqual(created["response"]["status"], "in_progress")
        self.assertEqual(created["response"]["output"], [])
        self.assertEqual(in_progress["response"]["id"], rid)
        item_id = added["item"]["id"]
        self.assertEqual(added, {"type": "response.output_item.added", "output_index": 0,
                                 "item": {"type": "message", "id": item_id,
                                          "role": "assistant", "content": [],
                                          "status": "in_progress"}})
        self.assertEqual(part["part"], {"type": "output_text", "text": ""})
        self.assertEqual(set(deltas[0]), {"type", "item_id", "output_index", "content_index",
                                          "delta"})
        text_done, part_done, item_done, completed = (d for _, d in named[-4:])
        self.assertEqual(text_done["text"], text)
        self.assertEqual(part_done["part"], {"type": "output_text", "text": text})
        self.assertEqual(item_done["item"]["content"], [{"type": "output_text", "text": text}])
        self.assertEqual(completed["response"]["id"], rid)
        self.assertEqual(completed["response"]["status"], "completed")
        self.assertEqual(completed["response"]["output"], [item_done["item"]])

    def test_item_input_and_instructions(self) -> None:
        reply = self.post(PATH, {"model": "openclaw", "instructions": "Be brief.", "input": [
            {"type": "message", "role": "system", "content": "System text."},
            {"role": "user", "content": "earlier"},
            {"type": "message", "role": "assistant",
             "content": [{"type": "output_text", "text": "earlier reply"}]},
            {"type": "function_call_output", "call_id": "call_1", "output": "42"},
            {"type": "reasoning", "summary": []},
            {"type": "item_reference", "id": "x"},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "now"},
                {"type": "input_image", "image_url": "data:image/png;base64,AA=="},
                {"type": "input_file", "file_id": "f"}]}]})
        self.assertEqual(reply.code, 200, reply)
        self.assertEqual(reply.json()["output"][0]["content"][0]["text"],
                         "[offline model] You said: now")
        system = self.spy.requests[-1].messages[0]
        self.assertEqual(system["role"], "system")
        self.assertTrue(system["content"].startswith("Be brief.\n\nSystem text.\n\n"))
        self.assertIn("User: earlier\nAssistant: earlier reply\nTool:call_1: 42",
                      system["content"])

    def test_missing_input(self) -> None:
        for body in ({"model": "openclaw"}, {"input": ""}, {"input": []}, {"input": 5},
                     {"input": [{"role": "assistant", "content": "x"}]}):
            reply = self.post(PATH, body)
            self.assert_openai_error(reply, 400, "Missing user message in `input`.")

    def test_bad_model_and_reserved_key(self) -> None:
        reply = self.post(PATH, {"model": "gpt-4o", "input": "hi"})
        self.assert_openai_error(reply, 400,
                                 "Invalid `model`. Use `openclaw` or `openclaw/<agentId>`.")
        reply = self.post(PATH, {"input": "hi"}, headers={**AUTH, "x-openclaw-session-key":
                                                          "cron:nightly"})
        self.assertEqual(reply.code, 400)

    def test_user_session(self) -> None:
        self.post(PATH, {"input": "a", "user": "bob"})
        self.post(PATH, {"input": "b", "user": "bob"})
        self.assertEqual(list(stored_keys(self.app)), ["agent:main:openresponses-user:bob"])

    def test_previous_response_id_continues_the_session(self) -> None:
        first = self.post(PATH, {"input": "one"}).json()
        second = self.post(PATH, {"input": "two", "previous_response_id": first["id"]}).json()
        third = self.post(PATH, {"input": "three", "previous_response_id": second["id"],
                                 "stream": True})
        self.assertEqual(third.code, 200)
        (key,) = stored_keys(self.app)
        entries = self.transcript(key)
        self.assertEqual([e.body["content"] for e in entries if e.role == "user"],
                         ["one", "two", "three"])
        # the model saw the earlier turns of that session
        self.assertEqual([m["content"] for m in self.spy.requests[-1].messages
                          if m["role"] == "user"], ["one", "two", "three"])

    def test_unknown_previous_response_id(self) -> None:
        reply = self.post(PATH, {"input": "x", "previous_response_id": "resp_nope"})
        self.assert_openai_error(reply, 404, "Previous response with id 'resp_nope' not found.")
        self.assertEqual(reply.json()["error"]["param"], "previous_response_id")

    def test_response_id_map_is_bounded(self) -> None:
        self.patch(responses, "MAX_REMEMBERED", 2)
        ids = [self.post(PATH, {"input": str(i)}).json()["id"] for i in range(3)]
        self.assertEqual(list(self.root.responses.sessions), ids[1:])
        self.assertEqual(self.post(PATH, {"input": "x", "previous_response_id": ids[0]}).code,
                         404)

    def test_failure_non_streaming(self) -> None:
        self.spy.fail = ProviderError(NO_ROUTE, "unknown", http_status=401)
        reply = self.post(PATH, {"model": "openclaw", "input": "hi"})
        self.assertEqual(reply.code, 401)
        body = reply.json()
        self.assertEqual(list(body), ["id", "object", "created_at", "status", "model", "output",
                                      "usage", "error"])
        self.assertEqual((body["status"], body["output"]), ("failed", []))
        self.assertEqual(body["usage"]["total_tokens"], 0)
        self.assertEqual(body["error"], {"code": "authentication_error", "message": NO_ROUTE})

    def test_failure_streaming(self) -> None:
        self.spy.fail = ProviderError(NO_ROUTE, "unknown", http_status=401)
        reply = self.post(PATH, {"model": "openclaw", "input": "hi", "stream": True})
        self.assertEqual(reply.code, 200)
        evs = events(reply)
        self.assertEqual([n for n, _ in evs], STREAM_TYPES + ["response.failed", None])
        failed = evs[-2][1]["response"]
        self.assertEqual((failed["status"], failed["output"]), ("failed", []))
        self.assertEqual(failed["error"], {"code": "authentication_error", "message": NO_ROUTE})
        self.assertEqual(evs[-1][1], "[DONE]")

    def test_length_stop_is_incomplete(self) -> None:
        def short(request: Any, on_text: Any, on_tool: Any) -> Any:
            on_text("cut")
            return succeed(ModelResult("cut", "length", 1, 1))

        self.spy.stream = short  # type: ignore[method-assign]
        body = self.post(PATH, {"input": "hi"}).json()
        self.assertEqual(body["status"], "incomplete")
        self.assertEqual(body["incomplete_details"], {"reason": "max_output_tokens"})
        evs = events(self.post(PATH, {"input": "hi", "stream": True}))
        self.assertEqual(evs[-2][0], "response.incomplete")

    def test_get_is_405(self) -> None:
        reply = self.fetch("GET", PATH)
        self.assertEqual((reply.code, reply.header("Allow")), (405, "POST"))

    def test_disconnect_aborts(self) -> None:
        self.spy.hold = True
        d = self.start("POST", PATH, {"input": "hi", "stream": True})
        response = self.settle(d)
        sink = _Sink()
        response.deliverBody(sink)
        self.stub.flush()
        self.assertEqual(len(self.app.runtime.active), 1)
        sink.transport.stopProducing()  # the client drops the connection mid-stream
        self.stub.flush()
        self.assertEqual(self.app.runtime.active, {})
        (row,) = stored_rows(self.app)
        self.assertEqual(row.status, "aborted")


class _Sink:
    def makeConnection(self, transport: Any) -> None:
        self.transport = transport

    def dataReceived(self, data: bytes) -> None:
        pass

    def connectionLost(self, reason: Any) -> None:
        pass
