"""projects.list: the projects sessions can work in.

The real gateway lists each agent's workspace as a project (``workspace:<agentId>``, source
``workspace``, named after the folder; ``project-registry.ts``), then the repositories an
operator registered or cloned, and recently used folders.  Here the workspaces are all there
is: no project can be registered (``projects.add``/``register`` are not methods here) and no
recents are kept.  ``includeObserved`` adds the checkouts seen on runner hosts: none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from openclaw_tw.methods.agents import ConfigReader, configured_agents
from openclaw_tw.protocol.dispatch import CallContext, rpc
from openclaw_tw.protocol.schema import Bool, Obj
from openclaw_tw.sessions.keys import normalize_agent_id

PROJECTS_LIST = Obj(optional={"includeObserved": Bool()})


class ProjectsMethods(ConfigReader):
    """``config`` gives the config in force (read per call) and
    ``default_workspace`` the workspace of an agent that names none."""

    def __init__(self, config: Callable[[], Mapping[str, Any]], default_workspace: Path) -> None:
        self._config = config  # read per call: a hot reload is in force at once
        self._default = default_workspace

    def workspaces(self) -> list[dict[str, Any]]:
        out = []
        for spec in configured_agents(self._raw):
            agent = normalize_agent_id(spec["id"])
            raw = spec.get("workspace")
            path = Path(raw).expanduser() if isinstance(raw, str) and raw else self._default
            out.append({"id": f"workspace:{agent}", "displayName": path.name or agent,
                        "repoRoot": str(path), "source": "workspace", "agentId": agent})
        return sorted(out, key=lambda p: (p["displayName"].lower(), p["id"]))

    @rpc("projects.list", PROJECTS_LIST)
    def projects_list(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"projects": self.workspaces(), "recents": []}
        if params.get("includeObserved"):
            out["observedProjects"] = []
        return out
