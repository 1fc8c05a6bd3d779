"""Paired devices, pending pairing requests and device tokens, in SQLite with a memory mirror.

Reads come from the in-memory mirror (loaded once at start-up), so the connect path never waits
on disk; every change is written through the database thread and the caller's Deferred fires
only after the transaction commits.

Token values are never stored.  A token is ``HMAC-SHA256(key, device|role|salt)`` with the key
in its own file in the state dir; the database keeps the salt and a SHA-256 digest.  So the
gateway can hand a paired device its current token again on every connect (as the reference
does, which lets read-only clients pick it up later), a copy of the database alone reveals no
token, and rotation is a new salt.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from twisted.internet.defer import Deferred

from openclaw_tw.b64 import b64url
from openclaw_tw.config.settings import atomic_write
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
            role TEXT NOT NULL, token_hash TEXT NOT NULL, salt TEXT NOT NULL,
            scopes TEXT NOT NULL, created_at INTEGER NOT NULL, last_used_at INTEGER,
            PRIMARY KEY (device_id, role))""",
    ],
    # A revoked token is kept (marked, never accepted again) and a rotation is dated, as the
    # reference keeps them: ``devices list`` shows "operator (revoked)".
    [
        "ALTER TABLE tokens ADD COLUMN rotated_at INTEGER",
        "ALTER TABLE tokens ADD COLUMN revoked_at INTEGER",
    ],
]

PENDING_TTL_MS = 10 * 60 * 1000
MAX_PENDING = 500  # pairing requests kept (oldest dropped): any new key can ask
MAX_PENDING_PER_DEVICE = 4  # one device asking again with other scopes or roles
TOUCH_FLUSH_S = 5.0


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenKey:
    """The secret that derives device token values; 32 random bytes in a 0600 file."""

    FILE = "identity/device-token.key"

    CACHE_MAX = 4096  # derived values kept; a device connect re-derives its token otherwise

    def __init__(self, key: bytes) -> None:
        self._key = key
        # (device, role, salt) -> value: hello-ok hands a paired device its token on every
        # connect.  A rotation is a new salt, so an old entry can never be handed out again;
        # the store still forgets a device's entries whenever its tokens change or it goes.
        self._values: dict[tuple[str, str, str], str] = {}

    @classmethod
    def load_or_create(cls, state_dir: Path) -> TokenKey:
        path = state_dir / cls.FILE
        try:
            key = path.read_bytes()
        except FileNotFoundError:
            key = secrets.token_bytes(32)
            atomic_write(path, key)
        return cls(key)

    def value(self, device_id: str, role: str, salt: str) -> str:
        cached = self._values.get((device_id, role, salt))
        if cached is not None:
            return cached
        digest = hmac.new(self._key, f"v1|{device_id}|{role}|{salt}".encode(), hashlib.sha256)
        value = b64url(digest.digest())
        if len(self._values) >= self.CACHE_MAX:
            self._values.clear()
        self._values[(device_id, role, salt)] = value
        return value

    def forget(self, device_id: str) -> None:
        """Drop the cached values of a device (its tokens were rotated, revoked or removed)."""
        for entry in [k for k in self._values if k[0] == device_id]:
            del self._values[entry]

    def issue(self, device_id: str, role: str, scopes: list[str], now: int,
              replacing: DeviceToken | None = None) -> tuple[DeviceToken, str]:
        """A new token; one ``replacing`` an earlier token of the role (rotated, revoked or
        re-issued) keeps its creation and last-use times and is dated ``rotated_at`` now."""
        salt = secrets.token_hex(16)
        value = self.value(device_id, role, salt)
        record = DeviceToken(role, hash_token(value), salt, list(scopes), now)
        if replacing is not None:
            record.created_at, record.last_used_at = replacing.created_at, replacing.last_used_at
            record.rotated_at = now
        return record, value


