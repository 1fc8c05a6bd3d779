"""Twisted TCP transport internals the socket layer uses on every frame: sending a small
frame with one ``send()`` when nothing is queued, the bytes still buffered, dropping a stalled
reader's backlog, and the header of an unmasked text frame.  No Autobahn here (only
``protocol/websocket.py`` imports it); tests/loopback/test_library_internals.py checks the
private Twisted attributes read here.
"""

from __future__ import annotations

import struct
from typing import Any

from twisted.internet import tcp

from openclaw_tw.protocol.limits import MAX_CLOSE_REASON_BYTES

H16 = struct.Struct("!BBH")
H64 = struct.Struct("!BBQ")


def frame_head(n: int) -> bytes:
    """The header of an unmasked, unfragmented text frame of ``n`` payload bytes."""
    if n < 126:
        return bytes((0x81, n))
    if n < 65536:
        return H16.pack(0x81, 126, n)
    return H64.pack(0x81, 127, n)


def truncate_reason(reason: str) -> str:
    data = reason.encode("utf-8")
    if len(data) <= MAX_CLOSE_REASON_BYTES:
        return reason
    return data[:MAX_CLOSE_REASON_BYTES].decode("utf-8", "ignore")


def send_now(transport: Any, frame: bytes) -> bool:
    """Send a small frame with one ``send()`` when nothing is queued on a plain TCP socket.

    Twisted's ``write`` always defers to the next reactor iteration: register for
    writability, send, unregister — three system calls per message, which dominated the cost
    of a broadcast delivery.  When the transport's buffers are empty the bytes can go out now
    without reordering anything; whatever the kernel does not take is handed to ``write``.
    Returns False (the caller writes normally) for TLS, a closing socket, queued data, or any
    socket error, so Twisted keeps owning every unusual case.
    """
    # Exactly a plain TCP server connection: a TLS wrapper (TLSMemoryBIOProtocol) forwards
    # attribute lookups to the TCP transport underneath, so duck-typing would see a socket.
    if type(transport) is not tcp.Server or transport.TLS:
        return False
    sock = transport.socket
    if not transport.connected or \
            transport.disconnecting or transport._writeDisconnected or \
            transport._tempDataLen or len(transport.dataBuffer) > transport.offset:
        return False
    try:
        sent = sock.send(frame)
    except OSError:
        return False
    if sent < len(frame):
        transport.write(frame[sent:])
    return True


def outbound_buffered(transport: Any) -> int:
    """Bytes written to the socket but not yet accepted by the kernel (TCP and TLS)."""
    total = 0
    app = getattr(transport, "_appSendBuffer", None)
    if app is not None:  # TLSMemoryBIOProtocol: app data waiting for the handshake
        total += sum(len(x) for x in app)
        transport = getattr(transport, "transport", transport)
    data = getattr(transport, "dataBuffer", None)
    if data is not None:
        total += len(data) - getattr(transport, "offset", 0)
        total += getattr(transport, "_tempDataLen", 0)
    return total


def shed_backlog(transport: Any) -> int:
    """Drop the frames queued on a plain TCP socket that Twisted has not yet joined into its
    send buffer; returns the bytes dropped.

    Every ``write`` appends one whole frame (or a frame's header and its data as two entries)
    to ``_tempDataBuffer``, so dropping all of it never cuts a frame: what the kernel has not
    taken of ``dataBuffer`` (which may end mid-frame) stays, and a close frame written next
    arrives intact after it.  A stalled reader's backlog sits almost entirely here.  TLS
    records may span entries, so a TLS socket keeps its backlog (0)."""
    if type(transport) is not tcp.Server or transport.TLS:
        return 0
    dropped = int(transport._tempDataLen)
    transport._tempDataBuffer = []
    transport._tempDataLen = 0
    return dropped
