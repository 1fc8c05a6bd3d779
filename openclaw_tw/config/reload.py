"""Config hot reload (reference §14): watch the file, validate, plan, apply in place.

``ConfigWatcher`` polls the file's (mtime, size) on the injected clock every second; SIGHUP
schedules a reload too (the handler only schedules).  A change is acted on once the file has
been stable for one poll, so an editor's temp-write/rename churn is not read half-way.
Reloads run one at a time on the reactor thread.

Every reload computes a **plan** from the paths that changed in the file: ``hot`` paths are
applied in place (new ``GatewaySettings`` swapped into the gateway — HTTP endpoints, tools,
hooks, trusted proxies, … are read per request; token/password rotation replaces the auth
policy and closes old shared-secret sockets; the components built from the config once --
the model registry, heartbeat and cron, the exec tool, node policy, mDNS -- are brought up
to date by ``config/apply.py``), ``restart`` paths are logged as "restart
required" and keep their running values until the gateway is restarted.  An invalid file is
skipped with every problem logged; the last good config stays in force and the file is never
rewritten.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from twisted.application.service import Service
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from openclaw_tw.config import document as configfile
from openclaw_tw.config import settings as config

_log = Logger(namespace="gateway/reload")

POLL_INTERVAL_S = 1.0

Resolver = Callable[[Mapping[str, Any] | None], config.GatewaySettings]


class ConfigWatcher(Service):
    name = "config-watcher"

    def __init__(self, gw: Any, resolver: Resolver, install_sighup: bool = False) -> None:
        self.gw = gw
        self.resolver = resolver
        self.install_sighup = install_sighup
        self.path: Path = gw.settings.config_path
        self._loop = LoopingCall(self.poll)
        self._loop.clock = gw.clock
        self._stat = self._stat_now()
        self._pending_stat: tuple[int, int] | None = None
        text = self._read()
        self.applied_hash = configfile.hash_text(text)
        self.applied_raw: Mapping[str, Any] = gw.settings.raw
        self.last_plan: dict[str, Any] | None = None
        self.last_error: dict[str, Any] | None = None
        self.reloads = 0
        self._reloading = False
        self._again = False
        self._sighup_scheduled = False
        self._old_sighup: Any = None
        self.on_applied: list[Callable[[config.GatewaySettings, dict[str, Any]], None]] = []

    # -- lifecycle -----------------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self.gw.health.config_reload = "active"
        self._loop.start(POLL_INTERVAL_S, now=False)
        if self.install_sighup and hasattr(signal, "SIGHUP"):
            self._old_sighup = signal.signal(signal.SIGHUP, self._on_sighup)

    def stopService(self) -> None:
        super().stopService()
        self.gw.health.config_reload = None
        if self._loop.running:
            self._loop.stop()
        if self._old_sighup is not None:
            signal.signal(signal.SIGHUP, self._old_sighup)
            self._old_sighup = None

    def _on_sighup(self, signum: int, frame: Any) -> None:
        # Signal context: only schedule, coalescing repeated signals into one reload.
        if not self._sighup_scheduled:
            self._sighup_scheduled = True
            self.gw.reactor.callFromThread(self._sighup_reload)

    def _sighup_reload(self) -> None:
        self._sighup_scheduled = False
        _log.info("SIGHUP: reloading config")
        self.reload("sighup", force=True)

    # -- watching ------------------------------------------------------------------------------

    def _stat_now(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _read(self) -> str | None:
        try:
            return self.path.read_text("utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as e:
            _log.warn("cannot read config {path}: {error}", path=str(self.path), error=str(e))
            return None

    def poll(self) -> None:
        now = self._stat_now()
        if now == self._stat:
            self._pending_stat = None
            return
        if self._pending_stat != now:
            self._pending_stat = now  # changed: act once it has been stable for one poll
            return
        self._stat, self._pending_stat = now, None
        self.reload("watch")

    # -- reloading -----------------------------------------------------------------------------

    def reload(self, source: str, force: bool = False) -> dict[str, Any] | None:
        """Validate the file and apply it; returns the plan (``None`` when nothing changed or
        the file was rejected).  A reload requested during a reload is queued once."""
        if self._reloading:
            self._again = True
            return None
        self._reloading = True
        try:
            result = self._reload_once(source, force)
            while self._again:
                self._again = False
                result = self._reload_once(source, force) or result
            return result
        finally:
            self._reloading = False

    def _reload_once(self, source: str, force: bool) -> dict[str, Any] | None:
        self._stat = self._stat_now()
        text = self._read()
        digest = configfile.hash_text(text)
        if digest == self.applied_hash and not force:
            return None
        issues: list[dict[str, str]]
        data: dict[str, Any] | None = None
        if text is None:
            data, issues = None, []
        else:
            try:
                data = configfile.parse(text)
                issues = configfile.validate(data)
            except config.ConfigError as e:
                issues = [{"path": "<root>", "message": str(e)}]
        settings = None
        if not issues:
            try:
                settings = self.resolver(data)
            except config.ConfigError as e:
                issues = [{"path": "<root>", "message": str(e)}]
        if issues:
            self.last_error = {"hash": digest, "issues": issues, "source": source,
                               "ts": self.gw.now_ms()}
            self.gw.metrics.config_reload("rejected")
            _log.warn("config reload skipped (invalid config {path}); the last good config "
                      "stays in force: {problems}", path=str(self.path),
                      problems="; ".join(f"{i['path']}: {i['message']}" for i in issues))
            return None
        assert settings is not None
        self.last_error = None
        paths = configfile.changed_paths(dict(self.applied_raw), data or {})
        planned = configfile.plan(paths)
        mode = ((data or {}).get("gateway") or {}).get("reload", {}) or {}
        reload_mode = mode.get("mode", "hybrid") if isinstance(mode, dict) else "hybrid"
        result: dict[str, Any] = {
            "source": source, "hash": digest, "ts": self.gw.now_ms(), "mode": reload_mode,
            "changedPaths": paths, "hot": planned[configfile.HOT],
            "restart": planned[configfile.RESTART], "none": planned[configfile.NONE],
            "applied": False, "requiresRestart": bool(planned[configfile.RESTART]),
        }
        self.applied_hash = digest
        self.reloads += 1
        if paths:
            _log.info("config change detected; evaluating reload ({paths})",
                      paths=", ".join(paths))
        if reload_mode == "off":
            _log.info("gateway.reload.mode is off: changes wait for a restart ({paths})",
                      paths=", ".join(paths) or "-")
        else:
            self.applied_raw = data or {}
            in_force = self.gw.apply_settings(settings)
            result["applied"] = True
            for hook in self.on_applied:
                try:
                    hook(in_force, result)
                except Exception:
                    _log.failure("applying the reloaded config failed in {hook}", hook=hook)
            if planned[configfile.HOT]:
                _log.info("config hot reload applied ({paths})",
                          paths=", ".join(planned[configfile.HOT]))
        if planned[configfile.RESTART]:
            _log.warn("config change needs a restart; restart required for: {paths} "
                      "(running values stay in force until then)",
                      paths=", ".join(planned[configfile.RESTART]))
        self.last_plan = result
        self.gw.metrics.config_reload("restart-required" if planned[configfile.RESTART] else
                                      "applied" if result["applied"] else "deferred")
        return result

    def status(self) -> dict[str, Any]:
        return {"path": str(self.path), "appliedHash": self.applied_hash,
                "reloads": self.reloads, "lastPlan": self.last_plan,
                "lastError": self.last_error}
