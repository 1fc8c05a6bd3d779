"""The heartbeat: a periodic main-session agent turn, system events and wakes.

The periodic turn is the system-owned cron job ``heartbeat:<agentId>`` (see scheduler.py); this
module runs one turn.  The user message is the configured prompt (default: the documented
prompt, ``docs/gateway/heartbeat.md``), preceded by the queued system events for that agent:
events queued by ``wake``, by ``systemEvent`` cron jobs, and by ``POST /hooks/wake`` (the hooks
queue is drained here).  Each turn ends in a ``heartbeat`` event ``{ts, status, reason?,
preview?, indicatorType?, silent?, durationMs}`` and becomes ``last-heartbeat``.

Delivery follows the real ``heartbeat.target`` rules (``delivery_target``): ``none`` (or a
target that names no chat channel) is ``target-none``; unset, ``owner`` and ``last`` have no route
(we keep no last route and resolve no owner), ``no-route``; a chat channel without ``to``, or one
this gateway has no configured account for (the real gateway without that channel's plugin), is
``no-target``; an ``accountId`` the channel does not have is ``unknown-account``.  An interval
turn with no route and no queued events is skipped before the model is called; any other turn
runs.  An alert with a route is sent through the cron announcer (delivery.py) and reported
``sent`` with ``to``/``channel``/``preview``; a send that fails is ``failed`` with the error as
its reason; the same alert text sent again within 24 h is ``skipped``/``duplicate`` (kept in
memory here).  An alert with no route is ``skipped`` with the reason.  Acknowledgments are never
sent (``showOk`` defaults to off).

Event-driven wakes (``wake`` mode ``now``, ``systemEvent`` jobs with ``wakeMode: now``) are rate
limited: at least 30 s between event-driven turns, and after 5 in 60 s the next one waits until
the oldest leaves the window (the flood guard).
"""

from __future__ import annotations

import re
import uuid
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import ensureDeferred
from twisted.logger import Logger

from openclaw_tw.automation.heartbeat_ack import ACK_MAX_CHARS, classify
from openclaw_tw.sessions.keys import agent_of, main_key, normalize_agent_id

if TYPE_CHECKING:
    from openclaw_tw.agent.runtime import AgentRuntime
    from openclaw_tw.automation.delivery import Announcer
    from openclaw_tw.hub.gateway import Gateway
    from openclaw_tw.sessions.store import SessionStore

_log = Logger(namespace="heartbeat")

DEFAULT_EVERY_MS = 30 * 60 * 1000
DEFAULT_PROMPT = (
    "Follow the heartbeat monitor scratch context when provided. Recurring tasks are "
    "automations; create or change their schedules with the automations tool, not heartbeat "
    "scratch. Do not infer or repeat old tasks from prior chats. If nothing needs attention, "
    "reply NO_REPLY.")
ACK_TOKENS = ("NO_REPLY", "HEARTBEAT_OK")
DUPLICATE_WINDOW_MS = 24 * 3_600_000
EVENT_MIN_GAP_MS = 30_000
FLOOD_WINDOW_MS = 60_000
FLOOD_MAX = 5
MAX_QUEUED = 100
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", re.I)
_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_duration_ms(value: Any, default: int) -> int:
    """``"30m"``/``"1h"``/``"0m"``/ms number -> ms (0 disables); invalid -> ``default``."""
    if isinstance(value, bool) or value is None:
        return default
    if isinstance(value, int | float):
        return int(value)
    m = _DURATION.match(str(value))
    if not m:
        return default
    return int(float(m.group(1)) * _UNITS[(m.group(2) or "m").lower()])


def heartbeat_config(raw: dict[str, Any], agent_id: str) -> dict[str, Any]:
    """``agents.defaults.heartbeat`` merged with the agent's own ``heartbeat`` block."""
    agents = raw.get("agents") if isinstance(raw.get("agents"), dict) else {}
    merged: dict[str, Any] = {}
    defaults = agents.get("defaults") if isinstance(agents.get("defaults"), dict) else {}
    if isinstance(defaults.get("heartbeat"), dict):
        merged.update(defaults["heartbeat"])
    for spec in agents.get("list") or []:
        if isinstance(spec, dict) and normalize_agent_id(spec.get("id")) == agent_id and \
                isinstance(spec.get("heartbeat"), dict):
            merged.update(spec["heartbeat"])
    every = merged.get("every") if isinstance(merged.get("every"), str) else None
    return {"everyMs": parse_duration_ms(merged.get("every"), DEFAULT_EVERY_MS),
            "every": every or "30m",  # as configured: status shows "1h", not "60m"
            "prompt": merged.get("prompt") if isinstance(merged.get("prompt"), str)
            and merged.get("prompt").strip() else DEFAULT_PROMPT,
            "timeoutSeconds": merged.get("timeoutSeconds"),
            "target": merged.get("target") if isinstance(merged.get("target"), str) else None,
            "to": merged.get("to") if isinstance(merged.get("to"), str) else None,
            "accountId": merged.get("accountId") if isinstance(merged.get("accountId"), str)
            else None}


