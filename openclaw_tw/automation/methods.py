"""``cron.*`` methods (§6.7) over the scheduler."""

from __future__ import annotations

import copy
import hashlib
import uuid
from typing import TYPE_CHECKING, Any

from openclaw_tw.automation import schedule as sched
from openclaw_tw.automation.scheduler import Scheduler, effective_agent, run_row
from openclaw_tw.errors import UNAVAILABLE, GatewayError, invalid_request
from openclaw_tw.protocol.dispatch import CallContext, MethodTable
from openclaw_tw.protocol.schema import AnyValue, Bool, Int, Obj, Str

if TYPE_CHECKING:
    from openclaw_tw.hub.gateway import Gateway

_S1 = Str(min_len=1)
_ID = {"id": _S1, "jobId": _S1}
LIST_PARAMS = Obj(optional={"includeDisabled": Bool(), "limit": Int(1, 200), "offset": Int(0),
                            "query": Str(), "enabled": AnyValue(), "agentId": _S1},
                  closed=False)
ID_PARAMS = Obj(optional=_ID)
RUN_PARAMS = Obj(optional={**_ID, "mode": Str(), "expectedProcessInstanceId": _S1})
RUNS_PARAMS = Obj(optional={**_ID, "runId": _S1, "limit": Int(1, 200), "offset": Int(0)},
                  closed=False)
ADD_PARAMS = Obj(required={"name": _S1, "schedule": AnyValue(), "sessionTarget": _S1,
                           "wakeMode": _S1, "payload": AnyValue()}, closed=False)
UPDATE_PARAMS = Obj(required={"patch": AnyValue()}, optional=_ID)
WAKE_MODES = ("now", "next-heartbeat")
PAYLOADS = ("systemEvent", "agentTurn")
_ADD_FIELDS = ("name", "description", "agentId", "sessionKey", "enabled", "deleteAfterRun",
               "schedule", "sessionTarget", "wakeMode", "payload", "delivery", "displayName")


def public(job: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in job.items() if v is not None}
    out["state"] = {k: v for k, v in job.get("state", {}).items() if v is not None}
    if job["state"].get("nextRunAtMs") is not None:
        out["nextRunAtMs"] = job["state"]["nextRunAtMs"]
    for key in ("lastRunAtMs", "lastRunStatus"):
        if job["state"].get(key) is not None:
            out[key] = job["state"][key]
    out["effectiveAgentId"] = effective_agent(job)
    return out


def snapshot_revision(jobs: list[dict[str, Any]]) -> str:
    """Names one inventory state, so a paging client can tell when it changed."""
    h = hashlib.sha256()
    for job in sorted(jobs, key=lambda j: j["id"]):
        h.update(f"{job['id']}:{job['updatedAtMs']}:{job.get('enabled')};".encode())
    return "sha256:" + h.hexdigest()[:32]


def validate_job(job: dict[str, Any], now: int) -> None:
    try:
        job["schedule"] = sched.normalize(job.get("schedule"), now)
    except sched.ScheduleError as e:
        raise invalid_request(f"invalid schedule: {e}") from None
    payload = job.get("payload")
    if not isinstance(payload, dict) or payload.get("kind") not in PAYLOADS:
        raise invalid_request('payload.kind must be "systemEvent" or "agentTurn"')
    field = "text" if payload["kind"] == "systemEvent" else "message"
    if not isinstance(payload.get(field), str) or not payload[field].strip():
        raise invalid_request(f"payload.{field} required")
    target = job.get("sessionTarget")
    if not isinstance(target, str) or not (target in ("main", "isolated", "current") or
                                           (target.startswith("session:") and len(target) > 8)):
        raise invalid_request('sessionTarget must be "main", "isolated", "current" or '
                              '"session:<key>"')
    if target == "isolated" and payload["kind"] == "systemEvent":
        raise GatewayError(UNAVAILABLE, 'Error: isolated cron jobs require payload.kind='
                           '"agentTurn", "command", or "script"; script payloads do not '
                           'support current/session targets')
    if job.get("wakeMode") not in WAKE_MODES:
        raise invalid_request('wakeMode must be "now" or "next-heartbeat"')


