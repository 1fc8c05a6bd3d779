"""The Control UI's routing and path safety: pure functions of the request line, no I/O.

Which requests the UI claims (``classify``, as ``control-ui-routing.ts`` does), the request
path normalized as a WHATWG URL parser leaves it (``normalize_path``), the build file a UI path
names (``requested_file``) and its strict, lexical decoding (``safe_relative``; what reaches
the disk is checked again in ``ui_build``), and which public assets are versioned with the
build id.  Used by ``control_ui`` (answers) and ``ui_document`` (asset links in the index).
"""

from __future__ import annotations

import posixpath
import re
from urllib.parse import unquote_to_bytes

import attrs

from openclaw_tw.web import negotiate

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
MAX_PATH = 4096  # a longer decoded path is never a file of the build


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


def extension(rel: str) -> str:
    name = rel.rsplit("/", 1)[-1]
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def is_versioned(rel: str) -> bool:
    return (rel in ROOT_PUBLIC_ASSETS and rel != "sw.js") or bool(_VERSIONED.match(rel))


def is_bootstrap_config(base: str, path: str) -> bool:
    """Does ``path`` name the bootstrap config (``/control-ui-config.json`` or an alias)?"""
    if path in (f"{base}{BOOTSTRAP_CONFIG}", f"{base}/__openclaw{BOOTSTRAP_CONFIG}"):
        return True
    return not base and path == f"/__openclaw__{BOOTSTRAP_CONFIG}"
