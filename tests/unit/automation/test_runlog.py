"""The cron run log: ``cron.runs`` entries and the ``finished`` event carry what the real
gateway's do (2026.9.6, captured against a loopback fake model): the model and provider the
run used, its token usage, its session, duration, next run and delivery, all computed."""

from __future__ import annotations

from typing import Any

from treq.testing import StubTreq
from twisted.internet.defer import Deferred, fail
from twisted.trial import unittest

from openclaw_tw.agent.models import ProviderError
from openclaw_tw.agent.openai import OpenAIProvider
from openclaw_tw.agent.run import Outcome
from openclaw_tw.automation import execute, runlog
from openclaw_tw.automation.heartbeat import heartbeat_config
from openclaw_tw.automation.store import INTERRUPTED
from tests.support.cron import ADMIN
from tests.support.cron import CronCase as Base
from tests.support.fakes.openai_server import FakeOpenAI
from tests.support.helpers import hello

HOURLY = {"kind": "every", "everyMs": 3_600_000}


def outcome(**counts: int) -> Outcome:
    return Outcome("ok", "hi", "stop", 0, 1, "fake", "fake-model", **counts)


class Usage(unittest.TestCase):
    def test_counts_as_the_real_entry_reports_them(self) -> None:
        self.assertEqual(runlog.usage_of(outcome(input_tokens=1234, output_tokens=56)),
                         {"input_tokens": 1234, "output_tokens": 56, "total_tokens": 1290})
        self.assertEqual(runlog.usage_of(outcome(input_tokens=10, output_tokens=5,
                                                 cache_read_tokens=100,
                                                 cache_write_tokens=7)),
                         {"input_tokens": 10, "output_tokens": 5, "total_tokens": 122,
                          "cache_read_tokens": 100, "cache_write_tokens": 7})
        self.assertIsNone(runlog.usage_of(outcome()))  # the provider reported none

    def test_completion_status(self) -> None:
        best_effort = {"delivery": {"mode": "announce", "bestEffort": True}}
        cases = [({}, "error", {"deliveryStatus": "not-requested"}, "failed"),
                 ({}, "skipped", {"deliveryStatus": "not-requested"}, "failed"),
                 ({}, "ok", {"deliveryStatus": "not-requested"}, "succeeded"),
                 ({}, "ok", {"deliveryStatus": "delivered"}, "succeeded"),
                 ({}, "ok", {"deliveryStatus": "not-delivered"}, "failed"),
                 ({}, "ok", {"deliveryStatus": "not-delivered",
                             "deliverySuppressionReason": "silent"}, "succeeded"),
                 (best_effort, "ok", {"deliveryStatus": "not-delivered"}, "succeeded"),
                 ({}, "ok", {"deliveryStatus": "unknown"}, "unknown")]
        for job, status, detail, expected in cases:
            self.assertEqual(runlog.completion_status(job, status, detail), expected,
                             (job, status, detail))


def failing(provider_id: str, api: str, err: Exception) -> Any:
    """A provider whose every call fails with ``err``."""
    class Failing:
        id = provider_id

        def stream(self, *a: Any) -> Deferred[Any]:
            return fail(err)

    Failing.api = api  # type: ignore[attr-defined]
    return Failing()


