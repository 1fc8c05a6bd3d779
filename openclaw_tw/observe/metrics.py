"""The gateway's Prometheus metrics: one ``CollectorRegistry`` per app, bounded labels, and
nothing formatted on the hot path.

Hot-path hooks (``request_done``, ``events_sent``, ``handshake``) only add to plain dicts
(``Tally``, ``RequestTally``): a ``prometheus_client`` counter or histogram child takes a lock
per call and cost several times a dict increment in timeit.  The rarer hooks bump
``prometheus_client`` counters.  ``prometheus_client`` itself (~1.1 MiB resident) is imported
when first needed: the first scrape or the first rare event (``_Live``); an idle gateway
that is never scraped does not load it.  Every label value is first normalised against a closed set
(the method table, the protocol's error codes, the client id/mode enums, the event list,
configured providers and channels, capped) so a client cannot grow the number of series.
Gauges that describe current state (connections by role/client/mode, in-flight requests,
channel accounts, event-loop lag, open SQLite files) are read from their owners only when
scraped: ``render`` takes that snapshot (and copies of the tallies) on the reactor and
formats the text exposition in the thread pool.  ``NullMetrics`` has the same hooks doing
nothing: metrics off (``--metrics off``) costs an attribute lookup and a call per hook.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left
from collections.abc import Callable, Collection, Iterable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, maybeDeferred

from openclaw_tw import errors

if TYPE_CHECKING:
    from prometheus_client.core import GaugeMetricFamily, Metric
    from prometheus_client.registry import Collector, CollectorRegistry

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
MODES = ("off", "token", "loopback")
UNKNOWN = "unknown"
OTHER = "other"
OK = "ok"
INTERNAL = "internal"
ERROR_CODES = frozenset({errors.INVALID_REQUEST, errors.FORBIDDEN, errors.UNAVAILABLE,
                         errors.NOT_PAIRED, errors.APPROVAL_NOT_FOUND})
AUTH_METHODS = frozenset({"none", "token", "password", "device", "device-token"})
MAX_DYNAMIC_LABELS = 64  # providers, channels: from config, capped anyway
# Request latency: 0.5 ms .. 60 s (a turn's `agent` second response can take minutes: +Inf).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0, 30.0, 60.0)
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0)

Source = Callable[[], Iterable["Metric"]]


class Tally:
    """A counter family kept as ``{label values: count}``; exposed at scrape time.  With
    ``created`` each label set also keeps when it was first counted (the ``_created`` sample a
    ``prometheus_client`` counter child exposes)."""

    def __init__(self, name: str, doc: str, labels: list[str], created: bool = False) -> None:
        self.name, self.doc, self.labels = name, doc, labels
        self.values: dict[tuple[str, ...], float] = {}
        self.created: dict[tuple[str, ...], float] | None = {} if created else None

    def inc(self, key: tuple[str, ...], n: float = 1) -> None:
        values = self.values
        if self.created is not None and key not in values:
            self.created[key] = time.time()
        values[key] = values.get(key, 0) + n

    def snapshot(self) -> Callable[[], Metric]:
        values = dict(self.values)  # on the reactor; the family is built in the thread
        created = dict(self.created or {})

        def family() -> Metric:
            from prometheus_client.core import CounterMetricFamily

            out = CounterMetricFamily(self.name, self.doc, labels=self.labels)
            for key, value in values.items():
                out.add_metric(list(key), value, created=created.get(key))
            return out
        return family


class RequestTally:
    """Requests as ``{(method, outcome): [count per latency bucket..., +Inf, seconds]}``: one
    dict lookup per request.  At scrape time it gives the counter by method and outcome and
    the latency histogram by method."""

    def __init__(self, buckets: Iterable[float]) -> None:
        self.bounds = sorted(buckets)
        self.rows: dict[tuple[str, str], list[float]] = {}

    def snapshot(self) -> Callable[[], list[Metric]]:
        rows = {key: list(row) for key, row in self.rows.items()}
        bounds = [repr(float(b)) for b in self.bounds] + ["+Inf"]

        def families() -> list[Metric]:
            from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

            requests = CounterMetricFamily(
                "openclaw_gateway_rpc_requests", "RPC requests answered, by method and "
                "outcome (ok, an error code, internal)", labels=["method", "outcome"])
            by_method: dict[str, list[float]] = {}
            for (method, outcome), row in rows.items():
                requests.add_metric([method, outcome], sum(row[:-1]))
                into = by_method.setdefault(method, [0.0] * len(row))
                for i, n in enumerate(row):
                    into[i] += n
            latency = HistogramMetricFamily(
                "openclaw_gateway_rpc_duration_seconds", "RPC request to final response",
                labels=["method"])
            for method, row in by_method.items():
                cumulative, buckets = 0.0, []
                for le, n in zip(bounds, row[:-1], strict=True):
                    cumulative += n
                    buckets.append((le, cumulative))
                latency.add_metric([method], buckets, row[-1])
            return [requests, latency]
        return families


class BoundedLabel:
    """Values from a closed set pass; others become ``fallback``; an open set (configured
    ids) admits at most ``cap`` distinct values."""

    def __init__(self, known: Collection[str] | None = None, fallback: str = OTHER,
                 cap: int = MAX_DYNAMIC_LABELS) -> None:
        self.known = known
        self.fallback = fallback
        self.cap = cap
        self.seen: set[str] = set()

    def __call__(self, value: Any) -> str:
        if not isinstance(value, str) or not value:
            return self.fallback
        if self.known is not None:
            return value if value in self.known else self.fallback
        if value in self.seen:
            return value
        if len(self.seen) >= self.cap or len(value) > 64:
            return self.fallback
        self.seen.add(value)
        return value


def error_outcome(err: BaseException) -> str:
    code = getattr(err, "code", None)
    if isinstance(err, errors.GatewayError) and code in ERROR_CODES:
        return str(code)
    return INTERNAL


def offered_auth(params: Any) -> str:
    """What a connect offered, from a closed set (the params may be anything)."""
    if not isinstance(params, dict):
        return "none"
    auth = params.get("auth") if isinstance(params.get("auth"), dict) else {}
    if isinstance(params.get("device"), dict):
        return "device-token" if auth.get("deviceToken") else "device"
    if auth.get("token"):
        return "token"
    if auth.get("password"):
        return "password"
    return "none"


def open_sqlite_files(fd_dir: str = "/proc/self/fd") -> int | None:
    """How many of this process's descriptors are SQLite database files (not -wal/-shm)."""
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return None
    n = 0
    for name in names:
        try:
            target = os.readlink(os.path.join(fd_dir, name))
        except OSError:
            continue
        if target.endswith(".sqlite"):
            n += 1
    return n


