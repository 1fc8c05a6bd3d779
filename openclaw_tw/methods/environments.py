"""environments.list: where sessions can run -- this gateway, and the nodes we know.

The real gateway lists itself (``GATEWAY_ENVIRONMENT``: local, available, a session host) and
every known node (``summarizeNodeEnvironment``), then its cloud workers.  We have the first two:
agent turns run here, and nodes pair with us (``nodes/registry.py``).  We have no cloud workers
and no worker profiles, so ``projection: "profiles"`` lists nothing and no ``profiles`` key is
sent (the real one omits it when empty).  ``runtimeId`` needs write (the dynamic scope of
``protocol/scopes.py``); we have no placement runtimes, so it changes nothing else.

The gateway's capabilities say what it does here: it runs agents and sessions; ``tools`` only
when the ``exec`` tool is on (``tools.exec.enabled``), ``workspace`` never (we serve no
workspace file methods).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

from openclaw_tw.agent.exec_tool import exec_enabled
from openclaw_tw.nodes.registry import NodeRegistry
from openclaw_tw.protocol.dispatch import CallContext, rpc
from openclaw_tw.protocol.schema import Bool, Obj, Str

# EnvironmentsListParamsSchema (protocol-schema-signatures.txt).
LIST = Obj(optional={"runtimeId": Str(min_len=1, max_len=128),
                     "projection": Str(enum=("profiles",)), "includeDesktopSetup": Bool()})
MAX_COMMANDS = 128


def gateway_environment(raw: Mapping[str, Any]) -> dict[str, Any]:
    caps = ["agent.run", "sessions"] + (["tools"] if exec_enabled(dict(raw)) else [])
    return {"id": "gateway", "type": "local", "label": "Gateway local", "status": "available",
            "platform": sys.platform, "sessionHost": True, "trust": "persistent",
            "capabilities": caps}


def node_environment(node: dict[str, Any]) -> dict[str, Any]:
    """One ``node.list`` row as the real ``summarizeNodeEnvironment`` presents it."""
    out: dict[str, Any] = {"id": f"node:{node['nodeId']}", "type": "node",
                           "label": node.get("displayName") or node["nodeId"],
                           "status": "available" if node.get("connected") else "unavailable"}
    if node.get("platform"):
        out["platform"] = node["platform"]
    out["sessionHost"] = node.get("sessionHost") is True
    for key in ("lastConnectedAtMs", "lastSeenAtMs", "lastSeenReason"):
        if node.get(key) is not None:
            out[key] = node[key]
    out["trust"] = "persistent"
    commands = sorted({c.strip() for c in node.get("commands") or [] if c and c.strip()})
    caps = sorted({c.strip() for c in (node.get("caps") or []) + commands if c and c.strip()})
    if caps:
        out["capabilities"] = caps
    invocable = [c for c in commands if len(c) <= MAX_COMMANDS][:MAX_COMMANDS] \
        if node.get("connected") else []
    if invocable:
        out["invocableCommands"] = invocable
    return out


class EnvironmentsMethods:
    def __init__(self, settings: Callable[[], Any], nodes: NodeRegistry) -> None:
        self._settings = settings
        self._nodes = nodes

    @rpc("environments.list", LIST)
    def environments_list(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("projection") == "profiles":
            return {"environments": []}
        envs = [gateway_environment(self._settings().raw)]
        for node_id in self._nodes.node_ids():
            node = self._nodes.describe(node_id)
            if node is not None and node.get("paired"):
                envs.append(node_environment(node))
        return {"environments": envs}
