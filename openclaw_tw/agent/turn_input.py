"""A turn whose conversation the client sent itself: the OpenAI-compatible HTTP endpoints with
``tools`` or image inputs.

Such a turn does not rebuild its model input from the session's transcript: the client owns
the conversation (as with the OpenAI API), so the model gets the client's messages as they
were sent -- assistant ``tool_calls`` and ``tool`` results in place, image parts included
when the model takes images (``models.providers.*.models[].input``) and replaced by a short
note when it does not.  Tools the client offers are the only tools of that turn; when the
model calls one, the turn ends there and the calls go back to the client in the OpenAI
shape, for the client to run.
"""

from __future__ import annotations

from typing import Any

IMAGE_OMITTED = "[image omitted: this model takes text input only]"


def for_model(messages: list[dict[str, Any]], accepts_images: bool,
              text_only: bool) -> list[dict[str, Any]]:
    """The client's messages as ``provider`` should get them.  ``text_only``: a provider
    that reads plain string content (the offline model)."""
    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            parts = [part if part.get("type") != "image_url" or accepts_images
                     else {"type": "text", "text": IMAGE_OMITTED}
                     for part in content if isinstance(part, dict)]
            if text_only:
                content = "\n".join(str(p.get("text", "")) for p in parts
                                    if p.get("type") == "text")
            else:
                content = parts
        out.append({**message, "content": content})
    return out


def tool_calls_of(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The streamed tool calls of one model answer -> OpenAI ``tool_calls``."""
    return [{"id": c.get("toolCallId"), "type": "function",
             "function": {"name": c.get("name"), "arguments": c.get("arguments") or "{}"}}
            for c in calls]


def attach_images(messages: list[dict[str, Any]], images: list[str]) -> None:
    """This turn's images as image parts of its user message (the last one)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            text = message.get("content")
            parts: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
            parts += [{"type": "image_url", "image_url": {"url": url}} for url in images]
            message["content"] = parts
            return


# -- a turn rebuilt from the session's transcript -------------------------------------------


def turn_order(entries: list[Any], run_id: str, queued: set[str]) -> list[Any]:
    """The transcript as this run's model should see it: turns still queued behind it left
    out, and its own user message last (it may have been committed before the reply to an
    earlier turn)."""
    own = [e for e in entries if e.run_id == run_id and e.role == "user"]
    rest = [e for e in entries if e.run_id not in queued and not
            (e.run_id == run_id and e.role == "user")]
    return rest + own


def to_messages(entries: list[Any]) -> list[dict[str, Any]]:
    """Transcript entries -> OpenAI chat messages (user/assistant turns only)."""
    out: list[dict[str, Any]] = []
    for e in entries:
        body = e.body
        if e.role == "user":
            out.append({"role": "user", "content": str(body.get("content", ""))})
        elif e.role == "assistant":
            parts = body.get("content") or []
            text = "".join(p.get("text", "") for p in parts if isinstance(p, dict))
            if text:
                out.append({"role": "assistant", "content": text})
    return out
