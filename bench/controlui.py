"""The ``control-ui`` scenario: a cold load of a browser UI, gateway by gateway.

Headless Chromium (Debian's ``/usr/bin/chromium``, Playwright's async API) opens
``http://127.0.0.1:<port><path>#token=<token>`` -- the URL ``openclaw dashboard`` hands out --
in a fresh browser context per run (empty cache, no service worker, no stored device key), and
measures navigation → *usable*, where usable is the target's readiness condition (a JS
expression polled every animation frame).  For the real Control UI on either gateway that is
``READY_CONTROL_UI``: the connect got hello-ok on a socket that is still open, and the chat
composer (``textarea[aria-label="Chat composer"]``) is rendered, visible, enabled and
writable.  A script injected before the page's own wraps ``WebSocket`` to count the requests
the UI sends and note when hello-ok arrives, in the page's clock (``performance.now()``,
whose origin is the navigation start).

After readiness the run goes on until the start-up burst has settled (no new request for
``ui_quiet_s``, at most ``ui_settle_max_s`` after readiness).  Across navigation → settled
the gateway's process tree is sampled from ``/proc`` every ``ui_sample_s``: CPU time, RSS
before, the peak sample and RSS at the end; the root process's exact peak comes from
``VmHWM`` after resetting it (``/proc/<pid>/clear_refs``) before the run.
"""

from __future__ import annotations

import asyncio
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench import procstat
from bench.report import Recorder, percentile
from bench.servers import Gateway

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync",
                 "--disable-extensions", "--disable-default-apps"]
MAX_FAILED_LISTED = 20  # failed methods kept per run in the JSON line

# Injected before any of the page's scripts: counts the WebSocket requests the UI sends,
# notes hello-ok (page clock), failed responses and open sockets.  It only observes.
INIT_SCRIPT = """
(() => {
  if (window.__bench) return;
  const b = window.__bench = {req: 0, hello: null, open: 0, sockets: 0, errors: 0,
                              failed: [], sent: {}, lat: [], lastReq: null, readyAt: null,
                              reqAtReady: null};
  const Native = window.WebSocket;
  class Counted extends Native {
    constructor(...args) {
      super(...args);
      b.sockets++;
      this.addEventListener('open', () => { b.open++; });
      this.addEventListener('close', () => { b.open--; });
      this.addEventListener('message', (e) => {
        if (typeof e.data !== 'string') return;
        let f; try { f = JSON.parse(e.data); } catch (_) { return; }
        if (!f || f.type !== 'res') return;
        const s = b.sent[f.id];
        if (s) { delete b.sent[f.id]; if (b.lat.length < 2000) b.lat.push([performance.now() - s.t, s.m]); }
        if (f.ok && f.payload && f.payload.type === 'hello-ok' && b.hello === null) {
          b.hello = performance.now();
        } else if (f.ok === false) {
          b.errors++;
          if (b.failed.length < 50) b.failed.push(
              (s ? s.m : '?') + ': ' + ((f.error && f.error.code) || '?'));
        }
      });
    }
    send(data) {
      if (typeof data === 'string' && data.indexOf('"req"') >= 0) {
        try {
          const f = JSON.parse(data);
          if (f && f.type === 'req') {
            b.req++;
            b.lastReq = performance.now();
            if (Object.keys(b.sent).length < 2000) {
              b.sent[f.id] = {m: String(f.method), t: performance.now()};
            }
          }
        } catch (_) {}
      }
      return super.send(data);
    }
  }
  window.WebSocket = Counted;
})();
"""

# The real Control UI (on either gateway): connected (hello-ok, socket open) and the chat
# composer usable.  Written as a predicate that also stamps the moment, in the page clock.
READY_CONTROL_UI = """
(() => {
  const b = window.__bench;
  const t = document.querySelector('textarea[aria-label="Chat composer"]');
  return !!(b && b.hello !== null && b.open > 0 && t && !t.disabled && !t.readOnly &&
            t.getClientRects().length > 0);
})()
"""
# Our built-in dashboard (its own readiness marker).
READY_DASHBOARD = "!!(document.body && document.body.dataset.ready === 'chat')"
# The served document of the real Control UI build carries this attribute.
CONTROL_UI_MARKER = "data-openclaw-control-ui-build-id"


