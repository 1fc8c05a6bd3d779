"""A cron run as the run log shows it: the ``cron.runs`` entry and the ``finished`` event.

The real gateway's entry (its run-history rows and the ``cron`` event of a finished run):
``ts`` (when the run ended), ``jobId``, ``action: "finished"``, ``status`` (ok | error |
skipped), ``completionStatus`` (succeeded | failed | unknown), ``error``, ``errorReason``,
``summary``, ``runId``, ``runAtMs``, ``durationMs``, ``nextRunAtMs``, and for an agent turn
``model``, ``provider``, ``usage`` (``input_tokens``, ``output_tokens``, ``total_tokens``,
``cache_read_tokens``, ``cache_write_tokens``; only the counts the run used), ``sessionId``,
``sessionKey``; the delivery: ``delivered``, ``deliveryStatus`` (delivered | not-delivered |
unknown | not-requested), ``deliveryError``, ``deliverySuppressionReason``, and ``delivery``
(where the output was meant to go and where it went).  Fields without a value are left out.

What a run found out beyond its status lives in the run's ``detail`` (stored as JSON with its
history row, ``store.py``), under the entry's own names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openclaw_tw.agent.run import Outcome

# The detail's fields, in the order the real entry lists them.
DETAIL_FIELDS = ("completionStatus", "errorReason", "nextRunAtMs", "model", "provider", "usage",
                 "delivered", "deliveryStatus", "deliveryError", "deliverySuppressionReason",
                 "delivery", "sessionId", "sessionKey")
# A run the gateway stopped in the middle of: nobody knows whether its output went out.
INTERRUPTED_DETAIL = {"completionStatus": "failed", "delivered": False,
                      "deliveryStatus": "unknown"}


def usage_of(outcome: Outcome) -> dict[str, int] | None:
    """The token counts of an agent turn as the run log reports them; ``None`` when the
    provider reported none.  ``total_tokens`` is every bucket summed (prompt tokens not
    cached, cached ones read and written, and the output)."""
    counts = (outcome.input_tokens, outcome.output_tokens, outcome.cache_read_tokens,
              outcome.cache_write_tokens)
    if not any(counts):
        return None
    inp, out, read, write = counts
    usage = {"input_tokens": inp, "output_tokens": out, "total_tokens": sum(counts)}
    if read:
        usage["cache_read_tokens"] = read
    if write:
        usage["cache_write_tokens"] = write
    return usage


def agent_detail(outcome: Outcome) -> dict[str, Any]:
    """What an agent turn's entry says of the model it used and the tokens it took."""
    out: dict[str, Any] = {}
    if outcome.model:
        out["model"] = outcome.model
    if outcome.provider:
        out["provider"] = outcome.provider
    usage = usage_of(outcome)
    if usage is not None:
        out["usage"] = usage
    return out


def delivery_requested(delivery: Any) -> bool:
    return isinstance(delivery, dict) and delivery.get("mode", "announce") != "none"


def completion_status(job: dict[str, Any], status: str, detail: dict[str, Any]) -> str:
    """Whether the run did what the job asked, its delivery included: a failed or skipped run
    failed; a run whose required delivery did not go out (and was not held back on purpose)
    failed; a best-effort delivery does not count."""
    if status != "ok":
        return "failed"
    delivery_status = detail.get("deliveryStatus")
    required = (job.get("delivery") or {}).get("bestEffort") is not True and \
        delivery_status != "not-requested"
    if not required or delivery_status == "delivered" or (
            delivery_status == "not-delivered" and detail.get("deliverySuppressionReason")):
        return "succeeded"
    return "failed" if delivery_status == "not-delivered" else "unknown"


def delivery_detail(facts: dict[str, Any]) -> dict[str, Any]:
    """The job-state delivery facts of a run (``delivery.py``) under the entry's names."""
    out = {"delivered": facts.get("lastDelivered"),
           "deliveryStatus": facts.get("lastDeliveryStatus"),
           "deliveryError": facts.get("lastDeliveryError"),
           "deliverySuppressionReason": facts.get("deliverySuppressionReason"),
           "delivery": facts.get("_trace")}
    return {k: v for k, v in out.items() if v is not None}


def public_run_id(run: dict[str, Any]) -> bool:
    """Whether the run's id is shown: the real gateway names a run ``cron.run`` asked for
    (the id it answered), not one the schedule started."""
    return run.get("trigger") != "scheduled"


def entry(run: dict[str, Any]) -> dict[str, Any]:
    """A finished run (a history row, ``store.py``) as ``cron.runs`` lists it."""
    detail = run.get("detail") or {}
    out: dict[str, Any] = {"ts": run.get("ended_at") or run["started_at"],
                           "jobId": run["job_id"], "action": "finished",
                           "status": run["status"]}
    if detail.get("completionStatus"):
        out["completionStatus"] = detail["completionStatus"]
    if run.get("error"):
        out["error"] = run["error"]
    if detail.get("errorReason"):
        out["errorReason"] = detail["errorReason"]
    if run.get("summary"):
        out["summary"] = run["summary"]
    if public_run_id(run):
        out["runId"] = run["run_id"]
    out["runAtMs"] = run["started_at"]
    if run.get("duration_ms") is not None:
        out["durationMs"] = run["duration_ms"]
    for name in DETAIL_FIELDS[2:]:
        if detail.get(name) is not None:
            out[name] = detail[name]
    if run.get("detail") is None and run.get("session_key"):  # a row from before details
        out["sessionKey"] = run["session_key"]
    return out


def finished_event(run: dict[str, Any]) -> dict[str, Any]:
    """The ``cron`` event of a finished run: the entry's fields, without ``ts``."""
    out = entry(run)
    del out["ts"]
    return out
