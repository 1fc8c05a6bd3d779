"""A session's label: trimmed, not empty, at most 512 characters, and unique among the
sessions of its agent, as the reference's ``sessions.patch`` and ``sessions.create`` have it
(``label already in use: <label>`` otherwise; a session keeps its own label)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred

from openclaw_tw.errors import clip, invalid_request
from openclaw_tw.sessions.keys import agent_of

if TYPE_CHECKING:
    from openclaw_tw.sessions.store import SessionStore

MAX_LABEL = 512


def parse_label(raw: str) -> str:
    label = raw.strip()
    if not label:
        raise invalid_request("invalid label: empty")
    if len(label) > MAX_LABEL:
        raise invalid_request(f"invalid label: too long (max {MAX_LABEL})")
    return label


def claim_label(store: SessionStore, key: str, raw: str) -> Deferred[str]:
    """The label session ``key`` may take (parsed); fails ``INVALID_REQUEST`` when another
    session of its agent has it."""
    label = parse_label(raw)

    def taken(in_use: bool) -> str:
        if in_use:
            raise invalid_request(f"label already in use: {clip(label)}")
        return label

    return store.label_taken(agent_of(key), label, key).addCallback(taken)
