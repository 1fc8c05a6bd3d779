"""Raw JSON lines, and the markdown table (ours, theirs, ratio) built from them."""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO


class Recorder:
    """Every measurement is one JSON line: ``{ts, scenario, variant, server, rep, ...metrics}``;
    a scenario that cannot run against a server is a line with ``na: <reason>``."""

    def __init__(self, path: Path | None, meta: dict[str, Any] | None = None) -> None:
        self.rows: list[dict[str, Any]] = []
        self.fh: TextIO | None = open(path, "a") if path else None
        if meta:
            self._write({"ts": _now(), "scenario": "meta", **meta})

    def _write(self, row: dict[str, Any]) -> None:
        if self.fh:
            self.fh.write(json.dumps(row, sort_keys=False, default=str) + "\n")
            self.fh.flush()

    def add(self, scenario: str, variant: str, server: str, rep: int,
            **metrics: Any) -> dict[str, Any]:
        row = {"ts": _now(), "scenario": scenario, "variant": variant, "server": server,
               "rep": rep, **metrics}
        self.rows.append(row)
        self._write(row)
        return row

    def na(self, scenario: str, variant: str, server: str, reason: str) -> None:
        self.add(scenario, variant, server, -1, na=reason)

    def close(self) -> None:
        if self.fh:
            self.fh.close()
            self.fh = None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile, ``q`` in 0..100."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(q / 100 * len(s)) - 1))
    return s[k]


# -- figures -----------------------------------------------------------------------------------

UNITS: dict[str, tuple[str, float, int]] = {
    # kind: (suffix, multiplier from the stored base unit, decimals)
    "s": ("s", 1, 2),
    "ms": ("ms", 1e3, 2),
    "us": ("µs", 1e6, 1),
    "MiB": ("MiB", 1 / 2**20, 1),
    "KiB": ("KiB", 1 / 2**10, 1),
    "rate": ("/s", 1, 0),
    "pct": ("%", 1, 1),
    "n": ("", 1, 0),
    "x": ("", 1, 2),
}


@dataclass(frozen=True)
class Figure:
    scenario: str
    variant: str
    metric: str
    label: str
    unit: str
    better: str = "lower"  # or "higher", or "" (informational)
    target: str = ""
    theirs_variant: str = ""  # compare with this variant of the second server (default: same)


def F(scenario: str, variant: str, metric: str, label: str, unit: str, better: str = "lower",
      target: str = "", theirs_variant: str = "") -> Figure:
    return Figure(scenario, variant, metric, label, unit, better, target, theirs_variant)


FIGURES: list[Figure] = [
    F("startup", "start", "first_accept_s", "startup: spawn → first socket accepted", "s"),
    F("startup", "start", "first_hello_s", "startup: spawn → first hello-ok", "s",
      target="≤ 0.6 s"),
    F("startup", "start", "unavailable_retries", "startup: `UNAVAILABLE` (startup-sidecars) retries",
      "n"),
    F("startup", "start", "stop_s", "startup: stop after SIGTERM", "s"),
    F("idle", "fresh", "rss_tree", "idle: RSS, whole process tree", "MiB", target="≤ 57 MB"),
    F("idle", "fresh", "rss_root", "idle: RSS, main process", "MiB"),
    F("idle", "fresh", "processes", "idle: processes in the tree", "n"),
    F("idle", "fresh", "cpu_pct", "idle: CPU (% of one core)", "pct"),
]
for _n in (100, 500, 1000):
    FIGURES += [
        F("idle-memory", f"c{_n}", "rss_delta", f"idle-memory {_n}: Δ RSS (tree) vs 0 conns",
          "MiB"),
        F("idle-memory", f"c{_n}", "per_conn", f"idle-memory {_n}: RSS per connection", "KiB",
          target="≤ 20 KB" if _n == 1000 else ""),
        F("idle-memory", f"c{_n}", "after_close_delta",
          f"idle-memory {_n}: RSS after closing all − before", "MiB", target="≈ 0"),
        F("idle-memory", f"c{_n}", "connect_rate", f"idle-memory {_n}: connects/s (16 at a time)",
          "rate", "higher"),
    ]
for _v, _lab, _tgt in (("token-seq", "token, sequential", "≤ 0.4 ms"),
                       ("token-c16", "token, 16 concurrent", "≤ 0.4 ms"),
                       ("device-seq", "device-signed, sequential", "≤ 0.8 ms"),
                       ("device-c16", "device-signed, 16 concurrent", "≤ 0.8 ms")):
    FIGURES += [
        F("handshake", _v, "rate", f"handshake {_lab}: handshakes/s", "rate", "higher"),
        F("handshake", _v, "p50", f"handshake {_lab}: p50 to hello-ok", "ms"),
        F("handshake", _v, "p99", f"handshake {_lab}: p99 to hello-ok", "ms"),
        F("handshake", _v, "cpu_per_op", f"handshake {_lab}: server CPU/handshake", "ms",
          target=_tgt),
    ]
