"""One page of the cron run history (``cron.runs``), filtered, sorted and paged in SQL.

The real gateway's rules (2026.9.6): finished runs only; ``runId`` names one run (a run
``cron.run`` started: a scheduled run shows no id); ``statuses`` (else ``status``, ``all``
meaning no filter) keeps those run statuses; ``deliveryStatuses`` (else ``deliveryStatus``)
those delivery statuses, a run without one counting as ``not-requested``; ``query``
(trimmed, lower-cased) is a substring of the run's text: its summary, error, error reason,
job id, job name and the delivery's intended and resolved channels, joined by spaces;
``agentId`` keeps the runs of that agent; newest first unless ``sortDir`` is ``asc`` (by
when the run ended, then by when it was recorded); ``offset`` is clamped to the total.

Each filter is a ``WHERE`` term on the ``runs`` table (``store.py``): the job's runs are a
range of ``runs_job_ended`` (the agent's of ``runs_agent_ended``, all of ``runs_ended``),
walked in the order asked; a ``query`` reads the text of the rows in that range.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

RUN_STATUSES = ("ok", "error", "skipped")
DELIVERY_STATUSES = ("delivered", "not-delivered", "unknown", "not-requested")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def status_filter(values: list[str] | None, fallback: str | None,
                  allowed: tuple[str, ...]) -> tuple[str, ...] | None:
    """The list when it names allowed values (each once), else the single value when it is
    allowed, else no filter (``status: "all"``)."""
    chosen = [v for v in values or () if v in allowed]
    if chosen:
        return tuple(dict.fromkeys(chosen))
    return (fallback,) if fallback in allowed else None


@dataclass(frozen=True)
class RunQuery:
    job_id: str | None = None
    run_id: str | None = None
    agent_id: str | None = None
    statuses: tuple[str, ...] | None = None
    delivery_statuses: tuple[str, ...] | None = None
    query: str = ""  # lower-cased; "" matches every run
    job_names: dict[str, str] = field(default_factory=dict)  # for ``query``: id -> name
    ascending: bool = False
    limit: int = DEFAULT_LIMIT
    offset: int = 0


def _detail(path: str) -> str:
    # a detail that is not JSON (never written so, but read defensively) has no fields
    return f"(CASE WHEN json_valid(runs.detail) THEN json_extract(runs.detail, '{path}') END)"


# The run's text as the real gateway searches it: its parts joined by one space each (the
# empty diagnostics summary keeps its place).
_TEXT = " || ' ' || ".join([
    "COALESCE(runs.summary, '')", "COALESCE(runs.error, '')",
    f"COALESCE({_detail('$.errorReason')}, '')", "''", "runs.job_id",
    "COALESCE(names.name, '')", f"COALESCE({_detail('$.delivery.intended.channel')}, '')",
    f"COALESCE({_detail('$.delivery.resolved.channel')}, '')"])


def _where(q: RunQuery) -> tuple[str, list[Any]]:
    terms, args = ["runs.status != 'running'"], []
    if q.job_id is not None:
        terms.append("runs.job_id = ?")
        args.append(q.job_id)
    if q.agent_id is not None:
        terms.append("runs.agent_id = ?")
        args.append(q.agent_id)
    if q.run_id is not None:
        terms.append("runs.run_id = ? AND runs.trigger != 'scheduled'")
        args.append(q.run_id)
    if q.statuses is not None:
        terms.append(f"runs.status IN ({','.join('?' * len(q.statuses))})")
        args.extend(q.statuses)
    if q.delivery_statuses is not None:
        terms.append(f"COALESCE({_detail('$.deliveryStatus')}, 'not-requested') IN "
                     f"({','.join('?' * len(q.delivery_statuses))})")
        args.extend(q.delivery_statuses)
    if q.query:
        terms.append(f"instr(oc_lower({_TEXT}), ?) > 0")
        args.append(q.query)
    return " AND ".join(terms), args


def read_page(conn: sqlite3.Connection, q: RunQuery, columns: tuple[str, ...]
              ) -> tuple[int, list[tuple[Any, ...]]]:
    """(how many runs match, the rows of the page) in one read."""
    conn.create_function("oc_lower", 1, _lower, deterministic=True)
    where, args = _where(q)
    names = ""
    if q.query:  # the job names the text includes, joined from a JSON object parameter
        names = (" LEFT JOIN (SELECT key AS id, value AS name FROM json_each(?)) AS names"
                 " ON names.id = runs.job_id")
        args = [json.dumps(q.job_names), *args]
    source = f"FROM runs{names} WHERE {where}"
    total = conn.execute(f"SELECT COUNT(*) {source}", args).fetchone()[0]
    order = "ASC" if q.ascending else "DESC"
    offset = min(total, q.offset)
    rows = conn.execute(
        f"SELECT {', '.join('runs.' + c for c in columns)} {source} "
        f"ORDER BY runs.ended_at {order}, runs.rowid {order} LIMIT ? OFFSET ?",
        (*args, q.limit, offset)).fetchall()
    return total, rows


def has_runs(conn: sqlite3.Connection, job_id: str) -> bool:
    """Whether the job has any finished run on record (a removed job's history stays)."""
    return conn.execute("SELECT 1 FROM runs WHERE job_id = ? AND status != 'running' LIMIT 1",
                        (job_id,)).fetchone() is not None


def _lower(value: Any) -> Any:
    # SQLite's lower() folds ASCII only; the real gateway lower-cases every letter
    return value.lower() if isinstance(value, str) else value
