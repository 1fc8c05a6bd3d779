"""The real Control UI (OpenClaw 2026.9.6's ``dist/control-ui``) in Chromium against our gateway.

Our gateway runs as ``twistd -n openclaw`` (a child process, loopback port, its own HOME) and
finds the reference package's build by itself (``OPENCLAW_REF_DIR``); Chromium opens
``http://127.0.0.1:<port>/#token=<token>`` -- the URL ``openclaw dashboard`` hands out (the UI
reads the shared token from the fragment, then strips it).

First the start-up: the UI loaded, its WebSocket connect got hello-ok, it did not reload itself,
and no "Server updated -- Refresh" banner shows (``hello-ok.server.controlUiBuildSource`` is
``configured``).  Then every route of ``control-ui-calls.md`` (the real UI's page-by-page calls
on a fresh install), reached inside the app (``history.pushState`` + ``popstate``, as its own
links do, so one socket serves them all): on each, once its requests have settled, no request
may fail and no error callout, error banner or toast may show.  The only failures allowed are
the deliberate, truthful refusals in ``REFUSALS`` (each with why).  A failing method that is not
in our method table at all is reported separately (it belongs to work not landed yet) -- today
there is none, and any failure of a method we serve fails the test.

Every WebSocket request with its route and outcome, every HTTP error and the visible alerts go
to the test log and to ``ui-session.json``; one screenshot per route group (and one for every
route with a problem) goes beside it in the test's temp dir.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from twisted.python import log
from twisted.trial import unittest

from tests.support.loopback import free_port
from tests.support.ui_page import (
    ALERTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    NAVIGATE,
    GatewayChild,
    Session,
    sync_playwright,
    why_skip,
)

TOKEN = "browser-" + uuid.uuid4().hex[:12]
CONNECT_TIMEOUT_S = 30.0
QUIET_S = 1.5        # the page has settled when no WebSocket request came for this long ...
SETTLE_MAX_S = 25.0  # ... or after this long in all
ROUTE_QUIET_S = 0.5  # a route has settled: nothing pending, no new request for this long ...
ROUTE_MAX_S = 5.0    # ... or after this long (some pages poll)
REFRESH_TEXTS = ("Server updated", "Refresh required", "Refresh for full capabilities")

# control-ui-calls.md's routes, in groups (one screenshot per group: its last route).
ROUTE_GROUPS = {
    "app": ["/", "/chat", "/sessions", "/agents", "/automations", "/dashboards", "/logs",
            "/activity", "/plugins"],
    "settings-connections": ["/settings/general", "/settings/channels", "/settings/devices",
                             "/settings/connection", "/settings/approvals"],
    "settings-agents": ["/settings/agents", "/settings/model-setup", "/settings/automation",
                        "/settings/sessions", "/settings/model-providers"],
    "settings-system": ["/settings/security", "/settings/notifications",
                        "/settings/infrastructure", "/settings/advanced", "/settings/about"],
    "settings-tools": ["/settings/memory", "/settings/plugins", "/settings/mcp",
                       "/settings/secrets", "/settings/skills", "/settings/updates"],
}
# The app shell's and Settings pages' methods (methods/shell.py, plugins.py, skills.py,
# environments.py, approval_history.py, models.authStatus).
SHELL_METHODS = frozenset({
    "update.status", "users.prefs.get", "plugin.surface.refresh", "plugins.controlUi.list",
    "plugins.list", "plugins.catalog.browse", "question.list", "models.authStatus",
    "talk.catalog", "system.info", "themes.list", "environments.list", "approval.history",
    "exec.approval.grants.list", "exec.approval.grants.revoke", "skills.library.list",
    "skills.status", "secrets.store.list"})
# The route that asks for each of them in the real UI: a visit waits (bounded by ROUTE_MAX_S)
# until they were asked -- the page's code is a lazy chunk, on a loaded machine it can arrive
# after the route otherwise looked quiet.
ROUTE_EXPECTS = {
    "/plugins": {"plugins.list", "plugins.catalog.browse"},
    "/settings/approvals": {"approval.history", "exec.approval.grants.list"},
    "/settings/general": {"themes.list"},
    "/settings/secrets": {"secrets.store.list"},
    "/settings/skills": {"skills.status", "skills.library.list"},
}
# Deliberate refusals: (method, error message prefix) -> why that answer is the true one.
REFUSALS = {
    ("config.schema.lookup", "INVALID_REQUEST: config schema path not found: plugins.entries."):
        "the Memory page asks for memory-core's plugin config schema; we load no plugins, so "
        "our config schema has no plugins.entries",
    ("sessions.observer.visibility", "UNAVAILABLE: "):
        "we run no session observer (methods/session_messages.py)",
}
class ControlUiInChromium(unittest.SynchronousTestCase):
    def setUp(self) -> None:
        reason = why_skip()
        if reason:
            raise unittest.SkipTest(reason)
        self.dir = Path(os.path.abspath(self.mktemp()))
        self.dir.mkdir(parents=True)
        self.port = free_port()
        self.gateway = GatewayChild(self.dir, self.port, TOKEN)
        self.addCleanup(self.gateway.stop)
        self.gateway.start()

    def gateway_output(self) -> str:
        return self.gateway.output()

    def test_ui_connects_and_every_route_is_clean(self) -> None:
        assert sync_playwright is not None
        session = Session()
        shot = self.dir / "control-ui.png"
        visits: list[dict[str, Any]] = []
        started_at = time.monotonic()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                session.open(page, f"http://127.0.0.1:{self.port}/#token={TOKEN}", CONNECT_TIMEOUT_S)
                started = time.monotonic()
                while time.monotonic() - started < SETTLE_MAX_S and \
                        time.monotonic() - session.last_request < QUIET_S:
                    page.wait_for_timeout(250)
                page.screenshot(path=str(shot))
                title = page.title()
                text = page.inner_text("body")
                self.check_startup(session, title, text, shot)
                for group, routes in ROUTE_GROUPS.items():
                    for route in routes:
                        visits.append(self.visit(page, session, route))
                        if visits[-1]["failed"] or visits[-1]["alerts"]:
                            page.screenshot(path=str(self.dir / f"route{_slug(route)}.png"))
                    page.screenshot(path=str(self.dir / f"group-{group}.png"))
            finally:
                browser.close()
        report = session.report()
        report.update(screenshot=str(shot), title=title, routes=visits,
                      seconds=round(time.monotonic() - started_at, 1))
        (self.dir / "ui-session.json").write_text(json.dumps(report, indent=2))
        log.msg("control UI session:\n" + json.dumps(report, indent=2))
        log.msg(f"control UI screenshots: {self.dir}")
        self.check_routes(session, visits, report)

    def check_startup(self, session: Session, title: str, text: str, shot: Path) -> None:
        report = session.report()
        startup = [ln for ln in self.gateway_output().splitlines() if "control UI:" in ln]
        self.assertTrue(startup and "serving the openclaw" in startup[0] and
                        "dist/control-ui" in startup[0], startup)
        self.assertTrue(title.endswith("OpenClaw"), title)  # "main — OpenClaw" once booted
        self.assertIsNotNone(session.hello, f"no hello-ok; {report}")
        assert session.hello is not None
        self.assertEqual(session.hello["server"].get("controlUiBuildSource"), "configured")
        self.assertEqual(report["calls"][0]["method"], "connect")
        self.assertEqual(report["documentLoads"], 1, "the UI reloaded itself")
        for banner in REFRESH_TEXTS:
            self.assertNotIn(banner, text)
        # the app's bootstrap config was served (shared token first, then its device token)
        self.assertEqual([e for e in report["httpErrors"]
                          if "/control-ui-config.json" in e["url"]], [])
        self.assertTrue(shot.is_file())

    def visit(self, page: Any, session: Session, route: str) -> dict[str, Any]:
        """Go to ``route`` inside the app (the boot already is ``/``); wait until its requests
        settle; what it called, what failed, which alerts show."""
        first = 0 if route == "/" else len(session.calls)
        session.route = route
        started = session.last_request = time.monotonic()
        if route != "/":
            page.evaluate(NAVIGATE, route)
        expects = ROUTE_EXPECTS.get(route, set())

        def settled() -> bool:
            asked = {c["method"] for c in session.calls[first:]}
            return not session.busy and expects <= asked and \
                time.monotonic() - session.last_request >= ROUTE_QUIET_S
        while time.monotonic() - started < ROUTE_MAX_S and not settled():
            page.wait_for_timeout(100)
        calls = session.calls[first:]
        alerts = [t.strip()[:300] for t in page.locator(ALERTS).all_inner_texts() if t.strip()]
        return {"route": route, "path": page.evaluate("location.pathname"),
                "seconds": round(time.monotonic() - started, 1),
                "methods": sorted({str(c["method"]) for c in calls}),
                "failed": [{"method": c["method"], "error": c["error"]} for c in calls
                           if c.get("ok") is False],
                "alerts": alerts}

    def check_routes(self, session: Session, visits: list[dict[str, Any]],
                     report: dict[str, Any]) -> None:
        assert session.hello is not None
        served = set(session.hello["features"]["methods"])
        refused, not_landed, failed = [], [], []
        for visit in visits:
            for f in visit["failed"]:
                where = {"route": visit["route"], **f}
                if any(f["method"] == m and f["error"].startswith(prefix)
                       for (m, prefix) in REFUSALS):
                    refused.append(where)
                elif f["method"] not in served:
                    not_landed.append(where)
                else:
                    failed.append(where)
        problems = {(w["route"], w["method"]) for w in failed + not_landed}
        lines = []
        for v in visits:
            state = "PROBLEM" if v["alerts"] or any(r == v["route"] for r, _ in problems) \
                else "clean (refusals: " + ", ".join(f["method"] for f in v["failed"]) + ")" \
                if v["failed"] else "clean"
            lines.append(f"{v['route']:<28} -> {v['path']:<28} {v['seconds']:>4}s "
                         f"{len(v['methods']):>2} methods  {state}")
        log.msg("control UI routes:\n" + "\n".join(lines))
        if refused:
            log.msg("deliberate refusals (REFUSALS):\n" + json.dumps(refused, indent=2))
        if not_landed:
            log.msg("failing methods we do not serve yet:\n" + json.dumps(not_landed, indent=2))
        self.assertEqual([v["route"] for v in visits],
                         [r for routes in ROUTE_GROUPS.values() for r in routes])
        self.assertEqual(report["documentLoads"], 1, "a route reloaded the UI")
        shell_failures = [f for f in failed + not_landed if f["method"] in SHELL_METHODS]
        self.assertEqual(shell_failures, [], "the app shell's / Settings methods failed")
        self.assertEqual([c for c in report["unanswered"] if c in SHELL_METHODS], [])
        called = {m for v in visits for m in v["methods"]}
        # what the UI asks of the shell's methods against us (users.prefs.get and
        # plugin.surface.refresh need a profile / a canvas URL we never announce;
        # environments.list a desktop host; grants.revoke a grant)
        never_asked = SHELL_METHODS - {"users.prefs.get", "plugin.surface.refresh",
                                       "environments.list", "exec.approval.grants.revoke"}
        self.assertEqual(never_asked - called, set(), "the UI never asked for these")
        self.assertEqual(failed + not_landed, [], "requests failed on these routes")
        self.assertEqual([(v["route"], v["alerts"]) for v in visits if v["alerts"]], [],
                         "error callouts, banners or toasts showed")


def _slug(route: str) -> str:
    return route.replace("/", "-").rstrip("-") or "-root"
