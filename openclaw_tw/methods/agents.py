"""agents.list, agent.identity.get, and the agents and config facts ``status`` projects for
the CLI (``cli_projection``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from openclaw_tw.agent.models import ModelRegistry
from openclaw_tw.protocol.dispatch import CallContext, rpc
from openclaw_tw.protocol.schema import Obj, Str
from openclaw_tw.sessions.keys import agent_of, normalize_agent_id

AGENT_IDENTITY = Obj(optional={"agentId": Str(min_len=1), "sessionKey": Str()})
THINKING = {"thinkingLevels": [{"id": "off", "label": "off"}], "thinkingOptions": ["off"],
            "thinkingDefault": "off"}


# The memory plugin the CLI's `status` reports: this gateway has none (no memory search).
NO_MEMORY_PLUGIN = {"enabled": False, "slot": None, "reason": "no memory plugin"}


def cli_projection(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``status``'s ``cliProjection`` (asked for by the CLI's ``status`` with
    ``includeCliProjection``): the agents as ``agents.list`` has them (the default first, the
    others by id; a configured name shown), the config's update channel, the memory plugin."""
    named = {normalize_agent_id(a["id"]): a.get("name") for a in configured_agents(dict(raw))}
    order = ["main", *sorted(i for i in named if i != "main")]
    rows = [{"id": i, **({"name": named[i]} if isinstance(named[i], str) and named[i] else {})}
            for i in order]
    update = raw.get("update")
    channel = update.get("channel") if isinstance(update, dict) else None
    return {"agents": {"defaultId": "main", "ownership": "sole", "selectionRequired": False,
                       "rows": rows},
            "updateChannel": channel if isinstance(channel, str) else None,
            "memoryPlugin": dict(NO_MEMORY_PLUGIN)}


class ConfigReader:
    """A method family that reads the config in force per call (``self._config()``), so a
    hot reload is seen at once; ``_raw`` is a copy of it."""

    _config: Callable[[], Mapping[str, Any]]

    @property
    def _raw(self) -> dict[str, Any]:
        return dict(self._config())


def configured_agents(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """``agents.list[]`` from the config (id, name, model); ``main`` always exists."""
    agents = raw.get("agents") or {}
    entries = agents.get("list") if isinstance(agents, dict) else None
    out = [a for a in (entries or []) if isinstance(a, dict) and a.get("id")]
    if not any(normalize_agent_id(a["id"]) == "main" for a in out):
        out.insert(0, {"id": "main"})
    return out


class AgentsMethods(ConfigReader):
    """agents.list and agent.identity.get (models.list: ``methods/models.py``).

    ``config`` gives the config in force (read per call: a hot reload of ``agents`` is seen
    at once) and ``workspace`` is the default workspace's display path.
    """

    def __init__(self, config: Callable[[], Mapping[str, Any]], workspace: str,
                 models: ModelRegistry) -> None:
        self._config = config  # read per call: a hot reload is in force at once
        self._workspace = workspace
        self._models = models

    @rpc("agents.list")
    def agents_list(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        rows = []
        for a in configured_agents(self._raw):
            model = a.get("model")
            primary = model.get("primary") if isinstance(model, dict) else model
            rows.append({
                "id": normalize_agent_id(a["id"]), "name": a.get("name"),
                "workspace": a.get("workspace") or self._workspace, "workspaceGit": False,
                "agentRuntime": {"id": "auto", "cloudPlacementSupported": False,
                                 "devicePlacementSupported": False, "source": "implicit"},
                **THINKING, "model": {"primary": primary or self._models.primary},
                "defaultPermissionMode": "full"})
        return {"defaultId": "main", "ownership": "sole", "selectionRequired": False,
                "mainKey": "main", "scope": "per-sender",
                "agents": [{k: v for k, v in r.items() if v is not None} for r in rows]}

    @rpc("agent.identity.get", AGENT_IDENTITY)
    def identity(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        agent_id = normalize_agent_id(params.get("agentId") or
                                      (agent_of(params["sessionKey"])
                                       if params.get("sessionKey") else None))
        spec = next((a for a in configured_agents(self._raw)
                     if normalize_agent_id(a["id"]) == agent_id), {})
        name = spec.get("name") or ("Assistant" if agent_id == "main" else agent_id)
        return {"agentId": agent_id, "name": name,
                "nameSource": "config" if spec.get("name") else "default",
                "avatar": spec.get("avatar") or name[:1].upper()}
