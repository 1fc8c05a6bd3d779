"""skills.status and skills.library.list (the Control UI's Skills page and palette) and
hooks.status (`openclaw hooks list|check|info`).

We load no skills (no bundled, managed or workspace SKILL.md files reach the model) and keep no
skill library, so both are the real gateway's empty shapes: ``skills.status`` reports the
agent's workspace and where managed skills would live, with no skills; ``skills.library.list``
has no entries, no profile and ``defaultTarget: "unavailable"`` with ``canManageWorkspace:
false`` (the real values for a caller that may not write the library), so the UI offers no
"create skill".  A ``sessionKey`` adds the session's (empty) selection, as the real one does.

Nor do we load hooks (no bundled, plugin, managed or workspace HOOK.md handlers run here;
``BOOT.md`` is run by the gateway itself, see ``automation/boot.py``), so ``hooks.status`` is
the real report with no hooks: the agent's workspace and where managed hooks would live.  The
CLI asks the gateway first and reads its own package only when the method is unknown, so
answering keeps ``openclaw hooks list`` about this gateway rather than about the CLI.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from openclaw_tw.errors import invalid_request
from openclaw_tw.methods.agents import ConfigReader, configured_agents
from openclaw_tw.protocol.dispatch import CallContext, rpc
from openclaw_tw.protocol.schema import Obj, Str
from openclaw_tw.sessions.keys import agent_of, normalize_agent_id, resolve_key

_S1 = Str(min_len=1)
# SkillsStatusParamsSchema, SkillsLibraryListParamsSchema (protocol-schema-signatures.txt).
STATUS = Obj(optional={"agentId": _S1, "sessionKey": _S1})
LIBRARY_LIST = Obj(optional={"sessionKey": Str(min_len=1, max_len=512),
                             "scope": Str(enum=("mine", "team", "all"))})
HOOKS_STATUS = Obj(optional={"agentId": _S1})  # HooksStatusParamsSchema
DEFAULT_SELECTION_LIMIT = 64


class SkillsMethods(ConfigReader):
    """``config`` gives the config in force (read per call, so a hot reload of ``agents`` is
    seen at once); ``workspace`` the default workspace's, ``managed`` the managed-skills and
    ``managed_hooks`` the managed-hooks directory's display paths."""

    def __init__(self, config: Callable[[], Mapping[str, Any]], workspace: str, managed: str,
                 managed_hooks: str) -> None:
        self._config = config  # read per call: a hot reload is in force at once
        self._workspace = workspace
        self._managed = managed
        self._managed_hooks = managed_hooks

    def _agent(self, requested: str | None) -> tuple[str, str]:
        """``(agent id, workspace)`` of a configured agent (blank: the default), else the
        real refusal."""
        agent_id = normalize_agent_id(requested)
        spec = next((a for a in configured_agents(self._raw)
                     if normalize_agent_id(a["id"]) == agent_id), None)
        if spec is None:
            raise invalid_request(f'unknown agent id "{requested}"')
        return agent_id, spec.get("workspace") or self._workspace

    @rpc("skills.status", STATUS)
    def status(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        requested = params.get("agentId") or (agent_of(params["sessionKey"])
                                               if params.get("sessionKey") else None)
        agent_id, workspace = self._agent(requested)
        return {"workspaceDir": workspace, "managedSkillsDir": self._managed,
                "agentId": agent_id, "skills": []}

    @rpc("hooks.status", HOOKS_STATUS)
    def hooks_status(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        _, workspace = self._agent(params.get("agentId"))
        return {"workspaceDir": workspace, "managedHooksDir": self._managed_hooks, "hooks": []}

    @rpc("skills.library.list", LIBRARY_LIST)
    def library_list(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"entries": [], "profileId": None, "multipleProfiles": False,
                               "defaultTarget": "unavailable", "canManageWorkspace": False,
                               "defaultSelectionLimit": DEFAULT_SELECTION_LIMIT}
        if params.get("sessionKey"):
            out["session"] = {"sessionKey": resolve_key(params["sessionKey"]),
                              "selections": [], "attachable": []}
        return out
