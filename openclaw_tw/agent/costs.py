"""Token usage and cost per calendar day (``usage.cost``), from what each turn recorded.

Every finished turn appends an assistant transcript entry carrying ``provider``, ``model``,
``usage`` (token counts) and ``timestamp`` (``agent/runtime.py``); that is the per-turn usage
we keep, as the real gateway keeps it in its session logs.  A summary scans the assistant
entries of the requested range and prices each one from its model's ``cost`` config (USD per
million tokens, ``ModelInfo.cost``), as the real gateway does (``calculateUsageCost``):
an entry of an unpriced model that used tokens counts in ``missingCostEntries`` (and
``missingCostByModel``) and adds nothing to the cost; an entry without tokens costs 0.

The date range, the calendar-day buckets and the error messages follow the real handler
(``src/gateway/server-methods/usage-date-range.ts``): UTC days by default, ``mode: gateway``
for the gateway's local days, ``mode: specific`` with ``timeZone`` or ``utcOffset``; every
day of a range up to 366 days appears, zero-filled.  Entries removed by ``sessions.compact``
or ``sessions.delete`` no longer count (their usage went with them).
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs
from twisted.internet.defer import Deferred

from openclaw_tw.agent.models import ModelRegistry, Usage
from openclaw_tw.db import Database
from openclaw_tw.sessions.keys import agent_of, normalize_agent_id

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

MAX_USAGE_DAYS = 36600
MAX_ZERO_FILL_DAYS = 366
DEFAULT_DAYS = 30
TOTAL_KEYS = ("input", "output", "cacheRead", "cacheWrite", "totalTokens", "totalCost",
              "inputCost", "outputCost", "cacheReadCost", "cacheWriteCost",
              "missingCostEntries")
RANGE_DAYS = {"7d": 7, "30d": 30, "90d": 90, "1y": 365}
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_OFFSET = re.compile(r"^UTC([+-])(\d{1,2})(?::([0-5]\d))?$")

# The assistant entries of a time range: (session key, body JSON, ts).
_ENTRIES = ("SELECT session_key, body, ts FROM transcript WHERE role = 'assistant' "
            "AND ts >= ? AND ts <= ? ORDER BY seq")


class UsageRangeError(ValueError):
    """A refused date range; the message is the real gateway's."""


@attrs.frozen
class DayBucket:
    """How an instant maps to a calendar day: a fixed UTC offset, an IANA zone, or the
    gateway's local time (``zone`` and ``offset_min`` both unset)."""

    offset_min: int | None = 0
    zone: ZoneInfo | None = None

    def day_of(self, ms: int) -> date:
        seconds = ms / 1000
        if self.zone is not None:
            return datetime.fromtimestamp(seconds, self.zone).date()
        if self.offset_min is None:
            return datetime.fromtimestamp(seconds).date()
        return (datetime.fromtimestamp(seconds, UTC) +
                timedelta(minutes=self.offset_min)).date()

    def start_ms(self, day: date) -> int:
        """The first millisecond of ``day`` in this bucket's calendar."""
        midnight = datetime(day.year, day.month, day.day)
        if self.zone is not None:
            return int(midnight.replace(tzinfo=self.zone).timestamp() * 1000)
        if self.offset_min is None:
            return int(midnight.timestamp() * 1000)
        return int(midnight.replace(tzinfo=UTC).timestamp() * 1000) - \
            self.offset_min * 60_000

    def end_ms(self, day: date) -> int:
        return self.start_ms(day + timedelta(days=1)) - 1


@attrs.frozen
class UsageRange:
    start_ms: int
    end_ms: int
    bucket: DayBucket


def resolve_range(params: Mapping[str, Any], now_ms: int) -> UsageRange:
    """``startDate``/``endDate``, ``range`` or ``days`` (default 30 days ending today)."""
    bucket = _bucket(params)
    for field in ("startDate", "endDate"):
        raw = params.get(field)
        if raw is None or (isinstance(raw, str) and raw.strip() == ""):
            continue
        if _parse_date(raw) is None:
            raise UsageRangeError(f"invalid {field}: expected a valid YYYY-MM-DD calendar date")
    today = bucket.day_of(now_ms)
    today_end = bucket.end_ms(today)
    start, end = _parse_date(params.get("startDate")), _parse_date(params.get("endDate"))
    if (start is None) != (end is None):
        raise UsageRangeError("startDate and endDate must be provided together")
    if start is not None and end is not None:
        if bucket.start_ms(start) > bucket.start_ms(end):
            raise UsageRangeError("startDate must not be after endDate")
        return UsageRange(bucket.start_ms(start), bucket.end_ms(end), bucket)
    if params.get("range") == "all":
        return UsageRange(0, today_end, bucket)
    days = RANGE_DAYS.get(params.get("range"))  # type: ignore[arg-type]
    if days is None:
        days = _parse_days(params.get("days"))
    days = max(1, DEFAULT_DAYS if days is None else days)
    return UsageRange(bucket.start_ms(today - timedelta(days=days - 1)), today_end, bucket)


def _bucket(params: Mapping[str, Any]) -> DayBucket:
    mode = params.get("mode")
    if mode == "gateway":
        return DayBucket(offset_min=None)
    if mode == "specific":
        offset = _parse_offset(params.get("utcOffset"))
        zone_name = params.get("timeZone")
        if zone_name is not None:
            zone = _zone(zone_name)
            if zone is not None:
                return DayBucket(offset_min=None, zone=zone)
            if offset is not None:
                return DayBucket(offset)
            raise UsageRangeError("invalid timeZone: expected a valid IANA time zone")
        if offset is not None:
            return DayBucket(offset)
        raw = params.get("utcOffset")
        if raw is not None and not (isinstance(raw, str) and raw.strip() == ""):
            raise UsageRangeError("invalid utcOffset: expected UTC-12:00 through UTC+14:00")
    return DayBucket(0)


