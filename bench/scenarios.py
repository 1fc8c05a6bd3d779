"""The scenarios (same definitions as ``shared/reference/baseline-openclaw.md``).

Each ``run_<name>(ctx, gw, rep)`` measures one gateway once and records JSON lines; the driver
calls them A/B alternating (ours, theirs, ours, theirs …).  Every loop is bounded in count and
by a deadline.  Server CPU and RSS come from ``/proc`` (``bench.procstat``) around the measured
section only (connection set-up is outside it unless it is what is measured).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from bench import procstat
from bench.client import (
    ADMIN_SCOPES,
    CONNECT_ERRORS,
    READ_SCOPES,
    ConnectRefused,
    Session,
    close_all,
    open_many,
    open_session,
)
from bench.device import DeviceKey
from bench.report import Recorder, percentile
from bench.servers import Gateway

now = time.perf_counter


@dataclass
class Params:
    """Sizes; ``quick()`` is the smoke variant."""

    startup_runs: int = 3
    idle_s: float = 10.0
    stop_grace: float = 15.0
    start_timeout: float = 180.0
    settle_s: float = 10.0           # after a long-lived start, before measuring
    fresh_settle_s: float = 10.0     # idle-memory: wait this long after the first hello-ok
    reps: int = 3                    # repetitions of the other scenarios
    idle_counts: tuple[int, ...] = (100, 500, 1000)
    idle_settle_s: float = 3.0
    hs_n: int = 500
    hs_conc_n: int = 1000
    hs_dev_n: int = 300
    hs_dev_conc_n: int = 500
    rpc: dict[str, tuple[str, int, int, int]] = field(default_factory=lambda: {
        # variant: (method, clients, window, requests in total)
        "last-heartbeat-8x8": ("last-heartbeat", 8, 8, 64_000),
        "last-heartbeat-1x1": ("last-heartbeat", 1, 1, 20_000),
        "health-8x4": ("health", 8, 4, 4_000),
        "health-1x1": ("health", 1, 1, 2_000),
    })
    fanout: dict[str, tuple[int, int]] = field(default_factory=lambda: {
        "c100": (100, 500), "c500": (500, 150)})   # clients, broadcasts (window 1)
    overload: dict[str, tuple[int, int, int]] = field(default_factory=lambda: {
        "16x16": (16, 16, 9_600), "32x16": (32, 16, 9_600)})
    soak_runs: int = 3
    soak_n: int = 64_000
    chat_turns: int = 100
    chat_mock_turns: int = 50        # per repetition, against the mock OpenAI server
    run_timeout: float = 240.0       # per scenario run
    state_div: int = 1               # state-scale: calls per probe divided by this
    ui_runs: int = 5                 # control-ui: cold loads per target (after a first load)
    ui_ready_timeout: float = 60.0   # control-ui: navigation → usable, at most
    ui_quiet_s: float = 1.5          # control-ui: the burst settled: no request for this long
    ui_settle_max_s: float = 15.0    # control-ui: ... or this long after usable
    ui_sample_s: float = 0.05        # control-ui: gateway RSS sampling interval
    ui_pause_s: float = 2.0          # control-ui: between loads (the last one's close settles)

    @classmethod
    def quick(cls) -> Params:
        return cls(
            startup_runs=1, idle_s=2.0, settle_s=2.0, fresh_settle_s=1.0, reps=1,
            idle_counts=(50, 100),
            idle_settle_s=1.0, hs_n=30, hs_conc_n=64, hs_dev_n=20, hs_dev_conc_n=32,
            rpc={"last-heartbeat-8x8": ("last-heartbeat", 8, 8, 2_000),
                 "last-heartbeat-1x1": ("last-heartbeat", 1, 1, 500),
                 "health-8x4": ("health", 8, 4, 200),
                 "health-1x1": ("health", 1, 1, 100)},
            fanout={"c100": (100, 20)},
            overload={"16x16": (16, 16, 1_024), "32x16": (32, 16, 1_024)},
            soak_runs=3, soak_n=2_000, chat_turns=10, chat_mock_turns=3, run_timeout=90.0,
            state_div=4, ui_runs=2, ui_ready_timeout=45.0, ui_quiet_s=1.0,
            ui_settle_max_s=8.0)


@dataclass
class Ctx:
    params: Params
    rec: Recorder
    devices: dict[str, DeviceKey] = field(default_factory=dict)
    peak: dict[str, list[float]] = field(default_factory=dict)  # server -> 8x8 req/s
    chat_ready: dict[str, str | None] = field(default_factory=dict)  # server -> n/a reason


def lat_stats(lat: list[float]) -> dict[str, float | None]:
    return {"p50": percentile(lat, 50), "p90": percentile(lat, 90),
            "p99": percentile(lat, 99), "max": max(lat) if lat else None}


# -- startup + idle ----------------------------------------------------------------------------

async def run_startup(ctx: Ctx, gw: Gateway, rep: int) -> None:
    """Spawn → first hello-ok (retrying), then an idle window, then SIGTERM → exit."""
    p = ctx.params
    gw.spawn()
    try:
        res = await gw.wait_hello(p.start_timeout)
        gw.remember_tree()
        probe = procstat.Probe(gw.pid)
        t0 = now()
        await asyncio.sleep(p.idle_s)
        gw.remember_tree()
        end = probe.stop()
        window = now() - t0
    finally:
        stop_s, killed = gw.stop(p.stop_grace)
    ctx.rec.add("startup", "start", gw.name, rep, first_accept_s=res.first_accept_s,
                first_hello_s=res.first_hello_s, unavailable_retries=res.unavailable_retries,
                connect_retries=res.connect_retries, stop_s=stop_s, killed=killed)
    ctx.rec.add("idle", "fresh", gw.name, rep, window_s=window, cpu_s=probe.cpu_s,
                cpu_pct=100 * probe.cpu_s / window, rss_tree=end.rss, rss_root=end.root_rss,
                processes=len(end.pids), threads=end.threads)


# -- idle-memory -------------------------------------------------------------------------------

async def run_idle_memory(ctx: Ctx, gw: Gateway, rep: int) -> None:
    """On a fresh gateway (started ``fresh_settle_s`` before): idle connections opened 16 at a
    time up to 100, then 500, then 1000 in all (cumulative, like the baseline), the tree's RSS
    after each step against the RSS before the first; then all are closed and RSS is read
    again.  ``gw`` is stopped at the end."""
    p = ctx.params
    sessions: list[Session] = []
    gw.spawn()
    try:
        await gw.wait_hello(p.start_timeout)
        await asyncio.sleep(p.fresh_settle_s)
        base = procstat.sample(gw.pid)
        for count in p.idle_counts:
            t0 = now()
            add = count - len(sessions)
            sessions += await open_many(gw.url, gw.token, add, 16, scopes=READ_SCOPES,
                                        timeout=p.run_timeout)
            connect_s = now() - t0
            await asyncio.sleep(p.idle_settle_s)
            held = procstat.sample(gw.pid)
            alive = sum(1 for s in sessions if s.ws.close_code is None)
            delta = held.rss - base.rss
            row = dict(count=count, rss_before=base.rss, rss_held=held.rss, rss_delta=delta,
                       per_conn=delta / count, root_delta=held.root_rss - base.root_rss,
                       connect_rate=add / connect_s, alive=alive)
            if count == p.idle_counts[-1]:
                await close_all(sessions)
                sessions = []
                await asyncio.sleep(p.idle_settle_s)
                after = procstat.sample(gw.pid)
                row.update(rss_after=after.rss, after_close_delta=after.rss - base.rss)
            ctx.rec.add("idle-memory", f"c{count}", gw.name, rep, **row)
    finally:
        await close_all(sessions)
        gw.stop(p.stop_grace)


# -- handshake ---------------------------------------------------------------------------------

async def _handshake_loop(gw: Gateway, n: int, concurrency: int, device: DeviceKey | None,
                          timeout: float) -> tuple[list[float], int, float, float]:
    """``n`` open → hello-ok → close cycles with ``concurrency`` workers.
    Returns (latencies, errors, wall seconds, server CPU seconds)."""
    lat: list[float] = []
    errors = 0
    it = iter(range(n))
    deadline = now() + timeout

    async def worker() -> None:
        nonlocal errors
        for _ in it:
            if now() > deadline:
                return
            try:
                s = await open_session(gw.url, gw.token, scopes=ADMIN_SCOPES, device=device,
                                       timeout=30)
            except (ConnectRefused, *CONNECT_ERRORS):
                errors += 1
                await asyncio.sleep(0.01)
                continue
            lat.append(s.hello_s)
            await s.close()

    probe = procstat.Probe(gw.pid)
    t0 = now()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = now() - t0
    probe.stop()
    return lat, errors, wall, probe.cpu_s


async def run_handshake(ctx: Ctx, gw: Gateway, rep: int) -> None:
    p = ctx.params
    device = ctx.devices.setdefault(gw.name, DeviceKey())
    # warm-up (and the device's first, pairing connect) outside the measurement
    for dev in (None, device):
        s = await open_session(gw.url, gw.token, scopes=ADMIN_SCOPES, device=dev)
        await s.close()
    for variant, n, conc, dev in (("token-seq", p.hs_n, 1, None),
                                  ("token-c16", p.hs_conc_n, 16, None),
                                  ("device-seq", p.hs_dev_n, 1, device),
                                  ("device-c16", p.hs_dev_conc_n, 16, device)):
        lat, errors, wall, cpu = await _handshake_loop(gw, n, conc, dev, p.run_timeout)
        done = len(lat)
        ctx.rec.add("handshake", variant, gw.name, rep, n=n, done=done, errors=errors,
                    concurrency=conc, wall_s=wall, rate=done / wall if wall else None,
                    cpu_s=cpu, cpu_per_op=cpu / done if done else None,
                    util=cpu / wall if wall else None, **lat_stats(lat))


# -- request/response load ---------------------------------------------------------------------

@dataclass
class Load:
    ok: int = 0
    err: int = 0
    retry_after: int = 0
    codes: dict[str, int] = field(default_factory=dict)
    lat: list[float] = field(default_factory=list)
    timed_out: bool = False


async def _client_load(s: Session, method: str, n: int, window: int, load: Load) -> None:
    """Keep ``window`` requests of ``method`` in flight until ``n`` answers came back."""
    ws = s.ws
    tmpl = b'{"type":"req","id":"%d","method":"' + method.encode() + b'","params":{}}'
    sent_at = [0.0] * n
    sent = got = 0
    lat = load.lat
    loads = orjson.loads
    while sent < min(window, n):
        sent_at[sent] = now()
        await ws.send(tmpl % sent, text=True)
        sent += 1
    while got < n:
        msg = loads(await ws.recv(decode=False))
        if msg.get("type") != "res":
            continue
        t = now()
        i = int(msg["id"])
        lat.append(t - sent_at[i])
        got += 1
        if msg.get("ok"):
            load.ok += 1
        else:
            load.err += 1
            error = msg.get("error") or {}
            code = str(error.get("code"))
            load.codes[code] = load.codes.get(code, 0) + 1
            if "retryAfterMs" in error:
                load.retry_after += 1
        if sent < n:
            sent_at[sent] = now()
            await ws.send(tmpl % sent, text=True)
            sent += 1


async def _load(sessions: list[Session], method: str, total: int, window: int,
                timeout: float) -> Load:
    load = Load()
    per = max(1, total // len(sessions))
    try:
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(_client_load(s, method, per, window, load) for s in sessions))
    except TimeoutError:
        load.timed_out = True
    return load


async def _measured_load(ctx: Ctx, gw: Gateway, method: str, clients: int, window: int,
                         total: int) -> tuple[Load, float, procstat.Probe, list[Session]]:
    """Open ``clients`` sessions, warm up, then measure ``total`` requests.  The sessions are
    returned open; the caller closes them."""
    p = ctx.params
    sessions = await open_many(gw.url, gw.token, clients, 16, scopes=ADMIN_SCOPES)
    try:
        await _load(sessions, method, min(total // 10, 200 * clients), window, p.run_timeout)
        probe = procstat.Probe(gw.pid)
        t0 = now()
        load = await _load(sessions, method, total, window, p.run_timeout)
        wall = now() - t0
        probe.stop()
    except BaseException:
        await close_all(sessions)
        raise
    return load, wall, probe, sessions


async def run_rpc(ctx: Ctx, gw: Gateway, rep: int) -> None:
    for variant, (method, clients, window, total) in ctx.params.rpc.items():
        load, wall, probe, sessions = await _measured_load(ctx, gw, method, clients, window,
                                                           total)
        await close_all(sessions)
        done = load.ok + load.err
        rate = load.ok / wall if wall else None
        if variant == "last-heartbeat-8x8" and rate:
            ctx.peak.setdefault(gw.name, []).append(rate)
        ctx.rec.add("rpc", variant, gw.name, rep, method=method, clients=clients, window=window,
                    requests=done, ok=load.ok, errors=load.err, codes=load.codes,
                    timed_out=load.timed_out, wall_s=wall, rate=rate, cpu_s=probe.cpu_s,
                    cpu_per_op=probe.cpu_s / done if done else None,
                    util=probe.cpu_s / wall if wall else None,
                    rss_after=probe.end.rss if probe.end else None, **lat_stats(load.lat))


async def run_overload(ctx: Ctx, gw: Gateway, rep: int) -> None:
    for variant, (clients, window, total) in ctx.params.overload.items():
        load, wall, probe, sessions = await _measured_load(ctx, gw, "last-heartbeat", clients,
                                                           window, total)
        await close_all(sessions)
        done = load.ok + load.err
        ok_rate = load.ok / wall if wall else None
        peak = ctx.peak.get(gw.name)
        ctx.rec.add("overload", variant, gw.name, rep, clients=clients, window=window,
                    in_flight=clients * window, requests=done, ok=load.ok, rejected=load.err,
                    codes=load.codes, timed_out=load.timed_out, wall_s=wall, ok_rate=ok_rate,
                    pct_of_peak=100 * ok_rate / max(peak) if peak and ok_rate else None,
                    rejected_pct=100 * load.err / done if done else None,
                    retry_after_pct=100 * load.retry_after / load.err if load.err else None,
                    cpu_s=probe.cpu_s, cpu_per_ok=probe.cpu_s / load.ok if load.ok else None,
                    util=probe.cpu_s / wall if wall else None, **lat_stats(load.lat))


async def run_soak(ctx: Ctx, gw: Gateway, rep: int) -> None:
    """One soak run: ``soak_n`` last-heartbeat requests (8×8) and the RSS after it.  The driver
    calls it ``soak_runs`` times per gateway, alternating, on the same long-lived process."""
    p = ctx.params
    sessions = await open_many(gw.url, gw.token, 8, 8, scopes=ADMIN_SCOPES)
    try:
        probe = procstat.Probe(gw.pid)
        t0 = now()
        load = await _load(sessions, "last-heartbeat", p.soak_n, 8, p.run_timeout)
        wall = now() - t0
        end = probe.stop()
    finally:
        await close_all(sessions)
    done = load.ok + load.err
    ctx.rec.add("soak", f"run{rep + 1}", gw.name, rep, requests=done, ok=load.ok,
                timed_out=load.timed_out, wall_s=wall, rate=done / wall,
                cpu_per_op=probe.cpu_s / done if done else None, rss_tree=end.rss,
                rss_root=end.root_rss, **lat_stats(load.lat))


# -- fanout ------------------------------------------------------------------------------------

_BENCH_TEXT = re.compile(rb"Node: bench (\d+)")


async def run_fanout(ctx: Ctx, gw: Gateway, rep: int) -> None:
    for variant, (clients, broadcasts) in ctx.params.fanout.items():
        await _fanout(ctx, gw, rep, variant, clients, broadcasts)


async def _fanout(ctx: Ctx, gw: Gateway, rep: int, variant: str, clients: int,
                  broadcasts: int) -> None:
    """One admin client sends ``system-event`` (window 1); every ``operator.read`` receiver gets
    a ``presence`` snapshot.  Deliveries are matched to broadcasts by the event text."""
    p = ctx.params
    total = broadcasts + 1  # index 0 is the warm-up broadcast
    sent_at = [0.0] * total
    counts = [0] * total
    all_lat: list[float] = []
    client_lat: list[float] = []
    sizes: list[int] = []
    complete = asyncio.Event()
    warm = asyncio.Event()
    remaining = [total]
    receivers = await open_many(gw.url, gw.token, clients, 16, scopes=READ_SCOPES,
                                timeout=p.run_timeout)
    trigger = await open_session(gw.url, gw.token, scopes=ADMIN_SCOPES)

    async def receive(s: Session) -> None:
        ws = s.ws
        find = _BENCH_TEXT.findall
        while True:
            msg = await ws.recv(decode=False)
            if b'"presence"' not in msg:
                continue
            found = find(msg)
            if not found:
                continue
            t = now()
            i = max(int(x) for x in found)
            if i >= total or counts[i] >= clients:
                continue
            if i > 0:
                client_lat.append(t - sent_at[i])
            counts[i] += 1
            if counts[i] == clients:
                if i == 0:
                    warm.set()
                else:
                    all_lat.append(t - sent_at[i])
                    if len(sizes) < 3:
                        sizes.append(len(msg))
                remaining[0] -= 1
                if remaining[0] == 0:
                    complete.set()

    async def drain_trigger() -> None:
        while True:
            await trigger.ws.recv(decode=False)

    def event(i: int) -> dict[str, Any]:
        return {"type": "req", "id": f"e{i}", "method": "system-event",
                "params": {"text": f"Node: bench {i}", "instanceId": "bench-fanout",
                           "host": "bench", "mode": "backend", "reason": "periodic"}}

    tasks = [asyncio.ensure_future(receive(s)) for s in receivers]
    errors = 0
    try:
        # warm-up broadcast: every receiver is reading before the measurement starts
        sent_at[0] = now()
        res = await trigger.call("system-event", event(0)["params"])
        if not res.get("ok"):
            raise RuntimeError(f"system-event refused: {res.get('error')}")
        await asyncio.wait_for(warm.wait(), 30)
        trigger.pending_events.clear()
        probe = procstat.Probe(gw.pid)
        t0 = now()
        deadline = t0 + p.run_timeout
        for i in range(1, total):
            if now() > deadline:
                break
            sent_at[i] = now()
            res = await trigger.call("system-event", event(i)["params"], timeout=30)
            trigger.pending_events.clear()
            if not res.get("ok"):
                errors += 1
        try:
            await asyncio.wait_for(complete.wait(), max(1.0, deadline - now()))
        except TimeoutError:
            pass
        wall = now() - t0
        probe.stop()
        alive = sum(1 for r in receivers if r.ws.close_code is None)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await close_all([*receivers, trigger])
    deliveries = sum(counts[1:])
    expected = broadcasts * clients
    ctx.rec.add("fanout", variant, gw.name, rep, clients=clients, broadcasts=broadcasts,
                deliveries=deliveries, expected=expected, missing=expected - deliveries,
                trigger_errors=errors, alive=alive, wall_s=wall, rate=deliveries / wall,
                broadcasts_per_s=broadcasts / wall, cpu_s=probe.cpu_s,
                cpu_per_delivery=probe.cpu_s / deliveries if deliveries else None,
                util=probe.cpu_s / wall, frame_bytes=sizes[0] if sizes else None,
                client_p50=percentile(client_lat, 50), client_p99=percentile(client_lat, 99),
                all_p50=percentile(all_lat, 50), all_p99=percentile(all_lat, 99))


# -- chat ------------------------------------------------------------------------------------

async def run_chat(ctx: Ctx, gw: Gateway, rep: int) -> None:
    """The offline model (ours only; the real gateway has none)."""
    reason = ctx.chat_ready.get(gw.name)
    if reason:
        ctx.rec.na("chat", "offline", gw.name, reason)
        return
    await chat_turns(ctx, gw, rep, "offline", ctx.params.chat_turns, warmup=2)


async def chat_turns(ctx: Ctx, gw: Gateway, rep: int, variant: str, turns: int,
                     warmup: int) -> None:
    """``chat.send`` → first ``chat`` delta and → ``final``; sequential turns on one socket
    (``warmup`` unmeasured turns first)."""
    s = await open_session(gw.url, gw.token, scopes=ADMIN_SCOPES)
    first: list[float] = []
    final: list[float] = []
    failures: dict[str, int] = {}
    session_key = f"bench-chat-{uuid.uuid4().hex[:8]}"

    async def turn(n: int, record: bool) -> None:
        run_id = str(uuid.uuid4())
        rid = f"chat{n}"
        t_send = now()
        await s.ws.send(orjson.dumps({"type": "req", "id": rid, "method": "chat.send", "params": {
            "sessionKey": session_key, "message": f"hello {n}", "idempotencyKey": run_id}}),
            text=True)
        t_first = None
        async with asyncio.timeout(120):
            while True:
                msg = orjson.loads(await s.ws.recv(decode=False))
                kind = msg.get("type")
                if kind == "res" and msg.get("id") == rid:
                    if not msg.get("ok"):
                        code = str((msg.get("error") or {}).get("code"))
                        failures[code] = failures.get(code, 0) + 1
                        return
                    continue
                if kind != "event" or msg.get("event") != "chat":
                    continue
                payload = msg.get("payload") or {}
                if payload.get("runId") != run_id:
                    continue
                state = payload.get("state")
                if state == "delta" and t_first is None:
                    t_first = now()
                    if record:
                        first.append(t_first - t_send)
                elif state in ("final", "error", "aborted"):
                    if state != "final":
                        failures[state] = failures.get(state, 0) + 1
                    elif record:
                        final.append(now() - t_send)
                    return

    try:
        for n in range(warmup):
            await turn(-1 - n, False)
        failures.clear()
        probe = procstat.Probe(gw.pid)
        t0 = now()
        for n in range(turns):
            await turn(n, True)
        wall = now() - t0
        probe.stop()
    finally:
        await s.close()
    ctx.rec.add("chat", variant, gw.name, rep, turns=turns, finals=len(final),
                failures=failures, wall_s=wall, cpu_s=probe.cpu_s,
                cpu_per_turn=probe.cpu_s / turns,
                first_delta_p50=percentile(first, 50), first_delta_p99=percentile(first, 99),
                final_p50=percentile(final, 50), final_p99=percentile(final, 99))


# on fresh gateways, before the long-lived ones start (see __main__)
FRESH = {"startup": run_startup, "idle-memory": run_idle_memory}
SCENARIOS = {
    "handshake": run_handshake,
    "rpc": run_rpc,
    "fanout": run_fanout,
    "overload": run_overload,
    "soak": run_soak,
    "chat": run_chat,
}
# on fresh gateways with the mock model, after the long-lived ones stop (bench/controlui.py)
PHASES = ["control-ui"]
ORDER = [*FRESH, *SCENARIOS, *PHASES]


def reps_for(name: str, params: Params) -> int:
    return params.soak_runs if name == "soak" else params.reps
