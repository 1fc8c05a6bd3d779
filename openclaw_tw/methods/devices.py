"""device.pair.* and device.token.*: list, approve, reject, remove, rename, rotate, revoke."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, succeed

from openclaw_tw.devices.authority import DeviceAuthority
from openclaw_tw.devices.store import PairedDevice
from openclaw_tw.errors import invalid_request, missing_scope
from openclaw_tw.protocol import scopes as S
from openclaw_tw.protocol.dispatch import CallContext, MethodTable
from openclaw_tw.protocol.schema import Arr, Obj, Str

if TYPE_CHECKING:
    from openclaw_tw.hub.gateway import Gateway

_S1 = Str(min_len=1)
REQUEST_ID = Obj(required={"requestId": _S1})
DEVICE_ID = Obj(required={"deviceId": _S1})
RENAME = Obj(required={"deviceId": _S1, "label": Str(min_len=1, max_len=64)})
ROTATE = Obj(required={"deviceId": _S1, "role": _S1}, optional={"scopes": Arr(_S1)})
REVOKE = Obj(required={"deviceId": _S1, "role": _S1})


def register(table: MethodTable, gw: Gateway, authority: DeviceAuthority) -> None:
    store = authority.store

    def connected(device_id: str) -> bool:
        return any(c.device_id == device_id for c in gw.conns.values())

    def device_or_fail(device_id: str) -> PairedDevice:
        dev = store.devices.get(device_id)
        if dev is None:
            raise invalid_request(f"unknown deviceId: {device_id}")
        return dev

    def changed(_: Any = None) -> None:
        gw.broadcast("device.pair.changed", {}, scope=S.PAIRING, drop_if_slow=True)

    def pair_list(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        store.expire_pending(gw.now_ms())
        return {
            "pending": [p.public() for p in store.pending.values()],
            "paired": [d.public(connected(d.device_id)) for d in store.devices.values()],
        }

    def approve(ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        req = store.pending.get(params["requestId"])
        if req is None or req.expires_at <= gw.now_ms():
            raise invalid_request("unknown requestId")
        needs_admin = req.role != S.ROLE_OPERATOR or S.ADMIN in req.scopes
        if needs_admin and not ctx.is_admin:
            raise missing_scope(S.ADMIN)
        now = gw.now_ms()
        dev = store.devices.get(req.device_id) or PairedDevice(
            req.device_id, req.public_key, req.platform, req.device_family, req.client_id,
            req.client_mode, [], [], "owner", now, now, remote_ip=req.remote_ip)
        client = {"platform": req.platform, "deviceFamily": req.device_family,
                  "id": req.client_id, "mode": req.client_mode}
        DeviceAuthority._grant(dev, req.role, req.scopes, client, now)
        dev.approved_via = "owner"
        # The role's token is issued at approval (as the reference does) and delivered in
        # hello-ok on the device's next connect; its scopes follow the approval.
        token = dev.tokens.get(req.role)
        scopes = list(dev.scopes) if req.role == S.ROLE_OPERATOR else []
        if token is None:
            token, _ = store.key.issue(dev.device_id, req.role, scopes, now)
        else:
            token.scopes = scopes
        d = store.save_device(dev, token, drop_pending_for=dev.device_id)

        def done(_: Any) -> dict[str, Any]:
            gw.broadcast("device.pair.resolved", {"requestId": req.request_id,
                         "deviceId": dev.device_id, "decision": "approved", "ts": now},
                         scope=S.PAIRING)
            changed()
            return {"requestId": req.request_id, "device": dev.public(connected(dev.device_id))}

        return d.addCallback(done)

    def reject(ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        req = store.pending.get(params["requestId"])
        if req is None:
            raise invalid_request("unknown requestId")
        now = gw.now_ms()

        def done(_: Any) -> dict[str, Any]:
            gw.broadcast("device.pair.resolved", {"requestId": req.request_id,
                         "deviceId": req.device_id, "decision": "rejected", "ts": now},
                         scope=S.PAIRING)
            changed()
            return {"requestId": req.request_id, "deviceId": req.device_id,
                    "decision": "rejected", "ts": now}

        return store.remove_pending(req.request_id).addCallback(done)

    def remove(ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        device_id = params["deviceId"]
        device_or_fail(device_id)

        def done(_: Any) -> dict[str, Any]:
            gw.disconnect_device(device_id, None, 4001, "client invalidated: device removed")
            changed()
            return {"deviceId": device_id, "removedAtMs": gw.now_ms()}

        return store.remove_device(device_id).addCallback(done)

    def rename(ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        dev = device_or_fail(params["deviceId"])
        dev.label = params["label"]
        d = store.save_device(dev)
        d.addCallback(lambda _: (changed(), {"deviceId": dev.device_id, "label": dev.label})[1])
        return d

    def rotate(ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        dev = device_or_fail(params["deviceId"])
        role = params["role"]
        if role not in dev.roles:
            raise invalid_request(f"device is not approved for role {role}")
        scopes = params.get("scopes")
        if scopes is None:
            scopes = list(dev.scopes) if role == S.ROLE_OPERATOR else []
        elif role == S.ROLE_OPERATOR and not all(s in dev.scopes for s in scopes):
            raise invalid_request("scopes must be within the device's approved scopes")
        now = gw.now_ms()
        record, value = store.key.issue(dev.device_id, role, list(scopes), now)
        same_device = ctx.conn.device_id == dev.device_id

        def done(_: Any) -> dict[str, Any]:
            gw.disconnect_device(dev.device_id, role, 4001, "client invalidated: token rotated",
                                 keep=ctx.conn if same_device else None)
            out: dict[str, Any] = {"deviceId": dev.device_id, "role": role,
                                   "scopes": list(scopes), "rotatedAtMs": now,
                                   "tokenDelivery": "in-band" if same_device
                                   else "withheld-cross-device"}
            if same_device:
                out["token"] = value
            return out

        return store.put_token(dev, record).addCallback(done)

    def revoke(ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        dev = device_or_fail(params["deviceId"])
        role = params["role"]
        if role not in dev.tokens:
            return succeed({"deviceId": dev.device_id, "role": role, "revokedAtMs": None})
        now = gw.now_ms()

        def done(_: Any) -> dict[str, Any]:
            gw.disconnect_device(dev.device_id, role, 4001, "client invalidated: token revoked")
            return {"deviceId": dev.device_id, "role": role, "revokedAtMs": now}

        return store.revoke_token(dev, role).addCallback(done)

    table.add("device.pair.list", pair_list)
    table.add("device.pair.approve", approve, REQUEST_ID)
    table.add("device.pair.reject", reject, REQUEST_ID)
    table.add("device.pair.remove", remove, DEVICE_ID)
    table.add("device.pair.rename", rename, RENAME)
    table.add("device.token.rotate", rotate, ROTATE)
    table.add("device.token.revoke", revoke, REVOKE)
