"""diagnostics.stability (the recorder's ring) and doctor.memory.status.

Shapes from the real gateway (2026.9.6): ``openclaw doctor`` asks
``{"type": "telemetry.exporter", "limit": 1000}`` and got ``{generatedAt, capacity: 16,
count: 0, dropped: 0, events: [], summary: {byType: {}}}``; ``openclaw status --all`` asks
``{"limit": 1000}`` and got ``capacity: 1000`` with ``firstSeq``/``lastSeq`` and events such
as ``{"seq", "ts", "type": "diagnostic.memory.sample", "memory": {"rssBytes", …}}`` every
30 s and ``model.call.started``/``model.call.completed`` (provider, model, durationMs,
timeToFirstByteMs) per model call; ``doctor.memory.status`` with no memory search manager
answers ``{agentId, searchRuntimeRegistered, embedding: {ok: false, error}}``.
"""

from __future__ import annotations

import re
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.agent.instrument import instrument
from openclaw_tw.agent.models import ModelInfo, ProviderError, Usage
from openclaw_tw.channels.message import Inbound
from openclaw_tw.hub.diagnostics import StabilityRecorder
from tests.support.agent import RW, drain, install_fake, send
from tests.support.helpers import call, hello, make_app, ok
from tests.support.http_harness import write_config

READ = ["operator.read"]
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def step(clock: Any, seconds: int) -> None:
    for _ in range(seconds):
        clock.advance(1)


class Stability(SynchronousTestCase):
    """Clients connect after the clock moved (an idle in-memory client does not answer the
    hub's keepalive pings, and would be dropped over a long step)."""

    def setUp(self) -> None:
        self.app, self.clock = make_app()
        self.addCleanup(self.app.runtime.stopService)

    @property
    def c(self) -> Any:
        return hello(self.app.hub, scopes=READ)

    def test_empty_at_start(self) -> None:
        snap = ok(self.c, "diagnostics.stability", {"limit": 1000})
        self.assertRegex(snap.pop("generatedAt"), ISO)
        self.assertEqual(snap, {"capacity": 1000, "count": 0, "dropped": 0, "events": [],
                                "summary": {"byType": {}}})

    def test_the_exporter_view_is_empty_we_run_no_exporters(self) -> None:
        step(self.clock, 30)
        snap = ok(self.c, "diagnostics.stability", {"type": "telemetry.exporter",
                                                    "limit": 1000})
        snap.pop("generatedAt")
        self.assertEqual(snap, {"capacity": 16, "count": 0, "dropped": 0, "events": [],
                                "summary": {"byType": {}}})

    def test_memory_is_sampled_every_30s(self) -> None:
        step(self.clock, 61)
        snap = ok(self.c, "diagnostics.stability", {})
        self.assertEqual((snap["count"], snap["firstSeq"], snap["lastSeq"]), (2, 1, 2))
        first, second = snap["events"]
        self.assertEqual(set(first), {"seq", "ts", "type", "memory"})
        self.assertEqual(first["type"], "diagnostic.memory.sample")
        self.assertEqual(second["ts"] - first["ts"], 30_000)
        rss = [e["memory"]["rssBytes"] for e in snap["events"]]
        self.assertTrue(all(isinstance(r, int) and r > 1_000_000 for r in rss), rss)
        self.assertEqual(snap["summary"], {
            "byType": {"diagnostic.memory.sample": 2},
            "memory": {"latest": second["memory"], "maxRssBytes": max(rss),
                       "pressureCount": 0}})
        # no liveness warning: the reactor kept time
        self.assertNotIn("diagnostic.liveness.warning", snap["summary"]["byType"])

    def test_a_lagging_reactor_is_a_liveness_warning(self) -> None:
        step(self.clock, 28)
        self.clock.advance(3)  # one lag-probe tick fires 2 s late
        step(self.clock, 29)  # the 60 s sample sees it
        snap = ok(self.c, "diagnostics.stability", {"type": "diagnostic.liveness.warning"})
        # at the 60 s sample at least (the 30 s one ran in the late step itself)
        warning = snap["events"][-1]
        self.assertEqual((warning["type"], warning["level"], warning["reason"]),
                         ("diagnostic.liveness.warning", "warning", "delay"))
        self.assertEqual((warning["eventLoopDelayP99Ms"], warning["eventLoopDelayMaxMs"]),
                         (2000.0, 2000.0))
        self.assertEqual(warning["ts"], self.app.hub.now_ms())

    def test_query(self) -> None:
        step(self.clock, 150)  # five samples
        c = self.c
        self.assertEqual([e["seq"] for e in ok(c, "diagnostics.stability",
                                               {"limit": 2})["events"]], [4, 5])
        since = ok(c, "diagnostics.stability", {"sinceSeq": "3"})
        self.assertEqual((since["count"], since["firstSeq"]), (2, 4))
        self.assertEqual(ok(c, "diagnostics.stability", {"limit": "1"})["count"], 5)
        cases = [({"limit": 0}, "limit must be between 1 and 1000"),
                 ({"limit": 1001}, "limit must be between 1 and 1000"),
                 ({"limit": "ten"}, "limit must be a non-negative integer"),
                 ({"sinceSeq": -1}, "sinceSeq must be a non-negative integer"),
                 ({"type": "  "}, "type must be a non-empty string"),
                 ({"bogus": 1}, "invalid diagnostics.stability params: at root: unexpected "
                                "property 'bogus'")]
        for params, message in cases:
            self.assertEqual(call(c, "diagnostics.stability", params)["error"],
                             {"code": "INVALID_REQUEST", "message": message}, params)

    def test_ring_keeps_the_last_capacity_events(self) -> None:
        recorder = StabilityRecorder(self.clock, self.app.hub.now_ms, lambda: {}, capacity=3)
        for i in range(5):
            recorder.record("x", n=i, skipped=None)
        snap = recorder.snapshot(limit=10)
        self.assertEqual((snap["count"], snap["dropped"], snap["firstSeq"]), (3, 2, 3))
        self.assertEqual(snap["events"][0], {"seq": 3, "ts": self.app.hub.now_ms(),
                                             "type": "x", "n": 2})


