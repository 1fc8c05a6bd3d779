"""Streaming a large Control UI file to the client without holding the reactor."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Request
from zope.interface import implementer

from openclaw_tw.web import ui_build
from openclaw_tw.web.http import gone

if TYPE_CHECKING:
    from openclaw_tw.hub.gateway import Gateway

_log = Logger(namespace="gateway/control-ui")


@implementer(IPushProducer)
class FileStreamer:
    """Streams a large file: each chunk is read in the thread pool and written when it
    arrives; the transport's pause/resume paces the reads, so neither a slow disk nor a slow
    client holds the reactor or buffers the file in memory."""

    def __init__(self, hub: Gateway, request: Request, fd: int, size: int) -> None:
        self.hub, self.request, self.fd, self.size = hub, request, fd, size
        self.offset = 0
        self.busy = self.paused = self.closed = False

    def start(self) -> None:
        self.request.registerProducer(self, True)
        self.request.notifyFinish().addBoth(lambda _: self._close())
        self._next()

    def _next(self) -> None:
        if self.busy or self.paused or self.closed:
            return
        self.busy = True
        d = self.hub.run_blocking(ui_build.read_chunk, self.fd, self.offset)
        d.addCallbacks(self._got, self._failed)

    def _got(self, data: bytes) -> None:
        self.busy = False
        if self.closed or gone(self.request):
            self._close()
            return
        self.offset += len(data)
        done = not data or self.offset >= self.size
        if done:
            self._close()
        if data:
            self.request.write(data)
        if done:
            self.request.unregisterProducer()
            self.request.finish()
        else:
            self._next()

    def _failed(self, failure: Failure) -> None:
        self.busy = False
        _log.failure("control UI: reading a file failed", failure)
        self._close()
        if not gone(self.request):
            self.request.unregisterProducer()
            self.request.loseConnection()

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self._next()

    def stopProducing(self) -> None:
        self._close()

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                os.close(self.fd)
            except OSError:
                pass

