"""sessions.branches.list: the branches of a session's transcript.

The real gateway keeps a transcript as a tree (rewinds and forks start new branches) and lists
each tip: its leaf entry, a headline (the text of the newest user or assistant message on that
path, whitespace collapsed, at most 120 characters), how many messages the path holds, the
leaf's timestamp and whether it is the active branch (``session-accessor.sqlite-branches.ts``).
A transcript here is append-only and linear, so a session that has entries has exactly one
branch, the active one; a session without a row or without entries has none (the real answer
on a fresh install).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed

from openclaw_tw.methods.sessions import entry_text
from openclaw_tw.protocol.dispatch import CallContext, rpc
from openclaw_tw.protocol.schema import Obj, Str
from openclaw_tw.sessions.keys import resolve_key
from openclaw_tw.sessions.store import Entry, SessionRow, SessionStore
from openclaw_tw.timefmt import iso_ms

_S1 = Str(min_len=1)
BRANCHES = Obj({"sessionKey": _S1}, {"agentId": _S1})
HEADLINE_MAX = 120
MESSAGE_ROLES = ("user", "assistant", "tool")
# The newest entries searched for a headline.
HEADLINE_WINDOW = 200


def headline(entries: list[Entry]) -> str:
    for entry in reversed(entries):
        if entry.role in ("user", "assistant"):
            text = " ".join(entry_text(entry).split())
            if text:
                return text if len(text) <= HEADLINE_MAX else text[:HEADLINE_MAX - 1] + "…"
    return ""


class SessionBranchesMethods:
    def __init__(self, store: SessionStore) -> None:
        self.store = store

    @rpc("sessions.branches.list", BRANCHES)
    def branches_list(self, ctx: CallContext, params: dict[str, Any]
                      ) -> Deferred[dict[str, Any]]:
        return self.store.get(resolve_key(params["sessionKey"].strip(),
                                          agent_id=params.get("agentId"))).addCallback(
            self._branches)

    def _branches(self, row: SessionRow | None) -> Deferred[dict[str, Any]]:
        if row is None:
            return succeed({"branches": []})
        d = self.store.history(row.key, HEADLINE_WINDOW, None, row.session_id)
        return d.addCallback(self._counted, row.key, row.session_id)

    def _counted(self, entries: list[Entry], key: str, session_id: str
                 ) -> Deferred[dict[str, Any]] | dict[str, Any]:
        if not entries:
            return {"branches": []}
        d = self.store.count_entries(key, session_id, MESSAGE_ROLES)
        return d.addCallback(_branch, entries)


def _branch(messages: int, entries: list[Entry]) -> dict[str, Any]:
    leaf = entries[-1]
    return {"branches": [{"leafEntryId": leaf.entry_id, "headline": headline(entries),
                          "messageCount": messages, "updatedAt": iso_ms(leaf.ts),
                          "active": True}]}
