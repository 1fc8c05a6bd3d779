"""``cron.run`` as the real gateway (2026.9.6) answers it: ``{ok, enqueued, runId,
processInstanceId}``, the run id ``manual:<jobId>:<ms>:<n>`` carried by the run log and the
``cron`` events; ``{ok, ran: false, reason, processInstanceId}`` when nothing runs; a stale
``expectedProcessInstanceId`` refused."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred

from tests.support.cron import ADMIN
from tests.support.cron import CronCase as Base
from tests.support.helpers import hello

HOURLY = {"kind": "every", "everyMs": 3_600_000}


def system_job(**extra: Any) -> dict[str, Any]:
    return {"name": "tea", "schedule": HOURLY, "sessionTarget": "main",
            "wakeMode": "next-heartbeat", "payload": {"kind": "systemEvent", "text": "Tea"},
            **extra}


class CronRun(Base):
    def setUp(self) -> None:
        self.start()
        self.client = hello(self.gw, scopes=ADMIN)
        self.job = self.ok(self.client, "cron.add", system_job())
        self.client.pop()

    def run_now(self, **params: Any) -> dict[str, Any]:
        return self.ok(self.client, "cron.run", {"id": self.job["id"], **params})

    def test_the_result_and_the_run_id(self) -> None:
        now = self.gw.now_ms()
        first = self.run_now()
        self.assertEqual(first, {"ok": True, "enqueued": True,
                                 "runId": f"manual:{self.job['id']}:{now}:1",
                                 "processInstanceId": self.gw.boot_id})
        self.clock.advance(1)
        self.assertEqual(self.run_now()["runId"], f"manual:{self.job['id']}:{now + 1000}:2")
        entries = self.ok(self.client, "cron.runs", {"id": self.job["id"]})["entries"]
        self.assertEqual([e["runId"] for e in entries],
                         [f"manual:{self.job['id']}:{now + 1000}:2", first["runId"]])
        events = [e["payload"] for e in self.client.pop() if e.get("event") == "cron"]
        self.assertEqual([(e["action"], e.get("runId")) for e in events][:2],
                         [("started", first["runId"]), ("finished", first["runId"])])
        # the run log finds the run by the id cron.run answered
        found = self.ok(self.client, "cron.runs", {"id": self.job["id"],
                                                   "runId": first["runId"]})
        self.assertEqual([e["runId"] for e in found["entries"]], [first["runId"]])

    def test_a_scheduled_run_shows_no_run_id(self) -> None:
        self.clock.advance(3600)
        [entry] = self.ok(self.client, "cron.runs", {"id": self.job["id"]})["entries"]
        self.assertNotIn("runId", entry)
        events = [e["payload"] for e in self.client.pop() if e.get("event") == "cron"]
        self.assertEqual([(e["action"], "runId" in e) for e in events
                          if e["jobId"] == self.job["id"] and
                          e["action"] in ("started", "finished")],
                         [("started", False), ("finished", False)])
        [row] = self.successResultOf(self.app.cron.store.runs(self.job["id"], None, 10, 0))[1]
        self.assertTrue(row["run_id"].startswith(f"cron:{self.job['id']}:"), row)

    def test_nothing_runs(self) -> None:
        pid = {"processInstanceId": self.gw.boot_id}
        self.assertEqual(self.run_now(mode="due"),
                         {"ok": True, "ran": False, "reason": "not-due", **pid})
        self.ok(self.client, "cron.update", {"id": self.job["id"],
                                             "patch": {"enabled": False}})
        self.assertEqual(self.run_now(mode="if-enabled"),
                         {"ok": True, "ran": False, "reason": "disabled", **pid})
        self.ok(self.client, "cron.update", {"id": self.job["id"],
                                             "patch": {"enabled": True}})
        self.app.cron.in_flight[self.job["id"]] = Deferred()  # a run still going
        self.assertEqual(self.run_now(), {"ok": True, "ran": False, "reason": "already-running",
                                      **pid})
        del self.app.cron.in_flight[self.job["id"]]

    def test_a_due_run_takes_the_slot_with_a_manual_id(self) -> None:
        self.clock.advance(3599)
        self.app.cron.jobs[self.job["id"]]["state"]["nextRunAtMs"] = self.gw.now_ms()
        res = self.run_now(mode="due")
        self.assertTrue(res["runId"].startswith(f"manual:{self.job['id']}:"), res)

    def test_another_process_is_refused(self) -> None:
        res = self.call(self.client, "cron.run", {"id": self.job["id"],
                                                  "expectedProcessInstanceId": "stale"})
        self.assertEqual((res["ok"], res["error"]["code"], res["error"]["message"]),
                         (False, "INVALID_REQUEST",
                          "invalid cron.run params: Gateway process changed after preflight"))
        self.assertTrue(self.run_now(expectedProcessInstanceId=self.gw.boot_id)["enqueued"])

    def test_an_unknown_mode_is_refused(self) -> None:
        res = self.call(self.client, "cron.run", {"id": self.job["id"], "mode": "later"})
        self.assertEqual(res["error"]["code"], "INVALID_REQUEST")
