"""HTTP bearer auth (§11.2): ``Authorization: Bearer <gateway token or password>``.

The same ``AuthRateLimiter`` as WebSocket connects: a locked-out address gets 429 with
``Retry-After`` before its credentials are looked at; a wrong secret is counted and answered
401 after the limiter's delay; a missing one is answered 401 at once and not counted.
Shared-secret callers are the owner with every operator scope, so no scope checks follow.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from twisted.internet.task import deferLater
from twisted.web.server import Request

from openclaw_tw.auth.peer import is_loopback_ip
from openclaw_tw.web.http import HttpError, bearer_token, client_ip

if TYPE_CHECKING:
    from openclaw_tw.hub.gateway import Gateway

UNAUTHORIZED = {"error": {"message": "Unauthorized", "type": "unauthorized"}}
RATE_LIMITED_MESSAGE = "Too many failed authentication attempts. Try again later."


def unauthorized() -> HttpError:
    return HttpError(401, UNAUTHORIZED)


def rate_limited(retry_after_ms: int) -> HttpError:
    return HttpError(429, {"error": {"message": RATE_LIMITED_MESSAGE, "type": "rate_limited"}},
                     {"Retry-After": str(max(1, -(-retry_after_ms // 1000)))})


def secret_matches(gw: Gateway, offered: str) -> bool:
    candidate = offered.encode("utf-8")
    ok = False
    for secret in (gw.settings.token, gw.settings.password):
        if secret and hmac.compare_digest(candidate, secret.encode("utf-8")):
            ok = True
    return ok


async def require_bearer(request: Request, gw: Gateway) -> None:
    """Return when the caller may use the HTTP API; raise the 401/403/429 answer otherwise."""
    ip = client_ip(request, gw)
    loopback = is_loopback_ip(ip)
    retry_ms = gw.auth_limiter.retry_after_ms(ip, loopback)
    if retry_ms is not None:
        raise rate_limited(retry_ms)
    if gw.settings.auth_mode == "none":
        return
    offered = bearer_token(request)
    if offered is None:
        raise unauthorized()
    if secret_matches(gw, offered):
        return
    delay = gw.auth_limiter.record_failure(ip, loopback)
    await deferLater(gw.clock, delay, lambda: None)
    raise unauthorized()
