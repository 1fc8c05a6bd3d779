"""Cron persistence: jobs and run history in their own SQLite file (``state/cron.sqlite``).

A run is *claimed* before it executes: one transaction inserts its history row, keyed
``UNIQUE(job_id, slot)``, and saves the job with its state already advanced past that slot.  A
slot that was claimed once (even by a process that died mid-run) can never be claimed again,
so no slot runs twice; runs left ``running`` by a dead process are marked ``error``
(``interrupted``) at load.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from openclaw_tw.automation import history
from openclaw_tw.automation.history import RunQuery
from openclaw_tw.automation.runlog import INTERRUPTED_DETAIL
from openclaw_tw.db import Database
from openclaw_tw.protocol.limits import MAX_PARAMS_DEPTH
from openclaw_tw.protocol.schema import bounds_problem

MIGRATIONS = [
    [
        "CREATE TABLE jobs (id TEXT PRIMARY KEY, body TEXT NOT NULL)",
        "CREATE TABLE runs (run_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, slot TEXT NOT NULL,"
        " trigger TEXT NOT NULL, status TEXT NOT NULL, started_at INTEGER NOT NULL,"
        " ended_at INTEGER, duration_ms INTEGER, error TEXT, summary TEXT, session_key TEXT,"
        " UNIQUE (job_id, slot))",
        "CREATE INDEX runs_job ON runs (job_id, started_at)",
    ],
    # what a finished run found out beyond its status (automation/runlog.py), as JSON
    ["ALTER TABLE runs ADD COLUMN detail TEXT"],
    # cron.runs pages (history.py): the runs of a job, of an agent, or all, by end time; the
    # agent of older runs read from their session key, else from their job
    ["ALTER TABLE runs ADD COLUMN agent_id TEXT",
     "UPDATE runs SET agent_id = substr(session_key, 7, instr(substr(session_key, 7), ':') - 1)"
     " WHERE session_key LIKE 'agent:%:%'",
     "UPDATE runs SET agent_id = (SELECT COALESCE(NULLIF(lower(trim(CASE WHEN json_valid(body)"
     " THEN json_extract(body, '$.agentId') END)), ''), 'main') FROM jobs"
     " WHERE jobs.id = runs.job_id) WHERE agent_id IS NULL",
     "DROP INDEX runs_job",
     "CREATE INDEX runs_job_ended ON runs (job_id, ended_at)",
     "CREATE INDEX runs_agent_ended ON runs (agent_id, ended_at)",
     "CREATE INDEX runs_ended ON runs (ended_at)"],
]

_RUN_COLS = ("run_id", "job_id", "slot", "trigger", "status", "started_at", "ended_at",
             "duration_ms", "error", "summary", "session_key", "detail", "agent_id")
INTERRUPTED = "interrupted: the gateway stopped during this run"
_INTERRUPT = ("UPDATE runs SET status='error', error=?, ended_at=?, duration_ms=? - started_at,"
              " detail=? WHERE status='running'")


def cron_db_path(state_dir: Path) -> Path:
    return state_dir / "state" / "cron.sqlite"

_log = Logger()


class CronStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def load(self, now_ms: int) -> tuple[list[dict[str, Any]], list[str]]:
        """All jobs, and the run ids found ``running`` (now marked interrupted).

        A stored job that could not be answered (a body nested past the params bound, stored
        before that bound existed, or unreadable) is left in the table but not loaded, and
        logged: one such row must not close every later ``cron.list`` with 1011."""

        def read(conn: sqlite3.Connection) -> tuple[list[dict[str, Any]], list[str]]:
            jobs = []
            for job_id, body in conn.execute("SELECT id, body FROM jobs"):
                job = _readable(body)
                if job is None:
                    _log.warn("cron job {job_id} not loaded: its stored body is unreadable or "
                              "nested too deep", job_id=str(job_id)[:64])
                    continue
                jobs.append(job)
            stale = [r for (r,) in conn.execute("SELECT run_id FROM runs WHERE status='running'")]
            conn.execute(_INTERRUPT, (INTERRUPTED, now_ms, now_ms, _INTERRUPTED_DETAIL))
            return jobs, stale

        return self.db.run_now(read)

    def interrupt_running(self, now_ms: int) -> Deferred[None]:
        return self.db.run(lambda conn: _none(conn.execute(
            _INTERRUPT, (INTERRUPTED, now_ms, now_ms, _INTERRUPTED_DETAIL))))

    def save_job(self, job: dict[str, Any]) -> Deferred[None]:
        body = json.dumps(job)
        return self.db.run(lambda conn: _none(conn.execute(
            "INSERT OR REPLACE INTO jobs VALUES (?, ?)", (job["id"], body))))

    def delete_job(self, job_id: str) -> Deferred[None]:
        return self.db.run(lambda conn: _none(conn.execute(
            "DELETE FROM jobs WHERE id = ?", (job_id,))))

    def claim(self, job: dict[str, Any] | None, run: dict[str, Any]) -> Deferred[bool]:
        """Record the run for its slot (and the advanced job) in one transaction; ``False``
        when the slot was already claimed.  ``job`` ``None`` deletes the job row."""
        body = json.dumps(job) if job is not None else None
        values = tuple(_column(run, c) for c in _RUN_COLS)

        def write(conn: sqlite3.Connection) -> bool:
            try:
                conn.execute(f"INSERT INTO runs ({','.join(_RUN_COLS)}) VALUES "
                             f"({','.join('?' * len(_RUN_COLS))})", values)
            except sqlite3.IntegrityError:
                return False
            if body is not None:
                conn.execute("INSERT OR REPLACE INTO jobs VALUES (?, ?)", (run["job_id"], body))
            return True

        return self.db.run(write)

    def finish(self, run: dict[str, Any], job: dict[str, Any] | None,
               delete_job: bool = False) -> Deferred[None]:
        body = json.dumps(job) if job is not None else None

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE runs SET status=?, ended_at=?, duration_ms=?, error=?, summary=?,"
                         " session_key=?, detail=? WHERE run_id=?",
                         (run["status"], run["ended_at"], run["duration_ms"], run.get("error"),
                          run.get("summary"), run.get("session_key"), _column(run, "detail"),
                          run["run_id"]))
            _prune(conn, run["job_id"], run["ended_at"])
            if delete_job:
                conn.execute("DELETE FROM jobs WHERE id = ?", (run["job_id"],))
            elif body is not None:
                conn.execute("UPDATE jobs SET body=? WHERE id=?", (body, run["job_id"]))

        return self.db.run(write)

    def page(self, q: RunQuery, known_job: bool = True
             ) -> Deferred[tuple[int, list[dict[str, Any]], bool]]:
        """A page of the finished runs (``history.py``): (how many match, the page, whether
        the job of ``q.job_id`` has any finished run, asked only when ``known_job`` is
        false and nothing matched)."""

        def read(conn: sqlite3.Connection) -> tuple[int, list[dict[str, Any]], bool]:
            total, rows = history.read_page(conn, q, _RUN_COLS)
            exists = total > 0 or known_job or q.job_id is None or \
                history.has_runs(conn, q.job_id)
            return total, [_run_of(r) for r in rows], exists

        return self.db.run(read)

    def runs(self, job_id: str | None, run_id: str | None, limit: int,
             offset: int) -> Deferred[tuple[int, list[dict[str, Any]]]]:
        """The finished runs, newest first (a run still going is not in the history yet)."""
        d = self.page(history.RunQuery(job_id=job_id, run_id=run_id, limit=limit,
                                       offset=offset))
        return d.addCallback(lambda page: (page[0], page[1]))


_INTERRUPTED_DETAIL = json.dumps(INTERRUPTED_DETAIL)
# Finished runs kept, as the real gateway's (docs/gateway/config-automation.md): 7 days, and
# at most the newest 2000 of each job.
RETAIN_MS = 7 * 24 * 3600 * 1000
RETAIN_PER_JOB = 2000


def _prune(conn: sqlite3.Connection, job_id: str, now: int) -> None:
    """Drop a job's finished runs past the retention (the job's state, not its history,
    keeps a slot from running again)."""
    conn.execute("DELETE FROM runs WHERE job_id = ? AND status != 'running' AND ended_at < ?",
                 (job_id, now - RETAIN_MS))
    conn.execute("DELETE FROM runs WHERE run_id IN (SELECT run_id FROM runs WHERE job_id = ?"
                 " AND status != 'running' ORDER BY ended_at DESC LIMIT -1 OFFSET ?)",
                 (job_id, RETAIN_PER_JOB))


def _column(run: dict[str, Any], name: str) -> Any:
    value = run.get(name)
    return json.dumps(value) if name == "detail" and value is not None else value


def _run_of(row: tuple[Any, ...]) -> dict[str, Any]:
    run = dict(zip(_RUN_COLS, row, strict=True))
    try:
        detail = json.loads(run["detail"]) if run["detail"] else None
    except ValueError:
        detail = None
    run["detail"] = detail if isinstance(detail, dict) else None
    return run


def _readable(body: str) -> dict[str, Any] | None:
    try:
        job = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(job, dict) or not isinstance(job.get("id"), str) or \
            bounds_problem(job, max_depth=MAX_PARAMS_DEPTH + 2) is not None:
        return None
    return job


def _none(_: Any) -> None:
    return None