class _Live:
    """The ``prometheus_client`` objects of one ``Metrics``: its registry and the counters of
    the rarer hooks, made (and ``prometheus_client`` imported) on first use."""

    def __init__(self, metrics: Metrics, process: bool) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram
        from prometheus_client.process_collector import ProcessCollector

        self.registry = reg = CollectorRegistry(auto_describe=True)
        self.refused = Counter("openclaw_gateway_rpc_refused", "Requests refused before "
                               "dispatch (in-flight bound reached)", ["reason"], registry=reg)
        self.dropped = Counter("openclaw_gateway_events_dropped", "Droppable events skipped "
                               "for a socket too far behind", ["event"], registry=reg)
        self.slow = Counter("openclaw_gateway_slow_consumer_closes", "Sockets closed 1008 "
                            "as slow consumers", registry=reg)
        self.runs = Counter("openclaw_agent_runs", "Agent runs settled, by outcome and "
                            "provider", ["outcome", "provider"], registry=reg)
        self.model_calls = Counter("openclaw_model_calls", "Model provider calls by outcome",
                                   ["provider", "outcome"], registry=reg)
        self.ttft = Histogram("openclaw_model_time_to_first_token_seconds", "Model call start "
                              "to first streamed text", ["provider"], buckets=TTFT_BUCKETS,
                              registry=reg)
        self.messages = Counter("openclaw_channel_messages", "Channel messages: in (queued), "
                                "refused (queue full), out and out-failed (agent replies)",
                                ["channel", "direction"], registry=reg)
        self.node_invokes = Counter("openclaw_node_invokes", "node.invoke calls by outcome",
                                    ["outcome"], registry=reg)
        self.cron_runs = Counter("openclaw_cron_runs", "Cron job runs by outcome", ["outcome"],
                                 registry=reg)
        self.reloads = Counter("openclaw_config_reloads", "Config reloads by outcome",
                               ["outcome"], registry=reg)
        if process:
            ProcessCollector(registry=reg)  # RSS, CPU seconds, open fds (Linux /proc)
        reg.register(_SnapshotCollector(metrics))


