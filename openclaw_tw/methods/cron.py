"""``cron.*`` methods (§6.7) over the scheduler (``automation/scheduler.py``)."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from openclaw_tw.automation import history
from openclaw_tw.automation import schedule as sched
from openclaw_tw.automation.delivery import announces_by_default, delivery_preview
from openclaw_tw.automation.runlog import entry as run_entry
from openclaw_tw.automation.scheduler import Scheduler, effective_agent
from openclaw_tw.errors import UNAVAILABLE, GatewayError, clip, invalid_request
from openclaw_tw.protocol.dispatch import CallContext, rpc
from openclaw_tw.protocol.schema import (
    EMPTY,
    AnyValue,
    Arr,
    Bool,
    Int,
    Nullable,
    Obj,
    OneOf,
    Str,
    closed,
)
from openclaw_tw.sessions.keys import normalize_agent_id

_S1 = Str(min_len=1)
_ID = {"id": _S1, "jobId": _S1}
# The reference's field names; the ones we act on typed, the rest accepted (closed objects).
LIST_PARAMS = closed(optional={
    "includeDisabled": Bool(), "limit": Int(1, 200), "offset": Int(0), "query": Str(),
    "enabled": OneOf(Bool(), Str(enum=["all", "enabled", "disabled"])), "agentId": _S1,
    "includeDeliveryPreviews": Bool()},
    accepted="sessionKey sessionAgentId scheduleKind lastRunStatus trigger sortBy sortDir "
             "compact")
ID_PARAMS = Obj(optional=_ID)
STATUS_PARAMS = EMPTY
RUN_PARAMS = Obj(optional={**_ID, "mode": Str(enum=["due", "force", "if-enabled"]),
                           "expectedProcessInstanceId": _S1})
_RUN_LOG_ID = Str(min_len=1, pattern=r"^[^/\\]+$")
RUNS_PARAMS = closed(optional={
    "agentId": _S1, "scope": Str(enum=["job", "all"]), "id": _RUN_LOG_ID, "jobId": _RUN_LOG_ID,
    "runId": _S1, "limit": Int(1, history.MAX_LIMIT), "offset": Int(0),
    "statuses": Arr(Str(enum=history.RUN_STATUSES), max_items=3, min_items=1),
    "status": Str(enum=["all", *history.RUN_STATUSES]),
    "deliveryStatuses": Arr(Str(enum=history.DELIVERY_STATUSES), max_items=4, min_items=1),
    "deliveryStatus": Str(enum=history.DELIVERY_STATUSES), "query": Str(),
    "sortDir": Str(enum=["asc", "desc"])})
# schedule, payload and sessionTarget are checked by ``validate_job`` (its messages); every
# value is inside the params bounds (depth, items) before it is stored.
ADD_PARAMS = closed(
    {"name": _S1, "schedule": AnyValue(), "sessionTarget": _S1, "wakeMode": _S1,
     "payload": AnyValue()},
    {"agentId": Nullable(_S1), "sessionKey": Nullable(_S1), "description": Str(),
     "enabled": Bool(), "deleteAfterRun": Bool(), "displayName": Str(min_len=1, max_len=200)},
    accepted="declarationKey owner pacing trigger delivery failureAlert")
UPDATE_PARAMS = Obj(required={"patch": AnyValue()},
                    optional={**_ID, "expectedConfigRevision": Str(1, 128)})
WAKE_MODES = ("now", "next-heartbeat")
PAYLOADS = ("systemEvent", "agentTurn")
_ADD_FIELDS = ("name", "description", "agentId", "sessionKey", "enabled", "deleteAfterRun",
               "schedule", "sessionTarget", "wakeMode", "payload", "delivery", "displayName")


# What a job's configRevision does not cover: its run state, the on/off switch and the clocks
# (the real gateway keeps the revision across enable/disable).
_NOT_DEFINITION = frozenset({"state", "enabled", "createdAtMs", "updatedAtMs"})


def config_revision(job: dict[str, Any]) -> str:
    """Names one version of a job's definition: the Control UI sends it back as
    ``cron.update`` ``expectedConfigRevision`` and refuses to edit a job without one."""
    definition = {k: v for k, v in job.items() if k not in _NOT_DEFINITION and v is not None}
    digest = hashlib.sha256(json.dumps(definition, sort_keys=True, separators=(",", ":"),
                                       ensure_ascii=False).encode("utf-8")).digest()
    return "sha256:" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def public(job: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in job.items() if v is not None}
    out["configRevision"] = config_revision(job)
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


def _job_id(params: dict[str, Any]) -> str | None:
    """The job a call names (``id``, else the older ``jobId``), trimmed; ``""`` when blank."""
    value = params.get("id") if params.get("id") is not None else params.get("jobId")
    return value.strip() if isinstance(value, str) else None


def job_not_found(job_id: str, wire: bool = False) -> GatewayError:
    """The real gateway's answer for a job id it does not have (``cron.get`` keeps the older
    wording of its message)."""
    quoted = clip(job_id)
    head = "cron job not found" if wire else "Automation not found"
    return invalid_request(
        f"{head}: {quoted}. List automations and retry with a current job id. For "
        "cross-session management, use a fresh authenticated configured channel owner or "
        "Control UI administrator turn or the Automations page.",
        {"code": "CRON_JOB_NOT_FOUND", "jobId": quoted})


def validate_job(job: dict[str, Any], now: int, method: str = "cron.add") -> None:
    """The real gateway's checks of a job's definition (its messages, its codes)."""
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
    if target == "main" and payload["kind"] != "systemEvent":
        raise invalid_request(f'invalid {method} params: main cron jobs require '
                              'payload.kind="systemEvent" or "script"')
    if target != "main" and payload["kind"] == "systemEvent":  # isolated, current, session:
        raise GatewayError(UNAVAILABLE, 'Error: isolated cron jobs require payload.kind='
                           '"agentTurn", "command", or "script"; script payloads do not '
                           'support current/session targets')
    if job.get("wakeMode") not in WAKE_MODES:
        raise invalid_request('wakeMode must be "now" or "next-heartbeat"')
    delivery = job.get("delivery")
    if target == "main" and isinstance(delivery, dict) and \
            delivery.get("mode", "announce") == "announce":
        raise invalid_request(f"invalid {method} params: cron channel delivery config is only "
                              'supported for sessionTarget="isolated"')


class CronMethods:
    """cron.list/status/get/runs/add/update/remove/run over the scheduler's jobs and runs."""

    def __init__(self, scheduler: Scheduler, now_ms: Callable[[], int],
                 display_path: Callable[[Path], str], process_id: str) -> None:
        self._scheduler = scheduler
        self._now_ms = now_ms
        self._display_path = display_path
        self._process_id = process_id  # this gateway process (system.info's too)

    def _find(self, params: dict[str, Any], method: str, wire: bool = False
              ) -> dict[str, Any]:
        job_id = _job_id(params)
        if not job_id:
            raise invalid_request(f"invalid {method} params: missing id")
        job = self._scheduler.jobs.get(job_id)
        if job is None:
            raise job_not_found(job_id, wire)
        return job

    @rpc("cron.list", LIST_PARAMS)
    def cron_list(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        jobs = list(self._scheduler.jobs.values())
        enabled = {"enabled": True, "disabled": False}.get(params.get("enabled"),
                                                          params.get("enabled"))
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
        out = {"jobs": [public(j) for j in page], "total": len(jobs), "offset": offset,
               "limit": limit, "hasMore": more,
               "nextOffset": offset + len(page) if more else None,
               "snapshotRevision": snapshot_revision(jobs)}
        if params.get("compact") is not True and params.get("includeDeliveryPreviews", True):
            accounts = self._accounts()
            out["deliveryPreviews"] = {j["id"]: delivery_preview(j, accounts) for j in page}
        return out

    def _accounts(self) -> dict[str, Any]:
        announcer = self._scheduler.announcer
        return announcer.accounts() if announcer is not None else {}

    @rpc("cron.status", STATUS_PARAMS)
    def cron_status(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        scheduler = self._scheduler
        path = self._display_path(scheduler.store.db.path)
        return {"enabled": scheduler.enabled, "triggersEnabled": scheduler.enabled,
                "storePath": path, "storage": "sqlite", "sqlitePath": path,
                "jobs": len(scheduler.jobs), "nextWakeAtMs": scheduler.next_wake_ms()}

    @rpc("cron.get", ID_PARAMS)
    def cron_get(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        return public(self._find(params, "cron.get", wire=True))

    @rpc("cron.runs", RUNS_PARAMS)
    async def cron_runs(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        """One page of the run history (``automation/history.py``): the runs of one job
        (``scope: "job"``, the default with an id) or of every job (``scope: "all"``, where an
        id is not read), ``{entries, total, offset, limit, hasMore, nextOffset}``."""
        jobs = self._scheduler.jobs
        agent = normalize_agent_id(params["agentId"]) if params.get("agentId") else None
        selected = "id" in params or "jobId" in params
        job_id = _job_id(params) if params.get("scope", "job" if selected else "all") == \
            "job" else None
        if job_id is None and params.get("scope") == "job" or job_id == "":
            raise invalid_request("invalid cron.runs params: missing id")
        if job_id is None:
            names = {j["id"]: j["name"] for j in jobs.values()
                     if agent is None or effective_agent(j) == agent}
        else:
            job = jobs.get(job_id)
            if job is not None and agent is not None and effective_agent(job) != agent:
                raise job_not_found(job_id)
            names = {job_id: job["name"]} if job is not None else {}
        limit = params.get("limit", history.DEFAULT_LIMIT)
        q = history.RunQuery(
            job_id=job_id, agent_id=agent if job_id is None else None,
            run_id=(params.get("runId") or "").strip() or None,
            statuses=history.status_filter(params.get("statuses"), params.get("status"),
                                           history.RUN_STATUSES),
            delivery_statuses=history.status_filter(
                params.get("deliveryStatuses"), params.get("deliveryStatus"),
                history.DELIVERY_STATUSES),
            query=(params.get("query") or "").strip().lower(), job_names=names,
            ascending=params.get("sortDir") == "asc", limit=limit,
            offset=params.get("offset", 0))
        total, rows, exists = await self._scheduler.store.page(
            q, known_job=job_id is None or job_id in jobs)
        if not exists:
            raise job_not_found(job_id or "")
        entries = [run_entry(r) for r in rows]
        for e in entries:
            if e["jobId"] in names:
                e["jobName"] = names[e["jobId"]]
        offset = min(total, q.offset)
        after = offset + len(entries)
        return {"entries": entries, "total": total, "offset": offset, "limit": limit,
                "hasMore": after < total, "nextOffset": after if after < total else None}

    @rpc("cron.add", ADD_PARAMS)
    async def cron_add(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        now = self._now_ms()
        job: dict[str, Any] = {k: copy.deepcopy(params[k]) for k in _ADD_FIELDS if k in params}
        if job.get("agentId") is None:
            job.pop("agentId", None)
        validate_job(job, now)
        if "delivery" not in job and announces_by_default(job):
            job["delivery"] = {"mode": "announce"}  # to the last route, as the real gateway
        job.update(id=str(uuid.uuid4()), enabled=params.get("enabled", True),
                   createdAtMs=now, updatedAtMs=now)
        if job["schedule"]["kind"] == "at" and "deleteAfterRun" not in job:
            job["deleteAfterRun"] = True
        job["state"] = {"nextRunAtMs": sched.first_run(job["schedule"], now)
                        if job["enabled"] else None}
        preview = delivery_preview(job, self._accounts())
        await self._scheduler.put(job, "added")
        return {**public(job), "deliveryPreview": preview}

    @rpc("cron.update", UPDATE_PARAMS)
    async def cron_update(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        job = self._find(params, "cron.update")
        patch = params["patch"]
        if not isinstance(patch, dict):
            raise invalid_request("patch must be an object")
        expected = params.get("expectedConfigRevision")
        if expected is not None and expected != config_revision(job):
            raise invalid_request(
                "cron job definition no longer matches the loaded version; review the latest "
                "version before retrying",
                {"code": "CRON_JOB_CHANGED", "expectedConfigRevision": expected,
                 "actualConfigRevision": config_revision(job)})
        if job.get("declarationKey"):
            allowed = {"enabled"}
            if set(patch) - allowed:
                raise invalid_request("gateway-managed jobs accept only enabled")
        now = self._now_ms()
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
            validate_job(updated, now, "cron.update")
        updated["updatedAtMs"] = now
        state = updated["state"]
        if "schedule" in patch or ("enabled" in patch and patch["enabled"]):
            state["nextRunAtMs"] = sched.first_run(updated["schedule"], now) \
                if updated["enabled"] else None
        if not updated["enabled"]:
            state["nextRunAtMs"] = None
        await self._scheduler.put(updated, "updated")
        return public(updated)

    @rpc("cron.remove", ID_PARAMS)
    async def cron_remove(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        job = self._find(params, "cron.remove")
        if job.get("declarationKey"):
            raise invalid_request("gateway-managed jobs cannot be removed; disable them")
        await self._scheduler.remove(job["id"])
        return {"ok": True, "removed": True}

    @rpc("cron.run", RUN_PARAMS)
    def cron_run(self, ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        """Enqueue a run, as the real gateway: ``{ok, enqueued, runId, processInstanceId}``
        (the run log's entry and the ``cron`` events carry that ``runId``), or ``{ok, ran:
        false, reason, processInstanceId}`` when it does not run.  A client that read
        ``processInstanceId`` before (``expectedProcessInstanceId``) is refused once this
        gateway is another process."""
        scheduler = self._scheduler
        job = self._find(params, "cron.run")
        expected = params.get("expectedProcessInstanceId")
        if expected and expected != self._process_id:
            raise invalid_request("invalid cron.run params: Gateway process changed after "
                                  "preflight")
        mode = params.get("mode", "force")
        nxt = job["state"].get("nextRunAtMs")
        reason = None
        if mode == "if-enabled" and not job.get("enabled"):
            reason = "disabled"
        elif job["id"] in scheduler.in_flight:
            reason = "already-running"
        elif mode == "due" and (not job.get("enabled") or nxt is None or nxt > self._now_ms()):
            reason = "not-due"
        if reason is not None:
            return {"ok": True, "ran": False, "reason": reason,
                    "processInstanceId": self._process_id}
        trigger = "due" if mode == "due" else "manual"
        run_id = scheduler.new_run_id(job, trigger)
        scheduler.start_run(job, trigger, run_id)
        return {"ok": True, "enqueued": True, "runId": run_id,
                "processInstanceId": self._process_id}
