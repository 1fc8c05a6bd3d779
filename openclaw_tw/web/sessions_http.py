"""``GET /sessions/<url-encoded key>/history`` (§11.6): a session's transcript over HTTP.

Bearer auth; ``{sessionKey, items, messages, hasMore}`` with the same entries as
``chat.history`` (``items`` and ``messages`` are the same list).  ``?limit=`` (1-1000,
default 200) keeps the newest entries.  Other ``/sessions/...`` paths are not served here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote

from twisted.web.server import Request

from openclaw_tw.methods.chat import history_message
from openclaw_tw.sessions.keys import resolve_key
from openclaw_tw.web.auth import require_bearer
from openclaw_tw.web.http import HttpError, json_body, method_not_allowed

if TYPE_CHECKING:
    from openclaw_tw.app import Components

PREFIX = b"/sessions/"
SUFFIX = b"/history"
DEFAULT_LIMIT = 200
MAX_LIMIT = 1000


def is_history_path(path: bytes) -> bool:
    return path.startswith(PREFIX) and path.endswith(SUFFIX) and \
        len(path) > len(PREFIX) + len(SUFFIX)


def invalid(message: str) -> HttpError:
    return HttpError(400, {"ok": False, "error": message})


def internal_error() -> HttpError:
    return HttpError(500, {"ok": False, "error": "internal error"})


class SessionHistory:
    def __init__(self, app: Components) -> None:
        self.app = app
        self.gw = app.hub

    async def handle(self, request: Request) -> bytes:
        if request.method not in (b"GET", b"HEAD"):
            raise method_not_allowed("GET")
        await require_bearer(request, self.gw)
        raw = unquote(request.path[len(PREFIX):-len(SUFFIX)].decode("utf-8", "replace"))
        key = resolve_key(raw)
        limit = DEFAULT_LIMIT
        values = (request.args or {}).get(b"limit")
        if values:
            try:
                limit = int(values[0])
            except ValueError:
                raise invalid("limit must be an integer") from None
            if not 1 <= limit <= MAX_LIMIT:
                raise invalid(f"limit must be between 1 and {MAX_LIMIT}")
        row = await self.app.sessions.get(key)
        entries = await self.app.sessions.history(key, limit + 1, None,
                                                 row.session_id if row else None)
        more = len(entries) > limit
        messages = [history_message(e, None) for e in entries[-limit:]]
        return json_body(request, 200, {"sessionKey": key, "items": messages,
                                        "messages": messages, "hasMore": more})
