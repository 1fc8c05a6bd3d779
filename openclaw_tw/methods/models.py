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

models.authStatus reports the credentials of those providers as the real gateway does
(``models-auth-status-*.mjs``): each configured provider with an ``apiKey`` is ``static`` with
``apiKey.source`` ``config`` (a literal) or ``env`` (``${VAR}``, ``{env}`` or an env SecretRef,
with ``envVar``); one whose variable is unset is ``missing`` (the real one drops it; we show it,
since its calls will go out without a key).  Providers without a key -- the offline model, a
local server -- need none and are not listed.  We have no auth profiles, OAuth logins or
usage windows, and we cannot store keys from the UI (``models.authSetApiKey`` is not served),
so ``providerCapabilities`` is empty.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from openclaw_tw.agent.models import OFFLINE_PROVIDER, ModelInfo, ModelRegistry
from openclaw_tw.errors import UNAVAILABLE, GatewayError, invalid_request
from openclaw_tw.methods.agents import ConfigReader, configured_agents
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
AUTH_STATUS = Obj(optional={"refresh": Bool(), "agentId": Str()})
OPENAI_APIS = ("openai-completions", "openai")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
THINKING_LEVELS = [{"id": "off", "label": "off"}]
UNKNOWN_PROVIDER = ("Error: Unknown model catalog provider. Use a provider id from the installed "
                    "plugins or configured providers.")


class ModelsMethods(ConfigReader):
    """models.list over the shared registry (rebuilt in place by a hot reload of ``models``,
    ``config/apply.py``) and the config in force (``config``, read per call)."""

    def __init__(self, config: Callable[[], Mapping[str, Any]], models: ModelRegistry,
                 now_ms: Callable[[], int] | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        self._config = config  # read per call: a hot reload is in force at once
        self._models = models
        self._now_ms = now_ms or (lambda: int(time.time() * 1000))
        self._environ = os.environ if environ is None else environ

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

    @rpc("models.authStatus", AUTH_STATUS)
    def auth_status(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        requested = params.get("agentId")
        if requested and normalize_agent_id(requested) not in {
                normalize_agent_id(a["id"]) for a in configured_agents(self._raw)}:
            raise invalid_request(f'unknown agent id "{requested}"')
        configured = (self._raw.get("models") or {}).get("providers") or {}
        providers = []
        for provider_id, spec in sorted(configured.items()):
            if not isinstance(spec, Mapping) or "apiKey" not in spec or \
                    spec.get("api", "openai-completions") not in OPENAI_APIS:
                continue
            entry: dict[str, Any] = {"provider": provider_id, "authProvider": provider_id,
                                     "displayName": provider_id}
            source = key_source(spec["apiKey"], self._environ)
            entry["status"] = "static" if source is not None else "missing"
            entry["profiles"] = []
            if source is not None:
                entry["apiKey"] = source
            providers.append(entry)
        return {"ts": self._now_ms(), "providers": providers, "providerCapabilities": []}

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


def key_source(value: Any, environ: Mapping[str, str]) -> dict[str, Any] | None:
    """Where a provider's ``apiKey`` comes from (the real ``apiKey`` field), or None when it
    resolves to nothing: a literal, ``"${VAR}"`` (also embedded), ``{"env": VAR}`` or
    ``{"source": "env", "id": VAR}`` -- the forms ``agent/openai.py`` resolves."""
    if isinstance(value, Mapping):
        name = value.get("env") or (value.get("id") if value.get("source") == "env" else None)
        names = [str(name)] if name else []
    elif isinstance(value, str):
        names = _ENV_REF.findall(value)
        if not names:
            return {"source": "config"} if value.strip() else None
    else:
        return None
    if not names or not all((environ.get(n) or "").strip() for n in names):
        return None
    whole = isinstance(value, Mapping) or _ENV_REF.fullmatch(value.strip()) is not None
    return {"source": "env", "envVar": names[0]} if whole and len(names) == 1 \
        else {"source": "env"}
