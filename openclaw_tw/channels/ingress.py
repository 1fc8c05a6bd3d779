"""The durable ingress queue: an accepted inbound message is written before it is dispatched
and removed once its turn (and reply) has finished, so a crash or restart in between replays it
when the account next connects instead of losing it (at-least-once; a reply that was sent just
before a crash may be sent again).  An account with ``BACKLOG`` messages in flight stops reading
from its provider (IRC pauses the socket, the pollers stop polling) until they drain; one that
still gets past ``MAX_IN_FLIGHT`` (a batch already read) is refused and counted, so memory never
grows without bound.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import attrs
from twisted.internet.defer import Deferred

from openclaw_tw import _json
from openclaw_tw.channels.message import Inbound
from openclaw_tw.db import Database

BACKLOG = 64
MAX_IN_FLIGHT = 256

MIGRATION = [
    """CREATE TABLE channel_ingress (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        channel TEXT NOT NULL,
        account_id TEXT NOT NULL,
        record TEXT NOT NULL,
        accepted_at INTEGER NOT NULL
    )""",
]


class Ingress:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.unfinished: dict[tuple[str, str], list[tuple[int, Inbound]]] = {}

    def load(self) -> None:
        """Messages a previous run accepted but did not finish, to replay on connect."""

        def read(conn: sqlite3.Connection) -> list[Any]:
            return conn.execute(
                "SELECT id, channel, account_id, record FROM channel_ingress ORDER BY id"
            ).fetchall()

        for row_id, channel, account, record in self.db.run_now(read):
            msg = Inbound(**_json.loads(record))
            self.unfinished.setdefault((channel, account), []).append((row_id, msg))

    def take_unfinished(self, channel: str, account_id: str) -> list[tuple[int, Inbound]]:
        return self.unfinished.pop((channel, account_id), [])

    def accept(self, msg: Inbound, now_ms: int) -> Deferred[int]:
        record = _json.dumps(attrs.asdict(msg)).decode()

        def write(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "INSERT INTO channel_ingress (channel, account_id, record, accepted_at) "
                "VALUES (?, ?, ?, ?)", (msg.channel, msg.account_id, record, now_ms))
            return int(cur.lastrowid or 0)

        return self.db.run(write)

    def done(self, row_id: int) -> Deferred[Any]:
        return self.db.run(lambda c: c.execute("DELETE FROM channel_ingress WHERE id = ?",
                                               (row_id,)))
