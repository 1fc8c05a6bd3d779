"""Driving ``OpenAIProvider.stream`` in tests: one call and what its callbacks saw."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred

from openclaw_tw.agent.models import ModelRequest
from openclaw_tw.agent.openai import OpenAIProvider

KEY = "sk-test-0123456789abcdef"
MESSAGES = [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello to the world"}]


class Run:
    """One stream() call, with what its callbacks saw."""

    def __init__(self, provider: OpenAIProvider, model: str = "gpt-4o-mini",
                 max_tokens: int | None = None, on_text: Any = None) -> None:
        self.texts: list[str] = []
        self.tools: list[dict[str, Any]] = []
        self.first_text: Deferred[str] = Deferred()

        def text(t: str) -> None:
            self.texts.append(t)
            if not self.first_text.called:
                self.first_text.callback(t)
            if on_text is not None:
                on_text(t)

        req = ModelRequest("fake", model, MESSAGES, max_tokens)
        self.d = provider.stream(req, text, self.tools.append)