def _zone(name: Any) -> ZoneInfo | None:
    if not isinstance(name, str) or not name.strip():
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # a usage range with a time zone

    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _parse_offset(raw: Any) -> int | None:
    match = _OFFSET.match(raw.strip()) if isinstance(raw, str) else None
    if match is None:
        return None
    minutes = int(match.group(2)) * 60 + int(match.group(3) or 0)
    minutes = minutes if match.group(1) == "+" else -minutes
    return minutes if -720 <= minutes <= 840 else None


def _parse_date(raw: Any) -> date | None:
    match = _DATE.match(raw.strip()) if isinstance(raw, str) else None
    if match is None:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


def _parse_days(raw: Any) -> int | None:
    """A number, or a numeric string, floored and capped (the real ``parseDays``)."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str):
        if not raw.strip():
            return None
        try:
            raw = float(raw)
        except ValueError:
            return None
    if not isinstance(raw, int | float) or not math.isfinite(raw):
        return None
    return min(math.floor(raw), MAX_USAGE_DAYS)


def empty_totals() -> dict[str, Any]:
    return {key: 0 for key in TOTAL_KEYS}


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return max(0, int(value))


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


class CostUsage:
    """Summaries of the recorded per-turn usage, priced from the model registry."""

    def __init__(self, db: Database, models: ModelRegistry,
                 now_ms: Callable[[], int]) -> None:
        self._db = db
        self._models = models
        self._now_ms = now_ms

    def summary(self, params: Mapping[str, Any]) -> Deferred[dict[str, Any]]:
        """The ``usage.cost`` result; raises ``UsageRangeError`` for a refused range."""
        now = self._now_ms()
        span = resolve_range(params, now)
        agent_id = params.get("agentId")
        agent = None if params.get("agentScope") == "all" else normalize_agent_id(agent_id)

        def read(conn: sqlite3.Connection) -> list[tuple[str, str, int]]:
            return conn.execute(_ENTRIES, (span.start_ms, span.end_ms)).fetchall()

        d = self._db.run(read)
        d.addCallback(lambda rows: self._summarize(rows, span, agent, now))
        return d

    def _summarize(self, rows: list[tuple[str, str, int]], span: UsageRange,
                   agent: str | None, now: int) -> dict[str, Any]:
        bucket = span.bucket
        daily: dict[str, dict[str, Any]] = {}
        totals = empty_totals()
        for key, body_json, ts in rows:
            if agent is not None and agent_of(key) != agent:
                continue
            try:
                body = json.loads(body_json)
            except ValueError:
                continue
            entry = self.price(body) if isinstance(body, dict) else None
            if entry is None:
                continue
            day = bucket.day_of(int(body.get("timestamp") or ts)).isoformat()
            for target in (daily.setdefault(day, empty_totals()), totals):
                _add(target, entry)
        first, last = bucket.day_of(span.start_ms), bucket.day_of(span.end_ms)
        span_days = (last - first).days + 1
        if span_days <= MAX_ZERO_FILL_DAYS:
            for i in range(span_days):
                daily.setdefault((first + timedelta(days=i)).isoformat(), empty_totals())
        return {"updatedAt": now, "days": span_days,
                "daily": [{"date": day, **daily[day]} for day in sorted(daily)],
                "totals": totals}

    def price(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        """One assistant entry's tokens and cost (None: it recorded no usage)."""
        usage = body.get("usage")
        if not isinstance(usage, Mapping):
            return None
        counts = {k: _count(usage.get(k)) or 0 for k in ("input", "output", "cacheRead",
                                                          "cacheWrite")}
        total = _count(usage.get("total", usage.get("totalTokens")))
        if total is None:
            total = sum(counts.values())
        provider = str(body.get("provider") or "unknown")
        model = str(body.get("model") or "unknown")
        entry: dict[str, Any] = {**counts, "totalTokens": total, "model": f"{provider}/{model}"}
        recorded = usage.get("cost") if isinstance(usage.get("cost"), Mapping) else {}
        recorded_total = _finite(recorded.get("total"))
        if recorded_total is not None and recorded_total > 0:
            entry["cost"] = {k: _finite(recorded.get(k)) or 0.0
                             for k in ("input", "output", "cacheRead", "cacheWrite")}
            entry["cost"]["total"] = recorded_total
            return entry
        info = self._models.info(f"{provider}/{model}")
        cost = info.cost_of(Usage(counts["input"], counts["output"], counts["cacheRead"],
                                  counts["cacheWrite"])) if info is not None else None
        if cost is None and total > 0:
            entry["cost"] = None  # an unpriced model used tokens: its cost is unknown
        else:
            # Priced, or no tokens: what the real runtime records (0 for an unpriced model).
            entry["cost"] = cost or {"input": 0.0, "output": 0.0, "cacheRead": 0.0,
                                     "cacheWrite": 0.0, "total": 0.0}
        return entry


def _add(totals: dict[str, Any], entry: Mapping[str, Any]) -> None:
    for key in ("input", "output", "cacheRead", "cacheWrite", "totalTokens"):
        totals[key] += entry[key]
    cost = entry["cost"]
    if cost is None:
        totals["missingCostEntries"] += 1
        by_model = totals.setdefault("missingCostByModel", {})
        by_model[entry["model"]] = by_model.get(entry["model"], 0) + 1
        return
    for key, part in (("totalCost", "total"), ("inputCost", "input"), ("outputCost", "output"),
                      ("cacheReadCost", "cacheRead"), ("cacheWriteCost", "cacheWrite")):
        if cost[part]:  # a zero stays the integer 0, as the real gateway prints it
            totals[key] += cost[part]
