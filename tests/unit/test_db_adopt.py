"""``db.adopt_legacy_file``: our databases move off the real gateway's paths; theirs stay."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.db import adopt_legacy_file

OURS = frozenset({"devices", "pending", "tokens"})


def make(path: Path, *tables: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path))
    for t in tables:
        conn.execute(f"CREATE TABLE {t} (x)")
    conn.commit()
    conn.close()


class Adopt(SynchronousTestCase):
    def setUp(self) -> None:
        self.dir = Path(self.mktemp())
        self.old, self.new = self.dir / "state/openclaw.sqlite", self.dir / "state/ours.sqlite"

    def test_ours_moves_with_its_wal(self) -> None:
        make(self.old, "devices", "tokens", "schema_versions")
        self.old.with_name("openclaw.sqlite-wal").write_bytes(b"")
        self.assertEqual(adopt_legacy_file(self.old, self.new, OURS), "moved")
        self.assertFalse(self.old.exists())
        self.assertTrue(self.new.exists())
        self.assertTrue(self.new.with_name("ours.sqlite-wal").exists())

    def test_a_real_gateways_file_stays(self) -> None:
        make(self.old, "devices", "gateway_restart_sentinel")
        self.assertEqual(adopt_legacy_file(self.old, self.new, OURS), "foreign")
        self.assertTrue(self.old.exists())
        self.assertFalse(self.new.exists())

    def test_nothing_to_do(self) -> None:
        self.assertEqual(adopt_legacy_file(self.old, self.new, OURS), "")
        make(self.old, "devices")
        make(self.new, "devices")
        self.assertEqual(adopt_legacy_file(self.old, self.new, OURS), "")  # new wins
        self.assertTrue(self.old.exists())

    def test_not_a_database(self) -> None:
        self.old.parent.mkdir(parents=True)
        self.old.write_bytes(b"not sqlite at all" * 100)
        self.assertEqual(adopt_legacy_file(self.old, self.new, OURS), "foreign")
