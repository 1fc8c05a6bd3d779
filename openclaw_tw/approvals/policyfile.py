"""The exec approvals policy file (``<state>/exec-approvals.json``), with baseHash checks."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from openclaw_tw import _json
from openclaw_tw.config.settings import atomic_write
from openclaw_tw.errors import invalid_request

FILE_NAME = "exec-approvals.json"
SECURITY = ("deny", "allowlist", "full")
ASK = ("off", "on-miss", "always")
RESOLVED_DEFAULTS = {"security": "full", "ask": "off", "askFallback": "deny",
                     "autoAllowSkills": False}


class PolicyFile:
    def __init__(self, state_dir: Path, display: Any = str) -> None:
        self.path = state_dir / FILE_NAME
        self.socket_path = state_dir / "exec-approvals.sock"
        self.display = display

    def _default(self) -> dict[str, Any]:
        return {"version": 1, "socket": {"path": self.display(self.socket_path)},
                "defaults": {}, "agents": {}}

    def _read(self) -> tuple[bool, bytes, dict[str, Any]]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            file = self._default()
            return False, _json.dumps(file), file
        try:
            file = _json.loads(raw)
        except _json.JSONDecodeError:
            file = self._default()
        return True, raw, file if isinstance(file, dict) else self._default()

    def snapshot(self) -> dict[str, Any]:
        exists, raw, file = self._read()
        defaults = dict(RESOLVED_DEFAULTS)
        given = file.get("defaults") if isinstance(file.get("defaults"), dict) else {}
        defaults.update({k: v for k, v in given.items() if k in RESOLVED_DEFAULTS})
        return {"path": self.display(self.path), "exists": exists, "file": file,
                "hash": hashlib.sha256(raw).hexdigest(), "resolvedDefaults": defaults}

    def write(self, file: dict[str, Any], base_hash: str | None) -> dict[str, Any]:
        current = self.snapshot()
        if current["exists"] and base_hash is None:
            raise invalid_request("exec approvals file exists; baseHash required "
                                  "(re-run exec.approvals.get)")
        if base_hash is not None and base_hash != current["hash"]:
            raise invalid_request("exec approvals changed since last load; re-run "
                                  "exec.approvals.get and retry",
                                  {"reason": "BASE_HASH_MISMATCH"})
        validate(file)
        out = dict(file)
        out.setdefault("socket", {"path": self.display(self.socket_path)})
        out.setdefault("defaults", {})
        out.setdefault("agents", {})
        atomic_write(self.path, _json.pretty(out).encode() + b"\n")
        return self.snapshot()

    def decide(self, agent_id: str | None) -> dict[str, Any]:
        """Effective {security, ask, askFallback} for an agent (per-agent overrides win)."""
        snap = self.snapshot()
        out = dict(snap["resolvedDefaults"])
        agents = snap["file"].get("agents") or {}
        override = agents.get(agent_id or "main") if isinstance(agents, dict) else None
        if isinstance(override, dict):
            out.update({k: v for k, v in override.items() if k in RESOLVED_DEFAULTS})
        return out


def validate(file: Any) -> None:
    if not isinstance(file, dict) or file.get("version") != 1:
        raise invalid_request("invalid exec approvals file: version must be 1")
    sections = [("defaults", file.get("defaults") or {})]
    agents = file.get("agents") or {}
    if not isinstance(agents, dict):
        raise invalid_request("invalid exec approvals file: agents must be an object")
    sections += [(f"agents.{k}", v) for k, v in agents.items()]
    for where, section in sections:
        if not isinstance(section, dict):
            raise invalid_request(f"invalid exec approvals file: {where} must be an object")
        for key, allowed in (("security", SECURITY), ("ask", ASK), ("askFallback", SECURITY)):
            if key in section and section[key] not in allowed:
                raise invalid_request(f"invalid exec approvals file: {where}.{key} must be "
                                      f"one of {', '.join(allowed)}")
