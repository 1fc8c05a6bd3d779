"""Agent runs: one active run per session, streamed as ``chat``/``agent`` events (§7.3).

A run is accepted only after its user entry is committed (so an acknowledged turn is never
lost), streams deltas from its model provider, and commits the assistant entry before the
terminal events and responses that report it.  Abort, timeout and shutdown cancel the
provider's Deferred (which cancels the upstream request) and persist what was said so far.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.application.service import Service
from twisted.internet.defer import (
    CancelledError,
    Deferred,
    DeferredList,
    ensureDeferred,
    fail,
    succeed,
)
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import deferLater
from twisted.logger import Logger

from openclaw_tw.agent import turn_input
from openclaw_tw.agent.models import (
    ModelRegistry,
    ModelRequest,
    ModelResult,
    ProviderError,
    Usage,
)
from openclaw_tw.agent.run import AlreadyRecorded, Outcome, Run, TooManyRuns, record_usage
from openclaw_tw.agent.run_events import RunEvents, aborted_entry, assistant_message
from openclaw_tw.agent.settled import SettledRuns
from openclaw_tw.agent.tool_rounds import ToolRounds
from openclaw_tw.sessions.store import SessionRow, SessionStore

if TYPE_CHECKING:
    from openclaw_tw.hub.gateway import Gateway
    from openclaw_tw.interfaces import IConnection

_log = Logger(namespace="agent/runtime")

DEFAULT_TIMEOUT_S = 600.0
MAX_TOOL_ROUNDS = 6
HISTORY_TURNS = 40
SHUTDOWN_GRACE_S = 1.5
# Unfinished runs (accepted, queued or running) are held in memory with their messages: a
# session keeps at most this many (its active run and its queue), the gateway at most ...
MAX_UNFINISHED_PER_SESSION = 128
MAX_UNFINISHED = 1024  # ... this many over all sessions; more are refused (TooManyRuns)
# A run started by an interactive UI (the TUI, the Control UI, webchat: client mode "ui" or
# "webchat") ends no sooner than this after it was accepted; see AgentRuntime._ack_grace.
ACK_GRACE_S = 0.25
INTERACTIVE_MODES = frozenset({"ui", "webchat"})


class AgentRuntime(RunEvents, ToolRounds, Service):
    name = "agents"

    def __init__(self, gw: Gateway, store: SessionStore, registry: ModelRegistry) -> None:
        self.gw = gw
        self.store = store
        self.registry = registry
        self.runs: dict[str, Run] = {}
        self.active: dict[str, Run] = {}
        self.queues: dict[str, deque[Run]] = {}
        self.on_session_changed: Callable[[SessionRow, str], None] = lambda row, reason: None
        self.exec_tool: Any = None  # agent.exec_tool.ExecTool when tools.exec.enabled
        self.settled = SettledRuns(gw.clock, self.runs)  # finished runs, for agent.wait
        self._unfinished: dict[str, int] = {}  # session key -> runs accepted, not yet settled
        self.ack_grace_s = ACK_GRACE_S

    # -- accepting ----------------------------------------------------------------------------

    def accept(self, row: SessionRow, message: str, run_id: str, kind: str,
               origin: IConnection | None, timeout_s: float | None = None,
               model_ref: str | None = None, queue_mode: str = "followup",
               system_prompt: str | None = None,
               listeners: list[Callable[[str], None]] | None = None,
               attachments: list[dict[str, Any]] | None = None,
               model_messages: list[dict[str, Any]] | None = None,
               client_tools: list[dict[str, Any]] | None = None,
               images: list[str] | None = None) -> Deferred[Run]:
        """Commit the user entry, then queue the run; fires with the Run after the commit.

        ``listeners`` are called with each text delta (before any can stream); the end of the
        run is ``Run.finished()``."""
        if run_id in self.runs:  # a run with this key is live or just ended: never replace it
            return fail(AlreadyRecorded(run_id))
        in_session = self._unfinished.get(row.key, 0)
        if in_session >= MAX_UNFINISHED_PER_SESSION:
            return fail(TooManyRuns(f"session {row.key[:64]!r} already has {in_session} "
                                    "unfinished runs; wait for one to end"))
        if sum(self._unfinished.values()) >= MAX_UNFINISHED:
            return fail(TooManyRuns(f"the gateway already has {MAX_UNFINISHED} unfinished runs; "
                                    "wait for some to end"))
        self._unfinished[row.key] = in_session + 1
        now = self.gw.now_ms()
        run = Run(run_id, row, kind, message, origin, timeout_s or DEFAULT_TIMEOUT_S,
                  model_ref or row.overrides.get("model"), now,
                  system_prompt=system_prompt, listeners=list(listeners or ()),
                  model_messages=model_messages, client_tools=client_tools,
                  images=images or None)
        self.runs[run_id] = run
        row.updated_at = row.last_interaction_at = now
        body: dict[str, Any] = {"role": "user", "content": message, "timestamp": now,
                                "idempotencyKey": f"{run_id}:user"}
        if attachments:
            body["attachments"] = attachments
        d = self.store.append(row, "user", body, run_id, f"{run_id}:user")

        def committed(_: Any) -> Run:
            if queue_mode == "interrupt" and row.key in self.active:
                self.abort(row.key, None, "interrupt", exclude=run)
            self.queues.setdefault(row.key, deque()).append(run)
            self._pump(row.key)
            return run

        def failed(f: Any) -> Any:
            self._count_ended(run)
            if self.runs.get(run_id) is run:
                del self.runs[run_id]
            if f.check(sqlite3.IntegrityError):
                # The key was recorded before (the dedupe window passed, or the gateway
                # restarted): answer from the durable transcript instead of running again.
                raise AlreadyRecorded(run_id)
            return f

        return d.addCallbacks(committed, failed)

    def recorded_request(self, run_id: str) -> Deferred[tuple[str, str, bool] | None]:
        """What a used key was first sent with: (session key, message, still running), or
        ``None`` when nothing was recorded under it."""
        run = self.runs.get(run_id)
        if run is not None:
            return succeed((run.session_key, run.message, run.outcome is None))

        def first_user(entries: list[Any]) -> tuple[str, str, bool] | None:
            user = next((e for e in entries if e.role == "user"), None)
            if user is None:
                return None
            content = user.body.get("content")
            return user.session_key, content if isinstance(content, str) else "", False

        return self.store.run_entries(run_id).addCallback(first_user)

    def recorded_outcome(self, run_id: str) -> Deferred[Outcome]:
        """The terminal outcome of an earlier turn, rebuilt from its transcript entries."""

        def build(entries: list[Any]) -> Outcome:
            reply = next((e for e in reversed(entries) if e.role == "assistant"), None)
            last = entries[-1] if entries else None
            ts = last.ts if last is not None else self.gw.now_ms()
            start = entries[0].ts if entries else ts
            if reply is not None and not reply.body.get("aborted"):
                usage = reply.body.get("usage") or {}
                text = "".join(p.get("text", "") for p in reply.body.get("content") or []
                               if isinstance(p, dict))
                return Outcome("ok", text, str(reply.body.get("stopReason") or "stop"), start,
                               ts, str(reply.body.get("provider") or ""),
                               str(reply.body.get("model") or ""),
                               int(usage.get("input") or 0), int(usage.get("output") or 0),
                               response_id=reply.body.get("responseId"),
                               cache_read_tokens=int(usage.get("cacheRead") or 0),
                               cache_write_tokens=int(usage.get("cacheWrite") or 0))
            message = str(last.body.get("content")) if last is not None and \
                last.role == "custom" else "this turn has no reply"
            return Outcome("error", "", "error", start, ts, "", "", error=message)

        return self.store.run_entries(run_id).addCallback(build)

    def _pump(self, key: str) -> None:
        if key in self.active or not self.running:
            return
        queue = self.queues.get(key)
        if not queue:
            self.queues.pop(key, None)
            return
        run = queue.popleft()
        self.active[key] = run
        ensureDeferred(self._execute(run)).addErrback(
            lambda f: _log.failure("run {run} crashed", f, run=run.run_id))

    # -- control --------------------------------------------------------------------------------

    def abort(self, session_key: str | None, run_id: str | None, reason: str = "rpc",
              exclude: Run | None = None) -> list[str]:
        """Abort matching active or queued runs; returns their ids."""
        hit: list[str] = []
        for run in list(self.runs.values()):
            if run.outcome is not None or run is exclude:
                continue
            if run_id is not None and run.run_id != run_id:
                continue
            if session_key is not None and run.session_key != session_key:
                continue
            hit.append(run.run_id)
            run.stop = reason
            if run.state == "queued":
                queue = self.queues.get(run.session_key)
                if queue and run in queue:
                    queue.remove(run)
                # Every acknowledged turn ends with an entry of its own (see store.load).
                self.store.append(run.row, "custom", aborted_entry(reason, self.gw.now_ms()),
                                  run.run_id)
                self._settle(run, self._outcome(run, "aborted", reason))
            elif run.upstream is not None:
                run.upstream.cancel()
        return hit

    def wait(self, run_id: str, timeout_ms: int | None) -> Deferred[dict[str, Any]]:
        run = self.runs.get(run_id)
        timeout_payload = {"runId": run_id, "status": "timeout"}
        if run is None:
            d: Deferred[dict[str, Any]] = Deferred()
            self.gw.clock.callLater((timeout_ms or 0) / 1000, d.callback, timeout_payload)
            return d
        waiter = run.finished()
        if run.outcome is not None:
            return waiter.addCallback(lambda o: o.wait_payload(run_id))
        timer = self.gw.clock.callLater((timeout_ms if timeout_ms is not None else 30_000)
                                        / 1000, waiter.cancel)
        waiter.addCallback(lambda o: (timer.active() and timer.cancel(),
                                      o.wait_payload(run_id))[1])
        return waiter.addErrback(lambda f: f.trap(CancelledError) and timeout_payload)

    def stopService(self) -> Deferred[Any]:
        """Abort running turns, wait (bounded) until their partial replies are persisted, and
        close providers' connection pools."""
        active = list(self.active.values())
        self.abort(None, None, "shutdown")
        super().stopService()
        self.settled.clear()
        for provider in self.registry.providers.values():
            close = getattr(provider, "close", None)
            if close is not None:
                close()
        if not active:
            return DeferredList([])
        waits = DeferredList([r.finished() for r in active], consumeErrors=True)
        done: Deferred[Any] = Deferred()
        timer = self.gw.clock.callLater(SHUTDOWN_GRACE_S, lambda: done.called or
                                        done.callback(None))
        waits.addBoth(lambda _: (timer.active() and timer.cancel(),
                                 done.called or done.callback(None)))
        return done

    # -- one run --------------------------------------------------------------------------------

    async def _execute(self, run: Run) -> None:
        row, now = run.row, self.gw.now_ms()
        run.state, run.started_at = "running", now
        timer: IDelayedCall | None = None
        try:
            provider, model = self.registry.resolve(run.model_ref)
            run.provider, run.model = provider.id, model
            row.status, row.last_run_id, row.started_at = "running", run.run_id, now
            row.ended_at = None
            await self.store.save(row)
            self.on_session_changed(row, "run-start")
            if run.kind == "chat":
                self._status(run, "preparing_context")
            self._agent(run, "lifecycle", {"phase": "start", "startedAt": now}, sid=True)
            if run.kind == "chat":
                self._status(run, "starting_model")
            self._agent(run, "lifecycle", {"phase": "model", "provider": run.provider,
                                           "model": run.model}, sid=True)
            if run.model_messages is not None:  # the client sent the conversation
                info = self.registry.info(f"{run.provider}/{model}")
                messages = turn_input.for_model(
                    run.model_messages, info is None or "image" in info.input,
                    getattr(provider, "api", "") == "offline")
            else:
                messages = await self._history_messages(run)
                if run.images:
                    info = self.registry.info(f"{run.provider}/{model}")
                    if info is not None and "image" in info.input:
                        turn_input.attach_images(messages, run.images)
                    run.images = None  # the model request holds them now (or never needs them)
            tools = list(run.client_tools) if run.client_tools else self._tools_for(provider)
            timer = self.gw.clock.callLater(run.timeout_s, self._timeout, run)
            for _ in range(MAX_TOOL_ROUNDS):
                if run.stop is not None:
                    raise CancelledError()
                calls: list[dict[str, Any]] = []
                run.upstream = provider.stream(
                    ModelRequest(run.provider, model, messages, tools=tools or None),
                    lambda t: self._delta(run, t),
                    lambda data, calls=calls: self._tool(run, data, calls))
                result = await run.upstream
                run.usage += result.usage
                if result.usage.reported:
                    run.last_call = result.usage
                if not (calls and result.stop_reason == "tool_calls" and tools):
                    break
                if run.client_tools:  # the client runs its own tools: the turn ends here
                    run.tool_calls = turn_input.tool_calls_of(calls)
                    break
                await self._run_tools(run, calls, messages, result)
        except CancelledError:
            await self._stopped(run)
        except ProviderError as err:
            await self._failed(run, err)
        except Exception as err:  # a bug or an unexpected provider failure: report it
            _log.failure("run {run} failed", run=run.run_id)
            await self._failed(run, ProviderError(f"internal error: {err}"))
        else:
            await self._completed(run, result)
        finally:
            if timer is not None and timer.active():
                timer.cancel()
            self.active.pop(row.key, None)
            self._pump(row.key)

    async def _history_messages(self, run: Run) -> list[dict[str, Any]]:
        """The model input rebuilt from the session's transcript, this turn last."""
        row = run.row
        queued = {r.run_id for r in self.queues.get(row.key, ())}
        # the user entries of turns queued behind this one are newer than its own: read
        # past them so the window still holds this turn and its context
        entries = await self.store.history(row.key, HISTORY_TURNS + len(queued), None,
                                           row.session_id)
        messages = turn_input.to_messages(turn_input.turn_order(entries, run.run_id, queued))
        if not any(e.run_id == run.run_id and e.role == "user" for e in entries):
            messages.append({"role": "user", "content": run.message})
        if run.system_prompt:
            messages.insert(0, {"role": "system", "content": run.system_prompt})
        return messages

    def _timeout(self, run: Run) -> None:
        if run.outcome is None and run.upstream is not None:
            run.stop = "timeout"
            run.upstream.cancel()

    async def _ack_grace(self, run: Run) -> None:
        """Hold a run's terminal events (final, error, aborted) until its acknowledgement has
        had time to reach the client that asked for it.

        The real TUI handles every frame of one socket read before its ``chat.send`` call
        returns; if the run's terminal ``chat`` event is among them, the returning call re-arms
        the pending send that the event had already settled, and the TUI stays "busy" for good.
        The real gateway never gets there (dispatching a run alone takes it hundreds of ms); a
        local or loopback model can answer within a few ms of the ack.  One-shot clients (the
        CLI's ``agent``, SDKs, HTTP, channels, cron) have no such state and are not held."""
        origin = run.origin
        if origin is None or run.stop == "shutdown" or \
                (origin.client or {}).get("mode") not in INTERACTIVE_MODES:
            return
        wait_s = (run.accepted_at - self.gw.now_ms()) / 1000 + self.ack_grace_s
        if wait_s > 0:
            await deferLater(self.gw.clock, wait_s, lambda: None)

    async def _completed(self, run: Run, result: ModelResult) -> None:
        await self._ack_grace(run)
        row, now = run.row, self.gw.now_ms()
        text = result.text or run.text
        self._agent(run, "usage", {"outputTokens": run.usage.output})
        self._agent(run, "lifecycle", {"phase": "finishing", "stopReason": result.stop_reason,
                                       "aborted": False, "livenessState": "working",
                                       "endedAt": now}, sid=True)
        usage: dict[str, Any] = run.usage.public()
        info = self.registry.info(f"{run.provider}/{run.model}")
        cost = info.cost_of(run.usage) if info is not None else None
        if cost is not None:
            usage["cost"] = cost
        content: list[dict[str, Any]] = [{"type": "text", "text": text}]
        content += [{"type": "toolCall", "id": c["id"], "name": c["function"]["name"],
                     "arguments": c["function"]["arguments"]} for c in run.tool_calls or ()]
        body = {"role": "assistant", "content": content,
                "api": "offline" if run.provider == "offline" else "openai-completions",
                "provider": run.provider, "model": run.model, "usage": usage,
                "stopReason": result.stop_reason, "timestamp": now,
                "responseId": result.response_id}
        row.status, row.ended_at, row.last_run_error = "done", now, None
        record_usage(row, run.usage, run.last_call, cost)
        row.updated_at = row.last_interaction_at = now
        await self.store.append(row, "assistant", body, run.run_id)
        outcome = self._outcome(run, "ok", result.stop_reason, text=text, result=result)
        receipt = {"runId": run.run_id, "sessionId": row.session_id, "turnId": run.run_id,
                   "requested": {"provider": run.provider, "model": run.model},
                   "effective": {"provider": run.provider, "model": run.model,
                                 "responseModel": result.response_model or run.model},
                   "successfulToolNames": [], "rerouted": False,
                   "terminalDisposition": "visible"}
        self._agent(run, "lifecycle", {
            "phase": "end", "startedAt": run.started_at, "endedAt": now, "aborted": False,
            "stopReason": result.stop_reason, "livenessState": "working",
            "executionSettled": True, "terminalReceipt": receipt,
            "terminalReply": {"disposition": "visible", "text": text}}, sid=True)
        self._chat(run, "final", stopReason=result.stop_reason, message=assistant_message(text, now),
                   usage=usage)
        self._settle(run, outcome)

    async def _failed(self, run: Run, err: ProviderError) -> None:
        await self._ack_grace(run)
        row, now = run.row, self.gw.now_ms()
        message = err.message
        detail = err.detail(run.provider, run.model)
        row.status, row.ended_at, row.last_run_error = "error", now, message
        row.updated_at = now
        body = {"role": "custom", "customType": "run-failed-before-reply", "display": True,
                "content": f"⚠️ Agent failed before reply: {message}", "timestamp": now,
                "errorKind": err.kind}
        await self.store.append(row, "custom", body, run.run_id)
        self._agent(run, "lifecycle", {"phase": "error", "error": message,
                                       "startedAt": run.started_at, "endedAt": now,
                                       "executionSettled": True}, sid=True)
        self._chat(run, "error", errorMessage=message, errorKind=err.kind, errorDetail=detail)
        self._settle(run, self._outcome(run, "error", "error", text=run.text, error=message,
                                        kind=err.kind, detail=detail))

    async def _stopped(self, run: Run) -> None:
        await self._ack_grace(run)
        row, now = run.row, self.gw.now_ms()
        reason = run.stop or "rpc"
        if reason == "timeout":
            await self._failed(run, ProviderError(
                f"run timed out after {run.timeout_s:g}s", "timeout"))
            return
        row.status = "interrupted" if reason == "shutdown" else "aborted"
        row.ended_at, row.updated_at = now, now
        if run.text:
            body = {"role": "assistant", "content": [{"type": "text", "text": run.text}],
                    "provider": run.provider, "model": run.model, "stopReason": "aborted",
                    "timestamp": now, "aborted": True, "abortReason": reason}
            await self.store.append(row, "assistant", body, run.run_id)
        if reason == "shutdown":
            marker = {"role": "custom", "customType": "run-interrupted", "display": True,
                      "content": "This run was interrupted because the gateway stopped.",
                      "timestamp": now}
            await self.store.append(row, "custom", marker, run.run_id)
        elif not run.text:
            await self.store.append(row, "custom", aborted_entry(reason, now), run.run_id)
        else:
            await self.store.save(row)
        self._chat(run, "aborted", stopReason=reason, message=assistant_message(run.text, now))
        self._agent(run, "lifecycle", {"phase": "end", "status": "cancelled", "aborted": True,
                                       "stopReason": reason, "startedAt": run.started_at,
                                       "endedAt": now}, sid=True)
        self._settle(run, self._outcome(run, "aborted", reason, text=run.text,
                                        error="This operation was aborted"))

    def _outcome(self, run: Run, status: str, stop: str, text: str = "",
                 result: ModelResult | None = None, error: str | None = None,
                 kind: str | None = None, detail: dict[str, Any] | None = None) -> Outcome:
        usage = run.usage if result else Usage()
        return Outcome(status, text, stop, run.started_at or run.accepted_at, self.gw.now_ms(),
                       run.provider, run.model, usage.input, usage.output,
                       error, kind, detail, result.response_id if result else None,
                       usage.cache_read, usage.cache_write,
                       run.tool_calls if status == "ok" else None)

    def _settle(self, run: Run, outcome: Outcome) -> None:
        if run.outcome is None:  # counted once, whatever ends it
            self._count_ended(run)
        run.outcome, run.state = outcome, "done"
        self.gw.metrics.run_finished(outcome.status, outcome.provider)
        run.listeners = []
        # Settled runs stay 300 s for agent.wait; they must not keep the caller's socket
        # (and its buffers) alive that long after it closed (issue #21 finding 9).
        run.origin = None
        waiters, run.waiters = run.waiters, []
        for d in waiters:
            d.callback(outcome)
        self.on_session_changed(run.row, "run-end")
        self._forget_later(run)

    def _count_ended(self, run: Run) -> None:
        key = run.session_key
        left = self._unfinished.get(key, 0) - 1
        if left > 0:
            self._unfinished[key] = left
        else:
            self._unfinished.pop(key, None)

    def _forget_later(self, run: Run) -> None:
        if self.running:
            self.settled.keep(run)
        elif self.runs.get(run.run_id) is run:  # stopping: nothing will ask for it again
            del self.runs[run.run_id]
