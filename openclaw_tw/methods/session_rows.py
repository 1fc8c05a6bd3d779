"""Session rows as the real gateway presents them: ``sessions.list``/``sessions.describe``
rows, the ``session`` of ``sessions.changed``, and ``chat.history``'s ``sessionInfo`` and
``defaults``.

Only what this gateway can compute is shown (see ``RowPresenter.row``); fields the real rows
carry for features we do not have (owners and participants, placement, prompt-budget
estimates, fast mode, ...) are left out rather than filled with constants.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openclaw_tw.agent.models import DEFAULT_CONTEXT_TOKENS
from openclaw_tw.channels.providers import PROVIDERS
from openclaw_tw.sessions.keys import agent_of, kind_of
from openclaw_tw.sessions.store import SessionRow

if TYPE_CHECKING:
    from openclaw_tw.agent.runtime import AgentRuntime

# Our run states -> the row's status ("queued" | "running" | "done" | "failed" | "killed" |
# "timeout").  A run interrupted by a stop is "failed", as the real gateway reads its own
# "interrupted" entries; its abortedLastRun stays true.
STATUS = {"running": "running", "done": "done", "error": "failed", "aborted": "killed",
          "interrupted": "failed"}
# What created the row -> createdVia ("operator" | "channel" | "cron" | ...).  Sessions made by
# paths whose real value we have not seen (the agent method, HTTP, hooks, heartbeat, boot)
# leave it out, as the real rows of HTTP sessions do.
CREATED_VIA = {"chat": "operator", "send": "operator", "create": "operator",
               "inject": "operator", "cron": "cron", **{c: "channel" for c in PROVIDERS}}
# The thinking levels every model here supports: none (no provider gets a reasoning effort).
THINKING = {"thinkingLevels": [{"id": "off", "label": "off"}], "thinkingOptions": ["off"],
            "thinkingDefault": "off"}


def classification(row: SessionRow) -> str:
    """The row's classification as the real rows give it: ``main`` for an agent's main
    session, ``cron`` for one an automation opened, else its kind (``direct``, ``group``)."""
    if row.key == f"agent:{row.agent_id}:main":
        return "main"
    if row.created_via == "cron" or ":cron:" in row.key:
        return "cron"
    return kind_of(row.key)


class RowPresenter:
    """Builds rows from the store's row, the model registry and the runtime's active runs."""

    def __init__(self, runtime: AgentRuntime) -> None:
        self.runtime = runtime

    def _model(self, override: str | None) -> tuple[str, str, int | None]:
        """(provider, model, contextTokens) of the model a row runs on.

        contextTokens is the context window the config declares for that model; for the
        default model without one it is the real gateway's default (200,000), for a model
        chosen by an override without one it is unknown (the real rows leave it out)."""
        registry = self.runtime.registry
        ref = override or registry.primary
        provider, _, model = ref.partition("/")
        if not model:  # a bare model id
            info = next((m for m in registry.models if m.id == ref), None)
            provider, model = (info.provider, ref) if info else (ref, ref)
        info = registry.info(f"{provider}/{model}")
        context = info.context_tokens if info is not None else None
        if context is None and not override:
            context = DEFAULT_CONTEXT_TOKENS
        return provider, model, context

    def defaults(self, full: bool = True) -> dict[str, Any]:
        """``defaults`` of sessions.list (``full``) and of chat.history."""
        provider, model, context = self._model(None)
        out: dict[str, Any] = {"modelProvider": provider, "model": model,
                               "contextTokens": context}
        if full:
            out.update(THINKING)
        out["modelSelectionTarget"] = "session"
        return out

    def row(self, row: SessionRow, active_runs: bool = True) -> dict[str, Any]:
        """One session row.  ``active_runs``: with hasActiveRun/activeRunIds (sessions.list,
        chat.history's sessionInfo; sessions.describe's row has neither)."""
        override = row.overrides.get("model")
        provider, model, context = self._model(override)
        runtime_ms = (row.ended_at - row.started_at) if row.ended_at and row.started_at else None
        out: dict[str, Any] = {
            "key": row.key, "visibility": "shared", "kind": kind_of(row.key),
            "chatType": kind_of(row.key), "agentId": row.agent_id,
            "isMain": row.key == f"agent:{row.agent_id}:main", "isBackground": False,
            "sessionId": row.session_id, "createdAt": row.created_at, "updatedAt": row.updated_at,
            "lastInteractionAt": row.last_interaction_at,
            "createdVia": CREATED_VIA.get(row.created_via or ""),
            "classification": classification(row),
            # who made it: the real rows name the system for the sessions automations open
            "createdActor": {"type": "system"} if row.created_via == "cron" else None,
            "label": row.label, "displayName": row.label,
            "category": row.overrides.get("category"), "archived": row.archived,
            "pinned": row.pinned, "unread": row.unread, "status": STATUS.get(row.status or ""),
            "startedAt": row.started_at, "endedAt": row.ended_at, "runtimeMs": runtime_ms,
            "lastRunId": row.last_run_id, "lastRunError": row.last_run_error,
            "abortedLastRun": row.status in ("aborted", "interrupted"),
            **THINKING, "thinkingLevel": row.overrides.get("thinkingLevel"),
            "inputTokens": row.input_tokens, "outputTokens": row.output_tokens,
            "totalTokens": row.total_tokens if row.total_tokens_fresh else None,
            "totalTokensFresh": row.total_tokens_fresh,
            "estimatedCostUsd": row.estimated_cost_usd,
            "modelProvider": provider, "model": model,
            "modelOverrideSource": "user" if override else None,
            "contextTokens": context, "snapshotAt": self.runtime.gw.now_ms(),
        }
        out = {k: v for k, v in out.items() if v is not None or k == "modelOverrideSource"}
        if active_runs:
            active = self.runtime.active.get(row.key)
            out["hasActiveRun"] = active is not None
            out["activeRunIds"] = [active.run_id] if active is not None else []
        return out

    def missing(self, key: str) -> dict[str, Any]:
        """chat.history's sessionInfo for a key that has no row yet (the real gateway answers
        with one too: no session id, nothing run, the default model)."""
        provider, model, context = self._model(None)
        out: dict[str, Any] = {
            "key": key, "kind": kind_of(key), "agentId": agent_of(key),
            "isMain": key == f"agent:{agent_of(key)}:main", "isBackground": False,
            "updatedAt": None, "archived": False, "pinned": False, "unread": False,
            "totalTokensFresh": False, "modelProvider": provider, "model": model,
            "modelOverrideSource": None, "contextTokens": context,
            "snapshotAt": self.runtime.gw.now_ms(), "hasActiveRun": False, "activeRunIds": []}
        return {k: v for k, v in out.items() if v is not None or k in ("updatedAt",
                                                                       "modelOverrideSource")}