class Metrics:
    """The metrics of one gateway.  Hooks run on the reactor thread."""

    enabled = True

    def __init__(self, methods: Collection[str], events: Collection[str],
                 run_blocking: Callable[..., Any] | None = None,
                 process: bool = True) -> None:
        self.run_blocking = run_blocking
        self._process = process
        self._made: _Live | None = None
        self._collectors: list[Collector] = []
        self._event = BoundedLabel(events, OTHER)
        self._provider = BoundedLabel()
        self._channel = BoundedLabel()
        self._sources: list[Source] = []
        self._snapshot: list[Metric | Callable[[], Metric]] = []
        self._tallies: list[Tally | RequestTally] = []
        self._known_methods = methods
        self._known_events = frozenset(events)
        self.requests = self._tally(RequestTally(LATENCY_BUCKETS))
        self._rows, self._bounds = self.requests.rows, self.requests.bounds
        self._row_len = len(self._bounds) + 2
        self.sent = self._tally(Tally(
            "openclaw_gateway_events_sent", "Event frames handed to sockets (those dropped "
            "for slow consumers included)", ["event"]))
        # every connect counts one: a tally, so a client connecting loads no prometheus_client
        self.handshakes = self._tally(Tally(
            "openclaw_gateway_handshakes", "Connect handshakes by outcome and offered auth "
            "method", ["outcome", "auth"], created=True))

    def _live(self) -> _Live:
        made = self._made
        if made is None:
            made = self._made = _Live(self, self._process)
            for collector in self._collectors:
                made.registry.register(collector)
        return made

    @property
    def registry(self) -> CollectorRegistry:
        return self._live().registry

    def add_collector(self, collector: Collector) -> None:
        """A ``prometheus_client`` collector, called in the formatting thread per scrape."""
        if self._made is None:
            self._collectors.append(collector)
        else:
            self._made.registry.register(collector)

    def _tally(self, tally: Any) -> Any:
        self._tallies.append(tally)
        return tally

    # -- hot path: increments only ---------------------------------------------------------

    def request_done(self, method: str, outcome: str, seconds: float) -> None:
        key = (method if method in self._known_methods else UNKNOWN, outcome)
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = [0] * self._row_len
        row[bisect_left(self._bounds, seconds)] += 1  # le: seconds <= bound
        row[-1] += seconds

    def request_refused(self, reason: str = "inflight") -> None:
        self._live().refused.labels(reason).inc()

    def handshake(self, outcome: str, auth: str) -> None:
        self.handshakes.inc((outcome, auth if auth in AUTH_METHODS else OTHER))

    def events_sent(self, event: str, n: int) -> None:
        if n:
            values = self.sent.values
            key = (event if event in self._known_events else OTHER,)
            values[key] = values.get(key, 0) + n

    def event_dropped(self, event: str) -> None:
        self._live().dropped.labels(self._event(event)).inc()

    def slow_consumer(self) -> None:
        self._live().slow.inc()

    def run_finished(self, outcome: str, provider: str) -> None:
        self._live().runs.labels(outcome if outcome in ("ok", "error", "aborted") else OTHER,
                         self._provider(provider or "none")).inc()

    def record(self, kind: str, **fields: Any) -> None:
        """A listener of the diagnostics ring (``hub/diagnostics.py``): model calls (recorded
        by ``agent/instrument.py``) and channel reply deliveries (``channels/router.py``)."""
        if kind == "model.call.completed":
            provider = self._provider(fields.get("provider"))
            live = self._live()
            live.model_calls.labels(provider, OK).inc()
            ttfb = fields.get("timeToFirstByteMs")
            if isinstance(ttfb, int):
                live.ttft.labels(provider).observe(ttfb / 1000)
        elif kind == "model.call.error":
            reason = fields.get("reason")
            self._live().model_calls.labels(self._provider(fields.get("provider")),
                                    "aborted" if reason == "aborted" else "error").inc()
        elif kind == "message.delivery.completed":
            self.channel_message(fields.get("channel", ""), "out")
        elif kind == "message.delivery.error":
            self.channel_message(fields.get("channel", ""), "out-failed")

    def channel_message(self, channel: str, direction: str) -> None:
        self._live().messages.labels(self._channel(channel), direction).inc()

    def node_invoke(self, outcome: str) -> None:
        self._live().node_invokes.labels(outcome).inc()

    def cron_run(self, outcome: str) -> None:
        self._live().cron_runs.labels(outcome).inc()

    def config_reload(self, outcome: str) -> None:
        self._live().reloads.labels(outcome).inc()

    # -- scrape ----------------------------------------------------------------------------

    def add_source(self, source: Source) -> None:
        """A callable giving current-state metric families, called on the reactor per scrape."""
        self._sources.append(source)

    def take_snapshot(self) -> None:
        families: list[Metric | Callable[[], Metric]] = []
        for source in self._sources:
            families.extend(source())
        families.extend(t.snapshot() for t in self._tallies)
        self._snapshot = families  # type: ignore[assignment]

    def render(self) -> Deferred[bytes]:
        """The text exposition: state read here (reactor), formatted in the thread pool."""
        from prometheus_client.exposition import generate_latest

        registry = self.registry  # prometheus_client imported here, on the reactor
        self.take_snapshot()
        if self.run_blocking is None:
            return maybeDeferred(generate_latest, registry)
        d: Deferred[bytes] = self.run_blocking(generate_latest, registry)
        return d


