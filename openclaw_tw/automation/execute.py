"""One cron run's payload, executed: a heartbeat, a system event, or an agent turn (with
its output delivered, ``delivery.py``).  The scheduler (``scheduler.py``) claims the run
before and records what this returns after."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openclaw_tw.automation import runlog
from openclaw_tw.automation.delivery import TARGET_ERROR, effective_delivery, error_reason
from openclaw_tw.automation.heartbeat import parse_duration_ms
from openclaw_tw.sessions.keys import main_key, normalize_agent_id, resolve_key

if TYPE_CHECKING:
    from openclaw_tw.automation.scheduler import Scheduler

DEFAULT_TIMEOUT_S = 3600.0  # the scheduler's own watchdog for agent turns
PREVIEW_CHARS = 200


async def execute(sched: Scheduler, job: dict[str, Any], run_id: str, facts: dict[str, Any],
                  detail: dict[str, Any]) -> tuple[str, str | None, str | None, str | None]:
    """Runs the payload: (status, error, summary, session key).  ``facts`` gathers the
    job-state facts of the run, ``detail`` what its run-log entry reports (``runlog.py``)."""
    payload = job["payload"]
    agent = effective_agent(job)
    delivery = effective_delivery(job)
    kind = payload["kind"]
    if kind == "heartbeat":  # the real gateway's words for the three outcomes
        result = await sched.heartbeat.run(agent, "interval")
        if result["status"] == "skipped":
            return "skipped", f"heartbeat skipped: {result.get('reason')}", None, main_key(agent)
        if result["status"] == "failed":
            why = result.get("preview") or result.get("reason")
            return "error", f"heartbeat failed: {why}", None, main_key(agent)
        return "ok", None, "heartbeat completed", main_key(agent)
    key = session_key(job)
    if kind == "systemEvent":
        sched.heartbeat.enqueue(key, payload["text"], f"cron:{job['id']}")
        if job.get("wakeMode") == "now":
            sched.heartbeat.request_wake(agent, f"cron:{job['id']}")
        return "ok", None, payload["text"][:PREVIEW_CHARS], key
    row = await sched.sessions.ensure(key, "cron")
    if row.label is None:  # the real gateway names an automation's session after the job
        row.label = f"Automation: {job['name']}"
    isolated = job.get("sessionTarget") == "isolated"
    if isolated:  # a fresh session (a new transcript) for every run, the key kept
        now = sched.gw.now_ms()
        row.renew(now)
        retention = session_retention_ms(sched.gw.settings.raw)
        if retention:  # earlier runs' transcripts, past cron.sessionRetention
            await sched.sessions.prune_earlier(row, now - retention)
    session_id = row.session_id
    timeout = payload.get("timeoutSeconds") or DEFAULT_TIMEOUT_S
    run = await sched.runtime.accept(row, payload["message"], f"cron-{run_id}", "agent", None,
                                     timeout_s=float(timeout), model_ref=payload.get("model"))
    outcome = await run.finished()
    detail.update(runlog.agent_detail(outcome))
    detail.update(sessionId=session_id,
                  sessionKey=f"{key}:run:{session_id}" if isolated else key)
    if outcome.status != "ok":
        facts["lastErrorReason"] = error_reason(outcome.error_kind, outcome.error_detail)
        facts["_detail"] = outcome.error_detail
        detail["errorReason"] = facts["lastErrorReason"]
        detail["deliveryStatus"] = "unknown" if runlog.delivery_requested(
            delivery) else "not-requested"
        return "error", outcome.error or f"run {outcome.status} ({outcome.stop_reason})", \
            outcome.text[:PREVIEW_CHARS] or None, key
    if sched.announcer is not None and not sched.closed:
        facts.update(await sched.announcer.deliver(delivery, outcome.text))
    elif delivery:
        facts["lastDeliveryStatus"] = "unknown"
    detail.update(runlog.delivery_detail(facts))
    summary = outcome.text[:PREVIEW_CHARS] or None
    target_error = facts.pop(TARGET_ERROR, None)
    if target_error and (delivery or {}).get("bestEffort") is not True:
        facts["_permanent"] = True  # not worth trying a one-shot job again
        return "error", target_error, summary, key
    return "ok", None, summary, key



SESSION_RETENTION_MS = 24 * 3600 * 1000  # cron.sessionRetention's default (the real one's)


def session_retention_ms(raw: dict[str, Any]) -> int:
    """``cron.sessionRetention``: how long an isolated job's earlier runs' transcripts are
    kept ("24h" by default; false or a zero duration keeps them)."""
    cron = raw.get("cron") if isinstance(raw.get("cron"), dict) else {}
    value = cron.get("sessionRetention", "24h")
    if value is False:
        return 0
    return max(0, parse_duration_ms(value, SESSION_RETENTION_MS))


def effective_agent(job: dict[str, Any]) -> str:
    return normalize_agent_id(job.get("agentId"))


def session_key(job: dict[str, Any]) -> str:
    agent = effective_agent(job)
    target = job.get("sessionTarget") or "main"
    if target == "isolated":
        return f"agent:{agent}:cron:{job['id']}"
    if target.startswith("session:"):
        return resolve_key(target[len("session:"):], agent_id=agent)
    return main_key(agent)