def stamp_ready(condition: str) -> str:
    """The predicate passed to ``wait_for_function``: ``condition``, and on the first true
    the page time and the request count at that moment."""
    return ("() => { const b = window.__bench; if (!b) return false; if (b.readyAt !== null) "
            "return true; if (!(" + condition.strip() + ")) return false; "
            "b.readyAt = performance.now(); b.reqAtReady = b.req; return true; }")


@dataclass(frozen=True)
class Target:
    """One row of the scenario: a UI on a gateway and when it counts as usable."""

    server: str                 # "ours" or "theirs": which gateway serves it
    variant: str                # "control-ui" or "dashboard"
    path: str                   # URL path on the gateway's port
    ready: str                  # JS expression, true once the UI is usable
    marker: str | None = None   # text the served document must contain
    foreign: str | None = None  # text it must not contain (then it is another UI)
    missing: str | None = None  # set: the target is absent, and why (its rows say n/a)
    gateway: str | None = None  # the instance that serves it, when not ``server`` itself

    def url(self, gw: Gateway) -> str:
        return f"http://127.0.0.1:{gw.port}{self.path}#token={gw.token}"


DASHBOARD_GATEWAY = "ours-dashboard"  # ours started with OPENCLAW_TW_CONTROL_UI=builtin


def targets(servers: list[str], dashboard_path: str | None) -> list[Target]:
    """The real Control UI on each gateway, then our built-in dashboard: served at ``/`` by
    an instance of ours that serves it instead of the Control UI build (``dashboard_path``:
    another path on that instance)."""
    out = [Target(s, "control-ui", "/", READY_CONTROL_UI, CONTROL_UI_MARKER) for s in servers]
    if "ours" in servers:
        path = "/" + (dashboard_path or "").lstrip("/")
        # the Control UI build answering instead is not the dashboard
        out.append(Target("ours", "dashboard", path, READY_DASHBOARD,
                          foreign=CONTROL_UI_MARKER, gateway=DASHBOARD_GATEWAY))
    return out


def why_no_browser() -> str | None:
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install '.[bench]')"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


def document_problem(status: int | None, content_type: str, body: str,
                     marker: str | None, foreign: str | None = None) -> str | None:
    """Why a served document is not the target's UI (``None``: it is)."""
    if status != 200:
        return f"HTTP {status}" if status else f"no answer ({body[:100]})"
    if "html" not in content_type.lower():
        return f"not an HTML page ({content_type or 'no content type'})"
    if marker and marker not in body:
        return f"the page is not the UI build (no {marker})"
    if foreign and foreign in body:
        return "the page is the real Control UI build, not this target"
    return None


