"""The ``connect`` request: params schema and the ordered checks of §4.5, without I/O.

``evaluate_connect`` takes the request and what the socket knows about its peer and returns a
``ConnectDecision`` or raises ``GatewayError`` whose ``close_code`` says how to close.  Device
identity (Ed25519 proof, device tokens, pairing) is decided by a ``DeviceAuthority``, which
receives the ``DeviceConnect`` this module returns for connects that carry ``device``.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

import attrs
from twisted.internet.defer import Deferred

from openclaw_tw import MIN_NODE_PROTOCOL, MIN_PROBE_PROTOCOL, PROTOCOL_VERSION
from openclaw_tw.auth.peer import is_loopback_ip
from openclaw_tw.errors import INVALID_REQUEST, NOT_PAIRED, GatewayError
from openclaw_tw.protocol import scopes as S
from openclaw_tw.protocol.schema import (
    AnyValue,
    Arr,
    Bool,
    Int,
    Obj,
    OneOf,
    Record,
    Str,
)

CLIENT_IDS = (
    "webchat-ui", "openclaw-control-ui", "openclaw-browser-copilot", "openclaw-tui", "webchat",
    "cli", "gateway-client", "openclaw-macos", "openclaw-linux", "openclaw-ios",
    "openclaw-watchos", "openclaw-android", "node-host", "openclaw-worker", "test",
    "fingerprint", "openclaw-probe",
)
CLIENT_MODES = ("webchat", "cli", "ui", "backend", "node", "worker", "probe", "test")
EPHEMERAL_MODES = frozenset({"cli", "backend", "probe"})

_S1 = Str(min_len=1)
CONNECT_PARAMS = Obj(
    required={
        "minProtocol": Int(minimum=1),
        "maxProtocol": Int(minimum=1),
        "client": Obj(
            required={
                "id": Str(enum=CLIENT_IDS),
                "version": _S1,
                "platform": _S1,
                "mode": Str(enum=CLIENT_MODES),
            },
            optional={
                "displayName": _S1,
                "buildId": Str(min_len=1, max_len=96),
                "deviceFamily": _S1,
                "modelIdentifier": _S1,
                "timeZone": Str(min_len=1, max_len=64),
                "instanceId": _S1,
            },
        ),
    },
    optional={
        "caps": Arr(_S1),
        "commands": Arr(_S1),
        "permissions": Record(Bool()),
        "pathEnv": Str(),
        "computerUse": AnyValue(),
        "workerRuns": AnyValue(),
        "role": _S1,
        "scopes": Arr(_S1),
        "modelCatalog": OneOf(
            Obj(optional={"agentId": _S1, "sessionKey": _S1}),
            Obj(required={"shortId": _S1}, optional={"agentId": _S1, "slugHint": _S1}),
        ),
        "device": Obj(
            required={
                "id": _S1,
                "publicKey": _S1,
                "signature": _S1,
                "signedAt": Int(minimum=0),
                "nonce": _S1,
            }
        ),
        "auth": Obj(
            optional={
                "token": Str(),
                "bootstrapToken": Str(),
                "deviceToken": Str(),
                "password": Str(),
                "approvalRuntimeToken": Str(),
                "agentRuntimeIdentityToken": Str(),
            }
        ),
        "locale": Str(),
        "userAgent": Str(),
    },
)


@attrs.frozen
class PeerInfo:
    """What the socket knows about the other end, gathered at upgrade time."""

    ip: str
    host_header: str | None = None
    origin: str | None = None
    forwarded: bool = False

    @property
    def loopback(self) -> bool:
        return is_loopback_ip(self.ip)

    @property
    def direct_local(self) -> bool:
        return self.loopback and not self.forwarded and _local_host_header(self.host_header)


@attrs.frozen
class AuthPolicy:
    mode: str  # none | token | password
    secret: str | None
    allowed_origins: tuple[str, ...] = ()


@attrs.frozen
class ConnectDecision:
    role: str
    scopes: tuple[str, ...]
    auth_method: str
    client: dict[str, Any]
    caps: tuple[str, ...]
    protocol: int = PROTOCOL_VERSION
    device_id: str | None = None
    device_token: str | None = None  # returned in hello-ok.auth when minted or presented
    token_issued_at: int | None = None

    @property
    def ephemeral(self) -> bool:
        return self.client.get("mode") in EPHEMERAL_MODES


class AuthFailure(GatewayError):
    """A shared-secret failure: counted by the rate limiter and answered after its delay."""


SHARED_OK, SHARED_MISSING, SHARED_MISMATCH = "ok", "missing", "mismatch"


@attrs.frozen
class DeviceConnect:
    """A connect that carries ``device``: checks 1-8 passed; the device authority decides."""

    params: dict[str, Any]
    role: str
    requested: tuple[str, ...]
    shared: str  # SHARED_OK | SHARED_MISSING | SHARED_MISMATCH
    nonce: str
    peer: PeerInfo
    policy: AuthPolicy


class DeviceAuthority(Protocol):
    def authorize(self, attempt: DeviceConnect) -> Deferred[ConnectDecision]: ...


def _host_only(hostport: str) -> str:
    hostport = hostport.strip().lower()
    if hostport.startswith("["):
        return hostport[1 : hostport.find("]")] if "]" in hostport else hostport
    return hostport.rsplit(":", 1)[0] if hostport.count(":") == 1 else hostport


def _local_host_header(host: str | None) -> bool:
    if not host:
        return True
    name = _host_only(host)
    return name == "localhost" or name.endswith(".localhost") or is_loopback_ip(name)


def origin_allowed(origin: str, host_header: str | None, allowed: Sequence[str]) -> bool:
    """Same-origin, loopback or allow-listed origins may open the control plane."""
    origin = origin.strip()
    if "*" in allowed or origin in allowed or origin.rstrip("/") in allowed:
        return True
    parts = urlsplit(origin)
    if not parts.hostname:
        return False
    if parts.hostname == "localhost" or is_loopback_ip(parts.hostname):
        return True
    return bool(host_header) and parts.netloc.lower() == (host_header or "").strip().lower()


def _fail(message: str, details: Any = None, code: str = INVALID_REQUEST,
          close: int = 1008) -> GatewayError:
    return GatewayError(code, message, details, close_code=close)


_AUTH_HINT_LOCAL = "(use this gateway's gateway.auth.token or pair the device)"
_AUTH_HINT_REMOTE = "(set gateway.remote.token to match gateway.auth.token)"


def auth_failure(reason: str, peer: PeerInfo, mode: str) -> AuthFailure:
    kind = "token" if mode == "token" else "password"
    hint = _AUTH_HINT_LOCAL if peer.loopback else _AUTH_HINT_REMOTE
    if mode == "password":
        hint = "(use this gateway's gateway.auth.password)"
    if reason == "missing":
        message = f"unauthorized: gateway {kind} missing {hint}"
        code, step = f"AUTH_{kind.upper()}_MISSING", "update_auth_configuration"
    else:
        message = f"unauthorized: gateway {kind} mismatch {hint}"
        code, step = f"AUTH_{kind.upper()}_MISMATCH", "update_auth_credentials"
    details = {
        "code": code,
        "authReason": f"{kind}_{reason}",
        "canRetryWithDeviceToken": False,
        "recommendedNextStep": step,
    }
    return AuthFailure(INVALID_REQUEST, message, details, close_code=1008)


def rate_limited(retry_after_ms: int) -> GatewayError:
    return GatewayError(
        INVALID_REQUEST,
        "unauthorized: too many failed authentication attempts (retry later)",
        {
            "code": "AUTH_RATE_LIMITED",
            "authReason": "rate_limited",
            "canRetryWithDeviceToken": False,
            "recommendedNextStep": "wait_then_retry",
        },
        retryable=True,
        retry_after_ms=retry_after_ms,
        close_code=1008,
    )


def check_protocol(params: dict[str, Any], role: str) -> None:
    lo, hi = params["minProtocol"], params["maxProtocol"]
    mode = params["client"]["mode"]
    ok = lo <= PROTOCOL_VERSION <= hi
    if not ok and mode == "probe":
        ok = hi >= MIN_PROBE_PROTOCOL and lo <= PROTOCOL_VERSION
    if not ok and mode == "node" and role == S.ROLE_NODE:
        ok = lo <= MIN_NODE_PROTOCOL <= hi
    if not ok:
        raise _fail(
            "protocol mismatch",
            {
                "code": "PROTOCOL_MISMATCH",
                "clientMinProtocol": lo,
                "clientMaxProtocol": hi,
                "expectedProtocol": PROTOCOL_VERSION,
                "minimumProbeProtocol": MIN_PROBE_PROTOCOL,
            },
            close=1002,
        )


def check_shared_secret(auth: dict[str, Any], policy: AuthPolicy) -> str:
    """Compare ``auth.token``/``auth.password`` (either may carry it) with the secret."""
    if policy.mode == "none":
        return SHARED_OK
    offered = [v for v in (auth.get("token"), auth.get("password")) if isinstance(v, str) and v]
    if not offered:
        return SHARED_MISSING
    secret = (policy.secret or "").encode("utf-8")
    for candidate in offered:
        if secret and hmac.compare_digest(candidate.encode("utf-8"), secret):
            return SHARED_OK
    return SHARED_MISMATCH


def evaluate_connect(
    params: Any, nonce: str, peer: PeerInfo, policy: AuthPolicy
) -> ConnectDecision | DeviceConnect:
    """Checks 1-10 of §4.5.  Device-less connects are decided here; a connect with ``device``
    comes back as a ``DeviceConnect`` for the device authority (proof, tokens, pairing)."""
    problem = CONNECT_PARAMS.check(params)
    if problem is not None:
        raise _fail(f"invalid connect params: {problem}")
    client = params["client"]
    role = params.get("role") or S.ROLE_OPERATOR
    if role == "worker" or client["id"] == "openclaw-worker" or client["mode"] == "worker":
        raise _fail("invalid-handshake")
    check_protocol(params, role)
    if role not in S.ROLES:
        raise _fail("invalid role")
    if peer.origin is not None and not origin_allowed(
        peer.origin, peer.host_header, policy.allowed_origins
    ):
        raise _fail(
            "origin not allowed (open the Control UI from the gateway host or allow it in "
            "gateway.controlUi.allowedOrigins)",
            {"code": "CONTROL_UI_ORIGIN_NOT_ALLOWED", "reason": "origin-mismatch"},
        )

    shared = check_shared_secret(params.get("auth") or {}, policy)
    requested = tuple(dict.fromkeys(params.get("scopes") or ()))
    if params.get("device") is not None:
        return DeviceConnect(params, role, requested, shared, nonce, peer, policy)

    if shared == SHARED_MISMATCH:
        raise auth_failure("mismatch", peer, policy.mode)
    if role == S.ROLE_NODE or shared != SHARED_OK:
        raise _fail("device identity required", {"code": "DEVICE_IDENTITY_REQUIRED"},
                    code=NOT_PAIRED)
    if client["id"] == "openclaw-control-ui" and policy.mode != "none":
        raise _fail(
            "control ui requires device identity (use https or localhost)",
            {"code": "CONTROL_UI_DEVICE_IDENTITY_REQUIRED"},
        )
    keeps = (client["id"], client["mode"]) in (("cli", "cli"), ("gateway-client", "backend"))
    effective = requested if (peer.direct_local and keeps) else ()
    return ConnectDecision(role, effective, policy.mode, client, tuple(params.get("caps") or ()))


def device_less(attempt: DeviceConnect) -> ConnectDecision:
    """Without a device authority, a ``device`` block is ignored (the pre-pairing behaviour)."""
    params = {k: v for k, v in attempt.params.items() if k != "device"}
    decision = evaluate_connect(params, attempt.nonce, attempt.peer, attempt.policy)
    assert isinstance(decision, ConnectDecision)
    return decision
