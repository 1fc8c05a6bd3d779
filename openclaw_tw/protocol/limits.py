"""Every bound of the WebSocket control plane, in one place (the reference's numbers, §10).

Sizes are bytes, times seconds unless the name says ms. Changing one changes what clients are
told in ``hello-ok.policy`` where it is advertised there.
"""

from __future__ import annotations

# Frames: Autobahn enforces these caps (a larger message closes the socket with 1009).
MAX_PREAUTH_PAYLOAD = 64 * 1024  # until hello-ok
MAX_PAYLOAD = 25 * 1024 * 1024  # after hello-ok (hello-ok.policy.maxPayload)
MAX_BUFFERED_BYTES = 50 * 1024 * 1024  # outbound backlog before a socket is a slow consumer
# All sockets' outbound backlogs together; past it the largest backlogs are closed 1008
# "slow consumer" until the total is back under OUTBOUND_RELIEF of it (the reference has no
# such bound: N stalled readers could hold N x 50 MiB).
MAX_TOTAL_BUFFERED_BYTES = 128 * 1024 * 1024
OUTBOUND_RELIEF = 0.75
TRIM_AFTER_RELEASED_BYTES = 16 * 1024 * 1024  # backlogs freed before a malloc_trim
MAX_CLOSE_REASON_BYTES = 123  # RFC 6455: a close frame's reason fits in 125 bytes

# The handshake.
MAX_PENDING_HANDSHAKE_FRAMES = 15  # frames queued while connect is being decided
CLOSE_GRACE_S = 1.0  # after a close frame, the TCP connection goes within this
MAX_UNAUTHORIZED_ROLE_STREAK = 10  # calls refused for the role before the socket is closed

# The hub.
MAX_INFLIGHT = 256  # asynchronous requests in flight (more: retryable UNAVAILABLE)
TICK_INTERVAL_MS = 30_000  # hello-ok.policy.tickIntervalMs
PING_INTERVAL_S = 25.0  # keepalive: a socket that misses one pong is dropped
SHUTDOWN_GRACE_S = 2.0  # sockets still open this long after 1012 are aborted
ATTACHMENTS = {"maxBytes": 19_464_192, "maxImageBytes": 6_291_456}  # hello-ok.policy

# The sessions store.
SESSION_ROW_CACHE = 1024  # session rows kept in memory beyond those in use (LRU)

# Request params (checked before the method's schema, so before anything is stored). orjson
# cannot encode past 255 levels, and a stored value is later nested inside responses.
MAX_PARAMS_DEPTH = 64  # arrays and objects inside params
MAX_FRAME_DEPTH = 1024  # nesting a frame can have at all (orjson's fixed parse limit)
MAX_PARAMS_ITEMS = 10_000  # items of one array or keys of one object
MAX_ERROR_NAME_CHARS = 64  # a key or property name quoted in an error message
INT64_MAX = 2**63 - 1  # an integer param past this is this (SQLite's and orjson's range)

# Presence (system-event).  The reference keeps every entry and every text, so a few large
# events made every hello-ok megabytes long; ours are bounded by construction.
MAX_PRESENCE_TEXT_CHARS = 2048  # system-event text (schema: longer is INVALID_REQUEST)
MAX_PRESENCE_FIELD_CHARS = 256  # every other system-event string
MAX_PRESENCE_LIST_ITEMS = 32  # system-event roles/scopes/tags
MAX_PRESENCE_TEXT_ENTRIES = 50  # system-events without instanceId (oldest dropped)
MAX_PRESENCE_EVENT_ENTRIES = 200  # all system-event entries (oldest dropped)
MAX_PRESENCE_EVENT_BYTES = 256 * 1024  # their encoded total (oldest dropped)

# HTTP (the one port, before a request's headers are complete).  A socket that holds a
# partial request (slowloris) is answered 408 and closed after the header timeout; an IP
# past its budget of sockets still sending headers is answered 503 at once.
HTTP_HEADER_TIMEOUT_S = 15.0  # from the connection (or the previous response) to headers
# From complete headers to the whole body (the reference's request body timeout, 30 s):
# a body that never completes, however it trickles, is answered 408 and closed.
HTTP_BODY_TIMEOUT_S = 30.0
MAX_PENDING_HTTP_PER_IP = 64  # sockets of one IP whose request headers are incomplete
