"""Server-sent events on a twisted.web request: ``data: {json}`` and ``event: <type>`` frames,
the closing ``data: [DONE]``, and writes that stop quietly once the client is gone."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request

from openclaw_tw import _json
from openclaw_tw.web.http import gone


class EventStream:
    def __init__(self, request: Request) -> None:
        self.request = request
        request.setResponseCode(200)
        request.setHeader(b"Content-Type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-cache")
        request.setHeader(b"Connection", b"keep-alive")
        request.write(b"")  # status line and headers go out now (chunked body follows)

    @property
    def closed(self) -> bool:
        return gone(self.request)

    def data(self, obj: Any) -> None:
        self._write(b"data: " + _json.dumps(obj) + b"\n\n")

    def event(self, name: str, obj: Any) -> None:
        self._write(b"event: " + name.encode("utf-8") + b"\ndata: " + _json.dumps(obj) + b"\n\n")

    def done(self) -> None:
        """``data: [DONE]`` and the end of the response."""
        self._write(b"data: [DONE]\n\n")
        if not self.closed:
            self.request.finish()

    def _write(self, frame: bytes) -> None:
        if not self.closed:
            self.request.write(frame)
