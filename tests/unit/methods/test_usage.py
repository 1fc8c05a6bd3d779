"""usage.status and usage.cost over the usage each turn recorded in its transcript.

The figures follow the real gateway (2026.9.6) as captured: two turns of a mock model that
reported 10 input and 6 output tokens each, one on bench-model priced at 3/15/0.3/3.75 USD per
million tokens and one on the unpriced bench-free, gave ``openclaw gateway usage-cost --json``
totals of 20/12 tokens (32 in all), totalCost 0.00012 (inputCost 3e-05, outputCost 9e-05) and
``missingCostEntries: 1`` with ``missingCostByModel: {"mock/bench-free": 1}``; 30 zero-filled
UTC days ending today.  Its ``cacheStatus`` (the state of its transcript-scan cache) is
absent here: we read the transcripts on every call, there is no cache to report.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.agent.costs import TOTAL_KEYS
from openclaw_tw.agent.models import ModelInfo, Usage
from tests.support.agent import RW, drain, install_fake, send
from tests.support.helpers import call, hello, make_app, ok

READ = ["operator.read"]
PRICES = (3.0, 15.0, 0.3, 3.75)
ZERO = {key: 0 for key in TOTAL_KEYS}


def utc_day(ms: int, days: int = 0) -> str:
    return (datetime.fromtimestamp(ms / 1000, UTC) + timedelta(days=days)
            ).date().isoformat()


class UsageStatus(SynchronousTestCase):
    def test_no_provider_publishes_plan_usage(self) -> None:
        app, _ = make_app()
        c = hello(app.hub, scopes=READ)
        self.assertEqual(ok(c, "usage.status", {}), {"updatedAt": app.hub.now_ms(),
                                                     "providers": []})
        self.assertEqual(ok(c, "usage.status"), {"updatedAt": app.hub.now_ms(),
                                                 "providers": []})
        self.assertFalse(call(c, "usage.status", {"bogus": 1})["ok"])


class UsageCost(SynchronousTestCase):
    def setUp(self) -> None:
        self.app, self.clock = make_app()
        self.addCleanup(self.app.runtime.stopService)
        self.fake = install_fake(self.app, "bench-model")
        self.app.runtime.registry.models += [
            ModelInfo("fake", "bench-model", "Bench mock", context_tokens=128_000, cost=PRICES),
            ModelInfo("fake", "bench-free", "Bench free", context_tokens=32_000)]
        self.w = hello(self.app.hub, scopes=RW)
        self.r = hello(self.app.hub, scopes=READ)
        self.now = self.app.hub.now_ms()

    def turn(self, key: str, usage: Usage, idem: str) -> None:
        """One chat turn of the primary model, which reports ``usage``."""
        send(self.w, key, "hello", idem)
        drain(self.clock, 2)
        self.fake.calls[-1].finish("Hello from the fake model.", usage)
        drain(self.clock)

    def test_no_turns_thirty_zero_days(self) -> None:
        result = ok(self.r, "usage.cost", {"days": 30})
        self.assertEqual(set(result), {"updatedAt", "days", "daily", "totals"})
        self.assertEqual(result["days"], 30)
        self.assertEqual(result["totals"], ZERO)
        self.assertEqual([d["date"] for d in result["daily"]],
                         [utc_day(self.now, -i) for i in range(29, -1, -1)])
        self.assertEqual(result["daily"][-1], {"date": utc_day(self.now), **ZERO})
        self.assertEqual(ok(self.r, "usage.cost", {})["days"], 30)  # the default

    def test_priced_and_unpriced_turns_as_the_real_gateway_counts_them(self) -> None:
        self.turn("main", Usage(10, 6), "k1")
        self.app.runtime.registry.primary = "fake/bench-free"
        self.turn("agent:main:free", Usage(10, 6), "k2")
        result = ok(self.r, "usage.cost", {"days": 30})
        totals = {**ZERO, "input": 20, "output": 12, "totalTokens": 32, "totalCost": 0.00012,
                  "inputCost": 3e-05, "outputCost": 9e-05, "missingCostEntries": 1,
                  "missingCostByModel": {"fake/bench-free": 1}}
        self.assertEqual(result["totals"], totals)
        self.assertEqual(result["daily"][-1], {"date": utc_day(self.now), **totals})
        self.assertEqual(result["daily"][-2], {"date": utc_day(self.now, -1), **ZERO})

    def test_turns_without_tokens_cost_nothing_and_miss_nothing(self) -> None:
        self.app.runtime.registry.primary = "fake/bench-free"
        self.turn("main", Usage(), "k1")  # the provider reported no usage
        self.assertEqual(ok(self.r, "usage.cost", {})["totals"], ZERO)

    def test_cache_tokens_are_priced(self) -> None:
        self.turn("main", Usage(100, 10, cache_read=1000, cache_write=200), "k1")
        totals = ok(self.r, "usage.cost", {})["totals"]
        self.assertEqual((totals["cacheRead"], totals["cacheWrite"], totals["totalTokens"]),
                         (1000, 200, 1310))
        self.assertAlmostEqual(totals["cacheReadCost"], 1000 * 0.3 / 1e6)
        self.assertAlmostEqual(totals["cacheWriteCost"], 200 * 3.75 / 1e6)
        self.assertAlmostEqual(totals["totalCost"], (100 * 3 + 10 * 15 + 1000 * 0.3 +
                                                     200 * 3.75) / 1e6)

    def test_agents(self) -> None:
        self.turn("main", Usage(10, 6), "k1")
        self.turn("agent:ops:main", Usage(1, 1), "k2")
        self.assertEqual(ok(self.r, "usage.cost", {})["totals"]["totalTokens"], 16)
        self.assertEqual(ok(self.r, "usage.cost", {"agentId": "ops"})["totals"]["totalTokens"],
                         2)
        self.assertEqual(ok(self.r, "usage.cost", {"agentScope": "all"})["totals"]
                         ["totalTokens"], 18)
        res = call(self.r, "usage.cost", {"agentScope": "all", "agentId": "ops"})
        self.assertEqual(res["error"], {"code": "INVALID_REQUEST",
                                        "message": "agentScope=all cannot be combined with "
                                                   "agentId"})

    def test_ranges(self) -> None:
        self.turn("main", Usage(10, 6), "k1")
        today = utc_day(self.now)
        one = ok(self.r, "usage.cost", {"days": "1"})
        self.assertEqual((one["days"], [d["date"] for d in one["daily"]]), (1, [today]))
        self.assertEqual(ok(self.r, "usage.cost", {"days": 0})["days"], 1)
        self.assertEqual(ok(self.r, "usage.cost", {"range": "7d"})["days"], 7)
        everything = ok(self.r, "usage.cost", {"range": "all"})
        # an open-ended range is sparse: only the days with usage
        self.assertEqual([d["date"] for d in everything["daily"]], [today])
        self.assertEqual(everything["totals"]["totalTokens"], 16)
        span = ok(self.r, "usage.cost", {"startDate": utc_day(self.now, -2), "endDate": today})
        self.assertEqual((span["days"], span["totals"]["totalTokens"]), (3, 16))
        before = ok(self.r, "usage.cost", {"startDate": utc_day(self.now, -2),
                                           "endDate": utc_day(self.now, -1)})
        self.assertEqual(before["totals"]["totalTokens"], 0)
        shifted = ok(self.r, "usage.cost", {"days": 2, "mode": "specific",
                                            "utcOffset": "UTC+14"})
        self.assertEqual(shifted["daily"][-1]["date"],
                         utc_day(self.now + 14 * 3_600_000))
        zoned = ok(self.r, "usage.cost", {"days": 2, "mode": "specific",
                                          "timeZone": "Pacific/Kiritimati"})
        self.assertEqual(zoned["daily"][-1]["date"], utc_day(self.now + 14 * 3_600_000))

    def test_range_errors_are_the_real_messages(self) -> None:
        today = utc_day(self.now)
        cases: list[tuple[dict[str, Any], str]] = [
            ({"startDate": today}, "startDate and endDate must be provided together"),
            ({"startDate": "2026-02-30", "endDate": today},
             "invalid startDate: expected a valid YYYY-MM-DD calendar date"),
            ({"startDate": today, "endDate": utc_day(self.now, -1)},
             "startDate must not be after endDate"),
            ({"mode": "specific", "timeZone": "Mars/Olympus"},
             "invalid timeZone: expected a valid IANA time zone"),
            ({"mode": "specific", "utcOffset": "UTC+15"},
             "invalid utcOffset: expected UTC-12:00 through UTC+14:00"),
            ({"bogus": True}, "invalid usage.cost params: at root: unexpected property "
                              "'bogus'"),
        ]
        for params, message in cases:
            res = call(self.r, "usage.cost", params)
            self.assertEqual(res["error"], {"code": "INVALID_REQUEST", "message": message},
                             params)
