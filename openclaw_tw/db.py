"""The embedded SQLite database: one connection, one writer thread, WAL, versioned schema.

Every statement runs on the database thread (``Database.run``), so the reactor never blocks on
disk.  Each call is one transaction: it commits whole or rolls back whole, so a crash mid-write
leaves the file consistent.  Tests pass ``inline=True`` to run statements synchronously.

Schema: a file can hold the tables of several owners (nodes.sqlite holds node surfaces, DM
pairing, provider cursors and the channel ingress queue).  Each owner keeps its own list of
migrations, append-only, and its own version in the ``schema_versions`` table, so appending to
one owner's list never shifts another's.  Files written before that table existed counted one
positional ``user_version`` over the concatenated lists; ``Schema.legacy`` names that order so
such a file is read as the versions it really holds.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import attrs
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

T = TypeVar("T")

Migration = Sequence[str]

_VERSIONS = """CREATE TABLE IF NOT EXISTS schema_versions (
    owner TEXT PRIMARY KEY,
    version INTEGER NOT NULL
)"""


@attrs.frozen
class Schema:
    """The owners of one database file and their migrations, in the order they are applied."""

    owners: Mapping[str, Sequence[Migration]]
    # Before per-owner versions: (owner, count of its migrations) in the order the old
    # positional user_version counted them.
    legacy: Sequence[tuple[str, int]] = ()

    @classmethod
    def single(cls, owner: str, migrations: Sequence[Migration]) -> Schema:
        """One owner; a legacy user_version N means its first N migrations."""
        return cls({owner: migrations}, [(owner, len(migrations))])

    def legacy_versions(self, user_version: int) -> dict[str, int]:
        versions: dict[str, int] = {}
        left = user_version
        for owner, count in self.legacy:
            applied = min(count, left)
            if applied:
                versions[owner] = versions.get(owner, 0) + applied
            left -= applied
        return versions


def adopt_legacy_file(old: Path, new: Path, ours: frozenset[str]) -> str:
    """Move an older openclaw_tw database from ``old`` to ``new`` (with its -wal/-shm).

    Releases before this one kept the devices and sessions databases at the real OpenClaw
    gateway's own paths (``state/openclaw.sqlite``, ``agents/main/agent/openclaw-agent.sqlite``)
    with a different schema, where the real CLI opens them and refuses them (`openclaw
    status`: "uses schema version 3"). The file is moved only when it holds our tables
    (``ours``) and none of another program's; a real OpenClaw gateway's file is left alone.
    Returns what was done: 'moved', 'foreign', or '' (nothing to do). Start-up only.
    """
    if new.exists() or not old.exists():
        return ""
    try:
        conn = sqlite3.connect(f"file:{old}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")}
        finally:
            conn.close()
    except sqlite3.Error:
        return "foreign"
    tables -= {"sqlite_sequence", "schema_versions"}
    if not tables or not tables <= ours:
        return "foreign"
    new.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("-wal", "-shm", ""):  # the main file last: it is what marks the move done
        side = old.with_name(old.name + suffix)
        if side.exists():
            side.rename(new.with_name(new.name + suffix))
    return "moved"


class Database:
    def __init__(self, path: Path, schema: Schema | Sequence[Migration], reactor: Any = None,
                 inline: bool = False) -> None:
        self.path = path
        self._reactor = reactor
        self._inline = inline
        self._pool: ThreadPool | None = None
        self._local = threading.local()
        self._conn: sqlite3.Connection | None = None
        # A plain list of migrations is one owner's (named after the file).
        self.schema = schema if isinstance(schema, Schema) else Schema.single(path.stem, schema)
        self.before_close: list[Callable[[], None]] = []
        if not inline:
            self._pool = ThreadPool(minthreads=1, maxthreads=1, name="openclaw-db")

    # -- lifecycle -----------------------------------------------------------------------------

    def open(self) -> None:
        """Open and migrate.  Called before serving (start-up), or on the db thread."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=5000")
        self._conn = conn
        self._migrate(conn)

    def start(self) -> None:
        """Start the database thread (the service tree does this when it starts)."""
        if self._pool is not None and not self._pool.started:
            self._pool.start()

    def close(self) -> None:
        # Drain the database thread first, then let owners write what they still hold in
        # memory (synchronously, on this thread), then close the connection.
        if self._pool is not None and self._pool.started:
            self._pool.stop()
        hooks, self.before_close = self.before_close, []
        for hook in hooks:
            hook()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _migrate(self, conn: sqlite3.Connection) -> None:
        recorded = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND "
                                "name='schema_versions'").fetchone() is not None
        if recorded:
            versions = dict(conn.execute("SELECT owner, version FROM schema_versions"))
        else:  # a new file, or one written before per-owner versions
            user_version = conn.execute("PRAGMA user_version").fetchone()[0]
            versions = self.schema.legacy_versions(user_version)
        unrecorded = dict(versions) if not recorded else {}
        for owner, migrations in self.schema.owners.items():
            for target, statements in enumerate(migrations, start=1):
                if target <= versions.get(owner, 0):
                    continue
                versions[owner] = target
                self._step(conn, statements, {**unrecorded, owner: target}, versions)
                unrecorded = {}
        if unrecorded:  # an old file that is already up to date: record what it holds
            self._step(conn, (), unrecorded, versions)

    @staticmethod
    def _step(conn: sqlite3.Connection, statements: Sequence[str], record: dict[str, int],
              versions: dict[str, int]) -> None:
        """One migration step in one transaction: its statements and the versions it reached
        (``user_version`` keeps the total, for tools that read only that)."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(_VERSIONS)
            for statement in statements:
                conn.execute(statement)
            conn.executemany("INSERT INTO schema_versions (owner, version) VALUES (?, ?) "
                             "ON CONFLICT (owner) DO UPDATE SET version = excluded.version",
                             list(record.items()))
            conn.execute(f"PRAGMA user_version={sum(versions.values())}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # -- work ------------------------------------------------------------------------------------

    def _transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        if conn is None:
            raise RuntimeError("database is closed")
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    def run(self, fn: Callable[[sqlite3.Connection], T]) -> Deferred[T]:
        """Run ``fn(conn)`` in one transaction on the database thread."""
        if self._pool is None:
            try:
                return succeed(self._transaction(fn))
            except Exception:
                return fail()
        return deferToThreadPool(self._reactor, self._pool, self._transaction, fn)

    def run_now(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Synchronous transaction for start-up loading only (before the reactor serves)."""
        return self._transaction(fn)