class _SnapshotCollector:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> list[Metric]:
        return []  # families vary with state: not checked for duplicates at registration

    def collect(self) -> Iterable[Metric]:
        out: list[Metric] = []
        for f in self.metrics._snapshot:
            made = f() if callable(f) else f
            out.extend(made if isinstance(made, list) else [made])
        return out


class NullMetrics:
    """Metrics off: every hook does nothing."""

    enabled = False

    def request_done(self, method: str, outcome: str, seconds: float) -> None: ...
    def request_refused(self, reason: str = "inflight") -> None: ...
    def handshake(self, outcome: str, auth: str) -> None: ...
    def events_sent(self, event: str, n: int) -> None: ...
    def event_dropped(self, event: str) -> None: ...
    def slow_consumer(self) -> None: ...
    def run_finished(self, outcome: str, provider: str) -> None: ...
    def record(self, kind: str, **fields: Any) -> None: ...
    def channel_message(self, channel: str, direction: str) -> None: ...
    def node_invoke(self, outcome: str) -> None: ...
    def cron_run(self, outcome: str) -> None: ...
    def config_reload(self, outcome: str) -> None: ...
    def add_source(self, source: Source) -> None: ...


def gauge(name: str, doc: str, labels: list[str], rows: Iterable[tuple[tuple[str, ...], float]]
          ) -> GaugeMetricFamily:
    from prometheus_client.core import GaugeMetricFamily

    family = GaugeMetricFamily(name, doc, labels=labels)
    for values, value in rows:
        family.add_metric(list(values), value)
    return family