def heartbeat_summary(raw: dict[str, Any], agent_id: str) -> dict[str, Any]:
    """An agent's heartbeat as ``health`` shows it (the real summary projection: the interval
    as configured or ``disabled``, the default target ``owner``)."""
    cfg = heartbeat_config(raw, agent_id)
    every_ms = cfg["everyMs"] or None
    return {"enabled": every_ms is not None, "every": cfg["every"] if every_ms else "disabled",
            "everyMs": every_ms, "prompt": cfg["prompt"], "target": cfg["target"] or "owner",
            "ackMaxChars": ACK_MAX_CHARS}


# The chat channels the real gateway can deliver to (its bundled channel ids, and aliases).
CHAT_CHANNELS = frozenset((
    "a2a", "buzz", "clickclack", "discord", "feishu", "googlechat", "imessage", "irc", "line",
    "matrix", "mattermost", "msteams", "nextcloud-talk", "nostr", "raft", "reef", "signal",
    "slack", "sms", "synology-chat", "telegram", "tlon", "twitch", "whatsapp", "zalo",
    "zalouser"))
CHANNEL_ALIASES = {"lark": "feishu", "gchat": "googlechat", "google-chat": "googlechat",
                   "imsg": "imessage", "internet-relay-chat": "irc", "teams": "msteams",
                   "nc": "nextcloud-talk", "nc-talk": "nextcloud-talk", "twitch-chat": "twitch",
                   "zl": "zalo", "zlu": "zalouser"}
ROUTE_MESSAGES = {
    "target-none": "Heartbeat delivery is disabled by configuration (target: none).",
    "no-route": "Heartbeat has no delivery route yet. Message your bot once, or set "
                "agents.defaults.heartbeat.target.",
}


def delivery_target(cfg: dict[str, Any], accounts: dict[str, Any]) -> dict[str, Any]:
    """Where a heartbeat reply goes: ``{channel, to, accountId?}``, or ``{reason, accountId?}``
    when it goes nowhere, by the real ``resolveHeartbeatDeliveryTarget``; ``accounts`` are the
    configured channel accounts (``channels.accounts.configured_accounts``)."""
    from openclaw_tw.automation.delivery import route  # delivery.py imports this module

    raw = cfg.get("target")
    if raw is None or raw in ("owner", "last"):
        return {"reason": "no-route"}
    if raw == "none":
        return {"reason": "target-none"}
    channel = raw.strip().lower()
    channel = CHANNEL_ALIASES.get(channel, channel)
    if channel not in CHAT_CHANNELS:
        return {"reason": "target-none"}  # the real resolver falls back to "none"
    wanted = (cfg.get("accountId") or "").strip() or None
    account = {"accountId": wanted.lower()} if wanted else {}
    to = (cfg.get("to") or "").strip()
    found, _, why = route({"mode": "announce", "channel": channel, "to": to}, accounts)
    if why is not None or found is None:  # no recipient, or no account for the channel
        return {"reason": "no-target", **account}
    if wanted is None:
        return {"channel": found, "to": to}
    matches = [a for a in accounts[found] if a.lower() == wanted.lower()]
    if not matches:
        return {"reason": "unknown-account", **account}
    return {"channel": found, "to": to, **account, "account": matches[0]}


def waiting_for_route(cfg: dict[str, Any]) -> bool:
    """``status``' ``waitingForRoute``: an owner/last heartbeat that has no route yet."""
    return cfg.get("target") in (None, "owner", "last")


RUN_PREFIX = "heartbeat-"  # a heartbeat turn's run id: its transcript entries carry it


def hidden_in_chat(role: str, run_id: str | None, text: str) -> bool:
    """What chat history (the Control UI, the TUI) leaves out, as the real gateway does: a
    heartbeat's prompt, and its reply when that is only an acknowledgment.  The transcript
    keeps both (sessions.get, exports)."""
    if not run_id or not run_id.startswith(RUN_PREFIX):
        return False
    return role == "user" or (role == "assistant" and classify(text)[1] is None)


def hidden_chat_event(run_id: str, state: str, text: str) -> bool:
    """A heartbeat turn's ``chat`` events: no deltas; the final only for an alert."""
    if not run_id.startswith(RUN_PREFIX):
        return False
    return state == "delta" or (state == "final" and classify(text)[1] is None)