def register(table: MethodTable, gw: Gateway, scheduler: Scheduler) -> None:
    def find(params: dict[str, Any]) -> dict[str, Any]:
        job_id = params.get("id") or params.get("jobId")
        if not job_id:
            raise invalid_request("id required")
        job = scheduler.jobs.get(job_id)
        if job is None:
            raise invalid_request(f"cron job not found: {job_id}",
                                  {"code": "CRON_JOB_NOT_FOUND", "jobId": job_id})
        return job

    def cron_list(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        jobs = list(scheduler.jobs.values())
        enabled = params.get("enabled")
        if enabled in (True, False):
            jobs = [j for j in jobs if bool(j.get("enabled")) is enabled]
        elif not params.get("includeDisabled") and enabled != "all":
            jobs = [j for j in jobs if j.get("enabled")]
        if params.get("agentId"):
            jobs = [j for j in jobs if effective_agent(j) == params["agentId"]]
        query = (params.get("query") or "").strip().lower()
        if query:
            jobs = [j for j in jobs if query in j["name"].lower() or
                    query in (j.get("description") or "").lower()]
        jobs.sort(key=lambda j: (j["state"].get("nextRunAtMs") or 2**62, j["createdAtMs"]))
        offset, limit = params.get("offset", 0), params.get("limit", 200)
        page = jobs[offset:offset + limit]
        more = offset + len(page) < len(jobs)
        return {"jobs": [public(j) for j in page], "total": len(jobs), "offset": offset,
                "limit": limit, "hasMore": more,
                "nextOffset": offset + len(page) if more else None,
                "snapshotRevision": snapshot_revision(jobs)}

    def cron_status(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        path = gw.display_path(scheduler.store.db.path)
        return {"enabled": scheduler.enabled, "triggersEnabled": scheduler.enabled,
                "storePath": path, "storage": "sqlite", "sqlitePath": path,
                "jobs": len(scheduler.jobs), "nextWakeAtMs": scheduler.next_wake_ms()}

    def cron_get(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        return public(find(params))

    async def cron_runs(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        job_id = params.get("id") or params.get("jobId")
        limit, offset = params.get("limit", 50), params.get("offset", 0)
        total, rows = await scheduler.store.runs(job_id, params.get("runId"), limit, offset)
        entries = [run_row(r) for r in rows]
        for e in entries:
            job = scheduler.jobs.get(e["jobId"])
            if job is not None:
                e["jobName"] = job["name"]
        return {"entries": entries, "total": total, "offset": offset, "limit": limit,
                "hasMore": offset + len(entries) < total,
                "nextOffset": offset + len(entries) if offset + len(entries) < total else None}

    async def cron_add(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        now = gw.now_ms()
        job: dict[str, Any] = {k: copy.deepcopy(params[k]) for k in _ADD_FIELDS if k in params}
        if job.get("agentId") is None:
            job.pop("agentId", None)
        validate_job(job, now)
        job.update(id=str(uuid.uuid4()), enabled=params.get("enabled", True),
                   createdAtMs=now, updatedAtMs=now)
        if job["schedule"]["kind"] == "at" and "deleteAfterRun" not in job:
            job["deleteAfterRun"] = True
        job["state"] = {"nextRunAtMs": sched.first_run(job["schedule"], now)
                        if job["enabled"] else None}
        await scheduler.put(job, "added")
        return public(job)

    async def cron_update(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        job = find(params)
        patch = params["patch"]
        if not isinstance(patch, dict):
            raise invalid_request("patch must be an object")
        if job.get("declarationKey"):
            allowed = {"enabled"}
            if set(patch) - allowed:
                raise invalid_request("gateway-managed jobs accept only enabled")
        now = gw.now_ms()
        updated = copy.deepcopy(job)
        for key, value in patch.items():
            if key == "payload" and isinstance(value, dict) and \
                    value.get("kind") == updated["payload"].get("kind"):
                updated["payload"].update({k: v for k, v in value.items() if v is not None})
            elif value is None:
                updated.pop(key, None)
            elif key in _ADD_FIELDS:
                updated[key] = copy.deepcopy(value)
        if not updated.get("declarationKey"):
            validate_job(updated, now)
        updated["updatedAtMs"] = now
        state = updated["state"]
        if "schedule" in patch or ("enabled" in patch and patch["enabled"]):
            state["nextRunAtMs"] = sched.first_run(updated["schedule"], now) \
                if updated["enabled"] else None
        if not updated["enabled"]:
            state["nextRunAtMs"] = None
        await scheduler.put(updated, "updated")
        return public(updated)

    async def cron_remove(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        job_id = params.get("id") or params.get("jobId")
        job = scheduler.jobs.get(job_id or "")
        if job is None:
            return {"ok": True, "removed": False}
        if job.get("declarationKey"):
            raise invalid_request("gateway-managed jobs cannot be removed; disable them")
        await scheduler.remove(job["id"])
        return {"ok": True, "removed": True}

    def cron_run(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        job = find(params)
        mode = params.get("mode", "force")
        if mode not in ("due", "force", "if-enabled"):
            raise invalid_request('mode must be "due", "force" or "if-enabled"')
        if job["id"] in scheduler.in_flight:
            return {"ok": True, "ran": False, "enqueued": False, "reason": "already-running"}
        nxt = job["state"].get("nextRunAtMs")
        if mode == "if-enabled" and not job.get("enabled"):
            return {"ok": True, "ran": False, "enqueued": False, "reason": "disabled"}
        if mode == "due":
            if not job.get("enabled") or nxt is None or nxt > gw.now_ms():
                return {"ok": True, "ran": False, "enqueued": False, "reason": "not-due"}
            scheduler.start_run(job, "due")
        else:
            scheduler.start_run(job, "manual")
        return {"ok": True, "ran": True, "enqueued": True}

    table.add("cron.list", cron_list, LIST_PARAMS)
    table.add("cron.status", cron_status, Obj(closed=False))
    table.add("cron.get", cron_get, ID_PARAMS)
    table.add("cron.runs", cron_runs, RUNS_PARAMS)
    table.add("cron.add", cron_add, ADD_PARAMS)
    table.add("cron.update", cron_update, UPDATE_PARAMS)
    table.add("cron.remove", cron_remove, ID_PARAMS)
    table.add("cron.run", cron_run, RUN_PARAMS)
