"""The Control UI shell's methods: system.info, update.status, users.prefs.get, themes.list,
talk.catalog, question.list and secrets.store.list.

``system.info`` is what this process really is (host, platform, Python runtime, uptime, memory,
disks, the event-loop probe).  The rest answer, in the real gateway's shapes (captured from
2026.9.6 on a fresh install), that we lack the feature:

* ``update.status``: an install that cannot update itself -- no update available, no run, no
  automatic updates, install kind ``unknown`` (we are neither the npm package nor its git
  checkout).  ``update.run`` is not served, so the UI shows no "Update now".
* ``users.prefs.get``: ``{status: "no_durable_identity"}``, the real answer for a caller without
  a user profile: we keep no user profiles (the UI then keeps its preferences in the browser;
  it writes server preferences only for a presence entry carrying a profile, which we never
  send).  ``users.list`` is therefore the empty roster ``{profiles: []}`` (the real gateway lists
  its ``gateway-owner`` profile and any others); the session menu's "Assign to..." then offers
  nobody instead of failing on an unknown method.
* ``themes.list``: an empty catalog -- we hold no theme definitions (the real gateway's
  built-in palettes live in its own package), no plugin themes and no imported ones.  The
  current theme is the default, ``claw`` (its descriptor as ``theme``); ``current`` follows
  ``ui.prefs.theme``/``themeMode`` of the config as the real gateway does for a caller without
  a profile (scope ``gateway``).  Given no catalog, the Control UI offers the themes built into
  its own bundle, which it renders and stores in the browser without us.
* ``talk.catalog``: no speech, transcription or realtime provider, nothing ready.
* ``question.list``: no agent questions (we have no question tool).
* ``secrets.store.list``: no secret store; ``secrets.store.set``/``delete`` are not served, so
  the UI offers no way to add one.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from openclaw_tw.protocol.dispatch import CallContext, rpc
from openclaw_tw.protocol.schema import Arr, Bool, Obj, Str

_S1 = Str(min_len=1)
UPDATE_STATUS = Obj(optional={"refreshCheckout": Bool()})
PREFS_GET = Obj(optional={"keys": Arr(Str(min_len=1, max_len=256))})
TALK_CATALOG = Obj(optional={"provider": _S1, "model": _S1})

UPDATE_CHANNELS = ("stable", "extended-stable", "beta", "dev")
THEME_MODES = ("system", "light", "dark")
DEFAULT_THEME = {
    "id": "claw", "name": "Claw",
    "description": "Signature coral red and teal on charcoal or pale surfaces, with Instrument "
                   "Sans throughout. A balanced everyday workspace.",
    "source": "builtin", "modes": ["light", "dark"]}
EVENT_LOOP_REASONS = {"delay": "event_loop_delay"}  # our probe's word -> the schema's


def _cfg(raw: Mapping[str, Any], *path: str) -> Any:
    node: Any = raw
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def os_label(system: str, release: str) -> str:
    """``Linux 6.1.0`` -- the real gateway's ``osLabel`` (macOS and Windows get their names)."""
    name = {"Darwin": "macOS", "Windows": "Windows"}.get(system, system)
    return f"{name} {release}".strip()


def cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip() or None
    except OSError:
        pass
    return platform.processor() or None


def memory_bytes() -> tuple[int, int]:
    """(total, available) physical memory; /proc/meminfo where there is one."""
    try:
        fields: dict[str, int] = {}
        with open("/proc/meminfo", encoding="ascii", errors="replace") as f:
            for line in f:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if parts and parts[0].isdigit():
                    fields[key] = int(parts[0]) * 1024
        return fields["MemTotal"], fields.get("MemAvailable", fields.get("MemFree", 0))
    except (OSError, KeyError):
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        avail = os.sysconf("SC_AVPHYS_PAGES") if "SC_AVPHYS_PAGES" in os.sysconf_names else 0
        return pages * size, avail * size


def mount_point(path: Path) -> Path:
    path = path.resolve()
    while not os.path.ismount(path) and path.parent != path:
        path = path.parent
    return path