@attrs.define
class DeviceToken:
    role: str
    token_hash: str
    salt: str
    scopes: list[str]
    created_at: int
    last_used_at: int | None = None
    rotated_at: int | None = None
    revoked_at: int | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def matches(self, token: str) -> bool:
        """The value is this token's and it is not revoked."""
        return self.active and hmac.compare_digest(hash_token(token), self.token_hash)

    def public(self) -> dict[str, Any]:
        """The reference's token summary (no value): unset times are left out."""
        out: dict[str, Any] = {"role": self.role, "scopes": list(self.scopes),
                               "createdAtMs": self.created_at}
        for key, value in (("rotatedAtMs", self.rotated_at), ("revokedAtMs", self.revoked_at),
                           ("lastUsedAtMs", self.last_used_at)):
            if value is not None:
                out[key] = value
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

    def active_token(self, role: str) -> DeviceToken | None:
        """The role's token unless it was revoked (a revoked one is kept, for listing)."""
        token = self.tokens.get(role)
        return token if token is not None and token.active else None

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
            "tokens": [self.tokens[r].public() for r in sorted(self.tokens)],
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
            "scopes": list(self.scopes), "remoteIp": self.remote_ip,
            "silent": self.silent, "isRepair": self.is_repair, "ts": self.ts,
        }
        return {k: v for k, v in out.items() if v is not None}


