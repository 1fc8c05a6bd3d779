"""What happens around a cron run: its output delivered to a channel, error backoff, stagger.

The real gateway's rules (docs ``automation/cron-jobs``), as far as this gateway has the
features:

* **Delivery** ``delivery: {mode: "announce", channel, to, accountId?, threadId?,
  bestEffort?}``: an agent turn's final text is sent to that chat through the channel
  account (``channel`` ``"last"`` or omitted picks the only configured channel).  An agent
  turn in an isolated, current or named session without a ``delivery`` announces to the
  last route (``effective_delivery``).  An empty reply or a silent one
  (``NO_REPLY``/``HEARTBEAT_OK``) is not sent (``deliverySuppressionReason``
  ``empty``/``silent``).  A target that cannot be resolved (no or an unknown channel, no
  recipient: this gateway keeps no previous route) fails the run with that error, unless the
  delivery is ``bestEffort``.  An account that is not connected is tried again (1 s, 5 s,
  15 s: nothing can have reached the recipient); a send that failed after it started is not
  replayed; either leaves the run ok and its delivery not delivered, with the error.  Mode
  ``webhook`` is not supported here and is recorded as not delivered; ``none`` delivers
  nothing (``not-requested``).  The job's state carries ``lastDelivered``,
  ``lastDeliveryStatus``, ``lastDeliveryError``.
* **Error backoff**: a recurring job's consecutive execution errors push its next run to at
  least 30 s, 60 s, 5 min, 15 min, then 60 min after the failure; a success resets it.  A
  one-shot (``at``) job whose run failed for a transient reason (rate limit, timeout, a 5xx or
  a network error) is tried again after 30 s, 60 s, 5 min; a permanent error disables it.
* **Stagger**: ``schedule.staggerMs`` spreads a cron expression's runs over that window (a
  fixed offset per job); a top-of-hour expression (minute ``0``, any hour) without one gets
  a window of 5 minutes, as the real gateway; ``staggerMs: 0`` runs exactly on time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import Logger

from openclaw_tw.automation.heartbeat import ACK_TOKENS

_log = Logger(namespace="cron")

BACKOFF_MS = (30_000, 60_000, 300_000, 900_000, 3_600_000)
AT_RETRY_MS = (30_000, 60_000, 300_000)
SEND_RETRY_S = (1.0, 5.0, 15.0)
DEFAULT_STAGGER_MS = 300_000
# The fact (delivery facts, below) of a delivery whose target could not be resolved: an
# announce that cannot reach anyone fails its run, unless the job's delivery is best-effort.
TARGET_ERROR = "_targetError"
NO_RECIPIENT = ("Target is required: delivery.to is not set and no previous recipient is "
                "known. Set delivery.to explicitly.")


# -- backoff -----------------------------------------------------------------------------------


def error_backoff_ms(consecutive_errors: int) -> int:
    """How long after the ``consecutive_errors``-th failure in a row the next run waits."""
    if consecutive_errors <= 0:
        return 0
    return BACKOFF_MS[min(consecutive_errors, len(BACKOFF_MS)) - 1]


def error_reason(kind: str | None, detail: dict[str, Any] | None) -> str:
    """A run failure as the real ``lastErrorReason``."""
    status = (detail or {}).get("httpStatus")
    if kind == "rate_limit" or status == 429:
        return "rate_limit"
    if kind == "timeout" or status == 408:
        return "timeout"
    if kind == "context_length":
        return "context_overflow"
    if status in (401, 403):
        return "auth"
    if isinstance(status, int) and status >= 500:
        return "server_error"
    return "unknown"


def transient(reason: str, detail: dict[str, Any] | None) -> bool:
    """Worth retrying a one-shot job: rate limits, timeouts, server and network failures."""
    if reason in ("rate_limit", "timeout", "server_error"):
        return True
    return reason == "unknown" and (detail or {}).get("httpStatus") is None


# -- stagger -----------------------------------------------------------------------------------


def stagger_ms(job: dict[str, Any]) -> int:
    """The fixed offset of this job's runs inside its stagger window (0: on time)."""
    schedule = job.get("schedule") or {}
    if schedule.get("kind") != "cron":
        return 0
    window = schedule.get("staggerMs")
    if window is None:
        window = DEFAULT_STAGGER_MS if top_of_hour(str(schedule.get("expr", ""))) else 0
    if not isinstance(window, int) or window <= 0:
        return 0
    digest = hashlib.sha256(str(job.get("id", "")).encode()).digest()
    return int.from_bytes(digest[:8], "big") % window


