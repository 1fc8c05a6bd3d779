"""``python -m bench [--quick] [--scenarios a,b] …``: ours vs the real gateway, side by side."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bench import controlui, floor, state_scale
from bench import scenarios as sc
from bench.mockllm import provider_config
from bench.report import Recorder, table
from bench.servers import (
    REF_DIR,
    REPO,
    Floor,
    Gateway,
    Ours,
    OursMetricsOff,
    Theirs,
    find_launcher,
    node_version,
    pick_port,
    port_free,
)

RESULTS = REPO / "bench" / "results"
STATE_CACHE = Path(tempfile.gettempdir()) / "openclaw-bench-state"
ALL = [*sc.ORDER, "state-scale"]
THEIRS_NO_CHAT = "no offline model in the real gateway (needs a model provider)"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        commit = "?"
    return {"cpu": cpu, "cores": os.cpu_count(), "mem_gib": round(mem / 2**30, 1),
            "kernel": platform.release(), "python": platform.python_version(),
            "node": node_version(), "commit": commit, "loadavg": os.getloadavg()}


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="short smoke variant")
    ap.add_argument("--scenarios", default=",".join(ALL),
                    help=f"comma list from {','.join(ALL)} (idle is part of startup)")
    ap.add_argument("--state-cache", default=str(STATE_CACHE),
                    help="state-scale: where the generated state of each size is kept")
    ap.add_argument("--state-sizes", default="",
                    help=f"state-scale: comma list from {','.join(state_scale.SIZES)} "
                         "(default: all; --quick: 0,10k)")
    ap.add_argument("--reps", type=int, help="repetitions of the non-startup scenarios")
    ap.add_argument("--startup-runs", type=int, help="fresh starts per gateway")
    ap.add_argument("--only", choices=["ours", "theirs"], help="measure one gateway only")
    ap.add_argument("--launcher", help="the reference `openclaw` launcher "
                                       "(default: ~/.cache/openclaw_tw/reference/openclaw)")
    ap.add_argument("--results", default=str(RESULTS), help="directory for .jsonl/latest.md")
    ap.add_argument("--keep", action="store_true", help="keep the gateways' work dirs and logs")
    ap.add_argument("--metrics-ab", action="store_true",
                    help="ours with metrics on (default) vs ours with --metrics off, instead "
                         "of ours vs theirs (the cost of /metrics' counters)")
    ap.add_argument("--floor", action="store_true",
                    help="also measure bench/floor.py's bare handshake servers (handshake and "
                         "idle RSS only): what the stack allows, beside ours")
    ap.add_argument("--no-mock-chat", action="store_true",
                    help="skip the chat turns against the loopback mock OpenAI server")
    ap.add_argument("--ui-runs", type=int, help="control-ui: cold loads per target")
    ap.add_argument("--dashboard-path", help="control-ui: where our built-in dashboard is "
                                             "from this URL path (readiness: "
                                             "document.body.dataset.ready == 'chat')")
    args = ap.parse_args(argv)
    names = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    names = ["startup" if n == "idle" else n for n in names]
    unknown = [n for n in names if n not in ALL]
    if unknown:
        ap.error(f"unknown scenario(s): {', '.join(unknown)}")
    args.names = [n for n in ALL if n in names]
    args.sizes = [s.strip() for s in args.state_sizes.split(",") if s.strip()]
    if any(s not in state_scale.SIZES for s in args.sizes):
        ap.error(f"--state-sizes: from {', '.join(state_scale.SIZES)}")
    return args


async def amain(args: argparse.Namespace, rec: Recorder, workdir: Path) -> None:
    p = sc.Params.quick() if args.quick else sc.Params()
    if args.reps:
        p.reps = args.reps
    if args.startup_runs:
        p.startup_runs = args.startup_runs
    if args.ui_runs:
        p.ui_runs = max(1, min(args.ui_runs, 50))
    ctx = sc.Ctx(p, rec)
    gws: list[Gateway] = []
    if args.only != "theirs":
        gws.append(Ours(workdir / "ours", secrets.token_urlsafe(18)))
    launcher = Path(args.launcher) if args.launcher else find_launcher()
    if args.metrics_ab:
        gws.append(OursMetricsOff(workdir / "ours-metrics-off", secrets.token_urlsafe(18)))
    elif args.only != "ours":
        if launcher and launcher.exists():
            gws.append(Theirs(workdir / "theirs", secrets.token_urlsafe(18), launcher))
        else:
            reason = "reference not installed (bash scripts/install-openclaw-reference.sh)"
            for name in args.names:
                rec.na(name, "*", "theirs", reason)
            if "startup" in args.names:
                rec.na("idle", "*", "theirs", reason)
    floors: list[Gateway] = ([Floor(workdir / f"floor-{k}", secrets.token_urlsafe(18), k)
                              for k in floor.KINDS[::-1]] if args.floor else [])
    ctx.chat_ready = {"ours": None, "theirs": THEIRS_NO_CHAT,  # offline-model variant
                      OursMetricsOff.name: None}
    for gw in gws + floors:
        log(f"{gw.name}: {gw.describe()}  (work dir {gw.workdir})")

    if "startup" in args.names:
        for rep in range(p.startup_runs):
            for gw in gws + floors:
                try:
                    await sc.run_startup(ctx, gw, rep)
                    r = [x for x in rec.rows if x["scenario"] == "startup"][-1]
                    log(f"startup {gw.name} #{rep}: hello-ok {r['first_hello_s']:.2f}s, "
                        f"stop {r['stop_s']:.2f}s")
                except Exception as e:  # recorded, the run goes on
                    log(f"startup {gw.name} #{rep} failed: {e!r}")
                    rec.na("startup", "*", gw.name, f"error: {e}")
    if "idle-memory" in args.names:
        fresh = [gw.twin("idle") for gw in gws]
        for rep in range(p.reps):
            for gw in fresh:
                t0 = time.perf_counter()
                try:
                    await asyncio.wait_for(sc.run_idle_memory(ctx, gw, rep), p.run_timeout * 4)
                    log(f"idle-memory {gw.name} #{rep}: {time.perf_counter() - t0:.1f}s")
                except Exception as e:
                    log(f"idle-memory {gw.name} #{rep} failed: {e!r}")
                    rec.na("idle-memory", "*", gw.name, f"error: {type(e).__name__}: {e}"[:160])
                    gw.stop(p.stop_grace)

    if "state-scale" in args.names:
        await state_scale.run(ctx, gws, Path(args.state_cache), args.quick, args.sizes, log)
    rest = [n for n in args.names if n in sc.SCENARIOS]
    if rest:
        await long_lived_phase(ctx, gws, rest, args, floors if "handshake" in rest else [])
    if "control-ui" in args.names:
        await control_ui_phase(ctx, gws, args)


async def long_lived_phase(ctx: sc.Ctx, gws: list[Gateway], rest: list[str],
                           args: argparse.Namespace, floors: list[Gateway]) -> None:
    """``floors`` (``--floor``) take part in ``handshake`` only."""
    p, rec = ctx.params, ctx.rec
    live: list[Gateway] = []
    for gw in gws + floors:
        try:
            await start_long_lived(gw, p)
            live.append(gw)
        except Exception as e:
            log(f"{gw.name} failed to start: {e!r}")
            for name in rest:
                rec.na(name, "*", gw.name, f"did not start: {e}")
    try:
        await asyncio.sleep(p.settle_s)
        for name in rest:
            fn = sc.SCENARIOS[name]
            for rep in range(sc.reps_for(name, p)):
                targets = [g for g in live if g not in floors or name == "handshake"]
                for gw in (targets if rep % 2 == 0 else targets[::-1]):  # A/B, then B/A
                    if gw.proc is None or gw.proc.poll() is not None:
                        log(f"{gw.name} is down; restarting")
                        await start_long_lived(gw, p)
                    t0 = time.perf_counter()
                    try:
                        await asyncio.wait_for(fn(ctx, gw, rep), p.run_timeout * 8)
                    except Exception as e:
                        log(f"{name} {gw.name} #{rep} failed: {e!r}")
                        traceback.print_exc(file=sys.stderr)
                        rec.na(name, "*", gw.name, f"error: {type(e).__name__}: {e}"[:160])
                    else:
                        log(f"{name} {gw.name} #{rep}: {time.perf_counter() - t0:.1f}s")
    finally:
        for gw in live:
            took, killed = gw.stop(p.stop_grace)
            log(f"{gw.name} stopped in {took:.2f}s{' (SIGKILL)' if killed else ''}")
    if "chat" in rest and not args.no_mock_chat:
        await chat_mock_phase(ctx, gws)


@asynccontextmanager
async def mock_model() -> AsyncIterator[int]:
    """The loopback mock OpenAI server (its own process) for the duration; yields its port."""
    port = pick_port(span=1)
    mock = subprocess.Popen([sys.executable, "-m", "bench.mockllm", str(port)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        for _ in range(100):
            if not port_free(port):
                break
            await asyncio.sleep(0.05)
        yield port
    finally:
        mock.terminate()
        try:
            mock.wait(5)
        except subprocess.TimeoutExpired:
            mock.kill()
            mock.wait(5)


async def control_ui_phase(ctx: sc.Ctx, gws: list[Gateway], args: argparse.Namespace) -> None:
    """``control-ui`` (bench/controlui.py) on fresh instances of the gateways configured with
    the mock model (without a model the real UI opens its model set-up page, not the chat);
    ours is pointed at the reference install's Control UI build, which the real gateway
    serves from its own package."""
    p = ctx.params
    wanted = controlui.targets([gw.name for gw in gws], args.dashboard_path)
    async with mock_model() as port:
        fresh: dict[str, Gateway] = {}
        try:
            for gw in gws:
                twin = gw.twin("ui")
                twin.config = provider_config(port)
                if twin.name == "ours":
                    twin.extra_env = {"OPENCLAW_REF_DIR": str(REF_DIR)}
                try:
                    await start_long_lived(twin, p)
                    fresh[twin.name] = twin
                except Exception as e:
                    log(f"{twin.name} (control-ui) failed to start: {e!r}")
                    ctx.rec.na("control-ui", "*", twin.name, f"did not start: {e}"[:160])
            ours = next((gw for gw in gws if gw.name == "ours"), None)
            if ours is not None:  # ours again, serving its built-in dashboard
                dash = ours.twin("dashboard")
                dash.config = provider_config(port)
                dash.extra_env = {"OPENCLAW_TW_CONTROL_UI": "builtin"}
                try:
                    await start_long_lived(dash, p)
                    fresh[controlui.DASHBOARD_GATEWAY] = dash
                except Exception as e:
                    log(f"ours (built-in dashboard) failed to start: {e!r}")
                    ctx.rec.na("control-ui", "dashboard", "ours", f"did not start: {e}"[:160])
            if fresh:
                await asyncio.sleep(p.settle_s)
                log(f"control-ui: load {os.getloadavg()[0]:.2f}")
                await controlui.run_scenario(p, ctx.rec, fresh, wanted, log)
        finally:
            for gw in fresh.values():
                gw.stop(p.stop_grace)


async def chat_mock_phase(ctx: sc.Ctx, gws: list[Gateway]) -> None:
    """``chat`` against a loopback mock OpenAI server, on fresh instances of both gateways
    configured (same keys for both) with it as the primary model."""
    async with mock_model() as port:
        await _chat_mock_runs(ctx, gws, port)


async def _chat_mock_runs(ctx: sc.Ctx, gws: list[Gateway], port: int) -> None:
    p = ctx.params
    live: list[Gateway] = []
    try:
        for gw in gws:
            fresh = gw.twin("chat")
            fresh.config = provider_config(port)
            try:
                await start_long_lived(fresh, p)
                live.append(fresh)
            except Exception as e:
                log(f"{fresh.name} (mock model) failed to start: {e!r}")
                ctx.rec.na("chat", "mock-openai", fresh.name, f"did not start: {e}")
        for rep in range(p.reps):
            for gw in live:
                try:
                    await asyncio.wait_for(
                        sc.chat_turns(ctx, gw, rep, "mock-openai", p.chat_mock_turns, warmup=2),
                        p.run_timeout * 4)
                    log(f"chat (mock model) {gw.name} #{rep} done")
                except Exception as e:
                    log(f"chat (mock model) {gw.name} #{rep} failed: {e!r}")
                    ctx.rec.na("chat", "mock-openai", gw.name,
                               f"error: {type(e).__name__}: {e}"[:160])
    finally:
        for gw in live:
            gw.stop(p.stop_grace)


async def start_long_lived(gw: Gateway, p: sc.Params) -> None:
    gw.spawn()
    try:
        res = await gw.wait_hello(p.start_timeout)
    except BaseException:
        gw.stop(p.stop_grace)
        raise
    log(f"{gw.name} ready on {gw.url} (pid {gw.pid}, hello-ok after {res.first_hello_s:.2f}s)")


def header(meta: dict[str, Any], args: argparse.Namespace, jsonl: Path) -> str:
    m = meta["machine"]
    argv = " ".join(meta["argv"])
    cmd = "python -m bench" + (f" {argv}" if argv else "")
    make = "make bench" + (f' ARGS="{argv}"' if " " in argv else f" ARGS={argv}" if argv else "")
    return "\n".join([
        f"# Benchmark: openclaw_tw with metrics on (ours) vs --metrics off — {meta['date']}"
        if args.metrics_ab else
        f"# Benchmark: openclaw_tw (ours) vs OpenClaw 2026.9.6 (theirs) — {meta['date']}",
        "",
        f"- Command: `{make}` (runs `{cmd}` from the repo root)",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['mem_gib']} GiB RAM, Linux {m['kernel']}; "
        f"Python {m['python']}, Node {m['node']}; load average at start "
        f"{', '.join(f'{x:.2f}' for x in m['loadavg'])}",
        f"- Ours at `{m['commit']}`; raw lines: `{jsonl.relative_to(REPO) if jsonl.is_relative_to(REPO) else jsonl}`",
        "- Client: one asyncio process (websockets, orjson"
        f"{', uvloop' if meta.get('uvloop') else ''}), sharing the cores with both servers; "
        "A/B alternating per repetition. Cells are median (min–max) over repetitions. "
        "Server CPU is utime+stime of the whole process tree from /proc; the box is shared "
        "and noisy, so CPU/op is the steadier figure, and throughput/latency move by 20–40 % "
        "between runs.",
        *([f"- control-ui: headless Chromium ({controlui.CHROMIUM}, Playwright), a fresh "
           "context per load, on the same cores; navigation → usable is mostly the browser's "
           "time and moves with the load average (in every JSON line as `load1`); the "
           "gateway's CPU and RSS are the figures that tell the gateways apart."]
          if "control-ui" in args.names else []),
        "",
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    raise_nofile()
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    jsonl = results / f"{stamp}.jsonl"
    try:
        import uvloop  # noqa: F401
        have_uvloop = True
    except ImportError:
        have_uvloop = False
    meta = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": machine(),
            "argv": argv if argv is not None else sys.argv[1:], "uvloop": have_uvloop,
            "quick": args.quick}
    rec = Recorder(jsonl, meta)
    workdir = Path(tempfile.mkdtemp(prefix="openclaw-bench-"))
    log(f"results → {jsonl}; work dir {workdir}")
    ok = False
    try:
        if have_uvloop:
            import uvloop
            uvloop.run(amain(args, rec, workdir))
        else:
            asyncio.run(amain(args, rec, workdir))
        ok = True
    except KeyboardInterrupt:
        log("interrupted")
    finally:
        rec.close()
        servers = ("ours", OursMetricsOff.name) if args.metrics_ab else ("ours", "theirs")
        text = header(meta, args, jsonl) + table(rec.rows, servers) + "\n" + \
            state_scale.table(rec.rows) + floor.table(rec.rows)
        (results / "latest.md").write_text(text)
        print(text)
        if args.keep or not ok:
            log(f"kept work dir {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
