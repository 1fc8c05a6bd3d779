"""Automations: schedule math, the cron scheduler and methods, heartbeat, wake, BOOT.md.

Everything runs on a MemoryReactorClock: time moves only when a test advances it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from twisted.trial import unittest

from openclaw_tw.automation import schedule as sched
from openclaw_tw.automation import store as cron_store
from openclaw_tw.automation.heartbeat import (
    DEFAULT_PROMPT,
    classify,
    hidden_in_chat,
    parse_duration_ms,
)
from openclaw_tw.automation.store import INTERRUPTED
from tests.support.agent import install_fake
from tests.support.cron import ADMIN
from tests.support.cron import CronCase as Base
from tests.support.helpers import hello, stored_keys
from tests.support.tmp import fresh_dir


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def iso(value: int) -> str:
    return datetime.fromtimestamp(value / 1000, UTC).strftime("%Y-%m-%dT%H:%M")


class ScheduleMath(unittest.TestCase):
    def test_every_with_anchor(self) -> None:
        s = sched.normalize({"kind": "every", "everyMs": 60_000, "anchorMs": 1_000}, 0)
        self.assertEqual(sched.next_run(s, 0), 1_000)
        self.assertEqual(sched.next_run(s, 1_000), 61_000)
        self.assertEqual(sched.next_run(s, 60_999), 61_000)
        self.assertEqual(sched.first_run(
            sched.normalize({"kind": "every", "everyMs": 5000}, 100), 100), 5100)

    def test_at(self) -> None:
        s = sched.normalize({"kind": "at", "at": "2026-11-22T10:00:00+01:00"}, 0)
        self.assertEqual(s["at"], "2026-11-22T09:00:00.000Z")
        at = ms("2026-11-22T09:00:00+00:00")
        self.assertEqual(sched.next_run(s, at - 1), at)
        self.assertIsNone(sched.next_run(s, at))
        self.assertEqual(sched.first_run(s, at + 10_000), at)  # overdue: due now

    def test_invalid(self) -> None:
        for bad in ({"kind": "cron", "expr": "* * *"}, {"kind": "cron", "expr": "61 * * * *"},
                    {"kind": "cron", "expr": "* * * * *", "tz": "Mars/Base"},
                    {"kind": "every", "everyMs": 10}, {"kind": "at", "at": "tomorrow"},
                    {"kind": "weekly"}):
            self.assertRaises(sched.ScheduleError, sched.normalize, bad, 0)

    def test_heartbeat_helpers(self) -> None:
        self.assertEqual(parse_duration_ms("30m", 1), 1_800_000)
        self.assertEqual(parse_duration_ms("1h", 1), 3_600_000)
        self.assertEqual(parse_duration_ms("0m", 1), 0)
        self.assertEqual(parse_duration_ms("bogus", 7), 7)
        self.assertEqual(classify("NO_REPLY"), ("ok-empty", None))
        self.assertEqual(classify("HEARTBEAT_OK all quiet"), ("ok-token", None))
        self.assertEqual(classify(""), ("ok-empty", None))
        self.assertEqual(classify("Disk is full"), ("sent", "Disk is full"))


def system_job(text: str = "ping", **extra: Any) -> dict[str, Any]:
    job = {"name": "reminder", "schedule": {"kind": "every", "everyMs": 60_000},
           "sessionTarget": "main", "wakeMode": "next-heartbeat",
           "payload": {"kind": "systemEvent", "text": text}}
    job.update(extra)
    return job


class CronMethods(Base):
    def test_list_status_and_heartbeat_job(self) -> None:
        app = self.start()
        c = hello(app.hub, scopes=ADMIN)
        jobs = self.ok(c, "cron.list", {})["jobs"]
        self.assertEqual(len(jobs), 1)
        hb = jobs[0]
        self.assertEqual(hb["declarationKey"], "heartbeat:main")
        self.assertEqual(hb["name"], "heartbeat-main")
        self.assertEqual(hb["schedule"]["everyMs"], 1_800_000)
        self.assertEqual(hb["payload"], {"kind": "heartbeat"})
        self.assertEqual(hb["sessionTarget"], "main")
        self.assertEqual(hb["effectiveAgentId"], "main")
        self.assertEqual(hb["nextRunAtMs"], hb["state"]["nextRunAtMs"])
        status = self.ok(c, "cron.status", {})
        self.assertEqual(status["storage"], "sqlite")
        self.assertEqual(status["jobs"], 1)
        self.assertEqual(status["nextWakeAtMs"], hb["nextRunAtMs"])
        self.assertTrue(status["sqlitePath"].endswith("state/cron.sqlite"))
        bad = self.call(c, "cron.remove", {"id": hb["id"]})
        self.assertFalse(bad["ok"])

    def test_add_get_update_remove_and_events(self) -> None:
        app = self.start()
        c = hello(app.hub, scopes=ADMIN)
        job = self.ok(c, "cron.add", system_job())
        self.assertEqual(job["state"]["nextRunAtMs"], app.hub.now_ms() + 60_000)
        self.assertEqual(job["schedule"]["anchorMs"], app.hub.now_ms())
        self.assertEqual(self.ok(c, "cron.get", {"id": job["id"]})["name"], "reminder")
        upd = self.ok(c, "cron.update", {"id": job["id"], "patch": {"enabled": False}})
        self.assertFalse(upd["enabled"])
        self.assertNotIn("nextRunAtMs", upd)
        self.assertEqual(len(self.ok(c, "cron.list", {})["jobs"]), 1)
        self.assertEqual(len(self.ok(c, "cron.list", {"includeDisabled": True})["jobs"]), 2)
        self.assertEqual(self.ok(c, "cron.remove", {"id": job["id"]}),
                         {"ok": True, "removed": True})
        actions = [e["payload"]["action"] for e in c.pop() if e.get("event") == "cron"]
        self.assertEqual(actions, ["added", "updated", "removed"])
        missing = self.call(c, "cron.get", {"id": job["id"]})
        self.assertEqual(missing["error"]["code"], "INVALID_REQUEST")

    def test_config_revision_guards_update(self) -> None:
        """The Control UI reads ``configRevision`` and sends it back as
        ``expectedConfigRevision``; a stale one is CRON_JOB_CHANGED (as the real gateway)."""
        app = self.start()
        c = hello(app.hub, scopes=ADMIN)
        job = self.ok(c, "cron.add", system_job())
        rev = job["configRevision"]
        self.assertRegex(rev, r"^sha256:[A-Za-z0-9_-]{43}$")
        listed = {j["id"]: j for j in self.ok(c, "cron.list", {})["jobs"]}
        self.assertEqual(listed[job["id"]]["configRevision"], rev)
        off = self.ok(c, "cron.update", {"id": job["id"], "expectedConfigRevision": rev,
                                         "patch": {"enabled": False}})
        self.assertFalse(off["enabled"])
        self.assertEqual(off["configRevision"], rev)  # the switch is not the definition
        renamed = self.ok(c, "cron.update", {"id": job["id"], "expectedConfigRevision": rev,
                                             "patch": {"name": "renamed"}})
        self.assertNotEqual(renamed["configRevision"], rev)
        stale = self.call(c, "cron.update", {"id": job["id"], "expectedConfigRevision": rev,
                                             "patch": {"enabled": True}})
        self.assertEqual(stale["error"]["code"], "INVALID_REQUEST")
        self.assertEqual(stale["error"]["details"],
                         {"code": "CRON_JOB_CHANGED", "expectedConfigRevision": rev,
                          "actualConfigRevision": renamed["configRevision"]})
        self.assertFalse(self.ok(c, "cron.get", {"id": job["id"]})["enabled"])
        empty = self.call(c, "cron.update", {"id": job["id"], "expectedConfigRevision": "",
                                             "patch": {"enabled": True}})
        self.assertEqual(empty["error"]["code"], "INVALID_REQUEST")

    def test_validation(self) -> None:
        app = self.start()
        c = hello(app.hub, scopes=ADMIN)
        res = self.call(c, "cron.add", system_job(sessionTarget="isolated"))
        self.assertEqual(res["error"]["code"], "UNAVAILABLE")
        self.assertIn("isolated cron jobs require", res["error"]["message"])
        res = self.call(c, "cron.add", system_job(schedule={"kind": "cron", "expr": "bad"}))
        self.assertEqual(res["error"]["code"], "INVALID_REQUEST")
        res = self.call(c, "cron.add", system_job(wakeMode="later"))
        self.assertEqual(res["error"]["code"], "INVALID_REQUEST")
        read_only = hello(app.hub)
        self.assertFalse(self.call(read_only, "cron.add", system_job())["ok"])

    def test_system_event_job_runs_on_schedule(self) -> None:
        app = self.start()
        c = hello(app.hub, scopes=ADMIN)
        job = self.ok(c, "cron.add", system_job("check the oven"))
        c.pop()
        self.clock.advance(59)
        self.assertEqual(self.ok(c, "cron.runs", {"id": job["id"]})["entries"], [])
        self.clock.advance(1)
        runs = self.ok(c, "cron.runs", {"id": job["id"]})
        self.assertEqual(runs["total"], 1)
        entry = runs["entries"][0]
        self.assertEqual(entry["status"], "ok")
        self.assertEqual(entry["summary"], "check the oven")
        self.assertEqual(entry["durationMs"], 0)
        self.assertEqual(entry["runAtMs"], job["nextRunAtMs"])  # the slot it ran for
        self.assertNotIn("sessionKey", entry)  # a system event: the real entry names none
        self.assertEqual([e["text"] for e in app.heartbeat.pending_for("main")],
                         ["check the oven"])
        events = [e["payload"] for e in c.pop() if e.get("event") == "cron"]
        self.assertEqual([e["action"] for e in events], ["started", "finished"])
        self.assertEqual(events[1]["nextRunAtMs"], job["nextRunAtMs"] + 60_000)
        self.clock.advance(60)
        self.assertEqual(self.ok(c, "cron.runs", {"id": job["id"]})["total"], 2)

    def test_one_shot_deletes_after_run(self) -> None:
        app = self.start()
        c = hello(app.hub, scopes=ADMIN)
        at = datetime.fromtimestamp(app.hub.now_ms() / 1000 + 30, UTC).isoformat()
        job = self.ok(c, "cron.add", system_job(schedule={"kind": "at", "at": at}))
        self.assertTrue(job["deleteAfterRun"])
        self.clock.advance(31)
        self.assertNotIn(job["id"], app.cron.jobs)
        self.assertEqual(self.ok(c, "cron.runs", {"id": job["id"]})["entries"][0]["status"],
                         "ok")

    def test_cron_run_modes(self) -> None:
        app = self.start()
        c = hello(app.hub, scopes=ADMIN)
        job = self.ok(c, "cron.add", system_job())
        self.assertEqual(self.ok(c, "cron.run", {"id": job["id"], "mode": "due"})["ran"], False)
        self.assertTrue(self.ok(c, "cron.run", {"id": job["id"]})["enqueued"])
        # a forced run does not consume the scheduled slot
        self.assertEqual(app.cron.jobs[job["id"]]["state"]["nextRunAtMs"], job["nextRunAtMs"])
        self.ok(c, "cron.update", {"id": job["id"], "patch": {"enabled": False}})
        res = self.ok(c, "cron.run", {"id": job["id"], "mode": "if-enabled"})
        self.assertEqual(res["reason"], "disabled")
        runs = self.successResultOf(app.cron.store.runs(None, None, 10, 0))[1]
        self.assertEqual([r["trigger"] for r in runs], ["manual"])

    def test_agent_turn_isolated_session(self) -> None:
        app = self.start()
        c = hello(app.hub, scopes=ADMIN)
        job = self.ok(c, "cron.add", {
            "name": "digest", "schedule": {"kind": "every", "everyMs": 3_600_000},
            "sessionTarget": "isolated", "wakeMode": "now", "delivery": {"mode": "none"},
            "payload": {"kind": "agentTurn", "message": "summarise"}})
        self.ok(c, "cron.run", {"id": job["id"], "mode": "force"})
        self.spin(5)
        entry = self.ok(c, "cron.runs", {"id": job["id"]})["entries"][0]
        self.assertEqual(entry["status"], "ok", entry)
        self.assertEqual(entry["sessionKey"],
                         f"agent:main:cron:{job['id']}:run:{entry['sessionId']}")
        self.assertIn("summarise", entry["summary"])
        self.assertIn(f"agent:main:cron:{job['id']}", stored_keys(app))
        # the row as the real gateway shows an automation's session (captured 2026.9.6)
        rows = {r["key"]: r for r in self.ok(c, "sessions.list", {})["sessions"]}
        row = rows[f"agent:main:cron:{job['id']}"]
        self.assertEqual((row["label"], row["displayName"], row["classification"],
                          row["createdActor"], row["createdVia"]),
                         ("Automation: digest", "Automation: digest", "cron",
                          {"type": "system"}, "cron"))

    def test_agent_turn_timeout_is_recorded_and_rescheduled(self) -> None:
        app = self.start()
        c = hello(app.hub, scopes=ADMIN)
        job = self.ok(c, "cron.add", {
            "name": "slow", "schedule": {"kind": "every", "everyMs": 60_000},
            "sessionTarget": "isolated", "wakeMode": "now",
            "payload": {"kind": "agentTurn", "message": "x " * 400, "timeoutSeconds": 0.1}})
        self.clock.advance(60)
        self.spin(2)
        entry = self.ok(c, "cron.runs", {"id": job["id"]})["entries"][0]
        self.assertEqual(entry["status"], "error", entry)
        self.assertTrue(entry["error"])
        state = app.cron.jobs[job["id"]]["state"]
        self.assertEqual(state["consecutiveErrors"], 1)
        self.assertEqual(state["nextRunAtMs"], job["nextRunAtMs"] + 60_000)


class Persistence(Base):
    def test_jobs_survive_a_restart(self) -> None:
        app = self.start()
        c = hello(app.hub, scopes=ADMIN)
        job = self.ok(c, "cron.add", system_job())
        app.cron.stopService()
        app2 = self.start(self.state)
        self.assertEqual(app2.cron.jobs[job["id"]]["name"], "reminder")
        self.assertEqual(len([j for j in app2.cron.jobs.values()
                              if j.get("declarationKey") == "heartbeat:main"]), 1)

    def test_slot_is_claimed_once(self) -> None:
        app = self.start()
        c = hello(app.hub, scopes=ADMIN)
        job = self.ok(c, "cron.add", system_job())
        run = {"run_id": "r1", "job_id": job["id"], "slot": "s:1", "trigger": "scheduled",
               "status": "running", "started_at": 1}
        self.assertTrue(self.successResultOf(app.cron.store.claim(None, run)))
        self.assertFalse(self.successResultOf(app.cron.store.claim(None, {**run,
                                                                         "run_id": "r2"})))

    def test_run_history_is_kept_seven_days_and_2000_per_job(self) -> None:
        """As the real gateway's: a job's finished runs older than 7 days, or past its newest
        2000, go when one of its runs finishes; other jobs' runs and running ones stay."""
        app = self.start()
        store = app.cron.store
        day = 24 * 3600 * 1000
        now = 30 * day

        def run(job: str, n: int, ended: int | None, status: str = "ok") -> dict[str, Any]:
            return {"run_id": f"{job}-{n}", "job_id": job, "slot": f"s:{n}",
                    "trigger": "scheduled", "status": status, "started_at": ended or now,
                    "ended_at": ended, "duration_ms": 1 if ended else None}

        for n, ended in enumerate([now - 8 * day, now - 6 * day, None], 1):
            self.successResultOf(store.claim(None, run("a", n, ended,
                                                       "ok" if ended else "running")))
        self.successResultOf(store.claim(None, run("b", 1, now - 9 * day)))
        self.successResultOf(store.claim(None, run("a", 9, None, "running")))
        self.successResultOf(store.finish(run("a", 9, now), None))
        left = self.successResultOf(app.cron_db.run(lambda conn: conn.execute(
            "SELECT run_id FROM runs ORDER BY run_id").fetchall()))
        self.assertEqual([r for (r,) in left], ["a-2", "a-3", "a-9", "b-1"])
        self.patch(cron_store, "RETAIN_PER_JOB", 2)
        self.successResultOf(store.claim(None, run("a", 10, None, "running")))
        self.successResultOf(store.finish(run("a", 10, now + 1), None))
        left = self.successResultOf(app.cron_db.run(lambda conn: conn.execute(
            "SELECT run_id FROM runs WHERE job_id='a' ORDER BY run_id").fetchall()))
        self.assertEqual([r for (r,) in left], ["a-10", "a-3", "a-9"])  # a-3 still running

    def test_restart_mid_run_does_not_run_the_slot_again(self) -> None:
        app = self.start()
        c = hello(app.hub, scopes=ADMIN)
        job = self.ok(c, "cron.add", {
            "name": "long", "schedule": {"kind": "every", "everyMs": 60_000},
            "sessionTarget": "isolated", "wakeMode": "now",
            "payload": {"kind": "agentTurn", "message": "work"}})
        self.clock.advance(60)  # claimed and started; the offline model has not answered
        self.assertIn(job["id"], app.cron.in_flight)
        # a crash (no stop): a new process on the same state dir, 10 s later
        app2 = self.start(self.state, advance=70)
        self.assertEqual(len(app2.cron.interrupted), 1)
        c2 = hello(app2.hub, scopes=ADMIN)
        runs = self.ok(c2, "cron.runs", {"id": job["id"]})["entries"]
        self.assertEqual([(r["status"], r["error"]) for r in runs], [("error", INTERRUPTED)])
        self.assertEqual(app2.cron.jobs[job["id"]]["state"]["nextRunAtMs"],
                         job["nextRunAtMs"] + 60_000)
        self.assertNotIn(job["id"], app2.cron.in_flight)

    def test_stop_mid_run_records_the_interruption(self) -> None:
        app = self.start()
        c = hello(app.hub, scopes=ADMIN)
        job = self.ok(c, "cron.add", {
            "name": "long", "schedule": {"kind": "every", "everyMs": 60_000},
            "sessionTarget": "isolated", "wakeMode": "now",
            "payload": {"kind": "agentTurn", "message": "work"}})
        self.clock.advance(60)
        self.successResultOf(app.cron.stopService())
        self.spin(5)  # the turn finishing after the stop records nothing more
        app2 = self.start(self.state, advance=70)
        self.assertEqual(app2.cron.interrupted, [])
        runs = self.successResultOf(app2.cron.store.runs(job["id"], None, 10, 0))[1]
        self.assertEqual([(r["status"], r["error"]) for r in runs], [("error", INTERRUPTED)])
        self.assertNotIn(job["id"], app2.cron.in_flight)

    def test_missed_runs_catch_up_once(self) -> None:
        app = self.start()
        c = hello(app.hub, scopes=ADMIN)
        job = self.ok(c, "cron.add", system_job())
        app.cron.stopService()
        # ten minutes of downtime: ten slots missed, one catch-up run
        app2 = self.start(self.state, advance=600)
        c2 = hello(app2.hub, scopes=ADMIN)
        self.clock.advance(0)
        runs = self.ok(c2, "cron.runs", {"id": job["id"]})["entries"]
        self.assertEqual(len(runs), 1)
        stored = self.successResultOf(app2.cron.store.runs(job["id"], None, 10, 0))[1]
        self.assertEqual(stored[0]["slot"], f"s:{job['nextRunAtMs']}")
        state = app2.cron.jobs[job["id"]]["state"]
        self.assertGreater(state["nextRunAtMs"], app2.hub.now_ms())
        self.assertEqual((state["nextRunAtMs"] - job["schedule"]["anchorMs"]) % 60_000, 0)

    def test_skip_missed_jobs(self) -> None:
        app = self.start(config={"cron": {"skipMissedJobs": True}})
        c = hello(app.hub, scopes=ADMIN)
        job = self.ok(c, "cron.add", system_job())
        app.cron.stopService()
        app2 = self.start(self.state, config={"cron": {"skipMissedJobs": True}}, advance=600)
        self.clock.advance(0)
        self.assertEqual(self.successResultOf(app2.cron.store.runs(job["id"], None, 10, 0))[0],
                         0)

    def test_cron_disabled(self) -> None:
        app = self.start(config={"cron": {"enabled": False}})
        c = hello(app.hub, scopes=ADMIN)
        self.ok(c, "cron.add", system_job())
        self.clock.advance(120)
        self.assertEqual(self.ok(c, "cron.runs", {})["total"], 0)
        self.assertFalse(self.ok(c, "cron.status", {})["enabled"])