class ModelCalls(SynchronousTestCase):
    """Every model call is recorded around the provider (agent/instrument.py)."""

    def setUp(self) -> None:
        self.app, self.clock = make_app()
        self.addCleanup(self.app.runtime.stopService)
        self.fake = install_fake(self.app, "bench-model")
        self.app.runtime.registry.models.append(
            ModelInfo("fake", "bench-model", "Bench", cost=(3.0, 15.0, 0.3, 3.75)))
        instrument(self.app.runtime.registry, self.app.hub.diagnostics, self.clock)
        self.w = hello(self.app.hub, scopes=RW)
        self.r = hello(self.app.hub, scopes=READ)

    def events(self) -> list[dict[str, Any]]:
        return [{k: v for k, v in e.items() if k not in ("seq", "ts")}
                for e in ok(self.r, "diagnostics.stability", {"limit": 1000})["events"]]

    def test_completed_call_and_its_usage(self) -> None:
        send(self.w, "main", "hello", "k1")
        drain(self.clock, 2)
        self.clock.advance(0.12)
        self.fake.calls[-1].say("Hello ")
        self.clock.advance(0.04)
        self.fake.calls[-1].finish("there.", Usage(10, 6))
        drain(self.clock, 2)
        started, completed, usage = self.events()
        self.assertEqual(started, {"type": "model.call.started", "provider": "fake",
                                   "model": "bench-model"})
        # the call started during the first drain: 120 ms (+ up to 10) to the first delta,
        # and 40 ms from there to the end
        duration, first_byte = completed.pop("durationMs"), completed.pop("timeToFirstByteMs")
        self.assertEqual(duration - first_byte, 40)
        self.assertTrue(120 <= first_byte <= 130, first_byte)
        self.assertEqual(completed, {"type": "model.call.completed", "provider": "fake",
                                     "model": "bench-model"})
        self.assertEqual(usage, {"type": "model.usage", "provider": "fake",
                                 "model": "bench-model",
                                 "usage": {"input": 10, "output": 6, "cacheRead": 0,
                                           "cacheWrite": 0, "total": 16},
                                 "costUsd": 0.00012, "durationMs": duration})

    def test_failed_call(self) -> None:
        send(self.w, "main", "hello", "k1")
        drain(self.clock, 2)
        self.fake.calls[-1].fail(ProviderError("slow down", "rate_limit"))
        drain(self.clock, 2)
        error = self.events()[-1]
        self.assertLessEqual(error.pop("durationMs"), 10)
        self.assertEqual(error, {"type": "model.call.error", "provider": "fake",
                                 "model": "bench-model", "reason": "rate_limit"})

    def test_aborted_call(self) -> None:
        send(self.w, "main", "hello", "k1")
        drain(self.clock, 2)
        ok(self.w, "chat.abort", {"sessionKey": "main", "runId": "k1"})
        drain(self.clock, 2)
        self.assertTrue(self.fake.calls[-1].cancelled)
        self.assertEqual(self.events()[-1]["reason"], "aborted")

    def test_the_wrapper_is_transparent(self) -> None:
        offline = self.app.runtime.registry.providers["offline"]
        self.assertEqual((offline.id, offline.api), ("offline", offline.inner.api))
        instrument(self.app.runtime.registry, self.app.hub.diagnostics, self.clock)
        self.assertIs(self.app.runtime.registry.providers["offline"], offline)  # not twice


