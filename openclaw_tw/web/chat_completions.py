"""``POST /v1/chat/completions`` (§11.3): OpenAI Chat Completions over an agent turn.

Non-streaming answers one ``chat.completion`` after the run ends; ``stream: true`` answers
``text/event-stream`` chunks as the run streams: the role chunk, one ``content`` chunk per text
delta, the ``finish_reason`` chunk, the usage chunk when ``stream_options.include_usage``, then
``data: [DONE]``.  A run that fails mid-stream ends with ``data: {"error": ...}`` and
``[DONE]`` (the status is already 200).  Sampling options are validated, then left to the
agent's model configuration.  A request with ``tools`` or image inputs runs on the
conversation as sent (``web/openai_tools.py``): the model's calls of the client's tools come
back as ``message.tool_calls`` (streamed as ``tool_calls`` deltas) with ``finish_reason:
"tool_calls"``; ``tool_choice`` and ``parallel_tool_calls`` are left to the model.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from twisted.web.server import Request

from openclaw_tw.web import openai_compat as oc
from openclaw_tw.web import openai_tools
from openclaw_tw.web.http import (
    HttpError,
    json_body,
)
from openclaw_tw.web.sse import EventStream

if TYPE_CHECKING:
    from openclaw_tw.agent.runtime import Outcome
    from openclaw_tw.app import Components

MISSING_USER = "Missing user message in `messages`."
_RANGES = {"temperature": (0, 2), "top_p": (0, 1), "frequency_penalty": (-2, 2),
           "presence_penalty": (-2, 2)}


def validate_options(body: dict[str, Any]) -> None:
    """The sampling extras of §11.3: types and ranges (400 when out of range)."""
    for name, (low, high) in _RANGES.items():
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or \
                not low <= value <= high:
            raise oc.invalid(f"`{name}` must be a number between {low} and {high}.")
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):
            raise oc.invalid(f"`{name}` must be a positive integer.")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise oc.invalid("`seed` must be an integer.")
    stop = body.get("stop")
    if stop is not None and not isinstance(stop, str) and not (
            isinstance(stop, list) and len(stop) <= 4 and all(isinstance(s, str) for s in stop)):
        raise oc.invalid("`stop` must be a string or an array of at most 4 strings.")


def chat_prompt(messages: Any) -> oc.Prompt:
    """System/developer messages -> extra system prompt; the last user message is the turn."""
    system: list[str] = []
    entries: list[tuple[str, str, str]] = []
    for msg in messages if isinstance(messages, list) else []:
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str):
            continue
        role = msg["role"].strip()
        text = oc.text_of(msg.get("content")).strip()
        if role in ("system", "developer"):
            if text:
                system.append(text)
            continue
        role = "tool" if role == "function" else role
        if role in ("user", "assistant", "tool") and text:
            entries.append((role, oc.sender_of(role, msg.get("name")), text))
    return oc.build_prompt(system, entries, MISSING_USER)


def usage_of(outcome: Outcome) -> dict[str, Any]:
    """The real gateway's ``toOpenAiChatCompletionsUsage``: ``prompt_tokens`` counts cache
    reads (not writes), named in ``prompt_tokens_details`` when there are any.  A model that
    reports no usage (the offline one) gives zeros, as the real gateway's do."""
    prompt = outcome.input_tokens + outcome.cache_read_tokens
    out: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": outcome.output_tokens,
                           "total_tokens": prompt + outcome.output_tokens}
    if outcome.cache_read_tokens:
        out["prompt_tokens_details"] = {"cached_tokens": outcome.cache_read_tokens}
    return out


def client_turn(body: dict[str, Any], takes_images: bool) -> oc.ClientTurn | None:
    """The conversation as sent, when the request offers tools or sends images."""
    tools = openai_tools.chat_tools(body)
    messages = openai_tools.chat_messages(body.get("messages"))
    if tools is None and not (takes_images and openai_tools.has_images(messages)):
        return None  # images for a text-only model are left out, as before
    return oc.ClientTurn(messages, tools)


def message_of(outcome: Outcome) -> dict[str, Any]:
    if not outcome.tool_calls:
        return {"role": "assistant", "content": outcome.text}
    return {"role": "assistant", "content": outcome.text or None,
            "tool_calls": outcome.tool_calls}


class ChatCompletions:
    def __init__(self, app: Components) -> None:
        self.app = app
        self.gw = app.hub

    async def handle(self, request: Request) -> bytes | None:
        gw = self.gw
        front = await oc.accept_request(request, self.app)
        body, model, override = front.body, front.model, front.override
        key = oc.session_key(request, front.agent_id, body.get("user"), "openai")
        validate_options(body)
        prompt = chat_prompt(body.get("messages"))
        client = client_turn(body, oc.takes_images(self.app, override))
        completion_id = f"chatcmpl_{uuid.uuid4()}"
        head = {"id": completion_id, "object": "chat.completion.chunk",
                "created": oc.created_s(gw), "model": model}
        if body.get("stream"):
            options = body.get("stream_options")
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
            await self._stream(request, head, key, prompt, override, include_usage, client)
            return None
        run = await oc.start_turn(request, self.app, key, prompt, completion_id, override,
                                  "openai", client=client)
        outcome = await run.finished()
        if outcome.status != "ok":
            status, type_, message = oc.failure_of(outcome)
            raise oc.openai_error(status, message, type_)
        return json_body(request, 200, {
            "id": completion_id, "object": "chat.completion", "created": head["created"],
            "model": model,
            "choices": [{"index": 0, "message": message_of(outcome),
                         "finish_reason": oc.finish_reason(outcome)}],
            "usage": usage_of(outcome)})

    async def _stream(self, request: Request, head: dict[str, Any], key: str,
                      prompt: oc.Prompt, override: str | None, include_usage: bool,
                      client: oc.ClientTurn | None) -> None:
        sse = EventStream(request)

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        sse.data(chunk({"role": "assistant"}))
        streamed: list[str] = []

        def on_text(text: str) -> None:
            streamed.append(text)
            sse.data(chunk({"content": text}))

        try:
            run = await oc.start_turn(request, self.app, key, prompt, head["id"], override,
                                      "openai", on_text, client)
            outcome = await run.finished()
        except HttpError as err:
            sse.data(err.body if isinstance(err.body, dict) else
                     {"error": {"message": err.body, "type": "api_error"}})
            sse.done()
            return
        if sse.closed:
            return
        if outcome.status != "ok":
            _, type_, message = oc.failure_of(outcome)
            sse.data({"error": {"message": message, "type": type_}})
            sse.done()
            return
        if not streamed and outcome.text:  # a provider that answered without deltas
            sse.data(chunk({"content": outcome.text}))
        for index, call in enumerate(outcome.tool_calls or ()):
            sse.data(chunk({"tool_calls": [{"index": index, **call}]}))
        sse.data(chunk({}, oc.finish_reason(outcome)))
        if include_usage:
            sse.data({**head, "choices": [], "usage": usage_of(outcome)})
        sse.done()
