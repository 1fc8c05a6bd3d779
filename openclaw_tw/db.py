"""The embedded SQLite database: one connection, one writer thread, WAL, versioned schema.

Every statement runs on the database thread (``Database.run``), so the reactor never blocks on
disk.  Each call is one transaction: it commits whole or rolls back whole, so a crash mid-write
leaves the file consistent.  Tests pass ``inline=True`` to run statements synchronously.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

T = TypeVar("T")

Migration = Sequence[str]


class Database:
    def __init__(self, path: Path, migrations: Sequence[Migration], reactor: Any = None,
                 inline: bool = False) -> None:
        self.path = path
        self._reactor = reactor
        self._inline = inline
        self._pool: ThreadPool | None = None
        self._local = threading.local()
        self._conn: sqlite3.Connection | None = None
        self._migrations = migrations
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
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for target, statements in enumerate(self._migrations, start=1):
            if target <= version:
                continue
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in statements:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={target}")
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
