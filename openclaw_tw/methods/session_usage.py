"""sessions.usage: token usage, cost, messages and latency per session (``agent/session_usage``).

The params are the real ``SessionsUsageParamsSchema``; the range and its errors are
``usage.cost``'s (the same real helper, ``usage-date-range.ts``).  Which agent: ``agentScope:
all`` for every agent, else the agent of ``key``, ``agentId``, or ``main``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred

from openclaw_tw.agent.costs import UsageRangeError, resolve_range
from openclaw_tw.agent.session_usage import SessionUsage
from openclaw_tw.errors import invalid_request
from openclaw_tw.protocol.dispatch import CallContext, rpc
from openclaw_tw.protocol.schema import Bool, Int, Obj, Str
from openclaw_tw.sessions.keys import agent_of, normalize_agent_id, resolve_key

_S1 = Str(min_len=1)
SESSIONS_USAGE = Obj(optional={
    "key": _S1, "agentId": _S1, "agentScope": Str(enum=("all",)), "creatorKey": _S1,
    "startDate": Str(), "endDate": Str(), "mode": Str(enum=("utc", "gateway", "specific")),
    "range": Str(enum=("7d", "30d", "90d", "1y", "all")),
    "groupBy": Str(enum=("instance", "family")), "includeHistorical": Bool(),
    "utcOffset": Str(), "timeZone": _S1, "limit": Int(minimum=1),
    "includeContextWeight": Bool()})


class SessionUsageMethods:
    def __init__(self, usage: SessionUsage, now_ms: Callable[[], int]) -> None:
        self._usage = usage
        self._now_ms = now_ms

    @rpc("sessions.usage", SESSIONS_USAGE)
    def sessions_usage(self, ctx: CallContext, params: dict[str, Any]
                       ) -> Deferred[dict[str, Any]]:
        now = self._now_ms()
        try:
            span = resolve_range(params, now)
        except UsageRangeError as e:
            raise invalid_request(str(e)) from None
        key_raw = (params.get("key") or "").strip() or None
        every = params.get("agentScope") == "all"
        if every and (params.get("agentId") or key_raw):
            raise invalid_request("agentScope=all cannot be combined with key or agentId")
        key = resolve_key(key_raw, agent_id=params.get("agentId")) if key_raw else None
        agent = None if every else (agent_of(key) if key else
                                    normalize_agent_id(params.get("agentId")))
        family = params.get("groupBy") == "family" or params.get("includeHistorical") is True
        creator = (params.get("creatorKey") or "").strip() or None
        return self._usage.summary(span, agent, key, family, params.get("limit"), creator, now)
