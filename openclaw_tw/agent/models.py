"""Model providers: the interface every provider implements, and the registry built from the
config (``models.providers.<id>``, ``agents.defaults.model.primary`` as ``provider/model``).

A provider streams one completion: it calls ``on_text`` with each text delta (and ``on_tool``
with tool-call data) and returns a Deferred of ``ModelResult``; cancelling that Deferred must
cancel the upstream request.  Failures are ``ProviderError`` with an ``errorKind``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

import attrs
from twisted.internet.defer import Deferred

from openclaw_tw.errors import clip

OFFLINE_PROVIDER = "offline"
OFFLINE_MODEL = "offline-echo"
# The context window the real gateway reports for its default model when the config declares
# none (its DEFAULT_CONTEXT_TOKENS).
DEFAULT_CONTEXT_TOKENS = 200_000
COST_KEYS = ("input", "output", "cacheRead", "cacheWrite")
ERROR_KINDS = ("refusal", "timeout", "rate_limit", "context_length", "unknown")


@attrs.frozen
class ModelRequest:
    provider: str
    model: str
    messages: list[dict[str, Any]]  # OpenAI chat format: {role, content}
    max_tokens: int | None = None
    tools: list[dict[str, Any]] | None = None  # OpenAI function tools offered to the model


@attrs.frozen
class Usage:
    """Token counts of one model call (or the sum over a run's calls), in the real gateway's
    buckets: ``input`` excludes the prompt tokens read from or written to the provider's cache.
    All zero means the provider reported no usage (the real gateway's ``hasNonzeroUsage``)."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0

    @property
    def reported(self) -> bool:
        return any((self.input, self.output, self.cache_read, self.cache_write))

    @property
    def prompt(self) -> int:
        """The prompt's size: what the session row reports as ``totalTokens``."""
        return self.input + self.cache_read + self.cache_write

    @property
    def total(self) -> int:
        return self.prompt + self.output

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.input + other.input, self.output + other.output,
                     self.cache_read + other.cache_read, self.cache_write + other.cache_write)

    def public(self) -> dict[str, int]:
        """The transcript's ``usage`` object (an assistant entry)."""
        return {"input": self.input, "output": self.output, "cacheRead": self.cache_read,
                "cacheWrite": self.cache_write, "totalTokens": self.total}


@attrs.frozen
class ModelResult:
    text: str
    stop_reason: str = "stop"
    input_tokens: int = 0  # prompt tokens not read from or written to the cache
    output_tokens: int = 0
    response_id: str | None = None
    response_model: str | None = None
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def usage(self) -> Usage:
        return Usage(self.input_tokens, self.output_tokens, self.cache_read_tokens,
                     self.cache_write_tokens)


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
    # The context window the config declares (``contextWindow``), None when it declares none:
    # the session row's ``contextTokens``.
    context_tokens: int | None = None
    # USD per million tokens (``cost``: input, output, cacheRead, cacheWrite), None when the
    # config gives no price: the session row's ``estimatedCostUsd``.
    cost: tuple[float, float, float, float] | None = None
    # What the model takes (``input``: text, image, ...; text when the config names nothing)
    # and whether it runs on this machine (a loopback/``.local`` base URL, or in-process);
    # None when that is unknown: models.list's ``input`` and ``local``.
    input: tuple[str, ...] = ("text",)
    local: bool | None = None

    @property
    def ref(self) -> str:
        return f"{self.provider}/{self.id}"

    def cost_of(self, usage: Usage) -> dict[str, float] | None:
        """What ``usage`` cost at the configured prices (the real gateway's
        ``calculateUsageCost``), None without prices."""
        if self.cost is None:
            return None
        rate_in, rate_out, rate_read, rate_write = self.cost
        out = {"input": usage.input * rate_in / 1e6, "output": usage.output * rate_out / 1e6,
               "cacheRead": usage.cache_read * rate_read / 1e6,
               "cacheWrite": usage.cache_write * rate_write / 1e6}
        out["total"] = out["input"] + out["output"] + out["cacheRead"] + out["cacheWrite"]
        return out

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
            raise ProviderError(f"Unknown model provider: {clip(provider_id)}", "unknown")
        return provider, model

    def info(self, ref: str) -> ModelInfo | None:
        return next((m for m in self.models if m.ref == ref), None)

    def replace_with(self, other: ModelRegistry) -> None:
        """Hot reload: take ``other``'s providers, catalog and default in place (every holder
        of this registry sees them); a turn already running keeps the provider it resolved."""
        self.providers, self.models, self.primary = dict(other.providers), other.models, \
            other.primary


def build_registry(raw_config: Mapping[str, Any], make_openai: Callable[..., ModelProvider],
                   offline: ModelProvider) -> ModelRegistry:
    """Providers and models from the real gateway's config keys; the offline model always."""
    providers: dict[str, ModelProvider] = {OFFLINE_PROVIDER: offline}
    models = [ModelInfo(OFFLINE_PROVIDER, OFFLINE_MODEL,
                        "Offline echo (built-in, no network; not a language model)",
                        context_window=8192, tags=("offline", "local"), context_tokens=8192,
                        local=True)]
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
                window = _positive_int(m.get("contextWindow"))
                models.append(ModelInfo(provider_id, str(m["id"]), str(m.get("name") or m["id"]),
                                        window or 128_000, bool(m.get("reasoning", False)),
                                        context_tokens=window, cost=_prices(m.get("cost")),
                                        input=_inputs(m.get("input")),
                                        local=is_local_base_url(m.get("baseUrl") or
                                                                spec.get("baseUrl"))))
    defaults = ((raw_config.get("agents") or {}).get("defaults") or {})
    model_cfg = defaults.get("model")
    primary = model_cfg.get("primary") if isinstance(model_cfg, Mapping) else model_cfg
    if not isinstance(primary, str) or "/" not in primary:
        primary = f"{OFFLINE_PROVIDER}/{OFFLINE_MODEL}"
    return ModelRegistry(providers, models, primary)


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    return int(value)


def _prices(cost: Any) -> tuple[float, float, float, float] | None:
    """``models.providers.<id>.models[].cost`` -> per-million prices; None when it names none
    (the real gateway's ``hasModelCostRates``)."""
    if not isinstance(cost, Mapping):
        return None
    rates = [cost.get(k) for k in COST_KEYS]
    if all(r is None for r in rates):
        return None
    values = [float(r) if isinstance(r, (int, float)) and not isinstance(r, bool) and r >= 0
              else 0.0 for r in rates]
    return values[0], values[1], values[2], values[3]


INPUT_KINDS = ("text", "image", "audio", "video", "document")


def _inputs(value: Any) -> tuple[str, ...]:
    """``models.providers.<id>.models[].input`` -> the kinds the model takes (text if none)."""
    if not isinstance(value, list):
        return ("text",)
    kinds = tuple(dict.fromkeys(v for v in value if v in INPUT_KINDS))
    return kinds or ("text",)


def is_local_base_url(base_url: Any) -> bool:
    """The real gateway's ``isLocalBaseUrl``: loopback, wildcard and mDNS ``.local`` hosts.
    A provider without a base URL talks to its public default (not local)."""
    if not isinstance(base_url, str) or not base_url:
        return False
    try:
        host = (urlsplit(base_url).hostname or "").lower().strip("[]")
    except ValueError:
        return False
    if host in ("localhost", "0.0.0.0", "::", "::1") or host.endswith(".local"):
        return True
    parts = host.split(".")
    return len(parts) == 4 and parts[0] == "127" and all(
        p.isdigit() and str(int(p)) == p and int(p) < 256 for p in parts)
