"""Session rows as the real gateway presents them: ``sessions.list``/``sessions.describe``
rows, the ``session`` of ``sessions.changed``, and ``chat.history``'s ``sessionInfo`` and
``defaults``.

Only what this gateway can compute is shown (see ``RowPresenter.row``); fields the real rows
carry for features we do not have (owners and participants, placement, prompt-budget
estimates, fast mode, ...) are left out rather than filled with constants.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
_ModelOf = tuple[str, str, "int | None"]  # (provider, model, contextTokens)
THINKING = {"thinkingLevels": [{"id": "off", "label": "off"}], "thinkingOptions": ["off"],
            "thinkingDefault": "off"}


# When and why a row was archived: kept beside the overrides (not patchable), shown in rows
# and entries; the CLI's `sessions archive` takes archivedAt as the gateway's confirmation.
ARCHIVE_FIELDS = ("archivedAt", "archiveReason")


def archive(row: SessionRow, archived: bool, now: int) -> None:
    """Archive (a manual archive at ``now``, unless already archived) or unarchive ``row``."""
    if archived and not row.archived:
        row.overrides.update(archivedAt=now, archiveReason="manual")
    elif not archived:
        for field in ARCHIVE_FIELDS:
            row.overrides.pop(field, None)
    row.archived = archived


SAID = ("user", "assistant")  # the roles of the messages a preview shows
LAST_WITHIN = 20  # the newest entries looked at for a row's lastMessagePreview
PREVIEW_MAX = 500


def body_text(body: dict[str, Any]) -> str:
    """The text of a stored message: its string content, or its parts' texts joined."""
    content = body.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def said(body: Any) -> str | None:
    """``lastMessagePreview`` of a user or assistant message, None if it says nothing."""
    text = body_text(body).strip() if isinstance(body, dict) else ""
    return text[:PREVIEW_MAX] if text else None


def enrich(previews: dict[str, str], result: dict[str, Any], params: dict[str, Any]
           ) -> dict[str, Any]:
    """``includeLastMessage``: ``lastMessagePreview``, the text of the newest user or assistant
    message among a session's last ``LAST_WITHIN`` entries (``previews``, from the store's
    ``newest``); ``includeDerivedTitles``: ``derivedTitle``, the session's label (the real
    gateway derives a title from a label, display name or subject, never from the messages)."""
    for out in result["sessions"]:
        if params.get("includeLastMessage") and (text := previews.get(out["key"])):
            out["lastMessagePreview"] = text
        if params.get("includeDerivedTitles") and out.get("label"):
            out["derivedTitle"] = out["label"]
    return result


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
        return self._row(row, self.runtime.gw.now_ms(), {},
                         self.runtime.active if active_runs else None)

    def rows(self, rows: Iterable[SessionRow]) -> list[dict[str, Any]]:
        """Many rows (a ``sessions.list`` page): the clock read and each model resolved once."""
        now, models, active = self.runtime.gw.now_ms(), {}, self.runtime.active
        return [self._row(r, now, models, active) for r in rows]

    def _row(self, row: SessionRow, now: int, models: dict[str | None, _ModelOf],
             active: Mapping[str, Any] | None) -> dict[str, Any]:
        """The row's fields in the real rows' order; a field without a value is left out
        (except ``modelOverrideSource``, null when no override chose the model)."""
        overrides = row.overrides
        override = overrides.get("model") if overrides else None
        resolved = models.get(override)
        if resolved is None:
            resolved = models[override] = self._model(override)
        provider, model, context = resolved
        key, agent, via = row.key, row.agent_id, row.created_via
        kind = kind_of(key)
        main = key == f"agent:{agent}:main"
        out: dict[str, Any] = {
            "key": key, "visibility": "shared", "kind": kind, "chatType": kind, "agentId": agent,
            "isMain": main, "isBackground": False, "sessionId": row.session_id,
            "createdAt": row.created_at, "updatedAt": row.updated_at}
        if row.last_interaction_at is not None:
            out["lastInteractionAt"] = row.last_interaction_at
        if (shown := CREATED_VIA.get(via or "")) is not None:
            out["createdVia"] = shown
        out["classification"] = "main" if main else \
            "cron" if via == "cron" or ":cron:" in key else kind
        if via == "cron":  # who made it: the real rows name the system for automations' sessions
            out["createdActor"] = {"type": "system"}
        if row.label is not None:
            out["label"] = out["displayName"] = row.label
        if overrides and (category := overrides.get("category")) is not None:
            out["category"] = category
        out["archived"] = row.archived
        if row.archived and overrides:
            for field in ARCHIVE_FIELDS:
                if (value := overrides.get(field)) is not None:
                    out[field] = value
        out["pinned"], out["unread"] = row.pinned, row.unread
        if (status := STATUS.get(row.status or "")) is not None:
            out["status"] = status
        started, ended = row.started_at, row.ended_at
        if started is not None:
            out["startedAt"] = started
        if ended is not None:
            out["endedAt"] = ended
        if ended and started:
            out["runtimeMs"] = ended - started
        if row.last_run_id is not None:
            out["lastRunId"] = row.last_run_id
        if row.last_run_error is not None:
            out["lastRunError"] = row.last_run_error
        out["abortedLastRun"] = row.status in ("aborted", "interrupted")
        out.update(THINKING)
        if overrides and (thinking := overrides.get("thinkingLevel")) is not None:
            out["thinkingLevel"] = thinking
        if row.input_tokens is not None:
            out["inputTokens"] = row.input_tokens
        if row.output_tokens is not None:
            out["outputTokens"] = row.output_tokens
        if row.total_tokens_fresh and row.total_tokens is not None:
            out["totalTokens"] = row.total_tokens
        out["totalTokensFresh"] = row.total_tokens_fresh
        if row.estimated_cost_usd is not None:
            out["estimatedCostUsd"] = row.estimated_cost_usd
        out["modelProvider"], out["model"] = provider, model
        out["modelOverrideSource"] = "user" if override else None
        if context is not None:
            out["contextTokens"] = context
        out["snapshotAt"] = now
        if active is not None:
            run = active.get(key)
            out["hasActiveRun"] = run is not None
            out["activeRunIds"] = [run.run_id] if run is not None else []
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
