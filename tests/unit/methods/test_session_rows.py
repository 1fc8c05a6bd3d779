"""Session rows carry what the real gateway's rows carry and we can compute (methods/
session_rows.py): the last run's token usage (not every run's added up), the prompt size as
``totalTokens`` with ``totalTokensFresh``, the estimated cost at the configured prices, the
model's context window as ``contextTokens``, and the real status/createdVia values; the same
row is chat.history's ``sessionInfo`` (which the real TUI's footer reads).

The numbers are those of the real gateway (2026.9.6) against a mock model whose usage varied
per turn — 100/6, then 250 prompt tokens of which 200 cached and 7 output, then no usage chunk,
then 400/9 — with bench-model priced at 3/15/0.3/3.75 USD per million tokens: its rows read
inputTokens 100, 50, 50, 400; outputTokens 6, 7, 7, 9; totalTokens 100, 250, (an estimate),
400; estimatedCostUsd 0.00039, 0.000315, 0.000315, 0.0013349999999999998."""

from __future__ import annotations

import random
from typing import Any
from unittest.mock import Mock

from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.agent.models import ModelInfo, ProviderError, Usage
from openclaw_tw.methods.session_rows import (
    CREATED_VIA,
    STATUS,
    THINKING,
    RowPresenter,
    classification,
)
from openclaw_tw.sessions.keys import kind_of
from openclaw_tw.sessions.store import SessionRow
from tests.support.agent import ADMIN, MAIN, RW, drain, history, install_fake, send
from tests.support.helpers import hello, make_app, ok

PRICES = (3.0, 15.0, 0.3, 3.75)
TOKEN_FIELDS = ("inputTokens", "outputTokens", "totalTokens", "totalTokensFresh",
                "estimatedCostUsd")


