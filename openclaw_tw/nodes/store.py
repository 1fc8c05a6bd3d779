"""Persistence for nodes and exec approvals: ``<state>/state/nodes.sqlite``.

Approved node surfaces (what an operator approved with ``node.pair.approve``), pending node
pairing requests (a restart keeps them, with their request ids) and pending exec approvals
(so they survive a restart and still expire on time).  All writes go through
``Database.run``; rows are loaded once at start-up.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import attrs
from twisted.internet.defer import Deferred

from openclaw_tw import _json
from openclaw_tw.db import Database

MIGRATIONS = [
    [
        """CREATE TABLE nodes (
            node_id TEXT PRIMARY KEY,
            record TEXT NOT NULL
        )""",
        """CREATE TABLE exec_approvals (
            id TEXT PRIMARY KEY,
            record TEXT NOT NULL,
            expires_at INTEGER NOT NULL
        )""",
    ],
    [  # pending node pairing requests survive a restart (same requestId after it)
        """CREATE TABLE node_pair_requests (
            request_id TEXT PRIMARY KEY,
            record TEXT NOT NULL
        )""",
    ],
]


def nodes_db_path(state_dir: Path) -> Path:
    return state_dir / "state" / "nodes.sqlite"


@attrs.define
class ApprovedNode:
    """A node's approved surface and bookkeeping (the paired record)."""

    node_id: str
    client_id: str | None = None
    client_mode: str | None = None
    platform: str | None = None
    version: str | None = None
    device_family: str | None = None
    display_name: str | None = None
    caps: list[str] = attrs.Factory(list)
    commands: list[str] = attrs.Factory(list)
    created_at: int = 0
    approved_at: int = 0
    last_seen_at: int | None = None
    last_seen_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ApprovedNode:
        names = {a.name for a in attrs.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


class NodeStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.nodes: dict[str, ApprovedNode] = {}
        self.pair_requests: list[dict[str, Any]] = []  # as loaded; the registry owns them

    def load(self) -> list[dict[str, Any]]:
        """Load approved nodes; return the persisted pending approvals (raw records)."""
        def read(conn: sqlite3.Connection) -> tuple[list[Any], list[Any], list[Any]]:
            nodes = conn.execute("SELECT record FROM nodes").fetchall()
            approvals = conn.execute("SELECT record FROM exec_approvals").fetchall()
            requests = conn.execute("SELECT record FROM node_pair_requests").fetchall()
            return nodes, approvals, requests

        nodes, approvals, requests = self.db.run_now(read)
        self.pair_requests = [_json.loads(r) for (r,) in requests]
        for (record,) in nodes:
            node = ApprovedNode.from_json(_json.loads(record))
            self.nodes[node.node_id] = node
        return [_json.loads(r) for (r,) in approvals]

    def save_node(self, node: ApprovedNode) -> Deferred[None]:
        self.nodes[node.node_id] = node
        record = _json.dumps(node.to_json()).decode()
        return self.db.run(lambda c: c.execute(
            "INSERT OR REPLACE INTO nodes (node_id, record) VALUES (?, ?)",
            (node.node_id, record)) and None)

    def remove_node(self, node_id: str) -> Deferred[None]:
        self.nodes.pop(node_id, None)
        return self.db.run(lambda c: c.execute(
            "DELETE FROM nodes WHERE node_id = ?", (node_id,)) and None)

    def save_pair_request(self, request_id: str, record: dict[str, Any]) -> Deferred[None]:
        data = _json.dumps(record).decode()
        return self.db.run(lambda c: c.execute(
            "INSERT OR REPLACE INTO node_pair_requests (request_id, record) VALUES (?, ?)",
            (request_id, data)) and None)

    def remove_pair_request(self, request_id: str) -> Deferred[None]:
        return self.db.run(lambda c: c.execute(
            "DELETE FROM node_pair_requests WHERE request_id = ?", (request_id,)) and None)

    def save_approval(self, approval_id: str, record: dict[str, Any],
                      expires_at: int) -> Deferred[None]:
        data = _json.dumps(record).decode()
        return self.db.run(lambda c: c.execute(
            "INSERT OR REPLACE INTO exec_approvals (id, record, expires_at) VALUES (?, ?, ?)",
            (approval_id, data, expires_at)) and None)

    def remove_approval(self, approval_id: str) -> Deferred[None]:
        return self.db.run(lambda c: c.execute(
            "DELETE FROM exec_approvals WHERE id = ?", (approval_id,)) and None)
