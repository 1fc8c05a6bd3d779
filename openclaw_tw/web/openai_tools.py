"""Client ``tools`` and the client's own conversation for ``/v1/chat/completions`` and
``/v1/responses`` (issue #20; the runtime side is ``agent/turn_input.py``).

A request that offers ``tools`` (function tools) or sends image inputs is run with the
conversation exactly as the client sent it, converted to the OpenAI chat messages the
providers take: assistant tool calls, tool results and image parts keep their structure
(instead of the plain-text "conversation so far" of ``openai_compat.build_prompt``).  The
model's calls of the client's tools end the turn and go back in the endpoint's own shape
(``tool_calls`` / ``function_call`` items) for the client to run and answer.
"""

from __future__ import annotations

import re
from typing import Any

from openclaw_tw import _json
from openclaw_tw.web import openai_compat as oc

MAX_TOOLS = 128
MAX_IMAGES = 16
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
BAD_TOOLS = "`tools` must be an array of function tools with valid names."


def _function(name: Any, description: Any, parameters: Any) -> dict[str, Any]:
    if not isinstance(name, str) or not _NAME.match(name):
        raise oc.invalid(BAD_TOOLS)
    fn: dict[str, Any] = {"name": name}
    if isinstance(description, str):
        fn["description"] = description
    if parameters is not None:
        if not isinstance(parameters, dict):
            raise oc.invalid(BAD_TOOLS)
        fn["parameters"] = parameters
    return {"type": "function", "function": fn}


def chat_tools(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """``tools`` of a Chat Completions request (``{type: "function", function: {...}}``)."""
    return _tools(body, lambda tool: tool.get("function"))


def responses_tools(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """``tools`` of a Responses request (flat ``{type: "function", name, parameters}``)."""
    return _tools(body, lambda tool: tool)


def _tools(body: dict[str, Any], spec_of: Any) -> list[dict[str, Any]] | None:
    raw = body.get("tools")
    if raw is None or raw == []:
        return None
    if not isinstance(raw, list) or len(raw) > MAX_TOOLS:
        raise oc.invalid(BAD_TOOLS)
    out = []
    for tool in raw:
        spec = spec_of(tool) if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function" or \
                not isinstance(spec, dict):
            raise oc.invalid(BAD_TOOLS)
        out.append(_function(spec.get("name"), spec.get("description"), spec.get("parameters")))
    return out


def _image(url: Any, detail: Any = None) -> dict[str, Any] | None:
    if not isinstance(url, str) or not url.startswith(("https://", "http://", "data:image/")):
        return None
    image: dict[str, Any] = {"url": url}
    if detail in ("auto", "low", "high"):
        image["detail"] = detail
    return {"type": "image_url", "image_url": image}


def _user_content(content: Any) -> Any:
    """A user message's content: its string, or its text and image parts."""
    if isinstance(content, str) or not isinstance(content, list):
        return oc.text_of(content)
    parts: list[dict[str, Any]] = []
    for part in content:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in ("text", "input_text") and isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            raw = part.get("image_url")
            url, detail = (raw.get("url"), raw.get("detail")) if isinstance(raw, dict) \
                else (raw, None)
            image = _image(url, detail)
            if image is not None:
                parts.append(image)
        elif kind == "input_image":
            image = _image(part.get("image_url"), part.get("detail"))
            if image is not None:
                parts.append(image)
    if sum(p["type"] == "image_url" for p in parts) > MAX_IMAGES:
        raise oc.invalid(f"At most {MAX_IMAGES} images per message.")
    return parts


def has_images(messages: list[dict[str, Any]]) -> bool:
    return any(isinstance(m.get("content"), list) and
               any(p.get("type") == "image_url" for p in m["content"]) for m in messages)


def _tool_calls(raw: Any) -> list[dict[str, Any]]:
    out = []
    for call in raw if isinstance(raw, list) else []:
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict) and isinstance(call.get("id"), str) and \
                isinstance(fn.get("name"), str):
            args = fn.get("arguments")
            out.append({"id": call["id"], "type": "function",
                        "function": {"name": fn["name"], "arguments": args if isinstance(
                            args, str) else _json.dumps(args or {}).decode()}})
    return out


def chat_messages(messages: Any) -> list[dict[str, Any]]:
    """A Chat Completions ``messages`` array as the model should see it."""
    out: list[dict[str, Any]] = []
    for msg in messages if isinstance(messages, list) else []:
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str):
            continue
        role = msg["role"].strip()
        if role in ("system", "developer"):
            text = oc.text_of(msg.get("content")).strip()
            if text:
                out.append({"role": "system", "content": text})
        elif role == "user":
            out.append({"role": "user", "content": _user_content(msg.get("content"))})
        elif role == "assistant":
            entry: dict[str, Any] = {"role": "assistant",
                                     "content": oc.text_of(msg.get("content")) or None}
            calls = _tool_calls(msg.get("tool_calls"))
            if calls:
                entry["tool_calls"] = calls
            out.append(entry)
        elif role in ("tool", "function"):
            call_id = msg.get("tool_call_id") or msg.get("name")
            out.append({"role": "tool", "tool_call_id": str(call_id or ""),
                        "content": oc.text_of(msg.get("content"))})
    return out


def responses_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A Responses ``instructions`` + ``input`` as chat messages: ``function_call`` items
    become the assistant's tool calls, ``function_call_output`` the tool results."""
    out: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions.strip():
        out.append({"role": "system", "content": instructions.strip()})
    items: Any = body.get("input")
    if isinstance(items, str):
        items = [{"type": "message", "role": "user", "content": items}]
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        kind = item.get("type", "message")
        if kind == "function_call" and isinstance(item.get("call_id"), str) and \
                isinstance(item.get("name"), str):
            call = {"id": item["call_id"], "type": "function",
                    "function": {"name": item["name"],
                                 "arguments": str(item.get("arguments") or "{}")}}
            if out and out[-1]["role"] == "assistant" and "tool_calls" in out[-1]:
                out[-1]["tool_calls"].append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else _json.dumps(output).decode()
            out.append({"role": "tool", "tool_call_id": str(item.get("call_id") or ""),
                        "content": text})
        elif kind == "message" and isinstance(item.get("role"), str):
            out += chat_messages([{"role": item["role"], "content": item.get("content")}])
    return out
