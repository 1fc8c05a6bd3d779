"""Cron expressions: croner's dialect and the real gateway's DST rule.

Every expected instant in the tables was computed by the real gateway's own schedule code
(``computeNextRunAtMs`` of the reference package, with its bundled croner 10), run with node.
"""

from __future__ import annotations

from datetime import UTC, datetime
from unittest import mock
from zoneinfo import ZoneInfo

from twisted.trial import unittest

from openclaw_tw.automation import cronexpr
from openclaw_tw.automation import schedule as sched

NY, LONDON, LORD_HOWE = "America/New_York", "Europe/London", "Australia/Lord_Howe"


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def iso(value: int | None) -> str | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run(expr: str, tz: str | None, start: str, count: int) -> list[str | None]:
    """``count`` successive firings after ``start``, each computed from the previous one."""
    cron, t, out = sched.CronExpr(expr, tz), ms(start), []
    for _ in range(count):
        nxt = cron.next_after(t)
        out.append(iso(nxt))
        if nxt is None:
            break
        t = nxt
    return out


class DaylightSaving(unittest.TestCase):
    # (expr, tz, from, the real gateway's next firings)
    SPRING_FORWARD = [
        # 02:30 does not exist in New York on 8 March 2026: no firing that day
        ("30 2 * * *", NY, "2026-03-08T00:00:00Z",
         ["2026-03-09T06:30:00Z", "2026-03-10T06:30:00Z"]),
        ("0 2 * * *", NY, "2026-03-08T00:00:00Z", ["2026-03-09T06:00:00Z"]),
        ("0 30 2 * * *", NY, "2026-03-08T06:00:00Z", ["2026-03-09T06:30:00Z"]),
        # the minutes either side of the gap are real and fire
        ("59 1 * * *", NY, "2026-03-08T00:00:00Z",
         ["2026-03-08T06:59:00Z", "2026-03-09T05:59:00Z"]),
        ("0 3 * * *", NY, "2026-03-08T00:00:00Z",
         ["2026-03-08T07:00:00Z", "2026-03-09T07:00:00Z"]),
        # hourly: 01:00 EST, then 03:00 EDT; no duplicate, no invented 02:00
        ("0 * * * *", NY, "2026-03-08T05:30:00Z",
         ["2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z"]),
        ("0 0-3 * * *", NY, "2026-03-08T04:30:00Z",
         ["2026-03-08T05:00:00Z", "2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z",
          "2026-03-09T04:00:00Z"]),
        # London jumps 01:00 -> 02:00: 01:30 is skipped, 02:30 is real
        ("30 1 * * *", LONDON, "2026-03-29T00:10:00Z", ["2026-03-30T00:30:00Z"]),
        ("30 2 * * *", LONDON, "2026-03-29T00:10:00Z", ["2026-03-29T01:30:00Z"]),
        # Lord Howe moves by half an hour: 02:00-02:30 does not exist on 4 October 2026
        ("15 2 * * *", LORD_HOWE, "2026-10-03T14:00:00Z", ["2026-10-04T15:15:00Z"]),
    ]
    FALL_BACK = [
        # 01:30 happens twice in New York on 1 November 2026: once, at the first (EDT)
        ("30 1 * * *", NY, "2026-11-01T00:00:00Z",
         ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]),
        ("*/30 1 * * *", NY, "2026-11-01T04:00:00Z",
         ["2026-11-01T05:00:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:00:00Z"]),
        # hourly: 01:00 EDT, then 02:00 EST; the repeated 01:00 EST does not fire
        ("0 * * * *", NY, "2026-11-01T04:30:00Z",
         ["2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z", "2026-11-01T08:00:00Z"]),
        # asked from inside the repeated hour: the rest of it has already fired
        ("15,45 * * * *", NY, "2026-11-01T06:10:00Z",
         ["2026-11-01T07:15:00Z", "2026-11-01T07:45:00Z"]),
        ("30 1 * * *", LONDON, "2026-10-25T00:10:00Z",
         ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]),
        ("45 1 * * *", LORD_HOWE, "2026-04-04T14:00:00Z",
         ["2026-04-04T14:45:00Z", "2026-04-05T15:15:00Z"]),
    ]

    def check(self, table: list[tuple[str, str, str, list[str]]]) -> None:
        for expr, tz, start, expected in table:
            with self.subTest(expr=expr, tz=tz, start=start):
                self.assertEqual(run(expr, tz, start, len(expected)), expected)

    def test_spring_forward_gap_is_skipped(self) -> None:
        self.check(self.SPRING_FORWARD)

    def test_fall_back_repeat_fires_once_at_first_occurrence(self) -> None:
        self.check(self.FALL_BACK)