class RowUsage(SynchronousTestCase):
    def setUp(self) -> None:
        self.app, self.clock = make_app()
        self.addCleanup(self.app.runtime.stopService)
        self.fake = install_fake(self.app, "fake-1")
        self.app.runtime.registry.models.append(
            ModelInfo("fake", "fake-1", "Fake", context_tokens=128_000, cost=PRICES))
        self.w = hello(self.app.hub, scopes=RW)
        self.admin = hello(self.app.hub, scopes=ADMIN)

    def turn(self, idem: str, usage: Usage, key: str = "main") -> None:
        send(self.w, key, "hello", idem)
        drain(self.clock, 2)
        self.fake.calls[-1].finish("Hello from the fake model.", usage)
        drain(self.clock)

    def row(self, key: str = "main") -> dict[str, Any]:
        session: dict[str, Any] = ok(self.w, "sessions.describe", {"key": key})["session"]
        return session

    def tokens(self, key: str = "main") -> dict[str, Any]:
        row = self.row(key)
        return {k: row[k] for k in TOKEN_FIELDS if k in row}

    def test_the_row_holds_the_last_runs_usage(self) -> None:
        self.turn("k1", Usage(100, 6))
        self.assertEqual(self.tokens(), {"inputTokens": 100, "outputTokens": 6,
                                         "totalTokens": 100, "totalTokensFresh": True,
                                         "estimatedCostUsd": 0.00039})
        # cache reads are not input tokens, but they are part of the prompt (totalTokens)
        self.turn("k2", Usage(50, 7, cache_read=200))
        row = self.tokens()
        self.assertAlmostEqual(row.pop("estimatedCostUsd"), 0.000315, places=12)
        self.assertEqual(row, {"inputTokens": 50, "outputTokens": 7, "totalTokens": 250,
                               "totalTokensFresh": True})
        # a run that reports no usage changes no count; the prompt size is no longer current
        self.turn("k3", Usage())
        row = self.tokens()
        self.assertAlmostEqual(row.pop("estimatedCostUsd"), 0.000315, places=12)
        self.assertEqual(row, {"inputTokens": 50, "outputTokens": 7, "totalTokensFresh": False})
        self.turn("k4", Usage(400, 9))
        row = self.tokens()
        self.assertAlmostEqual(row.pop("estimatedCostUsd"), 0.001335, places=12)
        self.assertEqual(row, {"inputTokens": 400, "outputTokens": 9, "totalTokens": 400,
                               "totalTokensFresh": True})
        self.assertEqual(self.row()["contextTokens"], 128_000)
        [listed] = ok(self.w, "sessions.list", {})["sessions"]
        self.assertEqual({k: listed[k] for k in TOKEN_FIELDS}, self.tokens())

    def test_the_transcript_keeps_each_replys_usage_and_cost(self) -> None:
        self.turn("k1", Usage(50, 7, cache_read=200))
        reply = history(self.w)["messages"][-1]
        cost = reply["usage"].pop("cost")
        self.assertEqual(reply["usage"], {"input": 50, "output": 7, "cacheRead": 200,
                                          "cacheWrite": 0, "totalTokens": 257})
        self.assertEqual(set(cost), {"input", "output", "cacheRead", "cacheWrite", "total"})
        self.assertAlmostEqual(cost["total"], 0.000315, places=12)

    def test_no_cost_without_prices_and_no_context_window_without_one(self) -> None:
        # a model the config gives no contextWindow and no cost, chosen for one session
        ok(self.w, "sessions.create", {"key": "bare", "model": "fake/fake-2"})
        self.turn("k1", Usage(100, 6), key="agent:main:bare")
        row = self.row("agent:main:bare")
        self.assertEqual((row["model"], row["modelOverrideSource"], row["totalTokens"]),
                         ("fake-2", "user", 100))
        self.assertNotIn("estimatedCostUsd", row)
        self.assertNotIn("contextTokens", row)

    def test_context_tokens_of_the_default_model(self) -> None:
        self.turn("k1", Usage(10, 6))
        listing = ok(self.w, "sessions.list", {})
        self.assertEqual((listing["defaults"]["contextTokens"],
                          listing["sessions"][0]["contextTokens"],
                          listing["sessions"][0]["modelOverrideSource"]), (128_000, 128_000, None))
        # the default model without a declared window: the real gateway's default, 200,000
        self.app.runtime.registry.primary = "fake/fake-2"
        listing = ok(self.w, "sessions.list", {})
        self.assertEqual((listing["defaults"]["contextTokens"],
                          listing["sessions"][0]["contextTokens"]), (200_000, 200_000))

    def test_a_new_session_and_a_reset_one(self) -> None:
        page = history(self.w, "agent:main:fresh")
        self.assertEqual(page["defaults"], {"modelProvider": "fake", "model": "fake-1",
                                            "contextTokens": 128_000,
                                            "modelSelectionTarget": "session"})
        info = page["sessionInfo"]
        self.assertEqual({k: info[k] for k in ("key", "isMain", "updatedAt", "totalTokensFresh",
                                               "contextTokens", "hasActiveRun",
                                               "activeRunIds")},
                         {"key": "agent:main:fresh", "isMain": False, "updatedAt": None,
                          "totalTokensFresh": False, "contextTokens": 128_000,
                          "hasActiveRun": False, "activeRunIds": []})
        self.assertFalse({"sessionId", "inputTokens", "totalTokens"} & set(info))
        self.turn("k1", Usage(100, 6))
        ok(self.admin, "sessions.reset", {"key": "main"})
        # the real row after sessions.reset: 0 tokens, current, no cost
        self.assertEqual(self.tokens(), {"inputTokens": 0, "outputTokens": 0, "totalTokens": 0,
                                         "totalTokensFresh": True})

    def test_chat_history_carries_the_row_as_session_info(self) -> None:
        self.turn("k1", Usage(10, 6))
        page = history(self.w)
        info = page["sessionInfo"]
        self.assertEqual((info["key"], info["sessionId"], info["hasActiveRun"],
                          info["activeRunIds"]), (MAIN, page["sessionId"], False, []))
        self.assertEqual({k: v for k, v in info.items()
                          if k not in ("hasActiveRun", "activeRunIds", "snapshotAt")},
                         {k: v for k, v in self.row().items() if k != "snapshotAt"})
        self.assertEqual((info["totalTokens"], info["contextTokens"]), (10, 128_000))

    def test_status_and_created_via_take_the_real_values(self) -> None:
        self.turn("k1", Usage(10, 6))
        self.assertEqual((self.row()["status"], self.row()["createdVia"]), ("done", "operator"))
        self.assertEqual(self.row()["classification"], "main")  # the real main row's
        self.assertNotIn("createdActor", self.row())
        ok(self.w, "sessions.create", {"key": "dashboard:alpha"})
        other = [r for r in ok(self.w, "sessions.list", {})["sessions"]
                 if r["key"] == "agent:main:dashboard:alpha"][0]
        self.assertEqual(other["classification"], "direct")
        send(self.w, "main", "fail", "k2")
        drain(self.clock, 2)
        self.fake.calls[-1].fail(ProviderError("upstream broke"))
        drain(self.clock)
        row = self.row()
        self.assertEqual((row["status"], row["lastRunError"], row["abortedLastRun"]),
                         ("failed", "upstream broke", False))
        self.assertEqual(row["totalTokens"], 10)  # a failed run reported no usage
        send(self.w, "main", "stop", "k3")
        drain(self.clock, 2)
        ok(self.w, "chat.abort", {"sessionKey": "main"})
        drain(self.clock)
        row = self.row()
        self.assertEqual((row["status"], row["abortedLastRun"]), ("killed", True))


class OfflineRows(SynchronousTestCase):
    """The offline model has no tokenizer: its rows carry no token counts (its replies carry
    zeros, as the real gateway's do for a provider that reports no usage)."""

    def test_no_token_counts(self) -> None:
        app, clock = make_app()
        self.addCleanup(app.runtime.stopService)
        w = hello(app.hub, scopes=RW)
        send(w, "main", "count to 3", "k1")
        drain(clock)
        row = ok(w, "sessions.describe", {"key": "main"})["session"]
        self.assertEqual({k: row[k] for k in TOKEN_FIELDS if k in row},
                         {"totalTokensFresh": False})
        self.assertEqual((row["model"], row["contextTokens"]), ("offline-echo", 8192))
        reply = history(w)["messages"][-1]
        self.assertEqual(reply["usage"], {"input": 0, "output": 0, "cacheRead": 0,
                                          "cacheWrite": 0, "totalTokens": 0})


