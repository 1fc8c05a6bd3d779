"""The cron scheduler: a Service on the injected clock, jobs persisted in ``cron.sqlite``.

One timer is armed for the earliest entry of a heap of ``(fireAtMs, slotMs, jobId)``; a wake-up
pops only the due entries (stale ones, left by edits, are dropped as they surface), so its cost
grows with the due jobs, not with all jobs.

Idempotency: before a payload runs, its slot is claimed in the database (store.py) together
with the job state advanced past that slot.  A slot is therefore run at most once, including
across a restart in the middle of a run (the run is marked interrupted, not replayed).

Catch-up after downtime (``docs/automation/cron-jobs/managing-jobs.md``: default is to catch
up; ``cron.skipMissedJobs: true`` skips recurring slots; ``how-it-works.md``: overdue agent-turn
jobs and heartbeat-awaiting jobs are rescheduled rather than replayed at once): at start-up, an
enabled job whose stored ``nextRunAtMs`` passed runs **once** for the missed slots (not once per
missed slot); agent-turn jobs do so ``CATCHUP_DELAY_MS`` after start, others at once; the
heartbeat job is not replayed, it moves to its next slot; with ``skipMissedJobs`` ``cron`` and
``every`` jobs move to their next slot, ``at`` jobs still catch up.
"""

from __future__ import annotations

import heapq
import json
import uuid
from typing import TYPE_CHECKING, Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.logger import Logger

from openclaw_tw.automation import runlog
from openclaw_tw.automation import schedule as sched
from openclaw_tw.automation.delivery import (
    AT_RETRY_MS,
    Announcer,
    error_backoff_ms,
    stagger_ms,
    staggered,
    transient,
)
from openclaw_tw.automation.execute import effective_agent, execute
from openclaw_tw.automation.heartbeat import DEFAULT_EVERY_MS, Heartbeat
from openclaw_tw.automation.store import CronStore
from openclaw_tw.protocol import scopes as S

if TYPE_CHECKING:
    from openclaw_tw.agent.runtime import AgentRuntime
    from openclaw_tw.hub.gateway import Gateway
    from openclaw_tw.sessions.store import SessionStore

_log = Logger(namespace="cron")

CATCHUP_DELAY_MS = 60_000


def heartbeat_job_key(agent: str) -> str:
    return f"heartbeat:{agent}"