for _v, _lab, _tgt in (("last-heartbeat-8x8", "`last-heartbeat` 8×8", "≤ 33 µs"),
                       ("last-heartbeat-1x1", "`last-heartbeat` 1×1", ""),
                       ("health-8x4", "`health` 8×4", "≤ 80 µs"),
                       ("health-1x1", "`health` 1×1", "≤ 80 µs")):
    FIGURES += [
        F("rpc", _v, "rate", f"rpc {_lab}: req/s", "rate", "higher"),
        F("rpc", _v, "p50", f"rpc {_lab}: p50", "ms"),
        F("rpc", _v, "p99", f"rpc {_lab}: p99", "ms"),
        F("rpc", _v, "cpu_per_op", f"rpc {_lab}: server CPU/op", "us", target=_tgt),
        F("rpc", _v, "util", f"rpc {_lab}: server util (cores)", "x", ""),
    ]
for _n in (100, 500):
    FIGURES += [
        F("fanout", f"c{_n}", "rate", f"fanout {_n}: deliveries/s", "rate", "higher"),
        F("fanout", f"c{_n}", "client_p50", f"fanout {_n}: per-client p50", "ms"),
        F("fanout", f"c{_n}", "client_p99", f"fanout {_n}: per-client p99", "ms"),
        F("fanout", f"c{_n}", "all_p99", f"fanout {_n}: all-clients p99", "ms"),
        F("fanout", f"c{_n}", "cpu_per_delivery", f"fanout {_n}: server CPU/delivery", "us",
          target="≤ 10 µs"),
        F("fanout", f"c{_n}", "frame_bytes", f"fanout {_n}: presence frame size", "n", ""),
    ]
for _v in ("16x16", "32x16"):
    FIGURES += [
        F("overload", _v, "ok_rate", f"overload {_v}: ok/s", "rate", "higher"),
        F("overload", _v, "pct_of_peak", f"overload {_v}: ok/s as % of 8×8 peak", "pct",
          "higher", "≥ 80 %"),
        F("overload", _v, "rejected_pct", f"overload {_v}: rejected", "pct"),
        F("overload", _v, "retry_after_pct", f"overload {_v}: rejections with retryAfterMs", "pct",
          "higher", "100 %"),
        F("overload", _v, "p99", f"overload {_v}: p99", "ms"),
        F("overload", _v, "cpu_per_ok", f"overload {_v}: server CPU per ok", "us"),
    ]
for _i in (1, 2, 3):
    FIGURES += [
        F("soak", f"run{_i}", "rss_tree", f"soak: RSS after run {_i}", "MiB",
          target="≤ 80 MB, flat 2→3" if _i == 3 else ""),
    ]
FIGURES += [
    F("soak", "run3", "rate", "soak: req/s (run 3)", "rate", "higher"),
    F("soak", "run3", "cpu_per_op", "soak: server CPU/op (run 3)", "us"),
    F("chat", "offline", "first_delta_p50", "chat (offline model): chat.send → first delta p50",
      "ms", target="≤ 2 ms"),
    F("chat", "offline", "first_delta_p99", "chat (offline model): → first delta p99", "ms"),
    F("chat", "offline", "final_p50", "chat (offline model): → final p50", "ms"),
    F("chat", "offline", "cpu_per_turn", "chat (offline model): server CPU/turn", "ms"),
    F("chat", "mock-openai", "first_delta_p50",
      "chat (mock OpenAI server): chat.send → first delta p50", "ms"),
    F("chat", "mock-openai", "first_delta_p99", "chat (mock OpenAI server): → first delta p99",
      "ms"),
    F("chat", "mock-openai", "final_p50", "chat (mock OpenAI server): → final p50", "ms"),
    F("chat", "mock-openai", "cpu_per_turn", "chat (mock OpenAI server): server CPU/turn", "ms"),
]

