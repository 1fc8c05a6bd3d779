"""The one inbound message shape every provider produces, and where it is routed (§12.1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

ChatType = Literal["dm", "group", "thread"]


@attrs.frozen
class Inbound:
    channel: str
    account_id: str
    chat_type: ChatType
    peer_id: str  # the DM partner, or the group/room id
    sender_id: str
    text: str
    sender_label: str = ""
    mentioned: bool = False
    reply_to: str | None = None
    thread_id: str | None = None
    ts: int = 0
    message_id: str | None = None

    @property
    def reply_target(self) -> str:
        """Where the answer goes: the group, or the sender of a DM."""
        return self.sender_id if self.chat_type == "dm" else self.peer_id


def session_key(msg: Inbound, raw: Mapping[str, Any], agent_id: str = "main") -> str:
    """The session for an inbound message per ``session.dmScope`` / ``session.groupScope``."""
    session = raw.get("session") if isinstance(raw.get("session"), Mapping) else {}
    if msg.chat_type == "dm":
        peer = msg.sender_id.lower()
        scope = session.get("dmScope", "main")
        if scope == "per-peer":
            base = f"agent:{agent_id}:direct:{peer}"
        elif scope == "per-channel-peer":
            base = f"agent:{agent_id}:{msg.channel}:direct:{peer}"
        elif scope == "per-account-channel-peer":
            base = f"agent:{agent_id}:{msg.channel}:{msg.account_id}:direct:{peer}"
        else:
            return f"agent:{agent_id}:main"
    else:
        if session.get("groupScope") == "main":
            return f"agent:{agent_id}:main"
        base = f"agent:{agent_id}:{msg.channel}:group:{msg.peer_id.lower()}"
    if msg.thread_id:
        base += f":thread:{msg.thread_id}"
    return base
