"""chat.send, chat.history, chat.abort, chat.inject; agent, agent.wait (§6.2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure

from openclaw_tw.agent import attachments
from openclaw_tw.agent.dedupe import DedupeCache
from openclaw_tw.agent.runtime import AgentRuntime, AlreadyRecorded, Outcome, Run, TooManyRuns
from openclaw_tw.automation.heartbeat import hidden_in_chat
from openclaw_tw.errors import UNAVAILABLE, GatewayError, invalid_request
from openclaw_tw.methods.reused_keys import answer_reused, fingerprint, key_conflict
from openclaw_tw.methods.session_rows import RowPresenter
from openclaw_tw.methods.session_search import message_text
from openclaw_tw.protocol.dispatch import CallContext, rpc
from openclaw_tw.protocol.schema import Bool, Int, Str, closed
from openclaw_tw.sessions.keys import explicit_key, normalize_agent_id, resolve_key
from openclaw_tw.sessions.store import Entry, SessionRow, SessionStore

_S1 = Str(min_len=1)
MAX_MESSAGE_CHARS = 1_000_000

CHAT_SEND = closed(
    {"sessionKey": Str(min_len=1, max_len=512), "message": Str(),
     "idempotencyKey": _S1},
    {"agentId": _S1, "sessionId": _S1, "timeoutMs": Int(minimum=0),
     "queueMode": Str(enum=["steer", "followup", "collect", "interrupt"])},
    "mentions workContext intent thinking fastMode fastAutoOnSeconds deliver "
    "originatingChannel originatingTo originatingAccountId originatingThreadId replyToId "
    "attachments toolBindings systemInputProvenance systemProvenanceReceipt "
    "suppressCommandInterpretation expectedLeafEntryId expectedSessionRoutingContract "
    "expectedPermissionMode expectedToolOverrides")
CHAT_HISTORY = closed(
    {"sessionKey": _S1},
    {"agentId": _S1, "limit": Int(minimum=1, maximum=1000), "maxChars": Int(1, 500_000),
     "cursor": Str(), "sessionId": _S1},
    "maxBytes offset pendingBefore inputRunIds messageId")
CHAT_ABORT = closed({"sessionKey": _S1}, {"agentId": _S1, "runId": _S1},
                    "preserveSideRuns")
CHAT_INJECT = closed({"sessionKey": _S1, "message": _S1},
                     {"agentId": _S1, "label": Str(max_len=100)})
AGENT = closed(
    {"message": _S1, "idempotencyKey": _S1},
    {"agentId": _S1, "sessionKey": Str(), "sessionId": Str(), "model": Str(),
     "provider": Str(), "timeout": Int(minimum=0), "deliver": Bool()},
    "to replyTo expectedExistingSessionId thinking attachments channel replyChannel "
    "accountId replyAccountId threadId groupId groupChannel groupSpace bestEffortDeliver lane "
    "cwd cleanupBundleMcpOnRunEnd modelRun promptMode extraSystemPrompt bootstrapContextMode "
    "bootstrapContextRunKind acpTurnSource internalRuntimeHandoffId "
    "internalExecutionIdentityRetry internalExecutionIdentityRecoveryAttempt "
    "execApprovalFollowupExpectedSessionId internalEvents inputProvenance "
    "suppressPromptPersistence sessionEffects sourceReplyDeliveryMode disableMessageTool "
    "swarmCollector swarmOutputSchema forceRestartSafeTools forceCodeModeTools "
    "voiceWakeTrigger label")
AGENT_WAIT = closed({"runId": _S1}, {"timeoutMs": Int(minimum=0)})


def agent_final(run_id: str, row_key: str, session_id: str, outcome: Outcome
                ) -> tuple[bool, dict[str, Any], dict[str, Any] | None]:
    """The terminal ``agent`` response: (ok, payload, error)."""
    if outcome.status == "ok":
        usage = {"input": outcome.input_tokens, "output": outcome.output_tokens,
                 "cacheRead": outcome.cache_read_tokens, "cacheWrite": outcome.cache_write_tokens,
                 "total": outcome.input_tokens + outcome.output_tokens +
                 outcome.cache_read_tokens + outcome.cache_write_tokens}
        return True, {"runId": run_id, "status": "ok", "summary": "completed", "result": {
            "payloads": [{"text": outcome.text, "mediaUrl": None}],
            "meta": {"durationMs": max(0, outcome.ended_at - outcome.started_at),
                     "agentMeta": {"sessionId": session_id, "sessionFile": row_key,
                                   "provider": outcome.provider, "model": outcome.model,
                                   "usage": usage}}}}, None
    message = outcome.error or "run failed"
    status = "aborted" if outcome.status == "aborted" else "error"
    return False, {"runId": run_id, "status": status, "summary": message}, \
        {"code": UNAVAILABLE, "message": message}


def history_message(entry: Entry, max_chars: int | None) -> dict[str, Any]:
    body = dict(entry.body)
    meta = {"id": entry.entry_id, "seq": entry.seq}
    if entry.run_id:
        meta["runId"] = entry.run_id
    if max_chars:
        content = body.get("content")
        if isinstance(content, str) and len(content) > max_chars:
            body["content"] = content[:max_chars]
        elif isinstance(content, list):
            body["content"] = [
                {**p, "text": p["text"][:max_chars]} if isinstance(p, dict) and
                isinstance(p.get("text"), str) else p for p in content]
    body["__openclaw"] = meta
    return body


class ChatMethods:
    """chat.send, chat.history, chat.abort, chat.inject; agent, agent.wait (§6.2)."""

    def __init__(self, runtime: AgentRuntime, store: SessionStore, dedupe: DedupeCache,
                 now_ms: Callable[[], int]) -> None:
        self.runtime = runtime
        self.store = store
        self.dedupe = dedupe
        self.now_ms = now_ms
        self.rows = RowPresenter(runtime)

    # -- chat.* ----------------------------------------------------------------------------

    @rpc("chat.send", CHAT_SEND)
    def chat_send(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        run_id = params["idempotencyKey"]
        if len(params["message"]) > MAX_MESSAGE_CHARS:
            raise invalid_request(f"message too long (max {MAX_MESSAGE_CHARS} characters)")
        key = _key_of(params)
        fp = fingerprint(key, params["message"])
        seen = self.dedupe.get(f"chat:{run_id}")
        if seen is not None:
            if seen.fingerprint not in (None, fp):
                raise key_conflict()
            if seen.active:
                return {"runId": run_id, "status": "in_flight"}
            if not seen.ok:
                raise GatewayError(UNAVAILABLE, seen.error["message"], payload=seen.payload)
            return seen.payload
        files = attachments.check("chat.send", params.get("attachments"))
        if not params["message"].strip() and not files:
            raise invalid_request("invalid chat.send params: message must not be empty")
        self.dedupe.start(f"chat:{run_id}", fp)
        timeout = params.get("timeoutMs")
        d = self.store.ensure(key, "chat").addCallback(
            lambda row: self.runtime.accept(row, params["message"], run_id, "chat", ctx.conn,
                                            timeout / 1000 if timeout else None, None,
                                            params.get("queueMode", "followup"),
                                            attachments=files,
                                            images=attachments.images(
                                                params.get("attachments"))))
        return d.addCallbacks(self._chat_accepted, self._chat_failed,
                              callbackArgs=(run_id,), errbackArgs=(run_id, key, params["message"]))

    def _chat_accepted(self, run: Run, run_id: str) -> dict[str, Any]:
        run.finished().addCallback(self._settle_chat, run_id)
        return {"runId": run_id, "status": "started"}

    def _chat_failed(self, f: Failure, run_id: str, key: str, message: str) -> Any:
        if f.check(AlreadyRecorded):
            # another send (or an earlier life of the gateway) used the key: it owns the
            # answer, and this request must leave no in-flight entry behind
            self.dedupe.forget(f"chat:{run_id}")
            return answer_reused(self.runtime, run_id, key, message)
        if f.check(TooManyRuns):  # nothing started: a retry with the same key may run
            self.dedupe.forget(f"chat:{run_id}")
            return f
        self.dedupe.settle(f"chat:{run_id}", False, None, {"message": str(f.value)})
        return f

    def _settle_chat(self, outcome: Outcome, run_id: str) -> None:
        if outcome.status == "ok":
            self.dedupe.settle(f"chat:{run_id}", True, {"runId": run_id, "status": "ok"})
        else:
            message = outcome.error or "run failed"
            self.dedupe.settle(f"chat:{run_id}", False,
                               {"runId": run_id, "status": "error", "summary": message},
                               {"code": UNAVAILABLE, "message": message})

    @rpc("chat.history", CHAT_HISTORY)
    def chat_history(self, ctx: CallContext, params: dict[str, Any]
                     ) -> Deferred[dict[str, Any]]:
        key = _key_of(params)
        limit = params.get("limit", 200)
        before = None
        cursor = params.get("cursor")
        if cursor:
            try:
                before = int(cursor)
            except ValueError:
                raise invalid_request("invalid chat.history params: bad cursor") from None
        return self.store.get(key).addCallback(self._history, key, params, limit, before)

    def _history(self, row: SessionRow | None, key: str, params: dict[str, Any], limit: int,
                 before: int | None) -> Deferred[dict[str, Any]]:
        session_id = params.get("sessionId") or (row.session_id if row else None)
        d = self.store.history(key, limit + 1, before, session_id)
        return d.addCallback(_history_page, key, row, limit, params.get("maxChars")).addCallback(
            self._with_session_info, key, row)

    def _with_session_info(self, page: dict[str, Any], key: str, row: SessionRow | None
                           ) -> dict[str, Any]:
        """The real gateway's ``defaults`` and ``sessionInfo`` (the session's row, read when
        the page is sent): the TUI takes the footer's model and token counts from them."""
        row = self.store.cached(key) or row
        page["defaults"] = self.rows.defaults(full=False)
        page["sessionInfo"] = self.rows.row(row) if row is not None else self.rows.missing(key)
        return page

    @rpc("chat.abort", CHAT_ABORT)
    def chat_abort(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        ids = self.runtime.abort(_key_of(params), params.get("runId"), "rpc")
        return {"ok": True, "aborted": bool(ids), "runIds": ids}

    @rpc("chat.inject", CHAT_INJECT)
    def chat_inject(self, ctx: CallContext, params: dict[str, Any]
                    ) -> Deferred[dict[str, Any]]:
        return self.store.ensure(_key_of(params), "inject").addCallback(self._inject, params)

    def _inject(self, row: SessionRow, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        now = self.now_ms()
        body: dict[str, Any] = {"role": "assistant", "content": [
            {"type": "text", "text": params["message"]}], "timestamp": now, "injected": True}
        if params.get("label"):
            body["label"] = params["label"]
        row.updated_at = now
        return self.store.append(row, "assistant", body).addCallback(_injected, row)

    # -- agent -------------------------------------------------------------------------------

    @rpc("agent", AGENT)
    def agent(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        run_id = params["idempotencyKey"]
        agent_id = normalize_agent_id(params.get("agentId"))
        seen = self.dedupe.get(f"agent:{run_id}")
        if seen is not None:
            if seen.active:
                return {"runId": run_id, "status": "in_flight", **(seen.payload or {})}
            if not seen.ok:
                raise GatewayError(UNAVAILABLE, seen.error["message"], payload=seen.payload)
            return seen.payload
        model = params.get("model")
        if model and params.get("provider") and "/" not in model:
            model = f"{params['provider']}/{model}"
        self.dedupe.start(f"agent:{run_id}")
        return self._agent_target(params, agent_id, run_id).addCallback(
            self._agent_row, ctx, params, run_id, agent_id, model).addErrback(
            self._agent_unstarted, run_id)

    def _agent_target(self, params: dict[str, Any], agent_id: str, run_id: str
                      ) -> Deferred[tuple[str, str | None]]:
        """The real gateway's choice of session for an ``agent`` turn: (key, session id the
        row must have, or None for the row's own).  A key is used as given; a session id
        alone names the freshest row of that id (of ``agentId``'s rows when given), else
        ``agent:<agent>:explicit:<id>``; ``agentId`` alone, the agent's main session; nothing
        at all, a session of its own named by the run id."""
        raw = (params.get("sessionKey") or "").strip()
        session_id = (params.get("sessionId") or "").strip() or None
        if raw:
            return succeed((resolve_key(raw, agent_id=agent_id), session_id))
        if session_id is None:
            if params.get("agentId"):
                return succeed((resolve_key(None, agent_id=agent_id), None))
            return succeed((explicit_key(agent_id, run_id), run_id))
        wanted = agent_id if params.get("agentId") else None
        return self.store.find(session_id=session_id).addCallback(
            _row_of_id, wanted).addCallback(
            lambda key: (key or explicit_key(agent_id, session_id), session_id))

    def _agent_row(self, target: tuple[str, str | None], ctx: CallContext,
                   params: dict[str, Any], run_id: str, agent_id: str, model: str | None
                   ) -> Deferred[Any]:
        key, session_id = target
        seen = self.dedupe.get(f"agent:{run_id}")
        if seen is not None:
            seen.payload = {"sessionKey": key, "agentId": agent_id}
        return self.store.ensure(key, "agent").addCallback(
            self._agent_adopt, session_id).addCallback(
            self._agent_start, ctx, params, run_id, key, model)

    def _agent_adopt(self, row: SessionRow, session_id: str | None) -> SessionRow:
        if session_id is not None:
            row.adopt_id(session_id, self.now_ms())
        return row

    def _agent_unstarted(self, f: Failure, run_id: str) -> Failure:
        """The row could not be read: the idempotency slot must not stay in flight."""
        seen = self.dedupe.get(f"agent:{run_id}")
        if seen is not None and seen.active:
            self.dedupe.settle(f"agent:{run_id}", False, None, {"message": str(f.value)})
        return f

    def _agent_start(self, row: SessionRow, ctx: CallContext, params: dict[str, Any],
                     run_id: str, key: str, model: str | None) -> Deferred[Any]:
        timeout = params.get("timeout")
        d = self.runtime.accept(row, params["message"], run_id, "agent", ctx.conn,
                                float(timeout) if timeout else None, model)
        return d.addCallbacks(self._agent_accepted, self._agent_failed,
                              callbackArgs=(ctx, run_id, key, row), errbackArgs=(run_id, row))

    def _agent_accepted(self, run: Run, ctx: CallContext, run_id: str, key: str,
                        row: SessionRow) -> Deferred[Any]:
        ctx.respond_early({"runId": run_id, "sessionKey": key, "agentId": row.agent_id,
                           "status": "accepted", "acceptedAt": run.accepted_at})
        return run.finished().addCallback(self._agent_final, run_id, row)

    def _agent_final(self, outcome: Outcome, run_id: str, row: SessionRow) -> Any:
        ok, payload, error = agent_final(run_id, row.key, row.session_id, outcome)
        self.dedupe.settle(f"agent:{run_id}", ok, payload, error)
        if not ok:
            assert error is not None
            raise GatewayError(error["code"], error["message"], payload=payload)
        return payload

    def _agent_failed(self, f: Failure, run_id: str, row: SessionRow) -> Any:
        if f.check(AlreadyRecorded):
            return self.runtime.recorded_outcome(run_id).addCallback(
                self._agent_final, run_id, row)
        if f.check(TooManyRuns):  # nothing started: a retry with the same key may run
            self.dedupe.forget(f"agent:{run_id}")
            return f
        self.dedupe.settle(f"agent:{run_id}", False, None, {"message": str(f.value)})
        return f

    @rpc("agent.wait", AGENT_WAIT)
    def agent_wait(self, ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        return self.runtime.wait(params["runId"], params.get("timeoutMs"))


def _row_of_id(rows: list[SessionRow], agent_id: str | None) -> str | None:
    """The key of the freshest row (of ``agent_id``'s, when given) among those with one
    session id; None when there is none or two are equally fresh (ambiguous)."""
    rows = sorted((r for r in rows if agent_id is None or r.agent_id == agent_id),
                  key=lambda r: r.updated_at, reverse=True)
    if not rows or (len(rows) > 1 and rows[0].updated_at == rows[1].updated_at):
        return None
    return rows[0].key


def _key_of(params: dict[str, Any]) -> str:
    return resolve_key(params.get("sessionKey"), agent_id=params.get("agentId"))


def in_chat(entry: Entry) -> bool:
    """False for a heartbeat's prompt and acknowledgment (automation/heartbeat.py)."""
    return not hidden_in_chat(entry.role, entry.run_id, message_text(entry.body))


def _history_page(entries: list[Entry], key: str, row: SessionRow | None, limit: int,
                  max_chars: int | None) -> dict[str, Any]:
    more = len(entries) > limit
    entries = entries[-limit:]
    out: dict[str, Any] = {
        "sessionKey": key, "sessionId": row.session_id if row else None,
        "messages": [history_message(e, max_chars) for e in entries if in_chat(e)],
        "hasMore": more}
    if more and entries:
        out["cursor"] = str(entries[0].seq)
    return out


def _injected(entry: Entry, row: SessionRow) -> dict[str, Any]:
    return {"ok": True, "messageId": entry.entry_id, "sessionKey": row.key}
