"""In-process restart: the gateway tree is replaced without the process exiting.

The real gateway restarts in process when a config change needs it (its ``hybrid`` reload
mode), on ``SIGUSR2``, and on request.  ``RestartableGateway`` is the root service ``twistd``
runs: it keeps what must outlive a restart (the JSON-lines log file) and holds the gateway
tree that ``tap.gateway_tree`` builds from settings.  A restart:

1. **drains** (bounded by ``drain_s``): turns already running or queued are left to finish,
   so an acknowledged ``chat.send`` is answered, not lost;
2. **stops the tree as SIGTERM does** (``tap``'s order: the port stops accepting, channels,
   turns still running are aborted and persisted, clients get ``shutdown`` — here with
   ``restartExpectedMs`` — and close 1012, the databases close after every write);
3. **re-reads the config** (a file that no longer validates keeps the settings in force) and
   builds and starts a new tree, listening again on the port.

Requests made while one is pending or running are coalesced into it: every caller gets the
same outcome.  A failure to build the new tree is logged and the process exits non-zero, so
a supervisor restarts it from scratch.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

from twisted.application.service import IService, MultiService
from twisted.internet.defer import Deferred, ensureDeferred, maybeDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from openclaw_tw.config.settings import ConfigError, GatewaySettings

_log = Logger(namespace="gateway.restart")

DRAIN_S = 30.0  # turns running or queued when a restart is asked get this long to finish
DRAIN_POLL_S = 0.1
RESTART_EXPECTED_MS = 2_000  # what clients are told in ``shutdown.restartExpectedMs``


class RestartableGateway(MultiService):
    def __init__(self, build: Callable[[GatewaySettings, RestartableGateway], tuple[IService, Any]],
                 settings: GatewaySettings, resolve: Callable[[], GatewaySettings],
                 clock: IReactorTime, *, keep: tuple[IService, ...] = (),
                 drain_s: float = DRAIN_S, install_signal: bool = False,
                 on_fatal: Callable[[], None] | None = None) -> None:
        super().__init__()
        self._build = build
        self._resolve = resolve
        self.clock = clock
        self.drain_s = drain_s
        self.install_signal = install_signal
        self.on_fatal = on_fatal
        self.settings = settings
        self.restarts = 0
        self._pending: list[Deferred[None]] = []
        self._running_restart: Deferred[None] | None = None
        self._busy = False
        self._joinable: list[Deferred[None]] | None = None  # waiters of the running restart
        self._old_handler: Any = None
        for service in keep:
            service.setServiceParent(self)
        self.tree, self.app = build(settings, self)
        self.tree.setServiceParent(self)

    def getServiceNamed(self, name: str) -> IService:
        """A kept service, or one of the current tree's (``gateway``, ``listener``, ...)."""
        if name in self.namedServices:
            return super().getServiceNamed(name)
        return self.tree.getServiceNamed(name)  # type: ignore[attr-defined,no-any-return]

    # -- lifecycle -----------------------------------------------------------------------------

    def startService(self) -> None:
        # Before the children start: the tree's sdnotify says READY=1 as it starts, and a
        # SIGUSR2 sent on READY=1 must find the handler (its default action kills us).
        if self.install_signal and hasattr(signal, "SIGUSR2"):
            self._old_handler = signal.signal(signal.SIGUSR2, self._on_signal)
        super().startService()

    def stopService(self) -> Deferred[None]:
        if self._old_handler is not None:
            signal.signal(signal.SIGUSR2, self._old_handler)
            self._old_handler = None
        # The tree first (its own order), the kept services after it (the log file last).
        self.running = 0
        return ensureDeferred(self._stop_all())

    async def _stop_all(self) -> None:
        if self._running_restart is not None:
            await _quiet(self._running_restart)
        for child in reversed(list(self)):
            await _quiet(maybeDeferred(child.stopService))

    def _on_signal(self, signum: int, frame: Any) -> None:
        # Signal context: only schedule; repeated signals coalesce in request().
        reactor = getattr(self.app, "reactor", None)
        if reactor is not None:
            reactor.callFromThread(self.request, "SIGUSR2")

    # -- restarting ----------------------------------------------------------------------------

    def request(self, reason: str) -> Deferred[None]:
        """Restart the tree; fires when the new tree serves (or the restart failed).

        Coalesced: a request made while a restart is pending, or running but has not yet
        read the config, is served by that restart; one made after it read the config
        gets one more restart (shared by every request made meanwhile)."""
        d: Deferred[None] = Deferred()
        if self._joinable is not None:
            _log.info("restart requested ({reason}): joins the restart under way",
                      reason=reason)
            self._joinable.append(d)
            return d
        self._pending.append(d)
        if self._busy:
            _log.info("restart requested ({reason}): after the restart under way",
                      reason=reason)
        elif len(self._pending) == 1:
            _log.info("restart requested ({reason})", reason=reason)
            self.clock.callLater(0, self._begin, reason)
        else:
            _log.info("restart requested ({reason}): joins the pending restart", reason=reason)
        return d

    def _begin(self, reason: str) -> None:
        self._joinable, self._pending = self._pending, []
        waiters = self._joinable
        self._busy = True

        def done(result: Any) -> None:
            if isinstance(result, Failure):
                _log.failure("restart failed", result)
            self._busy = False
            self._running_restart = None
            self._joinable = None
            for w in waiters:
                w.callback(None)
            if self._pending:  # asked after this one read the config: one more, for all
                self.clock.callLater(0, self._begin, "requests during the last restart")

        self._running_restart = ensureDeferred(self._restart(reason))
        self._running_restart.addBoth(done)

    async def _restart(self, reason: str) -> None:
        if not self.running:
            return
        started = self.clock.seconds()
        await self._drain()
        hub = getattr(self.app, "hub", None)
        if hub is not None:
            hub.restart_expected_ms = RESTART_EXPECTED_MS
        await _quiet(maybeDeferred(self.tree.stopService))
        self._detach(self.tree)
        self._joinable = None  # from here on, a request needs a restart of its own
        try:
            self.settings = self._resolve()
        except ConfigError as e:
            _log.warn("restart: the config no longer resolves ({error}); restarting with the "
                      "settings in force", error=str(e))
        try:
            self.tree, self.app = self._build(self.settings, self)
            self.tree.setServiceParent(self)  # starts it: we are running
        except Exception:
            _log.failure("restart failed: the gateway could not be rebuilt; exiting")
            if self.on_fatal is not None:
                self.on_fatal()
            return
        self.restarts += 1
        _log.info("gateway restarted in process ({reason}) in {ms} ms", reason=reason,
                  ms=int((self.clock.seconds() - started) * 1000))

    def _detach(self, tree: IService) -> None:
        """Take the stopped tree out (``removeService`` would stop it a second time)."""
        self.services.remove(tree)
        if tree.name is not None:
            self.namedServices.pop(tree.name, None)
        tree.parent = None  # type: ignore[attr-defined]

    async def _drain(self) -> None:
        """Wait (bounded) until no turn is running or queued."""
        runtime = getattr(self.app, "runtime", None)
        if runtime is None:
            return
        deadline = self.clock.seconds() + self.drain_s
        while (runtime.active or any(runtime.queues.values())) and \
                self.clock.seconds() < deadline:
            d: Deferred[None] = Deferred()
            self.clock.callLater(DRAIN_POLL_S, d.callback, None)
            await d
        if runtime.active or any(runtime.queues.values()):
            _log.warn("restart: {n} turn(s) still running after {s:.0f} s; aborted and "
                      "persisted as on SIGTERM", n=len(runtime.active), s=self.drain_s)


async def _quiet(d: Deferred[Any]) -> None:
    try:
        await d
    except Exception:
        _log.failure("restart: a step failed")
