"""``GET /v1/models``, ``GET /v1/models/{id}`` and ``POST /v1/embeddings`` (§11.3).

The models are agent targets, not backend models: ``openclaw``, ``openclaw/default`` and
``openclaw/<agentId>`` for every configured agent.  There is no embedding provider, so
``/v1/embeddings`` answers as the reference does without one (500 ``api_error``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from twisted.web.server import Request

from openclaw_tw.errors import clip
from openclaw_tw.web import openai_compat as oc
from openclaw_tw.web.auth import require_bearer
from openclaw_tw.web.http import json_body, method_not_allowed, parse_json_object, read_body

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
        if request.method != b"POST":
            raise method_not_allowed("POST")
        await require_bearer(request, self.gw)
        parse_json_object(read_body(request, oc.MAX_BODY_BYTES, oc.too_large()), oc.invalid)
        raise oc.internal_error()
