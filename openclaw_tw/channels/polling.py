"""What the HTTP long-poll providers (Telegram ``getUpdates``, Matrix ``/sync``) share.

One treq client on a persistent connection pool per account; every API call is tracked so that
stopping waits for deliveries in flight before it closes the pool (a socket handed back to a
closed pool would leak).  One poll at a time: ``poll()`` fetches a batch and queues it durably
(``AccountService.inbound``); the next poll starts when the batch is queued — and, while the
account is backlogged (too many accepted messages still running), only once the backlog drains.
That is the backpressure: a flooding chat waits on the provider's server, not in our memory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, DeferredList, fail
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure

from openclaw_tw.channels.manager import AccountService, ChannelContext
from openclaw_tw.channels.message import Inbound

if TYPE_CHECKING:
    pass


class PollingAccount(AccountService):
    def __init__(self, account_id: str, config: Mapping[str, Any], ctx: ChannelContext) -> None:
        super().__init__(account_id, config, ctx)
        self._pool: Any = None
        self._http: Any = None
        self._poll: Deferred[Any] | None = None
        self._poll_retry: IDelayedCall | None = None
        self._calls: set[Deferred[Any]] = set()

    # -- provider hooks ------------------------------------------------------------------------

    def poll(self) -> Deferred[Any]:
        """Fetch one batch and queue it; fires when the next poll may start."""
        raise NotImplementedError

    def poll_failed(self, failure: Failure) -> None:
        """A poll failed: retry (``poll_later``) or give the connection up (``lost``)."""
        self.lost(f"poll failed: {failure.getErrorMessage() or failure.type.__name__}")

    async def send_text(self, to: str, text: str, reply_to: str | None,
                        thread_id: str | None) -> Any:
        """Post ``text`` (chunked to the provider's limit) to ``to``."""
        raise NotImplementedError

    def deliver(self, to: str, text: str, reply_to: str | None = None,
                thread_id: str | None = None) -> Deferred[Any]:
        if not self.connected:
            return fail(ConnectionError(f"{self.name} is not connected"))
        return Deferred.fromCoroutine(self.send_text(to, text, reply_to, thread_id))

    def queue_batch(self, msgs: list[Inbound], cursor: str) -> Deferred[Any]:
        """Queue a fetched batch durably (channels.ingress), then persist the provider's cursor
        past it — so the server is told "done" only once nothing in the batch can be lost."""
        d = DeferredList([self.inbound(m, polled=True) for m in msgs], consumeErrors=True)
        d.addCallback(lambda _: self.cursors.save(self.channel, self.account_id,
                                                              cursor))
        return d.addErrback(self._fault, "saving the cursor")

    # -- HTTP ----------------------------------------------------------------------------------

    def http(self) -> Any:
        if self._http is None:
            from openclaw_tw.httpclient import http_client

            self._http, self._pool = http_client(self.gw.reactor)
        return self._http

    def track(self, d: Deferred[Any]) -> Deferred[Any]:
        self._calls.add(d)

        def done(result: Any) -> Any:
            self._calls.discard(d)
            return result

        return d.addBoth(done)

    def disconnect(self) -> Deferred[Any]:
        poll, self._poll = self._poll, None
        if poll is not None:
            poll.cancel()
        if self._poll_retry is not None and self._poll_retry.active():
            self._poll_retry.cancel()
        self._poll_retry = None
        pending = list(self._calls)
        pool = self._pool

        def close(_: Any) -> Any:
            if self._pool is pool:
                self._pool = self._http = None
            return pool.closeCachedConnections() if pool is not None else None

        return DeferredList(pending, consumeErrors=True).addCallback(close)

    def keep_typing(self, send: Callable[[], Deferred[Any]], every: float,
                    done: Callable[[], Deferred[Any]] | None = None) -> Callable[[], None]:
        """Call ``send`` now and every ``every`` seconds until the returned function is called
        (then ``done``, if given).  Failures are ignored: typing is a courtesy."""

        def tick() -> Deferred[Any] | None:
            return send().addErrback(lambda _: None) if self.connected else None

        loop = LoopingCall(tick)
        loop.clock = self.clock
        loop.start(every, now=True).addErrback(lambda _: None)

        def stop() -> None:
            if not loop.running:
                return
            loop.stop()
            if done is not None and self.connected:
                done().addErrback(lambda _: None)

        return stop

    # -- the poll loop -------------------------------------------------------------------------

    def poll_later(self, delay: float) -> None:
        if self._poll_retry is None:
            self._poll_retry = self.clock.callLater(delay, self._retry_due)

    def _retry_due(self) -> None:
        self._poll_retry = None
        self.poll_now()

    def poll_now(self) -> None:
        """Start the next poll unless one runs, a retry delay is pending (it polls when due)
        or the account is backlogged (``drained()`` polls again)."""
        if not self.running or not self.connected or self._poll is not None or \
                self._poll_retry is not None or self.backlogged:
            return
        self._poll = d = self.poll()
        d.addCallbacks(self._polled, self._failed)

    def drained(self) -> None:
        self.poll_now()

    def _polled(self, _: Any) -> None:
        self._poll = None
        self.poll_now()

    def _failed(self, failure: Failure) -> None:
        self._poll = None
        if self.running and self.connected:
            self.poll_failed(failure)
