"""Real-client tier (issue #20): the official ``openai`` SDK's function calling and image
inputs through our gateway to a configured OpenAI-compatible upstream (the fake server).

The client's ``tools`` reach the provider; the model's tool calls come back to the SDK in the
OpenAI shapes (Chat Completions ``message.tool_calls``, streamed ``tool_calls`` deltas, and
Responses ``function_call`` items); the SDK's follow-up with the tool result reaches the
provider as an assistant ``tool_calls`` message and a ``tool`` message; an image part
reaches a provider whose model takes images.
"""

from __future__ import annotations

from typing import Any

from tests.support.openai_sdk import SDKCase, sync_client

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
CALL = {"id": "call_w1", "name": "get_weather", "arguments": '{"city": "Paris"}'}
PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABh6FO1AAAAABJRU5ErkJggg=="


def chat_tool_round_trip(base_url: str) -> dict[str, Any]:
    with sync_client(base_url) as client:
        question = {"role": "user", "content": "What is the weather in Paris?"}
        first = client.chat.completions.create(model="openclaw", messages=[question],
                                               tools=[WEATHER])
        choice = first.choices[0]
        calls = choice.message.tool_calls or []
        follow = [question, choice.message.model_dump(exclude_none=True),
                  {"role": "tool", "tool_call_id": calls[0].id, "content": "sunny, 21 C"}]
        second = client.chat.completions.create(model="openclaw", messages=follow,
                                                tools=[WEATHER])
        streamed = client.chat.completions.create(model="openclaw", messages=[question],
                                                  tools=[WEATHER], stream=True)
        deltas, finishes = [], []
        for chunk in streamed:
            for c in chunk.choices:
                deltas += c.delta.tool_calls or []
                if c.finish_reason:
                    finishes.append(c.finish_reason)
    return {"finish": choice.finish_reason,
            "calls": [(c.id, c.function.name, c.function.arguments) for c in calls],
            "second": second.choices[0].message.content,
            "stream_calls": [(d.id, d.function.name, d.function.arguments) for d in deltas],
            "stream_finish": finishes}


def responses_tool_round_trip(base_url: str) -> dict[str, Any]:
    tool = {"type": "function", "name": "get_weather", "parameters": WEATHER["function"][
        "parameters"]}
    with sync_client(base_url) as client:
        first = client.responses.create(model="openclaw", input="Weather in Paris?",
                                        tools=[tool])
        calls = [item for item in first.output if item.type == "function_call"]
        second = client.responses.create(model="openclaw", tools=[tool], input=[
            {"role": "user", "content": "Weather in Paris?"},
            {"type": "function_call", "call_id": calls[0].call_id, "name": calls[0].name,
             "arguments": calls[0].arguments},
            {"type": "function_call_output", "call_id": calls[0].call_id,
             "output": "sunny, 21 C"}])
    return {"calls": [(c.call_id, c.name, c.arguments) for c in calls],
            "second": second.output_text}


def chat_with_image(base_url: str) -> str | None:
    with sync_client(base_url) as client:
        r = client.chat.completions.create(model="openclaw", messages=[{
            "role": "user", "content": [{"type": "text", "text": "What is this?"},
                                        {"type": "image_url", "image_url": {"url": PNG}}]}])
    return r.choices[0].message.content


class ToolsAndImages(SDKCase):
    upstream = True
    upstream_input = ["text", "image"]

    async def test_chat_completions_function_calling(self) -> None:
        assert self.fake is not None
        self.fake.enqueue(tool_calls=[CALL], chunks=[])
        self.fake.enqueue(text="It is sunny in Paris.")
        self.fake.enqueue(tool_calls=[CALL], chunks=[])
        out = await self.in_thread(chat_tool_round_trip, self.base_url)
        self.assertEqual(out["finish"], "tool_calls")
        self.assertEqual(out["calls"], [("call_w1", "get_weather", '{"city": "Paris"}')])
        first, second = (r.body for r in self.fake.requests[:2])
        self.assertEqual([t["function"]["name"] for t in first["tools"]], ["get_weather"])
        self.assertEqual(second["messages"][-2]["tool_calls"][0]["id"], "call_w1")
        self.assertEqual(second["messages"][-1], {"role": "tool", "tool_call_id": "call_w1",
                                                  "content": "sunny, 21 C"})
        self.assertEqual(out["second"], "It is sunny in Paris.")
        self.assertEqual(out["stream_calls"],
                         [("call_w1", "get_weather", '{"city": "Paris"}')])
        self.assertEqual(out["stream_finish"], ["tool_calls"])

    async def test_responses_function_calling(self) -> None:
        assert self.fake is not None
        self.fake.enqueue(tool_calls=[CALL], chunks=[])
        self.fake.enqueue(text="Sunny.")
        out = await self.in_thread(responses_tool_round_trip, self.base_url)
        self.assertEqual(out["calls"], [("call_w1", "get_weather", '{"city": "Paris"}')])
        self.assertEqual(out["second"], "Sunny.")
        sent = self.fake.requests[1].body["messages"]
        self.assertEqual(sent[-1], {"role": "tool", "tool_call_id": "call_w1",
                                    "content": "sunny, 21 C"})

    async def test_an_image_reaches_a_model_that_takes_images(self) -> None:
        assert self.fake is not None
        self.fake.behave(text="A single pixel.")
        self.assertEqual(await self.in_thread(chat_with_image, self.base_url),
                         "A single pixel.")
        content = self.fake.requests[-1].body["messages"][-1]["content"]
        self.assertEqual(content, [{"type": "text", "text": "What is this?"},
                                   {"type": "image_url", "image_url": {"url": PNG}}])
