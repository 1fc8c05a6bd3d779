"""doctor.memory.status, the one doctor method the real CLI's ``openclaw doctor`` calls.

The real one reports the agent's memory search (embeddings readiness, "dreaming" phases).
This gateway has no memory search at all, so it answers as the real gateway does for an agent
without a memory search manager: ``embedding.ok`` false with the reason, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from openclaw_tw.errors import invalid_request
from openclaw_tw.methods.agents import ConfigReader, configured_agents
from openclaw_tw.protocol.dispatch import CallContext, rpc
from openclaw_tw.protocol.schema import Bool, Obj, Str
from openclaw_tw.sessions.keys import normalize_agent_id

# The fields the real handler reads (doctor.ts: agentId, and probe/deep to probe embeddings).
MEMORY_STATUS = Obj(optional={"agentId": Str(), "probe": Bool(), "deep": Bool()})
# The real answer's reason when no memory search manager exists for the agent.
NO_MEMORY_SEARCH = "memory search unavailable"


class DoctorMethods(ConfigReader):
    """doctor.memory.status over the configured agents (``agents.list``)."""

    def __init__(self, config: Callable[[], Mapping[str, Any]]) -> None:
        self._config = config  # read per call: a hot reload is in force at once

    @rpc("doctor.memory.status", MEMORY_STATUS)
    def memory_status(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        requested = params.get("agentId")
        agent_id = normalize_agent_id(requested)
        if requested is not None and agent_id not in {
                normalize_agent_id(a["id"]) for a in configured_agents(self._raw)}:
            raise invalid_request(f'unknown agent id "{agent_id}"')
        return {"agentId": agent_id, "searchRuntimeRegistered": False,
                "embedding": {"ok": False, "error": NO_MEMORY_SEARCH}}