class RunLog(Base):
    maxDiff = None

    def setUp(self) -> None:
        self.start()
        self.model = FakeOpenAI(self.clock, api_key="sk-fake")
        self.model.behave(text="Cron says hello.", usage=(1234, 56))
        self.upstream = StubTreq(self.model.resource)
        registry = self.app.runtime.registry
        registry.providers["fake"] = OpenAIProvider(
            "fake", {"baseUrl": "http://upstream.invalid/v1", "apiKey": "sk-fake"},
            self.clock, http=self.upstream, environ={})
        registry.primary = "fake/fake-model"
        self.client = hello(self.gw, scopes=ADMIN)

    def settle(self, seconds: float = 5) -> None:
        for _ in range(int(seconds / 0.05)):
            self.upstream.flush()
            self.clock.advance(0.05)

    def add(self, **job: Any) -> dict[str, Any]:
        return self.ok(self.client, "cron.add", {"name": "tea", "schedule": HOURLY,
                                                 "wakeMode": "now", **job})

    def run_once(self, job: dict[str, Any]) -> dict[str, Any]:
        """Runs the job once; its newest run-log entry."""
        self.ok(self.client, "cron.run", {"id": job["id"]})
        self.settle()
        return self.ok(self.client, "cron.runs", {"id": job["id"]})["entries"][0]

    def finished_events(self) -> list[dict[str, Any]]:
        return [e["payload"] for e in self.client.pop()
                if e.get("event") == "cron" and e["payload"]["action"] == "finished"]

    def session_row(self, key: str) -> dict[str, Any]:
        rows = self.ok(self.client, "sessions.list", {})["sessions"]
        return next(r for r in rows if r["key"] == key)

    def test_an_isolated_agent_turn(self) -> None:
        job = self.add(sessionTarget="isolated", delivery={"mode": "none"},
                       payload={"kind": "agentTurn", "message": "Say hi"})
        self.client.pop()
        started = self.gw.now_ms()
        entry = self.run_once(job)
        base = f"agent:main:cron:{job['id']}"
        session_id = self.session_row(base)["sessionId"]
        state = self.app.cron.jobs[job["id"]]["state"]
        self.assertEqual(entry, {
            "ts": entry["runAtMs"] + entry["durationMs"], "jobId": job["id"],
            "action": "finished", "status": "ok", "completionStatus": "succeeded",
            "summary": "Cron says hello.", "runId": entry["runId"], "runAtMs": started,
            "durationMs": entry["durationMs"], "nextRunAtMs": state["nextRunAtMs"],
            "model": "fake-model", "provider": "fake",
            "usage": {"input_tokens": 1234, "output_tokens": 56, "total_tokens": 1290},
            "delivered": False, "deliveryStatus": "not-requested",
            "delivery": {"intended": {"channel": "last", "to": None, "source": "last"},
                         "fallbackUsed": False, "delivered": False},
            "sessionId": session_id,
            "sessionKey": f"{base}:run:{session_id}", "jobName": "tea"})
        self.assertGreater(entry["durationMs"], 0)
        self.assertEqual(state["lastDurationMs"], entry["durationMs"])
        # the event of the finished run says the same (the event has no ts of the entry)
        [event] = self.finished_events()
        expected = {k: v for k, v in entry.items() if k not in ("ts", "jobName")}
        self.assertEqual({k: v for k, v in event.items() if k != "ts"}, expected)

    def test_each_isolated_run_gets_a_fresh_session(self) -> None:
        job = self.add(sessionTarget="isolated",
                       payload={"kind": "agentTurn", "message": "Say hi"})
        first = self.run_once(job)
        second = self.run_once(job)
        self.assertNotEqual(first["sessionId"], second["sessionId"])
        self.assertEqual(self.session_row(f"agent:main:cron:{job['id']}")["sessionId"],
                         second["sessionId"])
        # the second run's model input holds nothing of the first run
        said = [m.get("content") for m in self.model.requests[-1].body["messages"]]
        self.assertNotIn("Cron says hello.", said)
        self.assertEqual(said.count("Say hi"), 1, said)

    def test_earlier_runs_transcripts_go_after_the_session_retention(self) -> None:
        """cron.sessionRetention (24h by default, as the real gateway's): an isolated job's
        earlier runs' transcripts are pruned when a run starts after it; the current one and
        other sessions stay."""
        weekly = {"kind": "every", "everyMs": 7 * 24 * 3600 * 1000}
        job = self.add(sessionTarget="isolated", schedule=weekly, delivery={"mode": "none"},
                       payload={"kind": "agentTurn", "message": "Say hi"})
        key = f"agent:main:cron:{job['id']}"

        def sessions_stored() -> list[str]:
            return [sid for (sid,) in self.app.sessions_db.run_now(lambda conn: conn.execute(
                "SELECT DISTINCT session_id FROM transcript WHERE session_key=? ORDER BY seq",
                (key,)).fetchall())]

        first = self.run_once(job)["sessionId"]
        self.clock.advance(3600)
        self.client = hello(self.gw, scopes=ADMIN)  # the first missed its pongs
        second = self.run_once(job)["sessionId"]
        self.assertEqual(sessions_stored(), [first, second])  # 1 h: both kept
        self.clock.advance(24 * 3600)
        self.client = hello(self.gw, scopes=ADMIN)
        third = self.run_once(job)["sessionId"]
        self.assertEqual(sessions_stored(), [third])
        self.assertEqual(execute.session_retention_ms({}), 24 * 3600 * 1000)
        for off in (False, "0h", 0):
            self.assertEqual(execute.session_retention_ms({"cron": {"sessionRetention": off}}),
                             0)
        self.assertEqual(execute.session_retention_ms({"cron": {"sessionRetention": "2h"}}),
                         2 * 3600 * 1000)

    def test_a_named_session_keeps_its_key_and_id(self) -> None:
        job = self.add(sessionTarget="session:standup",
                       payload={"kind": "agentTurn", "message": "Say hi"})
        first, second = self.run_once(job), self.run_once(job)
        self.assertEqual(first["sessionKey"], "agent:main:standup")
        self.assertEqual(first["sessionId"], second["sessionId"])
        self.assertEqual(first["sessionId"],
                         self.session_row("agent:main:standup")["sessionId"])

    def test_a_failed_turn(self) -> None:
        job = self.add(sessionTarget="isolated",
                       payload={"kind": "agentTurn", "message": "Say hi"},
                       delivery={"mode": "announce", "channel": "telegram", "to": "42"})
        registry = self.app.runtime.registry

        registry.providers["fake"] = failing("fake", "openai-completions",
                                             ProviderError("slow down", "rate_limit",
                                                           http_status=429))
        entry = self.run_once(job)
        self.assertEqual((entry["status"], entry["completionStatus"], entry["errorReason"],
                          entry["model"], entry["provider"], entry["deliveryStatus"]),
                         ("error", "failed", "rate_limit", "fake-model", "fake", "unknown"))
        self.assertNotIn("usage", entry)  # nothing was used
        self.assertIn("slow down", entry["error"])

    def test_a_system_event_has_no_model_or_session(self) -> None:
        job = self.add(sessionTarget="main", payload={"kind": "systemEvent", "text": "Tick"})
        entry = self.run_once(job)
        self.assertEqual({k: v for k, v in entry.items() if k not in ("runId", "ts")}, {
            "jobId": job["id"], "action": "finished", "status": "ok",
            "completionStatus": "succeeded", "summary": "Tick",
            "runAtMs": entry["runAtMs"], "durationMs": 0,
            "nextRunAtMs": self.app.cron.jobs[job["id"]]["state"]["nextRunAtMs"],
            "deliveryStatus": "not-requested", "jobName": "tea"})

    def test_a_one_shot_deleted_after_its_run_has_no_next_run(self) -> None:
        job = self.add(schedule={"kind": "at", "at": "2030-01-01T00:00:00Z"},
                       sessionTarget="main", payload={"kind": "systemEvent", "text": "Tick"})
        entry = self.run_once(job)
        self.assertNotIn(job["id"], self.app.cron.jobs)
        self.assertNotIn("nextRunAtMs", entry)

    def test_a_run_in_progress_is_not_in_the_history_yet(self) -> None:
        self.model.behave(text="slowly", delay=1.0, chunks=["a", "b", "c"])
        job = self.add(sessionTarget="isolated",
                       payload={"kind": "agentTurn", "message": "Say hi"})
        self.ok(self.client, "cron.run", {"id": job["id"]})
        self.upstream.flush()
        self.clock.advance(0.5)
        self.assertIn(job["id"], self.app.cron.in_flight)
        self.assertEqual(self.ok(self.client, "cron.runs", {"id": job["id"]})["total"], 0)
        self.settle(10)
        self.assertEqual(self.ok(self.client, "cron.runs", {"id": job["id"]})["total"], 1)

    def test_an_interrupted_run(self) -> None:
        self.model.behave(text="slowly", delay=1.0, chunks=["a", "b", "c"])
        job = self.add(sessionTarget="isolated",
                       payload={"kind": "agentTurn", "message": "Say hi"})
        self.ok(self.client, "cron.run", {"id": job["id"]})
        self.upstream.flush()
        self.clock.advance(0.5)
        self.successResultOf(self.app.cron.stopService())
        app2 = self.start(self.state)
        c2 = hello(app2.hub, scopes=ADMIN)
        [entry] = self.ok(c2, "cron.runs", {"id": job["id"]})["entries"]
        self.assertEqual((entry["status"], entry["error"], entry["completionStatus"],
                          entry["delivered"], entry["deliveryStatus"]),
                         ("error", INTERRUPTED, "failed", False, "unknown"))


