"""``GET /metrics`` (and ``/api/diagnostics/prometheus``, the path the real gateway's
diagnostics-prometheus plugin serves): the Prometheus text exposition of
``observe/metrics.py``.

Who may scrape (``--metrics`` / ``OPENCLAW_TW_METRICS``): ``token`` (the default) asks for
the gateway token or password as ``Authorization: Bearer`` exactly as ``/v1/*`` does
(``web/auth.py``: the same rate limiter, 401/429; open when ``gateway.auth.mode`` is
``none``); ``loopback`` serves direct loopback callers only (no forwarded headers, no token)
and answers anyone else 403; ``off`` serves nothing (the path falls through to the 404).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.web.server import Request

from openclaw_tw.auth.peer import is_forwarded, is_loopback_ip, web_header
from openclaw_tw.observe.metrics import CONTENT_TYPE
from openclaw_tw.web.auth import require_bearer
from openclaw_tw.web.http import HttpError, method_not_allowed, text_error

if TYPE_CHECKING:
    from openclaw_tw.app import Components

PATHS = frozenset({b"/metrics", b"/api/diagnostics/prometheus"})


def internal_error() -> HttpError:
    return text_error(500, "Internal Server Error")


class MetricsEndpoint:
    def __init__(self, app: Components) -> None:
        self.gateway = app.hub
        self.metrics = app.metrics
        self.mode = app.settings.metrics

    def matches(self, path: bytes) -> bool:
        return self.metrics.enabled and path in PATHS

    async def handle(self, request: Request) -> bytes:
        if request.method not in (b"GET", b"HEAD"):
            raise method_not_allowed("GET, HEAD")
        if self.mode == "loopback":
            peer = getattr(request.getClientAddress(), "host", "") or ""
            if not is_loopback_ip(peer) or is_forwarded(web_header(request)):
                raise text_error(403, "Forbidden")
        else:
            await require_bearer(request, self.gateway)
        body: bytes = await self.metrics.render()  # type: ignore[union-attr]
        request.setResponseCode(200)
        request.setHeader(b"Content-Type", CONTENT_TYPE)
        request.setHeader(b"Cache-Control", b"no-store")
        return body
