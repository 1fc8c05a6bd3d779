"""sessions.usage (methods/session_usage.py, agent/session_usage.py): the real 2026.9.6 shape
(captured from its Usage page after chat turns) with this gateway's values, summed from the
transcripts: per-session usage, totals and aggregates, family/instance grouping across a reset,
filters, limits and errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.agent.models import ProviderError
from openclaw_tw.agent.session_usage import UNKNOWN_CREATOR
from tests.support.agent import MAIN, RW, drain, install_fake, send
from tests.support.helpers import call, hello, make_app, ok, stored_row

SESSION_KEYS = ["key", "sessionId", "scope", "sessionFamilyKey", "currentSessionId",
                "includedSessionIds", "historicalInstanceCount", "updatedAt", "agentId",
                "creatorKey", "chatType", "modelProvider", "model", "usage",
                "hasContextWeight"]
AGGREGATE_KEYS = ["sessionCount", "longestSessionDurationMs", "messages", "tools", "byModel",
                  "byProvider", "byAgent", "byChannel", "byCreator", "costDaily", "latency",
                  "dailyLatency", "modelDaily", "daily"]
ZERO = {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0, "totalTokens": 0,
        "totalCost": 0, "inputCost": 0, "outputCost": 0, "cacheReadCost": 0,
        "cacheWriteCost": 0, "missingCostEntries": 0}
# the fake model's turn: 4 input and 2 output tokens; it has no price in the config
TURN = {**ZERO, "input": 4, "output": 2, "totalTokens": 6, "missingCostEntries": 1}


class SessionsUsage(SynchronousTestCase):
    def setUp(self) -> None:
        self.app, self.clock = make_app()
        self.addCleanup(self.app.runtime.stopService)
        self.c = hello(self.app.hub, scopes=RW)
        self.fake = install_fake(self.app)

    def turn(self, key: str = "main", idem: str = "k1", reply_after: float = 0.5) -> None:
        send(self.c, key, "hi", idem)
        self.clock.advance(reply_after)
        self.fake.calls[-1].finish("hello")
        drain(self.clock)

    def usage(self, **params: Any) -> Any:
        return ok(self.c, "sessions.usage", params)

    def ts(self, role: str) -> list[int]:
        return [r[0] for r in self.app.sessions_db.run_now(lambda c: c.execute(
            "SELECT ts FROM transcript WHERE role=? ORDER BY seq", (role,)).fetchall())]

    def test_fresh(self) -> None:
        out = self.usage()
        today = datetime.fromtimestamp(self.app.hub.now_ms() / 1000, UTC).date()
        self.assertEqual((out["endDate"], out["sessions"], out["totals"], out["creatorOptions"]),
                         (today.isoformat(), [], ZERO, []))
        self.assertEqual(out["aggregates"]["sessionCount"], 0)
        self.assertEqual(out["aggregates"]["messages"], {"total": 0, "user": 0, "assistant": 0,
                                                         "toolCalls": 0, "toolResults": 0,
                                                         "errors": 0})

    def test_after_a_turn(self) -> None:
        self.turn()
        out = self.usage(groupBy="family", limit=1000, mode="specific", timeZone="UTC")
        [row] = out["sessions"]
        self.assertEqual(list(row), SESSION_KEYS)
        session_id = stored_row(self.app, MAIN).session_id
        self.assertEqual({k: row[k] for k in SESSION_KEYS if k != "usage"}, {
            "key": MAIN, "sessionId": session_id, "scope": "family",
            "sessionFamilyKey": MAIN, "currentSessionId": session_id,
            "includedSessionIds": [session_id], "historicalInstanceCount": 1,
            "updatedAt": stored_row(self.app, MAIN).updated_at, "agentId": "main",
            "creatorKey": UNKNOWN_CREATOR, "chatType": "direct", "modelProvider": "fake",
            "model": "fake-1", "hasContextWeight": False})
        [user_ts], [reply_ts] = self.ts("user"), self.ts("assistant")
        day = datetime.fromtimestamp(reply_ts / 1000, UTC).date().isoformat()
        latency = {"count": 1, "avgMs": reply_ts - user_ts, "p95Ms": reply_ts - user_ts,
                   "minMs": reply_ts - user_ts, "maxMs": reply_ts - user_ts}
        counts = {"total": 2, "user": 1, "assistant": 1, "toolCalls": 0, "toolResults": 0,
                  "errors": 0}
        usage = row["usage"]
        self.assertEqual({k: usage[k] for k in TURN}, TURN)
        self.assertEqual((usage["sessionId"], usage["firstActivity"], usage["lastActivity"],
                          usage["durationMs"]),
                         (session_id, user_ts, reply_ts, reply_ts - user_ts))
        self.assertEqual(usage["messageCounts"], counts)
        self.assertEqual(usage["modelUsage"], [{"provider": "fake", "model": "fake-1",
                                                "count": 1, "totals": TURN}])
        self.assertEqual(usage["latency"], latency)
        self.assertEqual(usage["activityDates"], [day])
        self.assertEqual(usage["dailyBreakdown"], [{"date": day, "tokens": 6, "cost": 0,
                                                    **TURN}])
        self.assertEqual(usage["dailyMessageCounts"], [{"date": day, **counts}])
        self.assertEqual(usage["dailyLatency"], [{"date": day, **latency}])
        self.assertEqual(usage["dailyModelUsage"], [{"date": day, "provider": "fake",
                                                     "model": "fake-1", "tokens": 6,
                                                     "cost": 0, "count": 1}])
        quarter = (reply_ts // 60_000 % (24 * 60)) // 15
        self.assertEqual(usage["utcQuarterHourTokenUsage"], [{
            "date": day, "quarterIndex": quarter, "input": 4, "output": 2, "cacheRead": 0,
            "cacheWrite": 0, "totalTokens": 6, "totalCost": 0}])
        self.assertEqual(out["totals"], TURN)
        agg = out["aggregates"]
        self.assertEqual(list(agg), AGGREGATE_KEYS)
        self.assertEqual((agg["sessionCount"], agg["longestSessionDurationMs"], agg["messages"]),
                         (1, reply_ts - user_ts, counts))
        self.assertEqual(agg["byModel"], usage["modelUsage"])
        self.assertEqual(agg["byProvider"], [{"provider": "fake", "count": 1, "totals": TURN}])
        self.assertEqual(agg["byAgent"], [{"agentId": "main", "totals": TURN}])
        self.assertEqual(agg["byChannel"], [])
        self.assertEqual(agg["byCreator"], [{
            "key": UNKNOWN_CREATOR, "totals": TURN, "sessionCount": 1,
            "daily": [{"date": day, **TURN}],
            "sessionActivity": [{"dates": [day], "sessionCount": 1}]}])
        self.assertEqual(agg["daily"], [{"date": day, "tokens": 6, "cost": 0, "messages": 2,
                                         "toolCalls": 0, "errors": 0}])
        self.assertEqual(out["creatorOptions"], [{"key": UNKNOWN_CREATOR}])

    def test_a_failed_run_counts_as_an_error(self) -> None:
        send(self.c, "main", "hi", "k1")
        self.clock.advance(0.5)
        self.fake.calls[0].fail(ProviderError("boom", "unknown"))
        drain(self.clock)
        usage = self.usage()["sessions"][0]["usage"]
        self.assertEqual(usage["messageCounts"], {"total": 1, "user": 1, "assistant": 0,
                                                  "toolCalls": 0, "toolResults": 0,
                                                  "errors": 1})
        self.assertNotIn("latency", usage)

    def test_family_and_instance_across_a_reset(self) -> None:
        self.turn(idem="k1")
        old = stored_row(self.app, MAIN).session_id
        ok(hello(self.app.hub, scopes=["operator.admin"]), "sessions.reset", {"key": MAIN})
        self.turn(idem="k2")
        new = stored_row(self.app, MAIN).session_id
        [family] = self.usage(groupBy="family")["sessions"]
        self.assertEqual((family["includedSessionIds"], family["historicalInstanceCount"],
                          family["usage"]["messageCounts"]["total"]), ([old, new], 2, 4))
        instance = self.usage()["sessions"]
        self.assertEqual([(s["key"], s["sessionId"], s["scope"]) for s in instance],
                         [(MAIN, new, "instance"), (f"agent:main:{old}", old, "instance")])
        self.assertEqual(self.usage(includeHistorical=True)["sessions"][0]["scope"], "family")

    def test_filters_and_limit(self) -> None:
        self.turn("main", "k1")
        self.turn("work", "k2")
        self.assertEqual([s["key"] for s in self.usage()["sessions"]],
                         ["agent:main:work", MAIN])  # newest first
        self.assertEqual([s["key"] for s in self.usage(key="main")["sessions"]], [MAIN])
        limited = self.usage(limit=1)
        self.assertEqual((len(limited["sessions"]), limited["aggregates"]["sessionCount"],
                          limited["totals"]["totalTokens"]), (1, 2, 12))
        self.assertEqual(self.usage(agentId="ops")["sessions"], [])
        self.assertEqual(len(self.usage(agentScope="all")["sessions"]), 2)
        self.assertEqual(self.usage(creatorKey='["profile","someone"]')["sessions"], [])
        self.assertEqual(len(self.usage(creatorKey=UNKNOWN_CREATOR)["sessions"]), 2)

    def test_out_of_range(self) -> None:
        self.turn()
        self.assertEqual(self.usage(startDate="2001-01-01", endDate="2001-01-31")["sessions"],
                         [])
        # a named session is listed whatever its activity in the range
        [row] = self.usage(key="main", startDate="2001-01-01", endDate="2001-01-31")["sessions"]
        self.assertIsNone(row["usage"])

    def test_errors(self) -> None:
        for params, message in (
                ({"agentScope": "all", "agentId": "main"},
                 "agentScope=all cannot be combined with key or agentId"),
                ({"agentScope": "all", "key": "main"},
                 "agentScope=all cannot be combined with key or agentId"),
                ({"startDate": "2026-02-30", "endDate": "2026-03-01"},
                 "invalid startDate: expected a valid YYYY-MM-DD calendar date"),
                ({"startDate": "2026-03-01"}, "startDate and endDate must be provided together"),
                ({"limit": 0}, "invalid sessions.usage params: at /limit: must be >= 1"),
                ({"groupBy": "day"}, "invalid sessions.usage params: at /groupBy: must be "
                                     "equal to one of the allowed values")):
            res = call(self.c, "sessions.usage", params)
            self.assertEqual(res["error"]["message"], message, params)

    def test_not_advertised(self) -> None:
        self.assertNotIn("sessions.usage", self.app.table.advertised())
