"""HTTP answers shared by the resource tree and the WebSocket upgrade: the security headers
every response carries, and ``Refused``, an upgrade the hub will not admit.

An upgrade is refused before any WebSocket byte flows, so its answer is a plain HTTP/1.1
response.  ``twisted.web`` writes it for a request it parsed; the socket layer (Autobahn, which
parses an upgrade that arrived in one read by itself, see ``web/site.py``) writes
``Refused.raw()``.  Both carry the same status, headers and body.
"""

from __future__ import annotations

from typing import Any

from openclaw_tw import _json

SECURITY_HEADERS = (
    (b"X-Content-Type-Options", b"nosniff"),
    (b"Referrer-Policy", b"no-referrer"),
    (b"Permissions-Policy", b"camera=(), microphone=(self), geolocation=()"),
)
JSON_TYPE = b"application/json; charset=utf-8"
TEXT_TYPE = b"text/plain; charset=utf-8"
PROXY_ATTRIBUTION = {"error": {
    "message": "Proxy client attribution is required. Add the proxy address to "
               "gateway.trustedProxies or connect directly.",
    "type": "proxy_attribution_required"}}

_PHRASES = {400: b"Bad Request", 403: b"Forbidden", 429: b"Too Many Requests",
            503: b"Service Unavailable"}


class Refused(Exception):
    """An upgrade the hub does not admit: the HTTP status, body and extra headers to answer."""

    def __init__(self, status: int, body: Any, headers: tuple[tuple[bytes, bytes], ...] = ()
                 ) -> None:
        super().__init__(status)
        self.status = status
        self.json = not isinstance(body, str)
        self.body = _json.dumps(body) if self.json else body.encode("utf-8")
        self.headers = headers

    def response_headers(self) -> list[tuple[bytes, bytes]]:
        """Every header but the framing ones (Content-Length, Connection)."""
        out = list(SECURITY_HEADERS)
        out.append((b"Content-Type", JSON_TYPE if self.json else TEXT_TYPE))
        if self.json:
            out.append((b"Cache-Control", b"no-store"))
        out.extend(self.headers)
        return out

    def raw(self) -> bytes:
        """The whole HTTP/1.1 response; the connection closes after it."""
        head = [b"HTTP/1.1 %d %s" % (self.status, _PHRASES.get(self.status, b"Error"))]
        head += [name + b": " + value for name, value in self.response_headers()]
        head += [b"Content-Length: %d" % len(self.body), b"Connection: close"]
        return b"\r\n".join(head) + b"\r\n\r\n" + self.body


def proxy_attribution() -> Refused:
    return Refused(403, PROXY_ATTRIBUTION)


def locked_out(retry_ms: int) -> Refused:
    return Refused(429, "Too Many Requests",
                   ((b"Retry-After", str(max(1, retry_ms // 1000)).encode()),))


def preauth_budget() -> Refused:
    return Refused(503, "Too many unauthenticated sockets")


def stopping() -> Refused:
    return Refused(503, "Service Unavailable")
