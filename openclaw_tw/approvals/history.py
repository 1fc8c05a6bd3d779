"""Terminal exec approvals, kept 30 days for ``approval.history`` (the Control UI's Approvals page).

Every approval that ends -- allowed or denied by an operator, denied because no approval client
could be asked, expired -- is written here (nodes.sqlite, owner ``approval-history``) by the
``ExecApprovals`` service, before anything reads it back: both go through the one database
thread.  Reads page newest first by (resolvedAtMs, id), with the real gateway's cursor (base64url
of ``{"v":1,"resolvedAtMs":…,"id":…}``, re-encoded exactly on decode) and its 50/100 limits
(``listTerminalOperatorApprovalsInDatabase``).  Items have the real projection's shape
(``projectOperatorApprovalSnapshot`` + ``buildApprovalSnapshot``).
"""

from __future__ import annotations

import binascii
import json
import sqlite3
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from openclaw_tw import _json
from openclaw_tw.b64 import b64url, b64url_decode
from openclaw_tw.db import Database

_log = Logger(namespace="approvals")

RETENTION_MS = 30 * 24 * 3600 * 1000  # OPERATOR_APPROVAL_TERMINAL_RETENTION_MS
DEFAULT_LIMIT = 50
MAX_LIMIT = 100

MIGRATION = [
    """CREATE TABLE approval_history (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        resolved_at INTEGER NOT NULL,
        requester_device TEXT,
        record TEXT NOT NULL
    )""",
    "CREATE INDEX approval_history_order ON approval_history (resolved_at DESC, id DESC)",
]


class CursorError(ValueError):
    """An ``approval.history`` cursor we did not issue."""


def encode_cursor(resolved_at: int, approval_id: str) -> str:
    raw = json.dumps({"v": 1, "resolvedAtMs": resolved_at, "id": approval_id},
                     separators=(",", ":"), ensure_ascii=False)
    return b64url(raw.encode("utf-8"))


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        data = json.loads(b64url_decode(cursor))
    except (binascii.Error, ValueError, UnicodeDecodeError) as e:
        raise CursorError(cursor) from e
    if not isinstance(data, dict) or data.get("v") != 1:
        raise CursorError(cursor)
    resolved_at, approval_id = data.get("resolvedAtMs"), data.get("id")
    if isinstance(resolved_at, bool) or not isinstance(resolved_at, int) or resolved_at < 0 or \
            not isinstance(approval_id, str) or approval_id in ("", ".", ".."):
        raise CursorError(cursor)
    if encode_cursor(resolved_at, approval_id) != cursor:
        raise CursorError(cursor)
    return resolved_at, approval_id


def history_item(record: dict[str, Any], base_path: str) -> dict[str, Any]:
    """One stored record as an ``approval.history`` item (keys in the real gateway's order)."""
    item: dict[str, Any] = {
        "id": record["id"], "status": record["status"],
        "presentation": record["presentation"],
        "urlPath": f"{base_path}/approve/{quote(record['id'], safe='')}",
        "createdAtMs": record["createdAtMs"], "expiresAtMs": record["expiresAtMs"],
        "resolvedAtMs": record["resolvedAtMs"], "reason": record["reason"]}
    if record.get("decision") is not None:
        item["decision"] = record["decision"]
    item["source"] = {k: record["source"][k] for k in ("agentId", "sessionKey")
                      if record["source"].get(k)}
    if record.get("resolver"):
        item["resolver"] = record["resolver"]
    return item


class ApprovalHistory:
    def __init__(self, db: Database, now_ms: Callable[[], int]) -> None:
        self.db = db
        self.now_ms = now_ms

    def load(self) -> int:
        """Start-up: drop what is past the retention; how many rows were dropped."""
        cutoff = self.now_ms() - RETENTION_MS
        return self.db.run_now(lambda c: c.execute(
            "DELETE FROM approval_history WHERE resolved_at < ?", (cutoff,)).rowcount)

    def record(self, record: dict[str, Any], requester_device: str | None) -> Deferred[None]:
        """Store one terminal approval (``record``: id, kind, status, presentation, createdAtMs,
        expiresAtMs, resolvedAtMs, reason, decision?, source, resolver?)."""
        data = _json.dumps(record).decode("utf-8")

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR REPLACE INTO approval_history (id, kind, resolved_at, "
                         "requester_device, record) VALUES (?, ?, ?, ?, ?)",
                         (record["id"], record["kind"], record["resolvedAtMs"], requester_device,
                          data))

        d = self.db.run(write)
        d.addErrback(lambda f: _log.failure("could not record approval {id} in the history",
                                            f, id=record["id"]))
        return d

    def page(self, *, cursor: str | None, limit: int | None, kind: str | None,
             device_id: str | None, admin: bool, base_path: str) -> Deferred[dict[str, Any]]:
        """A page of history items visible to the caller (admins see every approval, others
        the ones their device asked for).  Raises ``CursorError`` for a foreign cursor."""
        after = decode_cursor(cursor) if cursor is not None else None
        size = max(1, min(limit or DEFAULT_LIMIT, MAX_LIMIT))
        cutoff = self.now_ms() - RETENTION_MS
        where = ["resolved_at >= ?"]
        args: list[Any] = [cutoff]
        if kind:
            where.append("kind = ?")
            args.append(kind)
        if not admin:
            where.append("requester_device IS NOT NULL AND requester_device = ?")
            args.append(device_id or "")
        if after is not None:
            where.append("(resolved_at < ? OR (resolved_at = ? AND id < ?))")
            args += [after[0], after[0], after[1]]
        sql = (f"SELECT record FROM approval_history WHERE {' AND '.join(where)} "
               "ORDER BY resolved_at DESC, id DESC LIMIT ?")

        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            return [_json.loads(r) for (r,) in conn.execute(sql, (*args, size + 1))]

        def shape(records: list[dict[str, Any]]) -> dict[str, Any]:
            items = [history_item(r, base_path) for r in records[:size]]
            out: dict[str, Any] = {"items": items}
            if len(records) > size:
                last = records[size - 1]
                out["nextCursor"] = encode_cursor(last["resolvedAtMs"], last["id"])
            return out

        return self.db.run(read).addCallback(shape)