def _get(url: str) -> tuple[int | None, str, str]:
    req = urllib.request.Request(url, headers={"Accept": "text/html"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read(256 * 1024).decode(
                "utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), ""
    except (urllib.error.URLError, OSError) as e:
        return None, "", str(e)


async def check_served(target: Target, gw: Gateway) -> str | None:
    status, ctype, body = await asyncio.to_thread(
        _get, f"http://127.0.0.1:{gw.port}{target.path}")
    problem = document_problem(status, ctype, body, target.marker, target.foreign)
    return f"{target.path} on {gw.name}: {problem}" if problem else None


class Settle:
    """The start-up burst has settled once no new request came for ``quiet`` seconds, or
    ``limit`` seconds after it started being watched."""

    def __init__(self, start: float, count: int, quiet: float, limit: float) -> None:
        self.start = self.last_change = start
        self.count = count
        self.quiet = quiet
        self.limit = limit
        self.capped = False

    def feed(self, t: float, count: int) -> bool:
        """Record the request count seen at ``t``; True once settled."""
        if count != self.count:
            self.count = count
            self.last_change = t
        if t - self.last_change >= self.quiet:
            return True
        if t - self.start >= self.limit:
            self.capped = True
            return True
        return False


@dataclass
class Sampler:
    """The gateway tree's RSS every ``interval`` seconds until ``stop``; the peak sample."""

    pid: int
    interval: float
    peak: int = 0
    samples: int = 0
    _task: asyncio.Task[None] | None = field(default=None, repr=False)
    _stop: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def start(self, limit_s: float) -> None:
        self._task = asyncio.ensure_future(self._run(limit_s))

    async def _run(self, limit_s: float) -> None:
        deadline = time.monotonic() + limit_s
        while not self._stop.is_set() and time.monotonic() < deadline:
            s = procstat.sample(self.pid)
            self.peak = max(self.peak, s.rss)
            self.samples += 1
            try:
                await asyncio.wait_for(self._stop.wait(), self.interval)
            except TimeoutError:
                pass

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task


def run_row(page: dict[str, Any], window_s: float, capped: bool, http_requests: int,
            before: procstat.TreeSample, end: procstat.TreeSample, cpu_s: float,
            sampled_peak: int, root_peak: int | None) -> dict[str, Any]:
    """One run's JSON line from what the page reported (``window.__bench`` + timing) and the
    gateway's samples.  Times in seconds (page clock: since navigation start); sizes in
    bytes; ``window_s`` is navigation → settled as the harness saw it.  ``ws_rtt_*``: request → response
    in the page, over the requests answered by the time the burst settled."""
    ready_ms = page["readyAt"]
    answered = sorted(((float(ms) / 1000, str(m)) for ms, m in page.get("lat") or []),
                      reverse=True)
    lat = sorted(t for t, _ in answered)
    return {
        "ready_s": ready_ms / 1000,
        "hello_s": page["hello"] / 1000 if page.get("hello") is not None else None,
        "dcl_s": page["dcl"] / 1000 if page.get("dcl") else None,
        "requests_ready": page["reqAtReady"],
        "requests_burst": page["req"],
        "burst_s": (page.get("lastReq") or ready_ms) / 1000,
        "window_s": window_s,
        "settle_capped": capped,
        "sockets": page["sockets"],
        "res_errors": page["errors"],
        "unanswered": page.get("unanswered"),
        "ws_rtt_p50": percentile(lat, 50),
        "ws_rtt_p90": percentile(lat, 90),
        "ws_rtt_max": lat[-1] if lat else None,
        "slowest": [f"{m} {t * 1000:.0f} ms" for t, m in answered[:5]],
        "failed": page["failed"][:MAX_FAILED_LISTED],
        "http_requests": http_requests,
        "cpu_s": cpu_s,
        "rss_before": before.rss,
        "rss_peak": max(sampled_peak, end.rss, before.rss),
        "rss_spike": max(sampled_peak, end.rss, before.rss) - before.rss,
        "rss_after": end.rss,
        "root_peak": root_peak,
        "processes": len(end.pids),
    }


PAGE_STATE = """() => { const b = window.__bench || {}; const nav =
  performance.getEntriesByType('navigation')[0];
  return {readyAt: b.readyAt, reqAtReady: b.reqAtReady, req: b.req, hello: b.hello,
          lastReq: b.lastReq,
          sockets: b.sockets, errors: b.errors, failed: b.failed, lat: b.lat,
          unanswered: Object.keys(b.sent || {}).length,
          dcl: nav ? nav.domContentLoadedEventEnd : null}; }"""


async def load_once(browser: Any, target: Target, gw: Gateway, *, ready_timeout: float,
                    quiet: float, settle_max: float, sample_s: float) -> dict[str, Any]:
    """One cold load of ``target`` in a fresh context; the run's row (see ``run_row``)."""
    context = await browser.new_context(locale="en-US", viewport={"width": 1400, "height": 900})
    http_requests = [0]
    context.on("request", lambda _r: http_requests.__setitem__(0, http_requests[0] + 1))
    try:
        await context.add_init_script(INIT_SCRIPT)
        page = await context.new_page()
        gw.remember_tree()
        root_peak_ok = procstat.reset_peak(gw.pid)
        sampler = Sampler(gw.pid, sample_s)
        probe = procstat.Probe(gw.pid)
        t0 = time.monotonic()
        sampler.start(ready_timeout + settle_max + 30)
        try:
            await page.goto(target.url(gw), wait_until="commit", timeout=ready_timeout * 1000)
            remaining = max(1.0, ready_timeout - (time.monotonic() - t0))
            await page.wait_for_function(stamp_ready(target.ready), polling="raf",
                                         timeout=remaining * 1000)
            state = await page.evaluate(PAGE_STATE)
            settle = Settle(time.monotonic(), state["req"], quiet, settle_max)
            while not settle.feed(time.monotonic(), state["req"]):
                await asyncio.sleep(0.1)
                state = await page.evaluate(PAGE_STATE)
            window_s = time.monotonic() - t0
            end = probe.stop()
        finally:
            await sampler.stop()
        root_peak = procstat.peak_rss(gw.pid) if root_peak_ok else None
        return run_row(state, window_s, settle.capped, http_requests[0], probe.start, end,
                       probe.cpu_s, sampler.peak, root_peak)
    finally:
        await context.close()


MAX_FAILURES = 2  # a target that failed this often is not tried again in this run


async def run_scenario(params: Any, rec: Recorder, gws: dict[str, Gateway],
                       wanted: list[Target], log: Callable[[str], None]) -> None:
    """Every present target: one first load after the gateway started (variant
    ``<variant>-first``), then ``params.ui_runs`` cold loads, targets interleaved per run so
    drift on the shared machine hits all alike.  Absent or failing targets get ``n/a`` rows."""
    reason = why_no_browser()
    if reason:
        for t in wanted:
            rec.na("control-ui", t.variant, t.server, reason)
        return
    live: list[Target] = []
    for t in wanted:
        gw = gws.get(t.gateway or t.server)
        if gw is None:
            continue  # the gateway did not start; the caller recorded why
        problem = t.missing or await check_served(t, gw)
        if problem:
            log(f"control-ui {t.server}/{t.variant}: skipped: {problem}")
            rec.na("control-ui", t.variant, t.server, problem)
            continue
        live.append(t)
    if not live:
        return
    from playwright.async_api import async_playwright

    p = params
    budget = p.ui_ready_timeout + p.ui_settle_max_s + 30
    failures: dict[Target, int] = {}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for rep in range(-1, p.ui_runs):
                for t in live:
                    if failures.get(t, 0) >= MAX_FAILURES:
                        continue
                    variant = t.variant if rep >= 0 else f"{t.variant}-first"
                    gw = gws[t.gateway or t.server]
                    await asyncio.sleep(p.ui_pause_s)
                    try:
                        row = await asyncio.wait_for(load_once(
                            browser, t, gw, ready_timeout=p.ui_ready_timeout,
                            quiet=p.ui_quiet_s, settle_max=p.ui_settle_max_s,
                            sample_s=p.ui_sample_s), budget)
                    except Exception as e:  # recorded; the other targets go on
                        failures[t] = failures.get(t, 0) + 1
                        why = f"error: {type(e).__name__}: {e}".splitlines()[0][:160]
                        log(f"control-ui {t.server}/{variant} #{rep}: {why}")
                        rec.na("control-ui", variant, t.server, why)
                        continue
                    rec.add("control-ui", variant, t.server, max(rep, 0), url_path=t.path,
                            load1=round(os.getloadavg()[0], 2), **row)
                    log(f"control-ui {t.server}/{variant} #{rep}: usable after "
                        f"{row['ready_s']:.2f}s, {row['requests_ready']} requests "
                        f"({row['requests_burst']} in the burst), gateway CPU "
                        f"{row['cpu_s'] * 1000:.0f} ms, RSS peak "
                        f"{row['rss_peak'] / 2**20:.0f} MiB (load {os.getloadavg()[0]:.1f})")
        finally:
            await browser.close()
