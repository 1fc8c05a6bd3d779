"""The device store on a real SQLite file (``Database(inline=True)``): persistence across
reopening, token values never at rest, pending requests, deletes, atomic transactions and
schema migrations."""

from __future__ import annotations

import sqlite3
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.db import Database
from openclaw_tw.devices import store as store_module
from openclaw_tw.devices.store import (
    MIGRATIONS,
    PENDING_TTL_MS,
    DeviceStore,
    PairedDevice,
    PendingRequest,
    TokenKey,
    hash_token,
)
from tests.support.tmp import fresh_dir

NOW = 1_795_000_000_000
KEY = b"k" * 32


class Boom(Exception):
    pass


def device(device_id: str = "d" * 64, scopes: list[str] | None = None) -> PairedDevice:
    return PairedDevice(device_id, "pk-" + device_id[:8], "linux", "Linux", "cli", "cli",
                        ["operator"], scopes or ["operator.read", "operator.write"], "silent",
                        NOW, NOW + 1, label="laptop", remote_ip="10.9.9.9", last_seen_at=NOW + 2,
                        last_seen_reason="connect")


def pending(request_id: str, device_id: str = "e" * 64, ts: int = NOW,
            ttl: int = PENDING_TTL_MS) -> PendingRequest:
    return PendingRequest(request_id, device_id, "pk-e", "linux", None, "cli", "cli", "operator",
                          ["operator.read"], "not-paired", "10.9.9.9", False, False, ts, ts + ttl)


class StoreTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = fresh_dir(self)
        self.path = self.dir / "state" / "openclaw.sqlite"
        self.db, self.store = self.open()

    def open(self, key: bytes = KEY) -> tuple[Database, DeviceStore]:
        db = Database(self.path, MIGRATIONS, inline=True)
        db.open()
        self.addCleanup(db.close)
        store = DeviceStore(db, TokenKey(key))
        store.load()
        return db, store

    def reopen(self) -> DeviceStore:
        self.db.close()
        self.db, self.store = self.open()
        return self.store

    def rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self.db.run_now(lambda conn: conn.execute(sql, args).fetchall())

    def done(self, d: Any) -> None:
        self.assertIsNone(self.successResultOf(d))

    # -- persistence ---------------------------------------------------------------------------

    def test_round_trip_survives_reopening(self) -> None:
        dev = device()
        record, _ = self.store.key.issue(dev.device_id, "operator", dev.scopes, NOW)
        record.last_used_at = NOW + 5
        self.done(self.store.save_device(dev, record))
        self.done(self.store.add_pending(pending("req-1")))
        store = self.reopen()
        self.assertEqual(store.devices, {dev.device_id: dev})
        self.assertEqual(store.devices[dev.device_id].tokens, {"operator": record})
        self.assertEqual(store.pending, {"req-1": pending("req-1")})

    def test_touch_and_token_updates_persist(self) -> None:
        dev = device()
        record, _ = self.store.key.issue(dev.device_id, "operator", dev.scopes, NOW)
        self.done(self.store.save_device(dev, record))
        self.done(self.store.touch(dev, "operator", NOW + 60, token_used=True))
        node, _ = self.store.key.issue(dev.device_id, "node", [], NOW)
        self.done(self.store.put_token(dev, node))
        loaded = self.reopen().devices[dev.device_id]
        self.assertEqual((loaded.last_seen_at, loaded.tokens["operator"].last_used_at),
                         (NOW + 60, NOW + 60))
        self.assertEqual(set(loaded.tokens), {"operator", "node"})
        self.done(self.store.revoke_token(self.store.devices[dev.device_id], "node", NOW + 70))
        kept = self.reopen().devices[dev.device_id]
        self.assertEqual(set(kept.tokens), {"operator", "node"})  # revoked, still listed
        self.assertEqual(kept.tokens["node"].revoked_at, NOW + 70)
        self.assertIsNone(kept.active_token("node"))
        self.assertIs(kept.active_token("operator"), kept.tokens["operator"])
        self.done(self.store.drop_token(kept, "node"))
        self.assertEqual(set(self.reopen().devices[dev.device_id].tokens), {"operator"})

    def test_revoked_and_rotated_tokens_persist_and_summarize(self) -> None:
        dev = device()
        first, old = self.store.key.issue(dev.device_id, "operator", dev.scopes, NOW)
        first.last_used_at = NOW + 5
        self.done(self.store.save_device(dev, first))
        self.done(self.store.revoke_token(dev, "operator", NOW + 10))
        self.assertFalse(first.matches(old))  # the right value, but revoked
        again, new = self.store.key.issue(dev.device_id, "operator", dev.scopes, NOW + 20,
                                          replacing=first)
        self.assertEqual((again.created_at, again.rotated_at, again.revoked_at,
                          again.last_used_at), (NOW, NOW + 20, None, NOW + 5))
        self.done(self.store.put_token(dev, again))
        loaded = self.reopen().devices[dev.device_id].tokens["operator"]
        self.assertTrue(loaded.matches(new))
        self.assertEqual(loaded.public(), {"role": "operator", "scopes": dev.scopes,
                                           "createdAtMs": NOW, "rotatedAtMs": NOW + 20,
                                           "lastUsedAtMs": NOW + 5})
        self.done(self.store.revoke_token(self.store.devices[dev.device_id], "operator",
                                          NOW + 30))
        self.assertEqual(list(self.reopen().devices[dev.device_id].tokens["operator"].public()),
                         ["role", "scopes", "createdAtMs", "rotatedAtMs", "revokedAtMs",
                          "lastUsedAtMs"])

    def test_tokens_are_listed_by_role(self) -> None:
        dev = device()
        dev.roles = ["operator", "node"]
        op, _ = self.store.key.issue(dev.device_id, "operator", dev.scopes, NOW)
        node, _ = self.store.key.issue(dev.device_id, "node", [], NOW)
        self.done(self.store.save_device(dev, op))
        self.done(self.store.put_token(dev, node))
        self.assertEqual([t["role"] for t in dev.public(False)["tokens"]], ["node", "operator"])

    def test_a_first_schema_file_gains_the_token_dates(self) -> None:
        path = self.dir / "v1.sqlite"
        db = Database(path, MIGRATIONS[:1], inline=True)
        db.open()
        dev = device()
        db.run_now(lambda conn: conn.execute(
            "INSERT INTO devices (device_id, public_key, roles, scopes, approved_via, "
            "created_at, approved_at) VALUES (?,?,?,?,?,?,?)",
            (dev.device_id, "pk", '["operator"]', "[]", "silent", NOW, NOW)))
        db.run_now(lambda conn: conn.execute(
            "INSERT INTO tokens VALUES (?,?,?,?,?,?,?)",
            (dev.device_id, "operator", "h", "s", "[]", NOW, None)))
        db.close()
        db = Database(path, MIGRATIONS, inline=True)
        db.open()
        self.addCleanup(db.close)
        store = DeviceStore(db, TokenKey(KEY))
        store.load()
        token = store.devices[dev.device_id].tokens["operator"]
        self.assertEqual((token.rotated_at, token.revoked_at, token.active), (None, None, True))

    # -- token values --------------------------------------------------------------------------

    def test_token_value_never_stored(self) -> None:
        dev = device()
        record, value = self.store.key.issue(dev.device_id, "operator", dev.scopes, NOW)
        self.done(self.store.save_device(dev, record))
        digest = hash_token(value)
        self.assertNotEqual(value, digest)
        self.assertEqual(self.rows("SELECT token_hash FROM tokens"), [(digest,)])
        for row in self.rows("SELECT * FROM tokens"):
            self.assertFalse(any(value in str(col) for col in row), row)
        self.db.close()  # checkpoint the WAL into the main file too
        files = sorted(self.path.parent.glob(self.path.name + "*"))
        blob = b"".join(f.read_bytes() for f in files)
        self.assertNotIn(value.encode(), blob)
        self.assertIn(digest.encode(), blob)

    def test_token_value_is_keyed_and_salted(self) -> None:
        key = TokenKey(KEY)
        value = key.value("dev", "operator", "salt-1")
        self.assertEqual(value, TokenKey(KEY).value("dev", "operator", "salt-1"))
        self.assertEqual(len(value), 43)  # base64url of 32 bytes, unpadded, like the reference
        others = {key.value("dev", "operator", "salt-2"), key.value("dev", "node", "salt-1"),
                  key.value("dev2", "operator", "salt-1"),
                  TokenKey(b"x" * 32).value("dev", "operator", "salt-1")}
        self.assertNotIn(value, others)
        self.assertEqual(len(others), 4)

    def test_issue_uses_a_new_salt_each_time(self) -> None:
        first, v1 = self.store.key.issue("dev", "operator", ["operator.read"], NOW)
        second, v2 = self.store.key.issue("dev", "operator", ["operator.read"], NOW)
        self.assertNotEqual(first.salt, second.salt)
        self.assertNotEqual(v1, v2)
        self.assertEqual(self.store.key.value("dev", "operator", first.salt), v1)
        self.assertTrue(first.matches(v1))
        self.assertFalse(first.matches(v2))
        self.assertEqual(first.public(), {"role": "operator", "scopes": ["operator.read"],
                                          "createdAtMs": NOW})

    def test_token_key_file_is_created_once(self) -> None:
        k1 = TokenKey.load_or_create(self.dir)
        k2 = TokenKey.load_or_create(self.dir)
        self.assertEqual(k1.value("d", "operator", "s"), k2.value("d", "operator", "s"))
        path = self.dir / TokenKey.FILE
        self.assertEqual(len(path.read_bytes()), 32)
        self.assertEqual(path.stat().st_mode & 0o077, 0)

    # -- pending ---------------------------------------------------------------------------------

    def test_pending_add_remove_expire(self) -> None:
        self.done(self.store.add_pending(pending("old", ts=NOW - PENDING_TTL_MS)))
        self.assertEqual(list(self.store.pending), ["old"])
        expired = self.store.expire_pending(NOW)
        self.assertEqual([p.request_id for p in expired], ["old"])
        self.done(self.store.add_pending(pending("new", ts=NOW)))
        self.done(self.store.add_pending(pending("gone", ts=NOW)))
        self.done(self.store.remove_pending("gone"))
        self.assertEqual(list(self.store.pending), ["new"])
        self.assertEqual(self.rows("SELECT request_id FROM pending"), [("new",)])
        self.assertEqual(self.store.expire_pending(NOW + PENDING_TTL_MS - 1), [])
        self.assertEqual(list(self.reopen().pending), ["new"])

    def test_pending_bounded_expired_first_then_oldest(self) -> None:
        """Any new key may ask to pair: requests expire when the next one comes (not only
        when someone lists them), a device keeps MAX_PENDING_PER_DEVICE, all MAX_PENDING."""
        self.patch(store_module, "MAX_PENDING", 3)
        self.patch(store_module, "MAX_PENDING_PER_DEVICE", 2)
        self.done(self.store.add_pending(pending("stale", ts=NOW - PENDING_TTL_MS)))
        for i in range(3):
            self.done(self.store.add_pending(pending(f"same{i}", ts=NOW)))
        self.assertEqual(list(self.store.pending), ["same1", "same2"])
        for i in range(3):
            self.done(self.store.add_pending(pending(f"other{i}", ts=NOW,
                                                     device_id=f"{i}" * 64)))
        self.assertEqual(list(self.store.pending), ["other0", "other1", "other2"])
        self.assertEqual(sorted(self.rows("SELECT request_id FROM pending")),
                         [("other0",), ("other1",), ("other2",)])

    def test_save_device_drops_its_pending_requests(self) -> None:
        dev = device("e" * 64)
        self.done(self.store.add_pending(pending("p1")))
        self.done(self.store.add_pending(pending("p2", device_id="f" * 64)))
        self.done(self.store.save_device(dev, drop_pending_for=dev.device_id))
        self.assertEqual(list(self.store.pending), ["p2"])
        self.assertEqual(self.rows("SELECT request_id FROM pending"), [("p2",)])

    def test_remove_device_deletes_tokens_and_pending(self) -> None:
        dev, other = device("e" * 64), device("f" * 64)
        for d in (dev, other):
            record, _ = self.store.key.issue(d.device_id, "operator", d.scopes, NOW)
            self.done(self.store.save_device(d, record))
        self.done(self.store.add_pending(pending("p-e", device_id=dev.device_id)))
        self.done(self.store.add_pending(pending("p-f", device_id=other.device_id)))
        self.done(self.store.remove_device(dev.device_id))
        self.assertEqual(list(self.store.devices), [other.device_id])
        self.assertEqual(list(self.store.pending), ["p-f"])
        for table in ("devices", "tokens", "pending"):
            self.assertEqual(
                self.rows(f"SELECT count(*) FROM {table} WHERE device_id=?", (dev.device_id,)),
                [(0,)], table)
            self.assertEqual(
                self.rows(f"SELECT count(*) FROM {table} WHERE device_id=?",
                          (other.device_id,)), [(1,)], table)
        store = self.reopen()
        self.assertEqual((list(store.devices), list(store.pending)), ([other.device_id], ["p-f"]))

    # -- transactions and schema -----------------------------------------------------------------

    def test_failing_transaction_leaves_no_partial_rows(self) -> None:
        dev = device()
        record, _ = self.store.key.issue(dev.device_id, "operator", dev.scopes, NOW)

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO devices (device_id, public_key, roles, scopes, "
                         "approved_via, created_at, approved_at) VALUES (?,?,?,?,?,?,?)",
                         (dev.device_id, "pk", "[]", "[]", "silent", NOW, NOW))
            conn.execute("INSERT INTO tokens VALUES (?,?,?,?,?,?,?,?,?)",
                         (dev.device_id, "operator", record.token_hash, record.salt, "[]", NOW,
                          None, None, None))
            raise Boom("half way")

        self.failureResultOf(self.db.run(write), Boom)
        self.assertEqual(self.rows("SELECT count(*) FROM devices"), [(0,)])
        self.assertEqual(self.rows("SELECT count(*) FROM tokens"), [(0,)])
        # The connection is usable afterwards (no transaction left open).
        self.done(self.store.save_device(dev, record))
        self.assertEqual(self.rows("SELECT count(*) FROM tokens"), [(1,)])
        self.assertEqual(self.reopen().devices, {dev.device_id: dev})

    def test_failed_statement_rolls_back_the_whole_write(self) -> None:
        dev = device()
        self.done(self.store.save_device(dev))

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE devices SET label='changed'")
            conn.execute("INSERT INTO devices (device_id) VALUES (?)", (dev.device_id,))

        self.failureResultOf(self.db.run(write), sqlite3.IntegrityError)
        self.assertEqual(self.rows("SELECT label FROM devices"), [("laptop",)])

    def test_migrations_set_user_version_and_do_not_rerun(self) -> None:
        self.assertEqual(len(MIGRATIONS), 2)
        self.assertEqual(self.rows("PRAGMA user_version"), [(2,)])
        tables = {r[0] for r in self.rows("SELECT name FROM sqlite_master WHERE type='table'")}
        self.assertTrue({"devices", "pending", "tokens"} <= tables, tables)
        self.done(self.store.save_device(device()))
        store = self.reopen()  # CREATE TABLE again would raise; data must still be there
        self.assertEqual(self.rows("PRAGMA user_version"), [(2,)])
        self.assertEqual(list(store.devices), [device().device_id])

    def test_only_newer_migrations_run(self) -> None:
        path = self.dir / "other.sqlite"
        steps = [["CREATE TABLE t (x INTEGER)"], ["INSERT INTO t VALUES (1)"]]
        for _ in range(2):
            db = Database(path, steps, inline=True)
            db.open()
            self.assertEqual(db.run_now(lambda c: c.execute("PRAGMA user_version").fetchone()),
                             (2,))
            self.assertEqual(db.run_now(lambda c: c.execute("SELECT count(*) FROM t").fetchone()),
                             (1,))
            db.close()
        db = Database(path, [*steps, ["INSERT INTO t VALUES (2)"]], inline=True)
        db.open()
        self.addCleanup(db.close)
        self.assertEqual(db.run_now(lambda c: c.execute("SELECT x FROM t ORDER BY x").fetchall()),
                         [(1,), (2,)])
        self.assertEqual(db.run_now(lambda c: c.execute("PRAGMA user_version").fetchone()), (3,))

    def test_failed_migration_rolls_back(self) -> None:
        path = self.dir / "broken.sqlite"
        db = Database(path, [["CREATE TABLE a (x)", "CREATE TABLE a (x)"]], inline=True)
        self.assertRaises(sqlite3.OperationalError, db.open)
        self.addCleanup(db.close)
        conn = sqlite3.connect(str(path))
        self.addCleanup(conn.close)
        self.assertEqual(conn.execute("PRAGMA user_version").fetchone(), (0,))
        self.assertEqual(conn.execute("SELECT name FROM sqlite_master").fetchall(), [])


