"""The Control UI on the gateway port: the real OpenClaw single-page app, served as the real
gateway serves it (``control-ui.ts``, ``control-ui-static.ts``, ``control-ui-routing.ts``).

Routing.  ``GatewayRoot`` asks us last, after the probes, hooks and the HTTP API, as the
reference's request stages do; a path we do not claim falls through to the final 404.  With
no ``basePath`` we claim every GET/HEAD except ``/ui`` (404), the probes' namespaces, ``/api``,
``/v1``, ``/j``, ``/plugins`` and the gateway's ``/__openclaw__/`` service namespaces; with a
``basePath`` we claim ``<basePath>/…`` and redirect ``<basePath>`` to ``<basePath>/``.

Answers.
* ``index.html`` (``/``, any unmatched path whose ``Accept`` admits HTML -- the SPA fallback,
  and the standalone ``/approve/…`` and ``/focus…`` documents): the build's index with asset
  links anchored at the base path, the ``data-openclaw-*`` attributes the app reads, a CSP
  carrying the hashes of its inline scripts, ``Cache-Control: no-cache``, gzip on request.
* A file of the build: its type, ``no-cache`` (``immutable`` for a package build's hashed
  ``assets/`` and for versioned public assets asked for with ``?v=<build id>``),
  ``Last-Modified`` and 304s, and for package builds the ``.br``/``.gz`` sibling the client
  takes (``Vary: Accept-Encoding`` always).  A missing file with a static extension is a 404,
  never the app shell; a package build's ``.br``/``.gz`` files are not served by name.
* ``/control-ui-config.json`` (and its legacy aliases): the bootstrap config the app fetches,
  behind the gateway's HTTP bearer auth.
* No build found (or ``OPENCLAW_TW_CONTROL_UI=builtin``): our own dashboard
  (``web/dashboard/``, see ``ui_build``), served by the same code with the same guarantees.
  ``gateway.controlUi.root`` holding no build, or the dashboard's files missing: a 503 page
  saying so and how to fix it; while start-up discovery runs: 503 "being prepared" with
  ``Retry-After``.

Every answer carries the reference's Control UI security headers (``X-Frame-Options: DENY``,
a CSP with ``frame-ancestors 'none'``, ``nosniff``, ``no-referrer``, its permissions policy).
Request paths are normalized like a WHATWG URL (``.``/``..`` segments, ``%2e``, ``\\``),
percent-decoded strictly, and refused (404) when absolute, escaping the root, carrying NUL or
a backslash, or too long; what reaches the disk is checked again there (``ui_build``).
File work runs in the thread pool (``hub.run_blocking``); large files are streamed.

Parts.  This module holds the resource (``ControlUi``: state, answers, cache policy) and the
start-up service; ``ui_routes`` the pure routing and path safety, ``ui_document`` the CSP,
security headers and the prepared index, ``ui_stream`` the chunked file sender,
``ui_bootstrap`` ``/control-ui-config.json``; ``ui_build`` finds the build and opens its files,
``negotiate`` reads ``Accept``, ``Accept-Encoding`` and ``If-Modified-Since``.
"""

from __future__ import annotations

import hashlib
import html
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import datetimeToString
from twisted.web.server import NOT_DONE_YET, Request

from openclaw_tw.web import negotiate, ui_build
from openclaw_tw.web.http import gone, serve
from openclaw_tw.web.ui_bootstrap import bootstrap_config, config_error
from openclaw_tw.web.ui_build import Discovery, FileCache, NotAcceptable, Opened, UiBuild
from openclaw_tw.web.ui_document import (
    SECURITY_HEADERS,
    HtmlCache,
    IndexDoc,
    csp,
    inline_script_hashes,
    prepare_index,
)
from openclaw_tw.web.ui_routes import (
    Route,
    classify,
    extension,
    is_bootstrap_config,
    is_versioned,
    normalize_path,
    requested_file,
    safe_relative,
    too_long,
)
from openclaw_tw.web.ui_stream import FileStreamer

if TYPE_CHECKING:
    from openclaw_tw.hub.gateway import Gateway

_log = Logger(namespace="gateway/control-ui")

IMMUTABLE = "public, max-age=31536000, immutable"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "application/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".map": "application/json; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".wasm": "application/wasm",
    ".webmanifest": "application/manifest+json; charset=utf-8",
    ".woff2": "font/woff2",
}
COMPRESSIBLE = frozenset({".css", ".html", ".js", ".json", ".svg", ".txt", ".wasm",
                          ".webmanifest"})