# control-ui (bench/controlui.py): the real Control UI on each gateway; our built-in dashboard
# (variant "dashboard") is compared with the real gateway's Control UI.
for _v, _lab, _ref in (("control-ui", "Control UI", ""),
                       ("dashboard", "our dashboard vs their Control UI", "control-ui")):
    FIGURES += [
        F("control-ui", _v, "ready_s", f"{_lab} cold load: navigation → composer usable", "s",
          theirs_variant=_ref),
        F("control-ui", _v, "hello_s", f"{_lab} cold load: navigation → hello-ok", "s",
          theirs_variant=_ref),
        F("control-ui", _v, "requests_ready", f"{_lab} cold load: WS requests until usable",
          "n", "", theirs_variant=_ref),
        F("control-ui", _v, "requests_burst", f"{_lab} cold load: WS requests in the start-up "
          "burst", "n", "", theirs_variant=_ref),
        F("control-ui", _v, "http_requests", f"{_lab} cold load: HTTP requests until settled",
          "n", "", theirs_variant=_ref),
        F("control-ui", _v, "res_errors", f"{_lab} cold load: error responses in the burst",
          "n", theirs_variant=_ref),
        F("control-ui", _v, "burst_s", f"{_lab} cold load: navigation → last burst request",
          "s", theirs_variant=_ref),
        F("control-ui", _v, "ws_rtt_p50", f"{_lab} cold load: WS request → response p50 (in "
          "the page)", "ms", theirs_variant=_ref),
        F("control-ui", _v, "ws_rtt_max", f"{_lab} cold load: WS request → response max",
          "ms", theirs_variant=_ref),
        F("control-ui", _v, "cpu_s", f"{_lab} cold load: gateway CPU, navigation → settled",
          "ms", theirs_variant=_ref),
        F("control-ui", _v, "rss_spike", f"{_lab} cold load: gateway RSS peak − before (tree)",
          "MiB", theirs_variant=_ref),
        F("control-ui", _v, "rss_peak", f"{_lab} cold load: gateway RSS peak (tree)", "MiB",
          theirs_variant=_ref),
        F("control-ui", _v, "rss_after", f"{_lab} cold load: gateway RSS after (tree)", "MiB",
          theirs_variant=_ref),
        F("control-ui", _v, "root_peak", f"{_lab} cold load: gateway main process peak RSS "
          "(VmHWM)", "MiB", theirs_variant=_ref),
    ]
FIGURES += [
    F("control-ui", "control-ui-first", "ready_s",
      "Control UI first load after start: navigation → composer usable", "s"),
    F("control-ui", "control-ui-first", "cpu_s",
      "Control UI first load after start: gateway CPU", "ms"),
    F("control-ui", "control-ui-first", "rss_spike",
      "Control UI first load after start: gateway RSS peak − before", "MiB"),
]


def num(value: float, unit: str) -> str:
    _suffix, mult, dec = UNITS[unit]
    v = value * mult
    if unit in ("n", "rate") and abs(v - round(v)) > 1e-9 and abs(v) < 100:
        dec = 1
    if unit in ("rate", "n") and abs(v) >= 10000:
        return f"{v:,.{dec}f}".replace(",", "\u202f")
    return f"{v:.{dec}f}"


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    suffix = UNITS[unit][0]
    text = num(value, unit)
    if suffix in ("/s", "%", ""):
        return f"{text}{suffix}"
    return f"{text} {suffix}"


def values_for(rows: Iterable[dict[str, Any]], fig: Figure, server: str,
               variant: str | None = None) -> list[float]:
    out = []
    for r in rows:
        if (r.get("scenario"), r.get("variant"), r.get("server")) == \
                (fig.scenario, variant or fig.variant, server):
            v = r.get(fig.metric)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out.append(float(v))
    return out


def na_for(rows: Iterable[dict[str, Any]], fig: Figure, server: str,
           variant: str | None = None) -> str | None:
    for r in rows:
        if (r.get("scenario"), r.get("server")) == (fig.scenario, server) and "na" in r and \
                r.get("variant") in (variant or fig.variant, "*"):
            return str(r["na"])
    return None


def cell(vals: list[float], unit: str) -> str:
    """``median`` or ``median (min–max)`` when there are several differing values."""
    if not vals:
        return "—"
    med = statistics.median(vals)
    if len(vals) > 1 and min(vals) != max(vals):
        return f"{fmt(med, unit)} ({num(min(vals), unit)}–{num(max(vals), unit)})"
    return fmt(med, unit)


def ratio(ours: list[float], theirs: list[float]) -> str:
    if not ours or not theirs:
        return "—"
    a, b = statistics.median(ours), statistics.median(theirs)
    if b <= 0 or a < 0:
        return "—"
    r = a / b
    return f"{r:.3f}×" if r < 0.1 else f"{r:.2f}×"


def table(rows: list[dict[str, Any]], servers: tuple[str, str] = ("ours", "theirs")) -> str:
    a, b = servers
    lines = [f"| figure | {a} | {b} | {a}/{b} | better | target |",
             "|---|---|---|---|---|---|"]
    told: set[tuple[str, str]] = set()  # cross-variant figures whose absence was shown once
    for fig in FIGURES:
        cols = []
        vals = {}
        for i, s in enumerate(servers):
            variant = fig.theirs_variant if i and fig.theirs_variant else fig.variant
            vals[s] = values_for(rows, fig, s, variant)
            if vals[s]:
                cols.append(cell(vals[s], fig.unit))
            else:
                reason = na_for(rows, fig, s, variant)
                cols.append(f"n/a: {reason}" if reason else "—")
        if all(c == "—" for c in cols):
            continue
        if fig.theirs_variant and not vals[servers[0]]:
            if (fig.scenario, fig.variant) in told:
                continue
            told.add((fig.scenario, fig.variant))
        arrow = {"lower": "↓", "higher": "↑"}.get(fig.better, "")
        lines.append(f"| {fig.label} | {cols[0]} | {cols[1]} | "
                     f"{ratio(vals[servers[0]], vals[servers[1]])} | {arrow} | {fig.target} |")
    return "\n".join(lines)
