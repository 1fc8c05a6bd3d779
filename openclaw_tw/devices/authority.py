"""The device authority: decides connects that carry ``device`` (§4.4-§4.6, §4.5 steps 11-13).

1. Proof: Ed25519 signature, id, nonce, freshness (``proof.verify``).
2. Auth: the shared secret, else a device token (``auth.deviceToken``, or ``auth.token`` as a
   fallback candidate) bound to the role and its scopes.
3. Pairing: a device must be approved for the role and every requested scope.  Direct-local
   devices are approved silently; others get a pending request, always listable, and
   ``NOT_PAIRED`` / ``PAIRING_REQUIRED``.
Scopes are bound server-side: the effective scopes are those requested, and they must be within
what the device (or its token) was granted.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger

from openclaw_tw.devices import proof
from openclaw_tw.devices.store import (
    PENDING_TTL_MS,
    DeviceStore,
    DeviceToken,
    PairedDevice,
    PendingRequest,
)
from openclaw_tw.errors import INVALID_REQUEST, NOT_PAIRED, GatewayError
from openclaw_tw.protocol import scopes as S
from openclaw_tw.protocol.handshake import (
    SHARED_MISMATCH,
    SHARED_OK,
    AuthFailure,
    ConnectDecision,
    DeviceConnect,
    auth_failure,
)

_log = Logger(namespace="gateway/devices")

Broadcast = Callable[..., Any]


def _token_failure(message: str, code: str, reason: str, step: str,
                   can_retry: bool = False) -> AuthFailure:
    return AuthFailure(INVALID_REQUEST, message, {
        "code": code, "authReason": reason, "canRetryWithDeviceToken": can_retry,
        "recommendedNextStep": step}, close_code=1008)


def scopes_within(requested: tuple[str, ...] | list[str], granted: list[str]) -> bool:
    granted_set = frozenset(granted)
    return all(S.scope_satisfied(s, granted_set) or s in granted_set for s in requested)


class DeviceAuthority:
    def __init__(self, store: DeviceStore, now_ms: Callable[[], int], broadcast: Broadcast,
                 auto_approve_local: bool = True) -> None:
        self.store = store
        self.now_ms = now_ms
        self.broadcast = broadcast
        self.auto_approve_local = auto_approve_local

    # -- the connect path ------------------------------------------------------------------------

    def authorize(self, attempt: DeviceConnect) -> Deferred[ConnectDecision]:
        try:
            return self._authorize(attempt)
        except GatewayError:
            return fail()

    def _authorize(self, attempt: DeviceConnect) -> Deferred[ConnectDecision]:
        params, role, requested = attempt.params, attempt.role, attempt.requested
        now = self.now_ms()
        verified = proof.verify(params, attempt.nonce, now)
        dev = self.store.devices.get(verified.device_id)
        auth = params.get("auth") or {}
        token = dev.active_token(role) if dev is not None else None  # revoked: none

        if attempt.shared != SHARED_OK:
            explicit = auth.get("deviceToken")
            candidate = explicit or (auth.get("token") if attempt.shared == SHARED_MISMATCH
                                     else None)
            if token is not None and isinstance(candidate, str) and candidate \
                    and token.matches(candidate):
                if not scopes_within(requested, token.scopes):
                    raise _token_failure(
                        "unauthorized: device token scope mismatch (re-pair or approve scope "
                        "upgrade)", "AUTH_SCOPE_MISMATCH", "scope_mismatch",
                        "review_auth_configuration")
                assert dev is not None
                self.store.touch(dev, role, now, token_used=True)
                return succeed(self._decision(attempt, verified.device_id, "device-token",
                                              dev, token))
            if explicit:
                raise _token_failure(
                    "unauthorized: device token mismatch (rotate/reissue device token)",
                    "AUTH_DEVICE_TOKEN_MISMATCH", "device_token_mismatch",
                    "update_auth_credentials")
            if attempt.shared == SHARED_MISMATCH:
                err = auth_failure("mismatch", attempt.peer, attempt.policy.mode)
                if token is not None:
                    err.details.update(canRetryWithDeviceToken=True,
                                       recommendedNextStep="retry_with_device_token")
                raise err
            raise auth_failure("missing", attempt.peer, attempt.policy.mode)

        reason = self._pairing_reason(dev, params, role, requested)
        if reason is None:
            assert dev is not None
            self.store.touch(dev, role, now)
            if token is None:
                return self._mint(dev, role, attempt, verified.device_id)
            return succeed(self._decision(attempt, verified.device_id, attempt.policy.mode,
                                          dev, token))
        if attempt.peer.direct_local and self.auto_approve_local:
            return self._approve_silently(dev, attempt, verified, reason)
        return self._require_pairing(dev, attempt, verified, reason)

    def _decision(self, attempt: DeviceConnect, device_id: str, method: str,
                  dev: PairedDevice, token: DeviceToken) -> ConnectDecision:
        """hello-ok carries the device's current token for the role, as the reference does."""
        params = attempt.params
        value = self.store.key.value(device_id, token.role, token.salt)
        return ConnectDecision(attempt.role, attempt.requested, method, params["client"],
                               tuple(params.get("caps") or ()), device_id=device_id,
                               device_token=value,
                               token_issued_at=token.rotated_at or token.created_at)

    @staticmethod
    def _pairing_reason(dev: PairedDevice | None, params: dict[str, Any], role: str,
                        requested: tuple[str, ...]) -> str | None:
        if dev is None:
            return "not-paired"
        if role not in dev.roles:
            return "role-upgrade"
        if not scopes_within(requested, dev.scopes):
            return "scope-upgrade"
        client = params["client"]
        if dev.platform is not None and client.get("platform") != dev.platform:
            return "metadata-upgrade"
        return None

    def _mint(self, dev: PairedDevice, role: str, attempt: DeviceConnect,
              device_id: str) -> Deferred[ConnectDecision]:
        scopes = list(dev.scopes) if role == S.ROLE_OPERATOR else []
        record, _ = self.store.key.issue(device_id, role, scopes, self.now_ms(),
                                         replacing=dev.tokens.get(role))
        d = self.store.put_token(dev, record)
        d.addCallback(lambda _: self._decision(attempt, device_id, attempt.policy.mode, dev,
                                               record))
        return d

    def _approve_silently(self, dev: PairedDevice | None, attempt: DeviceConnect,
                          verified: proof.VerifiedDevice, reason: str
                          ) -> Deferred[ConnectDecision]:
        now = self.now_ms()
        client = attempt.params["client"]
        if dev is None:
            dev = PairedDevice(verified.device_id, verified.public_key, client.get("platform"),
                               client.get("deviceFamily"), client.get("id"), client.get("mode"),
                               [], [], "silent", now, now)
        self._grant(dev, attempt.role, attempt.requested, client, now)
        dev.last_seen_at, dev.last_seen_reason = now, "connect"
        scopes = list(dev.scopes) if attempt.role == S.ROLE_OPERATOR else []
        record, _ = self.store.key.issue(dev.device_id, attempt.role, scopes, now,
                                         replacing=dev.tokens.get(attempt.role))
        _log.info("device {device} approved silently (local, {reason})",
                  device=dev.device_id[:12], reason=reason)
        d = self.store.save_device(dev, record, drop_pending_for=dev.device_id)
        paired = dev
        d.addCallback(lambda _: self._decision(attempt, verified.device_id,
                                               attempt.policy.mode, paired, record))
        return d

    @staticmethod
    def _grant(dev: PairedDevice, role: str, scopes: tuple[str, ...] | list[str],
               client: dict[str, Any], now: int) -> None:
        if role not in dev.roles:
            dev.roles.append(role)
        for scope in scopes:
            if scope not in dev.scopes:
                dev.scopes.append(scope)
        dev.platform = client.get("platform") or dev.platform
        dev.device_family = client.get("deviceFamily") or dev.device_family
        dev.client_id = client.get("id") or dev.client_id
        dev.client_mode = client.get("mode") or dev.client_mode
        dev.approved_at = now

    def _require_pairing(self, dev: PairedDevice | None, attempt: DeviceConnect,
                         verified: proof.VerifiedDevice, reason: str
                         ) -> Deferred[ConnectDecision]:
        now = self.now_ms()
        client = attempt.params["client"]
        scopes = list(attempt.requested)
        existing = next((p for p in self.store.pending.values()
                         if p.device_id == verified.device_id and p.role == attempt.role
                         and p.scopes == scopes and p.expires_at > now), None)
        if existing is not None:
            req, d = existing, succeed(None)
        else:
            req = PendingRequest(
                str(uuid.uuid4()), verified.device_id, verified.public_key,
                client.get("platform"), client.get("deviceFamily"), client.get("id"),
                client.get("mode"), attempt.role, scopes, reason, attempt.peer.ip,
                False, dev is not None, now, now + PENDING_TTL_MS)
            d = self.store.add_pending(req)
            d.addCallback(lambda _: self.broadcast("device.pair.requested", req.public(),
                                                   scope=S.PAIRING, drop_if_slow=True))
        message = "pairing required: device is not approved yet"

        def refuse(_: Any) -> ConnectDecision:
            err = GatewayError(NOT_PAIRED, message, {
                "code": "PAIRING_REQUIRED", "reason": reason, "requestId": req.request_id,
                "remediationHint": "Approve this device from the pending pairing requests "
                                   f"(openclaw devices approve {req.request_id}).",
                "deviceId": verified.device_id, "requestedRole": attempt.role,
                "requestedScopes": scopes, "recommendedNextStep": "wait_then_retry",
            }, close_code=1008, close_reason=f"{message} (requestId: {req.request_id})")
            raise err

        d.addCallback(refuse)
        return d
