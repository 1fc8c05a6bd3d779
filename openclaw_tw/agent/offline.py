"""The offline default model: deterministic, local, no key and no network.

It is a model provider like any other (same interface, same runtime path), so ``make run``
has a working assistant out of the box.  It is labelled as what it is in ``models.list`` and
in every reply.  It understands ``/help``, ``count to N`` and otherwise echoes, streaming its
reply in several deltas on the injected clock.  It reports no token usage (it has no tokenizer,
and word counts reported as tokens would read as real ones): like a real provider that sends no
usage, its replies carry zero counts and session rows leave the token fields out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from openclaw_tw.agent.models import OFFLINE_MODEL, OFFLINE_PROVIDER, ModelRequest, ModelResult

CHUNK_WORDS = 3
CHUNK_INTERVAL_S = 0.005
HELP = ("I am the built-in offline model of openclaw_tw: I run locally, need no API key and do "
        "not understand language. Try `count to 5`, or configure a real provider under "
        "models.providers (any OpenAI-compatible endpoint) and set "
        "agents.defaults.model.primary.")


def reply_for(text: str) -> str:
    message = text.strip()
    if message.lower() in ("/help", "help"):
        return HELP
    m = re.fullmatch(r"(?:please\s+)?count(?:\s+to)?\s+(\d{1,3})\.?", message.lower())
    if m:
        n = max(1, min(int(m.group(1)), 100))
        return ", ".join(str(i) for i in range(1, n + 1)) + "."
    quoted = message if len(message) <= 2000 else message[:2000] + "…"
    return f"[offline model] You said: {quoted}"


def chunks(reply: str) -> list[str]:
    words = re.findall(r"\S+\s*", reply)
    lead = reply[: len(reply) - len(reply.lstrip())]
    out = [lead + "".join(words[i : i + CHUNK_WORDS]) if i == 0 else
           "".join(words[i : i + CHUNK_WORDS]) for i in range(0, len(words), CHUNK_WORDS)]
    return out or [reply]


class OfflineProvider:
    id = OFFLINE_PROVIDER
    api = "offline"

    def __init__(self, clock: IReactorTime, interval: float = CHUNK_INTERVAL_S) -> None:
        self.clock = clock
        self.interval = interval

    def stream(self, request: ModelRequest, on_text: Callable[[str], None],
               on_tool: Callable[[dict[str, Any]], None]) -> Deferred[ModelResult]:
        last_user = next((m.get("content") for m in reversed(request.messages)
                          if m.get("role") == "user"), "")
        reply = reply_for(last_user if isinstance(last_user, str) else str(last_user))
        parts = chunks(reply)
        pending: list[IDelayedCall] = []

        def cancel(d: Deferred[ModelResult]) -> None:
            for call in pending:
                if call.active():
                    call.cancel()

        d: Deferred[ModelResult] = Deferred(cancel)

        def emit(i: int) -> None:
            pending.clear()
            on_text(parts[i])
            if i + 1 < len(parts):
                pending.append(self.clock.callLater(self.interval, emit, i + 1))
            else:
                d.callback(ModelResult(reply, "stop", response_model=request.model or
                                       OFFLINE_MODEL))

        pending.append(self.clock.callLater(0, emit, 0))
        return d


__all__ = ["CancelledError", "OfflineProvider", "reply_for"]
