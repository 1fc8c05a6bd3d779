"""``logs.tail``: cursor-based reads of our rolling JSON-lines log file (off the reactor)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from twisted.internet.defer import Deferred

from openclaw_tw.protocol.dispatch import CallContext, rpc
from openclaw_tw.protocol.schema import Int, Obj

DEFAULT_LIMIT = 200
DEFAULT_MAX_BYTES = 250_000

LOGS_TAIL_PARAMS = Obj(
    optional={
        "cursor": Int(minimum=0),
        "limit": Int(minimum=1, maximum=5000),
        "maxBytes": Int(minimum=1, maximum=1_000_000),
    }
)


def tail(path: Path, cursor: int | None, limit: int, max_bytes: int) -> dict[str, Any]:
    """Read complete lines after ``cursor`` (a byte offset); without a cursor, the last lines.

    ``truncated`` says more lines exist than were returned (before them for a tail read, after
    them for a cursor read); ``reset`` says the cursor was past the end (the file rotated).
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return {"file": str(path), "cursor": 0, "size": 0, "lines": [], "truncated": False,
                "reset": bool(cursor)}
    reset = cursor is not None and cursor > size
    from_tail = cursor is None or reset
    start = max(0, size - max_bytes) if from_tail else int(cursor or 0)
    end = min(size, start + max_bytes)
    with open(path, "rb") as f:
        f.seek(start)
        chunk = f.read(end - start)
    if from_tail and start > 0:
        cut = chunk.find(b"\n")  # drop the partial first line
        chunk = chunk[cut + 1:] if cut >= 0 else b""
        start = end - len(chunk)
    raw = chunk[: chunk.rfind(b"\n") + 1].split(b"\n")[:-1]
    if from_tail:
        truncated = start > 0 or len(raw) > limit
        new_cursor = start + sum(len(line) + 1 for line in raw)
        raw = raw[-limit:]
    else:
        raw = raw[:limit]
        new_cursor = start + sum(len(line) + 1 for line in raw)
        truncated = new_cursor < size
    lines = [line.decode("utf-8", "replace") for line in raw]
    result: dict[str, Any] = {"file": str(path), "cursor": new_cursor, "size": size,
                              "lines": lines, "truncated": truncated, "reset": reset}
    if not from_tail and not raw and end < size:
        # One line is longer than maxBytes: skip it whole so a follow loop keeps moving.
        skip_to = _next_line_start(path, end, size)
        result.update(cursor=skip_to, skippedBytes=skip_to - start, truncated=skip_to < size)
    return result


def _next_line_start(path: Path, offset: int, size: int, block: int = 65536) -> int:
    with open(path, "rb") as f:
        f.seek(offset)
        while offset < size:
            data = f.read(block)
            if not data:
                break
            nl = data.find(b"\n")
            if nl >= 0:
                return offset + nl + 1
            offset += len(data)
    return size


@attrs.define
class LogsMethods:
    """``logs.tail`` over the current log file, read with ``run_blocking`` (off the reactor)."""

    _log_file: Callable[[], Path]
    _run_blocking: Callable[..., Deferred[Any]]

    @rpc("logs.tail", LOGS_TAIL_PARAMS)
    def logs_tail(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        return self._run_blocking(
            tail,
            self._log_file(),
            params.get("cursor"),
            params.get("limit", DEFAULT_LIMIT),
            params.get("maxBytes", DEFAULT_MAX_BYTES),
        )
