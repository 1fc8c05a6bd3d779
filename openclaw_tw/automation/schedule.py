"""Schedule math: ``at`` (one ISO instant), ``every`` (interval from an anchor) and ``cron``.

``cron`` expressions are croner's dialect, evaluated in an IANA time zone (default: the host's)
with the real gateway's DST rule; see ``cronexpr``.  All functions take and return epoch
milliseconds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from openclaw_tw.automation.cronexpr import CronExpr, ScheduleError, compile_cron
from openclaw_tw.timefmt import iso_ms

__all__ = ["CronExpr", "ScheduleError", "first_run", "next_run", "normalize", "parse_at"]


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
        if compile_cron(expr.strip(), tz or None).next_after(now_ms) is None:
            # as the real gateway refuses it (cron.add answers INVALID_REQUEST)
            raise ScheduleError(f"cron expression {expr.strip()!r} has no upcoming run time "
                                "and would never fire")
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
    return compile_cron(schedule["expr"], schedule.get("tz") or None).next_after(after_ms)


def first_run(schedule: dict[str, Any], now_ms: int) -> int | None:
    """The first slot for a new or re-scheduled job: an ``at`` in the past is due now; an
    ``every`` anchored now first fires one interval later."""
    if schedule["kind"] == "at":
        return parse_at(schedule["at"])
    return next_run(schedule, now_ms)
