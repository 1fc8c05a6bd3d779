"""Model calls as diagnostic events: each provider of the registry wrapped in a recorder.

``RecordingProvider`` is transparent to the runtime (same ``id``, ``api``, ``stream`` and
Deferred, so cancelling still cancels the upstream request; other attributes such as
``close`` pass through).  Around each call it records what it saw:

* ``model.call.started`` (provider, model);
* ``model.call.completed`` with ``durationMs`` and ``timeToFirstByteMs`` (the first text
  delta), or ``model.call.error`` with ``durationMs`` and the error kind as ``reason``
  (``aborted`` when the call was cancelled);
* ``model.usage`` after a completed call that reported tokens: the token counts and,
  for a priced model, ``costUsd`` (``ModelInfo.cost_of``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from openclaw_tw.agent.models import (
    ModelProvider,
    ModelRegistry,
    ModelRequest,
    ModelResult,
    ProviderError,
)


class Recorder(Protocol):
    def record(self, kind: str, **fields: Any) -> Any: ...


class RecordingProvider:
    def __init__(self, inner: ModelProvider, recorder: Recorder, clock: IReactorTime,
                 registry: ModelRegistry) -> None:
        self.inner = inner
        self.id = inner.id
        self.api = inner.api
        self._recorder = recorder
        self._clock = clock
        self._registry = registry

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def stream(self, request: ModelRequest, on_text: Callable[[str], None],
               on_tool: Callable[[dict[str, Any]], None]) -> Deferred[ModelResult]:
        record, clock = self._recorder.record, self._clock
        provider, model = request.provider or self.id, request.model
        started = clock.seconds()
        first: list[float] = []
        record("model.call.started", provider=provider, model=model)

        def text(delta: str) -> None:
            if not first:
                first.append(clock.seconds())
            on_text(delta)

        def elapsed_ms(since: float) -> int:
            return int(round((clock.seconds() - since) * 1000))

        def completed(result: ModelResult) -> ModelResult:
            duration = elapsed_ms(started)
            record("model.call.completed", provider=provider, model=model,
                   durationMs=duration,
                   timeToFirstByteMs=int(round((first[0] - started) * 1000)) if first else None)
            self._usage(provider, model, result, duration)
            return result

        def failed(failure: Failure) -> Failure:
            reason = "aborted" if failure.check(CancelledError) else \
                failure.value.kind if isinstance(failure.value, ProviderError) else "unknown"
            record("model.call.error", provider=provider, model=model,
                   durationMs=elapsed_ms(started), reason=reason)
            return failure

        d = self.inner.stream(request, text, on_tool)
        d.addCallbacks(completed, failed)
        return d

    def _usage(self, provider: str, model: str, result: ModelResult, duration: int) -> None:
        usage = getattr(result, "usage", None)
        if usage is None or not getattr(usage, "reported", False):
            return  # the provider reported no tokens
        info = self._registry.info(f"{provider}/{model}")
        cost = info.cost_of(usage) if info is not None else None
        self._recorder.record(
            "model.usage", provider=provider, model=model,
            usage={"input": usage.input, "output": usage.output,
                   "cacheRead": usage.cache_read, "cacheWrite": usage.cache_write,
                   "total": usage.total},
            costUsd=cost["total"] if cost is not None else None, durationMs=duration)


def instrument(registry: ModelRegistry, recorder: Recorder, clock: IReactorTime) -> None:
    """Wrap every provider of ``registry`` (in place: the hub and the runtime share it)."""
    for provider_id, provider in list(registry.providers.items()):
        if not isinstance(provider, RecordingProvider):
            registry.providers[provider_id] = RecordingProvider(provider, recorder, clock,
                                                                registry)
