"""The Control UI build on disk: finding one, and opening its files without leaving it.

Everything here blocks (stat, open, read, a child process) and runs in the reactor's thread
pool through ``hub.run_blocking`` (inline in tests).

**Which build.**  ``gateway.controlUi.root`` when set (a directory holding ``index.html``, or
the ``index.html`` itself) -- served as a *configured* build.  Otherwise the first installed
``openclaw`` npm package with a ``dist/control-ui/index.html``, looked for in this order:

1. the ``openclaw`` on ``PATH`` (its symlink or launcher script resolved to the package dir);
2. ``npm root -g`` (run once, bounded by ``NPM_TIMEOUT_S``);
3. the reference install the test suite uses: ``$OPENCLAW_REF_DIR``, else
   ``${XDG_CACHE_HOME:-~/.cache}/openclaw_tw/reference`` + ``pkg/node_modules/openclaw``.

With none of these (or with ``OPENCLAW_TW_CONTROL_UI=builtin`` in the environment, which skips
the search and ``gateway.controlUi.root``) the gateway serves its own *built-in* dashboard,
``openclaw_tw/web/dashboard/`` (package data: plain HTML, ES modules and CSS, no build step),
served like a configured build (``no-cache`` throughout), except that hard links are allowed
(installers may hard-link package files).

A package's build is served as the real gateway serves its own *bundled* build: hashed
``assets/`` are immutable and their ``.br``/``.gz`` siblings are chosen by
``Accept-Encoding``; a configured build is served ``no-cache`` throughout, as the real
gateway serves one.

**Files.**  A request's path has already been decoded and checked lexically
(``ui_routes.safe_relative``); here the file's real path (symlinks resolved) must still lie
inside the build's real root, it must be a regular file, and in a configured build it must
not be a hard link (the reference's rule).  Small files are kept in a bounded cache keyed by
inode, size and mtime; files over ``STREAM_OVER`` bytes are not read here but streamed.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import stat
import subprocess
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs

BUILD_ID_ATTRIBUTE = "data-openclaw-control-ui-build-id"
_BUILD_ID_RE = re.compile(BUILD_ID_ATTRIBUTE + r'="([a-zA-Z0-9._-]{1,161})"')
_STARTUP_ASSET_RE = re.compile(r"<(?:link|script)\b[^>]*>", re.IGNORECASE)
_REF_RE = re.compile(r"""\s(?:href|src)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_LAUNCHER_RE = re.compile(r"""["']?(/[^"'\s]*/openclaw\.mjs)["']?""")

DASHBOARD_ROOT = Path(__file__).resolve().parent / "dashboard"
CONTROL_UI_ENV = "OPENCLAW_TW_CONTROL_UI"  # "builtin": serve the dashboard, search nothing
INDEX_MAX = 256 * 1024          # an index.html larger than this is not a Control UI build
NPM_TIMEOUT_S = 5.0
STREAM_OVER = 1024 * 1024       # larger files are streamed in chunks, never read whole
CHUNK = 256 * 1024
CACHE_ENTRY_MAX = 256 * 1024    # the hot-file cache: small files only ...
CACHE_TOTAL_MAX = 16 * 1024 * 1024  # ... and this much in all


@attrs.frozen
class UiBuild:
    """A Control UI build we serve."""

    root: Path              # as found or configured
    real: Path              # its real path: every served file must resolve inside it
    bundled: bool           # from an installed openclaw package (see the module doc)
    found_by: str           # how it was found, for the start-up log
    version: str | None = None   # the package's version
    build_id: str | None = None  # index.html's data-openclaw-control-ui-build-id
    builtin: bool = False        # our own dashboard (``DASHBOARD_ROOT``)


@attrs.frozen
class Discovery:
    """What start-up found: a build, or why not (``looked``: every place tried)."""

    build: UiBuild | None
    looked: tuple[str, ...] = ()
    invalid_root: Path | None = None  # gateway.controlUi.root is set but holds no build


# -- finding a build -------------------------------------------------------------------------


