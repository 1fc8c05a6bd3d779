"""Config methods (reference §6.6): config.get/set/patch/apply/schema/schema.lookup.

Shapes follow traces/misc-methods-2.jsonl.  Every write checks ``baseHash`` against the file
on disk, validates the whole resulting config (every problem reported with its path), writes
atomically keeping ``<path>.last-good``, broadcasts ``config.changed {path, hash, ts}`` and
runs the reload planner at once (the watcher would see the same change a second later).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from openclaw_tw.config import document as configfile
from openclaw_tw.config import settings as config
from openclaw_tw.errors import clip, invalid_request
from openclaw_tw.protocol import scopes as S
from openclaw_tw.protocol.dispatch import CallContext, rpc
from openclaw_tw.protocol.schema import Arr, Str, closed

if TYPE_CHECKING:
    from openclaw_tw.config.reload import ConfigWatcher

_S1 = Str(min_len=1)
GET_PARAMS = closed()
WRITE_ACCEPTED = "sessionKey deliveryContext note restartDelayMs"
SET_PARAMS = closed({"raw": Str()}, {"baseHash": _S1}, accepted=WRITE_ACCEPTED)
PATCH_PARAMS = closed({"raw": Str()}, {"baseHash": _S1, "replacePaths": Arr(_S1)},
                      accepted=WRITE_ACCEPTED)
SCHEMA_PARAMS = closed()
LOOKUP_PARAMS = closed({"path": Str()})


class Snapshot:
    """The config file as it is on disk right now."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.raw: str | None = self.path.read_text("utf-8")
        except FileNotFoundError:
            self.raw = None
        except (OSError, UnicodeDecodeError) as e:
            raise invalid_request(f"cannot read config: {e}") from None
        self.hash = configfile.hash_text(self.raw)
        self.parsed: dict[str, Any] | None = None
        self.issues: list[dict[str, str]] = []
        if self.raw is not None:
            try:
                self.parsed = configfile.parse(self.raw)
            except config.ConfigError as e:
                self.issues = [{"path": "<root>", "message": str(e)}]
            else:
                self.issues = configfile.validate(self.parsed)


