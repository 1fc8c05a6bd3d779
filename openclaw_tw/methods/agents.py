"""agents.list, agent.identity.get, models.list."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openclaw_tw.agent.models import ModelRegistry
from openclaw_tw.protocol.dispatch import CallContext, MethodTable
from openclaw_tw.protocol.schema import Obj, Str, closed
from openclaw_tw.sessions.keys import agent_of, normalize_agent_id

if TYPE_CHECKING:
    from openclaw_tw.hub.gateway import Gateway

AGENT_IDENTITY = Obj(optional={"agentId": Str(min_len=1), "sessionKey": Str()})
MODELS_LIST = closed(accepted="view refresh preparedOnly provider includeDetails sessionKey "
                              "agentId")
THINKING = {"thinkingLevels": [{"id": "off", "label": "off"}], "thinkingOptions": ["off"],
            "thinkingDefault": "off"}


def configured_agents(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """``agents.list[]`` from the config (id, name, model); ``main`` always exists."""
    agents = raw.get("agents") or {}
    entries = agents.get("list") if isinstance(agents, dict) else None
    out = [a for a in (entries or []) if isinstance(a, dict) and a.get("id")]
    if not any(normalize_agent_id(a["id"]) == "main" for a in out):
        out.insert(0, {"id": "main"})
    return out


def register(table: MethodTable, gw: Gateway, registry: ModelRegistry) -> None:
    raw = dict(gw.settings.raw)
    workspace = gw.display_path(gw.settings.state_dir / "workspace")

    def agents_list(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        rows = []
        for a in configured_agents(raw):
            model = a.get("model")
            primary = model.get("primary") if isinstance(model, dict) else model
            rows.append({
                "id": normalize_agent_id(a["id"]), "name": a.get("name"),
                "workspace": a.get("workspace") or workspace, "workspaceGit": False,
                "agentRuntime": {"id": "auto", "cloudPlacementSupported": False,
                                 "devicePlacementSupported": False, "source": "implicit"},
                **THINKING, "model": {"primary": primary or registry.primary},
                "defaultPermissionMode": "full"})
        return {"defaultId": "main", "ownership": "sole", "selectionRequired": False,
                "mainKey": "main", "scope": "per-sender",
                "agents": [{k: v for k, v in r.items() if v is not None} for r in rows]}

    def identity(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        agent_id = normalize_agent_id(params.get("agentId") or
                                      (agent_of(params["sessionKey"])
                                       if params.get("sessionKey") else None))
        spec = next((a for a in configured_agents(raw)
                     if normalize_agent_id(a["id"]) == agent_id), {})
        name = spec.get("name") or ("Assistant" if agent_id == "main" else agent_id)
        return {"agentId": agent_id, "name": name,
                "nameSource": "config" if spec.get("name") else "default",
                "avatar": spec.get("avatar") or name[:1].upper()}

    def models_list(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        provider = params.get("provider")
        return {"models": [m.public() for m in registry.models
                           if provider is None or m.provider == provider],
                "primary": registry.primary}

    table.add("agents.list", agents_list)
    table.add("agent.identity.get", identity, AGENT_IDENTITY)
    table.add("models.list", models_list, MODELS_LIST)
