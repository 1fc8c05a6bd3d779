"""Client tools and the client's own conversation on /v1/chat/completions (issue #20):
validation, what reaches the provider, and what goes back."""

from __future__ import annotations

from typing import Any

from tests.support.http_harness import HttpCase

PATH = "/v1/chat/completions"
WEATHER = {"type": "function", "function": {"name": "get_weather",
                                            "parameters": {"type": "object"}}}


class ClientTools(HttpCase):
    def test_bad_tools_are_400(self) -> None:
        bad: list[Any] = ["x", [{"type": "code_interpreter"}], [{"type": "function"}],
                          [{"type": "function", "function": {"name": "has space"}}],
                          [{"type": "function", "function": {"name": "f", "parameters": 3}}],
                          [WEATHER] * 129]
        for tools in bad:
            reply = self.post(PATH, {"model": "openclaw", "tools": tools,
                                     "messages": [{"role": "user", "content": "hi"}]})
            self.assertEqual(reply.code, 400, tools)
            self.assertIn("`tools`", reply.json()["error"]["message"])
        self.assertEqual(self.app.runtime.runs, {})

    def test_tools_and_the_conversation_reach_the_provider_as_sent(self) -> None:
        messages = [{"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "weather?"},
                    {"role": "assistant", "content": None, "tool_calls": [
                        {"id": "c1", "type": "function",
                         "function": {"name": "get_weather", "arguments": "{}"}}]},
                    {"role": "tool", "tool_call_id": "c1", "content": "sunny"}]
        reply = self.post(PATH, {"model": "openclaw", "tools": [WEATHER],
                                 "messages": messages})
        self.assertEqual(reply.code, 200, reply)
        sent = self.spy.requests[-1]
        self.assertEqual(sent.tools, [{"type": "function", "function": {
            "name": "get_weather", "parameters": {"type": "object"}}}])
        self.assertEqual([m["role"] for m in sent.messages],
                         ["system", "user", "assistant", "tool"])
        self.assertEqual(sent.messages[2]["tool_calls"][0]["id"], "c1")
        self.assertEqual(sent.messages[3], {"role": "tool", "tool_call_id": "c1",
                                            "content": "sunny"})
        body = reply.json()["choices"][0]
        self.assertEqual(body["finish_reason"], "stop")  # the offline model calls no tools
        self.assertNotIn("tool_calls", body["message"])

    def test_an_image_for_a_text_only_model_is_left_out(self) -> None:
        reply = self.post(PATH, {"model": "openclaw", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]}]})
        self.assertEqual(reply.code, 200, reply)
        self.assertIsNone(self.spy.requests[-1].tools)
        self.assertEqual(self.spy.requests[-1].messages[-1],
                         {"role": "user", "content": "what is this"})
