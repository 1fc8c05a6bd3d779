"""Supervised channel accounts: one child service per enabled provider account.

``AccountService`` owns the lifecycle every provider shares: connect, exponential backoff with
jitter on the injected clock, reconnect after a lost connection, stop within a deadline, and a
status row (``channels.status``).  Provider faults are caught here and become ``lastError`` —
they never reach the control plane.  ``ChannelManager`` builds the children from the config and,
on reload, restarts only the accounts whose config changed.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
from twisted.application.service import MultiService, Service
from twisted.internet.defer import (
    Deferred,
    gatherResults,
    maybeDeferred,
    succeed,
)
from twisted.internet.defer import TimeoutError as DeadlinePassed
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from openclaw_tw.channels.accounts import configured_accounts
from openclaw_tw.channels.ingress import BACKLOG, MAX_IN_FLIGHT
from openclaw_tw.channels.message import Inbound
from openclaw_tw.channels.policy import dm_policy

if TYPE_CHECKING:
    from openclaw_tw.channels.cursors import Cursors
    from openclaw_tw.channels.ingress import Ingress
    from openclaw_tw.channels.router import ChannelRouter
    from openclaw_tw.hub.gateway import Gateway

_log = Logger(namespace="openclaw.channels")

BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 60.0
STOP_DEADLINE_S = 5.0


def backoff_delay(attempt: int, rand: Callable[[], float] = random.random) -> float:
    """1 s, 2 s, 4 s … capped at 60 s, each ±20 % so many accounts do not retry in step."""
    base = min(BACKOFF_MAX_S, BACKOFF_BASE_S * (2 ** max(0, attempt - 1)))
    return base * (0.8 + 0.4 * rand())


@attrs.frozen
class ChannelContext:
    """What every account gets besides its own config: the hub (clock, time, settings,
    blocking work), the router its messages go to, the durable inbound queue and the provider
    cursors (both in nodes.sqlite)."""

    hub: Gateway
    router: ChannelRouter
    ingress: Ingress
    cursors: Cursors


class AccountService(Service):
    """One provider account.  Subclasses implement ``connect`` (fires once the session is up),
    ``disconnect`` and ``deliver``, and call ``inbound``/``lost`` from their protocol."""

    channel = ""

    def __init__(self, account_id: str, config: Mapping[str, Any], ctx: ChannelContext) -> None:
        self.account_id = account_id
        self.config = dict(config)
        self.gw = ctx.hub
        self.router = ctx.router
        self.ingress = ctx.ingress
        self.cursors = ctx.cursors
        self.clock = ctx.hub.clock
        self.setName(f"{self.channel}:{account_id}")
        self.connected = False
        self.attempts = 0
        self.last_error: str | None = None
        self.last_connected_at: int | None = None
        self.last_start_at: int | None = None
        self.last_stop_at: int | None = None
        self.last_inbound_at: int | None = None
        self.last_outbound_at: int | None = None
        self._retry: IDelayedCall | None = None
        self._waiting: list[Deferred[None]] = []
        self._losing: list[Deferred[str]] = []
        self.in_flight = 0
        self.refused = 0

    # -- provider hooks ------------------------------------------------------------------------

    def connect(self) -> Deferred[Any]:
        raise NotImplementedError

    def disconnect(self) -> Deferred[Any]:
        return succeed(None)

    def deliver(self, to: str, text: str, reply_to: str | None = None,
                thread_id: str | None = None) -> Deferred[Any]:
        raise NotImplementedError

    def logout(self) -> Deferred[Any]:
        """Drop session credentials the provider minted (``channels.logout``; optional)."""
        return succeed(None)

    def probe(self) -> Deferred[dict[str, Any]]:
        """A live check for ``channels.status --probe``: ``{"ok": bool, ...}``."""
        return succeed({"ok": self.connected, **({} if self.connected else {
            "error": self.last_error or "not connected"})})

    def access_config(self) -> dict[str, Any]:
        """The config the access policy reads (a provider may resolve names in it)."""
        return self.config

    def backlog(self) -> None:
        """``BACKLOG`` messages are in flight: stop reading from the provider (optional)."""

    def drained(self) -> None:
        """The backlog fell below ``BACKLOG`` again: resume reading (optional)."""

    def typing(self, msg: Inbound) -> Callable[[], None]:
        """Show "typing…" in ``msg``'s conversation while its turn runs; returns the stop
        function (optional; best effort)."""
        return lambda: None

    # -- lifecycle -----------------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self.last_start_at = self.gw.now_ms()
        self._attempt()

    def stopService(self) -> Deferred[Any]:
        super().stopService()
        self.last_stop_at = self.gw.now_ms()
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        done = maybeDeferred(self.disconnect).addTimeout(STOP_DEADLINE_S, self.clock)

        def overdue(failure: Failure) -> None:
            if failure.check(DeadlinePassed):
                _log.warn("{name} did not stop within {s}s; dropped", name=self.name,
                          s=STOP_DEADLINE_S)
                return None
            return self._fault(failure, "disconnect")

        def settled(result: Any) -> None:
            self.connected = False

        return done.addErrback(overdue).addBoth(settled)

    def _attempt(self) -> None:
        self._retry = None
        if not self.running:
            return
        d = maybeDeferred(self.connect)
        d.addCallbacks(self._up, self._down)

    def _up(self, _: Any) -> None:
        self.connected = True
        self.attempts = 0
        self.last_error = None
        self.last_connected_at = self.gw.now_ms()
        _log.info("{name} connected", name=self.name)
        self._replay()
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(None)

    def when_connected(self) -> Deferred[None]:
        """Fires once the account is (or next becomes) connected."""
        if self.connected:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._waiting.append(d)
        return d

    def _down(self, failure: Failure) -> None:
        self.lost(failure.getErrorMessage() or failure.type.__name__)

    def lost(self, reason: str) -> None:
        """The connection failed or dropped: record why and retry after a backoff."""
        self.connected = False
        self.last_error = reason
        if self.running and self._retry is None:
            self.attempts += 1
            delay = backoff_delay(self.attempts)
            _log.warn("{name} disconnected ({reason}); retry {n} in {delay:.1f}s",
                      name=self.name, reason=reason, n=self.attempts, delay=delay)
            self._retry = self.clock.callLater(delay, self._attempt)
        losing, self._losing = self._losing, []
        for d in losing:
            d.callback(reason)

    def when_lost(self) -> Deferred[str]:
        """Fires with the reason the next time a connection attempt fails or drops."""
        d: Deferred[str] = Deferred()
        self._losing.append(d)
        return d

    # -- traffic -------------------------------------------------------------------------------

    def inbound(self, msg: Inbound, polled: bool = False) -> Deferred[bool]:
        """Accept one message: fires ``True`` once it is durably queued (its turn then runs on
        its own), ``False`` when it was refused (queue full, or the write failed).  ``polled``
        messages come in a batch the provider asked for while not backlogged (bounded by its
        request); they are never refused, since refusing would lose what the cursor passed."""
        now = self.gw.now_ms()
        self.last_inbound_at = now
        if self.in_flight >= MAX_IN_FLIGHT and not polled:
            self.refused += 1
            self.gw.metrics.channel_message(self.channel, "refused")
            self.last_error = f"inbound queue full ({MAX_IN_FLIGHT} in flight); message dropped"
            _log.warn("{name}: {error}", name=self.name, error=self.last_error)
            return succeed(False)
        self._took()
        self.gw.metrics.channel_message(self.channel, "in")

        def accepted(row_id: int) -> bool:
            self._dispatch(row_id, msg)
            return True

        def not_accepted(failure: Failure) -> bool:
            self._released()
            self._fault(failure, "accepting an inbound message")
            return False

        return self.ingress.accept(msg, now).addCallbacks(accepted, not_accepted)

    def _dispatch(self, row_id: int, msg: Inbound) -> None:
        d = maybeDeferred(self.router.handle, self, msg)
        d.addErrback(self._fault, "inbound")

        def finished(_: Any) -> Deferred[Any]:
            self._released()
            return self.ingress.done(row_id)

        d.addCallback(finished).addErrback(self._fault, "finishing an inbound message")

    def _replay(self) -> None:
        """Dispatch what an earlier run accepted but did not finish."""
        unfinished = self.ingress.take_unfinished(self.channel, self.account_id)
        if unfinished:
            _log.info("{name}: replaying {n} unfinished inbound message(s)", name=self.name,
                      n=len(unfinished))
        for row_id, msg in unfinished:
            self._took()
            self._dispatch(row_id, msg)

    @property
    def backlogged(self) -> bool:
        return self.in_flight >= BACKLOG

    def _took(self) -> None:
        self.in_flight += 1
        if self.in_flight == BACKLOG:
            _log.warn("{name}: {n} messages in flight; pausing intake", name=self.name,
                      n=BACKLOG)
            self.backlog()

    def _released(self) -> None:
        self.in_flight -= 1
        if self.in_flight == BACKLOG - 1 and self.running:
            self.drained()

    def sent(self) -> None:
        self.last_outbound_at = self.gw.now_ms()

    def _fault(self, failure: Failure, where: str) -> None:
        self.last_error = f"{where}: {failure.getErrorMessage()}"
        _log.failure("{name} {where} failed", failure, name=self.name, where=where)

    def status(self) -> dict[str, Any]:
        return {
            **idle_status(self.account_id, self.config),
            "running": bool(self.running), "connected": self.connected,
            "reconnectAttempts": self.attempts, "lastError": self.last_error,
            "healthState": "healthy" if self.connected else (
                "reconnecting" if self.running else "stopped"),
            "lastConnectedAt": self.last_connected_at, "lastStartAt": self.last_start_at,
            "lastStopAt": self.last_stop_at, "lastInboundAt": self.last_inbound_at,
            "lastOutboundAt": self.last_outbound_at,
            "busy": self.in_flight > 0, "activeRuns": self.in_flight,
            "backlogged": self.backlogged, "refusedInbound": self.refused,
        }


def idle_status(account_id: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``channels.status`` row of an enabled account with no running service."""
    return {
        "accountId": account_id, "enabled": True, "running": False, "connected": False,
        "reconnectAttempts": 0, "lastError": None, "healthState": "stopped",
        "lastConnectedAt": None, "lastStartAt": None, "lastStopAt": None,
        "lastInboundAt": None, "lastOutboundAt": None, "busy": False, "activeRuns": 0,
        "dmPolicy": dm_policy(config),
    }


