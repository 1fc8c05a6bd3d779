"""``state-scale``: what stored sessions cost ours — start → hello-ok, idle RSS, ``sessions.list``
pages, ``chat.history`` limit 200 and a new turn's CPU — at 0, 10k, 100k and 1M sessions
(``bench/stategen.py`` writes the state once per size and it is kept under ``--state-cache``;
10 transcript entries per session: 10M at the top), and the real gateway at 1000 sessions
filled through its own protocol (``sessions.create``), side by side.

Every loop is bounded: a fixed number of calls per variant, each under a timeout.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import procstat
from bench import scenarios as sc
from bench.client import ADMIN_SCOPES, open_session
from bench.report import percentile
from bench.servers import REPO, Gateway, Ours

SIZES: dict[str, int] = {"0": 0, "10k": 10_000, "100k": 100_000, "1m": 1_000_000}
QUICK_SIZES = ("0", "10k")
PER_SESSION = 10  # transcript entries per generated session
THEIRS_SESSIONS = 1000
# variant: (method, params, calls)
PROBES: dict[str, tuple[str, dict[str, Any], int]] = {
    "list-50": ("sessions.list", {"limit": 50}, 100),
    "list-1000": ("sessions.list", {"limit": 1000}, 20),
    "list-50-agent": ("sessions.list", {"limit": 50, "agentId": "ops"}, 100),
    "list-1000-agent": ("sessions.list", {"limit": 1000, "agentId": "ops"}, 20),
    "list-50-label": ("sessions.list", {"limit": 50, "label": "label-0"}, 100),
    "list-50-active": ("sessions.list", {"limit": 50, "activeMinutes": 60}, 50),
    "list-50-all-archived": ("sessions.list", {"limit": 50, "archived": "all"}, 100),
    "list-50-lastmsg": ("sessions.list", {"limit": 50, "includeLastMessage": True}, 50),
    "list-50-search": ("sessions.list", {"limit": 50, "search": "s00001"}, 10),
    "history-200": ("chat.history", {"sessionKey": "agent:main:big-0", "limit": 200}, 100),
}
TURNS = 20


def cached_state(cache: Path, size: str, log: Any) -> Path:
    """The generated state dir of ``size`` (written once; reused by later runs)."""
    state = cache / f"s{size}" / "state"
    if SIZES[size] == 0:
        state.mkdir(parents=True, exist_ok=True)
        return state
    done = cache / f"s{size}.done"
    if not done.exists():
        if state.exists():
            shutil.rmtree(state.parent)  # an interrupted generation
        log(f"state-scale: generating {size} sessions into {state} (once)")
        subprocess.run([sys.executable, "-m", "bench.stategen", str(state), str(SIZES[size]),
                        str(PER_SESSION)], cwd=REPO, check=True, timeout=6 * 3600,
                       env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
        done.write_text("ok\n")
    subprocess.run([sys.executable, "-m", "bench.stategen", "--migrate", str(state)], cwd=REPO,
                   check=True, timeout=3600, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    return state


async def _probe(gw: Gateway, variant: str, method: str, params: dict[str, Any], calls: int
                 ) -> dict[str, Any]:
    s = await open_session(gw.url, gw.token, scopes=ADMIN_SCOPES)
    try:
        for _ in range(3):  # warm-up: caches, first-call imports
            res = await s.call(method, params, timeout=120)
            if not res.get("ok"):
                return {"error": str(res.get("error"))[:160]}
        lat: list[float] = []
        probe = procstat.Probe(gw.pid)
        for _ in range(calls):
            t0 = time.perf_counter()
            res = await s.call(method, params, timeout=120)
            lat.append(time.perf_counter() - t0)
        probe.stop()
        payload = res.get("payload") or {}
        return {"calls": calls, "p50_ms": percentile(lat, 50) * 1000,
                "p90_ms": percentile(lat, 90) * 1000, "max_ms": max(lat) * 1000,
                "cpu_ms_per_call": probe.cpu_s / calls * 1000,
                "rows": len(payload.get("sessions") or payload.get("messages") or []),
                "total": payload.get("totalCount")}
    finally:
        await s.close()


async def measure(ctx: sc.Ctx, gw: Gateway, size: str, sessions: int, log: Any) -> None:
    p = ctx.params
    gw.spawn()
    try:
        res = await gw.wait_hello(p.start_timeout)
        await asyncio.sleep(p.idle_s)
        idle = procstat.sample(gw.pid)
        ctx.rec.add("state-scale", f"{size}/start", gw.name, 0, sessions=sessions,
                    first_hello_s=res.first_hello_s, idle_rss=idle.rss)
        log(f"state-scale {gw.name} {size}: hello-ok {res.first_hello_s:.2f}s, idle RSS "
            f"{idle.rss / 2**20:.1f} MiB")
        for variant, (method, params, calls) in PROBES.items():
            out = await asyncio.wait_for(_probe(gw, variant, method, params,
                                                max(3, calls // p.state_div)),
                                         p.run_timeout)
            ctx.rec.add("state-scale", f"{size}/{variant}", gw.name, 0, sessions=sessions, **out)
            log(f"state-scale {gw.name} {size} {variant}: {out}")
        if ctx.chat_ready.get(gw.name) is None:
            await asyncio.wait_for(sc.chat_turns(ctx, gw, 0, f"state-{size}", TURNS, warmup=2),
                                   p.run_timeout)
    finally:
        gw.stop(p.stop_grace)


async def fill_theirs(gw: Gateway, n: int) -> None:
    """``n`` sessions through the real gateway's protocol (``sessions.create``)."""
    s = await open_session(gw.url, gw.token, scopes=ADMIN_SCOPES)
    try:
        for i in range(n):
            # the real gateway refuses a label another session has ("label already in use")
            res = await s.call("sessions.create", {"key": f"s{i:07d}",
                                                   **({"label": f"label-{i // 100}"}
                                                      if i % 100 == 0 else {})}, timeout=60)
            if not res.get("ok"):
                raise RuntimeError(f"sessions.create: {res.get('error')}")
    finally:
        await s.close()


