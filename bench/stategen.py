"""Synthetic session state for the ``state-scale`` scenario, written with the store's own schema.

``python -m bench.stategen STATE_DIR SESSIONS [ENTRIES_PER_SESSION]`` fills
``STATE_DIR/agents/main/agent/openclaw_tw-sessions.sqlite`` (what ``--state-dir STATE_DIR``
opens) through ``Database`` and the sessions file's schema, rows as ``SessionRow.as_tuple`` with
the store's ``ROW_UPSERT``, entries with its transcript insert — in bulk transactions, which is
the only difference from turns taken one by one.  Every session gets ``ENTRIES_PER_SESSION``
entries (answered user/assistant pairs); ten ``agent:main:big-N`` sessions get ``BIG_ENTRIES``
more (for ``chat.history`` limit 200).  Mixed rows: 10 % of agent ``ops``, 5 % archived, 0.1 %
pinned, every 100th labelled (labels are unique, as the real gateway requires).  Bounded: the sizes asked for, nothing else.
``python -m bench.stategen --migrate STATE_DIR`` brings a cached state to the current schema.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from openclaw_tw.app import SESSIONS_FILE_SCHEMA
from openclaw_tw.db import Database
from openclaw_tw.sessions.store import ROW_UPSERT, TRANSCRIPT_INSERT, SessionRow

BIG_SESSIONS = 10
BIG_ENTRIES = 400
BATCH = 5_000  # sessions per transaction
T0 = 1_790_000_000_000  # ms: the generated sessions' first activity


def sessions_file(state_dir: Path) -> Path:
    return state_dir / "agents" / "main" / "agent" / "openclaw_tw-sessions.sqlite"


def _row(i: int, key: str, entries: int) -> SessionRow:
    agent = "ops" if i % 10 == 9 else "main"
    if key.startswith("agent:main:"):
        agent = "main"
    updated = T0 + i * 1000 + entries
    return SessionRow(key, agent, f"00000000-0000-4000-8000-{i:012x}", T0 + i * 1000, updated,
                      last_interaction_at=updated, label=f"label-{i // 100}" if i % 100 == 0
                      else None, status="done", last_run_id=f"gen-{i}-{entries // 2 - 1}",
                      archived=i % 20 == 7, pinned=i % 1000 == 3, created_via="chat")


def _entries(i: int, row: SessionRow, n: int, start: int) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for j in range(n):
        turn = j // 2
        run_id = f"gen-{i}-{turn}"
        role = "user" if j % 2 == 0 else "assistant"
        ts = row.created_at + j
        body = {"role": role, "content": [{"type": "text", "text":
                                           f"synthetic {role} message {turn} of session {i}"}],
                "timestamp": ts}
        out.append((row.key, row.session_id, f"e{start + j:012x}-{i:x}", role,
                    json.dumps(body), run_id, f"{run_id}:user" if role == "user" else None, ts))
    return out


def generate(state_dir: Path, sessions: int, per_session: int) -> dict[str, object]:
    path = sessions_file(state_dir)
    if path.exists():
        raise SystemExit(f"{path} exists: generate into an empty state dir")
    t0 = time.perf_counter()
    db = Database(path, SESSIONS_FILE_SCHEMA, inline=True)
    db.open()
    db.run_now(lambda conn: None)
    conn = db._conn  # noqa: SLF001 - the generator tunes its own bulk connection
    assert conn is not None
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-262144")
    entries = 0
    for lo in range(0, sessions, BATCH):
        rows, lines = [], []
        for i in range(lo, min(sessions, lo + BATCH)):
            big = i < BIG_SESSIONS
            key = f"agent:main:big-{i}" if big else \
                f"agent:{'ops' if i % 10 == 9 else 'main'}:s{i:07d}"
            n = per_session + (BIG_ENTRIES if big else 0)
            row = _row(i, key, n)
            rows.append(row.as_tuple())
            lines += _entries(i, row, n, entries + len(lines))
        entries += len(lines)

        def write(c: object, rows: list[tuple[object, ...]] = rows,
                  lines: list[tuple[object, ...]] = lines) -> None:
            c.executemany(ROW_UPSERT, rows)  # type: ignore[attr-defined]
            c.executemany(TRANSCRIPT_INSERT, lines)  # type: ignore[attr-defined]

        db.run_now(write)  # type: ignore[arg-type]
        if (lo // BATCH) % 20 == 0:
            print(f"[stategen] {lo + len(rows)} sessions, {entries} entries, "
                  f"{time.perf_counter() - t0:.0f}s", file=sys.stderr, flush=True)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return {"sessions": sessions, "entries": entries, "seconds": time.perf_counter() - t0,
            "bytes": path.stat().st_size}


def migrate(state_dir: Path) -> None:
    """Bring a cached state to the current schema (a one-time cost kept out of start-up)."""
    path = sessions_file(state_dir)
    if path.exists():
        db = Database(path, SESSIONS_FILE_SCHEMA, inline=True)
        db.open()
        db.close()


def main(argv: list[str]) -> int:
    if argv[:1] == ["--migrate"] and len(argv) == 2:
        migrate(Path(argv[1]))
        return 0
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    per = int(argv[2]) if len(argv) > 2 else 10
    print(json.dumps(generate(Path(argv[0]), int(argv[1]), per)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
