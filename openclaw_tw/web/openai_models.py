"""``GET /v1/models``, ``GET /v1/models/{id}`` and ``POST /v1/embeddings`` (§11.3).

The models are agent targets, not backend models: ``openclaw``, ``openclaw/default`` and
``openclaw/<agentId>`` for every configured agent.  There is no embedding provider, so
``/v1/embeddings`` checks the request as the reference does (400s in its words) and answers
one it would pass on to a provider as the reference does without one (500 ``api_error``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from twisted.web.server import Request

from openclaw_tw.errors import clip
from openclaw_tw.web import openai_compat as oc
from openclaw_tw.web.auth import require_bearer
from openclaw_tw.web.http import (
    header,
    json_body,
    method_not_allowed,
    parse_json_object,
    read_body,
)

if TYPE_CHECKING:
    from openclaw_tw.hub.gateway import Gateway

MODELS_PATH = b"/v1/models"
EMBEDDINGS_PATH = b"/v1/embeddings"


def model_object(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": "openclaw",
            "permission": []}


def model_ids(gw: Gateway) -> list[str]:
    ids = [oc.OPENCLAW_MODEL, oc.DEFAULT_MODEL]
    ids += [f"openclaw/{a}" for a in oc.agent_ids(gw) if f"openclaw/{a}" not in ids]
    return ids


class OpenAIModels:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    async def models(self, request: Request) -> bytes:
        if request.method not in (b"GET", b"HEAD"):
            raise method_not_allowed("GET")
        await require_bearer(request, self.gw)
        ids = model_ids(self.gw)
        if request.path == MODELS_PATH:
            return json_body(request, 200, {"object": "list",
                                            "data": [model_object(i) for i in ids]})
        wanted = unquote(request.path[len(MODELS_PATH) + 1:].decode("utf-8", "replace"))
        if wanted not in ids:
            raise oc.openai_error(404, f"The model '{clip(wanted)}' does not exist", param="model",
                                  code="model_not_found")
        return json_body(request, 200, model_object(wanted))

    async def embeddings(self, request: Request) -> bytes:
        """The reference's checks, in its order (400s for the request), then its answer for
        a provider it cannot create: 500 ``api_error``."""
        if request.method != b"POST":
            raise method_not_allowed("POST")
        await require_bearer(request, self.gw)
        body = parse_json_object(read_body(request, EMBEDDINGS_MAX_BYTES, oc.too_large()),
                                 oc.invalid)
        problem = embeddings_problem(body)
        if problem is not None:
            raise oc.invalid(problem)
        oc.resolve_agent(request, self.gw, body["model"])
        target = header(request, "x-openclaw-model")
        if target is not None and "/" in target:
            provider, _, model = target.partition("/")
            if not model.strip():
                raise oc.invalid("Unsupported embedding model reference.")
            if provider.strip().lower() != EMBEDDINGS_PROVIDER:
                raise oc.invalid("This agent does not allow that embedding provider on "
                                 "`/v1/embeddings`.")
        raise oc.internal_error()


# -- /v1/embeddings' request (the reference's zod schema and input limits) ---------------------

EMBEDDINGS_MAX_BYTES = 5 * 1024 * 1024
EMBEDDINGS_PROVIDER = "openai"  # memorySearch.provider's default
MAX_INPUTS, MAX_INPUT_CHARS, MAX_TOTAL_CHARS = 128, 8192, 65536
_SAFE_INT = 2**53 - 1


def _js_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string" if isinstance(value, str) else "array" if isinstance(value, list) \
        else "object"


def embeddings_problem(body: dict[str, Any]) -> str | None:
    """The message the reference answers 400 with, or ``None`` for a request it takes."""
    for name in ("model", "input", "encoding_format", "dimensions", "user"):
        if name not in body:
            continue
        value, kind = body[name], _js_type(body[name])
        if name in ("model", "user") and kind != "string":
            return f"{name}: Invalid input: expected string, received {kind}"
        if name == "input" and not (kind == "string" or kind == "array" and all(
                isinstance(t, str) for t in value)):
            return "input: Invalid input"
        if name == "encoding_format" and value not in ("float", "base64"):
            return 'encoding_format: Invalid option: expected one of "float"|"base64"'
        if name == "dimensions":
            if kind != "number":
                return f"dimensions: Invalid input: expected number, received {kind}"
            if value != int(value):
                return "dimensions: Invalid input: expected int, received number"
            if value > _SAFE_INT:
                return f"dimensions: Too big: expected int to be <={_SAFE_INT}"
            if value <= 0:
                return "dimensions: Too small: expected number to be >0"
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        return "Missing `model`."
    if oc.agent_from_model(model) is None:
        return oc.INVALID_MODEL
    texts = body.get("input")
    texts = [texts] if isinstance(texts, str) else texts
    if not isinstance(texts, list):
        return "`input` must be a string or an array of strings."
    if not texts or any(not t for t in texts):
        return "`input` must contain at least one non-empty string."
    if len(texts) > MAX_INPUTS:
        return f"Too many inputs (max {MAX_INPUTS})."
    total = 0
    for text in texts:
        if _js_length(text) > MAX_INPUT_CHARS:
            return f"Input too long (max {MAX_INPUT_CHARS} chars)."
        total += _js_length(text)
        if total > MAX_TOTAL_CHARS:
            return f"Total input too large (max {MAX_TOTAL_CHARS} chars)."
    return None


def _js_length(text: str) -> int:
    """``String.prototype.length``: UTF-16 code units."""
    return len(text) + sum(ord(c) > 0xFFFF for c in text)
