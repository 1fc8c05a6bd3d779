"""device.pair.* and device.token.*: list, approve, reject, remove, rename, rotate, revoke.

A token rotation or revocation that is not allowed is refused with the real gateway's one
message per action, ``device token rotation denied`` / ``device token revocation denied``
(INVALID_REQUEST), whatever the reason: the reason is logged, not told.  The reasons, in the
order the reference checks them: a role other than ``operator`` is managed by admins only
(``role-management-requires-admin``); an unknown device or a role it is not approved for, or
no token to revoke (``unknown-device-or-role``); a rotation to scopes outside the device's
approved ones (``scope-outside-approved-baseline``); and, for operator tokens, scopes the
caller's own connection lacks (``caller-missing-scope``: nobody hands out more than they hold,
a device rotating its own token included; an admin caller holds every operator scope).

"The device" is the caller only when its connection authenticated with that device's token
(``auth_method`` ``device-token``, the reference's ``isDeviceTokenAuth``); a caller on the
shared token or password manages devices as an operator, whatever identity it signed with.
Such a device caller that is not an admin may manage only itself (another device:
``device-ownership-mismatch``, denied in the action's words), sees only itself in
``device.pair.list``, and may not remove or rename a device holding a non-operator role; a
rotated token is delivered in-band only to it (``tokenDelivery``), else withheld.

A revoked token is kept, marked ``revokedAtMs`` (never accepted again), as the reference
keeps it: it is listed, and revoking it again succeeds.  A rotation (or a fresh token for a
revoked one) keeps the first token's ``createdAtMs`` and is dated ``rotatedAtMs``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import attrs
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from openclaw_tw.devices.authority import DeviceAuthority
from openclaw_tw.devices.store import DeviceStore, PairedDevice
from openclaw_tw.errors import GatewayError, clip, invalid_request, missing_scope
from openclaw_tw.protocol import scopes as S
from openclaw_tw.protocol.dispatch import CallContext, rpc
from openclaw_tw.protocol.schema import Arr, Obj, Str

if TYPE_CHECKING:
    from openclaw_tw.interfaces import IConnection

_S1 = Str(min_len=1)
REQUEST_ID = Obj(required={"requestId": _S1})
DEVICE_ID = Obj(required={"deviceId": _S1})
RENAME = Obj(required={"deviceId": _S1, "label": Str(min_len=1, max_len=64)})
ROTATE = Obj(required={"deviceId": _S1, "role": _S1}, optional={"scopes": Arr(_S1)})
REVOKE = Obj(required={"deviceId": _S1, "role": _S1})
ROTATION_DENIED = "device token rotation denied"
REVOCATION_DENIED = "device token revocation denied"
_log = Logger(namespace="devices")


def _denied(message: str, device_id: str, role: str, reason: str,
            scope: str | None = None) -> GatewayError:
    _log.warn("{message} device={device} role={role} reason={reason}{scope}", message=message,
              device=clip(device_id), role=clip(role), reason=reason,
              scope=f" scope={clip(scope)}" if scope else "")
    return invalid_request(message)


def _caller_device(ctx: CallContext) -> str | None:
    """The device the caller is: only a connection authenticated with a device token."""
    conn = ctx.conn
    if getattr(conn, "auth_method", None) != "device-token":
        return None
    return (conn.device_id or "").strip() or None


def _other_device(ctx: CallContext, device_id: str) -> bool:
    """A non-admin device caller managing a device other than itself."""
    caller = _caller_device(ctx)
    return caller is not None and caller != device_id.strip() and not ctx.is_admin


def _holds_non_operator_role(dev: PairedDevice | None) -> bool:
    if dev is None:
        return False
    roles = {r.strip() for r in dev.roles} | {t.role.strip() for t in dev.tokens.values()}
    return any(r and r != S.ROLE_OPERATOR for r in roles)


def _role_needs_admin(ctx: CallContext, role: str) -> bool:
    """Only an admin manages the tokens of a role other than ``operator``."""
    wanted = role.strip()
    return bool(wanted) and wanted != S.ROLE_OPERATOR and S.ADMIN not in ctx.conn.scopes


def _caller_lacks(ctx: CallContext, role: str, scopes: list[str]) -> str | None:
    """For an operator token: the first scope in ``scopes`` the caller's connection lacks."""
    if role.strip() != S.ROLE_OPERATOR:
        return None
    return S.first_missing_scope(role, scopes, ctx.conn.scopes)


