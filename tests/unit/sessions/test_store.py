"""SessionStore on a real SQLite file (inline Database): rows and transcripts survive a reopen,
runs left running by a dead process are marked interrupted, transcript order, the idempotency
index, compaction and deletion."""

from __future__ import annotations

import gc
import random
import sqlite3
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.db import Database
from openclaw_tw.sessions import listing
from openclaw_tw.sessions.listing import ListQuery
from openclaw_tw.sessions.store import MIGRATIONS, Entry, SessionRow, SessionStore

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
        row = self.ensure(store, key)
        body: dict[str, Any] = {"role": role, "content": text, "timestamp": self.clock.now}
        self.clock.now += 1
        return self.successResultOf(store.append(row, role, body, run_id, idem))

    def history(self, store: SessionStore, key: str = KEY, limit: int = 1000,
                before: int | None = None, session_id: str | None = None) -> list[Entry]:
        return self.successResultOf(store.history(key, limit, before, session_id))

    def get(self, store: SessionStore, key: str) -> SessionRow | None:
        row: SessionRow | None = self.successResultOf(store.get(key))
        return row

    def ensure(self, store: SessionStore, key: str, **kwargs: Any) -> SessionRow:
        row: SessionRow = self.successResultOf(store.ensure(key, **kwargs))
        return row

    def count_rows(self, sql: str, *args: Any) -> int:
        assert self.db is not None
        return int(self.db.run_now(lambda conn: conn.execute(sql, args).fetchone()[0]))

    # -- rows -------------------------------------------------------------------------------

    def test_rows_survive_reopen(self) -> None:
        row = self.ensure(self.store, "agent:ops:proj", created_via="create")
        row.label, row.pinned, row.archived = "Project", True, True
        row.overrides["model"] = "offline/offline-echo"
        row.input_tokens, row.output_tokens, row.status = 3, 7, "done"
        row.total_tokens, row.total_tokens_fresh, row.estimated_cost_usd = 250, True, 0.000315
        self.successResultOf(self.store.save(row))
        self.assertIsNone(self.get(self.store, "agent:main:other"))

        store = self.reopen()
        again = self.get(store, "agent:ops:proj")
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
        self.ensure(self.store, "agent:main:draft")
        self.assertIsNone(self.get(self.reopen(), "agent:main:draft"))

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
        row = self.ensure(self.store, KEY)
        row.status, row.last_run_id, row.started_at = "running", "run-9", self.clock.now
        self.successResultOf(self.store.save(row))
        self.clock.now += 5000

        store = self.reopen()
        self.assertEqual(store.interrupted_at_start, [KEY])
        again = self.get(store, KEY)
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
        again = self.get(store, KEY)
        assert again is not None
        self.assertEqual(again.status, "interrupted")

    def test_finished_rows_are_left_alone(self) -> None:
        for key, status in (("agent:main:a", "done"), ("agent:main:b", "error"),
                            ("agent:main:c", None)):
            row = self.ensure(self.store, key)
            row.status = status
            self.successResultOf(self.store.save(row))
        store = self.reopen()
        self.assertEqual(store.interrupted_at_start, [])
        self.assertEqual({k: r.status for k in ("agent:main:a", "agent:main:b", "agent:main:c")
                          if (r := self.get(store, k)) is not None},
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
        row = self.ensure(self.store, KEY)
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

    def test_newest_picks_the_first_match_within_the_window(self) -> None:
        """``newest``: per key, the newest entry of the roles whose body ``pick`` accepts,
        looking at the newest ``within`` entries only (a list page's last messages)."""
        for role, text in (("user", "old"), ("user", "hello"), ("assistant", "  "),
                           ("custom", "marker"), ("toolResult", "out")):
            self.append(self.store, role, text, key="agent:main:a")
        self.append(self.store, "assistant", "only", key="agent:main:b")

        def pick(body: Any) -> str | None:
            return body["content"].strip() or None

        keys = ["agent:main:a", "agent:main:b", "agent:main:none"]
        roles = ("user", "assistant")
        self.assertEqual(self.successResultOf(self.store.newest(keys, 20, roles, pick)),
                         {"agent:main:a": "hello", "agent:main:b": "only"})
        # the hello is the fourth newest entry of a: a window of three does not reach it
        self.assertEqual(self.successResultOf(self.store.newest(keys, 3, roles, pick)),
                         {"agent:main:b": "only"})

    # -- idempotency index -------------------------------------------------------------------

    def test_duplicate_idempotency_key_rejected(self) -> None:
        self.append(self.store, "user", "first", run_id="k", idem="k:user")
        row = self.ensure(self.store, KEY)
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
        row = self.ensure(self.store, "agent:main:other")
        d = self.store.append(row, "user", {"role": "user", "content": "two"}, None,
                              "shared:user")
        self.failureResultOf(d, sqlite3.IntegrityError)

    # -- compaction and deletion ---------------------------------------------------------------

    def test_compact_keeps_last_n_plus_summary(self) -> None:
        for i in range(10):
            self.append(self.store, "user" if i % 2 == 0 else "assistant", f"m{i}")
        summary = {"role": "custom", "customType": "compaction", "content": "summary"}
        row = self.ensure(self.store, KEY)
        self.assertEqual(self.successResultOf(self.store.compact(row, 3, summary)), (7, 3))
        entries = self.history(self.store)
        self.assertEqual([e.body.get("content") for e in entries],
                         ["summary", "m7", "m8", "m9"])
        self.assertEqual(entries[0].role, "custom")
        self.assertEqual([e.seq for e in entries], sorted(e.seq for e in entries))
        # Survives a reopen; nothing more to compact when the transcript is short enough.
        store = self.reopen()
        self.assertEqual(len(self.history(store)), 4)
        row = self.ensure(store, KEY)
        self.assertEqual(self.successResultOf(store.compact(row, 4, summary)), (0, 4))
        self.assertEqual(len(self.history(store)), 4)

    def test_compact_leaves_other_sessions(self) -> None:
        for i in range(5):
            self.append(self.store, "user", f"a{i}")
            self.append(self.store, "user", f"b{i}", key="agent:main:b")
        self.successResultOf(self.store.compact(self.ensure(self.store, KEY), 1,
                                                 {"role": "custom", "content": "s"}))
        self.assertEqual(len(self.history(self.store, key="agent:main:b")), 5)

    def test_delete(self) -> None:
        self.append(self.store, "user", "hello")
        self.append(self.store, "user", "keep me", key="agent:main:keep")
        self.assertTrue(self.successResultOf(self.store.delete(KEY)))
        self.assertIsNone(self.get(self.store, KEY))
        self.assertEqual(self.history(self.store), [])
        self.assertFalse(self.successResultOf(self.store.delete(KEY)))
        store = self.reopen()
        self.assertIsNone(self.get(store, KEY))
        self.assertIsNotNone(self.get(store, "agent:main:keep"))
        self.assertEqual(self.count_rows(
            "SELECT COUNT(*) FROM transcript WHERE session_key=?", KEY), 0)
        self.assertEqual(len(self.history(store, key="agent:main:keep")), 1)

    # -- rows on disk, a bounded cache -------------------------------------------------------

    def test_cache_is_bounded_and_a_row_in_use_stays_one_object(self) -> None:
        store = SessionStore(self.db, self.clock, cache_size=3)  # type: ignore[arg-type]
        held = self.ensure(store, "agent:main:held")
        self.successResultOf(store.save(held))
        for i in range(10):
            self.clock.now += 1
            self.successResultOf(store.save(self.ensure(store, f"agent:main:s{i}")))
        self.assertEqual(len(store.cache), 3)
        self.assertIsNone(store.cached("agent:main:s0"))  # evicted, still stored
        self.assertIs(self.get(store, "agent:main:held"), held)  # in use: the same object
        s0 = self.get(store, "agent:main:s0")
        assert s0 is not None
        self.assertEqual(s0.key, "agent:main:s0")
        self.assertEqual((store.count, [k for k, _ in store.recent][:1]), (11, ["agent:main:s9"]))

    def test_count_and_recent_follow_writes_and_deletes(self) -> None:
        for i in range(7):
            self.clock.now += 1
            self.successResultOf(self.store.save(self.ensure(self.store, f"agent:main:r{i}")))
        self.assertEqual(self.store.count, 7)
        self.assertEqual([k for k, _ in self.store.recent],
                         [f"agent:main:r{i}" for i in (6, 5, 4, 3, 2)])
        self.successResultOf(self.store.delete("agent:main:r6"))
        self.assertEqual(self.store.count, 6)
        self.assertEqual([k for k, _ in self.store.recent],
                         [f"agent:main:r{i}" for i in (5, 4, 3, 2, 1)])
        store = self.reopen()
        self.assertEqual((store.count, store.recent), (6, self.store.recent))

    def test_an_unanswered_turn_is_interrupted_at_load(self) -> None:
        """A queued turn (its row never went 'running') that nothing answered: start-up finds
        it in open_runs, not by reading the transcript."""
        self.append(self.store, "user", "answered", run_id="r1", idem="r1:user")
        self.append(self.store, "assistant", "reply", run_id="r1")
        self.append(self.store, "user", "queued", run_id="r2", idem="r2:user")
        self.assertEqual(self.count_rows("SELECT COUNT(*) FROM open_runs"), 1)
        store = self.reopen()
        self.assertEqual(store.interrupted_at_start, [KEY])
        self.assertEqual([(e.role, e.run_id) for e in self.history(store)][-1], ("custom", "r2"))
        self.assertEqual(self.count_rows("SELECT COUNT(*) FROM open_runs"), 0)
        self.assertEqual(self.reopen().interrupted_at_start, [])

    def test_migration_5_seeds_open_runs_and_counts(self) -> None:
        """A file at migration 4 with an unanswered turn: migration 5 finds it once."""
        path = Path(self.mktemp()) / "old.sqlite"
        old = Database(path, MIGRATIONS[:4], inline=True)
        old.open()
        old.run_now(lambda conn: conn.executemany(
            "INSERT INTO transcript (session_key, session_id, entry_id, role, body, run_id, "
            "idempotency_key, ts) VALUES (?,?,?,?,?,?,?,?)",
            [(KEY, "s", "e1", "user", "{}", "r1", None, 1),
             (KEY, "s", "e2", "assistant", "{}", "r1", None, 2),
             (KEY, "s", "e3", "user", '{"content": "lost"}', "r2", None, 3)]))
        old.run_now(lambda conn: conn.execute(
            "INSERT INTO sessions (key, agent_id, session_id, created_at, updated_at) "
            "VALUES (?, 'main', 's', 1, 3)", (KEY,)))
        old.close()
        db = Database(path, MIGRATIONS, inline=True)
        db.open()
        self.addCleanup(db.close)
        store = SessionStore(db, self.clock)
        store.load()
        self.assertEqual((store.interrupted_at_start, store.count), ([KEY], 1))
        self.assertEqual(db.run_now(lambda conn: conn.execute(
            "SELECT run_id FROM transcript WHERE role='custom'").fetchall()), [("r2",)])

    def test_migration_7_indexes_the_rows_already_stored(self) -> None:
        """A file at migration 6: migration 7 adds the agent's indexes over the rows it holds,
        and the pages by agent read the same rows as before."""
        path = Path(self.mktemp()) / "old.sqlite"
        old = Database(path, MIGRATIONS[:6], inline=True)
        old.open()
        store = SessionStore(old, self.clock)
        for i in range(12):
            agent = "ops" if i % 3 else "main"
            self.successResultOf(store.save(SessionRow(
                f"agent:{agent}:k{i}", agent, f"s{i}", i, 100 - i % 5, i % 4 or None,
                archived=i % 5 == 1, pinned=i % 7 == 2)))
        queries = [ListQuery(agent_id="ops"), ListQuery(agent_id="ops", archived=None),
                   ListQuery(agent_id="main", by_interaction=True, archived=None)]
        before = [[r.key for r in self.successResultOf(store.page(q))[0]] for q in queries]
        old.close()
        db = Database(path, MIGRATIONS, inline=True)
        db.open()
        self.addCleanup(db.close)
        self.assertEqual(db.run_now(lambda conn: conn.execute(
            "SELECT name FROM sqlite_master WHERE name LIKE 'sessions_by_agent_%' ORDER BY name"
            ).fetchall()), [("sessions_by_agent_interaction",), ("sessions_by_agent_update",)])
        self.assertEqual(db.run_now(lambda conn: conn.execute(
            "PRAGMA integrity_check").fetchall()), [("ok",)])
        store = SessionStore(db, self.clock)
        store.load()
        self.assertEqual([[r.key for r in self.successResultOf(store.page(q))[0]]
                          for q in queries], before)
        self.assertEqual(len(before[1]), 8)


class ListingTests(SynchronousTestCase):
    """``sessions.list`` pages from SQLite match the listing rules applied to every row
    (filters, pinned first, newest first, creation order on ties, offset/limit, totals)."""

    def setUp(self) -> None:
        self.db = Database(Path(self.mktemp()) / "s.sqlite", MIGRATIONS, inline=True)
        self.db.open()
        self.addCleanup(self.db.close)
        self.store = SessionStore(self.db, lambda: 1000, cache_size=4)
        rng = random.Random(7)
        self.rows: list[SessionRow] = []
        for i in range(120):
            key = {5: "global", 50: "unknown"}.get(i) or \
                f"agent:{rng.choice(['main', 'main', 'ops'])}:k{i}"
            row = SessionRow(key, "ops" if ":ops:" in key else "main", f"sid{i}", i,
                             rng.randrange(20), rng.choice([None, rng.randrange(1, 20)]),
                             rng.choice([None, "Alpha", "beta"]), archived=rng.random() < 0.3,
                             pinned=rng.random() < 0.2)
            self.rows.append(row)
            self.successResultOf(self.store.save(row))
        # a later change to a row keeps its place among ties (creation order)
        self.rows[3].archived = not self.rows[3].archived
        self.successResultOf(self.store.save(self.rows[3]))
        # relabelled and deleted rows leave the search index too
        self.rows[8].label = "Alphabet"
        self.successResultOf(self.store.save(self.rows[8]))
        gone = self.rows.pop(9)
        self.assertTrue(self.successResultOf(self.store.delete(gone.key)))

    def expected(self, q: ListQuery) -> tuple[list[str], int]:
        rows = [r for r in self.rows if not q.nothing and (q.archived is None or r.archived == q.archived)
                and (q.agent_id is None or r.agent_id == q.agent_id)
                and (q.label is None or r.label == q.label)
                and (q.pinned is None or r.pinned == q.pinned)
                and (not q.search or q.search in r.key.lower()
                     or q.search in (r.label or "").lower())
                and (q.updated_since is None or r.updated_at >= q.updated_since)
                and r.key not in q.hidden]
        if q.by_interaction:
            rows.sort(key=lambda r: r.last_interaction_at or 0, reverse=True)
        else:
            rows.sort(key=lambda r: r.updated_at, reverse=True)
        rows.sort(key=lambda r: not r.pinned)
        return [r.key for r in rows[q.offset:q.offset + q.limit]], len(rows)

    def test_pages_and_totals_match_the_rules(self) -> None:
        queries = [ListQuery(), ListQuery(archived=None), ListQuery(archived=True),
                   ListQuery(agent_id="ops"), ListQuery(archived=None, agent_id="main"),
                   ListQuery(label="Alpha"), ListQuery(pinned=True),
                   ListQuery(archived=None, pinned=False, by_interaction=True),
                   ListQuery(search="k1"), ListQuery(search="alp", archived=None),
                   ListQuery(search="k11"), ListQuery(search='ta"x'), ListQuery(search="s:k"),
                   ListQuery(search="lph", label="Alpha", archived=None),
                   ListQuery(search="main:k", pinned=False, offset=3, limit=9),
                   ListQuery(updated_since=15), ListQuery(include_global=True,
                                                          include_unknown=True),
                   ListQuery(archived=None, include_global=True, offset=7, limit=11),
                   ListQuery(offset=30, limit=5, by_interaction=True),
                   ListQuery(limit=1000), ListQuery(nothing=True),
                   ListQuery(agent_id="ops", by_interaction=True, archived=None, limit=1000),
                   ListQuery(agent_id="main", updated_since=8, offset=2, limit=7),
                   ListQuery(agent_id="main", pinned=True, by_interaction=True),
                   ListQuery(agent_id="ops", search="k1", include_global=True)]
        for q in queries:
            rows, total = self.successResultOf(self.store.page(q))
            self.assertEqual(([r.key for r in rows], total), self.expected(q), q)

    def plan(self, q: ListQuery) -> str:
        """What SQLite does for the page's own statement."""
        sql, args = listing.statement(q)
        plan = self.db.run_now(lambda conn: conn.execute(
            "EXPLAIN QUERY PLAN " + sql, [0, *args, 50]).fetchall())
        return " ".join(str(p[-1]) for p in plan)

    def test_a_page_reads_only_its_rows(self) -> None:
        """The page's SQL walks an index in order (no sort of every row)."""
        details = self.plan(ListQuery())
        self.assertIn("USING INDEX sessions_by_update (archived=?)", details)
        self.assertNotIn("TEMP B-TREE", details)

    def test_an_agents_page_walks_that_agents_rows_only(self) -> None:
        """With ``agentId`` the page walks the agent's part of an index of its order
        (migration 7), in order: no other agent's rows, no sort."""
        for q, index in ((ListQuery(agent_id="ops"), "sessions_by_agent_update"),
                         (ListQuery(agent_id="ops", by_interaction=True),
                          "sessions_by_agent_interaction"),
                         (ListQuery(agent_id="ops", include_global=True, pinned=False),
                          "sessions_by_agent_update"),
                         (ListQuery(agent_id="ops", updated_since=15),
                          "sessions_by_agent_update")):
            details = self.plan(q)
            self.assertIn(f"USING INDEX {index} (agent_id=? AND archived=?", details, q)
            self.assertNotIn("TEMP B-TREE", details, q)

    def test_a_search_reads_only_its_matches(self) -> None:
        q = ListQuery(search="k11")
        where, args = listing._filters(q)
        plan = self.db.run_now(lambda conn: conn.execute(
            f"EXPLAIN QUERY PLAN SELECT sessions.* FROM {listing._source(q)} "
            f"WHERE sessions.archived=?{where} ORDER BY sessions.pinned DESC, "
            "sessions.updated_at DESC, sessions.rowid LIMIT 50", [0, *args]).fetchall())
        details = [str(p[-1]) for p in plan]
        self.assertTrue(details[0].startswith("SCAN sessions_search VIRTUAL TABLE"), details)
        self.assertIn("SEARCH sessions USING INTEGER PRIMARY KEY (rowid=?)", details)


class HeldDatabase:
    """An inline database whose results reach the caller only when released: statements run
    in call order (as on the database thread) while the callbacks wait, as they do for the
    reactor."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.held: list[tuple[Deferred[Any], Any]] = []

    def run(self, fn: Any) -> Deferred[Any]:
        result = self.db.run_now(fn)
        d: Deferred[Any] = Deferred()
        self.held.append((d, result))
        return d

    def release(self) -> None:
        held, self.held = self.held, []
        for d, result in held:
            d.callback(result)


class RaceTests(SynchronousTestCase):
    def setUp(self) -> None:
        db = Database(Path(self.mktemp()) / "s.sqlite", MIGRATIONS, inline=True)
        db.open()
        self.addCleanup(db.close)
        self.db = HeldDatabase(db)
        self.store = SessionStore(self.db, lambda: 5, cache_size=1)  # type: ignore[arg-type]

    def test_a_read_racing_a_delete_does_not_bring_the_row_back(self) -> None:
        ensured = [self.store.ensure("agent:main:gone"), self.store.ensure("agent:main:other")]
        self.db.release()
        row, other = (self.successResultOf(d) for d in ensured)
        self.store.save(row)
        self.store.save(other)
        self.db.release()
        old_id = row.session_id
        del row
        gc.collect()
        self.assertIsNone(self.store.cached("agent:main:gone"))
        read = self.store.get("agent:main:gone")  # reads the row on the "thread"...
        deleted = self.store.delete("agent:main:gone")  # ...then the delete runs
        fresh = self.store.ensure("agent:main:gone")  # a new session meanwhile
        self.db.release()
        new = self.successResultOf(fresh)
        self.assertNotEqual(new.session_id, old_id)
        self.assertIs(self.successResultOf(read), new)  # the current row: never the old one
        self.assertTrue(self.successResultOf(deleted))
        self.assertIs(self.store.cached("agent:main:gone"), new)
        self.assertEqual(self.store.count, 1)

    def test_concurrent_ensures_of_a_new_key_make_one_row(self) -> None:
        first = self.store.ensure("agent:main:new")
        second = self.store.ensure("agent:main:new")
        self.db.release()
        self.assertIs(self.successResultOf(first), self.successResultOf(second))

    def test_a_read_issued_before_a_delete_answers_no_row(self) -> None:
        d = self.store.ensure("agent:main:x")
        self.db.release()
        self.store.save(self.successResultOf(d))
        self.db.release()
        self.store.cache.pop("agent:main:x")  # as if evicted and no longer in use
        read = self.store.get("agent:main:x")
        deleted = self.store.delete("agent:main:x")
        self.db.release()
        self.assertIsNone(self.successResultOf(read))
        self.assertTrue(self.successResultOf(deleted))
        self.assertIsNone(self.store.cached("agent:main:x"))

    def test_a_body_orjson_refuses_is_still_read(self) -> None:
        ensured = self.store.ensure(KEY)
        self.db.release()
        row = self.successResultOf(ensured)
        d = self.store.append(row, "assistant", {"role": "assistant", "content": "x",
                                                 "score": float("nan")})
        self.db.release()
        self.successResultOf(d)
        read = self.store.history(KEY, 5)
        self.db.release()
        [entry] = self.successResultOf(read)
        self.assertEqual(entry.body["content"], "x")
        self.assertNotEqual(entry.body["score"], entry.body["score"])  # NaN survives
