"""``POST /v1/responses`` (§11.3): Open Responses over an agent turn.

``input`` is a string or an array of items (``message`` items with string or part-array
content, ``function_call``/``function_call_output``; files, ``reasoning`` and
``item_reference`` are ignored); ``instructions`` and system/developer messages become extra
system prompt text.  With ``tools`` (function tools) or ``input_image`` parts the turn runs on
the items as sent (``web/openai_tools.py``) and the model's calls of the client's tools come
back as ``function_call`` output items.
``previous_response_id`` continues the session of that response (a bounded in-memory map:
ids older than the last ``MAX_REMEMBERED`` are forgotten and answer 404).  Streaming sends the
typed events of the reference, then ``data: [DONE]``.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from twisted.web.server import Request

from openclaw_tw import _json
from openclaw_tw.errors import clip
from openclaw_tw.web import openai_compat as oc
from openclaw_tw.web import openai_tools
from openclaw_tw.web.http import (
    HttpError,
    header,
    json_body,
)
from openclaw_tw.web.sse import EventStream

if TYPE_CHECKING:
    from openclaw_tw.agent.runtime import Outcome
    from openclaw_tw.app import Components

MISSING_USER = "Missing user message in `input`."
MAX_REMEMBERED = 10_000


def response_prompt(body: dict[str, Any]) -> oc.Prompt:
    instructions = body.get("instructions")
    system = [instructions.strip()] if isinstance(instructions, str) else []
    entries: list[tuple[str, str, str]] = []
    items: Any = body.get("input")
    if isinstance(items, str):
        items = [{"type": "message", "role": "user", "content": items}]
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        kind = item.get("type", "message")
        if kind == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else oc.text_of(output) or (
                _json.dumps(output).decode() if output is not None else "")
            if text.strip():
                entries.append(("tool", oc.sender_of("tool", item.get("call_id")), text.strip()))
            continue
        if kind != "message" or not isinstance(item.get("role"), str):
            continue
        role, text = item["role"].strip(), oc.text_of(item.get("content")).strip()
        if role in ("system", "developer"):
            if text:
                system.append(text)
        elif role in ("user", "assistant") and text:
            entries.append((role, oc.sender_of(role), text))
    return oc.build_prompt(system, entries, MISSING_USER)


def client_turn(body: dict[str, Any], takes_images: bool) -> oc.ClientTurn | None:
    """The items as sent, when the request offers tools or sends images."""
    tools = openai_tools.responses_tools(body)
    messages = openai_tools.responses_messages(body)
    if tools is None and not (takes_images and openai_tools.has_images(messages)):
        return None  # images for a text-only model are left out, as before
    return oc.ClientTurn(messages, tools)


def usage_of(outcome: Outcome | None) -> dict[str, Any]:
    """The real gateway's ``toOpenAiResponsesUsage``: cache reads and writes are part of
    ``input_tokens``.  A model that reports no usage (the offline one) gives zeros."""
    i, o, read, write = (outcome.input_tokens, outcome.output_tokens, outcome.cache_read_tokens,
                         outcome.cache_write_tokens) if outcome else (0, 0, 0, 0)
    return {"input_tokens": i + read + write,
            "input_tokens_details": {"cached_tokens": read, "cache_write_tokens": write},
            "output_tokens": o, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": i + read + write + o}


class Responses:
    def __init__(self, app: Components) -> None:
        self.app = app
        self.gw = app.hub
        self.sessions: OrderedDict[str, str] = OrderedDict()  # response id -> session key

    def remember(self, response_id: str, key: str) -> None:
        self.sessions[response_id] = key
        while len(self.sessions) > MAX_REMEMBERED:
            self.sessions.popitem(last=False)

    def session_for(self, request: Request, agent_id: str, body: dict[str, Any]) -> str:
        previous = body.get("previous_response_id")
        if header(request, "x-openclaw-session-key") is None and isinstance(previous, str) \
                and previous:
            key = self.sessions.get(previous)
            if key is None:
                raise oc.openai_error(404, f"Previous response with id '{clip(previous)}' not found.",
                                      param="previous_response_id",
                                      code="previous_response_not_found")
            return key
        return oc.session_key(request, agent_id, body.get("user"), "openresponses")

    async def handle(self, request: Request) -> bytes | None:
        gw = self.gw
        front = await oc.accept_request(request, self.app)
        body, model, override = front.body, front.model, front.override
        key = self.session_for(request, front.agent_id, body)
        prompt = response_prompt(body)
        client = client_turn(body, oc.takes_images(self.app, override))
        shape = _Shape(f"resp_{uuid.uuid4()}", f"msg_{uuid.uuid4()}", oc.created_s(gw), model)
        self.remember(shape.id, key)
        if body.get("stream"):
            await self._stream(request, shape, key, prompt, override, client)
            return None
        run = await oc.start_turn(request, self.app, key, prompt, shape.id, override,
                                  "openresponses", client=client)
        outcome = await run.finished()
        if outcome.status != "ok":
            status, type_, message = oc.failure_of(outcome)
            return json_body(request, status, shape.failed(type_, message))
        return json_body(request, 200, shape.finished(outcome))

    async def _stream(self, request: Request, shape: _Shape, key: str, prompt: oc.Prompt,
                      override: str | None, client: oc.ClientTurn | None) -> None:
        sse = EventStream(request)

        def emit(kind: str, **fields: Any) -> None:
            sse.event(kind, {"type": kind, **fields})

        emit("response.created", response=shape.response("in_progress", []))
        emit("response.in_progress", response=shape.response("in_progress", []))
        emit("response.output_item.added", output_index=0, item={
            "type": "message", "id": shape.item_id, "role": "assistant", "content": [],
            "status": "in_progress"})
        emit("response.content_part.added", item_id=shape.item_id, output_index=0,
             content_index=0, part={"type": "output_text", "text": ""})
        streamed: list[str] = []

        def on_text(text: str) -> None:
            streamed.append(text)
            emit("response.output_text.delta", item_id=shape.item_id, output_index=0,
                 content_index=0, delta=text)

        try:
            run = await oc.start_turn(request, self.app, key, prompt, shape.id, override,
                                      "openresponses", on_text, client)
            outcome = await run.finished()
        except HttpError as err:
            message = err.body if isinstance(err.body, str) else err.body["error"]["message"]
            emit("response.failed", response=shape.failed("api_error", message))
            sse.done()
            return
        if sse.closed:
            return
        if outcome.status != "ok":
            _, type_, message = oc.failure_of(outcome)
            emit("response.failed", response=shape.failed(type_, message))
            sse.done()
            return
        if not streamed and outcome.text:
            on_text(outcome.text)
        text = outcome.text
        part = {"type": "output_text", "text": text}
        emit("response.output_text.done", item_id=shape.item_id, output_index=0,
             content_index=0, text=text)
        emit("response.content_part.done", item_id=shape.item_id, output_index=0,
             content_index=0, part=part)
        emit("response.output_item.done", output_index=0, item=shape.message(text))
        final = shape.finished(outcome)
        for index, item in enumerate(final["output"][1:], start=1):  # function calls
            emit("response.output_item.added", output_index=index,
                 item={**item, "status": "in_progress", "arguments": ""})
            emit("response.function_call_arguments.delta", item_id=item["id"],
                 output_index=index, delta=item["arguments"])
            emit("response.function_call_arguments.done", item_id=item["id"],
                 output_index=index, arguments=item["arguments"])
            emit("response.output_item.done", output_index=index, item=item)
        emit(f"response.{'incomplete' if final['status'] == 'incomplete' else 'completed'}",
             response=final)
        sse.done()


class _Shape:
    """The ``response`` objects of one request."""

    def __init__(self, response_id: str, item_id: str, created: int, model: str) -> None:
        self.id, self.item_id, self.created, self.model = response_id, item_id, created, model

    def response(self, status: str, output: list[dict[str, Any]],
                 outcome: Outcome | None = None) -> dict[str, Any]:
        return {"id": self.id, "object": "response", "created_at": self.created,
                "status": status, "model": self.model, "output": output,
                "usage": usage_of(outcome)}

    def message(self, text: str) -> dict[str, Any]:
        return {"type": "message", "id": self.item_id, "role": "assistant",
                "content": [{"type": "output_text", "text": text}], "phase": "final_answer",
                "status": "completed"}

    def finished(self, outcome: Outcome) -> dict[str, Any]:
        output = [self.message(outcome.text)] + [
            {"type": "function_call", "id": f"fc_{call['id']}", "call_id": call["id"],
             "name": call["function"]["name"], "arguments": call["function"]["arguments"],
             "status": "completed"} for call in outcome.tool_calls or ()]
        if outcome.stop_reason == "length":
            out = self.response("incomplete", output, outcome)
            out["incomplete_details"] = {"reason": "max_output_tokens"}
            return out
        return self.response("completed", output, outcome)

    def failed(self, code: str, message: str) -> dict[str, Any]:
        return {**self.response("failed", []), "error": {"code": code, "message": message}}
