"""chat.startup and chat.metadata: what the Control UI's chat view loads first.

``chat.startup`` is ``chat.history`` (the newest page of the session's transcript, the
``defaults`` and the session's row as ``sessionInfo``) plus what the real gateway adds for a
view that is opening (``chat-startup-handler.ts``, ``chat-history-handler.ts``):
``totalMessages``, ``pendingInputs`` (inputs accepted but not yet in the transcript: ours commit
the user entry before a run is acknowledged, so there are none), ``thinkingLevel``,
``sessionInfo.activeLeafEntryId`` (the newest entry: a transcript here has one branch),
``inFlightRun`` (the streaming reply of a ``chat`` run still going: ``{runId, text,
startedAt}``) and ``metadata`` (the ``chat.metadata`` answer).  The short-id form
(``{shortId, agentId}``, a session shared by link) finds nothing here: sessions have no short
ids, so it answers ``{resolution: {ok: false}}`` as the real gateway does for a missing one.

``chat.metadata``: the models the composer may pick (the ``models.list`` rows), the slash
commands the Control UI runs itself through methods we serve (``chat_commands.py``), no
swarm, automatic account selection (each provider has one configured credential) and a
runtime that is not locked.  Nothing of it changes while the gateway runs (the model registry
is built at start-up), so ``chat.metadata.changed`` is never sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed

from openclaw_tw.agent.runtime import AgentRuntime
from openclaw_tw.errors import invalid_request
from openclaw_tw.methods.chat import ChatMethods
from openclaw_tw.methods.chat_commands import commands
from openclaw_tw.protocol.dispatch import CallContext, rpc
from openclaw_tw.protocol.schema import Arr, Int, Obj, OneOf, Str
from openclaw_tw.sessions.keys import normalize_agent_id
from openclaw_tw.sessions.store import SessionStore

_S1 = Str(min_len=1)
BY_KEY = Obj({"sessionKey": _S1}, {
    "agentId": _S1, "cursor": Str(), "limit": Int(1, 1000), "maxBytes": Int(minimum=1024),
    "offset": Int(minimum=0), "pendingBefore": Int(minimum=1),
    "inputRunIds": Arr(Str(min_len=1, max_len=256)), "messageId": _S1, "sessionId": _S1,
    "maxChars": Int(1, 500_000)})
BY_SHORT_ID = Obj({"shortId": _S1, "agentId": _S1}, {
    "slugHint": _S1, "limit": Int(1, 1000), "maxBytes": Int(minimum=1024)})
STARTUP = OneOf(BY_KEY, BY_SHORT_ID)
METADATA = Obj(optional={"agentId": _S1, "authProfileId": Str(min_len=1, max_len=256),
                         "sessionKey": _S1})
HISTORY_FIELDS = ("sessionKey", "agentId", "limit", "maxChars", "cursor", "sessionId")
AUTOMATIC = {"kind": "automatic", "label": "Automatic account selection"}


class ChatStartupMethods:
    def __init__(self, chat: ChatMethods, runtime: AgentRuntime, store: SessionStore,
                 models: Callable[[], list[dict[str, Any]]],
                 agent_ids: Callable[[], set[str]]) -> None:
        self.chat = chat
        self.runtime = runtime
        self.store = store
        self.models = models
        self.agent_ids = agent_ids

    @rpc("chat.startup", STARTUP)
    def startup(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        if "shortId" in params:
            return {"resolution": {"ok": False}}
        metadata = self.metadata(ctx, {"sessionKey": params["sessionKey"],
                                       **({"agentId": params["agentId"]}
                                          if params.get("agentId") else {})})
        history = {k: params[k] for k in HISTORY_FIELDS if k in params}
        d: Deferred[dict[str, Any]] = self.chat.chat_history(ctx, history)
        return d.addCallback(self._counted).addCallback(self._started, metadata,
                                                        newest="cursor" not in params)

    def _counted(self, page: dict[str, Any]) -> Deferred[dict[str, Any]]:
        session_id = page.get("sessionId")
        if session_id is None:  # no row yet: nothing was said
            return succeed({**page, "totalMessages": 0})
        d = self.store.count_entries(page["sessionKey"], session_id)
        return d.addCallback(lambda n: {**page, "totalMessages": n})

    def _started(self, page: dict[str, Any], metadata: dict[str, Any], newest: bool
                 ) -> dict[str, Any]:
        info = page["sessionInfo"]
        if newest and page["messages"]:  # one branch: its leaf is the newest entry
            info["activeLeafEntryId"] = page["messages"][-1]["__openclaw"]["id"]
        out: dict[str, Any] = {
            "sessionKey": page["sessionKey"], "sessionId": page.get("sessionId"),
            "messages": page["messages"], "pendingInputs": {"items": [], "total": 0},
            "hasMore": page["hasMore"], "totalMessages": page["totalMessages"]}
        if "cursor" in page:
            out["cursor"] = page["cursor"]
        out.update(defaults=page["defaults"], sessionInfo=info,
                   thinkingLevel=info.get("thinkingLevel") or info.get("thinkingDefault")
                   or page["defaults"].get("thinkingDefault") or "off")
        run = self.runtime.active.get(page["sessionKey"])
        if run is not None and run.kind == "chat" and run.outcome is None:
            out["inFlightRun"] = {"runId": run.run_id, "text": run.text,
                                  "startedAt": run.started_at or run.accepted_at}
        out["metadata"] = metadata
        if out["sessionId"] is None:
            del out["sessionId"]
        return out

    @rpc("chat.metadata", METADATA)
    def metadata(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        agent = params.get("agentId")
        if agent is not None and normalize_agent_id(agent) not in self.agent_ids():
            raise invalid_request(f'unknown agent id "{agent}"')
        return {"models": self.models(), "commands": commands(), "swarmEnabled": False,
                "accountSelection": dict(AUTOMATIC), "runtimeSelectionLocked": False}
