"""The device store survives kill -9 in the middle of a burst of pair/approve writes.

A child process runs the real store on its database thread and reports each committed
transaction; the test kills it with SIGKILL mid-burst, then reopens the file: the integrity
check passes, every reported commit is there whole (device, its token, its pending request
gone), and nothing is half-written (no token without its device, no device still pending).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys

from twisted.internet import defer, protocol, reactor
from twisted.trial import unittest

from openclaw_tw.db import Database
from openclaw_tw.devices.store import MIGRATIONS, DeviceStore, TokenKey
from tests.support.paths import REPO
from tests.support.tmp import fresh_dir

KILL_AFTER = 40  # commits seen before the kill


class _Burst(protocol.ProcessProtocol):
    def __init__(self) -> None:
        self.committed = 0
        self.buf = b""
        self.enough: defer.Deferred[None] = defer.Deferred()
        self.ended: defer.Deferred[None] = defer.Deferred()
        self.stderr = b""

    def outReceived(self, data: bytes) -> None:
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        for line in lines:
            if line.startswith(b"committed "):
                self.committed = int(line.split()[1])
        if self.committed >= KILL_AFTER and not self.enough.called:
            self.transport.signalProcess(signal.SIGKILL)
            self.enough.callback(None)

    def errReceived(self, data: bytes) -> None:
        self.stderr += data

    def processEnded(self, reason: object) -> None:
        if not self.enough.called:
            self.enough.errback(RuntimeError(f"child ended early: {self.stderr[-2000:]!r}"))
        self.ended.callback(None)


class StoreSurvivesKill9(unittest.TestCase):
    timeout = 60

    async def test_kill_9_mid_burst_leaves_a_consistent_store(self) -> None:
        state = fresh_dir(self)
        proc = _Burst()
        env = dict(os.environ, PYTHONPATH=str(REPO))
        reactor.spawnProcess(proc, sys.executable,
                             [sys.executable, "-m", "tests.support.procs.store_burst", str(state)],
                             env=env, path=str(REPO))
        await proc.enough
        await proc.ended
        seen = proc.committed
        self.assertGreaterEqual(seen, KILL_AFTER)

        path = state / "openclaw.sqlite"
        conn = sqlite3.connect(str(path))
        try:
            self.assertEqual(conn.execute("PRAGMA integrity_check").fetchone()[0], "ok")
            devices = {r[0]: r for r in conn.execute("SELECT device_id, scopes FROM devices")}
            tokens = {r[0] for r in conn.execute("SELECT device_id FROM tokens")}
            pending_devices = {r[0] for r in conn.execute("SELECT device_id FROM pending")}
        finally:
            conn.close()
        # Every commit the child reported is there, whole.
        for n in range(1, seen + 1):
            dev_id = f"{n:064x}"
            self.assertIn(dev_id, devices)
            self.assertIn(dev_id, tokens)
            self.assertNotIn(dev_id, pending_devices)
            self.assertEqual(json.loads(devices[dev_id][1]), ["operator.read", "operator.write"])
        # Nothing half-written: a token always has its device, a paired device is not pending.
        self.assertLessEqual(tokens, set(devices))
        self.assertFalse(set(devices) & pending_devices)
        # And the store loads it again.
        db = Database(path, MIGRATIONS, inline=True)
        db.open()
        self.addCleanup(db.close)
        store = DeviceStore(db, TokenKey.load_or_create(state))
        store.load()
        self.assertEqual(len(store.devices), len(devices))