def _j(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


_TOKEN_UPSERT = ("INSERT OR REPLACE INTO tokens (device_id, role, token_hash, salt, scopes, "
                 "created_at, last_used_at, rotated_at, revoked_at) VALUES (?,?,?,?,?,?,?,?,?)")


def _token_row(device_id: str, token: DeviceToken) -> tuple[Any, ...]:
    return (device_id, token.role, token.token_hash, token.salt, _j(token.scopes),
            token.created_at, token.last_used_at, token.rotated_at, token.revoked_at)


def _exec(sql: str, row: tuple[Any, ...]) -> Callable[[sqlite3.Connection], None]:
    def run(conn: sqlite3.Connection) -> None:
        conn.execute(sql, row)

    return run


class DeviceStore:
    """The mirror plus write-through operations; all mutators return Deferreds."""

    def __init__(self, db: Database, key: TokenKey, clock: Any = None) -> None:
        self.db = db
        self.key = key
        self._clock = clock  # None: last-seen times are written at once (tests, tools)
        self._touched: dict[str, PairedDevice] = {}
        self._flush_call: Any = None
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
                            r["role"], r["token_hash"], r["salt"], json.loads(r["scopes"]),
                            r["created_at"], r["last_used_at"], r["rotated_at"],
                            r["revoked_at"])
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
            self.key.forget(dev.device_id)
            dev.tokens[token.role] = token
        removed = [rid for rid, p in self.pending.items() if p.device_id == drop_pending_for]
        for rid in removed:
            del self.pending[rid]
        row = (dev.device_id, dev.public_key, dev.platform, dev.device_family, dev.client_id,
               dev.client_mode, _j(dev.roles), _j(dev.scopes), dev.approved_via, dev.label,
               dev.remote_ip, dev.created_at, dev.approved_at, dev.last_seen_at,
               dev.last_seen_reason)
        tok = None if token is None else _token_row(dev.device_id, token)

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR REPLACE INTO devices VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                         row)
            if tok is not None:
                conn.execute(_TOKEN_UPSERT, tok)
            for rid in removed:
                conn.execute("DELETE FROM pending WHERE request_id=?", (rid,))

        return self.db.run(write)

    def touch(self, dev: PairedDevice, role: str, now: int, reason: str = "connect",
              token_used: bool = False) -> Deferred[None] | None:
        """Record "last seen" (and a token's last use) in memory now and on disk soon.

        These are the only writes on every device connect, so they are coalesced into one
        transaction at most every ``TOUCH_FLUSH_S`` (and at close): pairing decisions and
        tokens are still written before they are reported; a crash loses at most a few
        seconds of last-seen times.
        """
        dev.last_seen_at, dev.last_seen_reason = now, reason
        if token_used and role in dev.tokens:
            dev.tokens[role].last_used_at = now
        self._touched[dev.device_id] = dev
        if self._clock is None:
            return self.flush_touches()
        if self._flush_call is None:
            self._flush_call = self._clock.callLater(TOUCH_FLUSH_S, self.flush_touches)
        return None

    def flush_touches(self) -> Deferred[None] | None:
        self._flush_call = None
        if not self._touched:
            return None
        rows = [(d.last_seen_at, d.last_seen_reason, d.device_id)
                for d in self._touched.values()]
        used = [(t.last_used_at, d.device_id, t.role) for d in self._touched.values()
                for t in d.tokens.values() if t.last_used_at is not None]
        self._touched.clear()

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany("UPDATE devices SET last_seen_at=?, last_seen_reason=? "
                             "WHERE device_id=?", rows)
            conn.executemany("UPDATE tokens SET last_used_at=? WHERE device_id=? AND role=?",
                             used)

        return self.db.run(write)

    def close(self) -> None:
        """Write pending last-seen times synchronously (called before the database closes)."""
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        self._flush_call = None
        if self._touched:
            rows = [(d.last_seen_at, d.last_seen_reason, d.device_id)
                    for d in self._touched.values()]
            self._touched.clear()
            self.db.run_now(lambda conn: conn.executemany(
                "UPDATE devices SET last_seen_at=?, last_seen_reason=? WHERE device_id=?",
                rows) and None)

    def add_pending(self, req: PendingRequest) -> Deferred[None]:
        """Keep a pairing request; expired ones go first, then past ``MAX_PENDING_PER_DEVICE``
        for its device and ``MAX_PENDING`` in all the oldest are dropped."""
        self.expire_pending(req.ts)
        self.pending[req.request_id] = req
        mine = [rid for rid, p in self.pending.items() if p.device_id == req.device_id]
        dropped = mine[:-MAX_PENDING_PER_DEVICE]
        dropped += [rid for rid in self.pending if rid not in dropped][
            :max(0, len(self.pending) - len(dropped) - MAX_PENDING)]
        for rid in dropped:
            del self.pending[rid]
        row = (req.request_id, req.device_id, req.public_key, req.platform, req.device_family,
               req.client_id, req.client_mode, req.role, _j(req.scopes), req.reason,
               req.remote_ip, int(req.silent), int(req.is_repair), req.ts, req.expires_at)

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR REPLACE INTO pending VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                         row)
            conn.executemany("DELETE FROM pending WHERE request_id=?", [(r,) for r in dropped])

        return self.db.run(write)

    def remove_pending(self, request_id: str) -> Deferred[None]:
        self.pending.pop(request_id, None)
        return self.db.run(_exec("DELETE FROM pending WHERE request_id=?", (request_id,)))

    def remove_device(self, device_id: str) -> Deferred[None]:
        self.devices.pop(device_id, None)
        self.key.forget(device_id)
        for rid in [r for r, p in self.pending.items() if p.device_id == device_id]:
            del self.pending[rid]

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM tokens WHERE device_id=?", (device_id,))
            conn.execute("DELETE FROM devices WHERE device_id=?", (device_id,))
            conn.execute("DELETE FROM pending WHERE device_id=?", (device_id,))

        return self.db.run(write)

    def put_token(self, dev: PairedDevice, token: DeviceToken) -> Deferred[None]:
        self.key.forget(dev.device_id)
        dev.tokens[token.role] = token
        return self.db.run(_exec(_TOKEN_UPSERT, _token_row(dev.device_id, token)))

    def revoke_token(self, dev: PairedDevice, role: str, now: int) -> Deferred[None]:
        """Mark the role's token revoked (again, if it was): it stays listed, never accepted."""
        token = dev.tokens[role]
        self.key.forget(dev.device_id)
        token.revoked_at = now
        return self.db.run(_exec(_TOKEN_UPSERT, _token_row(dev.device_id, token)))

    def drop_token(self, dev: PairedDevice, role: str) -> Deferred[None]:
        """Delete the role's token (the role itself is gone: a node removed)."""
        self.key.forget(dev.device_id)
        dev.tokens.pop(role, None)
        return self.db.run(_exec("DELETE FROM tokens WHERE device_id=? AND role=?",
                                 (dev.device_id, role)))

    def expire_pending(self, now: int) -> list[PendingRequest]:
        expired = [p for p in self.pending.values() if p.expires_at <= now]
        for p in expired:
            self.remove_pending(p.request_id)
        return expired