def inspect(root: Path) -> tuple[str | None, str | None]:
    """``(build_id, problem)``: the index's build id, or why ``root`` is not a build (no
    index.html, too large, a startup asset it names is missing)."""
    index = root / "index.html"
    try:
        with open(index, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                return None, "index.html is not a file"
            if st.st_size > INDEX_MAX:
                return None, "index.html exceeds its size limit"
            html = f.read(INDEX_MAX + 1).decode("utf-8", "replace")
    except OSError:
        return None, "no index.html"
    count = 0
    for tag in _STARTUP_ASSET_RE.finditer(html):
        m = _REF_RE.search(tag.group(0))
        if not m:
            continue
        ref = re.split(r"[?#]", m.group(1), maxsplit=1)[0].replace("\\", "/")
        if re.match(r"^(?:[a-z][a-z\d+.-]*:|//|#)", ref, re.IGNORECASE):
            continue
        marker = ref.rfind("assets/")
        if marker == -1 or not re.search(r"\.(?:css|js)$", ref, re.IGNORECASE):
            continue
        count += 1
        asset = ref[marker:]
        if count > 128 or ".." in ref.split("/"):
            return None, "too many startup assets" if count > 128 else f"bad asset {asset}"
        if not (root / asset).is_file():
            return None, f"missing {asset}"
    m = _BUILD_ID_RE.search(html)
    return (m.group(1) if m else None), None


def _package_version(package_dir: Path) -> str | None:
    try:
        data = json.loads((package_dir / "package.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("name") != "openclaw":
        return None
    version = data.get("version")
    return version if isinstance(version, str) else None


def package_of_launcher(launcher: str) -> Path | None:
    """The ``openclaw`` package directory behind a launcher: a symlink to ``openclaw.mjs``
    (npm's global bin), a file inside the package, or a small shell script that execs
    ``.../openclaw.mjs`` (the reference install's launcher)."""
    try:
        real = Path(os.path.realpath(launcher))
    except (OSError, ValueError):
        return None
    if real.name == "openclaw.mjs":
        return real.parent
    directory = real.parent
    for _ in range(8):
        if _package_version(directory) is not None:
            return directory
        if directory.parent == directory:
            break
        directory = directory.parent
    try:
        with open(real, "rb") as f:
            head = f.read(4097)
    except OSError:
        return None
    if len(head) > 4096 or not head.startswith(b"#!"):
        return None
    m = _LAUNCHER_RE.search(head.decode("utf-8", "replace"))
    return Path(m.group(1)).parent if m else None


def npm_global_root(env: Mapping[str, str], timeout_s: float = NPM_TIMEOUT_S) -> Path | None:
    npm = shutil.which("npm", path=env.get("PATH"))
    if npm is None:
        return None
    try:
        out = subprocess.run([npm, "root", "-g"], capture_output=True, timeout=timeout_s,
                             env=dict(env), stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    text = out.stdout.decode("utf-8", "replace").strip().splitlines()
    return Path(text[-1].strip()) if out.returncode == 0 and text else None


def reference_package(env: Mapping[str, str]) -> Path:
    """Where the suite's reference install keeps the openclaw package."""
    ref = env.get("OPENCLAW_REF_DIR")
    if ref:
        base = Path(ref).expanduser()
    else:
        cache = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) /
                                                  ".cache")
        base = Path(cache) / "openclaw_tw" / "reference"
    return base / "pkg" / "node_modules" / "openclaw"


def configured_root(root: Path) -> Path | None:
    """``gateway.controlUi.root``: the directory, or the directory of a named index.html."""
    root = root.expanduser().absolute()
    try:
        if root.is_file():
            return root.parent if root.name == "index.html" else None
        if root.is_dir():
            return root if (root / "index.html").exists() else None
    except OSError:
        return None
    return None


def dashboard(found_by: str, root: Path = DASHBOARD_ROOT) -> UiBuild | None:
    """The built-in dashboard, or ``None`` when its files are missing (a broken install)."""
    if not (root / "index.html").is_file():
        return None
    return UiBuild(root, Path(os.path.realpath(root)), False, found_by, builtin=True)


def discover(configured: Path | None, env: Mapping[str, str],
             npm_timeout_s: float = NPM_TIMEOUT_S,
             dashboard_root: Path = DASHBOARD_ROOT) -> Discovery:
    """Find the build to serve (blocking: call it through ``run_blocking``)."""
    if env.get(CONTROL_UI_ENV, "").strip().lower() == "builtin":
        return Discovery(dashboard(f"{CONTROL_UI_ENV}=builtin", dashboard_root),
                         (f"nothing: {CONTROL_UI_ENV}=builtin",))
    if configured is not None:
        root = configured_root(configured)
        if root is None:
            return Discovery(None, (str(configured),), invalid_root=configured.absolute())
        build_id, _ = inspect(root)
        return Discovery(UiBuild(root, Path(os.path.realpath(root)), False,
                                 "gateway.controlUi.root", None, build_id))
    looked: list[str] = []

    def try_package(package: Path | None, found_by: str) -> UiBuild | None:
        if package is None or not package.is_dir():
            looked.append(f"{found_by}: not installed" + (f" ({package})" if package else ""))
            return None
        root = package / "dist" / "control-ui"
        build_id, problem = inspect(root)
        if problem is not None:
            looked.append(f"{found_by}: {root} ({problem})")
            return None
        return UiBuild(root, Path(os.path.realpath(root)), True, found_by,
                       _package_version(package), build_id)

    launcher = shutil.which("openclaw", path=env.get("PATH"))
    build = try_package(package_of_launcher(launcher) if launcher else None,
                        f"openclaw on PATH{f' ({launcher})' if launcher else ''}")
    if build is None:
        npm_root = npm_global_root(env, npm_timeout_s)
        build = try_package(npm_root / "openclaw" if npm_root else None, "npm root -g")
    if build is None:
        build = try_package(reference_package(env), "the reference install")
    if build is None:
        build = dashboard("no Control UI build found", dashboard_root)
        if build is None:
            looked.append(f"the built-in dashboard: missing ({dashboard_root})")
    return Discovery(build, tuple(looked))


# -- opening files inside a build ------------------------------------------------------------


@attrs.frozen
class Opened:
    """One file of the build, opened: its bytes (small files) or an open descriptor (large
    ones, streamed and closed by the caller)."""

    path: str
    size: int
    mtime: float
    encoding: str = "identity"
    data: bytes | None = None
    fd: int | None = None


class NotAcceptable(Exception):
    """No representation of the file is acceptable to the client (406)."""


_MISSING = frozenset({errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.ENAMETOOLONG,
                      errno.EACCES, errno.EISDIR, errno.ENXIO})


def _within(real_root: str, path: str) -> bool:
    return path == real_root or path.startswith(real_root.rstrip(os.sep) + os.sep)


class FileCache:
    """A bounded LRU of small files' bytes, keyed by path, inode, size and mtime (so a
    replaced file is read again).  Thread-safe: lookups run in the thread pool."""

    def __init__(self, entry_max: int = CACHE_ENTRY_MAX, total_max: int = CACHE_TOTAL_MAX
                 ) -> None:
        self.entry_max, self.total_max = entry_max, total_max
        self._items: OrderedDict[tuple[str, int, int, int], bytes] = OrderedDict()
        self._total = 0
        self._lock = threading.Lock()
        self.hits = 0

    def get(self, key: tuple[str, int, int, int]) -> bytes | None:
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
                self.hits += 1
            return data

    def put(self, key: tuple[str, int, int, int], data: bytes) -> None:
        if len(data) > self.entry_max:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = data
            self._total += len(data)
            while self._total > self.total_max and self._items:
                _, old = self._items.popitem(last=False)
                self._total -= len(old)


def _open_inside(build: UiBuild, path: str) -> tuple[int, os.stat_result, str] | None:
    """Open ``path`` if its real path lies inside the build and it is a regular file (and,
    in a configured build, not a hard link); ``None`` otherwise."""
    real_root = str(build.real)
    try:
        real = os.path.realpath(path)
        if not _within(real_root, real):
            return None
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as e:
        if e.errno in _MISSING:
            return None
        raise
    except ValueError:  # an embedded NUL (already refused before we get here)
        return None
    try:
        st = os.fstat(fd)
        hard_link = not build.bundled and not build.builtin and st.st_nlink > 1
        if not stat.S_ISREG(st.st_mode) or hard_link:
            os.close(fd)
            return None
        os.set_blocking(fd, True)
    except OSError:
        os.close(fd)
        raise
    return fd, st, real


def _read_all(fd: int, size: int) -> bytes:
    parts, offset = [], 0
    while offset < size:
        chunk = os.pread(fd, min(CHUNK, size - offset), offset)
        if not chunk:
            break
        parts.append(chunk)
        offset += len(chunk)
    return b"".join(parts)


def open_file(build: UiBuild, rel: str, encodings: Sequence[str], cache: FileCache,
              precompressed: bool) -> Opened | None:
    """Open ``rel`` (already a safe relative path) in the build, in the first acceptable
    representation: with ``precompressed``, a ``.br``/``.gz`` sibling when the client takes
    it, else the file itself when identity is acceptable.  ``None``: no such file;
    ``NotAcceptable``: the file exists but no representation is acceptable."""
    source = _open_inside(build, os.path.join(str(build.root), rel))
    if source is None:
        return None
    chosen: tuple[int, os.stat_result, str] | None = None
    encoding = "identity"
    try:
        for enc in encodings:
            if enc == "identity":
                chosen = source
                break
            if not precompressed:
                continue
            sibling = _open_inside(build, source[2] + (".br" if enc == "br" else ".gz"))
            if sibling is not None:
                chosen, encoding = sibling, enc
                break
    finally:
        if chosen is not source:
            os.close(source[0])
    if chosen is None:
        raise NotAcceptable(rel)
    fd, st, real = chosen
    if st.st_size > STREAM_OVER:
        return Opened(real, st.st_size, st.st_mtime, encoding, fd=fd)
    try:
        key = (real, st.st_ino, st.st_size, st.st_mtime_ns)
        data = cache.get(key)
        if data is None:
            data = _read_all(fd, st.st_size)
            cache.put(key, data)
    finally:
        os.close(fd)
    return Opened(real, len(data), st.st_mtime, encoding, data=data)


def exists(build: UiBuild, rel: str) -> bool:
    """Whether ``rel`` is a servable file of the build (for HEAD and conditional requests
    of the index, which need no bytes)."""
    opened = _open_inside(build, os.path.join(str(build.root), rel))
    if opened is None:
        return False
    os.close(opened[0])
    return True


def read_chunk(fd: int, offset: int) -> bytes:
    return os.pread(fd, CHUNK, offset)
