"""Provider cursors (Telegram ``getUpdates`` offset, Matrix ``since``) in nodes.sqlite, so a
restart resumes where the last accepted message left off instead of replaying or skipping.
Also the Matrix access token a password login minted (row ``matrix:credentials``)."""

from __future__ import annotations

import sqlite3
from typing import Any

from twisted.internet.defer import Deferred

from openclaw_tw.db import Database

MIGRATION = [
    """CREATE TABLE channel_cursors (
        channel TEXT NOT NULL,
        account_id TEXT NOT NULL,
        cursor TEXT NOT NULL,
        PRIMARY KEY (channel, account_id)
    )""",
]


class Cursors:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.values: dict[tuple[str, str], str] = {}

    def load(self) -> None:
        def read(conn: sqlite3.Connection) -> list[Any]:
            return conn.execute(
                "SELECT channel, account_id, cursor FROM channel_cursors").fetchall()

        self.values = {(c, a): v for c, a, v in self.db.run_now(read)}

    def get(self, channel: str, account_id: str) -> str | None:
        return self.values.get((channel, account_id))

    def save(self, channel: str, account_id: str, cursor: str) -> Deferred[Any]:
        self.values[(channel, account_id)] = cursor
        return self.db.run(lambda c: c.execute(
            "INSERT OR REPLACE INTO channel_cursors VALUES (?, ?, ?)",
            (channel, account_id, cursor)))

    def forget(self, channel: str, account_id: str) -> Deferred[Any]:
        self.values.pop((channel, account_id), None)
        return self.db.run(lambda c: c.execute(
            "DELETE FROM channel_cursors WHERE channel = ? AND account_id = ?",
            (channel, account_id)))
