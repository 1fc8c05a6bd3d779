"""twistd plugin: ``twistd -n openclaw`` starts the gateway (see openclaw_tw.tap)."""

from twisted.application.service import ServiceMaker

openclaw = ServiceMaker(
    "openclaw",
    "openclaw_tw.tap",
    "OpenClaw-compatible gateway: protocol v4 control plane over WebSocket + HTTP on one port",
    "openclaw",
)