class TouchCoalescing(SynchronousTestCase):
    """With a clock, last-seen writes are batched (one transaction per flush) and written at
    close at the latest; the in-memory record is current at once."""

    def test_touches_are_flushed_together_and_on_close(self) -> None:
        from twisted.internet.task import Clock

        from openclaw_tw.devices.store import TOUCH_FLUSH_S

        path = fresh_dir(self) / "openclaw.sqlite"
        db = Database(path, MIGRATIONS, inline=True)
        db.open()
        clock = Clock()
        store = DeviceStore(db, TokenKey(KEY), clock=clock)
        db.before_close.append(store.close)
        devs = [device(f"{i:064x}") for i in range(3)]
        for dev in devs:
            self.successResultOf(store.save_device(dev))
        statements: list[str] = []
        db._conn.set_trace_callback(statements.append)
        for i, dev in enumerate(devs):
            self.assertIsNone(store.touch(dev, "operator", NOW + i))
            self.assertEqual(dev.last_seen_at, NOW + i)  # memory is current at once
        self.assertFalse([s for s in statements if s.startswith("UPDATE")])  # nothing yet
        clock.advance(TOUCH_FLUSH_S)
        self.assertEqual(sum(s == "COMMIT" for s in statements), 1)  # one transaction
        store.touch(devs[0], "operator", NOW + 99)
        db.close()  # flushes the pending touch synchronously
        db2 = Database(path, MIGRATIONS, inline=True)
        db2.open()
        self.addCleanup(db2.close)
        again = DeviceStore(db2, TokenKey(KEY))
        again.load()
        self.assertEqual([again.devices[d.device_id].last_seen_at for d in devs],
                         [NOW + 99, NOW + 1, NOW + 2])