NO_BUILD_TEXT = (
    "No Control UI build was found. Set gateway.controlUi.root to a directory holding a "
    "Control UI build (its index.html and assets/), or install the openclaw npm package "
    "(npm install -g openclaw) so its dist/control-ui is served, then restart the gateway.")
PREPARING_TEXT = "Control UI assets are being prepared. Try again shortly."


# -- state -----------------------------------------------------------------------------------


PREPARING = "preparing"
NOT_STARTED = "not-started"  # no discovery asked for (a tree built without the service): no UI


class ControlUi:
    """The Control UI's part of the gateway's HTTP tree (asked by ``GatewayRoot`` last)."""

    def __init__(self, hub: Gateway) -> None:
        self.hub = hub
        settings = hub.settings
        self.base = settings.control_ui_base_path  # restart-only, as in the reference
        self.configured_root = settings.control_ui_root
        self.dashboard_root = ui_build.DASHBOARD_ROOT
        self.state: Discovery | str = NOT_STARTED
        self.files = FileCache()
        self._html = HtmlCache()

    # -- discovery ---------------------------------------------------------------------------

    @property
    def build(self) -> UiBuild | None:
        return self.state.build if isinstance(self.state, Discovery) else None

    def discover(self, env: dict[str, str]) -> Deferred[Discovery]:
        """Find the build off the reactor, then serve it and say so in the log (503 "being
        prepared" meanwhile)."""
        self.state = PREPARING
        d: Deferred[Discovery] = self.hub.run_blocking(
            ui_build.discover, self.configured_root, env, ui_build.NPM_TIMEOUT_S, self.dashboard_root)
        d.addCallback(self._discovered)
        return d

    def _discovered(self, found: Discovery) -> Discovery:
        self.state = found
        build = found.build
        if build is not None and build.builtin:
            _log.info("control UI: serving the built-in dashboard on {base}/ ({found_by}; "
                      "looked: {looked})", found_by=build.found_by,
                      looked="; ".join(found.looked), base=self.base)
        elif build is not None:
            what = f"openclaw {build.version} package" if build.version else "configured"
            _log.info("control UI: serving the {what} build at {path} (found via {found_by}; "
                      "build {build_id}) on {base}/", what=what, path=str(build.root),
                      found_by=build.found_by, build_id=build.build_id or "-",
                      base=self.base)
        elif found.invalid_root is not None:
            _log.warn("control UI: gateway.controlUi.root {path} holds no index.html; the UI "
                      "path answers 503 until it does (restart after fixing it)",
                      path=str(found.invalid_root))
        else:
            _log.warn("control UI: no Control UI build found (looked: {looked}); {base}/ "
                      "answers a page saying how to get one", looked="; ".join(found.looked),
                      base=self.base)
        return found

    # -- requests ----------------------------------------------------------------------------

    def render(self, request: Request) -> Any:
        """Answer ``request`` (bytes or ``NOT_DONE_YET``), or ``None`` when it is not ours."""
        if not self.hub.settings.control_ui_enabled or self.state == NOT_STARTED:
            return None
        path = normalize_path(request.path)
        query = request.uri.partition(b"?")[2].decode("latin-1")
        accept = _header(request, b"accept")
        route = classify(self.base, path, request.method, accept, query)
        if route is None:
            return None
        for name, value in SECURITY_HEADERS:
            request.setHeader(name, value)
        if route.kind == "not-found":
            return _plain(request, 404, "Not Found")
        if route.kind == "redirect":
            request.setResponseCode(302)
            request.setHeader(b"Location", route.location.encode("latin-1"))
            request.setHeader(b"Content-Length", b"0")
            return b""
        if is_bootstrap_config(self.base, path):
            return serve(request, lambda r: bootstrap_config(r, self.hub, self.base),
                         config_error)
        state = self.state
        if state == PREPARING:
            request.setHeader(b"Cache-Control", b"no-store")
            request.setHeader(b"Retry-After", b"1")
            return _plain(request, 503, PREPARING_TEXT)
        assert isinstance(state, Discovery)
        if state.build is None:
            return self._no_build(request, state, accept)
        return self._serve_build(request, state.build, path, query, route)

    def _no_build(self, request: Request, state: Discovery, accept: str | None) -> bytes:
        request.setHeader(b"Cache-Control", b"no-store")
        text = NO_BUILD_TEXT
        if state.invalid_root is not None:
            text = (f"No Control UI build at {state.invalid_root} (gateway.controlUi.root): it "
                    "needs an index.html. Point gateway.controlUi.root at a Control UI build, "
                    "or remove it to serve the build of an installed openclaw npm package "
                    "(npm install -g openclaw), then restart the gateway.")
        if not negotiate.accepts_html(accept):
            return _plain(request, 503, text)
        page = (
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>OpenClaw Control UI not found</title></head><body>"
            "<h1>No Control UI build found</h1>"
            f"<p>{html.escape(text)}</p>"
            "<p>The gateway itself is running: its WebSocket and HTTP API are on this port.</p>"
            "</body></html>\n")
        request.setResponseCode(503)
        request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
        return _sized(request, page.encode("utf-8"))

    # -- files -------------------------------------------------------------------------------

    def _serve_build(self, request: Request, build: UiBuild, path: str, query: str,
                     route: Route) -> Any:
        share = f"{self.base}/share"
        if (path == share or path.startswith(share + "/")) and path != share + "/card.png":
            return _plain(request, 404, "Not Found")  # no public share documents here
        encoded = requested_file(self.base, path)
        rel = safe_relative(encoded)
        if rel is None:
            return _plain(request, 404, "Not Found")
        ext = extension(rel)
        if build.bundled and ext in (".br", ".gz"):
            return _plain(request, 404, "Not Found")
        fingerprinted = build.bundled and rel.startswith("assets/")
        version = (parse_qs(query).get("v") or [None])[0]
        immutable = fingerprinted or bool(build.bundled and build.build_id and
                                          version == build.build_id and is_versioned(rel))
        is_index = rel.rsplit("/", 1)[-1] == "index.html"
        accept_encoding = _header(request, b"accept-encoding")
        precompressed = fingerprinted and ext in COMPRESSIBLE
        encodings = negotiate.content_encodings(
            accept_encoding, {"br", "gzip"} if precompressed else set())

        def lookup() -> Opened | str | None:
            if rel == "index.html":
                return "index"  # served as the app shell whatever the Accept header says
            if is_index or too_long(rel):
                return None
            try:
                return ui_build.open_file(build, rel, encodings, self.files, precompressed)
            except NotAcceptable:
                return "not-acceptable"

        d = self.hub.run_blocking(lookup)
        d.addCallback(self._answer_file, request, build, rel, ext, route, immutable)
        d.addErrback(self._failed, request)
        return NOT_DONE_YET

    def _answer_file(self, opened: Opened | str | None, request: Request, build: UiBuild,
                     rel: str, ext: str, route: Route, immutable: bool) -> Any:
        if gone(request):
            _close(opened)
            return None
        if opened == "not-acceptable":
            return _finish(request, _not_acceptable(request))
        if opened == "index":
            return self._send_index(request, build)
        if isinstance(opened, Opened):
            return self._send_file(request, opened, rel, ext, immutable)
        if ext in CONTENT_TYPES and ext != ".html":  # a missing asset: 404, not the shell
            return _finish(request, _plain(request, 404, "Not Found"))
        if not route.spa_fallback:
            return _finish(request, _plain(request, 404, "Not Found"))
        return self._send_index(request, build)

    def _send_file(self, request: Request, opened: Opened, rel: str, ext: str,
                   immutable: bool) -> Any:
        now = self.hub.clock.seconds()
        last_modified = int(min(opened.mtime, now))
        cache_control = IMMUTABLE if immutable else "no-cache"
        if request.method in (b"GET", b"HEAD") and _unmodified(request, last_modified, now):
            _close(opened)
            request.setResponseCode(304)
            request.setHeader(b"Cache-Control", cache_control.encode())
            request.setHeader(b"Last-Modified", datetimeToString(last_modified))
            request.setHeader(b"Vary", b"Accept-Encoding")
            return _finish(request, b"")
        request.setResponseCode(200)
        request.setHeader(b"Content-Type",
                          CONTENT_TYPES.get(ext, "application/octet-stream").encode())
        request.setHeader(b"Cache-Control", cache_control.encode())
        request.setHeader(b"Last-Modified", datetimeToString(last_modified))
        request.setHeader(b"Vary", b"Accept-Encoding")
        if ext in COMPRESSIBLE and opened.encoding != "identity":
            request.setHeader(b"Content-Encoding", opened.encoding.encode())
        request.setHeader(b"Content-Length", str(opened.size).encode())
        if request.method == b"HEAD" or opened.fd is None:
            _close(opened)
            if request.method != b"HEAD":
                request.write(opened.data or b"")
            request.finish()
            return None
        FileStreamer(self.hub, request, opened.fd, opened.size).start()
        return None

    def _send_index(self, request: Request, build: UiBuild) -> Any:
        encodings = negotiate.content_encodings(_header(request, b"accept-encoding"), {"gzip"})
        if not encodings:
            return _finish(request, _not_acceptable(request))
        encoding = encodings[0]
        if request.method == b"HEAD":
            d = self.hub.run_blocking(ui_build.exists, build, "index.html")
        else:
            d = self.hub.run_blocking(self._index_doc, build, encoding == "gzip")

        def send(doc: IndexDoc | bool) -> None:
            if gone(request):
                return
            if doc is False:
                _finish(request, _plain(request, 404, "Not Found"))
                return
            request.setResponseCode(200)
            request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
            request.setHeader(b"Cache-Control", b"no-cache")
            request.setHeader(b"Vary", b"Accept-Encoding")
            if encoding != "identity":
                request.setHeader(b"Content-Encoding", encoding.encode())
            if isinstance(doc, IndexDoc):
                request.setHeader(b"Content-Security-Policy", csp(
                    doc.hashes, portal_host=_header(request, b"host")).encode())
                body = doc.gzipped if encoding == "gzip" and doc.gzipped else doc.body
                request.setHeader(b"Content-Length", str(len(body)).encode())
                request.write(body)
            request.finish()

        d.addCallback(send)
        d.addErrback(self._failed, request)
        return None

    def _index_doc(self, build: UiBuild, want_gzip: bool) -> IndexDoc | bool:
        """Blocking: the prepared index (cached per source file and base path)."""
        opened = ui_build.open_file(build, "index.html", ["identity"], self.files, False)
        if opened is None or opened.data is None:
            _close(opened)
            return False
        source = opened.data
        key = (opened.path, hashlib.sha256(source).digest(), self.base, build.build_id)

        def make() -> IndexDoc:
            import gzip  # with the first index served (~0.1 MiB otherwise idle)

            text = prepare_index(source.decode("utf-8", "replace"), self.base,
                                 build.build_id if build.bundled else None)
            body = text.encode("utf-8")
            return IndexDoc(body, inline_script_hashes(text),
                            gzip.compress(body, compresslevel=6, mtime=0))

        return self._html.get_or_make(key, make)

    def _failed(self, failure: Failure, request: Request) -> None:
        _log.failure("control UI: {path} failed", failure, path=request.path.decode("latin-1"))
        if gone(request) or request.startedWriting:
            if not gone(request):
                request.finish()
            return
        _finish(request, _plain(request, 500, "Internal Server Error"))


