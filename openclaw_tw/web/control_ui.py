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
* No build (none found, or ``gateway.controlUi.root`` holds none): a 503 page saying so and how
  to get one; while start-up discovery runs: 503 "being prepared" with ``Retry-After``.

Every answer carries the reference's Control UI security headers (``X-Frame-Options: DENY``,
a CSP with ``frame-ancestors 'none'``, ``nosniff``, ``no-referrer``, its permissions policy).
Request paths are normalized like a WHATWG URL (``.``/``..`` segments, ``%2e``, ``\\``),
percent-decoded strictly, and refused (404) when absolute, escaping the root, carrying NUL or
a backslash, or too long; what reaches the disk is checked again there (``ui_build``).
File work runs in the thread pool (``hub.run_blocking``); large files are streamed.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import os
import posixpath
import re
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote_to_bytes

import attrs
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import datetimeToString
from twisted.web.server import NOT_DONE_YET, Request
from zope.interface import implementer

from openclaw_tw import _json
from openclaw_tw.hub.hello import COMPAT_VERSION
from openclaw_tw.web import negotiate, ui_build
from openclaw_tw.web.auth import require_bearer
from openclaw_tw.web.http import HttpError, bearer_token, gone, serve
from openclaw_tw.web.ui_build import Discovery, FileCache, NotAcceptable, Opened, UiBuild

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
# Served at the root of any mount (and under /__openclaw__/).
ROOT_PUBLIC_ASSETS = ("apple-touch-icon.png", "favicon-32.png", "favicon.ico", "favicon.svg",
                      "manifest.webmanifest", "sw.js")
_VERSIONED = re.compile(
    r"^(?:fonts/[^/]+\.(?:css|woff2)|themes/[^/]+\.css|(?:provider-icons|cloud-provider-icons|"
    r"file-icons(?:/[^/]+)*)/[^/]+\.svg|(?:app-art|community-art)/[^/]+\.webp)$")
NAMESPACE = "/__openclaw__/"
BOOTSTRAP_CONFIG = "/control-ui-config.json"
PROBE_ROOTS = ("/health", "/healthz", "/ready", "/readyz", "/startup", "/startupz")
# /__openclaw__/ services of the real gateway that are not the UI (none served here).
SERVICE_NAMESPACES = ("/__openclaw__/mcp-app", "/__openclaw__/worker",
                      "/__openclaw__/worker-transfer")
BASE_PATH_ATTRIBUTE = "data-openclaw-control-ui-base-path"
TERMINAL_ATTRIBUTE = "data-openclaw-terminal-enabled"
READ_SCOPES = ("operator.read", "operator.write", "operator.admin")
MAX_PATH = 4096  # a longer decoded path is never a file of the build
HTML_CACHE_ENTRIES = 4

UI_PERMISSIONS = "camera=(self), microphone=*, geolocation=*, clipboard-write=*"
NO_BUILD_TEXT = (
    "No Control UI build was found. Set gateway.controlUi.root to a directory holding a "
    "Control UI build (its index.html and assets/), or install the openclaw npm package "
    "(npm install -g openclaw) so its dist/control-ui is served, then restart the gateway.")
PREPARING_TEXT = "Control UI assets are being prepared. Try again shortly."


def csp(inline_hashes: tuple[str, ...] = (), allow_wasm: bool = False,
        portal_host: str | None = None) -> str:
    """The Content-Security-Policy of Control UI answers (``buildControlUiCspHeader``)."""
    script = ["'self'", *(f"'{h}'" for h in inline_hashes)]
    if allow_wasm:
        script.append("'wasm-unsafe-eval'")
    connect = ["'self'", "ws:", "wss:", "data:", "https://api.openai.com", "https://tweakcn.com"]
    hostname = _portal_hostname(portal_host)
    if hostname:
        connect += [f"http://{hostname}:*", f"https://{hostname}:*"]
    return "; ".join([
        "default-src 'self'", "base-uri 'none'", "object-src 'none'", "frame-ancestors 'none'",
        "frame-src 'self' http: https:", f"script-src {' '.join(script)}",
        "style-src 'self' 'unsafe-inline' https://fonts.googleapis.com",
        "img-src 'self' data: blob: https:", "media-src 'self' data: blob:",
        "font-src 'self' https://fonts.gstatic.com", "worker-src 'self'",
        f"connect-src {' '.join(connect)}",
    ])


_HOST_RE = re.compile(r"^(?P<name>[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?|\[[0-9a-f:.]+\])"
                      r"(?::\d{1,5})?$")


def _portal_hostname(host: str | None) -> str | None:
    """The Host header's name when it is a plain host[:port] (nothing that could smuggle
    another CSP directive)."""
    m = _HOST_RE.match((host or "").strip().lower())
    return m.group("name") if m else None


