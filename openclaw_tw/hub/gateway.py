"""The gateway hub: connected sockets, broadcast, presence, health, timers and hello-ok.

One ``Gateway`` object is shared by every socket and every method handler.  It owns no I/O of
its own beyond timers on the injected clock; the listener and the web tree are built around it
in ``tap.makeService``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall, deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from openclaw_tw import httpwire
from openclaw_tw.auth.peer import UntrustedProxy, client_address, is_loopback_ip
from openclaw_tw.auth.ratelimit import AuthRateLimiter
from openclaw_tw.config.settings import GatewaySettings
from openclaw_tw.daemon import malloc_trim
from openclaw_tw.errors import UNAVAILABLE, GatewayError, busy
from openclaw_tw.hub.diagnostics import StabilityRecorder
from openclaw_tw.hub.health import HealthMonitor
from openclaw_tw.hub.hello import BUILD_ID, COMPAT_VERSION, EVENTS, hello_payload
from openclaw_tw.hub.identity import GatewayIdentity
from openclaw_tw.hub.presence import PresenceRegistry, client_entry, gateway_self_entry
from openclaw_tw.interfaces import IConnection, IHub
from openclaw_tw.observe.metrics import NullMetrics, error_outcome, offered_auth
from openclaw_tw.protocol import scopes as S
from openclaw_tw.protocol.dispatch import CallContext, MethodTable, is_async
from openclaw_tw.protocol.frames import EncodedEvent
from openclaw_tw.protocol.handshake import (
    AuthFailure,
    AuthPolicy,
    ConnectDecision,
    DeviceAuthority,
    PeerInfo,
    device_less,
    evaluate_connect,
    rate_limited,
)
from openclaw_tw.protocol.limits import (
    MAX_BUFFERED_BYTES,
    MAX_INFLIGHT,
    PING_INTERVAL_S,
    SHUTDOWN_GRACE_S,
    TICK_INTERVAL_MS,
    TRIM_AFTER_RELEASED_BYTES,
)
from openclaw_tw.protocol.outbound import OutboundBudget

if TYPE_CHECKING:
    from openclaw_tw.agent.models import ModelRegistry
    from openclaw_tw.observe.metrics import Metrics
    RunBlocking = Callable[..., Deferred[Any]]

__all__ = ["BUILD_ID", "COMPAT_VERSION", "EVENTS", "Gateway"]

_log = Logger(namespace="gateway")

# Our own file names: the real gateway's (openclaw-agent.sqlite, state/openclaw.sqlite) are
# opened by the real CLI, which refuses our schema (see db.adopt_legacy_file).
SESSIONS_FILE = "openclaw_tw-sessions.sqlite"
LEGACY_SESSIONS_FILE = "openclaw-agent.sqlite"


def run_inline(fn: Callable[..., Any], *args: Any) -> Deferred[Any]:
    """Run blocking work synchronously (tests); production uses the reactor's thread pool."""
    return succeed(fn(*args))


