"""sessions.search (methods/session_search.py): the Control UI's command-palette search, in the
real 2026.9.6 shape -- ``results`` (one hit per matching user/assistant message: key, session
id, message id, role, timestamp, snippet, score; best first) and ``sessions`` (the rows hit).
The params are the UI's captured request: ``{query, limit: 25, scope: {includeGlobal: false,
includeUnknown: false, configuredAgentsOnly: true, excludeSubagents: true, excludeCron: true,
excludeSystem: true}}``."""

from __future__ import annotations

import sqlite3
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.methods import session_search
from openclaw_tw.methods.session_search import SNIPPET_MAX, score, snippet
from tests.support.agent import RW, drain, history, install_fake, send
from tests.support.helpers import call, hello, make_app, ok

UI_SCOPE = {"includeGlobal": False, "includeUnknown": False, "configuredAgentsOnly": True,
            "excludeSubagents": True, "excludeCron": True, "excludeSystem": True}


class SessionSearch(SynchronousTestCase):
    def setUp(self) -> None:
        self.app, self.clock = make_app()
        self.addCleanup(self.app.runtime.stopService)
        self.c = hello(self.app.hub, scopes=RW)
        self.fake = install_fake(self.app)

    def turn(self, key: str, text: str, reply: str) -> None:
        send(self.c, key, text, f"{key}-{len(self.fake.calls)}")
        self.clock.advance(0.5)
        self.fake.calls[-1].finish(reply)
        drain(self.clock)

    def search(self, query: str, **extra: Any) -> dict[str, Any]:
        return ok(self.c, "sessions.search", {"query": query, "limit": 25,
                                              "scope": dict(UI_SCOPE), **extra})

    def test_the_ui_search(self) -> None:
        self.turn("dashboard:alpha", "first alpha", "Hello from the model.")
        self.turn("dashboard:beta", "beta question", "An ALPHA answer, and alpha again.")
        self.turn("cron:job-1", "alpha from cron", "cron reply")
        got = self.search("Alpha")
        self.assertEqual([(h["sessionKey"], h["role"]) for h in got["results"]],
                         [("agent:main:dashboard:beta", "assistant"),
                          ("agent:main:dashboard:alpha", "user")])  # two hits score higher
        hit = got["results"][1]
        alpha = history(self.c, "agent:main:dashboard:alpha")
        user = alpha["messages"][0]
        self.assertEqual(hit["messageId"], user["__openclaw"]["id"])
        self.assertEqual(hit["sessionId"], alpha["sessionId"])
        self.assertEqual(hit["snippet"], "first alpha")
        self.assertIsInstance(hit["timestamp"], int)
        self.assertGreater(got["results"][0]["score"], hit["score"])
        self.assertEqual([s["key"] for s in got["sessions"]],
                         ["agent:main:dashboard:beta", "agent:main:dashboard:alpha"])
        self.assertEqual(got["sessions"][1]["sessionId"], alpha["sessionId"])
        # every term must occur; the cron session shows once the scope lets it in
        self.assertEqual(self.search("alpha missing")["results"], [])
        wide = ok(self.c, "sessions.search", {"query": "alpha cron"})
        self.assertEqual([h["sessionKey"] for h in wide["results"]], ["agent:main:cron:job-1"])
        keys = ok(self.c, "sessions.search", {"query": "alpha",
                                              "sessionKeys": ["agent:main:dashboard:alpha"]})
        self.assertEqual(len(keys["results"]), 1)

    def test_like_wildcards_are_literal_and_limit_holds(self) -> None:
        for i in range(4):
            self.turn("main", f"item {i} 100% done_ok", "noted")
        self.turn("main", "item 9 1000 doneXok", "noted")
        got = ok(self.c, "sessions.search", {"query": "100% done_ok", "limit": 2})
        self.assertEqual(len(got["results"]), 2)
        self.assertTrue(all("100% done_ok" in h["snippet"] for h in got["results"]))
        self.assertEqual(ok(self.c, "sessions.search", {"query": "%"})["results"][0]["snippet"],
                         "item 3 100% done_ok")  # ties: the newest first

    def test_non_ascii_quotes_and_backslashes_match(self) -> None:
        """The stored transcript is JSON text (non-ASCII as ``\\uXXXX``, quotes and
        backslashes escaped): a term in any script, in any case, still finds its message."""
        self.turn("main", "Grüße aus Köln, ÄRGER", "日本語の返事 😀")
        self.turn("main", 'say "quoted" at C:\\temp\\x', "Ωmega sign")
        self.turn("main", "plain ascii only", "nothing else")
        for query, snippet_has in (("grüße", "Grüße"), ("ärger", "ÄRGER"), ("GRÜSSE", None),
                                   ("köln ärger", "Köln"), ("日本語", "日本語"), ("😀", "😀"),
                                   ('"quoted"', '"quoted"'), ("c:\\temp\\x", "C:\\temp"),
                                   ("ωMEGA", "Ωmega")):
            hits = self.search(query)["results"]
            if snippet_has is None:
                self.assertEqual(hits, [], query)  # no case folding beyond lower()
                continue
            self.assertEqual(len(hits), 1, query)
            self.assertIn(snippet_has, hits[0]["snippet"])
        self.assertEqual(self.search("日本人")["results"], [])
        self.assertEqual(session_search._like("ä_"), "%\\\\u00_4\\_%")

    def test_fresh_and_bad_input(self) -> None:
        self.assertEqual(self.search("anything"), {"results": [], "sessions": []})
        for bad in ({}, {"query": ""}, {"query": "x", "limit": 26}, {"query": "x" * 4097},
                    {"query": "x", "scope": {"nope": 1}}, {"query": "x", "extra": 1},
                    {"query": 5}):
            res = call(self.c, "sessions.search", bad)
            self.assertEqual(res["error"]["code"], "INVALID_REQUEST", bad)

    def test_snippet_and_score(self) -> None:
        text = "lorem " * 60 + "needle" + " ipsum" * 60
        cut = snippet(text, ["needle"])
        self.assertIn("needle", cut)
        self.assertTrue(cut.startswith("…") and cut.endswith("…"))
        self.assertLessEqual(len(cut), SNIPPET_MAX + 2)
        self.assertEqual(score("no match here", ["needle"]), 0.0)
        self.assertGreater(score("needle", ["needle"]), score(text, ["needle"]))