DEFAULT_CSP = csp()
SECURITY_HEADERS = (
    (b"X-Content-Type-Options", b"nosniff"),
    (b"Referrer-Policy", b"no-referrer"),
    (b"Permissions-Policy", UI_PERMISSIONS.encode()),
    (b"X-Frame-Options", b"DENY"),
    (b"Content-Security-Policy", DEFAULT_CSP.encode()),
)


# -- routing ---------------------------------------------------------------------------------


def normalize_path(raw: bytes) -> str:
    """The request path as a WHATWG URL parser leaves it: backslashes are slashes and ``.``
    and ``..`` segments (also as ``%2e``) are resolved; still percent-encoded."""
    text = raw.decode("latin-1").replace("\\", "/")
    if not text.startswith("/"):
        text = "/" + text
    out: list[str] = []
    segments = text.split("/")[1:]
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        low = seg.lower()
        if low in (".", "%2e"):
            if last:
                out.append("")
        elif low in ("..", ".%2e", "%2e.", "%2e%2e"):
            if out:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(seg)
    return "/" + "/".join(out)


@attrs.frozen
class Route:
    kind: str  # "serve" | "not-found" | "redirect"
    spa_fallback: bool = False
    location: str = ""


def classify(base: str, path: str, method: bytes, accept: str | None, query: str) -> Route | None:
    """Does the Control UI answer this request (``None``: no, fall through)?"""
    read = method in (b"GET", b"HEAD")
    spa = accepts_html = negotiate.accepts_html(accept)
    if read and path in (f"{base}/settings/plugins", f"{base}/settings/plugins/"):
        spa = True
    if not base:
        if path == "/ui" or path.startswith("/ui/"):
            return Route("not-found")
        for root in PROBE_ROOTS + SERVICE_NAMESPACES:
            if path == root or path.startswith(root + "/"):
                return None
        if path == "/plugins" or path.startswith("/plugins/"):
            if not (path in ("/plugins", "/plugins/") and read and accepts_html):
                return None
        for root in ("/api", "/j", "/v1"):
            if path == root or path.startswith(root + "/"):
                return None
        return Route("serve", spa) if read else None
    if path != base and not path.startswith(base + "/"):
        return None
    if not read:
        return None
    if path == base:
        return Route("redirect", location=f"{base}/{'?' + query if query else ''}")
    return Route("serve", spa)


def safe_relative(encoded: str) -> str | None:
    """Percent-decode a relative file path strictly; ``None`` when it is malformed, not UTF-8,
    absolute (POSIX or Windows), escapes upwards, or holds NUL or a backslash."""
    if re.search(r"%(?![0-9A-Fa-f]{2})", encoded):
        return None
    try:
        rel = unquote_to_bytes(encoded).decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not rel or "\0" in rel or "\\" in rel:
        return None
    if rel.startswith("/") or re.match(r"^[A-Za-z]:", rel):
        return None
    normalized = posixpath.normpath(rel)
    if normalized == ".." or normalized.startswith("../") or normalized.startswith("/"):
        return None
    return normalized


def too_long(rel: str) -> bool:
    """No file of a build has a path this long: answered without asking the disk (the SPA
    fallback still applies, as when the reference's lookup fails with ENAMETOOLONG)."""
    return len(rel.encode()) > MAX_PATH or any(len(p.encode()) > 255 for p in rel.split("/"))


def _standalone_document(base: str, path: str) -> bool:
    approve = f"{base}/approve"
    if path in (approve, approve + "/"):
        return True
    if path.startswith(approve + "/"):
        rest = path[len(approve) + 1:]
        return bool(rest) and "/" not in rest
    focus = f"{base}/focus"
    trimmed = path.rstrip("/") or "/"
    return trimmed == focus or trimmed.startswith(focus + "/")


def requested_file(base: str, path: str) -> str:
    """The build-relative (still encoded) file a UI path names (``controlUiHttpRequest``)."""
    if _standalone_document(base, path):
        return "index.html"
    ui_path = path[len(base):] if base and path.startswith(base + "/") else path
    if ui_path == "/share/card.png":
        rel = "social-card.png"
    elif ui_path == "/":
        rel = ""
    elif ui_path.startswith(NAMESPACE) and ui_path[len(NAMESPACE):] in ROOT_PUBLIC_ASSETS:
        rel = ui_path[len(NAMESPACE):]
    elif "/assets/" in ui_path:
        rel = ui_path[ui_path.index("/assets/") + 1:]
    else:
        rel = ui_path[1:]
    return rel if rel and not rel.endswith("/") else rel + "index.html"


