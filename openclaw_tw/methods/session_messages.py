"""Live session transcripts: sessions.messages.subscribe/unsubscribe and the ``session.message``
event; what a connection is looking at: sessions.viewers.set, sessions.observer.visibility.

``session.message`` carries one committed transcript entry as ``chat.history`` presents it
(``message``, with ``__openclaw`` id and seq), ``messageId``/``messageSeq``, and the session's
row twice, as the real gateway sends it: flattened at the top level and as ``session`` (the UI
merges ``session`` over the top level).  While the entry's run is in flight the row says so
(``hasActiveRun``, ``status: running``), as the real event does for both the user message and
the reply.  It goes to the connections subscribed to that session's messages and to those
subscribed to session events (``sessions.subscribe``), like the real gateway's delivery.

Subscriptions live in ``IConnection.subscriptions``: ``messages:<key>`` per session,
``viewing:<key>`` for the sessions a connection declared it renders.

``includeApprovals`` asks for a replay of the session's pending inline approvals
(``session.approval``); this gateway has no inline session approvals (exec approvals reach the
UI through ``exec.approval.*``), so the replay it answers is empty.  There is no session
observer (the live run digests the real gateway computes), so ``sessions.observer.visibility``
answers the real gateway's own error for a gateway without one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from openclaw_tw.errors import UNAVAILABLE, GatewayError, invalid_request
from openclaw_tw.methods.chat import history_message, in_chat
from openclaw_tw.methods.session_rows import RowPresenter
from openclaw_tw.protocol import scopes as S
from openclaw_tw.protocol.dispatch import CallContext, rpc
from openclaw_tw.protocol.schema import Arr, Bool, Obj, Str
from openclaw_tw.sessions.keys import resolve_key
from openclaw_tw.sessions.store import Entry, SessionRow

if TYPE_CHECKING:
    from openclaw_tw.agent.runtime import AgentRuntime
    from openclaw_tw.interfaces import IConnection

_S1 = Str(min_len=1)
MAX_KEY_CHARS = 4096  # a subscription holds its key for the connection's life ...
MAX_MESSAGE_SUBSCRIPTIONS = 256  # ... and a connection holds at most this many
SUBSCRIBE = Obj({"key": Str(min_len=1, max_len=MAX_KEY_CHARS)},
                {"agentId": _S1, "includeApprovals": Bool()})
UNSUBSCRIBE = Obj({"key": _S1}, {"agentId": _S1})
VIEWERS = Obj({"sessionKeys": Arr(Str(min_len=1, max_len=512), max_items=32)},
              {"agentId": _S1})
OBSERVER = Obj({"visible": Bool()})
APPROVALS_NEEDED = ("sessions.messages.subscribe includeApprovals requires a paired device and "
                    "gateway scope: operator.approvals")


MESSAGES_PREFIX = "messages:"


def messages_subscription(key: str) -> str:
    return MESSAGES_PREFIX + key


class SessionMessagesMethods:
    def __init__(self, runtime: AgentRuntime, broadcast: Callable[..., int],
                 now_ms: Callable[[], int]) -> None:
        self.runtime = runtime
        self.broadcast = broadcast
        self.now_ms = now_ms
        self.rows = RowPresenter(runtime)

    # -- the event -----------------------------------------------------------------------------

    def appended(self, row: SessionRow, entry: Entry) -> None:
        """A transcript entry was committed (``SessionStore.appended``); a heartbeat's prompt
        and acknowledgment are not chat (``in_chat``)."""
        if not in_chat(entry):
            return
        session = self.rows.row(row)
        run = self.runtime.runs.get(entry.run_id) if entry.run_id else None
        if run is not None and run.outcome is None:  # accepted, not settled: in flight
            session["hasActiveRun"], session["status"] = True, "running"
            if run.run_id not in session["activeRunIds"]:
                session["activeRunIds"] = [*session["activeRunIds"], run.run_id]
        top = {k: v for k, v in session.items() if k != "key"}
        payload: dict[str, Any] = {
            **top, "sessionKey": row.key, "agentId": row.agent_id,
            "message": history_message(entry, None), "messageId": entry.entry_id,
            "messageSeq": entry.seq, "session": session}
        if entry.run_id and entry.role != "user":
            payload["runId"] = entry.run_id
        key = row.key
        self.broadcast("session.message", payload, scope=S.READ,
                       predicate=lambda conn: _receives(conn, key))

    # -- subscriptions -------------------------------------------------------------------------

    @rpc("sessions.messages.subscribe", SUBSCRIBE)
    def subscribe(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("includeApprovals") is False:  # the schema's Literal(true)
            raise invalid_request("invalid sessions.messages.subscribe params: "
                                  "at /includeApprovals: must be equal to constant")
        key = resolve_key(params["key"], agent_id=params.get("agentId"))
        approvals = params.get("includeApprovals") is True
        if approvals and not (ctx.conn.device_id and
                              S.scope_satisfied(S.APPROVALS, ctx.conn.scopes)):
            raise invalid_request(APPROVALS_NEEDED)
        name = messages_subscription(key)
        subs = ctx.conn.subscriptions
        if name not in subs and sum(1 for s in subs if s.startswith(MESSAGES_PREFIX)) \
                >= MAX_MESSAGE_SUBSCRIPTIONS:
            raise invalid_request(f"too many sessions.messages subscriptions on this connection "
                                  f"(at most {MAX_MESSAGE_SUBSCRIPTIONS}); unsubscribe some first")
        subs.add(name)
        out: dict[str, Any] = {"subscribed": True, "key": key}
        if approvals:
            out["approvalReplay"] = {"sessionKey": key, "updatedAtMs": self.now_ms(),
                                     "approvals": [], "truncated": False}
        return out

    @rpc("sessions.messages.unsubscribe", UNSUBSCRIBE)
    def unsubscribe(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        key = resolve_key(params["key"], agent_id=params.get("agentId"))
        ctx.conn.subscriptions.discard(messages_subscription(key))
        return {"subscribed": False, "key": key}

    @rpc("sessions.viewers.set", VIEWERS)
    def viewers_set(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        """Replace the sessions this connection renders; answers their canonical keys."""
        keys: list[str] = []
        for raw in params["sessionKeys"]:
            if not raw.strip():
                raise invalid_request("invalid sessions.viewers.set params")
            agent = None if raw.strip().startswith("agent:") else params.get("agentId")
            key = resolve_key(raw, agent_id=agent)
            if key not in keys:
                keys.append(key)
        subs = ctx.conn.subscriptions
        for old in [s for s in subs if s.startswith("viewing:")]:
            subs.discard(old)
        subs.update(f"viewing:{k}" for k in keys)
        return {"sessionKeys": keys}

    @rpc("sessions.observer.visibility", OBSERVER)
    def observer_visibility(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        raise GatewayError(UNAVAILABLE, "Session observer is unavailable.")


def _receives(conn: IConnection, key: str) -> bool:
    subs = conn.subscriptions
    return "sessions" in subs or messages_subscription(key) in subs
