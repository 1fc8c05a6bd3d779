"""models.list: the published model catalog (hello-ok capability ``published-model-catalog``).

The catalog is our model registry (``agent/models.py``): every model of the configured
``models.providers.*`` we can call, plus the built-in offline model, which is real and usable
(it answers in-process) and is listed as what it is.  Rows have the real gateway's shape
(``ModelChoiceSchema``, captured from ``openclaw models list`` against it): ``contextWindow``
only where the config declares one, ``local``/``input`` only with ``includeDetails``, the
role tag ``default`` on the primary model, and one thinking level (``off``: our runtime sends
no reasoning settings).  Every listed model is ``available``: the registry holds only
providers we can call.  Views (``default``/``configured``/``all``/``provider-config``) list the
same models here: we have no provider discovery, so the configured models are all there is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openclaw_tw.agent.models import OFFLINE_PROVIDER, ModelInfo, ModelRegistry
from openclaw_tw.errors import UNAVAILABLE, GatewayError, invalid_request
from openclaw_tw.methods.agents import configured_agents
from openclaw_tw.protocol.dispatch import CallContext, rpc
from openclaw_tw.protocol.schema import Bool, Obj, Str
from openclaw_tw.sessions.keys import normalize_agent_id

_S1 = Str(min_len=1)
# ModelsListParamsSchema (src-*.mjs, packages/gateway-protocol/src/schema/model-catalog.ts).
MODELS_LIST = Obj(optional={
    "agentId": _S1, "sessionKey": _S1, "authProfileId": _S1, "provider": _S1,
    "includeDetails": Bool(), "includeProviderCapabilities": Bool(),
    "includeDefaultModels": Bool(), "preparedOnly": Bool(), "refresh": Bool(),
    "view": Str(enum=("default", "configured", "provider-config", "all")),
})
THINKING_LEVELS = [{"id": "off", "label": "off"}]
UNKNOWN_PROVIDER = ("Error: Unknown model catalog provider. Use a provider id from the installed "
                    "plugins or configured providers.")


class ModelsMethods:
    """models.list over the registry built at start-up (as ``agents.list``, not re-read on
    hot reload: the runtime keeps calling the providers it started with)."""

    def __init__(self, raw: Mapping[str, Any], models: ModelRegistry) -> None:
        self._raw = dict(raw)
        self._models = models

    @rpc("models.list", MODELS_LIST)
    def models_list(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        # The schema's two ``not`` clauses (AJV's wording for a failed ``not``).
        if params.get("preparedOnly") is True and params.get("refresh") is True or \
                "sessionKey" in params and "authProfileId" in params:
            raise invalid_request("invalid models.list params: must not be valid")
        requested = params.get("agentId")
        if requested is not None and normalize_agent_id(requested) not in {
                normalize_agent_id(a["id"]) for a in configured_agents(self._raw)}:
            raise invalid_request(f'unknown agent id "{requested}"')
        provider = params.get("provider")
        if provider is not None:
            provider = provider.strip().lower()
            if provider not in {m.provider.lower() for m in self._models.models}:
                raise GatewayError(UNAVAILABLE, UNKNOWN_PROVIDER, retryable=False)
        view = params.get("view") or "default"
        details = params.get("includeDetails") is True
        rows = [self.row(m, details=details, with_input=details or view == "provider-config")
                for m in sorted(self._models.models, key=lambda m: (m.provider, m.id))
                if provider is None or m.provider.lower() == provider]
        out: dict[str, Any] = {"models": rows}
        if params.get("includeDefaultModels", view == "configured" and
                      "sessionKey" not in params and "authProfileId" not in params):
            # No automatic utility model: we route every turn to the agent's own model.
            out["defaultModels"] = {"automaticUtilityModel": None}
        return out

    def row(self, m: ModelInfo, details: bool, with_input: bool) -> dict[str, Any]:
        """One ``ModelChoiceSchema`` row, keys in the real gateway's order."""
        out: dict[str, Any] = {"id": m.id, "name": m.name, "provider": m.provider}
        if m.context_tokens:
            out["contextWindow"] = m.context_tokens
        if details and m.local is not None:
            out["local"] = m.local
        if with_input:
            out["input"] = list(m.input)
        out["reasoning"] = m.reasoning
        tags = (["default"] if m.ref == self._models.primary else []) + \
            (["offline"] if m.provider == OFFLINE_PROVIDER else [])
        if tags:
            out["tags"] = tags
        out["thinkingLevels"] = [dict(level) for level in THINKING_LEVELS]
        out["thinkingDefault"] = "off"
        out["available"] = True
        return out