def _ext(rel: str) -> str:
    name = rel.rsplit("/", 1)[-1]
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def _is_versioned(rel: str) -> bool:
    return (rel in ROOT_PUBLIC_ASSETS and rel != "sw.js") or bool(_VERSIONED.match(rel))


# -- the index document ----------------------------------------------------------------------


_SCRIPT_RE = re.compile(r"<script(?:\s[^>]*)?>(.*?)</script>", re.IGNORECASE | re.DOTALL)
_ATTR_NAME_RE = re.compile(r"""\s([^\s=/>]+)(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+))?""")
_HTML_TAG_RE = re.compile(r"<html\b[^>]*>", re.IGNORECASE)


def inline_script_hashes(text: str) -> tuple[str, ...]:
    out = []
    for m in _SCRIPT_RE.finditer(text):
        open_tag = m.group(0)[: m.group(0).index(">") + 1]
        if any(a.group(1).lower() == "src" for a in _ATTR_NAME_RE.finditer(open_tag)):
            continue
        if m.group(1):
            digest = hashlib.sha256(m.group(1).encode("utf-8")).digest()
            out.append("sha256-" + base64.b64encode(digest).decode("ascii"))
    return tuple(out)


def prepare_index(text: str, base: str, build_id: str | None, terminal: bool = False) -> str:
    """The build's index as served: asset links anchored at the base path (public assets
    versioned with the build id), and the ``<html>`` attributes the app reads at boot."""
    repl = {'src="./assets/': f'src="{base}/assets/', 'href="./assets/': f'href="{base}/assets/'}
    for asset in ROOT_PUBLIC_ASSETS:
        version = f"?v={_encode_component(build_id)}" if build_id and _is_versioned(asset) \
            else ""
        target = f'href="{base}/{asset}{version}"'
        for src in (f'href="./{asset}"', f'href="/{asset}"', f'href="{base}/{asset}"'):
            repl[src] = target
    pattern = re.compile("|".join(re.escape(k) for k in repl))
    text = pattern.sub(lambda m: repl[m.group(0)], text)
    attrs_ = f' {BASE_PATH_ATTRIBUTE}="{html.escape(base)}" ' \
             f'{TERMINAL_ATTRIBUTE}="{"true" if terminal else "false"}"'
    if build_id:
        attrs_ += f' {ui_build.BUILD_ID_ATTRIBUTE}="{html.escape(build_id)}"'
    strip = re.compile(r"\s" + re.escape(ui_build.BUILD_ID_ATTRIBUTE) + r'="[^"]*"')

    def tag(m: re.Match[str]) -> str:
        return re.sub(r"^<html", lambda _: "<html" + attrs_, strip.sub("", m.group(0)),
                      flags=re.IGNORECASE)

    return _HTML_TAG_RE.sub(tag, text, count=1)


def _encode_component(value: str) -> str:
    """``encodeURIComponent``."""
    return quote(value, safe="-_.!~*'()")


@attrs.frozen
class IndexDoc:
    body: bytes
    hashes: tuple[str, ...]
    gzipped: bytes | None