class HeartbeatRuns(Base):
    """The heartbeat job's runs say what the real gateway's do: ``heartbeat completed``,
    ``heartbeat skipped: <reason>`` (status skipped), ``heartbeat failed: <error>``."""

    def setUp(self) -> None:
        self.start()
        self.client = hello(self.gw, scopes=ADMIN)
        self.job = next(j for j in self.app.cron.jobs.values()
                        if j.get("declarationKey") == "heartbeat:main")

    def beat(self) -> dict[str, Any]:
        self.ok(self.client, "cron.run", {"id": self.job["id"]})
        for _ in range(200):
            self.clock.advance(0.05)
        return self.ok(self.client, "cron.runs", {"id": self.job["id"]})["entries"][0]

    def test_a_heartbeat_that_ran(self) -> None:
        # "HEARTBEAT_OK" as the prompt: the offline model echoes it, an acknowledgment
        self.app.heartbeat.config_for = lambda agent: {
            **heartbeat_config({}, agent), "prompt": "HEARTBEAT_OK", "target": "none"}
        entry = self.beat()
        self.assertEqual((entry["status"], entry.get("error"), entry["summary"]),
                         ("ok", None, "heartbeat completed"))

    def test_a_skipped_heartbeat(self) -> None:
        self.ok(self.client, "set-heartbeats", {"enabled": False})
        entry = self.beat()
        self.assertEqual((entry["status"], entry["error"], entry["completionStatus"]),
                         ("skipped", "heartbeat skipped: disabled", "failed"))
        self.assertNotIn("summary", entry)
        state = self.app.cron.jobs[self.job["id"]]["state"]
        self.assertEqual((state["lastRunStatus"], state["lastError"]),
                         ("skipped", "heartbeat skipped: disabled"))

    def test_a_failed_heartbeat(self) -> None:
        registry = self.app.runtime.registry

        self.app.heartbeat.config_for = lambda agent: {
            **heartbeat_config({}, agent), "target": "none"}
        registry.providers["offline"] = failing("offline", "offline", ProviderError(
            "the model is down", "unknown", http_status=503))
        entry = self.beat()
        self.assertEqual(entry["status"], "error")
        self.assertTrue(entry["error"].startswith("heartbeat failed: "), entry)
        self.assertIn("the model is down", entry["error"])
