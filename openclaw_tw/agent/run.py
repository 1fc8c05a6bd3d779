"""A turn of the agent runtime (``agent/runtime.py``): its record (``Run``), how it ended
(``Outcome``), and the refusal of a turn already in the transcript (``AlreadyRecorded``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
from twisted.internet.defer import Deferred

from openclaw_tw.agent.models import ModelResult, Usage
from openclaw_tw.errors import UNAVAILABLE, GatewayError
from openclaw_tw.sessions.store import SessionRow

if TYPE_CHECKING:
    from openclaw_tw.interfaces import IConnection


class AlreadyRecorded(Exception):
    """A turn with this idempotency key is already in the transcript."""

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self.run_id = run_id


class TooManyRuns(GatewayError):
    """A turn refused before anything is recorded: its session (or the gateway) already has
    as many unfinished runs as it keeps; retryable once some end."""

    def __init__(self, message: str) -> None:
        super().__init__(UNAVAILABLE, message, retryable=True, retry_after_ms=2000)


@attrs.frozen
class Outcome:
    status: str  # ok | error | aborted
    text: str
    stop_reason: str
    started_at: int
    ended_at: int
    provider: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    error: str | None = None
    error_kind: str | None = None
    error_detail: dict[str, Any] | None = None
    response_id: str | None = None
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    # Tool calls the model made of tools the client offered (agent/turn_input.py): the
    # client runs them; the turn ended with stop reason "tool_calls".
    tool_calls: list[dict[str, Any]] | None = None

    def wait_payload(self, run_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {"runId": run_id, "status": self.status, "endedAt": self.ended_at,
                               "stopReason": self.stop_reason}
        if self.error:
            out["error"] = self.error
        if self.status == "ok":
            out["terminalReply"] = {"disposition": "visible", "text": self.text}
        return out


@attrs.define(eq=False)
class Run:
    run_id: str
    row: SessionRow
    kind: str  # chat | agent
    message: str
    origin: IConnection | None
    timeout_s: float
    model_ref: str | None
    accepted_at: int
    seq: int = 0
    text: str = ""
    state: str = "queued"
    started_at: int = 0
    provider: str = ""
    model: str = ""
    upstream: Deferred[ModelResult] | None = None
    stop: str | None = None  # rpc | timeout | shutdown | interrupt
    outcome: Outcome | None = None
    waiters: list[Deferred[Outcome]] = attrs.field(factory=list)
    item_id: str = attrs.field(factory=lambda: str(uuid.uuid4()))
    # Extra system prompt text for this turn (e.g. an HTTP client's system messages).
    system_prompt: str | None = None
    # Called with each text delta as it streams (HTTP SSE); dropped when the run settles.
    listeners: list[Callable[[str], None]] = attrs.field(factory=list)
    # Usage over this run's model calls, and that of the last call that reported any.
    usage: Usage = attrs.field(factory=Usage)
    last_call: Usage | None = None
    # A conversation the client sent whole (OpenAI messages), its tools, and the calls the
    # model made of them (agent/turn_input.py).
    model_messages: list[dict[str, Any]] | None = None
    client_tools: list[dict[str, Any]] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    # This turn's images (data URLs), for a model that takes images; dropped once sent.
    images: list[str] | None = None

    @property
    def session_key(self) -> str:
        return self.row.key

    def finished(self) -> Deferred[Outcome]:
        """Fires with the outcome; cancelling it (a wait that timed out) takes it off the
        run, so repeated short waits on a long run do not pile up."""

        def cancelled(d: Deferred[Outcome]) -> None:
            if d in self.waiters:
                self.waiters.remove(d)

        d: Deferred[Outcome] = Deferred(cancelled)
        if self.outcome is not None:
            d.callback(self.outcome)
        else:
            self.waiters.append(d)
        return d


def record_usage(row: SessionRow, usage: Usage, last_call: Usage | None,
                 cost: dict[str, float] | None) -> None:
    """A completed run's usage on its session row, as the real gateway keeps it: the run's
    own input/output tokens and cost (not added to earlier runs'), and the prompt size of its
    last call as ``totalTokens``.  A run whose provider reported no usage leaves the counts as
    they were and marks the prompt size stale (the real gateway estimates one; we do not)."""
    if not usage.reported:
        row.total_tokens_fresh = False
        return
    row.input_tokens, row.output_tokens = usage.input, usage.output
    prompt = last_call.prompt if last_call is not None else 0
    row.total_tokens = prompt or None
    row.total_tokens_fresh = bool(prompt)
    row.estimated_cost_usd = cost["total"] if cost is not None else None
