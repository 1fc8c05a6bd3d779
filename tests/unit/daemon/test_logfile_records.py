"""The log file's fast path for common records writes exactly what the generic path does."""

from __future__ import annotations

from typing import Any

from twisted.logger import LogLevel
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from openclaw_tw.daemon import logfile

WHEN = 1_795_000_123.4567


def generic(event: dict[str, Any]) -> dict[str, Any]:
    real = logfile._plain_record
    logfile._plain_record = lambda event: None  # type: ignore[assignment]
    try:
        return logfile.event_to_record(event)
    finally:
        logfile._plain_record = real  # type: ignore[assignment]


def event(fmt: Any, **fields: Any) -> dict[str, Any]:
    return {"log_format": fmt, "log_time": WHEN, "log_level": LogLevel.info,
            "log_namespace": "gateway/ws", "log_source": None, "log_logger": object(),
            **fields}


class PlainRecords(SynchronousTestCase):
    def test_common_records_take_the_fast_path_and_match(self) -> None:
        for ev in (
            event("client connected conn={conn} client={client} role={role} ip={ip} "
                  "device={device}", conn="c-1", client="cli", role="operator",
                  ip="127.0.0.1", device="abc"),
            event("no fields at all"),
            event("{n:>5} {x!r} {{literal}} {ok}", n=3, x="q", ok=True, none=None, f=1.5),
            event("a {message} field", message="shadowed", level="x"),
        ):
            fast = logfile._plain_record(ev)
            self.assertIsNotNone(fast, ev["log_format"])
            self.assertEqual(fast, generic(ev))
            self.assertEqual(list(fast), list(generic(ev)))  # same key order on disk
        self.assertEqual(fast["time"], "2026-11-18T11:08:43.456Z")  # type: ignore[index]

    def test_anything_else_takes_the_generic_path(self) -> None:
        try:
            raise ValueError("boom")
        except ValueError:
            failure = Failure()
        for ev in (
            event("token {token}", token="s3cret"),           # a secret field: redacted
            event("params {params}", params={"auth": {"token": "x"}}),  # nested: redacted
            event("call {f()}", f=lambda: "called"),             # call syntax
            event("missing {nope}"),                             # unformattable
            event(b"bytes format"),
            event(None, text="no format"),
            event("failed", log_failure=failure),
            event("values {v}", v=[1, 2]),
            event("object {o}", o=object()),
        ):
            self.assertIsNone(logfile._plain_record(ev), ev["log_format"])
            record = logfile.event_to_record(ev)
            self.assertEqual(record["time"], "2026-11-18T11:08:43.456Z")
        self.assertEqual(logfile.event_to_record(event("token {token}", token="s3cret"))
                         ["message"], "token [redacted]")

    def test_the_cached_second_follows_the_clock(self) -> None:
        self.assertEqual(logfile._timestamp(WHEN), "2026-11-18T11:08:43.456Z")
        self.assertEqual(logfile._timestamp(WHEN + 0.5), "2026-11-18T11:08:43.956Z")
        self.assertEqual(logfile._timestamp(WHEN + 1), "2026-11-18T11:08:44.456Z")
        self.assertEqual(logfile._timestamp(WHEN - 86400), "2026-11-17T11:08:43.456Z")
