"""hello-ok: what a client learns when its connect succeeds (§4.6), and the event list."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openclaw_tw import PROTOCOL_VERSION, __version__
from openclaw_tw.protocol import scopes as S
from openclaw_tw.protocol.limits import (
    ATTACHMENTS,
    MAX_BUFFERED_BYTES,
    MAX_PAYLOAD,
    TICK_INTERVAL_MS,
)

if TYPE_CHECKING:
    from openclaw_tw.hub.gateway import Gateway
    from openclaw_tw.interfaces import IConnection
    from openclaw_tw.protocol.handshake import ConnectDecision

# The OpenClaw release whose protocol we speak; server.version in hello-ok.
COMPAT_VERSION = "2026.9.6"
BUILD_ID = f"openclaw_tw-{__version__}"

# hello-ok.features.capabilities: the contracts we honour, and only those.
# published-model-catalog: models.list answers the published catalog (ModelChoiceSchema rows
# with ``available``, ``includeDetails``/``view``/``provider`` honoured); `openclaw models
# list` requires it and the TUI keeps ``available`` only when it is advertised.
# Not model-catalog-snapshot: that one promises a ``models.snapshot`` event for a connect's
# ``modelCatalog`` field, which we do not send.
CAPABILITIES = ["published-model-catalog"]

# Events we emit, in the order the reference advertises them.
EVENTS = ["connect.challenge", "agent", "chat", "session.message", "sessions.changed", "presence", "tick",
          "shutdown", "health", "heartbeat", "cron", "device.pair.changed", "device.pair.requested",
          "device.pair.resolved", "node.pair.requested", "node.pair.resolved",
          "node.presence", "node.hostStats", "node.invoke.request", "node.invoke.cancel",
          "exec.approval.requested", "exec.approval.resolved", "config.changed"]


def session_defaults(hub: Gateway) -> dict[str, Any]:
    models = hub.models
    return {
        "defaultAgentId": "main",
        "modelConfigured": models is not None and not models.primary.startswith("offline/"),
        "ownership": "sole",
        "selectionRequired": False,
        "mainKey": "main",
        "mainSessionKey": "agent:main:main",
        "scope": "per-sender",
    }


def hello_payload(hub: Gateway, conn: IConnection, decision: ConnectDecision) -> dict[str, Any]:
    snapshot: dict[str, Any] = {
        "suspension": {"phase": "accepting"},
        "presence": hub.presence.snapshot(),
        "health": hub.health.current(),
        "stateVersion": hub.state_version(),
        "uptimeMs": hub.uptime_ms(),
        "sessionDefaults": session_defaults(hub),
    }
    if S.ADMIN in conn.scopes:
        settings = hub.settings
        snapshot["configPath"] = str(settings.config_path)
        snapshot["stateDir"] = str(settings.state_dir)
        snapshot["authMode"] = settings.auth_mode
    auth: dict[str, Any] = {
        "method": decision.auth_method,
        "role": decision.role,
        "scopes": list(decision.scopes),
    }
    if decision.device_token is not None:
        auth["deviceToken"] = decision.device_token
        auth["issuedAtMs"] = decision.token_issued_at
    return {
        "type": "hello-ok",
        "protocol": PROTOCOL_VERSION,
        "server": {
            "version": COMPAT_VERSION,
            "buildId": BUILD_ID,
            "bootId": hub.boot_id,
            # The Control UI we serve is never our own build (web/control_ui.py): "configured"
            # tells it not to compare its build id with ours (else: a stale-tab refresh loop).
            "controlUiBuildSource": "configured",
            "connId": conn.conn_id,
        },
        "features": {
            "methods": hub.methods.advertised(),
            "events": list(EVENTS),
            "capabilities": list(CAPABILITIES),
        },
        "snapshot": snapshot,
        "auth": auth,
        "policy": {
            "maxPayload": MAX_PAYLOAD,
            "maxBufferedBytes": MAX_BUFFERED_BYTES,
            "tickIntervalMs": TICK_INTERVAL_MS,
            "attachments": dict(ATTACHMENTS),
        },
    }
