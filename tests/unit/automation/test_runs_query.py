"""``cron.runs`` as the real gateway (2026.9.6) answers it: every filter of its params
(statuses, delivery statuses, text query, run id, agent, scope, sort direction, paging)
applied in SQL, the page envelope, and the real errors for an unknown or missing job."""

from __future__ import annotations

import json
from typing import Any

from openclaw_tw.automation.store import MIGRATIONS
from openclaw_tw.db import Database
from tests.support.cron import ADMIN
from tests.support.cron import CronCase as Base
from tests.support.helpers import hello

HOURLY = {"kind": "every", "everyMs": 3_600_000}
NOT_FOUND = ("Automation not found: {}. List automations and retry with a current job id. "
             "For cross-session management, use a fresh authenticated configured channel "
             "owner or Control UI administrator turn or the Automations page.")
COLS = ("run_id", "job_id", "slot", "trigger", "status", "started_at", "ended_at",
        "duration_ms", "error", "summary", "session_key", "detail", "agent_id")


class RunsQuery(Base):
    maxDiff = None

    def setUp(self) -> None:
        self.start()
        self.client = hello(self.gw, scopes=ADMIN)
        self.tea = self.add("Tea time")
        self.ops = self.add("Ops report", agentId="ops")
        self.seq = 0

    def add(self, name: str, **extra: Any) -> str:
        job = self.ok(self.client, "cron.add", {
            "name": name, "schedule": HOURLY, "sessionTarget": "main",
            "wakeMode": "next-heartbeat", "payload": {"kind": "systemEvent", "text": "x"},
            **extra})
        return str(job["id"])

    def put(self, job_id: str, ended: int, status: str = "ok", trigger: str = "manual",
            agent: str = "main", detail: dict[str, Any] | None = None, **cols: Any) -> str:
        """A finished run straight into the history table."""
        self.seq += 1
        run_id = cols.pop("run_id", f"manual:{job_id}:{ended}:{self.seq}")
        row = {"run_id": run_id, "job_id": job_id, "slot": f"m:{run_id}", "trigger": trigger,
               "status": status, "started_at": ended - 10, "ended_at": ended,
               "duration_ms": 10, "error": None, "summary": None, "session_key": None,
               "detail": json.dumps(detail) if detail is not None else None,
               "agent_id": agent, **cols}
        self.app.cron.store.db.run_now(lambda conn: conn.execute(
            f"INSERT INTO runs ({','.join(COLS)}) VALUES ({','.join('?' * len(COLS))})",
            tuple(row[c] for c in COLS)))
        return run_id

    def runs(self, **params: Any) -> dict[str, Any]:
        return self.ok(self.client, "cron.runs", params)

    def ends(self, **params: Any) -> list[int]:
        return [e["ts"] for e in self.runs(**params)["entries"]]

    def refused(self, params: dict[str, Any]) -> dict[str, Any]:
        res = self.call(self.client, "cron.runs", params)
        self.assertFalse(res["ok"], res)
        return dict(res["error"])

    def test_the_page_envelope(self) -> None:
        for ts in range(1, 6):
            self.put(self.tea, ts * 1000)
        page = self.runs(id=self.tea, limit=2, offset=1)
        self.assertEqual({k: v for k, v in page.items() if k != "entries"},
                         {"total": 5, "offset": 1, "limit": 2, "hasMore": True,
                          "nextOffset": 3})
        self.assertEqual([e["ts"] for e in page["entries"]], [4000, 3000])
        self.assertEqual(self.runs(id=self.tea)["limit"], 50)
        past = self.runs(id=self.tea, offset=9)  # the offset is clamped to the total
        self.assertEqual((past["entries"], past["offset"], past["hasMore"],
                          past["nextOffset"]), ([], 5, False, None))
        self.assertEqual(self.ends(id=self.tea, sortDir="asc", limit=3), [1000, 2000, 3000])

    def test_run_statuses(self) -> None:
        self.put(self.tea, 1000, "ok")
        self.put(self.tea, 2000, "error", error="boom")
        self.put(self.tea, 3000, "skipped")
        self.assertEqual(self.ends(id=self.tea, status="error"), [2000])
        self.assertEqual(self.ends(id=self.tea, status="all"), [3000, 2000, 1000])
        self.assertEqual(self.ends(id=self.tea, statuses=["ok", "skipped", "ok"]), [3000, 1000])
        # the list wins over the single value
        self.assertEqual(self.ends(id=self.tea, statuses=["ok"], status="error"), [1000])

    def test_delivery_statuses(self) -> None:
        self.put(self.tea, 1000, detail={"deliveryStatus": "delivered"})
        self.put(self.tea, 2000, detail={"deliveryStatus": "not-delivered"})
        self.put(self.tea, 3000)  # a run from before details: not requested
        self.assertEqual(self.ends(id=self.tea, deliveryStatus="not-requested"), [3000])
        self.assertEqual(self.ends(id=self.tea, deliveryStatuses=["delivered",
                                                                  "not-delivered"]),
                         [2000, 1000])

    def test_the_text_query(self) -> None:
        self.put(self.tea, 1000, summary="The Kettle boiled")
        self.put(self.tea, 2000, "error", error="Été trop chaud",
                 detail={"errorReason": "rate_limit"})
        self.put(self.tea, 3000, detail={"delivery": {
            "intended": {"channel": "last"}, "resolved": {"channel": "telegram"}}})
        self.put(self.ops, 4000, agent="ops")
        self.assertEqual(self.ends(id=self.tea, query="  kettle "), [1000])
        self.assertEqual(self.ends(id=self.tea, query="ÉTÉ"), [2000])
        self.assertEqual(self.ends(id=self.tea, query="RATE_limit"), [2000])
        self.assertEqual(self.ends(id=self.tea, query="telegram"), [3000])
        self.assertEqual(self.ends(id=self.tea, query="tea time"), [3000, 2000, 1000])
        self.assertEqual(self.ends(query="ops rep"), [4000])  # the job's current name
        self.assertEqual(self.ends(query=self.ops[:8]), [4000])  # its id
        # the parts joined as the real gateway joins them (empty error, reason, diagnostics)
        self.assertEqual(self.ends(id=self.tea, query="boiled    " + self.tea[:4]), [1000])
        self.assertEqual(self.ends(id=self.tea, query="boiled " + self.tea[:4]), [])
        self.assertEqual(self.ends(id=self.tea, query="nothing like this"), [])

    def test_a_run_by_its_id(self) -> None:
        manual = self.put(self.tea, 1000)
        scheduled = self.put(self.tea, 2000, trigger="scheduled",
                             run_id=f"cron:{self.tea}:1990:u")
        self.assertEqual(self.ends(id=self.tea, runId=f" {manual} "), [1000])
        self.assertEqual(self.ends(id=self.tea, runId=scheduled), [])  # it shows no id

    def test_scope_and_agent(self) -> None:
        self.put(self.tea, 1000)
        self.put(self.ops, 2000, agent="ops")
        self.assertEqual(self.ends(), [2000, 1000])  # no id: every job's runs
        self.assertEqual(self.ends(scope="all", id=self.tea), [2000, 1000])
        self.assertEqual(self.ends(agentId="OPS"), [2000])
        entries = self.runs(agentId="main")["entries"]
        self.assertEqual([(e["jobId"], e["jobName"]) for e in entries],
                         [(self.tea, "Tea time")])
        self.assertEqual(self.ends(id=self.ops, agentId="ops"), [2000])
        error = self.refused({"id": self.ops, "agentId": "main"})
        self.assertEqual(error["details"], {"code": "CRON_JOB_NOT_FOUND", "jobId": self.ops})

    def test_unknown_and_removed_jobs(self) -> None:
        error = self.refused({"id": "nope"})
        self.assertEqual(error, {"code": "INVALID_REQUEST",
                                 "message": NOT_FOUND.format("nope"),
                                 "details": {"code": "CRON_JOB_NOT_FOUND", "jobId": "nope"}})
        self.put(self.tea, 1000)
        self.ok(self.client, "cron.remove", {"id": self.tea})
        page = self.runs(id=self.tea, status="error")  # the history stays: an empty page
        self.assertEqual((page["entries"], page["total"]), ([], 0))
        [entry] = self.runs(id=self.tea)["entries"]
        self.assertNotIn("jobName", entry)

    def test_bad_selectors(self) -> None:
        self.assertEqual(self.refused({"scope": "job"})["message"],
                         "invalid cron.runs params: missing id")
        self.assertEqual(self.refused({"id": "  "})["message"],
                         "invalid cron.runs params: missing id")
        self.assertEqual(self.refused({"id": "a/b"})["message"],
                         'invalid cron.runs params: at /id: must match pattern "^[^/\\\\]+$"')
        self.assertIn("/statuses", self.refused({"statuses": []})["message"])
        self.assertIn("/status", self.refused({"status": "bogus"})["message"])
        self.assertIn("/sortDir", self.refused({"sortDir": "up"})["message"])

    def test_pages_walk_an_index(self) -> None:
        from openclaw_tw.automation import history
        plans = {}
        for name, q in (("job", history.RunQuery(job_id="j")),
                        ("agent", history.RunQuery(agent_id="a", ascending=True)),
                        ("all", history.RunQuery())):
            where, args = history._where(q)
            plans[name] = " ".join(r[-1] for r in self.app.cron.store.db.run_now(
                lambda conn, w=where, a=args: conn.execute(
                    f"EXPLAIN QUERY PLAN SELECT run_id FROM runs WHERE {w} "
                    "ORDER BY ended_at DESC, rowid DESC", a).fetchall()))
        self.assertIn("runs_job_ended", plans["job"])
        self.assertIn("runs_agent_ended", plans["agent"])
        self.assertIn("runs_ended", plans["all"])
        self.assertNotIn("TEMP B-TREE", " ".join(plans.values()))


class AgentBackfill(Base):
    def test_older_runs_get_their_agent(self) -> None:
        state = self.start()
        self.stop(state)
        path = self.app.cron_db.path
        path.unlink()
        old = Database(path, MIGRATIONS[:2], inline=True)
        old.open()
        old.run_now(lambda conn: conn.executemany(
            "INSERT INTO runs (run_id, job_id, slot, trigger, status, started_at, ended_at,"
            " session_key) VALUES (?, ?, ?, 'manual', 'ok', 1, 2, ?)",
            [("r1", "j1", "m:1", "agent:ops:cron:j1"), ("r2", "j2", "m:2", None)]))
        old.run_now(lambda conn: conn.execute(
            "INSERT INTO jobs VALUES ('j2', ?)", (json.dumps({"id": "j2"}),)))
        old.close()
        new = Database(path, MIGRATIONS, inline=True)
        new.open()
        self.addCleanup(new.close)
        self.assertEqual(new.run_now(lambda conn: conn.execute(
            "SELECT run_id, agent_id FROM runs ORDER BY run_id").fetchall()),
            [("r1", "ops"), ("r2", "main")])