class Account:
    """The router's view of a channel account (channels/router.py ``Deliverer``)."""

    config: dict[str, Any] = {}

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.sent: list[tuple[str, str]] = []

    def deliver(self, to: str, text: str, reply_to: str | None = None,
                thread_id: str | None = None) -> Deferred[Any]:
        if self.refuse:
            return fail(ConnectionError("peer gone"))
        self.sent.append((to, text))
        return succeed(None)

    def typing(self, msg: Inbound) -> Any:
        return lambda: None

    def access_config(self) -> dict[str, Any]:
        return {"dmPolicy": "open", "allowFrom": ["*"]}


class ChannelTraffic(SynchronousTestCase):
    """The delivery events ``openclaw status --all`` counts ("Inbound delivery telemetry:
    received N · dispatch S/C · turns T · processed P")."""

    def setUp(self) -> None:
        self.app, self.clock = make_app()
        self.addCleanup(self.app.runtime.stopService)
        self.router = self.app.channels.ctx.router

    def traffic(self) -> list[tuple[str, str | None]]:
        snap = self.app.hub.diagnostics.snapshot(limit=1000)
        return [(e["type"], e.get("outcome")) for e in snap["events"]
                if e["type"].startswith(("message.", "session.turn"))]

    def test_a_turn_from_a_channel(self) -> None:
        account = Account()
        d = self.router.handle(account, Inbound("irc", "default", "dm", "ann", "ann", "hi"))
        drain(self.clock)
        self.successResultOf(d)
        self.assertEqual(len(account.sent), 1)
        self.assertEqual(self.traffic(), [
            ("message.received", None), ("message.dispatch.started", None),
            ("session.turn.created", "user"), ("message.dispatch.completed", "completed"),
            ("message.delivery.started", None), ("message.delivery.completed", "completed"),
            ("message.processed", "completed")])
        events = self.app.hub.diagnostics.snapshot(limit=1000)["events"]
        received = next(e for e in events if e["type"] == "message.received")
        self.assertEqual((received["channel"], received["source"]),
                         ("irc", "dispatchInboundMessage"))

    def test_a_failed_delivery(self) -> None:
        d = self.router.handle(Account(refuse=True),
                               Inbound("irc", "default", "dm", "ann", "ann", "hi"))
        drain(self.clock)
        self.failureResultOf(d, ConnectionError)
        self.assertEqual(self.traffic()[-2:], [("message.delivery.error", "error"),
                                               ("message.processed", "error")])

    def test_a_dropped_message_is_not_traffic(self) -> None:
        account = Account()
        account.access_config = lambda: {"dmPolicy": "disabled"}  # type: ignore[method-assign]
        self.successResultOf(self.router.handle(
            account, Inbound("irc", "default", "dm", "ann", "ann", "hi")))
        self.assertEqual(self.traffic(), [])


class DoctorMemory(SynchronousTestCase):
    def test_no_memory_search_here(self) -> None:
        app, _ = make_app(config=write_config({"agents": {"list": [{"id": "main"},
                                                                    {"id": "ops"}]}}))
        c = hello(app.hub, scopes=READ)
        expected = {"agentId": "main", "searchRuntimeRegistered": False,
                    "embedding": {"ok": False, "error": "memory search unavailable"}}
        self.assertEqual(ok(c, "doctor.memory.status", {"probe": False}), expected)
        self.assertEqual(ok(c, "doctor.memory.status", {"agentId": "Ops", "deep": True}),
                         {**expected, "agentId": "ops"})
        self.assertEqual(call(c, "doctor.memory.status", {"agentId": "ghost"})["error"],
                         {"code": "INVALID_REQUEST", "message": 'unknown agent id "ghost"'})
