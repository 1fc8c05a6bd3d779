"""The one inbound message shape every provider produces, and where it is routed (§12.1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from openclaw_tw.sessions.keys import peer_key

ChatType = Literal["dm", "group", "thread"]


@attrs.frozen
class Inbound:
    channel: str
    account_id: str
    chat_type: ChatType
    peer_id: str  # whose session: the DM partner (or DM room), or the group/room id
    sender_id: str
    text: str
    sender_label: str = ""
    mentioned: bool = False
    reply_to: str | None = None
    thread_id: str | None = None
    ts: int = 0
    message_id: str | None = None
    conversation: str | None = None  # where replies go when that is not the peer (a Matrix room)

    @property
    def reply_target(self) -> str:
        """Where the answer goes: the conversation, else the group, or the sender of a DM."""
        if self.conversation:
            return self.conversation
        return self.sender_id if self.chat_type == "dm" else self.peer_id


PEER_SCOPES = ("per-peer", "per-channel-peer", "per-account-channel-peer")


def split_text(text: str, limit: int) -> list[str]:
    """Chunks of at most ``limit`` characters, cut at the last newline (or space) before the
    limit; never an empty chunk."""
    out: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        if cut <= 0:
            cut = text.rfind(" ", 0, limit)
        if cut <= 0:
            cut = limit
        out.append(text[:cut])
        text = text[cut:].lstrip("\n ")
    if text:
        out.append(text)
    return out


def session_key(msg: Inbound, raw: Mapping[str, Any], agent_id: str = "main",
                overrides: Mapping[str, Any] | None = None) -> str:
    """The session for an inbound message per ``session.dmScope`` / ``session.groupScope``
    (a matching binding's ``session`` overrides them)."""
    session = raw.get("session") if isinstance(raw.get("session"), Mapping) else {}
    session = {**session, **(overrides or {})}
    dm_scope = str(session.get("dmScope", "main"))
    group_scope = str(session.get("groupScope", "per-group"))
    shared = dm_scope not in PEER_SCOPES if msg.chat_type == "dm" else group_scope == "main"
    return peer_key(agent_id, msg.channel, msg.chat_type, msg.peer_id,
                    account_id=msg.account_id, dm_scope=dm_scope, group_scope=group_scope,
                    thread_id=None if shared else msg.thread_id)  # threads never split main
