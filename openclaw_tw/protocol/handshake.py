"""The ``connect`` request: params schema and the ordered checks of §4.5, without I/O.

``evaluate_connect`` takes the request and what the socket knows about its peer and returns a
``ConnectDecision`` or raises ``GatewayError`` whose ``close_code`` says how to close.  Device
identity (Ed25519 proof, device tokens, pairing) is decided by a ``DeviceAuthority``, which
receives the ``DeviceConnect`` this module returns for connects that carry ``device``.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import re
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


def _host_is_local(host: str) -> bool:
    name = _host_only(host)
    return name == "localhost" or name.endswith(".localhost") or is_loopback_ip(name)


_cached_host_is_local = functools.lru_cache(maxsize=1024)(_host_is_local)
MAX_CACHED_HOST = 256  # longer Host headers (any length a client sends) are not kept


def _local_host_header(host: str | None) -> bool:
    """Whether a Host header names this machine (asked on every connect): a pure function of
    the text, so a bounded cache of short values answers the few hosts clients really use."""
    if not host:
        return True
    if len(host) > MAX_CACHED_HOST:
        return _host_is_local(host)
    return _cached_host_is_local(host)


# A browser's Origin: scheme://host[:port] with an optional trailing slash, nothing else.
_ORIGIN_RE = re.compile(r"^[a-z][a-z0-9+.-]*://[^/?#\\]+/?$", re.IGNORECASE)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")  # Tailscale's addresses: private to the reference
ORIGIN_MISSING = "origin missing or invalid"
ORIGIN_NOT_ALLOWED = "origin not allowed"
# Clients that are browser pages: their connect is origin-checked even without an Origin.
BROWSER_UI_CLIENT_IDS = frozenset({"openclaw-control-ui", "openclaw-browser-copilot",
                                   "webchat-ui"})
# The operator UIs that must sign their connects: no shared secret stands in for a device.
OPERATOR_UI_CLIENT_IDS = frozenset({"openclaw-control-ui", "openclaw-tui"})


def _has_origin(origin: str | None) -> bool:
    """A non-blank ``Origin`` header: the connect looks like it comes from a browser page."""
    return bool(origin and origin.strip())


def _parse_origin(origin: str | None) -> tuple[str, str, str] | None:
    """``(origin, host, hostname)`` lower-cased, or ``None`` for a missing, ``null`` or
    malformed Origin (paths, queries, credentials)."""
    value = (origin or "").strip()
    if not value or value == "null" or not _ORIGIN_RE.match(value):
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    if parts.username is not None or parts.password is not None or not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    hostname = parts.hostname.lower()
    shown = f"[{hostname}]" if ":" in hostname else hostname
    default = {"http": 80, "https": 443, "ws": 80, "wss": 443}.get(scheme)
    host = shown if port is None or port == default else f"{shown}:{port}"
    return f"{scheme}://{host}", host, hostname


def _is_loopback_name(hostname: str) -> bool:
    """``localhost`` (trailing dots ignored) or a loopback address; not ``*.localhost``."""
    hostname = hostname.strip("[]")
    return hostname.rstrip(".") == "localhost" or is_loopback_ip(hostname)


def _trusted_same_origin_host(host_header: str, local_client: bool) -> bool:
    """A same-origin page is trusted on a loopback host (for a local client), a private or
    loopback address, or a ``.local`` / ``.ts.net`` name -- never on a public DNS name, which
    a rebinding attacker controls."""
    hostname = _host_only(host_header)
    if not hostname:
        return False
    if _is_loopback_name(hostname):
        return local_client
    try:
        address = ipaddress.ip_address(hostname)
    except ValueError:
        return hostname.endswith(".local") or hostname.endswith(".ts.net")
    return address.is_private or address.is_loopback or address in _CGNAT


def check_browser_origin(origin: str | None, host_header: str | None, allowed: Sequence[str],
                         local_client: bool) -> str | None:
    """The reference's browser-origin policy (``checkBrowserOrigin``); ``None`` when the page
    may drive the gateway, else the refusal reason.  Allowed: an origin in
    ``gateway.controlUi.allowedOrigins`` (or ``*``); the gateway's own origin (Origin host ==
    Host header) on a loopback, private or ``.local``/``.ts.net`` host; any loopback origin
    for a direct loopback client (local development servers)."""
    parsed = _parse_origin(origin)
    if parsed is None:
        return ORIGIN_MISSING
    normalized, host, hostname = parsed
    allowlist = {a.strip().lower() for a in allowed if a and a.strip()}
    if "*" in allowlist or normalized in allowlist:
        return None
    request_host = (host_header or "").strip().lower()
    if request_host and host == request_host and \
            _trusted_same_origin_host(request_host, local_client):
        return None
    if local_client and _is_loopback_name(hostname):
        return None
    return ORIGIN_NOT_ALLOWED


def origin_checked(client: dict[str, Any], origin: str | None) -> bool:
    """Browser pages are always origin-checked; any client that sends an Origin is too."""
    return _has_origin(origin) or client.get("id") in BROWSER_UI_CLIENT_IDS \
        or client.get("mode") == "webchat"


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
    if origin_checked(client, peer.origin):
        reason = check_browser_origin(peer.origin, peer.host_header, policy.allowed_origins,
                                      peer.loopback and not peer.forwarded)
        if reason is not None:
            raise _fail(
                "origin not allowed (open the Control UI from the gateway host or allow it in "
                "gateway.controlUi.allowedOrigins)",
                {"code": "CONTROL_UI_ORIGIN_NOT_ALLOWED", "reason": reason},
            )

    shared = check_shared_secret(params.get("auth") or {}, policy)
    requested = tuple(dict.fromkeys(params.get("scopes") or ()))
    if params.get("device") is not None:
        return DeviceConnect(params, role, requested, shared, nonce, peer, policy)

    return _device_less_decision(params, role, requested, shared, peer, policy)


def _device_less_decision(params: dict[str, Any], role: str, requested: tuple[str, ...],
                          shared: str, peer: PeerInfo, policy: AuthPolicy) -> ConnectDecision:
    """A connect without ``device``, as the reference decides it (its missing-device-identity
    policy).  Only two clients keep the scopes they ask for, and only from this machine (a
    loopback peer that no proxy forwarded; the Host header is not consulted) and only when
    the connect carries no ``Origin`` (a browser page never does): ``cli``/``cli`` with the
    shared secret, and ``gateway-client``/``backend`` with the shared secret or under auth
    ``none``.  Any other operator with the shared secret connects with no scopes at all;
    without it (auth ``none`` included) a device identity is required.  The operator UIs
    (Control UI, TUI) must always bring a device identity."""
    client = params["client"]
    pair = (client["id"], client["mode"])
    same_machine = peer.loopback and not peer.forwarded and not _has_origin(peer.origin)
    secret_ok = shared == SHARED_OK and policy.mode != "none"
    method = policy.mode
    caps = tuple(params.get("caps") or ())
    if role == S.ROLE_OPERATOR and same_machine and pair == ("gateway-client", "backend") \
            and (secret_ok or policy.mode == "none"):
        return ConnectDecision(role, requested, method, client, caps)
    if client["id"] in OPERATOR_UI_CLIENT_IDS:
        raise _fail(
            "control ui requires device identity (use HTTPS or localhost secure context)",
            {"code": "CONTROL_UI_DEVICE_IDENTITY_REQUIRED"},
        )
    if role == S.ROLE_OPERATOR and secret_ok:
        keeps = same_machine and pair == ("cli", "cli")
        return ConnectDecision(role, requested if keeps else (), method, client, caps)
    if shared == SHARED_MISMATCH:
        raise auth_failure("mismatch", peer, policy.mode)
    raise _fail("device identity required", {"code": "DEVICE_IDENTITY_REQUIRED"},
                code=NOT_PAIRED)


def device_less(attempt: DeviceConnect) -> ConnectDecision:
    """Without a device authority, a ``device`` block is ignored (the pre-pairing behaviour)."""
    params = {k: v for k, v in attempt.params.items() if k != "device"}
    decision = evaluate_connect(params, attempt.nonce, attempt.peer, attempt.policy)
    assert isinstance(decision, ConnectDecision)
    return decision
