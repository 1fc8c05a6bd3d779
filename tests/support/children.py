"""Child processes in tests (gateways, node hosts, an IRC server): one ProcessProtocol that
keeps the combined output, knows when the process exited, optionally waits for a marker in the
output, and stops it (SIGTERM, then SIGKILL when the exit does not come)."""

from __future__ import annotations

from twisted.internet import defer, protocol, reactor
from twisted.python.failure import Failure


class ChildProcess(protocol.ProcessProtocol):
    def __init__(self, ready_marker: bytes | None = None) -> None:
        self.output = bytearray()
        self.exit: Failure | None = None
        self.ready_marker = ready_marker
        self.ready: defer.Deferred[None] = defer.Deferred()  # the marker appeared
        self._waiters: list[defer.Deferred[None]] = []

    def outReceived(self, data: bytes) -> None:
        self.output += data
        if self.ready_marker is not None and not self.ready.called and \
                self.ready_marker in self.output:
            self.ready.callback(None)

    errReceived = outReceived

    def processEnded(self, reason: Failure) -> None:
        self.exit = reason
        if self.ready_marker is not None and not self.ready.called:
            self.ready.errback(RuntimeError(
                f"exited before {self.ready_marker!r} appeared: {self.text[-500:]}"))
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            if not d.called:  # a waiter may have been cancelled by its own timeout
                d.callback(None)

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", "replace")

    @property
    def exit_code(self) -> int | None:
        return getattr(self.exit.value, "exitCode", None) if self.exit else None

    def signal(self, name: str) -> None:
        if self.exit is None and self.transport is not None:
            self.transport.signalProcess(name)

    def exited(self) -> defer.Deferred[None]:
        """Fires once the process has exited (callers add their own timeout)."""
        if self.exit is not None:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._waiters.append(d)
        return d

    async def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM and wait; SIGKILL when the exit does not come within ``timeout_s``."""
        if self.exit is not None or self.transport is None:
            return
        self.signal("TERM")
        try:
            await self.exited().addTimeout(timeout_s, reactor)
        except defer.TimeoutError:
            self.signal("KILL")
            await self.exited().addTimeout(timeout_s, reactor)