TARGET_NONE = {"agents": {"defaults": {"heartbeat": {"target": "none"}}}}


class HeartbeatAndWake(Base):
    def test_heartbeat_runs_every_30_minutes(self) -> None:
        app = self.start(config=TARGET_NONE)
        c = hello(app.hub, scopes=ADMIN)
        self.assertIsNone(self.ok(c, "last-heartbeat", {}))
        self.clock.advance(1799)
        self.assertIsNone(app.hub.last_heartbeat)
        c = hello(app.hub, scopes=ADMIN)  # the first socket missed its pongs over 30 min
        self.clock.advance(1)
        self.spin(10)
        beats = [e["payload"] for e in c.pop() if e.get("event") == "heartbeat"]
        self.assertEqual(len(beats), 1)
        # the offline model echoes the prompt: an alert, with delivery switched off
        self.assertEqual((beats[0]["status"], beats[0]["reason"]), ("skipped", "target-none"))
        self.assertIn("You said: Follow the heartbeat", beats[0]["preview"])
        self.assertIn("durationMs", beats[0])
        self.assertEqual(self.ok(c, "last-heartbeat", {}), beats[0])
        entries = self.successResultOf(app.sessions.history("agent:main:main", 10, None))
        self.assertEqual(entries[0].body["content"], DEFAULT_PROMPT)

    def test_chat_history_hides_the_prompt_and_acknowledgments(self) -> None:
        """As the real gateway's Control UI and TUI history: no heartbeat prompts and no
        acknowledgment-only replies; an alert shows; the transcript keeps all of them."""
        app = self.start(config={"agents": {"defaults": {"heartbeat": {
            "every": "5m", "prompt": "Custom beat", "target": "none"}}}})
        c = hello(app.hub, scopes=ADMIN)
        self.ok(c, "sessions.messages.subscribe", {"key": "main"})
        fake = install_fake(app)
        self.clock.advance(300)
        self.spin(2)
        fake.calls[-1].say("HEARTBEAT")
        self.spin(2)
        fake.calls[-1].finish("_OK")
        self.spin(10)
        self.assertEqual(self.ok(c, "last-heartbeat", {})["status"], "ok-empty")
        self.clock.advance(300)
        self.spin(2)
        fake.calls[-1].say("The disk ")
        self.spin(2)
        fake.calls[-1].finish("is 95% full.")
        self.spin(10)
        shown = self.ok(c, "chat.history", {"sessionKey": "main"})["messages"]
        self.assertEqual([(m["role"], m["content"][0]["text"]) for m in shown],
                         [("assistant", "The disk is 95% full.")])
        events = c.pop()
        live = [e["payload"]["message"]["role"] for e in events
                if e.get("event") == "session.message"]
        self.assertEqual(live, ["assistant"])
        chat = [(e["payload"]["state"], e["payload"].get("message", {}).get("content"))
                for e in events if e.get("event") == "chat"
                and e["payload"]["state"] in ("delta", "final")]
        self.assertEqual(chat, [("final", [{"type": "text", "text": "The disk is 95% full."}])])
        kept = self.successResultOf(app.sessions.history("agent:main:main", 10, None))
        self.assertEqual([e.role for e in kept], ["user", "assistant", "user", "assistant"])
        self.assertTrue(hidden_in_chat("user", "heartbeat-1", "anything"))
        self.assertFalse(hidden_in_chat("user", "run-1", "Custom beat"))

    def test_heartbeat_config_and_set_heartbeats(self) -> None:
        app = self.start(config={"agents": {"defaults": {"heartbeat": {
            "every": "5m", "prompt": "Custom beat", "target": "none"}}}})
        c = hello(app.hub, scopes=ADMIN)
        hb = self.ok(c, "cron.list", {})["jobs"][0]
        self.assertEqual(hb["schedule"]["everyMs"], 300_000)
        self.assertEqual(self.ok(c, "set-heartbeats", {"enabled": False}),
                         {"ok": True, "enabled": False})
        self.clock.advance(300)
        self.assertEqual(self.ok(c, "last-heartbeat", {})["reason"], "disabled")
        self.ok(c, "set-heartbeats", {"enabled": True})
        self.clock.advance(300)
        self.spin(10)
        self.assertIn("Custom beat", self.ok(c, "last-heartbeat", {})["preview"])
        entries = self.successResultOf(app.sessions.history("agent:main:main", 10, None))
        self.assertEqual(entries[0].body["content"], "Custom beat")

    def test_heartbeat_every_0m_disables_the_job(self) -> None:
        app = self.start(config={"agents": {"defaults": {"heartbeat": {"every": "0m"}}}})
        hb = next(iter(app.cron.jobs.values()))
        self.assertFalse(hb["enabled"])

    def test_wake_now_runs_heartbeat_with_the_event(self) -> None:
        app = self.start()
        c = hello(app.hub, scopes=ADMIN)
        self.assertEqual(self.ok(c, "wake", {"mode": "now", "text": "build finished"}),
                         {"ok": True})
        self.spin(10)
        beat = self.ok(c, "last-heartbeat", {})
        # a wake runs the turn even with no route; its alert is then not delivered
        self.assertEqual((beat["status"], beat["reason"]), ("skipped", "no-route"))
        self.assertIn("System: build finished", beat["preview"])
        entries = self.successResultOf(app.sessions.history("agent:main:main", 10, None))
        self.assertTrue(entries[0].body["content"].startswith("System: build finished"))
        self.assertEqual(app.heartbeat.pending_for("main"), [])

    def test_wake_next_heartbeat_only_queues(self) -> None:
        app = self.start()
        c = hello(app.hub, scopes=ADMIN)
        self.ok(c, "wake", {"mode": "next-heartbeat", "text": "later"})
        self.spin(1)
        self.assertIsNone(self.ok(c, "last-heartbeat", {}))
        self.assertEqual([e["text"] for e in app.heartbeat.pending_for("main")], ["later"])
        self.assertFalse(self.call(hello(app.hub), "wake", {"mode": "now", "text": "x"})["ok"])

    def test_event_wakes_are_rate_limited(self) -> None:
        app = self.start()
        hb = app.heartbeat
        self.assertEqual(hb.request_wake("main"), 0)
        self.clock.advance(0)
        self.clock.advance(5)
        self.assertEqual(hb.request_wake("main"), 25_000)  # 30 s since the last event turn
        self.assertEqual(hb.request_wake("main"), 0)  # already scheduled: coalesced
        self.clock.advance(25)
        self.assertEqual(len(hb._event_turns), 2)

    def test_wakes_of_other_agents_share_the_flood_limit(self) -> None:
        """The flood limit counts wakes already scheduled, not only those that fired: eight
        agents woken at once used to be scheduled all at 0 (and wakes for agents that are
        not configured started turns and rows for them)."""
        agents = [{"id": f"a{i}"} for i in range(8)]
        app = self.start(config={"agents": {"list": agents}})
        hb = app.heartbeat
        delays = [hb.request_wake(f"a{i}") for i in range(8)]
        self.assertEqual(delays[0], 0)
        self.assertEqual(delays, sorted(delays))
        self.assertEqual(len(set(delays)), 8, delays)
        self.assertGreaterEqual(delays[5], 60_000)  # the sixth waits for the window
        self.assertIsNone(hb.request_wake("made-up"))
        self.assertNotIn("made-up", hb._wake_calls)

    def test_heartbeat_drains_the_hooks_wake_queue(self) -> None:
        app = self.start()
        from openclaw_tw.tap import build_site

        hooks = build_site(app).resource.hooks
        hooks.pending[("agent:main:main", "mail")] = {
            "sessionKey": "agent:main:main", "text": "New email", "mode": "next-heartbeat",
            "ts": app.hub.now_ms()}
        self.clock.advance(1800)
        self.spin(10)
        entries = self.successResultOf(app.sessions.history("agent:main:main", 10, None))
        self.assertTrue(entries[0].body["content"].startswith("System: New email"))
        self.assertEqual(len(hooks.pending), 0)

    def test_system_event_job_with_wake_now(self) -> None:
        app = self.start()
        c = hello(app.hub, scopes=ADMIN)
        self.ok(c, "cron.add", system_job("stand up", wakeMode="now"))
        self.clock.advance(60)
        self.spin(10)
        beat = self.ok(c, "last-heartbeat", {})  # a cron wake runs the turn, no route or not
        self.assertEqual((beat["status"], beat["reason"]), ("skipped", "no-route"))
        self.assertIn("System: stand up", beat["preview"])


