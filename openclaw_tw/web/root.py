"""The resource tree on the gateway port: WebSocket upgrades, health probes, the HTTP API, 404s.

``GatewayRoot`` is a leaf that routes on the request path.  A WebSocket upgrade on any
path that did not arrive in one read (see ``web/site.py``) is handed to Autobahn through
``WebSocketResource``; the upgrade-time checks (forwarded headers, auth lockout, pre-auth
budget) are the hub's, in ``GatewayProtocol.onConnect``.  Other requests go, in
the reference's order (§11): probes -> hooks -> ``/metrics`` (``web/metrics.py``) -> ``/v1/models*``, ``/v1/embeddings`` ->
``/tools/invoke`` -> ``/sessions/<key>/history`` -> ``/v1/responses`` ->
``/v1/chat/completions`` -> the Control UI (``web/control_ui.py``: its files, the SPA
fallback, ``/control-ui-config.json``; the reference's last request stage) -> 404
``Not Found``.  Disabled endpoints (and a disabled Control UI) fall through to the 404;
endpoint switches and ``gateway.controlUi.enabled`` are read per request.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from autobahn.twisted.resource import WebSocketResource
from twisted.web.resource import Resource
from twisted.web.server import Request

from openclaw_tw import _json
from openclaw_tw.auth.peer import (
    is_forwarded,
    is_loopback_ip,
    web_header,
)
from openclaw_tw.hub.gateway import COMPAT_VERSION
from openclaw_tw.protocol.websocket import GatewayFactory
from openclaw_tw.web import metrics as metrics_http
from openclaw_tw.web import openai_compat, sessions_http, tools_invoke
from openclaw_tw.web.control_ui import ControlUi
from openclaw_tw.web.hooks import Hooks, hook_error
from openclaw_tw.web.http import (
    SECURITY_HEADERS,
    Handler,
    InternalError,
    serve,
)
from openclaw_tw.web.openai_models import EMBEDDINGS_PATH, MODELS_PATH, OpenAIModels
from openclaw_tw.web.sessions_http import SessionHistory, is_history_path
from openclaw_tw.web.tools_invoke import ToolsInvoke

if TYPE_CHECKING:
    from openclaw_tw.app import Components
    from openclaw_tw.web.chat_completions import ChatCompletions
    from openclaw_tw.web.responses import Responses

__all__ = ["SECURITY_HEADERS", "GatewayRoot"]

LIVE_PATHS = frozenset({b"/health", b"/healthz"})
READY_PATHS = frozenset({b"/ready", b"/readyz"})
STARTUP_PATHS = frozenset({b"/startup", b"/startupz"})
PROBE_PATHS = LIVE_PATHS | READY_PATHS | STARTUP_PATHS


def _json_response(request: Request, status: int, body: Any) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", b"application/json; charset=utf-8")
    request.setHeader(b"Cache-Control", b"no-store")
    return _json.dumps(body)


def _text_response(request: Request, status: int, body: str) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
    return body.encode("utf-8")


class GatewayRoot(Resource):
    isLeaf = True

    def __init__(self, app: Components) -> None:
        super().__init__()
        self.app = app
        self.gateway = gateway = app.hub
        self.ws_factory = GatewayFactory(gateway)
        self.ws = WebSocketResource(self.ws_factory)
        self.hooks = Hooks(app)
        self.metrics = metrics_http.MetricsEndpoint(app)
        self.models = OpenAIModels(gateway)
        self.tools = ToolsInvoke(app)
        # off by default: their modules are imported with the first request once enabled
        self.responses: Responses | None = None
        self.chat: ChatCompletions | None = None
        self.history = SessionHistory(app)
        self.control_ui = ControlUi(gateway)

    def render(self, request: Request) -> Any:
        for name, value in SECURITY_HEADERS:
            request.setHeader(name, value)
        upgrade = request.getHeader(b"upgrade")
        if upgrade is not None:
            if upgrade.lower() != b"websocket":
                return _text_response(request, 400, "Bad Request")
            return self._upgrade(request)
        path = request.path
        if path in PROBE_PATHS:
            if request.method not in (b"GET", b"HEAD"):
                request.setHeader(b"Allow", b"GET, HEAD")
                return _text_response(request, 405, "Method Not Allowed")
            return self._probe(request, path)
        route = self._route(path)
        if route is not None:
            return serve(request, *route)
        answer = self.control_ui.render(request)
        if answer is not None:
            return answer
        return _text_response(request, 404, "Not Found")

    def _route(self, path: bytes) -> tuple[Handler, InternalError] | None:
        settings = self.gateway.settings
        if self.hooks.matches(path):
            return self.hooks.handle, lambda: hook_error(500, "internal error")
        if self.metrics.matches(path):
            return self.metrics.handle, metrics_http.internal_error
        openai = settings.chat_completions_enabled or settings.responses_enabled
        if openai and (path == MODELS_PATH or path.startswith(MODELS_PATH + b"/")):
            return self.models.models, openai_compat.internal_error
        if openai and path == EMBEDDINGS_PATH:
            return self.models.embeddings, openai_compat.internal_error
        if path == b"/tools/invoke":
            return self.tools.handle, tools_invoke.internal_error
        if is_history_path(path):
            return self.history.handle, sessions_http.internal_error
        if settings.responses_enabled and path == b"/v1/responses":
            if self.responses is None:
                from openclaw_tw.web.responses import Responses

                self.responses = Responses(self.app)
            return self.responses.handle, openai_compat.internal_error
        if settings.chat_completions_enabled and path == b"/v1/chat/completions":
            if self.chat is None:
                from openclaw_tw.web.chat_completions import ChatCompletions

                self.chat = ChatCompletions(self.app)
            return self.chat.handle, openai_compat.internal_error
        return None

    # -- probes --------------------------------------------------------------------------------

    def _detailed(self, request: Request) -> bool:
        ip = getattr(request.getClientAddress(), "host", "")
        if is_loopback_ip(ip) and not is_forwarded(web_header(request)):
            return True
        auth = request.getHeader(b"authorization") or b""
        if auth[:7].lower() == b"bearer ":
            secret = (self.gateway.auth_policy.secret or "").encode("utf-8")
            return bool(secret) and hmac.compare_digest(auth[7:].strip(), secret)
        return False

    def _probe(self, request: Request, path: bytes) -> bytes:
        gw = self.gateway
        if path in LIVE_PATHS:
            return _json_response(request, 200, {"ok": True, "status": "live"})
        ready = not gw.shutting_down
        status = 200 if ready else 503
        if path in READY_PATHS:
            if self._detailed(request):
                body: dict[str, Any] = {
                    "ready": ready,
                    "failing": [] if ready else ["shutdown"],
                    "uptimeMs": gw.uptime_ms(),
                    "eventLoop": gw.health.current()["eventLoop"],
                }
            else:
                body = {"ready": ready}
            return _json_response(request, status, body)
        body = {"ok": ready, "status": "started" if ready else "stopping"}
        if self._detailed(request):
            body["version"] = COMPAT_VERSION
            body["uptimeMs"] = gw.uptime_ms()
        return _json_response(request, status, body)

    # -- upgrade -------------------------------------------------------------------------------

    def _upgrade(self, request: Request) -> Any:
        # An upgrade split across reads (one in a single read never gets here: web/site.py);
        # the hub's checks run when Autobahn calls GatewayProtocol.onConnect.  The socket now
        # belongs to the WebSocket protocol: stop HTTPChannel's idle timer, which would
        # otherwise fire on a channel whose transport has been taken away.
        request.channel.setTimeout(None)
        return self.ws.render(request)
