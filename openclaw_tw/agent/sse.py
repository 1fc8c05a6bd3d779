"""Incremental ``text/event-stream`` (server-sent events) decoding, for streaming providers."""

from __future__ import annotations

import re
from typing import NamedTuple

MAX_LINE = 4 * 1024 * 1024  # one SSE line; a server that never sends a newline is broken
_EOL = re.compile(rb"\r\n|\r|\n")


class SSEEvent(NamedTuple):
    event: str
    data: str


class SSEParser:
    """Incremental ``text/event-stream`` decoder (WHATWG rules): feed bytes in any split, get
    the complete events.  LF, CRLF and CR line ends; ``:`` comments; multi-line data."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._buf = b""
        self._data: list[str] = []
        self._event = ""
        self._skip_lf = False  # the previous chunk ended in CR: a leading LF belongs to it
        self._first = True

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
        buf = self._buf + chunk if self._buf else chunk
        events: list[SSEEvent] = []
        start = 0
        for m in _EOL.finditer(buf):
            if m.group() == b"\r" and m.end() == len(buf):
                self._skip_lf = True
            self._line(buf[start : m.start()], events)
            start = m.end()
        self._buf = buf[start:]
        if len(self._buf) > self.max_line:
            raise ValueError(f"SSE line longer than {self.max_line} bytes")
        return events

    def close(self) -> list[SSEEvent]:
        """End of stream: a last unterminated line and event still count."""
        events: list[SSEEvent] = []
        if self._buf:
            self._line(self._buf, events)
            self._buf = b""
        self._line(b"", events)
        return events

    def _line(self, raw: bytes, events: list[SSEEvent]) -> None:
        line = raw.decode("utf-8", "replace")
        if self._first:
            self._first = False
            line = line.removeprefix("\ufeff")
        if not line:
            if self._data:
                events.append(SSEEvent(self._event or "message", "\n".join(self._data)))
            self._data, self._event = [], ""
            return
        if line.startswith(":"):
            return
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