class _HtmlCache:
    """The last few prepared index documents (keyed by the source bytes' identity)."""

    def __init__(self) -> None:
        self._items: OrderedDict[tuple[Any, ...], IndexDoc] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_make(self, key: tuple[Any, ...], make: Any) -> IndexDoc:
        with self._lock:
            doc = self._items.get(key)
            if doc is not None:
                self._items.move_to_end(key)
                return doc
        doc = make()
        with self._lock:
            self._items[key] = doc
            while len(self._items) > HTML_CACHE_ENTRIES:
                self._items.popitem(last=False)
        return doc


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
        self.state: Discovery | str = NOT_STARTED
        self.files = FileCache()
        self._html = _HtmlCache()

    # -- discovery ---------------------------------------------------------------------------

    @property
    def build(self) -> UiBuild | None:
        return self.state.build if isinstance(self.state, Discovery) else None

    def discover(self, env: dict[str, str]) -> Deferred[Discovery]:
        """Find the build off the reactor, then serve it and say so in the log (503 "being
        prepared" meanwhile)."""
        self.state = PREPARING
        d: Deferred[Discovery] = self.hub.run_blocking(ui_build.discover, self.configured_root,
                                                       env)
        d.addCallback(self._discovered)
        return d

    def _discovered(self, found: Discovery) -> Discovery:
        self.state = found
        build = found.build
        if build is not None:
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
        if self._is_bootstrap_config(path):
            return serve(request, self._bootstrap_config, _config_error)
        state = self.state
        if state == PREPARING:
            request.setHeader(b"Cache-Control", b"no-store")
            request.setHeader(b"Retry-After", b"1")
            return _plain(request, 503, PREPARING_TEXT)
        assert isinstance(state, Discovery)
        if state.build is None:
            return self._no_build(request, state, accept)
        return self._serve_build(request, state.build, path, query, route)

    def _is_bootstrap_config(self, path: str) -> bool:
        base = self.base
        if path in (f"{base}{BOOTSTRAP_CONFIG}", f"{base}/__openclaw{BOOTSTRAP_CONFIG}"):
            return True
        return not base and path == f"/__openclaw__{BOOTSTRAP_CONFIG}"

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
        ext = _ext(rel)
        if build.bundled and ext in (".br", ".gz"):
            return _plain(request, 404, "Not Found")
        fingerprinted = build.bundled and rel.startswith("assets/")
        version = (parse_qs(query).get("v") or [None])[0]
        immutable = fingerprinted or bool(build.bundled and build.build_id and
                                          version == build.build_id and _is_versioned(rel))
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
        _FileStreamer(self.hub, request, opened.fd, opened.size).start()
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

    # -- /control-ui-config.json -------------------------------------------------------------

    def _device_token_reads(self, request: Request) -> bool:
        """A paired operator device's token (the UI's first try after hello-ok) may read."""
        offered = bearer_token(request)
        authority = getattr(self.hub, "devices", None)
        if offered is None or authority is None:
            return False
        for dev in list(authority.store.devices.values()):
            token = dev.tokens.get("operator")
            if token is not None and token.matches(offered):
                return any(s in token.scopes for s in READ_SCOPES)
        return False

    async def _bootstrap_config(self, request: Request) -> bytes:
        """The app's bootstrap config, for the shared secret or a device token (the
        reference's ``authorizeControlUiReadRequestOrReply``)."""
        gw = self.hub
        if not self._device_token_reads(request):
            await require_bearer(request, gw)
        request.setResponseCode(200)
        request.setHeader(b"Content-Type", b"application/json; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-cache")
        if request.method == b"HEAD":
            return b""
        cfg = gw.settings.raw
        ui = ((cfg.get("gateway") or {}).get("controlUi") or {}) if isinstance(cfg, dict) \
            else {}
        sandbox = ui.get("embedSandbox")
        body = {
            "basePath": self.base,
            "assistantName": "Assistant",
            "assistantAvatar": "A",
            "assistantAvatarSource": None,
            "assistantAvatarStatus": None,
            "assistantAvatarReason": None,
            "assistantAgentId": "main",
            "serverVersion": COMPAT_VERSION,
            # no serverBuildId: the build served is not ours (as with a configured root)
            "embedSandbox": sandbox if sandbox in ("trusted", "strict") else "scripts",
            "allowExternalEmbedUrls": ui.get("allowExternalEmbedUrls") is True,
            "automaticallyFetchFavicons": ui.get("automaticallyFetchFavicons") is not False,
            "communityInvite": ui.get("communityInvite") is not False,
            "terminalEnabled": False,   # no terminal here (the index says the same)
            "cliAgentsEnabled": False,  # no CLI agents here
            "pluginAssetsRequireAuth": gw.settings.auth_mode != "none",
            "pluginFrameGrants": [],
        }
        return _json.dumps(body)


def _config_error() -> HttpError:
    return HttpError(500, "Internal Server Error")


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


@implementer(IPushProducer)
class _FileStreamer:
    """Streams a large file: each chunk is read in the thread pool and written when it
    arrives; the transport's pause/resume paces the reads, so neither a slow disk nor a slow
    client holds the reactor or buffers the file in memory."""

    def __init__(self, hub: Gateway, request: Request, fd: int, size: int) -> None:
        self.hub, self.request, self.fd, self.size = hub, request, fd, size
        self.offset = 0
        self.busy = self.paused = self.closed = False

    def start(self) -> None:
        self.request.registerProducer(self, True)
        self.request.notifyFinish().addBoth(lambda _: self._close())
        self._next()

    def _next(self) -> None:
        if self.busy or self.paused or self.closed:
            return
        self.busy = True
        d = self.hub.run_blocking(ui_build.read_chunk, self.fd, self.offset)
        d.addCallbacks(self._got, self._failed)

    def _got(self, data: bytes) -> None:
        self.busy = False
        if self.closed or gone(self.request):
            self._close()
            return
        self.offset += len(data)
        done = not data or self.offset >= self.size
        if done:
            self._close()
        if data:
            self.request.write(data)
        if done:
            self.request.unregisterProducer()
            self.request.finish()
        else:
            self._next()

    def _failed(self, failure: Failure) -> None:
        self.busy = False
        _log.failure("control UI: reading a file failed", failure)
        self._close()
        if not gone(self.request):
            self.request.unregisterProducer()
            self.request.loseConnection()

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self._next()

    def stopProducing(self) -> None:
        self._close()

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                os.close(self.fd)
            except OSError:
                pass


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
