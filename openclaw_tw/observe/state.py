"""Scrape-time gauges: the current state of the gateway, read from its owners on the reactor
when ``/metrics`` is scraped (nothing is kept up to date per request)."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from openclaw_tw.observe.metrics import Metrics, gauge, open_sqlite_files
from openclaw_tw.protocol.handshake import CLIENT_IDS, CLIENT_MODES

if TYPE_CHECKING:
    from prometheus_client.core import Metric

    from openclaw_tw.app import Components

KNOWN_IDS = frozenset(CLIENT_IDS)
KNOWN_MODES = frozenset(CLIENT_MODES)


def connections(hub: Any) -> Iterable[Metric]:
    tally: Tally[tuple[str, str, str, str]] = Tally()
    for conn in list(hub.conns.values()):
        client = conn.client if isinstance(conn.client, dict) else {}
        cid, mode = client.get("id"), client.get("mode")
        tally[(conn.role, cid if cid in KNOWN_IDS else "other",
               mode if mode in KNOWN_MODES else "other", "open")] += 1
    rows: list[tuple[tuple[str, ...], float]] = list(tally.items())  # type: ignore[arg-type]
    rows.append((("none", "none", "none", "handshake"), hub.preauth_total))
    yield gauge("openclaw_gateway_connections", "WebSocket connections: open (by role, "
                "client id and mode) and still in their handshake",
                ["role", "client", "mode", "state"], rows)
    yield gauge("openclaw_gateway_rpc_inflight", "Requests whose response is pending", [],
                [((), hub.inflight)])
    yield gauge("openclaw_gateway_rpc_inflight_limit", "In-flight bound (beyond it requests "
                "are refused UNAVAILABLE)", [], [((), hub.max_inflight)])


def event_loop(hub: Any) -> Iterable[Metric]:
    lag = hub.health.lag.snapshot()
    yield gauge("openclaw_gateway_event_loop_lag_seconds", "How late the reactor's 1 s probe "
                "timer fired over the last minute", ["quantile"],
                [(("0.99",), lag["delayP99Ms"] / 1000), (("1",), lag["delayMaxMs"] / 1000)])


def channel_accounts(channels: Any) -> Iterable[Metric]:
    tally: Tally[tuple[str, str]] = Tally()
    for account in channels.accounts():
        state = "connected" if account.connected else \
            "connecting" if account.running else "stopped"
        tally[(account.channel, state)] += 1
    yield gauge("openclaw_channel_accounts", "Channel accounts by state", ["channel", "state"],
                list(tally.items()))  # type: ignore[arg-type]


class SqliteFiles:
    """Open SQLite database files (from /proc/self/fd), counted in the formatting thread."""

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        from prometheus_client.core import GaugeMetricFamily  # imported by the scrape

        n = open_sqlite_files()
        if n is not None:
            yield GaugeMetricFamily("openclaw_sqlite_open_files",
                                    "Open SQLite database files (not -wal/-shm)", value=n)


def register(metrics: Metrics, app: Components) -> None:
    """Wire the state sources of one app into its metrics."""
    hub = app.hub
    metrics.add_source(lambda: connections(hub))
    metrics.add_source(lambda: event_loop(hub))
    metrics.add_source(lambda: channel_accounts(app.channels))
    metrics.add_collector(SqliteFiles())
