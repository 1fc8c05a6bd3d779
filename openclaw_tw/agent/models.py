"""Model providers: the interface every provider implements, and the registry built from the
config (``models.providers.<id>``, ``agents.defaults.model.primary`` as ``provider/model``).

A provider streams one completion: it calls ``on_text`` with each text delta (and ``on_tool``
with tool-call data) and returns a Deferred of ``ModelResult``; cancelling that Deferred must
cancel the upstream request.  Failures are ``ProviderError`` with an ``errorKind``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import attrs
from twisted.internet.defer import Deferred

OFFLINE_PROVIDER = "offline"
OFFLINE_MODEL = "offline-echo"
ERROR_KINDS = ("refusal", "timeout", "rate_limit", "context_length", "unknown")


@attrs.frozen
class ModelRequest:
    provider: str
    model: str
    messages: list[dict[str, Any]]  # OpenAI chat format: {role, content}
    max_tokens: int | None = None
    tools: list[dict[str, Any]] | None = None  # OpenAI function tools offered to the model


@attrs.frozen
class ModelResult:
    text: str
    stop_reason: str = "stop"
    input_tokens: int = 0
    output_tokens: int = 0
    response_id: str | None = None
    response_model: str | None = None


class ProviderError(Exception):
    def __init__(self, message: str, kind: str = "unknown", http_status: int | None = None,
                 provider_error_type: str | None = None, retry_after_ms: int | None = None,
                 preview: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind if kind in ERROR_KINDS else "unknown"
        self.http_status = http_status
        self.provider_error_type = provider_error_type
        self.retry_after_ms = retry_after_ms
        self.preview = preview

    def detail(self, provider: str, model: str) -> dict[str, Any]:
        out: dict[str, Any] = {"provider": provider, "model": model,
                               "failoverReason": self.kind}
        if self.http_status is not None:
            out["httpStatus"] = self.http_status
        if self.provider_error_type:
            out["providerErrorType"] = self.provider_error_type
        if self.preview:
            out["providerErrorMessagePreview"] = self.preview[:200]
        return out


class ModelProvider(Protocol):
    id: str
    api: str

    def stream(self, request: ModelRequest, on_text: Callable[[str], None],
               on_tool: Callable[[dict[str, Any]], None]) -> Deferred[ModelResult]: ...


@attrs.frozen
class ModelInfo:
    provider: str
    id: str
    name: str
    context_window: int = 128_000
    reasoning: bool = False
    tags: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.provider}/{self.id}"

    def public(self, available: bool = True) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "provider": self.provider,
                "contextWindow": self.context_window, "reasoning": self.reasoning,
                "tags": list(self.tags), "thinkingLevels": [{"id": "off", "label": "off"}],
                "thinkingDefault": "off", "available": available}


class ModelRegistry:
    def __init__(self, providers: Mapping[str, ModelProvider], models: list[ModelInfo],
                 primary: str) -> None:
        self.providers = dict(providers)
        self.models = models
        self.primary = primary

    def resolve(self, ref: str | None) -> tuple[ModelProvider, str]:
        """``provider/model`` (or a bare model id) -> (provider, model id)."""
        ref = ref or self.primary
        if "/" in ref:
            provider_id, model = ref.split("/", 1)
        else:
            match = next((m for m in self.models if m.id == ref), None)
            provider_id, model = (match.provider, ref) if match else (ref, ref)
        provider = self.providers.get(provider_id)
        if provider is None:
            raise ProviderError(f"Unknown model provider: {provider_id}", "unknown")
        return provider, model

    def info(self, ref: str) -> ModelInfo | None:
        return next((m for m in self.models if m.ref == ref), None)


def build_registry(raw_config: Mapping[str, Any], make_openai: Callable[..., ModelProvider],
                   offline: ModelProvider) -> ModelRegistry:
    """Providers and models from the real gateway's config keys; the offline model always."""
    providers: dict[str, ModelProvider] = {OFFLINE_PROVIDER: offline}
    models = [ModelInfo(OFFLINE_PROVIDER, OFFLINE_MODEL,
                        "Offline echo (built-in, no network; not a language model)",
                        context_window=8192, tags=("offline", "local"))]
    configured = ((raw_config.get("models") or {}).get("providers") or {})
    for provider_id, spec in configured.items():
        if not isinstance(spec, Mapping):
            continue
        api = spec.get("api", "openai-completions")
        if api not in ("openai-completions", "openai"):
            continue
        providers[provider_id] = make_openai(provider_id, spec)
        for m in spec.get("models") or []:
            if isinstance(m, Mapping) and m.get("id"):
                models.append(ModelInfo(provider_id, str(m["id"]), str(m.get("name") or m["id"]),
                                        int(m.get("contextWindow") or 128_000),
                                        bool(m.get("reasoning", False))))
    defaults = ((raw_config.get("agents") or {}).get("defaults") or {})
    model_cfg = defaults.get("model")
    primary = model_cfg.get("primary") if isinstance(model_cfg, Mapping) else model_cfg
    if not isinstance(primary, str) or "/" not in primary:
        primary = f"{OFFLINE_PROVIDER}/{OFFLINE_MODEL}"
    return ModelRegistry(providers, models, primary)
