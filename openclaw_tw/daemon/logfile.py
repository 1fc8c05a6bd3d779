"""Logging: a rolling JSON-lines file in the state dir (served by ``logs.tail``) and stdout.

File writes happen on a writer thread fed by a queue, so logging never blocks the reactor.
Secrets are redacted from structured fields before anything is written.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from twisted.application.service import Service
from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    formatEventAsClassicLogText,
    globalLogPublisher,
)
from zope.interface import implementer

from openclaw_tw import _json

SECRET_KEYS = frozenset(
    {"token", "password", "secret", "authorization", "deviceToken", "bootstrapToken", "auth"}
)
REDACTED = "[redacted]"
_RESERVED = frozenset({"format", "message", "isError", "system", "time", "level", "subsystem",
                       "why", "failure"})
KEEP_DAYS = 7


def redact(value: Any, depth: int = 0) -> Any:
    if depth > 6:
        return value
    if isinstance(value, dict):
        return {
            k: (REDACTED if k in SECRET_KEYS else redact(v, depth + 1)) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v, depth + 1) for v in value]
    return value


def log_dir(state_dir: Path) -> Path:
    return state_dir / "logs"


def log_file_for(directory: Path, when: float) -> Path:
    return directory / time.strftime("openclaw-%Y-%m-%d.log", time.gmtime(when))


def _json_safe(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return repr(value)


_PLAIN = frozenset({str, int, float, bool, type(None)})  # kept as they are (no redaction)
_second: tuple[int, str] = (-1, "")  # the last whole second formatted, and its text


def _timestamp(when: float) -> str:
    """``2026-01-02T03:04:05.678Z``; the seconds part is formatted once per second."""
    global _second
    whole = int(when // 1)
    cached, text = _second
    if whole != cached:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when))
        _second = (whole, text)
    return text + f".{int((when % 1) * 1000):03d}Z"


def _plain_record(event: dict[str, Any]) -> dict[str, Any] | None:
    """The record of a common event -- a ``{name}``-only format, fields that are strings,
    numbers or None, no secret-named field, no failure -- built without the generic path's
    redacted copies and ``string.Formatter``; ``None`` for anything else (the same record
    comes out either way, tests/unit/daemon/test_logfile_records.py)."""
    fmt = event.get("log_format")
    if type(fmt) is not str or "()" in fmt or "log_failure" in event \
            or "log_flattened" in event:
        return None
    fields = {}
    for key, value in event.items():
        if key.startswith("log_"):
            continue
        if key in SECRET_KEYS or type(value) not in _PLAIN:
            return None
        if key not in _RESERVED:
            fields[key] = value
    try:
        message = fmt.format_map(event)
    except Exception:
        return None  # formatEvent says why, on the generic path
    level = event.get("log_level")
    record: dict[str, Any] = {
        "time": _timestamp(event.get("log_time", time.time())),
        "level": getattr(level, "name", "info"),
        "subsystem": event.get("log_namespace", ""),
        "message": message,
    }
    record.update(fields)
    return record


def event_to_record(event: dict[str, Any]) -> dict[str, Any]:
    fast = _plain_record(event)
    if fast is not None:
        return fast
    when = event.get("log_time", time.time())
    record: dict[str, Any] = {
        "time": _timestamp(when),
        "level": getattr(event.get("log_level"), "name", "info"),
        "subsystem": event.get("log_namespace", ""),
        # Format from a redacted copy, so a secret passed as a field never reaches the text.
        "message": formatEvent(
            {k: (REDACTED if k in SECRET_KEYS else v) for k, v in event.items()}
        ),
    }
    for key, value in event.items():
        if key.startswith("log_") or key in _RESERVED:
            continue
        record[key] = REDACTED if key in SECRET_KEYS else _json_safe(redact(value))
    failure = event.get("log_failure")
    if failure is not None:
        record["traceback"] = failure.getTraceback()
    return record


@implementer(ILogObserver)
class JsonLinesFileObserver:
    """Queue records to a writer thread that appends to the day's file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="openclaw-log", daemon=True)
        self._started = False
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any]) -> None:
        try:
            line = _json.dumps(event_to_record(event)) + b"\n"
        except Exception:
            return
        self._queue.put(line)
        if not self._started:
            with self._lock:
                if not self._started:
                    self._started = True
                    self._thread.start()

    def current_file(self) -> Path:
        return log_file_for(self.directory, time.time())

    def _run(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        handle: IO[bytes] | None = None
        path: Path | None = None
        while True:
            item = self._queue.get()
            if item is None:
                break
            target = self.current_file()
            if target != path:
                if handle is not None:
                    handle.close()
                path = target
                handle = open(path, "ab")
                self._prune()
            assert handle is not None
            handle.write(item)
            while True:  # batch whatever else is queued before flushing
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    handle.flush()
                    handle.close()
                    return
                handle.write(more)
            handle.flush()
        if handle is not None:
            handle.close()

    def _prune(self) -> None:
        files = sorted(self.directory.glob("openclaw-*.log"))
        for old in files[:-KEEP_DAYS]:
            try:
                old.unlink()
            except OSError:
                pass

    def stop(self) -> None:
        if self._started:
            self._queue.put(None)
            self._thread.join(timeout=2)


@implementer(ILogObserver)
class HumanStdoutObserver:
    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout

    def __call__(self, event: dict[str, Any]) -> None:
        text = formatEventAsClassicLogText(event)
        if text:
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):
                pass


def stdout_observer(level: LogLevel = LogLevel.info) -> ILogObserver:
    return FilteringLogObserver(
        HumanStdoutObserver(), [LogLevelFilterPredicate(defaultLogLevel=level)]
    )


class LogFileService(Service):
    """Attaches the JSON-lines observer while the gateway runs.

    Added at start (not in makeService) so twistd's replay of its start-up buffer does not
    write those lines twice.
    """

    name = "logfile"

    def __init__(self, observer: JsonLinesFileObserver) -> None:
        self.observer = observer

    def startService(self) -> None:
        super().startService()
        level = LogLevel.debug if os.environ.get("OPENCLAW_TW_DEBUG") else LogLevel.info
        self._filtered = FilteringLogObserver(
            self.observer, [LogLevelFilterPredicate(defaultLogLevel=level)])
        globalLogPublisher.addObserver(self._filtered)

    def stopService(self) -> None:
        super().stopService()
        globalLogPublisher.removeObserver(self._filtered)
        self.observer.stop()
