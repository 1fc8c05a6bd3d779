"""Cron expressions in croner's dialect (the real gateway's), evaluated by croniter.

The dialect: 5 fields (minute hour day-of-month month day-of-week), 6 (seconds first) or 7
(seconds first, year last); ``*``, ``?``, lists, ranges, ``*/n`` and ``a-b/n`` steps (a bare
``5/15`` is refused, as croner refuses it); month and weekday names; ``L`` (last day of the
month), ``LW`` (last weekday of the month), ``15W`` (nearest weekday), ``5#2`` (second Friday),
``5#L`` / ``5L`` (last Friday), a leading ``+`` on the weekday field (day-of-month AND
day-of-week); the nicknames ``@yearly @annually @monthly @weekly @daily @midnight @hourly``.

Day matching follows croner: a day-of-week of exactly ``*`` leaves the day-of-month alone; a
day-of-month of exactly ``*`` (or a ``+`` weekday) means both must match; otherwise either
matches (so ``?`` in one of the two day fields, which is not ``*``, makes every day match).

croniter enumerates wall-clock times; this module maps them to instants. DST, as the real
gateway computes it: a wall-clock time that does not exist (the spring-forward gap) does not
fire that day; a wall-clock time that occurs twice (fall back) fires once, at its first
occurrence. A schedule without a time zone uses the gateway host's zone.
"""

from __future__ import annotations

import functools
import os
import re
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

# croniter (and dateutil under it, ~0.9 MiB) and zoneinfo (~0.3 MiB) are imported by the
# first expression compiled: a gateway without cron jobs loads neither.

_NICKNAMES = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
              "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
              "@hourly": "0 * * * *"}
_WEEKDAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_LAST_WEEKDAY = re.compile(r"^([a-z0-9]+)(?:-([a-z0-9]+))?(?:#l|l)$")
_MAX_YEAR = 9999
# Candidates examined per call: a gap or a year filter restarts the search past it, so real
# expressions need a handful; this only bounds pathological ones.
_MAX_STEPS = 2000
# Longer expressions are refused: parsing one costs CPU on the reactor and the compile cache
# would keep it (the real gateway has no bound; real expressions are tens of characters).
MAX_EXPR_CHARS = 1000


class ScheduleError(ValueError):
    pass


def _host_zone() -> tzinfo:
    """The host's IANA zone, as Node's ``Intl`` resolves it: ``TZ``, else /etc/localtime."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = os.environ.get("TZ", "").lstrip(":")
    try:
        if name:
            return ZoneInfo(name)
        link = Path("/etc/localtime")
        target = os.readlink(link) if link.is_symlink() else ""
        if "zoneinfo/" in target:
            return ZoneInfo(target.split("zoneinfo/", 1)[1])
        if link.exists():
            with link.open("rb") as f:
                return ZoneInfo.from_file(f, key="localtime")
    except (OSError, ValueError, ZoneInfoNotFoundError):
        pass
    return UTC


HOST_ZONE: tzinfo | None = None  # read once, by the first expression without a zone


def host_zone() -> tzinfo:
    global HOST_ZONE
    if HOST_ZONE is None:
        HOST_ZONE = _host_zone()
    return HOST_ZONE


def _weekday(text: str) -> int:
    if text in _WEEKDAYS:
        return _WEEKDAYS[text]
    if not text.isdigit() or int(text) > 7:
        raise ScheduleError(f"invalid day-of-week: {text!r}")
    return int(text) % 7


def _dow_groups(field: str) -> list[str]:
    """The weekday field as croniter lists: croniter cannot mix plain days and ``#``/``L``
    forms in one list, so each kind is its own list (their union is the field)."""
    plain: list[str] = []
    nth: list[str] = []
    for part in field.split(","):
        last = _LAST_WEEKDAY.match(part)
        if last and part != "l":
            lo = _weekday(last.group(1))
            hi = _weekday(last.group(2)) if last.group(2) else lo
            if last.group(2) and hi == 0:
                hi = 7
            if hi < lo:
                raise ScheduleError(f"invalid day-of-week range: {part!r}")
            nth.extend(f"l{d % 7}" for d in range(lo, hi + 1))
        elif "#" in part:
            nth.append(part)
        else:
            plain.append(part)
    return [",".join(g) for g in (plain, nth) if g]


def _check_steps(field: str) -> None:
    for part in field.split(","):
        base, slash, _ = part.partition("/")
        if slash and base not in ("*", "?") and "-" not in base:
            raise ScheduleError(f"stepping with a numeric prefix ({part!r}) is not allowed; "
                                "use */step or min-max/step")


def _years(field: str) -> frozenset[int] | None:
    if field in ("*", "?"):
        return None
    out: set[int] = set()
    for part in field.split(","):
        base, slash, step_text = part.partition("/")
        if slash and not step_text.isdigit() or slash and int(step_text) == 0:
            raise ScheduleError(f"invalid year step: {part!r}")
        step = int(step_text) if slash else 1
        if base in ("*", "?"):
            lo, hi = 1, _MAX_YEAR
        else:
            a, dash, b = base.partition("-")
            if not a.isdigit() or (dash and not b.isdigit()):
                raise ScheduleError(f"invalid year: {part!r}")
            lo, hi = int(a), int(b) if dash else int(a)
            if slash and not dash:
                raise ScheduleError(f"stepping with a numeric prefix ({part!r}) is not allowed")
        if not 1 <= lo <= hi <= _MAX_YEAR:
            raise ScheduleError(f"year out of range: {part!r}")
        out.update(range(lo, hi + 1, step))
    return frozenset(out)


def _is_last_weekday(day: datetime) -> bool:
    nxt = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    last = nxt - timedelta(days=1)
    while last.weekday() >= 5:
        last -= timedelta(days=1)
    return day.day == last.day


class _Branch:
    """One croniter expression; ``lw`` keeps only the month's last weekday."""

    def __init__(self, sec_to_month: list[str], dom: str, dow: str) -> None:
        self.lw = dom == "lw"
        fields = [*sec_to_month[:3], "26-31" if self.lw else dom, sec_to_month[3], dow]
        self.expr = " ".join(fields)
        from croniter import CroniterError, croniter

        try:
            self._it = croniter(self.expr, datetime(2000, 1, 1), day_or=False,
                                second_at_beginning=True)
        except (CroniterError, ValueError, KeyError, IndexError) as e:
            # croniter names its own rewrite of the fields ("[0 * * 5#l 2026 0] is …"): drop it
            reason = re.sub(r"^\[[^\]]*\]\s*(is )?", "", str(e).strip()) or "not acceptable"
            raise ScheduleError(reason) from None

    def next_after(self, start: datetime) -> datetime | None:
        from croniter import CroniterBadDateError

        it = self._it  # reused: parsing is most of croniter's cost; reactor-thread only
        it.set_current(start, force=True)
        for _ in range(_MAX_STEPS):
            try:
                cand: datetime = it.get_next(datetime)
            except CroniterBadDateError:
                return None
            if cand.year > _MAX_YEAR:
                return None
            if not self.lw or _is_last_weekday(cand):
                return cand
        return None