async def run(ctx: sc.Ctx, gws: list[Gateway], cache: Path, quick: bool, sizes: list[str],
              log: Any) -> None:
    for size in sizes or (QUICK_SIZES if quick else tuple(SIZES)):
        for gw in gws:
            if not isinstance(gw, Ours):
                continue
            try:
                state = cached_state(cache, size, log)
                fresh = Ours(gw.workdir.parent / f"ours-state-{size}", gw.token)
                fresh.state_dir = state
                await measure(ctx, fresh, size, SIZES[size], log)
            except Exception as e:  # recorded, the run goes on
                log(f"state-scale ours {size} failed: {e!r}")
                ctx.rec.na("state-scale", f"{size}/*", "ours", f"error: {e}"[:160])
    for gw in gws:
        if isinstance(gw, Ours):
            continue
        fresh: Gateway | None = None
        try:
            fresh = gw.twin("state")
            fresh.spawn()
            await fresh.wait_hello(ctx.params.start_timeout)
            t0 = time.perf_counter()
            n = 50 if quick else THEIRS_SESSIONS
            await fill_theirs(fresh, n)
            ctx.rec.add("state-scale", "fill", fresh.name, 0, sessions=n,
                        creates_per_s=n / (time.perf_counter() - t0))
            fresh.stop(ctx.params.stop_grace)
            await measure(ctx, fresh, "1000" if not quick else "50", n, log)
        except Exception as e:
            log(f"state-scale {gw.name} failed: {e!r}")
            ctx.rec.na("state-scale", "*", gw.name, f"error: {e}"[:160])
        finally:
            if fresh is not None:
                fresh.stop(ctx.params.stop_grace)


COLUMNS = [  # (variant suffix, metric, heading, multiplier, decimals)
    ("start", "first_hello_s", "start → hello-ok s", 1, 2),
    ("start", "idle_rss", "idle RSS MiB", 1 / 2**20, 1),
    *[(v, "p50_ms", f"{v} p50 ms", 1, 2) for v in PROBES],
    ("list-50", "cpu_ms_per_call", "list-50 CPU ms", 1, 2),
    ("history-200", "cpu_ms_per_call", "history-200 CPU ms", 1, 2),
]


def table(rows: list[dict[str, Any]]) -> str:
    """One line per (server, size): the state-scale figures (medians when repeated)."""
    import statistics

    keys = sorted({(r["server"], r["variant"].split("/")[0]) for r in rows
                   if r.get("scenario") == "state-scale" and "/" in r.get("variant", "")},
                  key=lambda k: (k[0], _size_order(k[1])))
    if not keys:
        return ""
    turn = {(r["server"], r["variant"][len("state-"):]): r.get("cpu_per_turn")
            for r in rows if r.get("scenario") == "chat"
            and str(r.get("variant", "")).startswith("state-")}
    head = ["server", "sessions", *[c[2] for c in COLUMNS], "new turn CPU ms"]
    lines = ["", "## state-scale", "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]
    for server, size in keys:
        cells = [server, size]
        for variant, metric, _, mult, dec in COLUMNS:
            vals = [r[metric] for r in rows if r.get("scenario") == "state-scale"
                    and r.get("server") == server and r.get("variant") == f"{size}/{variant}"
                    and isinstance(r.get(metric), (int, float))]
            cells.append(f"{statistics.median(vals) * mult:.{dec}f}" if vals else "—")
        cpu = turn.get((server, size))
        cells.append(f"{cpu * 1000:.2f}" if isinstance(cpu, (int, float)) else "—")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _size_order(size: str) -> int:
    return SIZES.get(size, int(size) if size.isdigit() else 0)
