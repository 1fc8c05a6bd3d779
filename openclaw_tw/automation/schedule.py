"""Schedule math: ``at`` (one ISO instant), ``every`` (interval from an anchor) and ``cron``.

``cron`` is a standard 5-field expression (minute hour day-of-month month day-of-week) with
``*``, lists, ranges, steps and month/day names, evaluated in an IANA time zone (default UTC).
As in Vixie cron, when both day-of-month and day-of-week are restricted a day matches either.
DST: a wall-clock time that does not exist (spring forward) fires once at the same instant as
the first valid minute after the gap; a wall-clock time that occurs twice (fall back) fires once,
at its first occurrence.  All functions take and return epoch milliseconds.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from openclaw_tw.timefmt import iso_ms

_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_FIELDS = ((0, 59, {}), (0, 23, {}), (1, 31, {}), (1, 12, _MONTHS), (0, 7, _DAYS))
_MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
           "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
           "@hourly": "0 * * * *"}
MAX_LOOKAHEAD_DAYS = 366 * 5  # enough for "29 Feb" style expressions


class ScheduleError(ValueError):
    pass


def _value(text: str, names: dict[str, int]) -> int:
    low = text.lower()
    if low in names:
        return names[low]
    if not text.isdigit():
        raise ScheduleError(f"invalid cron value: {text!r}")
    return int(text)


def _field(text: str, lo: int, hi: int, names: dict[str, int]) -> tuple[frozenset[int], bool]:
    """The allowed values of one field and whether it was a bare ``*``."""
    out: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() else (1 if not step_text else 0)
        if step <= 0:
            raise ScheduleError(f"invalid cron step: {part!r}")
        if base in ("*", "?"):
            start, end = lo, hi
        elif "-" in base:
            a, b = base.split("-", 1)
            start, end = _value(a, names), _value(b, names)
        else:
            start = _value(base, names)
            end = hi if step_text else start
        if not (lo <= start <= hi and lo <= end <= hi) or start > end:
            raise ScheduleError(f"cron value out of range: {part!r}")
        out.update(range(start, end + 1, step))
    return frozenset(out), text in ("*", "?")


class CronExpr:
    def __init__(self, expr: str, tz: str | None = None) -> None:
        text = _MACROS.get(expr.strip().lower(), expr.strip())
        parts = text.split()
        if len(parts) != 5:
            raise ScheduleError("cron expression must have 5 fields")
        fields = [_field(p, lo, hi, names) for p, (lo, hi, names) in zip(parts, _FIELDS, strict=True)]
        self.minutes, self.hours = sorted(fields[0][0]), sorted(fields[1][0])
        self.dom, dom_star = fields[2]
        self.months = fields[3][0]
        dow, dow_star = fields[4]
        self.dow = frozenset(d % 7 for d in dow)
        self.dom_star, self.dow_star = dom_star, dow_star
        try:
            self.tz = ZoneInfo(tz) if tz else UTC
        except (ZoneInfoNotFoundError, ValueError):
            raise ScheduleError(f"unknown time zone: {tz}") from None

    def _day_matches(self, day: datetime) -> bool:
        if day.month not in self.months:
            return False
        in_dom = day.day in self.dom
        in_dow = (day.weekday() + 1) % 7 in self.dow
        if self.dom_star or self.dow_star:
            return in_dom and in_dow
        return in_dom or in_dow

    def next_after(self, after_ms: int) -> int | None:
        """The first firing instant strictly after ``after_ms``."""
        after = datetime.fromtimestamp(after_ms / 1000, UTC)
        local = after.astimezone(self.tz)
        day = datetime(local.year, local.month, local.day)
        for _ in range(MAX_LOOKAHEAD_DAYS):
            if self._day_matches(day):
                for h in self.hours:
                    for m in self.minutes:
                        wall = day.replace(hour=h, minute=m, tzinfo=self.tz, fold=0)
                        ms = int(wall.astimezone(UTC).timestamp() * 1000)
                        if ms > after_ms:
                            return ms
            day += timedelta(days=1)
        return None


def parse_at(value: Any) -> int:
    """An ISO-8601 instant (``Z``/offset; naive means UTC) or epoch ms, to epoch ms."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if not isinstance(value, str) or not value.strip():
        raise ScheduleError("schedule.at must be an ISO time")
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ScheduleError(f"invalid schedule.at: {value!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def normalize(schedule: Any, now_ms: int) -> dict[str, Any]:
    """Validate a schedule object and fill defaults (``every`` gets ``anchorMs``)."""
    if not isinstance(schedule, dict):
        raise ScheduleError("schedule must be an object")
    kind = schedule.get("kind")
    if kind == "at":
        at_ms = parse_at(schedule.get("at") if "at" in schedule else schedule.get("atMs"))
        return {"kind": "at", "at": iso_ms(at_ms)}
    if kind == "every":
        every = schedule.get("everyMs")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1000:
            raise ScheduleError("schedule.everyMs must be an integer >= 1000")
        anchor = schedule.get("anchorMs", now_ms)
        if isinstance(anchor, bool) or not isinstance(anchor, int):
            raise ScheduleError("schedule.anchorMs must be an integer")
        return {"kind": "every", "everyMs": every, "anchorMs": anchor}
    if kind == "cron":
        expr = schedule.get("expr")
        if not isinstance(expr, str):
            raise ScheduleError("schedule.expr must be a string")
        tz = schedule.get("tz")
        if tz is not None and not isinstance(tz, str):
            raise ScheduleError("schedule.tz must be a string")
        CronExpr(expr, tz)
        out: dict[str, Any] = {"kind": "cron", "expr": expr.strip()}
        if tz:
            out["tz"] = tz
        stagger = schedule.get("staggerMs")  # the window runs spread over (delivery.py)
        if stagger is not None:
            if isinstance(stagger, bool) or not isinstance(stagger, int) or \
                    not 0 <= stagger <= 8_640_000_000_000_000:
                raise ScheduleError("schedule.staggerMs must be a non-negative integer")
            out["staggerMs"] = stagger
        return out
    raise ScheduleError('schedule.kind must be "at", "every" or "cron"')


def next_run(schedule: dict[str, Any], after_ms: int) -> int | None:
    """The first slot strictly after ``after_ms``; ``None`` when there is none (a spent ``at``)."""
    kind = schedule["kind"]
    if kind == "at":
        at_ms = parse_at(schedule["at"])
        return at_ms if at_ms > after_ms else None
    if kind == "every":
        every, anchor = schedule["everyMs"], schedule["anchorMs"]
        if after_ms < anchor:
            return anchor
        return anchor + ((after_ms - anchor) // every + 1) * every
    return CronExpr(schedule["expr"], schedule.get("tz")).next_after(after_ms)


def first_run(schedule: dict[str, Any], now_ms: int) -> int | None:
    """The first slot for a new or re-scheduled job: an ``at`` in the past is due now; an
    ``every`` anchored now first fires one interval later."""
    if schedule["kind"] == "at":
        return parse_at(schedule["at"])
    return next_run(schedule, now_ms)