def spec_row(presenter: RowPresenter, row: SessionRow, now: int, active_runs: bool
             ) -> dict[str, Any]:
    """The row as it was built before the per-field version (every field, then the empty
    ones dropped): the presenter must give the same fields in the same order."""
    override = row.overrides.get("model")
    provider, model, context = presenter._model(override)
    runtime_ms = (row.ended_at - row.started_at) if row.ended_at and row.started_at else None
    out: dict[str, Any] = {
        "key": row.key, "visibility": "shared", "kind": kind_of(row.key),
        "chatType": kind_of(row.key), "agentId": row.agent_id,
        "isMain": row.key == f"agent:{row.agent_id}:main", "isBackground": False,
        "sessionId": row.session_id, "createdAt": row.created_at, "updatedAt": row.updated_at,
        "lastInteractionAt": row.last_interaction_at,
        "createdVia": CREATED_VIA.get(row.created_via or ""),
        "classification": classification(row),
        "createdActor": {"type": "system"} if row.created_via == "cron" else None,
        "label": row.label, "displayName": row.label,
        "category": row.overrides.get("category"), "archived": row.archived,
        "pinned": row.pinned, "unread": row.unread, "status": STATUS.get(row.status or ""),
        "startedAt": row.started_at, "endedAt": row.ended_at, "runtimeMs": runtime_ms,
        "lastRunId": row.last_run_id, "lastRunError": row.last_run_error,
        "abortedLastRun": row.status in ("aborted", "interrupted"),
        **THINKING, "thinkingLevel": row.overrides.get("thinkingLevel"),
        "inputTokens": row.input_tokens, "outputTokens": row.output_tokens,
        "totalTokens": row.total_tokens if row.total_tokens_fresh else None,
        "totalTokensFresh": row.total_tokens_fresh,
        "estimatedCostUsd": row.estimated_cost_usd,
        "modelProvider": provider, "model": model,
        "modelOverrideSource": "user" if override else None,
        "contextTokens": context, "snapshotAt": now,
    }
    out = {k: v for k, v in out.items() if v is not None or k == "modelOverrideSource"}
    if active_runs:
        active = presenter.runtime.active.get(row.key)
        out["hasActiveRun"] = active is not None
        out["activeRunIds"] = [active.run_id] if active is not None else []
    return out


class RowShapes(SynchronousTestCase):
    """``RowPresenter.row``/``rows`` give exactly the fields, values and order of the spec."""

    def test_rows_match_the_spec_field_for_field(self) -> None:
        app, _ = make_app()
        self.addCleanup(app.runtime.stopService)
        app.runtime.registry.models.append(
            ModelInfo("fake", "fake-1", "Fake", context_tokens=128_000, cost=PRICES))
        presenter = RowPresenter(app.runtime)
        rng = random.Random(22)
        pick = rng.choice
        rows = []
        for i in range(400):
            agent = pick(["main", "ops"])
            key = pick([f"agent:{agent}:main", f"agent:{agent}:s{i}", f"agent:{agent}:cron:c{i}",
                        f"agent:{agent}:telegram:group:g{i}", "global", "unknown"])
            started = pick([None, 0, 5, 100])
            overrides = {k: v for k, v in (("model", pick([None, "", "fake/fake-1", "fake-1",
                                                               "other/x", "bare"])),
                                           ("category", pick([None, "work"])),
                                           ("thinkingLevel", pick([None, "off"])))
                         if v is not None}
            rows.append(SessionRow(
                key, agent, f"sid{i}", i, i + 1, pick([None, 0, i + 2]), pick([None, "", "L"]),
                pick([None, "running", "done", "error", "aborted", "interrupted", "odd"]),
                pick([None, f"r{i}"]), pick([None, "boom"]), started,
                pick([None, 0, 7, 150]) if started is not None else pick([None, 9]),
                pick([None, 0, 12]), pick([None, 3]), pick([False, True]), pick([False, True]),
                pick([False, True]), overrides, pick([None, "chat", "cron", "telegram", "boot"]),
                pick([None, 0, 99]), pick([False, True]), pick([None, 0.0, 0.5])))
        app.runtime.active[rows[1].key] = Mock(run_id="run-1")  # type: ignore[assignment]
        now = app.hub.now_ms()
        listed = presenter.rows(rows)
        for row, got in zip(rows, listed, strict=True):
            self.assertEqual(list(got.items()), list(spec_row(presenter, row, now, True).items()))
            for active_runs in (True, False):
                self.assertEqual(list(presenter.row(row, active_runs).items()),
                                 list(spec_row(presenter, row, now, active_runs).items()))