@implementer(IHub)
class Gateway(Service):
    """Shared state of the control plane; started and stopped by the service tree.

    The socket layer sees it only as an ``IHub``; it sees sockets only as ``IConnection``."""

    name = "gateway"

    def __init__(
        self,
        reactor: Any,
        settings: GatewaySettings,
        identity: GatewayIdentity,
        methods: MethodTable,
        run_blocking: RunBlocking = run_inline,
        log_file: Callable[[], Path] | None = None,
        devices: DeviceAuthority | None = None,
        models: ModelRegistry | None = None,
        metrics: Metrics | NullMetrics | None = None,
    ) -> None:
        self.reactor = reactor
        self.clock: IReactorTime = reactor
        self.settings = settings
        self.identity = identity
        self.methods = methods
        self.run_blocking = run_blocking
        self.log_file = log_file or (lambda: settings.state_dir / "logs" / "openclaw.log")
        # The device authority decides device connects; it announces pairing through this
        # hub's broadcast, so the composition root attaches it once both exist.
        self.devices = devices
        self.models = models  # hello-ok says whether a real model is configured
        # Counters only on the hot path (observe/metrics.py); NullMetrics with metrics off.
        self.metrics = metrics if metrics is not None else NullMetrics()
        self.boot_id = str(uuid.uuid4())
        self.instance_id = str(uuid.uuid4())
        self.started_at = self.clock.seconds()
        self.auth_policy = AuthPolicy(settings.auth_mode, settings.secret,
                                      settings.allowed_origins)
        self.auth_limiter = AuthRateLimiter(self.clock)
        self.max_buffered_bytes = MAX_BUFFERED_BYTES
        # all sockets' backlogs together; large ones going away trigger a malloc_trim
        self.outbound = OutboundBudget(on_release=self._outbound_released)
        self._released = 0
        self.max_inflight = MAX_INFLIGHT
        self.max_preauth_per_ip = settings.max_preauth_per_ip
        self.handshake_timeout_s = settings.handshake_timeout_ms / 1000
        self.inflight = 0
        self.shutting_down = False
        self.restart_expected_ms: int | None = None  # set when the stop is an in-process restart
        self.heartbeats_enabled = True
        self.last_heartbeat: dict[str, Any] | None = None
        self.conns: dict[str, IConnection] = {}
        # Services that track connections (e.g. the node registry) add callables here.
        self.on_connect: list[Callable[[IConnection], None]] = []
        self.on_disconnect: list[Callable[[IConnection], None]] = []
        self._preauth: dict[str, int] = {}
        self.presence = PresenceRegistry(
            self.now_ms,
            gateway_self_entry(COMPAT_VERSION, self.instance_id, _advertised_ip(settings)),
        )
        self.health = HealthMonitor(
            self.clock, self.now_ms, self.display_path(self.sessions_path()),
            self._health_refreshed,
        )
        # diagnostics.stability's ring: samples memory and liveness every 30 s from start.
        self.diagnostics = StabilityRecorder(self.clock, self.now_ms, self.health.lag.snapshot)
        self._tick = LoopingCall(self._send_tick)
        self._tick.clock = self.clock
        self._trimmer = malloc_trim.TrimAfterDrop()
        self._trim_call: Any = None
        self._ping = LoopingCall(self._keepalive)
        self._ping.clock = self.clock

    # -- time ----------------------------------------------------------------------------------

    def now_ms(self) -> int:
        # Wall-clock milliseconds.  Under a test Clock, seconds() starts at 0, so we anchor it.
        seconds = self.clock.seconds()
        if seconds < 1e9:
            return int((time.time() + seconds) * 1000)
        return int(seconds * 1000)

    def uptime_ms(self) -> int:
        return int((self.clock.seconds() - self.started_at) * 1000)

    # -- paths ---------------------------------------------------------------------------------

    def sessions_path(self) -> Path:
        return self.settings.state_dir / "agents" / "main" / "agent" / SESSIONS_FILE

    def display_path(self, path: Path) -> str:
        home = str(Path.home())
        text = str(path)
        return "~" + text[len(home):] if home != "/" and text.startswith(home + "/") else text

    # -- lifecycle -----------------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self.started_at = self.clock.seconds()
        self._trim_call = self.clock.callLater(1.0, malloc_trim.trim)  # import-time garbage
        self.health.start()
        self.diagnostics.start()
        self._tick.start(TICK_INTERVAL_MS / 1000, now=False)
        self._ping.start(PING_INTERVAL_S, now=False)

    def stopService(self) -> Deferred[None]:
        super().stopService()
        self.shutting_down = True
        if self._trim_call is not None and self._trim_call.active():
            self._trim_call.cancel()
        for loop in (self._tick, self._ping):
            if loop.running:
                loop.stop()
        self.health.stop()
        self.diagnostics.stop()
        if self.restart_expected_ms is not None:  # an in-process restart (daemon/restart.py)
            self.broadcast("shutdown", {"reason": "gateway restarting",
                                        "restartExpectedMs": self.restart_expected_ms})
        else:
            self.broadcast("shutdown", {"reason": "gateway stopping"})
        for conn in list(self.conns.values()):
            conn.close(1012, "service restart")
        return self._wait_closed(SHUTDOWN_GRACE_S)

    def _wait_closed(self, grace: float) -> Deferred[None]:
        done: Deferred[None] = Deferred()
        deadline = self.clock.seconds() + grace

        def check() -> None:
            if not self.conns:
                done.callback(None)
                return
            if self.clock.seconds() >= deadline:
                for conn in list(self.conns.values()):
                    conn.abort()
                    self.unregister(conn)
                done.callback(None)
                return
            self.clock.callLater(0.05, check)

        check()
        return done

    # -- hot reload ----------------------------------------------------------------------------

    # Fields only a restart can change: the listener and the auth mode are built once.
    RESTART_FIELDS = ("port", "bind", "host", "tls_enabled", "tls_cert_path", "tls_key_path",
                      "config_path", "state_dir", "control_ui_base_path", "control_ui_root")

    def apply_settings(self, new: GatewaySettings) -> GatewaySettings:
        """Swap in reloaded settings, keeping what needs a restart; returns what is in force.

        A token/password rotation with the same auth mode replaces the auth policy and closes
        the sockets that authenticated with the old shared secret (4001 "gateway auth
        changed"); they must reconnect with the new one.
        """
        old = self.settings
        new = attrs.evolve(new, **{f: getattr(old, f) for f in self.RESTART_FIELDS})
        if new.auth_mode != old.auth_mode:
            new = attrs.evolve(new, auth_mode=old.auth_mode, token=old.token,
                               password=old.password, token_source=old.token_source)
        self.settings = new
        old_secret = self.auth_policy.secret
        self.auth_policy = AuthPolicy(new.auth_mode, new.secret, new.allowed_origins)
        if old_secret and new.secret != old_secret:
            for conn in list(self.conns.values()):
                if _used_secret(conn, old_secret):
                    conn.close(4001, "gateway auth changed")
        return new

    # -- connections ---------------------------------------------------------------------------

    def is_trusted_proxy(self, ip: str) -> bool:
        return ip in self.settings.trusted_proxies

    def preauth_count(self, ip: str) -> int:
        return self._preauth.get(ip, 0)

    def preauth_opened(self, ip: str) -> None:
        self._preauth[ip] = self._preauth.get(ip, 0) + 1

    def preauth_closed(self, ip: str) -> None:
        n = self._preauth.get(ip, 0) - 1
        if n > 0:
            self._preauth[ip] = n
        else:
            self._preauth.pop(ip, None)

    # -- IHub: what the socket layer asks ---------------------------------------------------

    def admit(self, ip: str, header: Callable[[str], str | None]) -> PeerInfo:
        try:  # behind a trusted proxy, budgets and lockouts apply to the client behind it
            client, forwarded = client_address(ip, header, self.is_trusted_proxy)
        except UntrustedProxy:
            raise httpwire.proxy_attribution() from None
        peer = PeerInfo(ip=client, host_header=header("host"), origin=header("origin"),
                        forwarded=forwarded)
        retry_ms = self.auth_limiter.retry_after_ms(client, peer.loopback)
        if retry_ms is not None:
            raise httpwire.locked_out(retry_ms)
        if self._preauth.get(client, 0) >= self.max_preauth_per_ip:
            raise httpwire.preauth_budget()
        if self.shutting_down:
            raise httpwire.stopping()
        self.preauth_opened(client)
        return peer

    def authenticate(self, params: Any, nonce: str, peer: PeerInfo) -> Deferred[ConnectDecision]:
        d = self._authenticate(params, nonce, peer)
        if self.metrics.enabled:
            auth, count = offered_auth(params), self.metrics.handshake
            d.addCallbacks(_counted(count, "ok", auth),
                           lambda f: _counted(count, error_outcome(f.value), auth)(f))
        return d

    def _authenticate(self, params: Any, nonce: str, peer: PeerInfo
                      ) -> Deferred[ConnectDecision]:
        retry_ms = self.auth_limiter.retry_after_ms(peer.ip, peer.loopback)
        try:
            if retry_ms is not None:
                raise rate_limited(retry_ms)
            outcome = evaluate_connect(params, nonce, peer, self.auth_policy)
        except GatewayError as err:
            return self._auth_failed(peer, err)
        if isinstance(outcome, ConnectDecision):
            d: Deferred[ConnectDecision] = succeed(outcome)
        elif self.devices is None:
            d = succeed(device_less(outcome))
        else:
            d = self.devices.authorize(outcome)
            d.addErrback(lambda f: self._auth_failed(peer, f.value) if f.check(GatewayError)
                         else f)
        return d.addCallback(self._still_accepting)

    def _auth_failed(self, peer: PeerInfo, err: GatewayError) -> Deferred[Any]:
        """Only wrong credentials count toward throttling (and are answered after its delay);
        a missing one is answered at once."""
        reason = str((err.details or {}).get("authReason", ""))
        if not isinstance(err, AuthFailure) or reason.endswith("_missing"):
            return fail(err)
        delay = self.auth_limiter.record_failure(peer.ip, peer.loopback)
        _log.info("auth failed ip={ip} reason={reason} delay={delay}", ip=peer.ip,
                  reason=(err.details or {}).get("authReason"), delay=delay)
        return deferLater(self.clock, delay, _raise, err)

    def _still_accepting(self, decision: ConnectDecision) -> ConnectDecision:
        if self.shutting_down:
            raise GatewayError(UNAVAILABLE, "gateway restart in progress", retryable=True,
                               retry_after_ms=500, close_code=1013)
        return decision

    def attach(self, conn: IConnection, request_id: str, decision: ConnectDecision) -> None:
        self.preauth_closed(conn.peer_ip)
        conn.respond(request_id, hello_payload(self, conn, decision))
        self.register(conn)

    def detach(self, conn: IConnection, attached: bool) -> None:
        if attached:
            self.unregister(conn)
        else:
            self.preauth_closed(conn.peer_ip)

    def dispatch(self, conn: IConnection, request_id: str, method: str, params: Any) -> Any:
        if self.inflight >= self.max_inflight:
            self.metrics.request_refused()
            raise busy(self.busy_retry_after_ms())
        metrics = self.metrics
        if not metrics.enabled:
            result = self.methods.invoke(CallContext(conn, method, request_id), params)
            if is_async(result):
                self.inflight += 1
                result.addBoth(self._request_done)
            return result
        seconds = self.clock.seconds
        started = seconds()
        try:
            result = self.methods.invoke(CallContext(conn, method, request_id), params)
        except BaseException as e:
            metrics.request_done(method, error_outcome(e), seconds() - started)
            raise
        if is_async(result):
            self.inflight += 1
            result.addBoth(self._measured, method, started)
        else:
            metrics.request_done(method, "ok", seconds() - started)
        return result

    def _measured(self, result: Any, method: str, started: float) -> Any:
        self.inflight -= 1
        outcome = error_outcome(result.value) if isinstance(result, Failure) else "ok"
        self.metrics.request_done(method, outcome, self.clock.seconds() - started)
        return result

    def _request_done(self, result: Any) -> Any:
        self.inflight -= 1
        return result

    @property
    def preauth_total(self) -> int:
        """Sockets admitted that have not finished their handshake."""
        return sum(self._preauth.values())

    # -- connections -----------------------------------------------------------------------

    def register(self, conn: IConnection) -> None:
        self.conns[conn.conn_id] = conn
        self._trimmer.peak = max(self._trimmer.peak, len(self.conns))
        for hook in self.on_connect:
            hook(conn)
        if not conn.ephemeral:
            self.presence.upsert(
                conn.conn_id,
                client_entry(conn.client, conn.peer_ip, conn.conn_id, sorted(conn.scopes),
                             conn.role, self.now_ms(), conn.device_id),
            )
            self.broadcast_presence()

    def disconnect_device(self, device_id: str, role: str | None, code: int, reason: str,
                          keep: IConnection | None = None) -> int:
        """Close every socket of a device (for one role, or all); returns how many."""
        closed = 0
        for conn in list(self.conns.values()):
            if conn.device_id == device_id and conn is not keep and \
                    (role is None or conn.role == role):
                conn.close(code, reason)
                closed += 1
        return closed

    def unregister(self, conn: IConnection) -> None:
        if self.conns.pop(conn.conn_id, None) is None:
            return
        for hook in self.on_disconnect:
            hook(conn)
        if self._trimmer.peak - len(self.conns) >= self._trimmer.min_drop and \
                not (self._trim_call and self._trim_call.active()) and self.running:
            # Many sockets went away: hand their memory back soon (not inside this callback).
            self._trim_call = self.clock.callLater(0.5, self._trim_after_drop)
        if self.presence.remove(conn.conn_id):
            self.broadcast_presence()

    # -- events --------------------------------------------------------------------------------

    def state_version(self) -> dict[str, int]:
        return {"presence": self.presence.version, "health": self.health.version}

    def broadcast(
        self,
        event: str,
        payload: Any,
        scope: str | None = None,
        drop_if_slow: bool = False,
        with_state_version: bool = False,
        predicate: Callable[[IConnection], bool] | None = None,
    ) -> int:
        """Send one event to every connected operator allowed to see it; returns deliveries."""
        if not self.conns:
            return 0
        encoded = EncodedEvent(event, payload,
                               self.state_version() if with_state_version else None)
        sent = 0
        for conn in list(self.conns.values()):
            if conn.role != S.ROLE_OPERATOR:
                continue
            if scope is not None and not S.scope_satisfied(scope, conn.scopes):
                continue
            if predicate is not None and not predicate(conn):
                continue
            conn.deliver(encoded, drop_if_slow)
            sent += 1
        self.metrics.events_sent(event, sent)
        return sent

    def broadcast_presence(self) -> int:
        return self.broadcast("presence", {"presence": self.presence.snapshot()}, scope=S.READ,
                              drop_if_slow=True, with_state_version=True)

    def _health_refreshed(self, snapshot: dict[str, Any]) -> None:
        self.broadcast("health", snapshot, with_state_version=True)

    def _send_tick(self) -> None:
        self.broadcast("tick", {"ts": self.now_ms()})

    def _outbound_released(self, nbytes: int) -> None:
        """Backlogs of this many bytes went away: after TRIM_AFTER_RELEASED_BYTES of them,
        hand the freed heap back to the OS (glibc keeps it otherwise)."""
        self._released += nbytes
        if self._released >= TRIM_AFTER_RELEASED_BYTES and self.running and \
                not (self._trim_call and self._trim_call.active()):
            self._released = 0
            self._trim_call = self.clock.callLater(0.5, malloc_trim.trim)

    def _trim_after_drop(self) -> None:
        self._trimmer.observe(len(self.conns))

    def _keepalive(self) -> None:
        self._trimmer.observe(len(self.conns))
        self.outbound.refresh()  # drained sockets' stale reports
        for conn in list(self.conns.values()):
            conn.keepalive()

    def busy_retry_after_ms(self) -> int:
        return 250 if self.inflight < 2 * self.max_inflight else 1000


def _used_secret(conn: IConnection, secret: str) -> bool:
    """Did this socket authenticate with the shared token/password ``secret``?"""
    params = getattr(conn, "connect_params", None) or {}
    auth = params.get("auth") if isinstance(params, dict) else None
    if not isinstance(auth, dict):
        return False
    return secret in (auth.get("token"), auth.get("password"))


def _advertised_ip(settings: GatewaySettings) -> str:
    """The address shown in the gateway's own presence entry."""
    if settings.listen_host not in ("0.0.0.0", "::"):
        return settings.listen_host
    from openclaw_tw.daemon.netaddrs import local_addresses

    routable = [a for a in local_addresses() if not is_loopback_ip(a)]
    return routable[0] if routable else "127.0.0.1"


def _counted(hook: Callable[[str, str], None], outcome: str, auth: str
             ) -> Callable[[Any], Any]:
    def count(result: Any) -> Any:
        hook(outcome, auth)
        return result
    return count


def _raise(err: Exception) -> None:
    raise err
