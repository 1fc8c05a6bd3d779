"""The Matrix client-server API's wire details the provider uses: paths, the sync filter, the
error shape, and two readings of untrusted data (is a homeserver private; a reply's quoted
fallback)."""

from __future__ import annotations

import ipaddress

from openclaw_tw import _json

API = "/_matrix/client/v3"
FILTER = _json.dumps({
    "presence": {"not_types": ["*"]},
    "account_data": {"types": ["m.direct"]},
    "room": {"timeline": {"limit": 50}, "state": {"lazy_load_members": True},
             "ephemeral": {"not_types": ["*"]}, "account_data": {"not_types": ["*"]}},
}).decode()


class MatrixApiError(Exception):
    def __init__(self, status: int, errcode: str, error: str,
                 retry_after_ms: int | None = None) -> None:
        super().__init__(f"{status} {errcode}: {error}")
        self.status = status
        self.errcode = errcode
        self.retry_after_ms = retry_after_ms


def is_private_host(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal", ".lan")):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return "." not in host  # a bare intranet name
    return ip.is_private or ip.is_loopback or ip.is_link_local


def strip_reply_fallback(body: str) -> str:
    """Drop the ``> <@user> quoted`` lines an older client puts before a reply."""
    lines = body.split("\n")
    i = 0
    while i < len(lines) and lines[i].startswith(">"):
        i += 1
    if i and i < len(lines) and not lines[i].strip():
        return "\n".join(lines[i + 1:])
    return body