class Heartbeat:
    def __init__(self, gw: Gateway, runtime: AgentRuntime, sessions: SessionStore,
                 config_for: Any = None, announcer: Announcer | None = None) -> None:
        self.gw = gw
        self.announcer = announcer  # the cron announcer: sends an alert to its chat
        self.runtime = runtime
        self.sessions = sessions
        # ``POST /hooks/wake`` events waiting for the next heartbeat (web/hooks.py fills it:
        # bounded, an identical pending text is coalesced), by (session key, text).
        self.hook_events: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self.config_for = config_for or (lambda agent: heartbeat_config(
            dict(gw.settings.raw), agent))
        self.queue: deque[dict[str, Any]] = deque()
        self._event_turns: deque[int] = deque()
        self._wake_calls: dict[str, Any] = {}
        self.running: set[str] = set()
        # The last alert sent, by session key: (session id, text, sent at ms), for the
        # real 24 h duplicate rule (the real gateway keeps it on the session entry).
        self.last_sent: dict[str, tuple[str, str, int]] = {}

    # -- system events --------------------------------------------------------------------------

    def enqueue(self, session_key: str, text: str, source: str) -> None:
        self.queue.append({"sessionKey": session_key, "text": text.strip(),
                           "ts": self.gw.now_ms(), "source": source})
        while len(self.queue) > MAX_QUEUED:
            self.queue.popleft()

    def pending_for(self, agent: str) -> list[dict[str, Any]]:
        return [e for e in self._all_pending() if agent_of(e["sessionKey"]) == agent]

    def _all_pending(self) -> list[dict[str, Any]]:
        extra = list(self.hook_events.values())
        return list(self.queue) + [{**e, "source": "hook:wake"} for e in extra]

    def _drain(self, agent: str) -> list[dict[str, Any]]:
        taken = [e for e in self.queue if agent_of(e["sessionKey"]) == agent]
        for e in taken:
            self.queue.remove(e)
        for slot, e in list(self.hook_events.items()):
            if agent_of(e["sessionKey"]) == agent:
                taken.append({**e, "source": "hook:wake"})
                del self.hook_events[slot]
        return taken

    # -- wakes ----------------------------------------------------------------------------------

    def request_wake(self, agent: str = "main", reason: str = "wake") -> int | None:
        """Run an event-driven heartbeat as soon as the rate limits allow; returns the delay
        (ms), or ``None`` for an agent that is not configured (its events stay queued)."""
        from openclaw_tw.methods.agents import configured_agents

        agent = normalize_agent_id(agent)
        if agent in self._wake_calls:
            return 0
        known = {normalize_agent_id(a["id"]) for a in configured_agents(dict(self.gw.settings.raw))}
        if agent not in known:  # a wake must not start turns (and rows) for made-up agents
            return None
        now = self.gw.now_ms()
        turns = self._event_turns
        while turns and turns[0] <= now - FLOOD_WINDOW_MS:
            turns.popleft()
        at = now
        if turns:
            at = max(at, turns[-1] + EVENT_MIN_GAP_MS)
        if len(turns) >= FLOOD_MAX:
            at = max(at, turns[-FLOOD_MAX] + FLOOD_WINDOW_MS)
        delay = max(0, at - now)
        # Reserved now, not when it fires: wakes of other agents requested meanwhile count it.
        turns.append(at)

        def fire() -> None:
            self._wake_calls.pop(agent, None)
            ensureDeferred(self.run(agent, reason)).addErrback(
                lambda f: _log.failure("heartbeat wake failed", f))

        self._wake_calls[agent] = self.gw.clock.callLater(delay / 1000, fire)
        return delay

    def stop(self) -> None:
        for call in self._wake_calls.values():
            if call.active():
                call.cancel()
        self._wake_calls.clear()

    # -- one turn -------------------------------------------------------------------------------

    async def run(self, agent: str = "main", reason: str = "interval") -> dict[str, Any]:
        gw = self.gw
        started = gw.now_ms()
        if not gw.heartbeats_enabled:
            return self._publish({"ts": started, "status": "skipped", "reason": "disabled",
                                  "durationMs": 0})
        key = main_key(agent)
        if agent in self.running or key in self.runtime.active:
            return self._publish({"ts": started, "status": "skipped",
                                  "reason": "requests-in-flight", "durationMs": 0})
        cfg = self.config_for(agent)
        target = delivery_target(cfg, self._accounts())
        if target.get("reason") == "no-route" and reason == "interval" and \
                not self.pending_for(agent):
            # The real runner stops here: nothing to say and nowhere to say it, no model call.
            return self._publish({"ts": started, "status": "skipped", "reason": "no-route",
                                  "durationMs": gw.now_ms() - started})
        events = self._drain(agent)
        lines = [f"System: {e['text']}" for e in events]
        message = "\n".join([*lines, "", cfg["prompt"]]) if lines else cfg["prompt"]
        self.running.add(agent)
        try:
            row = await self.sessions.ensure(key, "heartbeat")
            timeout = cfg.get("timeoutSeconds")
            if not isinstance(timeout, int | float) or isinstance(timeout, bool):
                timeout = min(cfg["everyMs"] / 1000, 600) if cfg["everyMs"] else 600
            run = await self.runtime.accept(row, message, f"{RUN_PREFIX}{uuid.uuid4()}", "agent",
                                          None, timeout_s=timeout)
            outcome = await run.finished()
        except Exception as e:  # noqa: BLE001 - a failed heartbeat is reported, not raised
            self.running.discard(agent)
            return self._publish({"ts": gw.now_ms(), "status": "failed",
                                  "reason": "agent-runner-failure", "preview": str(e)[:200],
                                  "indicatorType": "error", "silent": True,
                                  "durationMs": gw.now_ms() - started})
        self.running.discard(agent)
        duration = gw.now_ms() - started
        if outcome.status != "ok":
            return self._publish({"ts": gw.now_ms(), "status": "failed",
                                  "reason": "agent-runner-failure",
                                  "preview": (outcome.error or outcome.stop_reason)[:200],
                                  "indicatorType": "error", "silent": True,
                                  "durationMs": duration})
        status, preview = classify(outcome.text)
        channel = {"channel": target["channel"]} if "channel" in target else {}
        account = {"accountId": target["accountId"]} if "accountId" in target else {}
        if preview is None:  # an acknowledgment: never sent (showOk is off by default)
            return self._publish({"ts": gw.now_ms(), "status": status, "reason": reason,
                                  **channel, "indicatorType": "ok", "silent": True,
                                  "durationMs": duration, **account})
        if not channel:  # an alert, with no route to send it on
            return self._publish({"ts": gw.now_ms(), "status": "skipped", "preview": preview,
                                  "reason": target["reason"], "hasMedia": False,
                                  "durationMs": duration, **account})
        return await self._send_alert(key, row.session_id, started, outcome.text.strip(),
                                      target)

    async def _send_alert(self, key: str, session_id: str, started: int, text: str,
                          target: dict[str, Any]) -> dict[str, Any]:
        """An alert to its chat, through the cron announcer, reported as the real runner
        reports it: ``sent``; ``failed`` with the send's error; a repeat ``duplicate``."""
        gw = self.gw
        preview = text[:200]
        account = {"accountId": target["accountId"]} if "accountId" in target else {}
        previous = self.last_sent.get(key)
        if previous is not None and previous[0] == session_id and previous[1] == text and \
                0 <= started - previous[2] < DUPLICATE_WINDOW_MS:
            return self._publish({"ts": gw.now_ms(), "status": "skipped", "reason": "duplicate",
                                  "preview": preview, "hasMedia": False,
                                  "channel": target["channel"],
                                  "durationMs": gw.now_ms() - started, **account})
        assert self.announcer is not None  # a target resolves only through its accounts
        plan = {"mode": "announce", "channel": target["channel"], "to": target["to"],
                **({"accountId": target["account"]} if "account" in target else {})}
        facts = await self.announcer.deliver(plan, text)
        sent = facts.get("lastDelivered") is True
        if sent:
            self.last_sent[key] = (session_id, text, started)
            outcome: dict[str, Any] = {"status": "sent", "preview": preview,
                                       "channel": target["channel"], "indicatorType": "alert"}
        else:
            outcome = {"status": "failed", "preview": preview, "channel": target["channel"],
                       "indicatorType": "error",
                       "reason": facts.get("lastDeliveryError") or "not-delivered"}
        return self._publish({"ts": gw.now_ms(), **outcome, "to": target["to"],
                              "hasMedia": False, "durationMs": gw.now_ms() - started,
                              **account})

    def _accounts(self) -> dict[str, Any]:
        """The channel accounts an alert can go through (none without an announcer)."""
        return dict(self.announcer.accounts()) if self.announcer is not None else {}

    def _publish(self, payload: dict[str, Any]) -> dict[str, Any]:
        message = ROUTE_MESSAGES.get(payload.get("reason", ""))
        if message is not None:  # the real event names these two in words
            payload["message"] = message
        self.gw.last_heartbeat = payload
        self.gw.broadcast("heartbeat", payload, drop_if_slow=True)
        return payload
