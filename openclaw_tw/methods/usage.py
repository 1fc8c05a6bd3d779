"""usage.status and usage.cost.

``usage.status`` reports provider plan quotas (the real gateway reads them from providers
that publish subscription usage windows, such as OAuth plans).  None of our providers
publishes any, so its ``providers`` list is empty, which is the real gateway's answer too
when no such provider is configured.  ``usage.cost`` sums the per-turn usage the transcripts
recorded (``agent/costs.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred

from openclaw_tw.agent.costs import CostUsage, UsageRangeError, resolve_range
from openclaw_tw.errors import invalid_request
from openclaw_tw.protocol.dispatch import CallContext, rpc
from openclaw_tw.protocol.schema import Num, Obj, OneOf, Str

_S1 = Str(min_len=1)
# The real handler reads these fields (usage-date-range.ts) and validates them itself: the
# date and offset fields as SessionsUsageParamsSchema types them, ``days`` a number or a
# numeric string (``gateway usage-cost --days`` sends a number).
USAGE_COST = Obj(optional={
    "days": OneOf(Num(), Str()), "startDate": Str(), "endDate": Str(),
    "range": Str(enum=("7d", "30d", "90d", "1y", "all")),
    "mode": Str(enum=("utc", "gateway", "specific")), "utcOffset": Str(), "timeZone": Str(),
    "agentId": _S1, "agentScope": Str(enum=("all",)),
})
USAGE_STATUS = Obj()


class UsageMethods:
    def __init__(self, costs: CostUsage, now_ms: Callable[[], int]) -> None:
        self._costs = costs
        self._now_ms = now_ms

    @rpc("usage.status", USAGE_STATUS)
    def status(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"updatedAt": self._now_ms(), "providers": []}

    @rpc("usage.cost", USAGE_COST)
    def cost(self, ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        try:
            resolve_range(params, self._now_ms())  # the range's errors come first
        except UsageRangeError as e:
            raise invalid_request(str(e)) from None
        if params.get("agentScope") == "all" and params.get("agentId"):
            raise invalid_request("agentScope=all cannot be combined with agentId")
        return self._costs.summary(params)