# -- helpers ---------------------------------------------------------------------------------


def _header(request: Request, name: bytes) -> str | None:
    value = request.getHeader(name)
    return None if value is None else value.decode("latin-1")


def _sized(request: Request, body: bytes) -> bytes:
    request.setHeader(b"Content-Length", str(len(body)).encode())
    return b"" if request.method == b"HEAD" else body


def _plain(request: Request, status: int, text: str) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
    return _sized(request, text.encode("utf-8"))


def _not_acceptable(request: Request) -> bytes:
    request.setHeader(b"Cache-Control", b"no-store")
    request.setHeader(b"Vary", b"Accept-Encoding")
    return _plain(request, 406, "Not Acceptable")


def _finish(request: Request, body: bytes) -> None:
    if gone(request):
        return
    if body:
        request.write(body)
    request.finish()


def _close(opened: Any) -> None:
    if isinstance(opened, Opened) and opened.fd is not None:
        try:
            os.close(opened.fd)
        except OSError:
            pass


def _unmodified(request: Request, last_modified: float, now: float) -> bool:
    """The reference revalidates without entity tags: ``If-None-Match: *``, or
    ``If-Modified-Since`` at or after the last modification."""
    inm = _header(request, b"if-none-match")
    if inm is not None:
        return inm.strip() == "*"
    ims = request.requestHeaders.getRawHeaders(b"if-modified-since") or []
    if len(ims) != 1:
        return False
    return negotiate.not_modified_since(ims[0].decode("latin-1"), last_modified, now)


class ControlUiDiscovery(Service):
    """Start-up: find the Control UI build (off the reactor) before the port opens; until
    it is found the UI path answers 503 "being prepared"."""

    name = "control-ui"

    def __init__(self, ui: ControlUi, env: dict[str, str]) -> None:
        self.ui, self.env = ui, env

    def startService(self) -> None:
        super().startService()
        self.ui.discover(self.env).addErrback(
            lambda f: _log.failure("control UI: discovery failed", f))
