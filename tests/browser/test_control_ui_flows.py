"""The real Control UI's everyday flows in Chromium against our gateway with data in it.

The gateway (``twistd openclaw``, a child, loopback) runs with a config naming the mock model
(``bench.mockllm``), a Telegram account on the fake Bot API and a trusted loopback proxy; it is
seeded over its public surfaces (``tests/support/ui_seed.py``) with three sessions with turns, a
cron job with a run, the real ``openclaw node run`` host paired and approved, and a remote
device's pending pairing request.  One page load then drives, as a user would:

* the sessions sidebar: rename a session (context menu), move it to a new group, search the
  transcripts (command palette), delete the other one (confirm dialog);
* Automations: the seeded job is listed, "Run now", pause and resume (the switch sends
  ``cron.update`` with the job's ``configRevision``), the run history;
* Settings -> Devices: the pending request shows and is approved from the UI;
* Systems (nodes), Settings -> Channels (the Telegram account), Models, Agents, Approvals.

Every step records the page's WebSocket requests; no request may fail (beyond the deliberate
refusals in ``REFUSALS``) and no error callout, banner or toast may show.  The method frames
captured from the real 2026.9.6 gateway driven through the same steps are what the shapes
follow (see the unit tests of each method).
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

from tests.support.reference_cli import reference_launcher
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
from tests.support.ui_seed import (
    Rpc,
    fake_telegram,
    free_port,
    mock_model,
    node_host,
    pending_device,
    stop,
    until,
)

TOKEN = "flows-" + uuid.uuid4().hex[:12]
BOT_TOKEN = "123456:FLOWS"
CONNECT_S = 30.0
NODE_START_S = 120.0  # the real node host's start on a loaded machine
STEP_QUIET_S = 0.6
STEP_MAX_S = 8.0
REFUSALS = {("sessions.observer.visibility", "UNAVAILABLE: ")}


class ControlUiFlows(unittest.SynchronousTestCase):
    def setUp(self) -> None:
        reason = why_skip()
        launcher, why = reference_launcher()
        if reason or launcher is None:
            raise unittest.SkipTest(reason or why)
        self.launcher = launcher
        self.dir = Path(os.path.abspath(self.mktemp()))
        self.dir.mkdir(parents=True)
        model, model_port = mock_model(self.dir / "mockllm.log")
        self.addCleanup(stop, model)
        bot, bot_port = fake_telegram(BOT_TOKEN, self.dir / "telegram.log")
        self.addCleanup(stop, bot)
        config = self.dir / "openclaw.json"
        from bench.mockllm import provider_config
        doc = provider_config(model_port)
        doc["channels"] = {"telegram": {"enabled": True, "botToken": BOT_TOKEN,
                                        "apiRoot": f"http://127.0.0.1:{bot_port}"}}
        doc["gateway"] = {"trustedProxies": ["127.0.0.1"]}
        config.write_text(json.dumps(doc))
        self.port = free_port()
        self.gateway = GatewayChild(self.dir, self.port, TOKEN, config)
        self.addCleanup(self.gateway.stop)
        self.gateway.start()
        self.seed()

    def seed(self) -> None:
        host = node_host(self.launcher, self.port, TOKEN, self.dir / "node-home")  # ~15-60 s
        self.addCleanup(stop, host)
        rpc = Rpc(self.port, TOKEN)
        self.addCleanup(rpc.close)
        for key, text in (("agent:main:main", "hello there"),
                          ("agent:main:dashboard:alpha", "first alpha"),
                          ("agent:main:dashboard:beta", "beta question")):
            rpc.call("chat.send", {"sessionKey": key, "message": text,
                                   "idempotencyKey": key + "-1"})
            until(lambda k=key: rpc.call("chat.history", {"sessionKey": k})["messages"][1:],
                  f"the reply in {key}")
        job = rpc.call("cron.add", {
            "name": "Morning summary", "schedule": {"kind": "cron", "expr": "0 7 * * *"},
            "sessionTarget": "isolated", "wakeMode": "now",
            "payload": {"kind": "agentTurn", "message": "summarise the morning"}})
        self.job_id = job["id"]
        rpc.call("cron.run", {"id": self.job_id, "mode": "force"})
        until(lambda: rpc.call("cron.runs", {"id": self.job_id})["entries"], "a cron run")
        request = until(lambda: rpc.call("node.pair.list")["pending"], "the node's request",
                        NODE_START_S)[0]
        self.node = rpc.call("node.pair.approve", {"requestId": request["requestId"]})["node"]
        self.rpc = rpc

    def test_everyday_flows(self) -> None:
        assert sync_playwright is not None
        session = Session()
        steps: list[dict[str, Any]] = []
        started = time.monotonic()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                session.open(page, f"http://127.0.0.1:{self.port}/#token={TOKEN}", CONNECT_S)
                self.assertIsNotNone(session.hello, session.report())
                steps.append(self.step(page, session, "boot", lambda: None))
                self.sessions_sidebar(page, session, steps)
                self.automations(page, session, steps)
                self.devices(page, session, steps)
                self.pages(page, session, steps)
            finally:
                browser.close()
        report = session.report()
        report.update(steps=steps, seconds=round(time.monotonic() - started, 1))
        (self.dir / "ui-flows.json").write_text(json.dumps(report, indent=2))
        log.msg("control UI flows:\n" + json.dumps(steps, indent=2))
        failed = [dict(f, step=s["step"]) for s in steps for f in s["failed"]
                  if not any(f["method"] == m and f["error"].startswith(p)
                             for m, p in REFUSALS)]
        self.assertEqual(failed, [], "requests failed")
        self.assertEqual([(s["step"], s["alerts"]) for s in steps if s["alerts"]], [],
                         "error callouts, banners or toasts showed")
        self.assertEqual(report["documentLoads"], 1, "the UI reloaded itself")

    # -- the steps ------------------------------------------------------------------------------

    def step(self, page: Any, session: Session, name: str, action: Any,
             shot: bool = True) -> dict[str, Any]:
        first = len(session.calls)
        session.route = name
        action()
        started = session.last_request = time.monotonic()
        while time.monotonic() - started < STEP_MAX_S and (
                session.busy or time.monotonic() - session.last_request < STEP_QUIET_S):
            page.wait_for_timeout(100)
        if shot:
            page.screenshot(path=str(self.dir / f"step-{name}.png"))
        calls = session.calls[first:]
        alerts = [t.strip()[:300] for t in page.locator(ALERTS).all_inner_texts() if t.strip()]
        return {"step": name, "methods": sorted({str(c["method"]) for c in calls}),
                "failed": [{"method": c["method"], "error": c["error"]} for c in calls
                           if c.get("ok") is False], "alerts": alerts}

    def called(self, steps: list[dict[str, Any]], method: str) -> None:
        self.assertIn(method, steps[-1]["methods"], steps[-1])

    def session_menu(self, page: Any, key: str) -> None:
        row = page.locator(f".sidebar-recent-session[data-session-key='{key}']")
        row.click(button="right", position={"x": 30, "y": 8})
        page.wait_for_timeout(400)

    def menu_item(self, page: Any, text: str) -> Any:
        return page.locator("openclaw-session-menu wa-dropdown-item:visible").filter(
            has_text=text).first

    def sessions_sidebar(self, page: Any, session: Session,
                         steps: list[dict[str, Any]]) -> None:
        alpha, beta = "agent:main:dashboard:alpha", "agent:main:dashboard:beta"
        sidebar = page.locator(".sidebar-sessions")

        def rename() -> None:
            self.session_menu(page, alpha)
            self.menu_item(page, "Rename").click()
            page.wait_for_timeout(300)
            page.keyboard.press("Control+A")
            page.keyboard.type("Alpha renamed")
            page.keyboard.press("Enter")

        steps.append(self.step(page, session, "rename", rename))
        self.called(steps, "sessions.patch")
        self.assertIn("Alpha renamed", sidebar.inner_text())
        self.assertEqual(self.row(alpha)["label"], "Alpha renamed")

        def group() -> None:
            self.session_menu(page, alpha)
            self.menu_item(page, "Move to group").hover()
            page.wait_for_timeout(300)
            page.keyboard.press("ArrowRight")
            page.keyboard.press("Enter")  # "New group" opens its dialog
            page.wait_for_timeout(300)
            page.keyboard.type("Work")
            page.keyboard.press("Enter")

        steps.append(self.step(page, session, "group", group))
        self.called(steps, "sessions.groups.put")
        self.assertEqual(self.row(alpha)["category"], "Work")
        self.assertIn("WORK", sidebar.inner_text().upper())

        def search() -> None:
            page.keyboard.press("Escape")
            page.keyboard.press("Control+k")
            page.wait_for_timeout(300)
            page.keyboard.type("alpha")

        steps.append(self.step(page, session, "search", search))
        self.called(steps, "sessions.search")
        page.keyboard.press("Escape")
        # what the palette asked (the UI's params as captured) finds the seeded turn
        found = self.rpc.call("sessions.search", {"query": "alpha", "limit": 25, "scope": {
            "includeGlobal": False, "includeUnknown": False, "configuredAgentsOnly": True,
            "excludeSubagents": True, "excludeCron": True, "excludeSystem": True}})
        self.assertEqual([(h["sessionKey"], h["snippet"]) for h in found["results"]],
                         [(alpha, "first alpha")])

        def delete() -> None:
            self.session_menu(page, beta)
            self.menu_item(page, "Delete").click()
            page.wait_for_timeout(300)
            page.get_by_role("button", name="Delete", exact=True).last.click()

        steps.append(self.step(page, session, "delete", delete))
        self.called(steps, "sessions.delete")
        self.assertEqual(page.locator(f"[data-session-key='{beta}']").count(), 0)
        self.assertIsNone(self.row(beta))

    def row(self, key: str) -> dict[str, Any] | None:
        rows = self.rpc.call("sessions.list", {"limit": 200})["sessions"]
        return next((r for r in rows if r["key"] == key), None)

    def automations(self, page: Any, session: Session, steps: list[dict[str, Any]]) -> None:
        steps.append(self.step(page, session, "automations",
                               lambda: page.evaluate(NAVIGATE, "/automations")))
        self.assertIn("Morning summary", page.inner_text("main"))
        runs = len(self.rpc.call("cron.runs", {"id": self.job_id})["entries"])
        steps.append(self.step(page, session, "cron-run-now", lambda: page.locator(
            "[aria-label='Run now: Morning summary']").click()))
        self.called(steps, "cron.run")
        until(lambda: len(self.rpc.call("cron.runs", {"id": self.job_id})["entries"]) > runs,
              "the run from the UI")
        switch = page.locator(".cron-enabled-toggle", has_text="Morning summary").locator(
            "wa-switch")
        steps.append(self.step(page, session, "cron-pause", switch.click))
        self.called(steps, "cron.update")
        self.assertFalse(self.rpc.call("cron.get", {"id": self.job_id})["enabled"])
        steps.append(self.step(page, session, "cron-resume", switch.click))
        self.called(steps, "cron.update")
        self.assertTrue(self.rpc.call("cron.get", {"id": self.job_id})["enabled"])
        steps.append(self.step(page, session, "cron-history",
                               lambda: page.get_by_text("Run history").click()))
        self.assertIn("Morning summary", page.inner_text("main"))

    def devices(self, page: Any, session: Session, steps: list[dict[str, Any]]) -> None:
        request_id = pending_device(self.port, TOKEN)
        steps.append(self.step(page, session, "devices",
                               lambda: page.evaluate(NAVIGATE, "/settings/devices")))
        self.assertIn("Pending approval", page.inner_text("body"))

        def approve() -> None:
            page.get_by_role("button", name="Approve").first.click()
            page.wait_for_timeout(500)
            confirm = page.locator("[role=dialog] button, dialog button").filter(
                has_text="Approve")
            if confirm.count():
                confirm.last.click()

        steps.append(self.step(page, session, "device-approve", approve))
        self.called(steps, "device.pair.approve")
        listing = self.rpc.call("device.pair.list")
        self.assertEqual(listing["pending"], [])
        self.assertNotIn(request_id, json.dumps(listing["pending"]))
        self.assertNotIn("Pending approval", page.inner_text("body"))

    def pages(self, page: Any, session: Session, steps: list[dict[str, Any]]) -> None:
        for name, route in (("nodes", "/nodes"), ("channels", "/settings/channels"),
                            ("models", "/settings/model-providers"),
                            ("agents", "/settings/agents"), ("approvals", "/settings/approvals")):
            steps.append(self.step(page, session, name,
                                   lambda r=route: page.evaluate(NAVIGATE, r)))
            text = page.inner_text("body")
            if name == "nodes":  # node.list: loaded with Devices already
                self.assertIn(self.node["displayName"], text)
            if name == "channels":
                self.called(steps, "channels.status")
                self.assertIn("Telegram", text)