class ShellMethods:
    """``settings`` is read per call (hot reload replaces it); ``uptime_ms``, ``event_loop`` and
    ``process_id`` come from the hub."""

    def __init__(self, settings: Callable[[], Any], uptime_ms: Callable[[], int],
                 event_loop: Callable[[], dict[str, Any]], process_id: str) -> None:
        self._settings = settings
        self._uptime_ms = uptime_ms
        self._event_loop = event_loop
        self._process_id = process_id
        self._cpu_model = cpu_model()

    # -- system.info ---------------------------------------------------------------------------

    @rpc("system.info")
    def system_info(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        settings = self._settings()
        uname = platform.uname()
        host = socket.gethostname()
        total, free = memory_bytes()
        out: dict[str, Any] = {
            "machineName": host.split(".", 1)[0], "hostname": host,
            "platform": sys.platform, "release": uname.release,
            "arch": {"x86_64": "x64", "aarch64": "arm64", "AMD64": "x64"}.get(
                uname.machine, uname.machine),
            "osLabel": os_label(uname.system, uname.release)}
        if settings.port:
            out["port"] = settings.port
        # the runtime's version: ours is CPython, not Node (the UI prints "Node <this>")
        out.update({"nodeVersion": f"{platform.python_implementation()} "
                                   f"{platform.python_version()}",
                    "pid": os.getpid(), "processInstanceId": self._process_id,
                    "uptimeMs": self._uptime_ms(), "cpuCount": os.cpu_count() or 1})
        if self._cpu_model:
            out["cpuModel"] = self._cpu_model
        if hasattr(os, "getloadavg"):
            out["loadAverage"] = [round(v, 2) for v in os.getloadavg()]
        out.update({"memoryTotalBytes": total, "memoryFreeBytes": free})
        loop = dict(self._event_loop())
        loop["reasons"] = [EVENT_LOOP_REASONS.get(r, r) for r in loop.get("reasons") or []]
        out["eventLoop"] = loop
        state = settings.state_dir
        try:
            usage = shutil.disk_usage(state)
            mount = mount_point(state)
            out["disks"] = [{"path": str(mount), "totalBytes": usage.total,
                             "availableBytes": usage.free}]
            out.update({"diskTotalBytes": usage.total, "diskAvailableBytes": usage.free,
                        "diskPath": str(state)})
        except OSError:
            pass
        # Every turn runs on its agent's own model: we resolve no separate utility model.
        out["defaultAgentUtilityModel"] = {"status": "unavailable"}
        return out

    # -- update.status -------------------------------------------------------------------------

    @rpc("update.status", UPDATE_STATUS)
    def update_status(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        channel = _cfg(self._settings().raw, "update", "channel")
        channel = channel if channel in UPDATE_CHANNELS else "stable"
        return {"sentinel": None, "updateAvailable": None, "effectiveChannel": channel,
                "schedule": {"channel": channel, "autoEnabled": False,
                             "install": {"kind": "unknown"}}}

    # -- preferences and appearance ------------------------------------------------------------

    @rpc("users.prefs.get", PREFS_GET)
    def prefs_get(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"status": "no_durable_identity"}

    @rpc("users.list", Obj())
    def users_list(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"profiles": []}

    @rpc("themes.list")
    def themes_list(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        prefs = _cfg(self._settings().raw, "ui", "prefs")
        prefs = prefs if isinstance(prefs, Mapping) else {}
        requested = prefs.get("theme") if isinstance(prefs.get("theme"), str) else "claw"
        mode = prefs.get("themeMode") if prefs.get("themeMode") in THEME_MODES else "system"
        current: dict[str, Any] = {"id": "claw", "mode": mode}
        if mode != "system":
            current["effectiveMode"] = mode
        current.update({"scope": "gateway", "overrides": {}})
        if requested != "claw":
            current["requestedId"] = requested
        return {"current": current, "theme": dict(DEFAULT_THEME), "themes": []}

    # -- features we do not have ---------------------------------------------------------------

    @rpc("talk.catalog", TALK_CATALOG)
    def talk_catalog(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"modes": [], "transports": [], "brains": [],
                "speech": {"ready": False, "providers": []},
                "transcription": {"ready": False, "providers": []},
                "realtime": {"ready": False, "providers": []}}

    @rpc("question.list")
    def question_list(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"questions": []}

    @rpc("secrets.store.list")
    def secrets_store_list(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"entries": []}
