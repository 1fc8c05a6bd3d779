"""Session key grammar (§12.1): canonical stored keys are ``agent:<agentId>:<rest>``.

Request-side keys resolve with ``resolve_key``: empty or the main key -> the agent's main
session; ``agent:<id>:<rest>`` is kept (agent id lowercased); the sentinels ``global`` and
``unknown`` stay unscoped; anything else lives under the default agent.  ``peer_key`` builds
the DM/group/thread shapes that channels use, driven by ``session.dmScope``/``groupScope``.
"""

from __future__ import annotations

SENTINELS = frozenset({"global", "unknown"})
RESERVED_PREFIXES = ("subagent:", "cron:", "acp:", "incognito-")
DM_SCOPES = ("main", "per-peer", "per-channel-peer", "per-account-channel-peer")
GROUP_SCOPES = ("per-group", "main")


def normalize_agent_id(agent_id: str | None, default: str = "main") -> str:
    value = (agent_id or "").strip().lower()
    return value or default


def main_key(agent_id: str, main: str = "main") -> str:
    return f"agent:{normalize_agent_id(agent_id)}:{main}"


def resolve_key(raw: str | None, default_agent: str = "main", main: str = "main",
                agent_id: str | None = None) -> str:
    """The canonical store key for a key as a client sends it."""
    agent = normalize_agent_id(agent_id, default_agent)
    key = (raw or "").strip()
    if not key or key == main:
        return main_key(agent, main)
    if key in SENTINELS:
        return key
    if key.startswith("agent:"):
        parts = key.split(":", 2)
        if len(parts) == 3 and parts[1] and parts[2]:
            return f"agent:{normalize_agent_id(parts[1])}:{parts[2]}"
        return main_key(normalize_agent_id(parts[1] if len(parts) > 1 else None), main)
    return f"agent:{agent}:{key}"


def explicit_key(agent_id: str | None, session_id: str) -> str:
    """Where an ``agent`` turn named only by a session id that no row has (or by nothing at
    all: then the run id) is filed: ``agent:<agent>:explicit:<id>``, lowercased like every
    stored key (the row keeps the id as sent)."""
    return f"agent:{normalize_agent_id(agent_id)}:explicit:{session_id.strip().lower()}"


def agent_of(key: str, default_agent: str = "main") -> str:
    if key.startswith("agent:"):
        parts = key.split(":", 2)
        if len(parts) >= 2 and parts[1]:
            return parts[1]
    return default_agent


def rest_of(key: str) -> str:
    parts = key.split(":", 2)
    return parts[2] if key.startswith("agent:") and len(parts) == 3 else key


def is_reserved(raw: str) -> bool:
    return raw.strip().lower().startswith(RESERVED_PREFIXES)


def peer_key(agent_id: str, channel: str, chat_type: str, peer_id: str, *,
             account_id: str = "default", dm_scope: str = "main",
             group_scope: str = "per-group", thread_id: str | None = None,
             main: str = "main") -> str:
    """The session key for a channel conversation (DM, group/channel, thread)."""
    agent = normalize_agent_id(agent_id)
    peer = peer_id.strip().lower()
    channel = channel.strip().lower()
    if chat_type == "dm":
        if dm_scope == "per-peer":
            base = f"agent:{agent}:direct:{peer}"
        elif dm_scope == "per-channel-peer":
            base = f"agent:{agent}:{channel}:direct:{peer}"
        elif dm_scope == "per-account-channel-peer":
            base = f"agent:{agent}:{channel}:{account_id}:direct:{peer}"
        else:
            base = main_key(agent, main)
    else:
        kind = "channel" if chat_type == "channel" else "group"
        base = main_key(agent, main) if group_scope == "main" else \
            f"agent:{agent}:{channel}:{kind}:{peer}"
    if thread_id:
        base += f":thread:{thread_id.strip().lower()}"
    return base


def kind_of(key: str) -> str:
    """``sessions.list`` row kind: direct, group, global, unknown."""
    if key in SENTINELS:
        return key
    if "group" not in key and "channel" not in key:  # most keys: no split needed
        return "direct"
    rest = rest_of(key)
    if ":group:" in f":{rest}:" or ":channel:" in f":{rest}:":
        return "group"
    return "direct"
