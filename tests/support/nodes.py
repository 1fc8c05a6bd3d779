"""Shared helpers for the node and exec-approval tests (in-memory harness)."""

from __future__ import annotations

from typing import Any

from openclaw_tw.app import Components
from tests.support.devices import Device
from tests.support.helpers import WSClient, call, hello

ADMIN = ["operator.admin"]
NODE_COMMANDS = ["system.notify", "system.run", "system.run.prepare", "system.which"]


class Node:
    """A node-role client with its own device identity."""

    def __init__(self, gw: Any, commands: list[str] | None = None, platform: str = "linux",
                 ip: str = "127.0.0.1", display_name: str | None = None) -> None:
        self.device = Device()
        self.id = self.device.id
        self.ws = WSClient(gw, ip=ip)
        nonce = self.ws.challenge()["payload"]["nonce"]
        params = self.device.params(nonce, gw.now_ms(), role="node", scopes=[],
                                    client_id="node-host", mode="node", platform=platform)
        if display_name is not None:  # not part of the signed payload
            params["client"]["displayName"] = display_name
        params["caps"] = ["system"]
        params["commands"] = NODE_COMMANDS if commands is None else commands
        params["permissions"] = {}
        res = self.ws.response(self.ws.request("connect", params))
        assert res is not None and res["ok"], res
        self.ws.pop()

    def call(self, method: str, params: Any = None) -> dict[str, Any]:
        res = self.ws.response(self.ws.request(method, params))
        assert res is not None, f"no response to {method}"
        return res

    def invoke_requests(self) -> list[dict[str, Any]]:
        self.ws.flush()
        return [f["payload"] for f in self.ws.events("node.invoke.request")]


def operator(gw: Any, scopes: list[str] | None = None, **kw: Any) -> WSClient:
    return hello(gw, scopes=ADMIN if scopes is None else scopes, **kw)



def approve_node(app: Components, node: Node, op: WSClient | None = None) -> dict[str, Any]:
    op = op or operator(app.hub)
    req = app.nodes.pending_for(node.id)
    assert req is not None
    res = call(op, "node.pair.approve", {"requestId": req.request_id})
    assert res["ok"], res
    return res


def events(ws: WSClient, name: str) -> list[dict[str, Any]]:
    ws.flush()
    return ws.events(name)