class Boot(Base):
    def test_boot_md_runs_once_in_a_temporary_session(self) -> None:
        state = fresh_dir(self)
        (state / "workspace").mkdir()
        (state / "workspace" / "BOOT.md").write_text("Say hello to the team.")
        app = self.start(state)
        app.boot.startService()
        self.spin(10)
        self.assertEqual(app.boot.results["main"]["status"], "ok")
        self.assertFalse([k for k in stored_keys(app) if ":boot:" in k])

    def test_missing_or_blank_boot_md_is_skipped(self) -> None:
        state = fresh_dir(self)
        (state / "workspace").mkdir()
        (state / "workspace" / "BOOT.md").write_text("  \n")
        app = self.start(state)
        app.boot.startService()
        self.spin(1)
        self.assertEqual(app.boot.results, {})


class Scale(Base):
    def test_heap_stays_bounded_when_a_far_off_job_is_edited_often(self) -> None:
        app = self.start()
        c = hello(app.hub, scopes=ADMIN)
        job = self.ok(c, "cron.add", {
            "name": "yearly", "schedule": {"kind": "cron", "expr": "0 9 1 1 *"},
            "sessionTarget": "main", "wakeMode": "next-heartbeat",
            "payload": {"kind": "systemEvent", "text": "hi"}})
        for i in range(300):
            self.ok(c, "cron.update", {"id": job["id"], "patch": {"name": f"yearly {i}"}})
        self.assertLessEqual(len(app.cron._heap), 2 * len(app.cron.jobs) + 64)
        self.assertIn(job["id"], {e[2] for e in app.cron._heap if app.cron._live(e)})

    def test_10k_jobs_wake_cost_follows_due_jobs(self) -> None:
        app = self.start()
        now = app.hub.now_ms()
        cron = app.cron
        rows = []
        for i in range(10_000):
            job = {"id": f"job-{i}", "name": f"j{i}", "enabled": True, "createdAtMs": now,
                   "updatedAtMs": now, "sessionTarget": "main", "wakeMode": "next-heartbeat",
                   "schedule": {"kind": "every", "everyMs": 3_600_000 + i * 1000,
                                "anchorMs": now},
                   "payload": {"kind": "systemEvent", "text": f"t{i}"},
                   "state": {"nextRunAtMs": now + 3_600_000 + i * 1000}}
            cron.jobs[job["id"]] = job
            cron._push(job)
            rows.append((job["id"], json.dumps(job)))
        app.cron_db.run_now(lambda conn: conn.executemany(
            "INSERT INTO jobs VALUES (?, ?)", rows))
        cron._arm()
        checked = []
        live = cron._live
        cron._live = lambda entry: checked.append(entry) or live(entry)  # type: ignore
        self.clock.advance(3600 + 2)  # three jobs are due (0, 1 and 2 s past the hour)
        due_checks = len(checked)
        self.assertEqual(sum(1 for j in cron.jobs.values() if j["state"].get("lastRunAtMs")
                             and j["id"].startswith("job-")), 3)
        # popping 3 due entries plus re-arming: a handful of heap checks, not 10 000
        self.assertLess(due_checks, 20)
