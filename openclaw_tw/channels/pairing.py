"""DM pairing: unknown senders get a short code; their messages wait until an operator approves.

Behaviour follows the real gateway's pairing docs: 8 upper-case characters without the
ambiguous ``0 O 1 I``, one hour to live, at most three pending requests per channel account
(further requests are ignored until one expires or is approved), and a sender that asks again
while pending keeps the same code.  Approval adds the sender to the account's DM allow list.

State lives in the nodes database (``pairing`` state); memory is the read path and every change
is written through ``Database.run`` before the caller's Deferred fires, so an approval that was
acknowledged survives a restart.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable
from typing import Any

import attrs
from twisted.internet.defer import Deferred, succeed

from openclaw_tw import _json
from openclaw_tw.db import Database

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
TTL_MS = 60 * 60 * 1000
PENDING_PER_ACCOUNT = 3

MIGRATION = [
    """CREATE TABLE channel_pairing_requests (
        code TEXT PRIMARY KEY,
        record TEXT NOT NULL
    )""",
    """CREATE TABLE channel_allow_from (
        channel TEXT NOT NULL,
        account_id TEXT NOT NULL,
        sender_id TEXT NOT NULL,
        approved_at INTEGER NOT NULL,
        PRIMARY KEY (channel, account_id, sender_id)
    )""",
]


def new_code(existing: set[str]) -> str:
    while True:
        code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
        if code not in existing:
            return code


@attrs.define
class PairingRequest:
    code: str
    channel: str
    account_id: str
    sender_id: str
    sender_label: str
    created_at: int
    last_seen_at: int
    metadata: dict[str, str] = attrs.Factory(dict)

    @property
    def expires_at(self) -> int:
        return self.created_at + TTL_MS

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


class PairingError(Exception):
    """An approve/dismiss that names no pending request."""


class DmPairing:
    def __init__(self, db: Database, now_ms: Callable[[], int]) -> None:
        self.db = db
        self.now_ms = now_ms
        self.requests: dict[str, PairingRequest] = {}
        self.allowed: dict[tuple[str, str], dict[str, int]] = {}

    # -- start-up ------------------------------------------------------------------------------

    def load(self) -> None:
        def read(conn: sqlite3.Connection) -> tuple[list[Any], list[Any]]:
            reqs = conn.execute("SELECT record FROM channel_pairing_requests").fetchall()
            allow = conn.execute(
                "SELECT channel, account_id, sender_id, approved_at FROM channel_allow_from"
            ).fetchall()
            return reqs, allow

        reqs, allow = self.db.run_now(read)
        for (record,) in reqs:
            req = PairingRequest(**_json.loads(record))
            self.requests[req.code] = req
        for channel, account, sender, at in allow:
            self.allowed.setdefault((channel, account), {})[sender] = at
        self._expire()

    # -- queries -------------------------------------------------------------------------------

    def is_allowed(self, channel: str, account_id: str, sender_id: str) -> bool:
        return sender_id in self.allowed.get((channel, account_id), {})

    def pending(self, channel: str | None = None,
                account_id: str | None = None) -> list[PairingRequest]:
        self._expire()
        return sorted(
            (r for r in self.requests.values()
             if (channel is None or r.channel == channel)
             and (account_id is None or r.account_id == account_id)),
            key=lambda r: (r.created_at, r.code))

    # -- changes -------------------------------------------------------------------------------

    def request(self, channel: str, account_id: str, sender_id: str, sender_label: str = "",
                metadata: dict[str, str] | None = None
                ) -> Deferred[tuple[PairingRequest | None, bool]]:
        """Ask for access.  Fires ``(request, created)``; ``(None, False)`` when the account
        already has the maximum pending.  Only a *created* request should be answered with the
        pairing message, so a chatty sender is not answered on every message."""
        now = self.now_ms()
        pending = self.pending(channel, account_id)
        for req in pending:
            if req.sender_id == sender_id:
                req.last_seen_at = now
                return self._save(req).addCallback(lambda _, r=req: (r, False))
        if len(pending) >= PENDING_PER_ACCOUNT:
            return succeed((None, False))
        req = PairingRequest(new_code(set(self.requests)), channel, account_id, sender_id,
                             sender_label or sender_id, now, now, dict(metadata or {}))
        self.requests[req.code] = req
        return self._save(req).addCallback(lambda _: (req, True))

    def approve(self, channel: str, code: str, account_id: str | None = None
                ) -> Deferred[PairingRequest]:
        req = self._take(channel, code, account_id)
        now = self.now_ms()
        self.allowed.setdefault((req.channel, req.account_id), {})[req.sender_id] = now

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM channel_pairing_requests WHERE code = ?", (req.code,))
            conn.execute(
                "INSERT OR REPLACE INTO channel_allow_from VALUES (?, ?, ?, ?)",
                (req.channel, req.account_id, req.sender_id, now))

        return self.db.run(write).addCallback(lambda _: req)

    def dismiss(self, channel: str, code: str, account_id: str | None = None
                ) -> Deferred[PairingRequest]:
        req = self._take(channel, code, account_id)
        return self.db.run(lambda c: c.execute(
            "DELETE FROM channel_pairing_requests WHERE code = ?", (req.code,))
        ).addCallback(lambda _: req)

    # -- internals -----------------------------------------------------------------------------

    def _take(self, channel: str, code: str, account_id: str | None) -> PairingRequest:
        self._expire()
        req = self.requests.get(code.strip().upper())
        if req is None or req.channel != channel or (
                account_id is not None and req.account_id != account_id):
            raise PairingError(f"No pending pairing request found for code: {code}")
        del self.requests[req.code]
        return req

    def _save(self, req: PairingRequest) -> Deferred[Any]:
        return self.db.run(lambda c: c.execute(
            "INSERT OR REPLACE INTO channel_pairing_requests VALUES (?, ?)",
            (req.code, _json.dumps(req.to_json()).decode())))

    def _expire(self) -> None:
        now = self.now_ms()
        stale = [c for c, r in self.requests.items() if r.expires_at <= now]
        for code in stale:
            del self.requests[code]
        if stale:
            self.db.run(lambda c: c.executemany(
                "DELETE FROM channel_pairing_requests WHERE code = ?", [(s,) for s in stale]))