class Scheduler(Service):
    name = "cron"

    def __init__(self, gw: Gateway, runtime: AgentRuntime, sessions: SessionStore,
                 store: CronStore, heartbeat: Heartbeat, agents: list[str],
                 enabled: bool = True, skip_missed: bool = False,
                 announcer: Announcer | None = None) -> None:
        self.gw = gw
        self.runtime = runtime
        self.sessions = sessions
        self.store = store
        self.heartbeat = heartbeat
        self.agents = agents
        self.enabled = enabled
        self.skip_missed = skip_missed
        self.announcer = announcer  # delivers agent-turn output to a chat (delivery.py)
        self.jobs: dict[str, dict[str, Any]] = {}
        self.interrupted: list[str] = []
        self.in_flight: dict[str, Deferred[Any]] = {}
        self._heap: list[tuple[int, int, str]] = []
        self._timer: Any = None
        self._closed = False
        self._manual_runs = 0  # the sequence number in manual run ids

    @property
    def closed(self) -> bool:
        """Stopped: a run still going is recorded as interrupted, its output not sent."""
        return self._closed

    # -- start-up -------------------------------------------------------------------------------

    def load(self) -> None:
        now = self.gw.now_ms()
        jobs, self.interrupted = self.store.load(now)
        self.jobs = {j["id"]: j for j in jobs}
        for agent in self.agents:
            self._reconcile_heartbeat(agent, now)

    def _reconcile_heartbeat(self, agent: str, now: int) -> None:
        job, _ = self._heartbeat_job(agent, now)
        self.jobs[job["id"]] = job
        self.store.db.run_now(lambda conn: conn.execute(
            "INSERT OR REPLACE INTO jobs VALUES (?, ?)", (job["id"], _dumps(job))))

    def _heartbeat_job(self, agent: str, now: int) -> tuple[dict[str, Any], bool]:
        """The agent's heartbeat job as its config says it, and whether that changed it."""
        cfg = self.heartbeat.config_for(agent)
        key = heartbeat_job_key(agent)
        job = next((j for j in self.jobs.values() if j.get("declarationKey") == key), None)
        every = cfg["everyMs"] or DEFAULT_EVERY_MS
        changed = False
        if job is None:
            changed = True
            job = {"id": str(uuid.uuid4()), "declarationKey": key,
                   "displayName": f"Heartbeat ({agent})", "agentId": agent,
                   "name": f"heartbeat-{agent}", "enabled": True, "createdAtMs": now,
                   "schedule": {"kind": "every", "everyMs": every, "anchorMs": now},
                   "sessionTarget": "main", "wakeMode": "next-heartbeat",
                   "payload": {"kind": "heartbeat"}, "state": {}, "updatedAtMs": now}
        elif job["schedule"].get("everyMs") != every:
            changed = True
            job["schedule"] = {"kind": "every", "everyMs": every, "anchorMs": now}
            job["state"]["nextRunAtMs"] = None
            job["updatedAtMs"] = now
        enabled = bool(cfg["everyMs"])
        if job.get("enabled") != enabled:
            changed = True
            job["enabled"] = enabled
            job["updatedAtMs"] = now
        return job, changed

    def reconfigure(self, agents: list[str], enabled: bool, skip_missed: bool) -> None:
        """Hot reload of ``agents.*.heartbeat``, the agent list, ``cron.enabled`` and
        ``cron.skipMissedJobs``: a heartbeat whose interval changed is rescheduled from now,
        one turned off (``every: "0m"``) stops, a new agent gets its heartbeat job."""
        now = self.gw.now_ms()
        self.agents = list(agents)
        self.skip_missed = skip_missed
        for agent in self.agents:
            job, changed = self._heartbeat_job(agent, now)
            if not changed:
                continue
            state = job.setdefault("state", {})
            if job["enabled"] and state.get("nextRunAtMs") is None:
                state["nextRunAtMs"] = self.first_slot(job, now)
            self.put(job, "updated").addErrback(
                lambda f: _log.failure("saving the reloaded heartbeat job failed", f))
        was, self.enabled = self.enabled, enabled
        if not self.running:
            return
        if enabled and not was:
            _log.info("cron enabled by a config reload: scheduled jobs run again")
            self._schedule_all(now)
        elif was and not enabled:
            _log.warn("cron disabled by a config reload: scheduled jobs will not run")
            if self._timer is not None and self._timer.active():
                self._timer.cancel()
            self._timer = None

    def startService(self) -> None:
        super().startService()
        self._closed = False
        self.store.db.start()
        if not self.enabled:
            _log.warn("cron is disabled (cron.enabled false or OPENCLAW_SKIP_CRON=1): "
                      "scheduled jobs will not run")
            return
        self._schedule_all(self.gw.now_ms())

    def _schedule_all(self, now: int) -> None:
        """Every enabled job on the timer; missed slots are caught up or skipped by kind."""
        self._heap = []
        for job in self.jobs.values():
            state = job.setdefault("state", {})
            slot = state.get("nextRunAtMs")
            if slot is None:
                if job.get("enabled") and not state.get("lastRunAtMs"):
                    state["nextRunAtMs"] = self.first_slot(job, now)
                    self._push(job)
                continue
            if not job.get("enabled") or slot > now:
                self._push(job)
                continue
            kind = job["schedule"]["kind"]
            if job["payload"]["kind"] == "heartbeat" or (
                    self.skip_missed and kind in ("cron", "every")):
                state["nextRunAtMs"] = self.next_slot(job, now)
                self._push(job)
            elif job["payload"]["kind"] == "agentTurn":
                self._push(job, fire_at=now + CATCHUP_DELAY_MS)
            else:
                self._push(job, fire_at=now)
        self._arm()

    def stopService(self) -> Any:
        """Runs still in flight are recorded as interrupted (never replayed), then the
        database closes; the agent runtime, stopped later, aborts their turns."""
        super().stopService()
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self.heartbeat.stop()
        self._closed = True
        d = self.store.interrupt_running(self.gw.now_ms())
        d.addErrback(lambda f: _log.failure("recording interrupted cron runs failed", f))
        d.addBoth(lambda _: self.store.db.close())
        return d

    # -- the timer ------------------------------------------------------------------------------

    def _push(self, job: dict[str, Any], fire_at: int | None = None) -> None:
        slot = job["state"].get("nextRunAtMs")
        if slot is None or not job.get("enabled"):
            return
        heapq.heappush(self._heap, (fire_at if fire_at is not None else slot, slot, job["id"]))
        if len(self._heap) > 2 * len(self.jobs) + 64:
            # stale entries (a job updated, run or removed) leave only when they reach the
            # top: a far-off job edited often would grow the heap without end
            earliest: dict[str, tuple[int, int, str]] = {}
            for e in self._heap:
                if self._live(e) and (e[2] not in earliest or e < earliest[e[2]]):
                    earliest[e[2]] = e
            self._heap = list(earliest.values())
            heapq.heapify(self._heap)

    def _arm(self) -> None:
        if not self.running or not self.enabled:
            return
        while self._heap and not self._live(self._heap[0]):
            heapq.heappop(self._heap)
        if not self._heap:
            if self._timer is not None and self._timer.active():
                self._timer.cancel()
            return
        delay = max(0, self._heap[0][0] - self.gw.now_ms()) / 1000
        if self._timer is not None and self._timer.active():
            self._timer.reset(delay)
        else:
            self._timer = self.gw.clock.callLater(delay, self._fire)

    def _live(self, entry: tuple[int, int, str]) -> bool:
        job = self.jobs.get(entry[2])
        return job is not None and bool(job.get("enabled")) and \
            job["state"].get("nextRunAtMs") == entry[1]

    def _fire(self) -> None:
        self._timer = None
        now = self.gw.now_ms()
        while self._heap and self._heap[0][0] <= now:
            entry = heapq.heappop(self._heap)
            if self._live(entry) and entry[2] not in self.in_flight:
                self.start_run(self.jobs[entry[2]], "scheduled")
        self._arm()

    def next_wake_ms(self) -> int | None:
        live = [e[0] for e in self._heap if self._live(e)]
        return min(live) if live else None

    def next_slot(self, job: dict[str, Any], after_ms: int) -> int | None:
        return staggered(sched.next_run, job, after_ms)

    def first_slot(self, job: dict[str, Any], now_ms: int) -> int | None:
        return staggered(sched.first_run, job, now_ms)

    # -- running --------------------------------------------------------------------------------

    def new_run_id(self, job: dict[str, Any], trigger: str) -> str:
        """A run's id as the real gateway spells it: ``manual:<jobId>:<ms>:<n>`` for a run
        asked for by ``cron.run`` (``n`` counts this process's manual runs), and
        ``cron:<jobId>:<ms>:<uuid>`` for a scheduled one (which the run log does not show)."""
        now = self.gw.now_ms()
        if trigger == "scheduled":
            return f"cron:{job['id']}:{now}:{uuid.uuid4()}"
        self._manual_runs += 1
        return f"manual:{job['id']}:{now}:{self._manual_runs}"

    def start_run(self, job: dict[str, Any], trigger: str,
                  run_id: str | None = None) -> Deferred[dict[str, Any] | None]:
        """Claim a slot and run the payload; ``trigger`` ``manual`` runs outside the schedule,
        ``due`` (``cron.run`` mode due) and ``scheduled`` take the job's next slot."""
        now = self.gw.now_ms()
        state = job["state"]
        run_id = run_id or self.new_run_id(job, trigger)
        if trigger == "manual":
            slot_key = f"m:{run_id}"
        else:
            slot = state["nextRunAtMs"]
            slot_key = f"s:{slot}"
            state["nextRunAtMs"] = self.next_slot(job, max(now, slot)) \
                if job["schedule"]["kind"] != "at" else None
        state["runningAtMs"] = now
        run = {"run_id": run_id, "job_id": job["id"], "slot": slot_key, "trigger": trigger,
               "status": "running", "started_at": now, "agent_id": effective_agent(job)}
        d = ensureDeferred(self._claim_and_run(job, run))
        self.in_flight[job["id"]] = d

        def done(result: Any) -> Any:
            if self.in_flight.get(job["id"]) is d:
                del self.in_flight[job["id"]]
            return result

        d.addBoth(done)
        self._push(job)
        self._arm()
        return d

    async def _claim_and_run(self, job: dict[str, Any], run: dict[str, Any]) -> Any:
        if self._closed or not await self.store.claim(job, run):
            job["state"].pop("runningAtMs", None)
            return None
        started = {"jobId": job["id"], "action": "started", "runAtMs": run["started_at"]}
        if runlog.public_run_id(run):
            started["runId"] = run["run_id"]
        self._event(started)
        facts: dict[str, Any] = {}
        detail: dict[str, Any] = {}
        try:
            status, error, summary, key = await self._execute(job, run["run_id"], facts,
                                                              detail)
        except Exception as e:  # noqa: BLE001 - a failing job is recorded, never raised
            _log.failure("cron job {id} failed", id=job["id"])
            status, error, summary, key = "error", str(e) or type(e).__name__, None, None
        if self._closed:  # stopped mid-run: already recorded as interrupted
            return None
        self.gw.metrics.cron_run(status)
        now = self.gw.now_ms()
        detail.setdefault("deliveryStatus", "not-requested")
        detail["completionStatus"] = runlog.completion_status(job, status, detail)
        run.update(status=status, error=error, summary=summary, session_key=key,
                   ended_at=now, duration_ms=now - run["started_at"], detail=detail)
        state = job["state"]
        state.pop("runningAtMs", None)
        state.update(lastRunAtMs=run["started_at"], lastStatus=status, lastRunStatus=status,
                     lastDurationMs=run["duration_ms"])
        state["consecutiveErrors"] = state.get("consecutiveErrors", 0) + 1 \
            if status == "error" else 0
        for name in ("lastDelivered", "lastDeliveryStatus", "lastDeliveryError",
                     "deliverySuppressionReason", "lastErrorReason"):
            state.pop(name, None)
        state.update({k: v for k, v in facts.items() if not k.startswith("_")})
        if error:
            state["lastError"] = error
        else:
            state.pop("lastError", None)
        kind = job["schedule"]["kind"]
        delete = kind == "at" and status == "ok" and job.get("deleteAfterRun", True)
        retry_at = self._retry_slot(job, status, facts, now)
        if retry_at is not None:
            state["nextRunAtMs"] = retry_at
        elif kind == "at" and not delete:
            job["enabled"] = False
        if delete:
            self.jobs.pop(job["id"], None)
        if not delete and state.get("nextRunAtMs") is not None:
            detail["nextRunAtMs"] = state["nextRunAtMs"]
        await self.store.finish(run, job, delete_job=delete)
        if retry_at is not None:
            self._push(job)
            self._arm()
        self._event(runlog.finished_event(run))
        if delete:
            self._event({"jobId": job["id"], "action": "removed"})
        return runlog.entry(run)

    def _retry_slot(self, job: dict[str, Any], status: str, facts: dict[str, Any],
                    now: int) -> int | None:
        """After an error: a recurring job's next run backs off; a one-shot job is tried
        again after a transient failure (``delivery.py``)."""
        state = job["state"]
        if status != "error":
            return None
        errors = state.get("consecutiveErrors", 0)
        if job["schedule"]["kind"] == "at":
            if facts.get("_permanent"):
                return None
            reason = facts.get("lastErrorReason", "unknown")
            if errors > len(AT_RETRY_MS) or not transient(reason, facts.get("_detail")):
                return None
            return now + AT_RETRY_MS[errors - 1]
        natural = state.get("nextRunAtMs")
        earliest = now + error_backoff_ms(errors)
        if natural is None or natural >= earliest:
            return None
        return earliest

    async def _execute(self, job: dict[str, Any], run_id: str, facts: dict[str, Any],
                       detail: dict[str, Any]) -> tuple[str, str | None, str | None, str | None]:
        return await execute(self, job, run_id, facts, detail)

    # -- changes --------------------------------------------------------------------------------

    def put(self, job: dict[str, Any], action: str) -> Deferred[None]:
        state = job.setdefault("state", {})
        if job["schedule"]["kind"] == "cron" and state.get("nextRunAtMs") is not None and \
                stagger_ms(job):
            state["nextRunAtMs"] = self.first_slot(job, self.gw.now_ms())
        self.jobs[job["id"]] = job
        d = self.store.save_job(job)
        self._push(job)
        self._arm()
        self._event({"jobId": job["id"], "action": action, "nextRunAtMs":
                     job["state"].get("nextRunAtMs")})
        return d

    def remove(self, job_id: str) -> Deferred[None]:
        self.jobs.pop(job_id, None)
        self._event({"jobId": job_id, "action": "removed"})
        return self.store.delete_job(job_id)

    def _event(self, payload: dict[str, Any]) -> None:
        self.gw.broadcast("cron", {**payload, "ts": self.gw.now_ms()}, scope=S.READ)


def _dumps(job: dict[str, Any]) -> str:
    return json.dumps(job)
