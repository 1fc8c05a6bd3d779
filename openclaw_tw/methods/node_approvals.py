"""``exec.approvals.node.get``/``.set``: a node's own exec approvals policy, relayed.

The policy that governs ``system.run`` on a node is the node host's own exec approvals file.
As the real gateway, these methods relay to the connected node as the node commands
``system.execApprovals.get`` / ``system.execApprovals.set`` and answer with what the node
answers (the same shape as ``exec.approvals.get``); a node that is not connected is
``UNAVAILABLE`` "NOT_CONNECTED: node not connected" with ``nodeCommandDispatched: false``.
Our node host (``client/nodehost.py``) keeps that file and honours ``security: "deny"``.
"""

from __future__ import annotations

from typing import Any

import attrs

from openclaw_tw.nodes.registry import NodeRegistry
from openclaw_tw.protocol.dispatch import CallContext, rpc
from openclaw_tw.protocol.schema import AnyValue, Str, closed

_NODE = Str(min_len=1, max_len=512)
GET = closed({"nodeId": _NODE})
SET = closed({"nodeId": _NODE, "file": AnyValue()}, {"baseHash": Str(min_len=1, max_len=256)})


@attrs.define
class NodeApprovalsMethods:
    _registry: NodeRegistry

    @rpc("exec.approvals.node.get", GET)
    def get(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        return self._registry.invoker.relay(params["nodeId"], "system.execApprovals.get", {})

    @rpc("exec.approvals.node.set", SET)
    def set_(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        body = {"file": params["file"]}
        if "baseHash" in params:
            body["baseHash"] = params["baseHash"]
        return self._registry.invoker.relay(params["nodeId"], "system.execApprovals.set", body)
