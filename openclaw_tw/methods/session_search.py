"""sessions.search: full-text search over the sessions' transcripts (the Control UI's command
palette and sidebar search).

The real gateway answers ``{results, sessions}``: one hit per matching user or assistant message
(``sessionKey``, ``sessionId``, ``messageId``, ``role``, ``timestamp``, a ``snippet`` of the
message and a relevance ``score``, best first, at most ``limit`` <= 25) and the session rows of
the sessions hit, as ``sessions.list`` shows them.  Here a message matches when every term of
the query occurs in its text (case-insensitively); the score counts the occurrences, weighted
toward short messages, and ties go to the newer message.  The scope takes the sessions.list
filters the UI sends (agent, keys, cron / sub-agent / system sessions, archived, pinned, group,
label).

Bounds: the query is at most 4096 characters and 16 terms.  A search looks at the newest
``SCAN_WINDOW`` transcript entries (of the named sessions when ``sessionKeys`` is given) and
nothing older, whatever the terms: a term that matches nothing, or one of one or two
characters (a trigram index could not serve it), costs that window and no more, on the
database thread.  The window's floor is found first (an offset into the table, or the named
sessions' index walks merged), then its entries are read from the floor up.  Within it, user
and assistant entries of the sessions' current ids whose stored text holds every term (LIKE,
in SQLite) are candidates; the newest ``SCAN_MAX`` of them are scored and only the best
``limit`` hits are kept.  (Without the window a term matching nothing read every transcript
entry: 1.2–2.7 s at 100k sessions, 1M entries; now 15–25 ms.)
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from twisted.internet.defer import Deferred

from openclaw_tw.db import Database
from openclaw_tw.protocol.dispatch import CallContext, rpc
from openclaw_tw.protocol.schema import AnyValue, Arr, Bool, Int, Obj, Str
from openclaw_tw.sessions.keys import agent_of, kind_of
from openclaw_tw.sessions.listing import SQL_INT
from openclaw_tw.sessions.store import SessionRow

_S1 = Str(min_len=1)
SCOPE = Obj(optional={
    "activeMinutes": Int(1), "activeOnly": Bool(), "requireLastInteraction": Bool(),
    "sortBy": Str(), "includeGlobal": Bool(), "includeUnknown": Bool(),
    "excludeSubagents": Bool(), "excludeCron": Bool(), "excludeSystem": Bool(),
    "configuredAgentsOnly": Bool(), "label": Str(1, 512), "projectId": _S1,
    "workspaceDir": _S1, "group": Str(), "pinned": Bool(), "boardFace": Str(),
    "hasBoard": Bool(), "creatorId": _S1, "ownerId": _S1, "involvingMe": Bool(),
    "profileRelation": AnyValue(), "involvingProfileId": _S1, "spawnedBy": _S1,
    "agentId": _S1, "search": Str(), "archived": AnyValue()})
SEARCH = Obj({"query": Str(1, 4096)},
             {"agentId": _S1, "sessionKeys": Arr(_S1, 1000), "scope": SCOPE,
              "limit": Int(1, 25)})
DEFAULT_LIMIT = 25
TERMS_MAX = 16
SCAN_MAX = 2000      # candidate rows scored per search, newest first
SCAN_WINDOW = 20_000  # transcript entries looked at per search, newest first
SNIPPET_MAX = 160
ROLES = ("user", "assistant")
KEYS_INLINE_MAX = 5000  # sessionKeys walked at most (the schema allows 1000)
POOL_FACTOR = 4  # hits scored per result asked, before the scope filter


def terms_of(query: str) -> list[str]:
    return list(dict.fromkeys(query.lower().split()))[:TERMS_MAX]


def message_text(body: dict[str, Any]) -> str:
    content = body.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p["text"] for p in content
                        if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def score(text: str, terms: list[str]) -> float:
    """0 unless every term occurs; else the occurrences, weighted toward short messages."""
    lowered = text.lower()
    counts = [lowered.count(t) for t in terms]
    if not all(counts):
        return 0.0
    return round(sum(1 + math.log(c) for c in counts) * 10 / math.log(len(lowered) + 10), 6)


def snippet(text: str, terms: list[str]) -> str:
    """The message (whitespace collapsed), or a window around the first term's first hit."""
    flat = " ".join(text.split())
    if len(flat) <= SNIPPET_MAX:
        return flat
    at = min((i for i in (flat.lower().find(t) for t in terms) if i >= 0), default=0)
    start = max(0, min(at - SNIPPET_MAX // 3, len(flat) - SNIPPET_MAX))
    out = flat[start:start + SNIPPET_MAX]
    return ("…" if start else "") + out + ("…" if start + SNIPPET_MAX < len(flat) else "")


def in_scope(row: SessionRow, params: dict[str, Any]) -> bool:
    scope = params.get("scope") or {}
    key = row.key
    agent = params.get("agentId") or scope.get("agentId")
    if agent and agent_of(key) != agent:
        return False
    keys = params.get("sessionKeys")
    if keys is not None and key not in keys:
        return False
    kind = kind_of(key)
    if kind == "global" and not scope.get("includeGlobal", True):
        return False
    if kind == "unknown" and not scope.get("includeUnknown", True):
        return False
    if scope.get("excludeCron") and (":cron:" in key or row.created_via == "cron"):
        return False
    if scope.get("excludeSubagents") and ":subagent:" in key:
        return False
    if scope.get("excludeSystem") and row.created_via in ("boot", "heartbeat"):
        return False
    archived = scope.get("archived", False)
    if archived != "all" and bool(row.archived) is not bool(archived):
        return False
    if "pinned" in scope and bool(row.pinned) is not scope["pinned"]:
        return False
    if "group" in scope and (row.overrides.get("category") or "") != scope["group"]:
        return False
    label = scope.get("label")
    return not label or (row.label or "") == label


BATCH_MAX = 256  # seqs one session's walk reads at a time


def _literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _char_pattern(ch: str) -> str:
    """A LIKE piece matching ``ch`` and its case variants as stored (lower(body) folds ASCII
    only): the escapes of the variants, their differing hex digits as ``_``."""
    if ord(ch) < 128:
        return _literal(json.dumps(ch)[1:-1])
    forms = {json.dumps(v)[1:-1] for v in {ch, ch.lower(), ch.upper(), ch.title()}
             if len(v) == 1}
    if len({len(f) for f in forms}) != 1:
        forms = {json.dumps(ch)[1:-1]}
        return "".join("_" if c not in "\\u" else _literal(c) for c in forms.pop())
    first, *rest = sorted(forms)
    return "".join(_literal(c) if all(f[i] == c for f in rest) else "_"
                   for i, c in enumerate(first))


def _like(term: str) -> str:
    """The LIKE pattern of a (lowercased) term against lower(body), the stored JSON: quotes,
    backslashes and control characters escaped as JSON escapes them, non-ASCII characters as
    their ``\\uXXXX`` escapes (any case of them). A superset: the decoded text decides."""
    return "%" + "".join(_char_pattern(ch) for ch in term) + "%"


def _seqs(conn: sqlite3.Connection, key: str, batch: int) -> Iterator[int]:
    """One session's entry seqs, newest first, from its index alone, ``batch`` at a time as
    they are consumed (no statement stays open between batches)."""
    before = SQL_INT
    while True:
        seqs = [seq for (seq,) in conn.execute(
            "SELECT seq FROM transcript WHERE session_key=? AND seq<? ORDER BY seq DESC "
            "LIMIT ?", (key, before, batch))]
        yield from seqs
        if len(seqs) < batch:
            return
        before = seqs[-1]


def _floor(conn: sqlite3.Connection, keys: list[str] | None) -> int:
    """The oldest seq of the window: of the newest ``SCAN_WINDOW`` entries, or of the named
    sessions' newest (their index walks merged; each reads at most one batch past the window,
    and batches shrink as the sessions named grow: never more than twice the window); 0 when
    there are fewer."""
    if not keys:
        found = conn.execute("SELECT seq FROM transcript ORDER BY seq DESC LIMIT 1 OFFSET ?",
                             (SCAN_WINDOW - 1,)).fetchone()
        return int(found[0]) if found else 0
    batch = max(1, min(BATCH_MAX, SCAN_WINDOW // len(keys)))
    merged = heapq.merge(*(_seqs(conn, key, batch) for key in keys), reverse=True)
    return next(itertools.islice(merged, SCAN_WINDOW - 1, None), 0)


def statement(keys: int, terms: int) -> str:
    """The candidates' SELECT: the window's entries (from its floor up: a range of the table,
    or of each named session's index), user and assistant ones of the sessions' current ids
    (not an earlier session of a key) whose stored text holds every term, newest first.
    Parameters: the roles, the keys, the floor, the terms' patterns, SCAN_MAX."""
    source = "transcript t INDEXED BY transcript_by_session" if keys else \
        "transcript t NOT INDEXED"  # the rowid range still serves it
    return (
        "SELECT t.seq, t.session_key, t.session_id, t.entry_id, t.role, t.body, t.ts "
        f"FROM {source} CROSS JOIN sessions s "
        "ON s.key = t.session_key AND s.session_id = t.session_id WHERE t.role IN (?, ?)"
        + (f" AND t.session_key IN ({','.join('?' * keys)})" if keys else "")
        + " AND t.seq >= ?" + " AND lower(t.body) LIKE ? ESCAPE '\\'" * terms
        + " ORDER BY t.seq DESC LIMIT ?")


def _candidates(conn: sqlite3.Connection, keys: list[str] | None, terms: list[str]
                ) -> list[tuple[Any, ...]]:
    """The newest SCAN_MAX entries of the window whose stored text holds every term (LIKE, in
    SQLite)."""
    keys = list(dict.fromkeys(keys)) if keys else None
    return conn.execute(statement(len(keys or ()), len(terms)),
                        [*ROLES, *(keys or ()), _floor(conn, keys),
                         *(_like(t) for t in terms), SCAN_MAX]).fetchall()


def _scan(conn: sqlite3.Connection, keys: list[str] | None, terms: list[str],
          limit: int) -> list[tuple[float, int, dict[str, Any]]]:
    """The best ``limit`` hits among the candidates (the message text decides)."""
    best: list[tuple[float, int, dict[str, Any]]] = []
    for seq, key, session_id, entry_id, role, body, ts in _candidates(conn, keys, terms):
        try:
            message = json.loads(body)
        except ValueError:
            continue
        text = message_text(message) if isinstance(message, dict) else ""
        value = score(text, terms)
        if not value:
            continue
        hit = {"sessionKey": key, "sessionId": session_id, "messageId": entry_id,
               "role": role, "timestamp": ts, "snippet": snippet(text, terms), "score": value}
        item = (value, seq, hit)
        if len(best) < limit:
            heapq.heappush(best, item)
        elif item[:2] > best[0][:2]:
            heapq.heapreplace(best, item)
    return sorted(best, key=lambda x: (x[0], x[1]), reverse=True)


class SessionSearchMethods:
    def __init__(self, db: Database,
                 get_many: Callable[[Iterable[str]], Deferred[dict[str, SessionRow]]],
                 present: Callable[[SessionRow], dict[str, Any]]) -> None:
        self._db = db
        self._get_many = get_many  # rows by key, from the sessions store (bounded cache)
        self._present = present

    @rpc("sessions.search", SEARCH)
    def sessions_search(self, ctx: CallContext, params: dict[str, Any]
                        ) -> Deferred[dict[str, Any]]:
        terms = terms_of(params["query"])
        limit = params.get("limit", DEFAULT_LIMIT)
        keys = params.get("sessionKeys")
        keys = list(keys)[:KEYS_INLINE_MAX] if keys else None
        # a pool larger than the page: hits of sessions out of scope are dropped afterwards
        d = self._db.run(lambda conn: _scan(conn, keys, terms, limit * POOL_FACTOR)
                         if terms else [])

        def with_rows(hits: list[tuple[float, int, dict[str, Any]]]) -> Any:
            wanted = list(dict.fromkeys(h["sessionKey"] for _, _, h in hits))
            return self._get_many(wanted).addCallback(self._answer, hits, params, limit)

        return d.addCallback(with_rows)

    def _answer(self, rows: dict[str, SessionRow],
                hits: list[tuple[float, int, dict[str, Any]]], params: dict[str, Any],
                limit: int) -> dict[str, Any]:
        results = [h for _, _, h in hits
                   if h["sessionKey"] in rows and in_scope(rows[h["sessionKey"]], params)]
        results = results[:limit]
        keys = list(dict.fromkeys(h["sessionKey"] for h in results))
        return {"results": results, "sessions": [self._present(rows[k]) for k in keys]}