def top_of_hour(expr: str) -> bool:
    fields = expr.split()
    if len(fields) == 6:  # with seconds: the seconds must be 0 too
        if fields[0] != "0":
            return False
        fields = fields[1:]
    return len(fields) == 5 and fields[0] == "0" and fields[1] == "*"


def staggered(next_run: Callable[[dict[str, Any], int], int | None], job: dict[str, Any],
              after_ms: int) -> int | None:
    """``next_run`` of the job's schedule, shifted by its stagger offset: the first shifted
    slot strictly after ``after_ms``."""
    offset = stagger_ms(job)
    slot = next_run(job["schedule"], after_ms - offset)
    return None if slot is None else slot + offset


# -- delivery ----------------------------------------------------------------------------------


def announces_by_default(job: dict[str, Any]) -> bool:
    """An agent turn in an isolated, current or named session: the real gateway announces
    its output (to the last route) when the job names no delivery."""
    target = job.get("sessionTarget")
    return (job.get("payload") or {}).get("kind") == "agentTurn" and isinstance(target, str) \
        and (target in ("isolated", "current") or target.startswith("session:"))


def effective_delivery(job: dict[str, Any]) -> dict[str, Any] | None:
    """The delivery a run of the job makes: its own, else the default one."""
    delivery = job.get("delivery")
    if isinstance(delivery, dict):
        return delivery
    return {"mode": "announce"} if announces_by_default(job) else None


def delivery_preview(job: dict[str, Any], accounts: dict[str, Any]) -> dict[str, str]:
    """Where a run of the job would deliver, resolved without sending, in the shape of the
    real gateway's ``deliveryPreview`` ({label, detail}; ``cron.list``, ``cron.add``): the
    same resolution a run makes (``Announcer``), so what it says fails, fails."""
    plan = effective_delivery(job) or {"mode": "none"}
    mode = plan.get("mode", "announce")
    channel = plan.get("channel") if plan.get("channel") != "last" else None
    to = plan.get("to") if isinstance(plan.get("to"), str) else ""
    if mode == "none" and not channel and not to.strip():
        return {"label": "not requested", "detail": "not requested"}
    if mode == "webhook":
        return {"label": f"webhook:{to}" if to else "webhook",
                "detail": f"delivery mode {mode!r} is not supported"}
    found, _, why = route({**plan, "mode": "announce"}, accounts)
    requested = channel or "last"
    if why is not None:
        where = requested if not to else f"{requested}:{to}"
        detail = f"last -> no route, will fail-closed: {why}" if requested == "last" else why
        return {"label": f"{mode} -> {where}", "detail": detail}
    return {"label": f"{mode} -> {found}:{to}",
            "detail": "explicit" if channel else "the only configured channel"}


def route(plan: dict[str, Any], accounts: dict[str, Any]
          ) -> tuple[str | None, str | None, str | None]:
    """The channel and account an announce goes through, or why it has nowhere to go (no
    such channel, or no recipient: no route to a previous one is kept)."""
    if plan.get("mode", "announce") != "announce":
        return None, None, f"delivery mode {plan.get('mode')!r} is not supported"
    channel = plan.get("channel")
    if channel in (None, "last"):
        if len(accounts) != 1:
            return None, None, (f"Channel is required: {len(accounts) or 'no'} channels "
                                "are configured. Set delivery.channel explicitly.")
        channel = next(iter(accounts))
    if channel not in accounts:
        return None, None, f"unknown channel: {channel}"
    account_id = plan.get("accountId") or next(iter(accounts[channel]))
    to = plan.get("to")
    if not isinstance(to, str) or not to.strip():
        return channel, account_id, NO_RECIPIENT
    return channel, account_id, None


