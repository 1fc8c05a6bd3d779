"""SessionStore on a real SQLite file (inline Database): rows and transcripts survive a reopen,
runs left running by a dead process are marked interrupted, transcript order, the idempotency
index, compaction and deletion."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.db import Database
from openclaw_tw.sessions.store import MIGRATIONS, Entry, SessionStore

KEY = "agent:main:main"


class Clock:
    def __init__(self, now: int = 1_795_000_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class StoreTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.path = Path(self.mktemp()) / "openclaw-agent.sqlite"
        self.clock = Clock()
        self.db: Database | None = None
        self.store = self.reopen()

    def tearDown(self) -> None:
        if self.db is not None:
            self.db.close()

    def reopen(self) -> SessionStore:
        if self.db is not None:
            self.db.close()
        self.db = Database(self.path, MIGRATIONS, inline=True)
        self.db.open()
        store = SessionStore(self.db, self.clock)
        store.load()
        return store

    def append(self, store: SessionStore, role: str, text: str, key: str = KEY,
               run_id: str | None = None, idem: str | None = None) -> Entry:
        row = store.ensure(key)
        body: dict[str, Any] = {"role": role, "content": text, "timestamp": self.clock.now}
        self.clock.now += 1
        return self.successResultOf(store.append(row, role, body, run_id, idem))

    def history(self, store: SessionStore, key: str = KEY, limit: int = 1000,
                before: int | None = None, session_id: str | None = None) -> list[Entry]:
        return self.successResultOf(store.history(key, limit, before, session_id))

    def count_rows(self, sql: str, *args: Any) -> int:
        assert self.db is not None
        return int(self.db.run_now(lambda conn: conn.execute(sql, args).fetchone()[0]))

    # -- rows -------------------------------------------------------------------------------

    def test_rows_survive_reopen(self) -> None:
        row = self.store.ensure("agent:ops:proj", created_via="create")
        row.label, row.pinned, row.archived = "Project", True, True
        row.overrides["model"] = "offline/offline-echo"
        row.input_tokens, row.output_tokens, row.status = 3, 7, "done"
        row.total_tokens, row.total_tokens_fresh, row.estimated_cost_usd = 250, True, 0.000315
        self.successResultOf(self.store.save(row))
        self.assertIsNone(self.store.get("agent:main:other"))

        store = self.reopen()
        again = store.get("agent:ops:proj")
        assert again is not None
        self.assertEqual(again, row)
        self.assertEqual((again.agent_id, again.created_via), ("ops", "create"))
        self.assertIs(again.pinned, True)
        self.assertIs(again.archived, True)
        self.assertIs(again.unread, False)
        self.assertIs(again.total_tokens_fresh, True)
        self.assertEqual(again.overrides, {"model": "offline/offline-echo"})
        self.assertEqual(store.interrupted_at_start, [])

    def test_ensure_is_memory_only_until_a_write(self) -> None:
        self.store.ensure("agent:main:draft")
        self.assertIsNone(self.reopen().get("agent:main:draft"))

    def test_transcript_survives_reopen(self) -> None:
        self.append(self.store, "user", "hello", run_id="r1", idem="r1:user")
        self.append(self.store, "assistant", "hi there", run_id="r1")
        entries = self.history(self.reopen())
        self.assertEqual([(e.role, e.body["content"], e.run_id) for e in entries],
                         [("user", "hello", "r1"), ("assistant", "hi there", "r1")])
        self.assertEqual(entries[0].idempotency_key, "r1:user")

    # -- interrupted runs -------------------------------------------------------------------

    def test_running_row_is_marked_interrupted_at_load(self) -> None:
        self.append(self.store, "user", "long job", run_id="run-9", idem="run-9:user")
        row = self.store.ensure(KEY)
        row.status, row.last_run_id, row.started_at = "running", "run-9", self.clock.now
        self.successResultOf(self.store.save(row))
        self.clock.now += 5000

        store = self.reopen()
        self.assertEqual(store.interrupted_at_start, [KEY])
        again = store.get(KEY)
        assert again is not None
        self.assertEqual(again.status, "interrupted")
        self.assertEqual(again.ended_at, self.clock.now)
        self.assertIn("interrupted", again.last_run_error or "")
        entries = self.history(store)
        self.assertEqual([e.role for e in entries], ["user", "custom"])
        marker = entries[-1]
        self.assertEqual(marker.body["customType"], "run-interrupted")
        self.assertIs(marker.body["display"], True)
        self.assertTrue(marker.body["content"])
        self.assertEqual(marker.run_id, "run-9")

        # Persisted: a further restart neither re-marks nor adds a second marker.
        store = self.reopen()
        self.assertEqual(store.interrupted_at_start, [])
        self.assertEqual(len(self.history(store)), 2)
        again = store.get(KEY)
        assert again is not None
        self.assertEqual(again.status, "interrupted")

    def test_finished_rows_are_left_alone(self) -> None:
        for key, status in (("agent:main:a", "done"), ("agent:main:b", "error"),
                            ("agent:main:c", None)):
            row = self.store.ensure(key)
            row.status = status
            self.successResultOf(self.store.save(row))
        store = self.reopen()
        self.assertEqual(store.interrupted_at_start, [])
        self.assertEqual({k: r.status for k, r in store.rows.items()},
                         {"agent:main:a": "done", "agent:main:b": "error", "agent:main:c": None})
        self.assertEqual(self.count_rows("SELECT COUNT(*) FROM transcript"), 0)

    # -- transcript order and paging ---------------------------------------------------------

    def test_seq_ordering_and_paging(self) -> None:
        entries = [self.append(self.store, "user", f"m{i}") for i in range(7)]
        self.append(self.store, "user", "elsewhere", key="agent:main:other")
        seqs = [e.seq for e in entries]
        self.assertEqual(seqs, sorted(seqs))
        self.assertEqual(len(set(seqs)), 7)

        everything = self.history(self.store)
        self.assertEqual([e.body["content"] for e in everything], [f"m{i}" for i in range(7)])
        newest = self.history(self.store, limit=3)
        self.assertEqual([e.body["content"] for e in newest], ["m4", "m5", "m6"])
        older = self.history(self.store, limit=3, before=newest[0].seq)
        self.assertEqual([e.body["content"] for e in older], ["m1", "m2", "m3"])
        oldest = self.history(self.store, limit=3, before=older[0].seq)
        self.assertEqual([e.body["content"] for e in oldest], ["m0"])

    def test_history_filters_by_session_id(self) -> None:
        self.append(self.store, "user", "before reset")
        row = self.store.ensure(KEY)
        old_id, row.session_id = row.session_id, "new-session"
        self.append(self.store, "user", "after reset")
        self.assertEqual([e.body["content"] for e in self.history(self.store,
                                                                  session_id="new-session")],
                         ["after reset"])
        self.assertEqual([e.body["content"] for e in self.history(self.store, session_id=old_id)],
                         ["before reset"])

    def test_last_entries_and_count(self) -> None:
        for i in range(4):
            self.append(self.store, "user", f"a{i}", key="agent:main:a")
        self.append(self.store, "user", "b0", key="agent:main:b")
        last = self.successResultOf(self.store.last_entries(
            ["agent:main:a", "agent:main:b", "agent:main:none"], 2))
        self.assertEqual({k: [e.body["content"] for e in v] for k, v in last.items()},
                         {"agent:main:a": ["a2", "a3"], "agent:main:b": ["b0"],
                          "agent:main:none": []})
        self.assertEqual(self.successResultOf(self.store.count_entries("agent:main:a")), 4)

    # -- idempotency index -------------------------------------------------------------------

    def test_duplicate_idempotency_key_rejected(self) -> None:
        self.append(self.store, "user", "first", run_id="k", idem="k:user")
        row = self.store.ensure(KEY)
        d = self.store.append(row, "user", {"role": "user", "content": "again"}, "k", "k:user")
        self.failureResultOf(d, sqlite3.IntegrityError)
        self.assertEqual(self.count_rows(
            "SELECT COUNT(*) FROM transcript WHERE idempotency_key=?", "k:user"), 1)
        self.assertEqual([e.body["content"] for e in self.history(self.store)], ["first"])
        # Entries without a key are not constrained by the index.
        self.append(self.store, "assistant", "a")
        self.append(self.store, "assistant", "b")
        self.assertEqual(len(self.history(self.store)), 3)

    def test_duplicate_key_rejected_across_sessions(self) -> None:
        self.append(self.store, "user", "one", idem="shared:user")
        row = self.store.ensure("agent:main:other")
        d = self.store.append(row, "user", {"role": "user", "content": "two"}, None,
                              "shared:user")
        self.failureResultOf(d, sqlite3.IntegrityError)

    # -- compaction and deletion ---------------------------------------------------------------

    def test_compact_keeps_last_n_plus_summary(self) -> None:
        for i in range(10):
            self.append(self.store, "user" if i % 2 == 0 else "assistant", f"m{i}")
        summary = {"role": "custom", "customType": "compaction", "content": "summary"}
        self.assertEqual(self.successResultOf(self.store.compact(KEY, 3, summary)), 7)
        entries = self.history(self.store)
        self.assertEqual([e.body.get("content") for e in entries],
                         ["summary", "m7", "m8", "m9"])
        self.assertEqual(entries[0].role, "custom")
        self.assertEqual([e.seq for e in entries], sorted(e.seq for e in entries))
        # Survives a reopen; nothing more to compact when the transcript is short enough.
        store = self.reopen()
        self.assertEqual(len(self.history(store)), 4)
        self.assertEqual(self.successResultOf(store.compact(KEY, 4, summary)), 0)
        self.assertEqual(len(self.history(store)), 4)

    def test_compact_leaves_other_sessions(self) -> None:
        for i in range(5):
            self.append(self.store, "user", f"a{i}")
            self.append(self.store, "user", f"b{i}", key="agent:main:b")
        self.successResultOf(self.store.compact(KEY, 1, {"role": "custom", "content": "s"}))
        self.assertEqual(len(self.history(self.store, key="agent:main:b")), 5)

    def test_delete(self) -> None:
        self.append(self.store, "user", "hello")
        self.append(self.store, "user", "keep me", key="agent:main:keep")
        self.assertTrue(self.successResultOf(self.store.delete(KEY)))
        self.assertIsNone(self.store.get(KEY))
        self.assertEqual(self.history(self.store), [])
        self.assertFalse(self.successResultOf(self.store.delete(KEY)))
        store = self.reopen()
        self.assertIsNone(store.get(KEY))
        self.assertIsNotNone(store.get("agent:main:keep"))
        self.assertEqual(self.count_rows(
            "SELECT COUNT(*) FROM transcript WHERE session_key=?", KEY), 0)
        self.assertEqual(len(self.history(store, key="agent:main:keep")), 1)
