"""The node registry: connected nodes, node pairing requests and the approved surfaces.

A service in the tree.  It follows sockets through the hub's ``on_connect``/``on_disconnect``
hooks; a node's declared ``commands``/``caps`` are claims until ``node.pair.approve``.  Invokes
are tracked by ``nodes.invoke.Invoker``.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import attrs
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from openclaw_tw.errors import clip, invalid_request
from openclaw_tw.nodes.policy import CommandPolicy, required_approve_scopes
from openclaw_tw.nodes.store import ApprovedNode, NodeStore
from openclaw_tw.protocol import scopes as S

_log = Logger(namespace="nodes")

if TYPE_CHECKING:
    from openclaw_tw.devices.store import DeviceStore
    from openclaw_tw.hub.gateway import Gateway
    from openclaw_tw.interfaces import IConnection



@attrs.define
class LiveNode:
    node_id: str
    conn: Any
    client_id: str | None
    client_mode: str | None
    platform: str | None
    version: str | None
    device_family: str | None
    display_name: str | None
    caps: list[str]
    declared: list[str]
    permissions: dict[str, Any]
    connected_at: int
    last_seen_at: int
    last_seen_reason: str = "connect"
    host_stats: Any = None


@attrs.define
class PairRequest:
    request_id: str
    node_id: str
    client_id: str | None
    client_mode: str | None
    platform: str | None
    version: str | None
    device_family: str | None
    display_name: str | None
    caps: list[str]
    commands: list[str]
    ts: int
    remote_ip: str | None = None

    def public(self) -> dict[str, Any]:
        out = {"requestId": self.request_id, "nodeId": self.node_id,
               "clientId": self.client_id, "clientMode": self.client_mode,
               "platform": self.platform, "version": self.version,
               "deviceFamily": self.device_family, "caps": list(self.caps),
               "commands": list(self.commands),
               "requiredApproveScopes": required_approve_scopes(self.commands),
               "silent": True, "ts": self.ts}
        if self.display_name:
            out["displayName"] = self.display_name
        if self.remote_ip:
            out["remoteIp"] = self.remote_ip
        return out


def _strs(value: Any) -> list[str]:
    return [x for x in value if isinstance(x, str)] if isinstance(value, list) else []


class NodeRegistry(Service):
    name = "nodes"

    def __init__(self, gw: Gateway, store: NodeStore, devices: DeviceStore | None = None) -> None:
        self.gw = gw
        self.store = store
        self.devices = devices  # a removed node's device loses its node token
        self.policy = CommandPolicy(gw.settings.raw)
        self.live: dict[str, LiveNode] = {}
        self.pending: dict[str, PairRequest] = {}  # by request id, persisted (store)
        for record in store.pair_requests:
            try:
                req = PairRequest(**record)
            except TypeError:  # a record this version cannot read: dropped, not fatal
                continue
            self.pending[req.request_id] = req
        self.invoker: Any = None  # set by nodes.invoke.Invoker
        gw.on_connect.append(self._connected)
        gw.on_disconnect.append(self._disconnected)

    # -- connect params ------------------------------------------------------------------------

    @staticmethod
    def _params_of(conn: IConnection) -> dict[str, Any]:
        """The node's claims (caps, commands, permissions) from its connect request."""
        return conn.connect_params

    # -- socket hooks --------------------------------------------------------------------------

    def _connected(self, conn: IConnection) -> None:
        params = self._params_of(conn)
        if conn.role != S.ROLE_NODE:
            return
        client = conn.client or {}
        node_id = conn.device_id or str(client.get("instanceId") or conn.conn_id)
        now = self.gw.now_ms()
        approved = self.store.nodes.get(node_id)
        node = LiveNode(
            node_id, conn, client.get("id"), client.get("mode"), client.get("platform"),
            client.get("version"), client.get("deviceFamily") or _family(client),
            client.get("displayName") or (approved.display_name if approved else None),
            _strs(params.get("caps")) or sorted(conn.caps), _strs(params.get("commands")),
            params.get("permissions") if isinstance(params.get("permissions"), dict) else {},
            now, now)
        old = self.live.get(node_id)
        self.live[node_id] = node
        if old is not None and old.conn is not conn and self.invoker is not None:
            self.invoker.node_gone(old.conn)
        if approved is not None:
            approved.last_seen_at, approved.last_seen_reason = now, "connect"
        self._maybe_request_pairing(node, approved)
        self._presence(node, "connect")

    def _disconnected(self, conn: IConnection) -> None:
        if self.invoker is not None:
            self.invoker.conn_gone(conn)
        if conn.role != S.ROLE_NODE:
            return
        for node in list(self.live.values()):
            if node.conn is conn:
                del self.live[node.node_id]
                approved = self.store.nodes.get(node.node_id)
                if approved is not None:
                    approved.last_seen_at = self.gw.now_ms()
                    approved.last_seen_reason = "disconnect"
                self._presence(node, "disconnect")

    def _presence(self, node: LiveNode, reason: str) -> None:
        self.gw.broadcast("node.presence", {
            "nodeId": node.node_id, "connected": node.node_id in self.live,
            "reason": reason, "ts": self.gw.now_ms()}, scope=S.READ, drop_if_slow=True)

    # -- pairing -------------------------------------------------------------------------------

    def _maybe_request_pairing(self, node: LiveNode, approved: ApprovedNode | None) -> None:
        if approved is not None and set(node.declared) <= set(approved.commands) \
                and set(node.caps) <= set(approved.caps):
            return
        for req in list(self.pending.values()):
            if req.node_id == node.node_id:
                if req.commands == node.declared and req.caps == node.caps:
                    return  # the same surface is already waiting (also across restarts)
                self._drop_pending(req.request_id)
        req = PairRequest(str(uuid.uuid4()), node.node_id, node.client_id, node.client_mode,
                          node.platform, node.version, node.device_family, node.display_name,
                          list(node.caps), list(node.declared), self.gw.now_ms(),
                          node.conn.peer_ip)
        self._add_pending(req)
        self.gw.broadcast("node.pair.requested", req.public(), scope=S.PAIRING)

    def pending_for(self, node_id: str) -> PairRequest | None:
        for req in self.pending.values():
            if req.node_id == node_id:
                return req
        return None

    def _add_pending(self, req: PairRequest) -> None:
        self.pending[req.request_id] = req
        self.store.save_pair_request(req.request_id, attrs.asdict(req)).addErrback(
            lambda f: _log.failure("saving node pairing request failed", f))

    def _drop_pending(self, request_id: str) -> PairRequest | None:
        req = self.pending.pop(request_id, None)
        if req is not None:
            self.store.remove_pair_request(request_id).addErrback(
                lambda f: _log.failure("removing node pairing request failed", f))
        return req

    def approve(self, request_id: str) -> Deferred[dict[str, Any]]:
        req = self._drop_pending(request_id)
        if req is None:
            raise invalid_request("unknown requestId")
        now = self.gw.now_ms()
        old = self.store.nodes.get(req.node_id)
        live = self.live.get(req.node_id)
        node = ApprovedNode(
            req.node_id, req.client_id, req.client_mode, req.platform, req.version,
            req.device_family, old.display_name if old else req.display_name,
            list(req.caps), list(req.commands), old.created_at if old else now, now,
            live.last_seen_at if live else (old.last_seen_at if old else None),
            live.last_seen_reason if live else (old.last_seen_reason if old else None))
        d = self.store.save_node(node)

        def done(_: Any) -> dict[str, Any]:
            self._resolved(req, "approved", now)
            named = {"displayName": node.display_name} if node.display_name else {}
            return {"requestId": req.request_id, "node": {
                "nodeId": node.node_id, "clientId": node.client_id,
                "clientMode": node.client_mode, **named, "platform": node.platform,
                "version": node.version, "deviceFamily": node.device_family,
                "caps": node.caps, "commands": node.commands, "createdAtMs": node.created_at,
                "approvedAtMs": node.approved_at, "lastSeenAtMs": node.last_seen_at,
                "lastSeenReason": node.last_seen_reason}}

        return d.addCallback(done)

    def reject(self, request_id: str) -> dict[str, Any]:
        req = self._drop_pending(request_id)
        if req is None:
            raise invalid_request("unknown requestId")
        now = self.gw.now_ms()
        self._resolved(req, "rejected", now)
        return {"requestId": req.request_id, "nodeId": req.node_id, "decision": "rejected",
                "ts": now}

    def _resolved(self, req: PairRequest, decision: str, now: int) -> None:
        payload = {"requestId": req.request_id, "nodeId": req.node_id, "decision": decision,
                   "ts": now}
        live = self.live.get(req.node_id)
        if live is not None:
            live.conn.send_event("node.pair.resolved", payload)
        self.gw.broadcast("node.pair.resolved", payload, scope=S.PAIRING)

    def remove(self, node_id: str) -> Deferred[dict[str, Any]]:
        if node_id not in self.store.nodes and node_id not in self.live:
            raise invalid_request(f"unknown nodeId: {clip(node_id)}")
        for req in [r for r in self.pending.values() if r.node_id == node_id]:
            self._drop_pending(req.request_id)
        d = self.store.remove_node(node_id)

        def done(_: Any) -> dict[str, Any]:
            devices = self.devices
            dev = devices.devices.get(node_id) if devices is not None else None
            if dev is not None and S.ROLE_NODE in getattr(dev, "tokens", {}):
                devices.drop_token(dev, S.ROLE_NODE)
            self.gw.disconnect_device(node_id, S.ROLE_NODE, 4001,
                                      "client invalidated: node removed")
            return {"nodeId": node_id, "removedAtMs": self.gw.now_ms()}

        return d.addCallback(done)

    def rename(self, node_id: str, name: str) -> Deferred[dict[str, Any]]:
        node = self.store.nodes.get(node_id)
        if node is None:
            raise invalid_request(f"unknown nodeId: {clip(node_id)}")
        node.display_name = name
        live = self.live.get(node_id)
        if live is not None:
            live.display_name = name
        return self.store.save_node(node).addCallback(
            lambda _: {"nodeId": node_id, "displayName": name})

    # -- views ---------------------------------------------------------------------------------

    def effective(self, node_id: str) -> list[str]:
        live, approved = self.live.get(node_id), self.store.nodes.get(node_id)
        if approved is None:
            return []
        if live is None:
            return self.policy.effective(approved.platform, approved.commands, approved.commands)
        return self.policy.effective(live.platform, live.declared, approved.commands)

    def node_ids(self) -> list[str]:
        return sorted(set(self.store.nodes) | set(self.live))

    def describe(self, node_id: str) -> dict[str, Any] | None:
        live, approved = self.live.get(node_id), self.store.nodes.get(node_id)
        if live is None and approved is None:
            return None
        src: Any = live if live is not None else approved
        out: dict[str, Any] = {
            "nodeId": node_id, "platform": src.platform, "version": src.version,
            "clientId": src.client_id, "clientMode": src.client_mode,
            "deviceFamily": src.device_family,
            "caps": list(live.caps if live else approved.caps),  # type: ignore[union-attr]
            "commands": self.effective(node_id), "sessionHost": False,
            "nodePluginTools": [],
        }
        name = (approved.display_name if approved else None) or \
            (live.display_name if live else None)
        if name:
            out["displayName"] = name
        req = self.pending_for(node_id)
        out["approvalState"] = "pending-approval" if req is not None or approved is None \
            else "approved"
        if req is not None:
            out["pendingRequestId"] = req.request_id
            out["pendingDeclaredCaps"] = list(req.caps)
            out["pendingDeclaredCommands"] = list(req.commands)
        if live is not None:
            out["connectedAtMs"] = live.connected_at
            out["lastConnectedAtMs"] = live.connected_at
            out["lastSeenAtMs"] = live.last_seen_at
            out["lastSeenReason"] = live.last_seen_reason
            if live.conn.peer_ip:
                out["remoteIp"] = live.conn.peer_ip
        elif approved is not None:
            out["lastSeenAtMs"] = approved.last_seen_at
            out["lastSeenReason"] = approved.last_seen_reason
        if approved is not None:
            out["approvedAtMs"] = approved.approved_at
        out["paired"] = approved is not None
        out["connected"] = live is not None
        if live is not None and live.host_stats is not None:
            out["hostStats"] = live.host_stats
        return out

    def seen(self, node_id: str, reason: str) -> None:
        live = self.live.get(node_id)
        if live is not None:
            live.last_seen_at, live.last_seen_reason = self.gw.now_ms(), reason

    def node_of(self, conn: IConnection) -> LiveNode:
        for node in self.live.values():
            if node.conn is conn:
                return node
        raise invalid_request("node not registered")


def _family(client: dict[str, Any]) -> str | None:
    platform = str(client.get("platform") or "").lower()
    return {"linux": "Linux", "darwin": "Mac", "macos": "Mac", "win32": "Windows",
            "ios": "iPhone", "android": "Android"}.get(platform)