@attrs.define
class DevicesMethods:
    """Pairing and token management over the device store.

    ``connections`` lists the open sockets (for ``connected`` flags); ``disconnect_device``
    closes a device's sockets when it is removed or its token rotated or revoked.
    """

    _store: DeviceStore
    _now_ms: Callable[[], int]
    _broadcast: Callable[..., Any]
    _connections: Callable[[], Iterable[IConnection]]
    _disconnect_device: Callable[..., int]

    def _connected(self, device_id: str) -> bool:
        return any(c.device_id == device_id for c in self._connections())

    def _device_or_fail(self, device_id: str) -> PairedDevice:
        dev = self._store.devices.get(device_id)
        if dev is None:
            raise invalid_request("unknown deviceId")
        return dev

    def _pair_denied(self, action: str, request_id: str) -> GatewayError:
        _log.warn("device pairing {action} denied request={request} "
                  "reason=device-ownership-mismatch", action=action, request=clip(request_id))
        return invalid_request(f"device pairing {action} denied")

    def _check_own(self, ctx: CallContext, device_id: str, action: str) -> None:
        """remove/rename: a non-admin device caller only for itself, and not for a device
        holding a non-operator role (the reference's words: "device pairing <action>
        denied")."""
        if _other_device(ctx, device_id):
            reason = "device-ownership-mismatch"
        elif _caller_device(ctx) is not None and not ctx.is_admin and \
                _holds_non_operator_role(self._store.devices.get(device_id.strip())):
            reason = "role-management-requires-admin"
        else:
            return
        _log.warn("device pairing {action} denied device={device} reason={reason}",
                  action=action, device=clip(device_id), reason=reason)
        raise invalid_request(f"device pairing {action} denied")

    def _changed(self, _: Any = None) -> None:
        self._broadcast("device.pair.changed", {}, scope=S.PAIRING, drop_if_slow=True)

    @rpc("device.pair.list")
    def pair_list(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        store = self._store
        store.expire_pending(self._now_ms())
        mine = _caller_device(ctx) if not ctx.is_admin else None
        pending = [p for p in store.pending.values() if mine is None or p.device_id == mine]
        paired = [d for d in store.devices.values() if mine is None or d.device_id == mine]
        return {"pending": [p.public() for p in pending],
                "paired": [d.public(self._connected(d.device_id)) for d in paired]}

    @rpc("device.pair.approve", REQUEST_ID)
    def approve(self, ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        store = self._store
        req = store.pending.get(params["requestId"])
        if req is None or req.expires_at <= self._now_ms():
            raise invalid_request("unknown requestId")
        if _other_device(ctx, req.device_id):
            raise self._pair_denied("approval", req.request_id)
        needs_admin = req.role != S.ROLE_OPERATOR or S.ADMIN in req.scopes
        if needs_admin and not ctx.is_admin:
            raise missing_scope(S.ADMIN)
        now = self._now_ms()
        dev = store.devices.get(req.device_id) or PairedDevice(
            req.device_id, req.public_key, req.platform, req.device_family, req.client_id,
            req.client_mode, [], [], "owner", now, now, remote_ip=req.remote_ip)
        client = {"platform": req.platform, "deviceFamily": req.device_family,
                  "id": req.client_id, "mode": req.client_mode}
        DeviceAuthority._grant(dev, req.role, req.scopes, client, now)
        dev.approved_via = "owner"
        # The role's token is issued at approval (as the reference does) and delivered in
        # hello-ok on the device's next connect; its scopes follow the approval.
        token = dev.active_token(req.role)
        scopes = list(dev.scopes) if req.role == S.ROLE_OPERATOR else []
        if token is None:
            token, _ = store.key.issue(dev.device_id, req.role, scopes, now,
                                       replacing=dev.tokens.get(req.role))
        else:
            token.scopes = scopes
        d = store.save_device(dev, token, drop_pending_for=dev.device_id)

        def done(_: Any) -> dict[str, Any]:
            self._broadcast("device.pair.resolved", {"requestId": req.request_id,
                            "deviceId": dev.device_id, "decision": "approved", "ts": now},
                            scope=S.PAIRING)
            self._changed()
            device = dev.public(False)
            del device["connected"]  # the real approval answer has no connected flag
            return {"requestId": req.request_id, "device": device}

        return d.addCallback(done)

    @rpc("device.pair.reject", REQUEST_ID)
    def reject(self, ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        req = self._store.pending.get(params["requestId"])
        if req is None:
            raise invalid_request("unknown requestId")
        if _other_device(ctx, req.device_id):
            raise self._pair_denied("rejection", req.request_id)
        now = self._now_ms()

        def done(_: Any) -> dict[str, Any]:
            self._broadcast("device.pair.resolved", {"requestId": req.request_id,
                            "deviceId": req.device_id, "decision": "rejected", "ts": now},
                            scope=S.PAIRING)
            self._changed()
            return {"requestId": req.request_id, "deviceId": req.device_id}

        return self._store.remove_pending(req.request_id).addCallback(done)

    @rpc("device.pair.remove", DEVICE_ID)
    def remove(self, ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        device_id = params["deviceId"]
        self._check_own(ctx, device_id, "removal")
        self._device_or_fail(device_id)

        def done(_: Any) -> dict[str, Any]:
            self._disconnect_device(device_id, None, 4001, "client invalidated: device removed")
            self._changed()
            return {"deviceId": device_id}

        return self._store.remove_device(device_id).addCallback(done)

    @rpc("device.pair.rename", RENAME)
    def rename(self, ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        self._check_own(ctx, params["deviceId"], "rename")
        dev = self._device_or_fail(params["deviceId"])
        dev.label = params["label"]

        def done(_: Any) -> dict[str, Any]:
            self._changed()
            return {"deviceId": dev.device_id, "label": dev.label}

        return self._store.save_device(dev).addCallback(done)

    def _token_device(self, ctx: CallContext, device_id: str, role: str, denied: str,
                      with_token: bool = False) -> PairedDevice:
        """The device whose ``role`` token the caller may manage, checked in the real order
        (ownership, admin-only roles, the device and role known); refused with ``denied``."""
        if _other_device(ctx, device_id):
            raise _denied(denied, device_id, role, "device-ownership-mismatch")
        if _role_needs_admin(ctx, role):
            raise _denied(denied, device_id, role, "role-management-requires-admin")
        dev = self._store.devices.get(device_id)
        if dev is None or role not in dev.roles or (with_token and role not in dev.tokens):
            raise _denied(denied, device_id, role, "unknown-device-or-role")
        return dev

    @rpc("device.token.rotate", ROTATE)
    def rotate(self, ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        device_id, role = params["deviceId"], params["role"]
        dev = self._token_device(ctx, device_id, role, ROTATION_DENIED)
        existing = dev.tokens.get(role)
        asked = params.get("scopes")
        if asked is None:
            asked = existing.scopes if existing is not None else dev.scopes
        scopes = S.normalize_token_scopes(asked)
        if S.first_missing_scope(role, scopes, S.normalize_token_scopes(dev.scopes)):
            raise _denied(ROTATION_DENIED, device_id, role, "scope-outside-approved-baseline")
        lacking = _caller_lacks(ctx, role, scopes)
        if lacking is not None:
            raise _denied(ROTATION_DENIED, device_id, role, "caller-missing-scope", lacking)
        now = self._now_ms()
        record, value = self._store.key.issue(dev.device_id, role, list(scopes), now,
                                              replacing=existing)
        same_device = _caller_device(ctx) == device_id.strip()
        own_socket = ctx.conn.device_id == dev.device_id  # kept open to read its answer

        def done(_: Any) -> dict[str, Any]:
            self._disconnect_device(dev.device_id, role, 4001,
                                    "client invalidated: token rotated",
                                    keep=ctx.conn if own_socket else None)
            out: dict[str, Any] = {"deviceId": dev.device_id, "role": role}
            if same_device:
                out["token"] = value  # in-band only to the device itself
            out.update(scopes=list(scopes), rotatedAtMs=now,
                       tokenDelivery="in-band" if same_device else "withheld-cross-device")
            return out

        return self._store.put_token(dev, record).addCallback(done)

    @rpc("device.token.revoke", REVOKE)
    def revoke(self, ctx: CallContext, params: dict[str, Any]) -> Deferred[dict[str, Any]]:
        device_id, role = params["deviceId"], params["role"]
        # A revoked token is still there: revoking it again succeeds (a new revokedAtMs).
        dev = self._token_device(ctx, device_id, role, REVOCATION_DENIED, with_token=True)
        target = S.normalize_token_scopes(dev.tokens[role].scopes)
        lacking = _caller_lacks(ctx, role, target)
        if lacking is not None:
            raise _denied(REVOCATION_DENIED, device_id, role, "caller-missing-scope", lacking)
        now = self._now_ms()

        def done(_: Any) -> dict[str, Any]:
            self._disconnect_device(dev.device_id, role, 4001,
                                    "client invalidated: token revoked")
            return {"deviceId": dev.device_id, "role": role, "revokedAtMs": now}

        return self._store.revoke_token(dev, role, now).addCallback(done)
