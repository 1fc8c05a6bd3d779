"""openclaw_tw: a Twisted re-implementation of the OpenClaw Gateway."""

__version__ = "0.1.0"

# The protocol-level version we report to clients (server.version in hello-ok).  The real
# CLI only displays it; we keep our own release number visible next to the protocol level.
PROTOCOL_VERSION = 4
MIN_CLIENT_PROTOCOL = 4
MIN_NODE_PROTOCOL = 3
MIN_PROBE_PROTOCOL = 3
