"""Usage per session (``sessions.usage``), from what each turn recorded in its transcript.

The real gateway rolls every session's transcript up into per-session summaries and
gateway-wide aggregates (``src/gateway/server-methods/usage.ts``,
``src/infra/session-cost-usage-rollup.ts``, ``src/shared/usage-aggregates.ts``).  We do the
same over the transcript table, with the date range, day buckets and pricing of ``usage.cost``
(``agent/costs.py``):

* a session is listed when it has entries in the range (``key``: that session, whatever its
  activity), newest first; ``limit`` (default 50) caps the list, never the aggregates;
* ``groupBy: family`` (or ``includeHistorical``) folds every session id a key has had (its
  resets) into the key's row; ``instance`` lists an earlier session id on a row of its own,
  keyed ``agent:<agent>:<sessionId>`` as the real gateway keys sessions it has no row for;
* message counts: user and assistant messages; a tool result counts as one tool call and one
  tool result (the transcript keeps the results, each the answer to one call); an assistant
  message that stopped with ``error``/``aborted``/``timeout``, an errored tool result and a run
  that failed before replying count as errors;
* latency: from a user message to the next assistant message (at most 12 hours);
* tokens and cost: the assistant messages' recorded ``usage``, priced as ``usage.cost`` prices.

Fields we have nothing for are left out rather than invented: no creator profiles (every
session counts under the real gateway's unknown-creator key), no context weight, no session log
file, no cache status (nothing is cached: every call reads the transcripts).
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import attrs
from twisted.internet.defer import Deferred

from openclaw_tw.agent.costs import CostUsage, UsageRange, empty_totals
from openclaw_tw.channels.providers import PROVIDERS
from openclaw_tw.db import Database
from openclaw_tw.sessions.keys import agent_of, kind_of
from openclaw_tw.sessions.store import SessionRow

UNKNOWN_CREATOR = '["unknown"]'
DEFAULT_LIMIT = 50
MAX_LATENCY_MS = 12 * 3_600_000
ERROR_STOPS = frozenset({"error", "aborted", "timeout"})
COUNT_KEYS = ("total", "user", "assistant", "toolCalls", "toolResults", "errors")
_ENTRIES = ("SELECT session_key, session_id, role, body, ts FROM transcript "
            "WHERE ts >= ? AND ts <= ? ORDER BY seq")


def empty_counts() -> dict[str, int]:
    return {k: 0 for k in COUNT_KEYS}


def add_totals(target: dict[str, Any], source: Mapping[str, Any]) -> None:
    for key in ("input", "output", "cacheRead", "cacheWrite", "totalTokens", "totalCost",
                "inputCost", "outputCost", "cacheReadCost", "cacheWriteCost",
                "missingCostEntries"):
        value = source.get(key, 0)
        if value:  # a zero stays the integer 0, as the real gateway prints it
            target[key] += value


def latency_stats(values: list[int]) -> dict[str, Any] | None:
    if not values:
        return None
    ordered = sorted(values)
    p95 = ordered[max(0, math.ceil(len(ordered) * 0.95) - 1)]
    return {"count": len(values), "avgMs": sum(values) / len(values), "p95Ms": p95,
            "minMs": ordered[0], "maxMs": ordered[-1]}


def _priced_totals(entry: Mapping[str, Any]) -> dict[str, Any]:
    """One priced assistant entry (``CostUsage.price``) as totals."""
    out = empty_totals()
    for key in ("input", "output", "cacheRead", "cacheWrite", "totalTokens"):
        out[key] = entry[key]
    cost = entry["cost"]
    if cost is None:
        out["missingCostEntries"] = 1
    else:
        out.update(totalCost=cost["total"] or 0, inputCost=cost["input"] or 0,
                   outputCost=cost["output"] or 0, cacheReadCost=cost["cacheRead"] or 0,
                   cacheWriteCost=cost["cacheWrite"] or 0)
    return out


@attrs.define
class SessionRollup:
    """One listed session: its identity and the rollup of its entries in the range."""

    key: str
    agent_id: str
    session_id: str
    scope: str  # family | instance
    updated_at: int
    row: SessionRow | None
    session_ids: list[str] = attrs.field(factory=list)
    totals: dict[str, Any] = attrs.field(factory=empty_totals)
    counts: dict[str, int] = attrs.field(factory=empty_counts)
    models: dict[tuple[str, str], dict[str, Any]] = attrs.field(factory=dict)
    tools: dict[str, int] = attrs.field(factory=dict)
    first: int | None = None
    last: int | None = None
    last_user: int | None = None
    latencies: list[tuple[str, int]] = attrs.field(factory=list)
    daily: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    daily_counts: dict[str, dict[str, int]] = attrs.field(factory=dict)
    quarter_counts: dict[tuple[str, int], dict[str, int]] = attrs.field(factory=dict)
    quarter_tokens: dict[tuple[str, int], dict[str, Any]] = attrs.field(factory=dict)
    daily_models: dict[tuple[str, str, str], dict[str, Any]] = attrs.field(factory=dict)

    @property
    def channel(self) -> str | None:
        via = self.row.created_via if self.row is not None else None
        return via if via in PROVIDERS else None


class SessionUsage:
    def __init__(self, db: Database, costs: CostUsage,
                 rows: Callable[[Iterable[str]], Deferred[dict[str, SessionRow]]],
                 present: Callable[[SessionRow], dict[str, Any]]) -> None:
        self._db = db
        self._costs = costs
        self._rows = rows
        self._present = present

    def summary(self, span: UsageRange, agent: str | None, key: str | None, family: bool,
                limit: int | None, creator: str | None, now: int) -> Deferred[dict[str, Any]]:
        def read(conn: sqlite3.Connection) -> list[tuple[str, str, str, str, int]]:
            return conn.execute(_ENTRIES, (span.start_ms, span.end_ms)).fetchall()

        def with_rows(entries: list[tuple[str, str, str, str, int]]) -> Deferred[Any]:
            keys = {e[0] for e in entries} | ({key} if key is not None else set())
            return self._rows(sorted(keys)).addCallback(lambda rows: (entries, rows))

        d = self._db.run(read).addCallback(with_rows)
        return d.addCallback(lambda found: self._summarize(
            found[0], found[1], span, agent, key, family,
            DEFAULT_LIMIT if limit is None else limit, creator, now))

    def _summarize(self, entries: list[tuple[str, str, str, str, int]],
                   stored: dict[str, SessionRow], span: UsageRange, agent: str | None,
                   key: str | None, family: bool, limit: int, creator: str | None, now: int
                   ) -> dict[str, Any]:
        rows = {k: r for k, r in stored.items()
                if (agent is None or r.agent_id == agent) and (key is None or r.key == key)}
        sessions: dict[tuple[str, str], SessionRollup] = {}
        for session_key, session_id, role, body_json, ts in entries:
            if (agent is not None and agent_of(session_key) != agent) or \
                    (key is not None and session_key != key):
                continue
            rollup = self._rollup_for(sessions, rows, session_key, session_id, family)
            try:
                body = json.loads(body_json)
            except ValueError:
                continue
            if isinstance(body, dict):
                self._add(rollup, role, body, int(body.get("timestamp") or ts), span)
        if key is not None and key in rows and not sessions:
            row = rows[key]
            sessions[(key, row.session_id)] = SessionRollup(
                key, row.agent_id, row.session_id, "family" if family else "instance",
                row.updated_at, row, [row.session_id])
        if creator is not None and creator != UNKNOWN_CREATOR:
            sessions = {}
        listed = sorted(sessions.values(), key=lambda s: s.updated_at, reverse=True)
        out_sessions = [self._session(s, span) for s in listed[:limit]]
        totals, aggregates = self._aggregate(listed, span)
        bucket = span.bucket
        return {"updatedAt": now, "startDate": bucket.day_of(span.start_ms).isoformat(),
                "endDate": bucket.day_of(span.end_ms).isoformat(), "sessions": out_sessions,
                "totals": totals, "aggregates": aggregates,
                "creatorOptions": [{"key": UNKNOWN_CREATOR}] if listed else []}

    @staticmethod
    def _rollup_for(sessions: dict[tuple[str, str], SessionRollup],
                    rows: dict[str, SessionRow], key: str, session_id: str,
                    family: bool) -> SessionRollup:
        row = rows.get(key)
        if row is not None and (family or session_id == row.session_id):
            ident = (key, row.session_id)
            if ident not in sessions:
                sessions[ident] = SessionRollup(key, row.agent_id, row.session_id,
                                                "family" if family else "instance",
                                                row.updated_at, row)
            rollup = sessions[ident]
        else:  # an earlier session id of the key (or of a key without a row)
            agent = agent_of(key)
            ident = (f"agent:{agent}:{session_id}", session_id)
            if ident not in sessions:
                sessions[ident] = SessionRollup(ident[0], agent, session_id, "instance", 0,
                                                None)
            rollup = sessions[ident]
        if session_id not in rollup.session_ids:
            rollup.session_ids.append(session_id)
        return rollup

    def _add(self, s: SessionRollup, role: str, body: dict[str, Any], ts: int,
             span: UsageRange) -> None:
        day = span.bucket.day_of(ts).isoformat()
        utc = datetime.fromtimestamp(ts / 1000, UTC)
        quarter = (utc.date().isoformat(), (utc.hour * 60 + utc.minute) // 15)
        delta = empty_counts()
        tool: str | None = None
        if role == "user":
            delta["user"] = delta["total"] = 1
        elif role == "assistant":
            delta["assistant"] = delta["total"] = 1
            if body.get("stopReason") in ERROR_STOPS:
                delta["errors"] = 1
        elif role == "tool":
            tool = str(body.get("toolName") or "unknown")
            delta["toolCalls"] = delta["toolResults"] = 1
            if body.get("isError"):
                delta["errors"] = 1
        elif body.get("customType") == "run-failed-before-reply":
            delta["errors"] = 1
        else:
            return
        if role != "custom":
            s.first = ts if s.first is None else min(s.first, ts)
            s.last = ts if s.last is None else max(s.last, ts)
            if s.row is None:
                s.updated_at = max(s.updated_at, ts)
        for target in (s.counts, s.daily_counts.setdefault(day, empty_counts()),
                       s.quarter_counts.setdefault(quarter, empty_counts())):
            for k, v in delta.items():
                target[k] += v
        if tool is not None:
            s.tools[tool] = s.tools.get(tool, 0) + 1
        if role == "user":
            s.last_user = ts
        if role != "assistant":
            return
        if s.last_user is not None and 0 <= ts - s.last_user <= MAX_LATENCY_MS:
            s.latencies.append((day, ts - s.last_user))
        priced = self._costs.price(body)
        if priced is None:
            return
        totals = _priced_totals(priced)
        provider, model = str(body.get("provider") or "unknown"), str(body.get("model")
                                                                       or "unknown")
        add_totals(s.totals, totals)
        add_totals(s.daily.setdefault(day, empty_totals()), totals)
        qt = s.quarter_tokens.setdefault(quarter, {k: 0 for k in (
            "input", "output", "cacheRead", "cacheWrite", "totalTokens", "totalCost")})
        for k in qt:
            qt[k] += totals[k]
        m = s.models.setdefault((provider, model), {"provider": provider, "model": model,
                                                     "count": 0, "totals": empty_totals()})
        m["count"] += 1
        add_totals(m["totals"], totals)
        dm = s.daily_models.setdefault((day, provider, model), {
            "date": day, "provider": provider, "model": model, "tokens": 0, "cost": 0,
            "count": 0})
        dm["tokens"] += totals["totalTokens"]
        dm["cost"] += totals["totalCost"]
        dm["count"] += 1

    def _usage(self, s: SessionRollup) -> dict[str, Any] | None:
        if not _active(s):
            return None
        out: dict[str, Any] = {**s.totals, "sessionId": s.session_id}
        if s.first is not None and s.last is not None:
            out.update(firstActivity=s.first, lastActivity=s.last,
                       durationMs=s.last - s.first)
        out["messageCounts"] = dict(s.counts)
        if s.tools:
            ranked = sorted(s.tools.items(), key=lambda t: (-t[1], t[0]))
            out["toolUsage"] = {"totalCalls": sum(c for _, c in ranked),
                                "uniqueTools": len(ranked),
                                "tools": [{"name": n, "count": c} for n, c in ranked]}
        if s.models:
            out["modelUsage"] = sorted(s.models.values(), key=_by_cost)
        latency = latency_stats([v for _, v in s.latencies])
        if latency:
            out["latency"] = latency
        days = sorted(set(s.daily) | set(s.daily_counts))
        out["activityDates"] = days
        out["dailyBreakdown"] = [{"date": d, "tokens": t["totalTokens"], "cost": t["totalCost"],
                                  **t} for d, t in sorted(s.daily.items())]
        out["dailyMessageCounts"] = [{"date": d, **c} for d, c in sorted(s.daily_counts.items())]
        out["utcQuarterHourMessageCounts"] = [
            {"date": d, "quarterIndex": q, **c} for (d, q), c in sorted(s.quarter_counts.items())]
        out["utcQuarterHourTokenUsage"] = [
            {"date": d, "quarterIndex": q, **t} for (d, q), t in sorted(s.quarter_tokens.items())]
        by_day: dict[str, list[int]] = {}
        for day, value in s.latencies:
            by_day.setdefault(day, []).append(value)
        out["dailyLatency"] = [{"date": d, **(latency_stats(v) or {})}
                               for d, v in sorted(by_day.items())]
        out["dailyModelUsage"] = [m for _, m in sorted(s.daily_models.items())]
        return out

    def _session(self, s: SessionRollup, span: UsageRange) -> dict[str, Any]:
        out: dict[str, Any] = {"key": s.key}
        presented = self._present(s.row) if s.row is not None else {}
        if s.row is not None and s.row.label:
            out["label"] = s.row.label
        out.update(sessionId=s.session_id, scope=s.scope, sessionFamilyKey=s.key,
                   currentSessionId=s.session_id, includedSessionIds=list(s.session_ids),
                   historicalInstanceCount=len(s.session_ids), updatedAt=s.updated_at,
                   agentId=s.agent_id, creatorKey=UNKNOWN_CREATOR)
        if s.channel:
            out["channel"] = s.channel
        out["chatType"] = presented.get("chatType", kind_of(s.key))
        if s.row is not None and s.row.overrides.get("model"):
            out["modelOverride"] = s.row.overrides["model"]
        for field in ("modelProvider", "model"):
            if presented.get(field):
                out[field] = presented[field]
        out["usage"] = self._usage(s)
        out["hasContextWeight"] = False
        return out

    def _aggregate(self, listed: list[SessionRollup], span: UsageRange
                   ) -> tuple[dict[str, Any], dict[str, Any]]:
        totals, messages = empty_totals(), empty_counts()
        tools: dict[str, int] = {}
        models: dict[tuple[str, str], dict[str, Any]] = {}
        providers: dict[str, dict[str, Any]] = {}
        agents: dict[str, dict[str, Any]] = {}
        channels: dict[str, dict[str, Any]] = {}
        cost_days: dict[str, dict[str, Any]] = {}
        days: dict[str, dict[str, Any]] = {}
        daily_models: dict[tuple[str, str, str], dict[str, Any]] = {}
        latencies: list[tuple[str, int]] = []
        activity: dict[str, dict[str, Any]] = {}
        counted, longest = 0, 0
        creator = {"key": UNKNOWN_CREATOR, "totals": empty_totals(), "sessionCount": 0}
        for s in listed:
            if not _active(s):
                continue
            add_totals(totals, s.totals)
            add_totals(creator["totals"], s.totals)
            if s.first is not None and s.last is not None:
                longest = max(longest, s.last - s.first)
            if s.first is not None or s.counts["total"]:
                counted += 1
                creator["sessionCount"] += 1
                dates = sorted(set(s.daily) | set(s.daily_counts))
                spot = activity.setdefault(json.dumps(dates), {"dates": dates,
                                                               "sessionCount": 0})
                spot["sessionCount"] += 1
            for k in COUNT_KEYS:
                messages[k] += s.counts[k]
            for name, count in s.tools.items():
                tools[name] = tools.get(name, 0) + count
            for (provider, model), m in s.models.items():
                for agg in (models.setdefault((provider, model), {
                        "provider": provider, "model": model, "count": 0,
                        "totals": empty_totals()}),
                        providers.setdefault(provider, {"provider": provider, "count": 0,
                                                        "totals": empty_totals()})):
                    agg["count"] += m["count"]
                    add_totals(agg["totals"], m["totals"])
            add_totals(agents.setdefault(s.agent_id, empty_totals()), s.totals)
            if s.channel:
                add_totals(channels.setdefault(s.channel, empty_totals()), s.totals)
            for day, t in s.daily.items():
                add_totals(cost_days.setdefault(day, empty_totals()), t)
                d = days.setdefault(day, _day(day))
                d["tokens"] += t["totalTokens"]
                d["cost"] += t["totalCost"]
            for day, c in s.daily_counts.items():
                d = days.setdefault(day, _day(day))
                d["messages"] += c["total"]
                d["toolCalls"] += c["toolCalls"]
                d["errors"] += c["errors"]
            for ident, m in s.daily_models.items():
                agg = daily_models.setdefault(ident, {**m, "tokens": 0, "cost": 0, "count": 0})
                for k in ("tokens", "cost", "count"):
                    agg[k] += m[k]
            latencies.extend(s.latencies)
        ranked_tools = sorted(tools.items(), key=lambda t: -t[1])
        aggregates: dict[str, Any] = {"sessionCount": counted}
        if longest > 0:
            aggregates["longestSessionDurationMs"] = longest
        by_day: dict[str, list[int]] = {}
        for day, value in latencies:
            by_day.setdefault(day, []).append(value)
        creators = []
        if counted or any(creator["totals"].values()):
            creators.append({**creator, "daily": [{"date": d, **t}
                                                  for d, t in sorted(cost_days.items())],
                             "sessionActivity": sorted(activity.values(),
                                                       key=lambda a: ",".join(a["dates"]))})
        aggregates.update(
            messages=messages,
            tools={"totalCalls": sum(c for _, c in ranked_tools), "uniqueTools": len(tools),
                   "tools": [{"name": n, "count": c} for n, c in ranked_tools]},
            byModel=sorted(models.values(), key=_by_cost),
            byProvider=sorted(providers.values(), key=_by_cost),
            byAgent=sorted(({"agentId": a, "totals": t} for a, t in agents.items()),
                           key=lambda x: -x["totals"]["totalCost"]),
            byChannel=sorted(({"channel": c, "totals": t} for c, t in channels.items()),
                             key=lambda x: -x["totals"]["totalCost"]),
            byCreator=creators,
            costDaily=[{"date": d, **t} for d, t in sorted(cost_days.items())])
        latency = latency_stats([v for _, v in latencies])
        if latency:
            aggregates["latency"] = latency
        aggregates.update(
            dailyLatency=[{"date": d, **(latency_stats(v) or {})}
                          for d, v in sorted(by_day.items())],
            modelDaily=sorted(daily_models.values(), key=lambda m: (m["date"], -m["cost"])),
            daily=[days[d] for d in sorted(days)])
        return totals, aggregates


def _active(s: SessionRollup) -> bool:
    """Did anything count in the range (a message, or a run that failed before replying)?"""
    return s.first is not None or any(s.counts.values())


def _day(day: str) -> dict[str, Any]:
    return {"date": day, "tokens": 0, "cost": 0, "messages": 0, "toolCalls": 0, "errors": 0}


def _by_cost(entry: Mapping[str, Any]) -> tuple[float, int]:
    t = entry["totals"]
    return (-t["totalCost"], -t["totalTokens"])
