"""Which agent answers an inbound message: the config's ``bindings[]``, most specific first.

The order of the real gateway's channel routing: an exact peer match, then the parent peer (a
thread inherits its group's binding), then a peer wildcard (``peer.id: "*"`` for that kind),
then the account (``match.accountId``), then the channel (no account, or ``accountId: "*"``),
then the default agent (``agents.list[]`` entry with ``default: true``, else ``main``).  A
binding may also override ``session.dmScope`` / ``session.groupScope`` for what it matches.
Discord guild/role and Slack team matches have no provider here and never match.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openclaw_tw.channels.message import Inbound
from openclaw_tw.sessions.keys import normalize_agent_id

PEER_KINDS = {"dm": ("direct", "dm"), "group": ("group", "channel"),
              "thread": ("group", "channel", "thread")}


def _rank(binding: Mapping[str, Any], msg: Inbound) -> int | None:
    """How specifically ``binding`` matches ``msg`` (lower is better), or None."""
    match = binding.get("match")
    if not isinstance(match, Mapping) or not isinstance(binding.get("agentId"), str):
        return None
    if match.get("channel") != msg.channel:
        return None  # a binding names its channel
    if any(k in match for k in ("guildId", "teamId", "roles")):
        return None
    account = match.get("accountId")
    if account not in (None, "*", msg.account_id):
        return None
    peer = match.get("peer")
    if not isinstance(peer, Mapping):
        return 3 if account == msg.account_id else 4
    if str(peer.get("kind", "")).lower() not in PEER_KINDS[msg.chat_type]:
        return None
    pid = str(peer.get("id", "")).lower()
    own = (msg.sender_id if msg.chat_type == "dm" else msg.peer_id).lower()
    if pid == "*":
        return 2
    if msg.thread_id:
        return 0 if pid == msg.thread_id.lower() else 1 if pid == own else None
    return 0 if pid == own else None


def resolve(raw: Mapping[str, Any], msg: Inbound) -> tuple[str, dict[str, Any]]:
    """``(agentId, session overrides)`` for ``msg``."""
    best: tuple[int, int, Mapping[str, Any]] | None = None
    bindings = raw.get("bindings")
    for i, b in enumerate(bindings if isinstance(bindings, list) else []):
        if not isinstance(b, Mapping):
            continue
        rank = _rank(b, msg)
        if rank is not None and (best is None or (rank, i) < best[:2]):
            best = (rank, i, b)
    if best is not None:
        session = best[2].get("session")
        return (normalize_agent_id(best[2]["agentId"]),
                dict(session) if isinstance(session, Mapping) else {})
    return default_agent(raw), {}


def default_agent(raw: Mapping[str, Any]) -> str:
    agents = raw.get("agents")
    entries = agents.get("list") if isinstance(agents, Mapping) else None
    if isinstance(entries, list):
        for a in entries:
            if isinstance(a, Mapping) and a.get("default") is True and a.get("id"):
                return normalize_agent_id(str(a["id"]))
    return "main"
