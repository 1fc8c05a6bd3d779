"""What ``/v1/chat/completions`` and ``/v1/responses`` share (§11.3): the ``model`` -> agent
mapping, session routing, the backend model override, prompts, starting a turn on the agent
runtime (the same ``AgentRuntime.accept`` path as WebSocket ``agent`` runs, so WS subscribers
see the same ``agent``/``chat`` events), aborting it when the client goes away, and mapping a
failed run to an HTTP status."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
from twisted.web.server import Request

from openclaw_tw.agent.models import ProviderError
from openclaw_tw.agent.run import TooManyRuns
from openclaw_tw.errors import clip
from openclaw_tw.methods.agents import configured_agents
from openclaw_tw.sessions.keys import is_reserved, normalize_agent_id, resolve_key, rest_of
from openclaw_tw.web.auth import require_bearer
from openclaw_tw.web.http import (
    HttpError,
    header,
    method_not_allowed,
    openai_error,
    parse_json_object,
    read_body,
)

if TYPE_CHECKING:
    from openclaw_tw.agent.runtime import AgentRuntime, Outcome, Run
    from openclaw_tw.app import Components
    from openclaw_tw.hub.gateway import Gateway

OPENCLAW_MODEL = "openclaw"
DEFAULT_MODEL = "openclaw/default"
DEFAULT_AGENT = "main"
MAX_BODY_BYTES = 20 * 1024 * 1024
INVALID_MODEL = "Invalid `model`. Use `openclaw` or `openclaw/<agentId>`."
INVALID_MODEL_OVERRIDE = "Invalid `x-openclaw-model`."
RESERVED_SESSION_KEY = "`x-openclaw-session-key` cannot use reserved internal session namespaces."
_AGENT_ID = r"[a-z0-9][a-z0-9_-]{0,63}"
_MODEL_RE = re.compile(rf"^(?:openclaw[:/]|agent:)({_AGENT_ID})$", re.IGNORECASE)
_AGENT_ID_RE = re.compile(rf"^{_AGENT_ID}$", re.IGNORECASE)
STOP_REASONS = {"stop": "stop", "length": "length", "tool_calls": "tool_calls",
                "content_filter": "content_filter"}


def invalid(message: str) -> HttpError:
    return openai_error(400, message)


def internal_error() -> HttpError:
    return openai_error(500, "internal error", "api_error")


def too_large() -> HttpError:
    return openai_error(413, "Payload too large", "invalid_request_error")


# -- agents, sessions, models ------------------------------------------------------------------


def agent_ids(gw: Gateway) -> list[str]:
    return [normalize_agent_id(a["id"]) for a in configured_agents(dict(gw.settings.raw))]


def agent_from_model(model: str) -> str | None:
    """The agent a ``model`` value names, or ``None`` when it is not one of ours."""
    raw = model.strip()
    if raw.lower() in (OPENCLAW_MODEL, DEFAULT_MODEL):
        return DEFAULT_AGENT
    m = _MODEL_RE.match(raw)
    return normalize_agent_id(m.group(1)) if m else None


def request_model(body: dict[str, Any]) -> str:
    model = body.get("model")
    return model.strip() if isinstance(model, str) and model.strip() else OPENCLAW_MODEL


def resolve_agent(request: Request, gw: Gateway, model: str) -> str:
    """``x-openclaw-agent-id`` (or ``x-openclaw-agent``) wins over the model; unknown -> 400."""
    from_model = agent_from_model(model)
    if from_model is None:
        raise invalid(INVALID_MODEL)
    raw = header(request, "x-openclaw-agent-id") or header(request, "x-openclaw-agent")
    if raw is not None and not _AGENT_ID_RE.match(raw):
        raise invalid(f"Unknown agent '{clip(raw)}'.")
    agent = normalize_agent_id(raw) if raw is not None else from_model
    if agent not in agent_ids(gw):
        raise invalid(f"Unknown agent '{agent}'.")
    return agent


def session_key(request: Request, agent_id: str, user: Any, prefix: str) -> str:
    """``x-openclaw-session-key`` -> ``agent:<id>:<k>``; else ``<prefix>-user:<user>``; else a
    fresh ``<prefix>:<uuid>`` (a stateless request)."""
    explicit = header(request, "x-openclaw-session-key")
    if explicit is not None:
        key = resolve_key(explicit, agent_id=agent_id)
        if is_reserved(explicit) or is_reserved(rest_of(key)):
            raise invalid(RESERVED_SESSION_KEY)
        return key
    if isinstance(user, str) and user.strip():
        return f"agent:{agent_id}:{prefix}-user:{user.strip()}"
    return f"agent:{agent_id}:{prefix}:{uuid.uuid4()}"


@attrs.frozen
class TurnRequest:
    body: dict[str, Any]
    model: str
    agent_id: str
    override: str | None


async def accept_request(request: Request, app: Components) -> TurnRequest:
    """The shared front of ``/v1/chat/completions`` and ``/v1/responses``: POST only, bearer
    auth, a JSON object body within the cap, the model, its agent and any model override."""
    if request.method != b"POST":
        raise method_not_allowed("POST")
    gw = app.hub
    await require_bearer(request, gw)
    body = parse_json_object(read_body(request, MAX_BODY_BYTES, too_large()), invalid)
    model = request_model(body)
    return TurnRequest(body, model, resolve_agent(request, gw, model),
                       model_override(request, app))


def model_override(request: Request, app: Components) -> str | None:
    """``x-openclaw-model: <provider/model>``: the backend model for this turn (shared-secret
    callers are admin-equivalent, so it is always honoured when it names a known provider)."""
    raw = header(request, "x-openclaw-model")
    if raw is None:
        return None
    try:
        provider, model = app.runtime.registry.resolve(raw)
    except ProviderError:
        raise invalid(INVALID_MODEL_OVERRIDE) from None
    if not model:
        raise invalid(INVALID_MODEL_OVERRIDE)
    return f"{provider.id}/{model}"


def takes_images(app: Components, override: str | None) -> bool:
    """Whether the model this turn will use takes image input (its configured ``input``)."""
    info = app.models.info(override or app.models.primary)
    return info is not None and "image" in info.input


# -- prompts -----------------------------------------------------------------------------------


@attrs.frozen
class Prompt:
    """One turn: ``message`` (the last user message) and the extra system prompt (the
    client's system/developer text, then the rest of the conversation it sent, as context)."""

    message: str
    system_prompt: str | None


def text_of(content: Any) -> str:
    """A message's text: a string, or the text parts of a content array joined by newlines."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = []
    for part in content:
        if not isinstance(part, dict):
            continue
        text = part.get("text")
        if part.get("type") in ("text", "input_text", "output_text") and isinstance(text, str):
            parts.append(text)
        elif isinstance(part.get("input_text"), str):
            parts.append(part["input_text"])
    return "\n".join(p for p in parts if p)


def build_prompt(system_parts: list[str], entries: list[tuple[str, str, str]],
                 missing: str) -> Prompt:
    """``entries`` are (role, sender, text) in order; the last ``user`` one is the turn."""
    current = next((i for i in range(len(entries) - 1, -1, -1) if entries[i][0] == "user"), None)
    if current is None:
        raise invalid(missing)
    context = [f"{sender}: {text}" for i, (_, sender, text) in enumerate(entries)
               if i != current]
    parts = [p for p in system_parts if p]
    if context:
        parts.append("Conversation so far (as sent by the client, oldest first):\n"
                     + "\n".join(context))
    return Prompt(entries[current][2], "\n\n".join(parts) if parts else None)


def sender_of(role: str, name: Any = None) -> str:
    if role == "user":
        return "User"
    if role == "assistant":
        return "Assistant"
    return f"Tool:{name.strip()}" if isinstance(name, str) and name.strip() else "Tool"


# -- running a turn ------------------------------------------------------------------------------


@attrs.frozen
class ClientTurn:
    """A conversation the client sent whole, with its tools (``web/openai_tools.py``)."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None


async def start_turn(request: Request, app: Components, key: str, prompt: Prompt, run_id: str,
                     model_ref: str | None, created_via: str,
                     listener: Callable[[str], None] | None = None,
                     client: ClientTurn | None = None) -> Run:
    """Accept the turn on the runtime (fires after the user entry is committed) and abort it
    if the HTTP client goes away before it ends."""
    gw, runtime = app.hub, app.runtime
    if getattr(request, "_disconnected", False):  # gone while we checked auth: start nothing
        raise openai_error(499, "Client closed request", "api_error")
    if gw.shutting_down or runtime is None or not runtime.running:
        raise openai_error(503, "The gateway is shutting down.", "api_error")
    row = await app.sessions.ensure(key, created_via)
    try:
        run = await runtime.accept(row, prompt.message, run_id, "agent", None, None, model_ref,
                                   system_prompt=prompt.system_prompt,
                                   listeners=[listener] if listener is not None else None,
                                   model_messages=client.messages if client else None,
                                   client_tools=client.tools if client else None)
    except TooManyRuns as e:
        raise openai_error(429, e.message, "rate_limit_error") from None
    abort_when_gone(request, runtime, run)
    return run


def abort_when_gone(request: Request, runtime: AgentRuntime, run: Run) -> None:
    """A client disconnect aborts the run (queued or streaming): no orphaned runs."""

    def lost(_: Any) -> None:
        if run.outcome is None:
            runtime.abort(None, run.run_id, "disconnect")

    if getattr(request, "_disconnected", False):
        lost(None)
    else:
        request.notifyFinish().addErrback(lost)


def failure_of(outcome: Outcome) -> tuple[int, str, str]:
    """(HTTP status, OpenAI error type, message) for a run that did not complete."""
    message = outcome.error or "internal error"
    if outcome.status == "aborted":
        if outcome.stop_reason == "shutdown":
            return 503, "api_error", "The gateway stopped during this run."
        return 500, "api_error", message
    detail = outcome.error_detail or {}
    status = detail.get("httpStatus")
    kind = outcome.error_kind
    if status in (401, 403):
        return 401, "authentication_error", message
    if kind == "rate_limit":
        return 429, "rate_limit_error", message
    if kind == "context_length":
        return 400, "invalid_request_error", message
    if kind == "refusal":
        return 400, "invalid_request_error", message
    if kind == "timeout":
        return 504, "api_error", message
    if isinstance(status, int):
        return 502, "api_error", message
    return 500, "api_error", message


def finish_reason(outcome: Outcome) -> str:
    return STOP_REASONS.get(outcome.stop_reason, "stop")


def created_s(gw: Gateway) -> int:
    return gw.now_ms() // 1000