class Dialect(unittest.TestCase):
    FROM = "2026-02-01T00:00:00Z"
    # (expr, the real gateway's next firings in UTC after FROM)
    ACCEPTED = [
        ("0 0 L * *", ["2026-02-28T00:00:00Z", "2026-03-31T00:00:00Z"]),
        ("0 0 * * 5#2", ["2026-02-13T00:00:00Z", "2026-03-13T00:00:00Z"]),
        ("0 */5 * * * *", ["2026-02-01T00:05:00Z", "2026-02-01T00:10:00Z"]),
        ("*/7 * * * * *", ["2026-02-01T00:00:07Z", "2026-02-01T00:00:14Z"]),
        ("0 0 0 1 1 * 2027", ["2027-01-01T00:00:00Z", None]),
        ("0 0 12 * * * *", ["2026-02-01T12:00:00Z", "2026-02-02T12:00:00Z"]),
        ("0 0 15W * *", ["2026-02-16T00:00:00Z", "2026-03-16T00:00:00Z"]),
        ("0 0 1W * *", ["2026-02-02T00:00:00Z", "2026-03-02T00:00:00Z"]),
        ("0 0 LW * *", ["2026-02-27T00:00:00Z", "2026-03-31T00:00:00Z"]),
        ("0 0 * * 5#L", ["2026-02-27T00:00:00Z", "2026-03-27T00:00:00Z"]),
        ("0 0 * * FRI#L", ["2026-02-27T00:00:00Z", "2026-03-27T00:00:00Z"]),
        ("0 0 * * 5L", ["2026-02-27T00:00:00Z", "2026-03-27T00:00:00Z"]),
        ("0 0 * * 5-6#L", ["2026-02-27T00:00:00Z", "2026-02-28T00:00:00Z"]),
        ("0 0 * * 1,5#L", ["2026-02-02T00:00:00Z", "2026-02-09T00:00:00Z"]),
        # day-of-month OR day-of-week; a leading + makes it AND
        ("0 20 1 * MON", ["2026-02-01T20:00:00Z", "2026-02-02T20:00:00Z"]),
        ("0 20 1 * +MON", ["2026-06-01T20:00:00Z", "2027-02-01T20:00:00Z"]),
        ("0 0 L * 5", ["2026-02-06T00:00:00Z", "2026-02-13T00:00:00Z"]),
        # ? is not *: with OR logic it makes every day match
        ("0 0 ? * MON", ["2026-02-02T00:00:00Z", "2026-02-03T00:00:00Z"]),
        ("0 0 1 * ?", ["2026-02-02T00:00:00Z", "2026-02-03T00:00:00Z"]),
        ("0 0 ? * +MON", ["2026-02-02T00:00:00Z", "2026-02-09T00:00:00Z"]),
        ("@weekly", ["2026-02-08T00:00:00Z", "2026-02-15T00:00:00Z"]),
        ("@monthly", ["2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"]),
        ("@annually", ["2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"]),
        ("0 0 * * 7", ["2026-02-08T00:00:00Z", "2026-02-15T00:00:00Z"]),
        ("0-30/10 * * * *", ["2026-02-01T00:10:00Z", "2026-02-01T00:20:00Z"]),
        ("0 0 1 JAN-MAR *", ["2026-03-01T00:00:00Z", "2027-01-01T00:00:00Z"]),
        # valid, never fires
        ("0 0 31 2 *", [None]),
        ("1 2 3 4 5 6 7", [None]),
    ]
    # refused by the real gateway (croner) too
    REFUSED = ["@reboot", "@every 5m", "0 0 L-2 * *", "5/15 * * * *", "0 0 * * 1/2",
               "0 0 * * L", "0 0 1 * * 2026", "* * * * * * * *", "* * *", "61 * * * *",
               "0 0 32 * *", "0 0 * * 8", "0 0 * * 1#6", "0 0 0W * *", "x * * * *",
               "0 0 * * mon-", "H * * * *", "0 0 1,LW * *", "0 0 1 1 * 2027-2030/2", "",
               # ours only: a bound on length
               ",".join(["0"] * 600) + " * * * *"]

    def test_accepted_forms_fire_as_the_real_gateway(self) -> None:
        for expr, expected in self.ACCEPTED:
            with self.subTest(expr=expr):
                self.assertEqual(run(expr, "UTC", self.FROM, len(expected)), expected)

    def test_refused_forms(self) -> None:
        for expr in self.REFUSED:
            with self.subTest(expr=expr):
                self.assertRaises(sched.ScheduleError, sched.CronExpr, expr, "UTC")
                self.assertRaises(sched.ScheduleError, sched.normalize,
                                  {"kind": "cron", "expr": expr}, 0)

    def test_a_schedule_that_never_fires_is_refused(self) -> None:
        for expr in ("0 0 31 2 *", "1 2 3 4 5 6 7", "0 0 0 1 1 * 2025"):
            with self.subTest(expr=expr):
                with self.assertRaisesRegex(sched.ScheduleError, "would never fire"):
                    sched.normalize({"kind": "cron", "expr": expr}, ms(self.FROM))

    def test_unknown_zone_refused(self) -> None:
        self.assertRaises(sched.ScheduleError, sched.CronExpr, "* * * * *", "Mars/Base")


class HostZone(unittest.TestCase):
    def test_no_tz_uses_the_host_zone(self) -> None:
        with mock.patch.object(cronexpr, "HOST_ZONE", ZoneInfo(NY)):
            nxt = cronexpr.CronExpr("0 9 * * *").next_after(ms("2026-07-01T00:00:00Z"))
        self.assertEqual(iso(nxt), "2026-07-01T13:00:00Z")  # 09:00 EDT

    def test_host_zone_from_tz_variable(self) -> None:
        with mock.patch.dict("os.environ", {"TZ": ":Asia/Tokyo"}):
            self.assertEqual(str(cronexpr._host_zone()), "Asia/Tokyo")
        with mock.patch.dict("os.environ", {"TZ": "Not/AZone"}):
            self.assertEqual(cronexpr._host_zone(), UTC)

    def test_normalize_keeps_no_tz(self) -> None:
        out = sched.normalize({"kind": "cron", "expr": " 0 9 * * * "}, 0)
        self.assertEqual(out, {"kind": "cron", "expr": "0 9 * * *"})