ProviderFactory = Callable[[str, Mapping[str, Any], ChannelContext], AccountService]


class ChannelManager(MultiService):
    """The enabled accounts of every provider this build has, as named child services."""

    name = "channels"

    def __init__(self, ctx: ChannelContext, providers: Mapping[str, ProviderFactory]) -> None:
        super().__init__()
        self.ctx = ctx
        self.gw = ctx.hub
        self.router = ctx.router
        self.providers = dict(providers)

    def account(self, channel: str, account_id: str) -> AccountService | None:
        try:
            child = self.getServiceNamed(f"{channel}:{account_id}")
        except KeyError:
            return None
        return child if isinstance(child, AccountService) else None

    def accounts(self) -> list[AccountService]:
        return [s for s in self if isinstance(s, AccountService)]

    def startService(self) -> None:
        self.configure(configured_accounts(self.gw.settings.raw))
        super().startService()

    def start_account(self, channel: str, account_id: str,
                      config: Mapping[str, Any]) -> AccountService:
        existing = self.account(channel, account_id)
        if existing is not None:
            return existing
        svc = self.providers[channel](account_id, config, self.ctx)
        svc.setServiceParent(self)
        return svc

    def stop_account(self, channel: str, account_id: str) -> Deferred[Any]:
        svc = self.account(channel, account_id)
        if svc is None:
            return succeed(False)
        return maybeDeferred(self.removeService, svc).addCallback(lambda _: True)

    def configure(self, wanted: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> Deferred[Any]:
        """Make the children match ``{channel: {accountId: config}}``: stop removed or changed
        accounts, start new or changed ones, leave the rest alone."""
        stops: list[Deferred[Any]] = []
        keep: set[str] = set()
        for child in self.accounts():
            cfg = wanted.get(child.channel, {}).get(child.account_id)
            if cfg is not None and dict(cfg) == child.config:
                keep.add(child.name)
                continue
            stops.append(maybeDeferred(self.removeService, child))
        for channel, by_id in wanted.items():
            factory = self.providers.get(channel)
            if factory is None:
                continue
            for account_id, cfg in by_id.items():
                if f"{channel}:{account_id}" in keep:
                    continue
                try:
                    factory(account_id, cfg, self.ctx).setServiceParent(self)
                except Exception:
                    _log.failure("could not start {channel}:{account}", channel=channel,
                                 account=account_id)
        return gatherResults(stops, consumeErrors=True)
