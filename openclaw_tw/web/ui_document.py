"""The Control UI's documents: the index as served and the headers every UI answer carries.

The reference's Control UI security headers and Content-Security-Policy (``csp``; the index's
adds the hashes of its inline scripts and the portal host), the build's ``index.html``
rewritten for the mount (``prepare_index``: asset links anchored at the base path, public
assets versioned with the build id, the ``data-openclaw-*`` attributes the app reads), and a
small cache of prepared indexes (``HtmlCache``; it is filled in the thread pool).
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import threading
from collections import OrderedDict
from typing import Any
from urllib.parse import quote

import attrs

from openclaw_tw.web import ui_build
from openclaw_tw.web.ui_routes import ROOT_PUBLIC_ASSETS, is_versioned

BASE_PATH_ATTRIBUTE = "data-openclaw-control-ui-base-path"
TERMINAL_ATTRIBUTE = "data-openclaw-terminal-enabled"
HTML_CACHE_ENTRIES = 4

UI_PERMISSIONS = "camera=(self), microphone=*, geolocation=*, clipboard-write=*"


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
        version = f"?v={_encode_component(build_id)}" if build_id and is_versioned(asset) \
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


class HtmlCache:
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

