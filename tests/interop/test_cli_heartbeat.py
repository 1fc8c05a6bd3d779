"""The real CLI reads a heartbeat that had nowhere to go: ``openclaw system heartbeat last`` and
``openclaw status --deep`` against our gateway, with no channel configured.

As on the real 2026.9.6 gateway (a fake model, ``openclaw system event --mode now`` and a short
``heartbeat.every``): an interval beat with no route is skipped with reason ``no-route`` before
the model is called; a wake runs the turn and its alert is reported ``skipped`` / ``no-route``
with the preview, never ``sent``; ``status`` shows the heartbeat "waiting for delivery route".
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, reactor

from tests.interop.test_cli_everyday import EverydayCase
from tests.support.agent import first_heartbeat
from tests.support.fakes.openai_server import FakeOpenAI
from tests.support.loopback import within

NO_ROUTE = ("Heartbeat has no delivery route yet. Message your bot once, or set "
            "agents.defaults.heartbeat.target.")


class HeartbeatWithoutRoute(EverydayCase):
    def config(self) -> dict[str, Any]:
        self.model = FakeOpenAI(reactor, api_key="sk-fake").start()
        self.addCleanup(self.model.stop)
        self.model.behave(text="Disk is full on /var")
        return {"models": {"providers": {"fake": {
            "baseUrl": self.model.base_url, "apiKey": "sk-fake", "api": "openai-completions",
            "models": [{"id": "fake-model", "name": "Fake model", "input": ["text"],
                        "contextWindow": 128000}]}}},
            "agents": {"defaults": {"model": {"primary": "fake/fake-model"},
                                    "heartbeat": {"every": "1h"}}}}

    async def last(self) -> dict[str, Any]:
        r = await self.openclaw("system", "heartbeat", "last", "--json")
        self.succeeded(r)
        self.assertEqual(dict(self.calls), {"last-heartbeat": 1})
        beat: dict[str, Any] = r.json()
        return beat

    async def test_interval_beat_skips_without_calling_the_model(self) -> None:
        await defer.Deferred.fromCoroutine(self.app.heartbeat.run("main", "interval"))
        beat = await self.last()
        self.assertEqual(beat, {"ts": beat["ts"], "status": "skipped", "reason": "no-route",
                                "durationMs": beat["durationMs"], "message": NO_ROUTE})
        self.assertEqual(self.model.requests, [])
        r = await self.openclaw("status", "--deep")
        self.assertEqual(r.code, 0, r)
        flat = " ".join(r.out.split())
        self.assertIn("1h (main; waiting for delivery route", flat)
        self.assertRegex(flat, r"Last heartbeat │ skipped · (just now|\d+s ago) │")

    async def test_a_wake_runs_the_turn_and_reports_the_alert_undelivered(self) -> None:
        published = first_heartbeat(self, self.app)
        r = await self.openclaw("system", "event", "--mode", "now", "--text", "Check the disk",
                                "--json")
        self.succeeded(r)
        self.assertEqual(r.json(), {"ok": True})
        await within(published, "the wake's heartbeat", 30)
        beat = await self.last()
        self.assertEqual(beat, {"ts": beat["ts"], "status": "skipped",
                                "preview": "Disk is full on /var", "reason": "no-route",
                                "hasMedia": False, "durationMs": beat["durationMs"],
                                "message": NO_ROUTE})
        self.assertEqual(len(self.model.requests), 1)
