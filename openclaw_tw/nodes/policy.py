"""The node command policy (§15.2 step 4) and the approve-time scope rule (step 3).

effective = declared ∩ approved ∩ platform allowlist ∩ (gateway.nodes.commands.allow for the
dangerous ones) − gateway.nodes.commands.deny.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from typing import Any

from openclaw_tw.errors import GatewayError, invalid_request
from openclaw_tw.protocol import scopes as S

ADMIN_APPROVE_COMMANDS = frozenset({
    "system.run", "system.run.prepare", "system.which", "fs.listDir",
    "system.execApprovals.get", "system.execApprovals.set",
})
ADMIN_APPROVE_PREFIXES = ("browser.proxy", "system.execApprovals.")

# Need an explicit gateway.nodes.commands.allow opt-in even when declared and approved.
DANGEROUS = ("camera.snap", "camera.clip", "screen.record", "contacts.add", "calendar.add",
             "reminders.add", "sms.*", "health.summary")

_DESKTOP = ("system.*", "browser.proxy*", "fs.*", "file.*", "mcp.*", "screen.*", "desktop.*",
            "computer.*", "canvas.*", "terminal.*", "device.*", "location.*", "camera.*",
            "notifications.*", "dir.*", "ollama.*", "workspace.*")
_MOBILE = ("system.notify", "camera.*", "screen.*", "location.*", "contacts.*", "calendar.*",
           "reminders.*", "sms.*", "health.*", "device.*", "canvas.*", "notifications.*",
           "motion.*", "photos.*", "talk.*")
PLATFORM_ALLOW: dict[str, tuple[str, ...]] = {
    "linux": _DESKTOP, "darwin": _DESKTOP + _MOBILE, "macos": _DESKTOP + _MOBILE,
    "win32": _DESKTOP, "windows": _DESKTOP, "ios": _MOBILE, "ipados": _MOBILE,
    "android": _MOBILE,
}


def _match(command: str, patterns: Iterable[str]) -> bool:
    return any(command == p or fnmatchcase(command, p) for p in patterns)


def required_approve_scopes(commands: Iterable[str]) -> list[str]:
    commands = list(commands)
    if not commands:
        return [S.PAIRING]
    if any(c in ADMIN_APPROVE_COMMANDS or c.startswith(ADMIN_APPROVE_PREFIXES)
           for c in commands):
        return [S.PAIRING, S.ADMIN]
    return [S.PAIRING, S.WRITE]


def platform_allows(platform: str | None, command: str) -> bool:
    key = (platform or "").strip().lower()
    patterns = PLATFORM_ALLOW.get(key)
    if patterns is None:  # an unknown platform: any known surface
        patterns = _DESKTOP + _MOBILE
    return _match(command, patterns)


class CommandPolicy:
    """Reads gateway.nodes.commands.{allow,deny} from the raw config."""

    def __init__(self, raw: Mapping[str, Any] | None) -> None:
        nodes = ((raw or {}).get("gateway") or {}).get("nodes") or {}
        commands = nodes.get("commands") or {} if isinstance(nodes, dict) else {}
        self.allow = tuple(x for x in commands.get("allow") or () if isinstance(x, str))
        self.deny = tuple(x for x in commands.get("deny") or () if isinstance(x, str))

    def refusal(self, command: str, platform: str | None, declared: Iterable[str],
                approved: Iterable[str]) -> GatewayError | None:
        """None when the command may run, else the error to answer."""
        if _match(command, self.deny):
            return _not_allowed(command, "is denied by gateway.nodes.commands.deny",
                                "command denied")
        if _match(command, DANGEROUS) and not _match(command, self.allow):
            return _not_allowed(command, "requires explicit gateway.nodes.commands.allow "
                                         "opt-in", "command not allowlisted")
        if not platform_allows(platform, command) and not _match(command, self.allow):
            return _not_allowed(command, "requires explicit gateway.nodes.commands.allow "
                                         "opt-in", "command not allowlisted")
        if command not in set(declared):
            return _not_allowed(command, "is not declared by the node", "command not declared")
        if command not in set(approved):
            return _not_allowed(command, "is not approved for this node (node.pair.approve)",
                                "command not approved")
        return None

    def effective(self, platform: str | None, declared: Iterable[str],
                  approved: Iterable[str]) -> list[str]:
        declared = list(dict.fromkeys(declared))
        return [c for c in declared if self.refusal(c, platform, declared, approved) is None]


def _not_allowed(command: str, why: str, reason: str) -> GatewayError:
    return invalid_request(f'node command not allowed: "{command}" {why}',
                           {"reason": reason, "command": command})
