"""The events of a run: ``chat`` and ``agent`` broadcasts (deltas, status, the payload shapes
of §7.3), a part of ``AgentRuntime`` (a mixin: it uses the runtime's hub)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from openclaw_tw.agent.run import Run
from openclaw_tw.automation.heartbeat import hidden_chat_event
from openclaw_tw.protocol import scopes as S

if TYPE_CHECKING:
    from openclaw_tw.hub.gateway import Gateway

_log = Logger(namespace="agent/runtime")


def assistant_message(text: str, ts: int) -> dict[str, Any]:
    return {"role": "assistant", "content": [{"type": "text", "text": text}], "timestamp": ts}


def aborted_entry(reason: str, ts: int) -> dict[str, Any]:
    return {"role": "custom", "customType": "run-aborted", "display": True,
            "content": f"This turn was aborted before a reply ({reason}).", "timestamp": ts,
            "abortReason": reason}


class RunEvents:
    gw: Gateway

    def _delta(self, run: Run, text: str) -> None:
        if not text or run.outcome is not None:
            return
        run.text += text
        self._agent(run, "assistant", {"text": run.text, "delta": text,
                                       "itemId": f"{run.item_id}:1"}, drop=True)
        self._chat(run, "delta", drop=True, deltaText=text,
                   message=assistant_message(run.text, self.gw.now_ms()))
        for listener in list(run.listeners):
            try:
                listener(text)
            except Exception:  # a broken listener must not break the run or its events
                _log.failure("run {run}: delta listener failed", run=run.run_id)

    def _status(self, run: Run, phase: str) -> None:
        run.seq += 1
        self._chat(run, "status", phase=phase)
        self._broadcast("agent", self._agent_payload(run, "run_status", {"phase": phase},
                                                     bump=False))

    def _agent(self, run: Run, stream: str, data: dict[str, Any], sid: bool = False,
               drop: bool = False) -> None:
        self._broadcast("agent", self._agent_payload(run, stream, data, sid=sid), drop)

    def _agent_payload(self, run: Run, stream: str, data: dict[str, Any], sid: bool = False,
                       bump: bool = True) -> dict[str, Any]:
        if bump:
            run.seq += 1
        payload: dict[str, Any] = {"runId": run.run_id, "stream": stream, "data": data,
                                   "sessionKey": run.session_key, "agentId": run.row.agent_id,
                                   "seq": run.seq, "ts": self.gw.now_ms()}
        if sid:
            payload["sessionId"] = run.row.session_id
        return payload

    def _chat(self, run: Run, state: str, drop: bool = False, **fields: Any) -> None:
        message = fields.get("message")
        if hidden_chat_event(run.run_id, state, message["content"][0]["text"] if message else ""):
            return  # a heartbeat's stream and acknowledgment are not chat
        payload = {"runId": run.run_id, "sessionKey": run.session_key,
                   "agentId": run.row.agent_id, "seq": run.seq, "state": state, **fields}
        self._broadcast("chat", payload, drop)

    def _broadcast(self, event: str, payload: dict[str, Any], drop: bool = False) -> None:
        self.gw.broadcast(event, payload, scope=S.READ, drop_if_slow=drop)
