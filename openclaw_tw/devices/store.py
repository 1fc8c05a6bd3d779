"""Paired devices, pending pairing requests and device tokens, in SQLite with a memory mirror.

Reads come from the in-memory mirror (loaded once at start-up), so the connect path never waits
on disk; every change is written through the database thread and the caller's Deferred fires
only after the transaction commits.  Token values are never stored: only SHA-256 digests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
from typing import Any

import attrs
from twisted.internet.defer import Deferred

from openclaw_tw.db import Database

MIGRATIONS = [
    [
        """CREATE TABLE devices (
            device_id TEXT PRIMARY KEY, public_key TEXT NOT NULL, platform TEXT,
            device_family TEXT, client_id TEXT, client_mode TEXT, roles TEXT NOT NULL,
            scopes TEXT NOT NULL, approved_via TEXT NOT NULL, label TEXT, remote_ip TEXT,
            created_at INTEGER NOT NULL, approved_at INTEGER NOT NULL,
            last_seen_at INTEGER, last_seen_reason TEXT)""",
        """CREATE TABLE pending (
            request_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, public_key TEXT NOT NULL,
            platform TEXT, device_family TEXT, client_id TEXT, client_mode TEXT,
            role TEXT NOT NULL, scopes TEXT NOT NULL, reason TEXT NOT NULL, remote_ip TEXT,
            silent INTEGER NOT NULL, is_repair INTEGER NOT NULL, ts INTEGER NOT NULL,
            expires_at INTEGER NOT NULL)""",
        """CREATE TABLE tokens (
            device_id TEXT NOT NULL REFERENCES devices(device_id) ON DELETE CASCADE,
            role TEXT NOT NULL, token_hash TEXT NOT NULL, scopes TEXT NOT NULL,
            created_at INTEGER NOT NULL, last_used_at INTEGER,
            PRIMARY KEY (device_id, role))""",
    ]
]

PENDING_TTL_MS = 10 * 60 * 1000


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


@attrs.define
class DeviceToken:
    role: str
    token_hash: str
    scopes: list[str]
    created_at: int
    last_used_at: int | None = None

    def matches(self, token: str) -> bool:
        return hmac.compare_digest(hash_token(token), self.token_hash)

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "scopes": list(self.scopes),
                               "createdAtMs": self.created_at}
        if self.last_used_at is not None:
            out["lastUsedAtMs"] = self.last_used_at
        return out


@attrs.define
class PairedDevice:
    device_id: str
    public_key: str
    platform: str | None
    device_family: str | None
    client_id: str | None
    client_mode: str | None
    roles: list[str]
    scopes: list[str]
    approved_via: str
    created_at: int
    approved_at: int
    label: str | None = None
    remote_ip: str | None = None
    last_seen_at: int | None = None
    last_seen_reason: str | None = None
    tokens: dict[str, DeviceToken] = attrs.field(factory=dict)

    def public(self, connected: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "deviceId": self.device_id, "publicKey": self.public_key,
            "platform": self.platform, "deviceFamily": self.device_family,
            "clientId": self.client_id, "clientMode": self.client_mode,
            "role": self.roles[0] if self.roles else None, "roles": list(self.roles),
            "scopes": list(self.scopes), "remoteIp": self.remote_ip,
            "approvedVia": self.approved_via, "label": self.label,
            "createdAtMs": self.created_at, "approvedAtMs": self.approved_at,
            "lastSeenAtMs": self.last_seen_at, "lastSeenReason": self.last_seen_reason,
            "connected": connected,
            "tokens": [t.public() for t in self.tokens.values()],
        }
        return {k: v for k, v in out.items() if v is not None}


@attrs.define
class PendingRequest:
    request_id: str
    device_id: str
    public_key: str
    platform: str | None
    device_family: str | None
    client_id: str | None
    client_mode: str | None
    role: str
    scopes: list[str]
    reason: str
    remote_ip: str | None
    silent: bool
    is_repair: bool
    ts: int
    expires_at: int

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "requestId": self.request_id, "deviceId": self.device_id,
            "publicKey": self.public_key, "platform": self.platform,
            "deviceFamily": self.device_family, "clientId": self.client_id,
            "clientMode": self.client_mode, "role": self.role, "roles": [self.role],
            "scopes": list(self.scopes), "reason": self.reason, "remoteIp": self.remote_ip,
            "silent": self.silent, "isRepair": self.is_repair, "ts": self.ts,
        }
        return {k: v for k, v in out.items() if v is not None}


def _j(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class DeviceStore:
    """The mirror plus write-through operations; all mutators return Deferreds."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.devices: dict[str, PairedDevice] = {}
        self.pending: dict[str, PendingRequest] = {}

    # -- start-up --------------------------------------------------------------------------------

    def load(self) -> None:
        def read(conn: sqlite3.Connection) -> None:
            conn.row_factory = sqlite3.Row
            try:
                for r in conn.execute("SELECT * FROM devices"):
                    self.devices[r["device_id"]] = PairedDevice(
                        r["device_id"], r["public_key"], r["platform"], r["device_family"],
                        r["client_id"], r["client_mode"], json.loads(r["roles"]),
                        json.loads(r["scopes"]), r["approved_via"], r["created_at"],
                        r["approved_at"], r["label"], r["remote_ip"], r["last_seen_at"],
                        r["last_seen_reason"])
                for r in conn.execute("SELECT * FROM tokens"):
                    dev = self.devices.get(r["device_id"])
                    if dev is not None:
                        dev.tokens[r["role"]] = DeviceToken(
                            r["role"], r["token_hash"], json.loads(r["scopes"]),
                            r["created_at"], r["last_used_at"])
                for r in conn.execute("SELECT * FROM pending"):
                    self.pending[r["request_id"]] = PendingRequest(
                        r["request_id"], r["device_id"], r["public_key"], r["platform"],
                        r["device_family"], r["client_id"], r["client_mode"], r["role"],
                        json.loads(r["scopes"]), r["reason"], r["remote_ip"],
                        bool(r["silent"]), bool(r["is_repair"]), r["ts"], r["expires_at"])
            finally:
                conn.row_factory = None

        self.db.run_now(read)

    # -- writes ----------------------------------------------------------------------------------

    def save_device(self, dev: PairedDevice, token: DeviceToken | None = None,
                    drop_pending_for: str | None = None) -> Deferred[None]:
        """Upsert a paired device (and optionally one token) in one transaction."""
        self.devices[dev.device_id] = dev
        if token is not None:
            dev.tokens[token.role] = token
        removed = [rid for rid, p in self.pending.items() if p.device_id == drop_pending_for]
        for rid in removed:
            del self.pending[rid]
        row = (dev.device_id, dev.public_key, dev.platform, dev.device_family, dev.client_id,
               dev.client_mode, _j(dev.roles), _j(dev.scopes), dev.approved_via, dev.label,
               dev.remote_ip, dev.created_at, dev.approved_at, dev.last_seen_at,
               dev.last_seen_reason)
        tok = None if token is None else (dev.device_id, token.role, token.token_hash,
                                          _j(token.scopes), token.created_at, token.last_used_at)

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR REPLACE INTO devices VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                         row)
            if tok is not None:
                conn.execute("INSERT OR REPLACE INTO tokens VALUES (?,?,?,?,?,?)", tok)
            for rid in removed:
                conn.execute("DELETE FROM pending WHERE request_id=?", (rid,))

        return self.db.run(write)

    def touch(self, dev: PairedDevice, role: str, now: int, reason: str = "connect",
              token_used: bool = False) -> Deferred[None]:
        dev.last_seen_at, dev.last_seen_reason = now, reason
        if token_used and role in dev.tokens:
            dev.tokens[role].last_used_at = now

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE devices SET last_seen_at=?, last_seen_reason=? "
                         "WHERE device_id=?", (now, reason, dev.device_id))
            if token_used:
                conn.execute("UPDATE tokens SET last_used_at=? WHERE device_id=? AND role=?",
                             (now, dev.device_id, role))

        return self.db.run(write)

    def add_pending(self, req: PendingRequest) -> Deferred[None]:
        self.pending[req.request_id] = req
        row = (req.request_id, req.device_id, req.public_key, req.platform, req.device_family,
               req.client_id, req.client_mode, req.role, _j(req.scopes), req.reason,
               req.remote_ip, int(req.silent), int(req.is_repair), req.ts, req.expires_at)
        return self.db.run(lambda conn: conn.execute(
            "INSERT OR REPLACE INTO pending VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", row) and None)

    def remove_pending(self, request_id: str) -> Deferred[None]:
        self.pending.pop(request_id, None)
        return self.db.run(lambda conn: conn.execute(
            "DELETE FROM pending WHERE request_id=?", (request_id,)) and None)

    def remove_device(self, device_id: str) -> Deferred[None]:
        self.devices.pop(device_id, None)
        for rid in [r for r, p in self.pending.items() if p.device_id == device_id]:
            del self.pending[rid]

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM tokens WHERE device_id=?", (device_id,))
            conn.execute("DELETE FROM devices WHERE device_id=?", (device_id,))
            conn.execute("DELETE FROM pending WHERE device_id=?", (device_id,))

        return self.db.run(write)

    def put_token(self, dev: PairedDevice, token: DeviceToken) -> Deferred[None]:
        dev.tokens[token.role] = token
        row = (dev.device_id, token.role, token.token_hash, _j(token.scopes), token.created_at,
               token.last_used_at)
        return self.db.run(lambda conn: conn.execute(
            "INSERT OR REPLACE INTO tokens VALUES (?,?,?,?,?,?)", row) and None)

    def revoke_token(self, dev: PairedDevice, role: str) -> Deferred[None]:
        dev.tokens.pop(role, None)
        return self.db.run(lambda conn: conn.execute(
            "DELETE FROM tokens WHERE device_id=? AND role=?", (dev.device_id, role)) and None)

    def expire_pending(self, now: int) -> list[PendingRequest]:
        expired = [p for p in self.pending.values() if p.expires_at <= now]
        for p in expired:
            self.remove_pending(p.request_id)
        return expired