class Announcer:
    """Sends a finished run's text to the chat its ``delivery`` names."""

    def __init__(self, channels: Any, accounts: Callable[[], dict[str, Any]],
                 clock: IReactorTime) -> None:
        self.channels = channels  # channels.manager.ChannelManager
        self.accounts = accounts  # the configured accounts, by channel then account id
        self.clock = clock

    async def deliver(self, delivery: Any, text: str) -> dict[str, Any]:
        """The job state's delivery facts for this run, and (``_trace``) where its output was
        meant to go and where it went, as the run log records it."""
        plan = delivery if isinstance(delivery, dict) else {"mode": "none"}
        facts, resolved = await self._deliver(plan, text)
        facts["_trace"] = delivery_trace(plan, resolved, facts.get("lastDelivered") is True)
        return facts

    async def _deliver(self, plan: dict[str, Any], text: str
                       ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        mode = plan.get("mode", "announce")
        if mode == "none":
            return {"lastDelivered": False, "lastDeliveryStatus": "not-requested"}, None
        to = plan.get("to") if isinstance(plan.get("to"), str) else ""
        channel, account_id, why = route(plan, self.accounts())
        resolved = _resolved(plan, channel, account_id, why)
        body = text.strip()
        if not body or body.upper() in ACK_TOKENS:
            return {"lastDelivered": False, "lastDeliveryStatus": "not-delivered",
                    "deliverySuppressionReason": "empty" if not body else "silent"}, resolved
        if why is not None or channel is None or account_id is None:
            facts = self._failed(why or "no delivery target")
            if mode == "announce":  # the target itself is wrong: the run failed
                facts[TARGET_ERROR] = facts["lastDeliveryError"]
            return facts, resolved
        thread = plan.get("threadId")
        for wait_s in (*SEND_RETRY_S, None):
            svc = self.channels.account(channel, account_id) if self.channels else None
            if svc is not None and svc.connected:
                break
            if wait_s is None:
                return self._failed(f"{channel}:{account_id} is not connected"), resolved
            await deferLater(self.clock, wait_s, lambda: None)
        try:
            await _as_deferred(svc.deliver(to.strip(), text, None,
                                           None if thread is None else str(thread)))
        except Exception as e:  # noqa: BLE001 - recorded on the job, never raised
            _log.warn("cron delivery to {channel}:{account} failed: {error}",
                      channel=channel, account=account_id, error=str(e))
            return self._failed(str(e) or type(e).__name__), resolved
        return {"lastDelivered": True, "lastDeliveryStatus": "delivered"}, resolved

    @staticmethod
    def _failed(why: str) -> dict[str, Any]:
        _log.warn("cron delivery not made: {why}", why=why)
        return {"lastDelivered": False, "lastDeliveryStatus": "not-delivered",
                "lastDeliveryError": why}


def _target(channel: Any, to: Any, account_id: Any, thread: Any, source: str
            ) -> dict[str, Any]:
    out: dict[str, Any] = {"channel": channel} if channel else {}
    out["to"] = to
    if account_id:
        out["accountId"] = account_id
    if thread is not None:
        out["threadId"] = thread
    out["source"] = source
    return out


def _source(plan: dict[str, Any]) -> str:
    return "last" if plan.get("channel") in (None, "last") else "explicit"


def _resolved(plan: dict[str, Any], channel: str | None, account_id: str | None,
              why: str | None) -> dict[str, Any]:
    to = plan.get("to")
    target = _target(channel, to.strip() if isinstance(to, str) else None,
                     account_id, plan.get("threadId"), _source(plan))
    return {"ok": True, **target} if why is None else {"ok": False, **target, "error": why}


def delivery_trace(plan: dict[str, Any], resolved: dict[str, Any] | None,
                   delivered: bool) -> dict[str, Any]:
    """The run log's ``delivery``: the target the job names (``intended``), the one it
    resolved to (``resolved``, when a delivery was attempted), and whether it went out."""
    out: dict[str, Any] = {"intended": _target(
        plan.get("channel") or "last", plan.get("to"), plan.get("accountId"),
        plan.get("threadId"), _source(plan))}
    if resolved is not None:
        out["resolved"] = resolved
    out["fallbackUsed"] = False
    out["delivered"] = delivered
    return out


def _as_deferred(value: Any) -> Deferred[Any]:
    if isinstance(value, Deferred):
        return value
    d: Deferred[Any] = Deferred()
    d.callback(value)
    return d
