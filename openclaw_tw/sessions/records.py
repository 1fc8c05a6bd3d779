"""What the session store keeps, as Python values: a session row, a transcript entry, and how
each is read from (and a row written to) its SQLite table (``store.py`` does the I/O)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import attrs

from openclaw_tw import _json

OVERRIDE_FIELDS = ("model", "thinkingLevel", "fastMode", "verboseLevel", "reasoningLevel",
                   "sendPolicy", "groupActivation", "category", "permissionMode")


@attrs.define
class SessionRow:
    key: str
    agent_id: str
    session_id: str
    created_at: int
    updated_at: int
    last_interaction_at: int | None = None
    label: str | None = None
    status: str | None = None
    last_run_id: str | None = None
    last_run_error: str | None = None
    started_at: int | None = None
    ended_at: int | None = None
    # The last run that reported usage: its input (prompt tokens not read from or written to
    # the cache) and output tokens, summed over its model calls; None until one did.
    input_tokens: int | None = None
    output_tokens: int | None = None
    archived: bool = False
    pinned: bool = False
    unread: bool = False
    overrides: dict[str, Any] = attrs.field(factory=dict)
    created_via: str | None = None
    # The prompt size of the last model call that reported usage (input + cache read + cache
    # write), and whether it is current: a later run that reported none makes it stale.
    total_tokens: int | None = None
    total_tokens_fresh: bool = False
    # What the last run that reported usage cost at the model's configured prices.
    estimated_cost_usd: float | None = None

    def renew(self, now: int) -> None:
        """A new session under this key (``sessions.reset``, an isolated cron run): a new id
        and transcript, no run, nothing used yet (the real row: 0 tokens, current; no cost)."""
        self.session_id, self.created_at, self.updated_at = str(uuid.uuid4()), now, now
        self.status = self.last_run_id = self.last_run_error = None
        self.started_at = self.ended_at = None
        self.input_tokens = self.output_tokens = self.total_tokens = 0
        self.total_tokens_fresh, self.estimated_cost_usd = True, None

    def adopt_id(self, session_id: str, now: int) -> None:
        """An ``agent`` request named this row's session by ``session_id``: a different id
        starts that session here (a new transcript; a row that has run is renewed, unless a
        run is going on it, which keeps its state)."""
        if session_id == self.session_id:
            return
        if self.last_run_id is not None and self.status != "running":
            self.renew(now)
        self.session_id = session_id

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.key, self.agent_id, self.session_id, self.created_at, self.updated_at,
                self.last_interaction_at, self.label, self.status, self.last_run_id,
                self.last_run_error, self.started_at, self.ended_at, self.input_tokens,
                self.output_tokens, int(self.archived), int(self.pinned), int(self.unread),
                json.dumps(self.overrides), self.created_via, self.total_tokens,
                int(self.total_tokens_fresh), self.estimated_cost_usd)


@attrs.frozen
class Entry:
    """One transcript entry as stored: ``body`` is the message object clients see."""

    seq: int
    session_key: str
    session_id: str
    entry_id: str
    role: str
    body: dict[str, Any]
    run_id: str | None
    idempotency_key: str | None
    ts: int


COLUMNS = (
    "key", "agent_id", "session_id", "created_at", "updated_at", "last_interaction_at",
    "label", "status", "last_run_id", "last_run_error", "started_at", "ended_at",
    "input_tokens", "output_tokens", "archived", "pinned", "unread", "overrides",
    "created_via", "total_tokens", "total_tokens_fresh", "estimated_cost_usd",)

TRANSCRIPT_INSERT = ("INSERT INTO transcript (session_key, session_id, entry_id, role, body, "
                     "run_id, idempotency_key, ts) VALUES (?,?,?,?,?,?,?,?)")
# Rows are upserted, never replaced: the row id stays, and ties in a listing keep creation order.
ROW_UPSERT = ("INSERT INTO sessions VALUES (" + ",".join("?" * 22) + ") "
              "ON CONFLICT (key) DO UPDATE SET " + ", ".join(
                  f"{c}=excluded.{c}" for c in COLUMNS[1:]))


def row_of(r: tuple[Any, ...]) -> SessionRow:
    """A ``SessionRow`` from a ``SELECT *`` of ``sessions`` (positional: a ``sessions.list``
    page makes a thousand of them)."""
    (key, agent_id, session_id, created, updated, interacted, label, status, run_id, run_error,
     started, ended, input_tokens, output_tokens, archived, pinned, unread, overrides, via,
     total, fresh, cost) = r
    return SessionRow(key, agent_id, session_id, created, updated, interacted, label, status,
                      run_id, run_error, started, ended, input_tokens, output_tokens,
                      bool(archived), bool(pinned), bool(unread),
                      body_of(overrides) if overrides and overrides != "{}" else {}, via, total,
                      bool(fresh), cost)


def body_of(text: str) -> Any:
    """A stored body: orjson reads it (a third of the stdlib's time, for a page of history);
    the stdlib reads what orjson refuses and ``json.dumps`` may have written (NaN)."""
    try:
        return _json.loads(text)
    except _json.JSONDecodeError:
        return json.loads(text)


def entry_of(r: tuple[Any, ...]) -> Entry:
    return Entry(r[0], r[1], r[2], r[3], r[4], body_of(r[5]), r[6], r[7], r[8])