class CronExpr:
    def __init__(self, expr: str, tz: str | None = None) -> None:
        if len(expr) > MAX_EXPR_CHARS:
            raise ScheduleError(f"cron expression longer than {MAX_EXPR_CHARS} characters")
        text = expr.strip().lower()
        if text.startswith("@"):
            if text not in _NICKNAMES:
                raise ScheduleError(f"unsupported cron nickname: {expr.strip()!r}")
            text = _NICKNAMES[text]
        parts = text.split()
        if len(parts) not in (5, 6, 7):
            raise ScheduleError("cron expression must have five, six or seven fields")
        if len(parts) == 5:
            parts.insert(0, "0")
        self.years = _years(parts[6]) if len(parts) == 7 else None
        sec, minute, hour, dom, month, dow = parts[:6]
        for field in parts[:6]:
            _check_steps(field)
        plus = dow.startswith("+")
        dow = dow[1:] if plus else dow
        if "lw" in dom and dom != "lw":
            raise ScheduleError("LW must be the whole day-of-month field")
        head = [sec, minute, hour, month.replace("?", "*")]
        dom_any = dom.replace("?", "*")
        groups = _dow_groups(dow.replace("?", "*"))
        if dow == "*":  # day-of-week ignored
            specs = [(dom_any, "*")]
        elif plus or dom == "*":  # both must match
            specs = [(dom_any, g) for g in groups]
        elif "?" in (dom, dow):  # either matches, and one side is every day
            specs = [("*", "*")]
        else:  # either matches
            specs = [(dom_any, "*")] + [("*", g) for g in groups]
        try:
            self.branches = [_Branch(head, d, w) for d, w in specs]
        except ScheduleError as e:
            shown = expr.strip()[:80]
            raise ScheduleError(f"invalid cron expression {shown!r}: {e}") from None
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            self.tz: tzinfo = ZoneInfo(tz) if tz else host_zone()
        except (ZoneInfoNotFoundError, ValueError):
            raise ScheduleError(f"unknown time zone: {tz}") from None

    def _next_wall(self, start: datetime) -> datetime | None:
        """The first wall-clock time strictly after ``start`` (naive) that the fields allow."""
        for _ in range(_MAX_STEPS):
            found = [c for c in (b.next_after(start) for b in self.branches) if c is not None]
            if not found:
                return None
            cand = min(found)
            if self.years is None or cand.year in self.years:
                return cand
            later = [y for y in self.years if y > cand.year]
            if not later:
                return None
            start = datetime(min(later), 1, 1) - timedelta(seconds=1)
        return None

    def _gap_end(self, wall: datetime) -> datetime:
        """For a wall time inside a spring-forward gap: the wall time the gap jumps to."""
        early = int(wall.replace(tzinfo=self.tz, fold=1).timestamp())
        late = int(wall.replace(tzinfo=self.tz, fold=0).timestamp())
        before = datetime.fromtimestamp(early, UTC).astimezone(self.tz).utcoffset()
        lo, hi = min(early, late), max(early, late)
        while hi - lo > 1:  # the transition instant, to the second
            mid = (lo + hi) // 2
            if datetime.fromtimestamp(mid, UTC).astimezone(self.tz).utcoffset() == before:
                lo = mid
            else:
                hi = mid
        return datetime.fromtimestamp(hi, UTC).astimezone(self.tz).replace(tzinfo=None)

    def next_after(self, after_ms: int) -> int | None:
        """The first firing instant strictly after ``after_ms`` (epoch ms)."""
        local = datetime.fromtimestamp(after_ms // 1000, UTC).astimezone(self.tz)
        start = local.replace(tzinfo=None)
        for _ in range(_MAX_STEPS):
            wall = self._next_wall(start)
            if wall is None:
                return None
            first = wall.replace(tzinfo=self.tz, fold=0)
            if first.astimezone(UTC).astimezone(self.tz).replace(tzinfo=None) != wall:
                start = self._gap_end(wall) - timedelta(seconds=1)  # does not exist: skip
                continue
            ms = int(first.timestamp()) * 1000
            if ms > after_ms:
                return ms
            start = wall  # the repeat of a wall time that already fired (fall back)
        return None


@functools.lru_cache(maxsize=512)
def compile_cron(expr: str, tz: str | None) -> CronExpr:
    """A parsed expression, cached as the real gateway caches its croner objects."""
    return CronExpr(expr, tz)