@attrs.define
class ConfigMethods:
    """config.get/set/apply/patch/schema/schema.lookup over the config file on disk.

    ``settings`` is read per call (hot reload replaces the settings); ``config_watcher`` is
    None when the gateway runs without one (tests).
    """

    _settings: Callable[[], config.GatewaySettings]
    _config_watcher: ConfigWatcher | None
    _display_path: Callable[[Path], str]
    _now_ms: Callable[[], int]
    _broadcast: Callable[..., Any]

    def _snapshot(self) -> Snapshot:
        return Snapshot(self._settings().config_path)

    @rpc("config.get", GET_PARAMS)
    def get(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        snap = self._snapshot()
        parsed = snap.parsed if snap.parsed is not None else {}
        resolved = configfile.redact(dict(self._settings().raw))
        watcher = self._config_watcher
        applied = watcher.applied_hash if watcher is not None else snap.hash
        out: dict[str, Any] = {
            "path": self._display_path(snap.path), "includedPaths": [],
            "exists": snap.raw is not None,
            "raw": configfile.redact_text(snap.raw, snap.parsed) if snap.raw is not None
            else None,
            "parsed": configfile.redact(parsed), "sourceConfig": configfile.redact(parsed),
            "resolved": resolved, "valid": not snap.issues, "runtimeConfig": resolved,
            "config": resolved, "hash": snap.hash, "issues": snap.issues, "warnings": [],
            "legacyIssues": [], "configRevisionHash": applied, "appliedConfigHash": applied,
        }
        if watcher is not None and ctx.is_admin:
            out["reload"] = watcher.status()
        return out

    @rpc("config.set", SET_PARAMS)
    @rpc("config.apply", SET_PARAMS)
    def set_(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        snap = self._snapshot()
        _check_base(snap, params)
        return self._commit(snap, _parse_raw(params["raw"]), params["raw"], ctx.method)

    @rpc("config.patch", PATCH_PARAMS)
    def patch(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        snap = self._snapshot()
        _check_base(snap, params)
        if snap.raw is not None and snap.parsed is None:
            raise invalid_request("the config file is not valid JSON5; fix it or use config.set",
                                  {"issues": snap.issues})
        partial = _parse_raw(params["raw"])
        new = configfile.merge_patch(snap.parsed or {}, partial, params.get("replacePaths") or ())
        return self._commit(snap, new, None, ctx.method)

    @rpc("config.schema", SCHEMA_PARAMS)
    def schema(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"schema": configfile.SCHEMA, "uiHints": {}, "version": "openclaw_tw",
                "generatedAt": None}

    @rpc("config.schema.lookup", LOOKUP_PARAMS)
    def lookup(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        found = configfile.lookup(params["path"].strip())
        if found is None:
            raise invalid_request(f"config schema path not found: {clip(params['path'])}")
        return found

    def _commit(self, snap: Snapshot, new: dict[str, Any], text: str | None,
                mode: str) -> dict[str, Any]:
        """Validate, write, broadcast ``config.changed`` and run the reload planner."""
        old = snap.parsed or {}
        restored = configfile.restore_redacted(new, old)
        left = configfile.unresolved_redactions(restored)
        if left:
            raise invalid_request(f"redacted value with no current value at {', '.join(left)}")
        issues = configfile.validate(restored)
        if issues:
            problems = "; ".join(f"{i['path']}: {i['message']}" for i in issues)
            raise invalid_request(f"invalid config: {problems}", {"issues": issues})
        if text is not None and restored != new:
            text = None  # the raw text had redacted placeholders: write the restored values
        if text is None and mode == "config.patch" and snap.raw is not None and \
                snap.parsed is not None:
            # A patch keeps the file's comments and layout where it did not touch them.
            # json5_edit imports pyjson5 (~1.2 MiB): only once a file is patched.
            from openclaw_tw.config import json5_edit

            text = json5_edit.apply_changes(snap.raw, snap.parsed, restored, configfile.parse)
        if text is None:
            text = configfile.dump(restored)
        try:
            configfile.write(snap.path, text)
        except OSError as e:
            raise invalid_request(f"cannot write config: {e.strerror}") from None
        digest = configfile.hash_text(text)
        ts = self._now_ms()
        display = self._display_path(snap.path)
        self._broadcast("config.changed", {"path": display, "hash": digest, "ts": ts},
                        scope=S.READ)
        plan = None
        watcher = self._config_watcher
        if watcher is not None:
            plan = watcher.reload(mode)
        changed = configfile.changed_paths(old, restored)
        requires_restart = any(configfile.reload_kind(p) == configfile.RESTART
                               for p in changed)
        return {
            "ok": True, "path": display, "hash": digest,
            "config": configfile.redact(restored), "changedPaths": changed,
            "restart": {"required": requires_restart,
                        "paths": [p for p in changed
                                  if configfile.reload_kind(p) == configfile.RESTART]},
            "reload": plan,
            "sentinel": {"persisted": True, "payload": {
                "kind": "config-patch" if mode == "config.patch" else "config-apply",
                "status": "ok", "ts": ts, "message": None,
                "stats": {"mode": mode, "root": display,
                          "requiresRestart": requires_restart}}},
        }


def _check_base(snap: Snapshot, params: dict[str, Any]) -> None:
    base = params.get("baseHash")
    if base is None:
        if snap.raw is not None:
            raise invalid_request("config base hash required; re-run config.get and retry")
        return
    if base != snap.hash:
        raise invalid_request(configfile.STALE_MESSAGE)


def _parse_raw(text: str) -> dict[str, Any]:
    try:
        return configfile.parse(text)
    except config.ConfigError as e:
        raise invalid_request(str(e)) from None
