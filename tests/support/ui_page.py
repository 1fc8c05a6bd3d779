"""The browser tier's shared parts: our gateway as a ``twistd openclaw`` child on a loopback
port (its own HOME, the reference package's Control UI build), Chromium's launch arguments, and
``Session``, the recorder of what the real Control UI did in the page (WebSocket requests and
their answers, HTTP errors, console errors, document loads)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from openclaw_tw.web.ui_build import reference_package
from tests.support.gateway_subprocess import GatewaySubprocess

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # the dev extra brings it; without it the browser tier skips
    sync_playwright = None

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
TWISTD = "from twisted.scripts.twistd import run; run()"
START_TIMEOUT_S = 30.0
# What the UI shows when something went wrong: error callouts and banners, toasts.
ALERTS = (".callout.danger:visible, .oc-banner-error:visible, .app-toast:visible, "
          ".chat-notice--danger:visible")
NAVIGATE = ("(path) => { history.pushState({}, '', path); "
            "dispatchEvent(new PopStateEvent('popstate', {state: {}})); }")


def why_skip() -> str | None:
    if sync_playwright is None:
        return "playwright is not installed (pip install -e '.[dev]')"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    build = reference_package(os.environ) / "dist" / "control-ui" / "index.html"
    if not build.is_file():
        return (f"the reference package's Control UI build is missing ({build}); run "
                "`bash scripts/install-openclaw-reference.sh`")
    return None


class GatewayChild(GatewaySubprocess):
    """Our gateway (``tests/support/gateway_subprocess.py``) serving the reference package's
    Control UI build: HOME ``dir/home``, the config file ``config`` when given."""

    def __init__(self, dir: Path, port: int, token: str, config: Path | None = None) -> None:
        super().__init__(dir / "home", port, token,
                         json.loads(config.read_text()) if config is not None else None,
                         env={"OPENCLAW_REF_DIR": str(reference_package(os.environ).parents[2])})


class Session:
    """What the page did: WebSocket requests and their answers, HTTP errors, console errors."""

    def __init__(self) -> None:
        self.pending: dict[str, str] = {}  # request id -> method
        self.http_pending: set[Any] = set()  # HTTP requests in flight (lazy chunks, config)
        self.calls: list[dict[str, Any]] = []  # {method, ok, error?} in request order
        self.hello: dict[str, Any] | None = None
        self.http_errors: list[dict[str, Any]] = []
        self.console_errors: list[str] = []
        self.documents = 0
        self.sockets: list[str] = []
        self.last_request = time.monotonic()
        self.route = "/"  # the route the next requests belong to

    def open(self, page: Any, url: str, timeout_s: float) -> None:
        """Record ``page`` from now on, load ``url`` and wait (bounded) for hello-ok."""
        page.on("websocket", self.on_websocket)
        page.on("response", self.on_response)
        page.on("request", self.on_request)
        page.on("requestfinished", self.on_request_done)
        page.on("requestfailed", self.on_request_done)
        page.on("console", self.on_console)
        page.goto(url, wait_until="domcontentloaded", timeout=timeout_s * 1000)
        deadline = time.monotonic() + timeout_s
        while self.hello is None and time.monotonic() < deadline:
            page.wait_for_timeout(200)

    def on_websocket(self, ws: Any) -> None:
        self.sockets.append(ws.url)
        ws.on("framesent", self._sent)
        ws.on("framereceived", self._received)

    def _sent(self, payload: Any) -> None:
        frame = _json(payload)
        if frame and frame.get("type") == "req":
            self.pending[str(frame.get("id"))] = str(frame.get("method"))
            self.calls.append({"id": str(frame.get("id")), "method": frame.get("method"),
                               "route": self.route})
            self.last_request = time.monotonic()

    def _received(self, payload: Any) -> None:
        frame = _json(payload)
        if not frame or frame.get("type") != "res":
            return
        method = self.pending.pop(str(frame.get("id")), None)
        for call in self.calls:
            if call["id"] == str(frame.get("id")) and "ok" not in call:
                call["ok"] = bool(frame.get("ok"))
                if not frame.get("ok"):
                    err = frame.get("error") or {}
                    call["error"] = f"{err.get('code')}: {err.get('message')}"
                break
        payload_ = frame.get("payload") or {}
        if method == "connect" and frame.get("ok") and payload_.get("type") == "hello-ok":
            self.hello = payload_

    def on_response(self, response: Any) -> None:
        if response.status >= 400:
            self.http_errors.append({"status": response.status, "method":
                                     response.request.method, "url": response.url})

    def on_request(self, request: Any) -> None:
        if request.resource_type == "document" and request.frame.parent_frame is None:
            self.documents += 1
        self.http_pending.add(request)
        self.last_request = time.monotonic()

    def on_request_done(self, request: Any) -> None:
        self.http_pending.discard(request)

    @property
    def busy(self) -> bool:
        """A WebSocket request unanswered or an HTTP request (a lazy chunk) in flight."""
        return bool(self.pending or self.http_pending)

    def on_console(self, message: Any) -> None:
        if message.type == "error":
            self.console_errors.append(message.text[:300])

    def report(self) -> dict[str, Any]:
        failed = [c for c in self.calls if c.get("ok") is False]
        unanswered = [c["method"] for c in self.calls if "ok" not in c]
        return {
            "sockets": self.sockets,
            "documentLoads": self.documents,
            "hello": None if self.hello is None else {
                "server": self.hello.get("server"),
                "methods": len((self.hello.get("features") or {}).get("methods") or [])},
            "calls": [{k: v for k, v in c.items() if k != "id"} for c in self.calls],
            "failed": [{"method": c["method"], "route": c["route"], "error": c["error"]}
                       for c in failed],
            "unanswered": unanswered,
            "httpErrors": self.http_errors,
            "consoleErrors": self.console_errors,
        }


def _json(payload: Any) -> dict[str, Any] | None:
    try:
        value = json.loads(payload)
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None