class Counting:
    """A connection that counts the seqs the named sessions' index walks hand back."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.seqs = 0

    def execute(self, sql: str, args: Any = ()) -> Any:
        cursor = self.conn.execute(sql, args)
        if sql.startswith("SELECT seq FROM transcript WHERE session_key"):
            rows = cursor.fetchall()
            self.seqs += len(rows)
            return iter(rows)
        return cursor


class SearchWindow(SynchronousTestCase):
    """A search looks at the newest ``SCAN_WINDOW`` entries and nothing older, whatever its
    terms (one or two characters, or matching nothing): it cannot be made to read every entry.
    The oldest entry holds the only "zq": outside the window it is not found."""

    def setUp(self) -> None:
        self.app, self.clock = make_app()
        self.addCleanup(self.app.runtime.stopService)
        self.patch(session_search, "SCAN_WINDOW", 40)
        store = self.app.sessions
        for i in range(30):  # 30 sessions of 6 entries: 180, oldest first
            row = self.successResultOf(store.ensure(f"agent:main:s{i}"))
            for j in range(6):
                role = ("user", "assistant", "custom")[j % 3]
                text = "zq old needle" if (i, j) == (0, 0) else f"turn {j} of {i}"
                self.successResultOf(store.append(row, role, {"role": role, "content": text}))

    def scan(self, terms: list[str], keys: list[str] | None = None) -> tuple[list[str], int]:
        def run(conn: sqlite3.Connection) -> tuple[list[str], int]:
            counting = Counting(conn)
            hits = session_search._scan(counting, keys, terms, 25)  # type: ignore[arg-type]
            return [h["snippet"] for _, _, h in hits], counting.seqs

        out: tuple[list[str], int] = self.app.sessions_db.run_now(run)
        return out

    def test_a_match_older_than_the_window_is_not_looked_at(self) -> None:
        for terms in (["zq"], ["q"], ["old", "needle"]):
            self.assertEqual(self.scan(terms)[0], [], terms)
        self.patch(session_search, "SCAN_WINDOW", 180)
        self.assertEqual(self.scan(["zq"])[0], ["zq old needle"])
        self.assertEqual(self.scan(["q"])[0], ["zq old needle"])

    def test_the_window_holds_the_newest_entries(self) -> None:
        # 40 entries: sessions 29..24 (36) and four of 23's; custom entries are never hits
        hits = self.scan(["turn"])[0]
        self.assertEqual(len(hits), 25)
        self.assertEqual(hits[:2], ["turn 4 of 29", "turn 3 of 29"])
        self.assertEqual(self.scan(["of", "23"])[0], ["turn 4 of 23", "turn 3 of 23"])

    def test_named_sessions_have_a_window_of_their_own(self) -> None:
        # the old message is found among a few named sessions' entries
        self.assertEqual(self.scan(["zq"], ["agent:main:s0", "agent:main:s1"]),
                         (["zq old needle"], 12))
        # however many sessions are named, their walks read at most twice the window
        every = [f"agent:main:s{i}" for i in range(30)]
        hits, seqs = self.scan(["zq"], every)
        self.assertEqual(hits, [])
        self.assertLessEqual(seqs, 2 * 40)
        self.assertEqual(self.scan(["of", "23"], every)[0], ["turn 4 of 23", "turn 3 of 23"])

    def test_the_candidates_are_read_from_the_floor_up(self) -> None:
        """The window's entries are read through a range from its floor (the table's rowid, or
        each named session's index), the transcript first: nothing below the floor."""
        for keys, walk in ((0, "SEARCH t USING INTEGER PRIMARY KEY (rowid>?)"),
                           (3, "SEARCH t USING INDEX transcript_by_session "
                               "(session_key=? AND seq>?)")):
            sql = session_search.statement(keys, 2)
            plan = self.app.sessions_db.run_now(lambda conn, sql=sql: conn.execute(
                "EXPLAIN QUERY PLAN " + sql, ["x"] * sql.count("?")).fetchall())
            details = [str(p[-1]) for p in plan]
            self.assertEqual(details[0], walk, details)
            self.assertTrue(details[1].startswith("SEARCH s USING INDEX"), details)
