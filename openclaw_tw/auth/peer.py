"""Who is on the other end: loopback checks and forwarded headers from trusted proxies.

The one copy of the rule used by the WebSocket upgrade, the socket's handshake and every HTTP
endpoint: forwarded headers (``Forwarded``, ``X-Forwarded-*``, ``X-Real-IP``) are believed
only from an address in ``gateway.trustedProxies``, and then the client's address is the first
``X-Forwarded-For`` (or ``X-Real-IP``) entry; from anyone else they are refused.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable

FORWARD_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto",
                   "x-real-ip")

Header = Callable[[str], "str | None"]  # a lower-case header name -> its first value


class UntrustedProxy(Exception):
    """Forwarded headers from a peer that is not a trusted proxy."""


@functools.lru_cache(maxsize=4096)
def is_loopback_ip(ip: str) -> bool:
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def is_forwarded(header: Header) -> bool:
    return any(header(h) for h in FORWARD_HEADERS)


def forwarded_for(header: Header) -> str | None:
    """The client address a proxy names (first ``X-Forwarded-For`` hop, or ``X-Real-IP``)."""
    value = header("x-forwarded-for") or header("x-real-ip")
    if not value:
        return None
    return value.split(",")[0].strip() or None


def client_address(peer_ip: str, header: Header,
                   trusted_proxy: Callable[[str], bool]) -> tuple[str, bool]:
    """(the client's address, whether the request came through a proxy).

    Raises ``UntrustedProxy`` for forwarded headers from a peer that is not trusted."""
    if not is_forwarded(header):
        return peer_ip, False
    if not trusted_proxy(peer_ip):
        raise UntrustedProxy(peer_ip)
    return forwarded_for(header) or peer_ip, True


def web_header(request: object) -> Header:
    """``Header`` over a twisted.web request (the first value of each header)."""
    headers = request.requestHeaders  # type: ignore[attr-defined]

    def first(name: str) -> str | None:
        values = headers.getRawHeaders(name)
        return values[0] if values else None

    return first
