"""A hot reload is in force where the plan says "hot" (issue #20): ``models``, ``agents``
(agent list, heartbeat), ``cron`` switches and ``tools.exec`` reach the components that were
built from the config once (``config/apply.py``), not only ``hub.settings``.

Each test edits the config file, lets the watcher act (two polls on the Clock) and then asks
the gateway what is in force through the protocol (or the component when nothing public shows
it).
"""

from __future__ import annotations

import json
from typing import Any

from openclaw_tw.config.apply import apply_hot
from tests.support.helpers import call, hello, ok
from tests.unit.config.test_reload import BASE, Harness

READ = ["operator.read"]


class _Advertiser:
    def __init__(self) -> None:
        self.modes: list[str] = []

    def set_mode(self, mode: str) -> None:
        self.modes.append(mode)


class _FakeProvider:
    api = "openai-completions"

    def __init__(self, provider_id: str, spec: Any) -> None:
        self.id = provider_id
        self.spec = spec


def provider(base_url: str, *models: str) -> dict[str, Any]:
    return {"baseUrl": base_url, "api": "openai-completions", "apiKey": "k",
            "models": [{"id": m, "name": m, "contextWindow": 64_000} for m in models]}


class HotApply(Harness):
    def setUp(self) -> None:
        super().setUp()
        self.advertiser = _Advertiser()
        self.made: list[_FakeProvider] = []

        def make(provider_id: str, spec: Any) -> _FakeProvider:
            p = _FakeProvider(provider_id, spec)
            self.made.append(p)
            return p

        self.watcher.on_applied.append(
            lambda s, plan: apply_hot(self.app, self.advertiser, s, self.env, make))
        self.app.cron.startService()
        self.addCleanup(self.app.cron.stopService)
        self.client = hello(self.gw, scopes=READ)

    def reload(self, **changes: Any) -> dict[str, Any]:
        cfg = json.loads(json.dumps(BASE))
        cfg.update(changes)
        self.write(cfg)
        self.settle()
        plan = self.watcher.last_plan
        assert plan is not None
        return plan

    def model_refs(self) -> list[str]:
        return [f'{m["provider"]}/{m["id"]}' for m in
                ok(self.client, "models.list", {})["models"]]

    def heartbeat_job(self, agent: str = "main") -> dict[str, Any]:
        return next(j for j in self.app.cron.jobs.values()
                    if j.get("declarationKey") == f"heartbeat:{agent}")

    def test_a_provider_added_by_reload_is_listed_and_becomes_the_default(self) -> None:
        self.assertEqual(self.model_refs(), ["offline/offline-echo"])
        plan = self.reload(models={"providers": {"mock": provider("http://127.0.0.1:9", "m1")}},
                           agents={"defaults": {"model": {"primary": "mock/m1"}}})
        self.assertTrue(plan["applied"])
        self.assertEqual(sorted(plan["hot"]), ["agents", "models"])
        self.assertEqual(plan["restart"], [])
        self.assertEqual(self.model_refs(), ["mock/m1", "offline/offline-echo"])
        self.assertEqual(self.app.models.primary, "mock/m1")
        resolved, model = self.app.models.resolve(None)
        self.assertEqual((resolved.id, model), ("mock", "m1"))
        self.assertIs(resolved.inner, self.made[-1])  # wrapped for diagnostics, like at start
        rows = ok(self.client, "chat.metadata", {})["models"]
        self.assertIn("m1", [r["id"] for r in rows])

    def test_a_provider_removed_by_reload_is_gone_and_the_offline_model_stays(self) -> None:
        self.reload(models={"providers": {"mock": provider("http://127.0.0.1:9", "m1")}})
        offline_before = self.app.models.providers["offline"]
        self.reload()
        self.assertEqual(self.model_refs(), ["offline/offline-echo"])
        self.assertIs(self.app.models.providers["offline"], offline_before)  # not re-wrapped
        res = call(self.client, "models.list", {"provider": "mock"})
        self.assertFalse(res["ok"])

    def test_an_agent_added_by_reload_is_listed(self) -> None:
        before = [a["id"] for a in ok(self.client, "agents.list", {})["agents"]]
        self.reload(agents={"list": [{"id": "main"}, {"id": "ops", "name": "Ops"}]})
        after = [a["id"] for a in ok(self.client, "agents.list", {})["agents"]]
        self.assertNotIn("ops", before)
        self.assertEqual(after, ["main", "ops"])
        self.heartbeat_job("ops")  # the new agent has its heartbeat job

    def test_heartbeat_interval_reloads_hot(self) -> None:
        self.assertEqual(self.heartbeat_job()["schedule"]["everyMs"], 30 * 60_000)
        now = self.gw.now_ms()
        self.reload(agents={"defaults": {"heartbeat": {"every": "5m"}}})
        job = self.heartbeat_job()
        self.assertEqual(job["schedule"]["everyMs"], 5 * 60_000)
        self.assertTrue(job["enabled"])
        self.assertEqual(self.app.cron.next_wake_ms(), job["state"]["nextRunAtMs"])
        self.assertLessEqual(job["state"]["nextRunAtMs"], now + 5 * 60_000 + 3_000)

    def test_heartbeat_turned_off_by_reload_stops(self) -> None:
        self.reload(agents={"defaults": {"heartbeat": {"every": "0m"}}})
        self.assertFalse(self.heartbeat_job()["enabled"])
        self.assertIsNone(self.app.cron.next_wake_ms())

    def test_cron_disabled_and_enabled_again_by_reload(self) -> None:
        self.assertIsNotNone(self.app.cron.next_wake_ms())
        self.reload(cron={"enabled": False})
        self.assertFalse(self.app.cron.enabled)
        timer = self.app.cron._timer
        self.assertTrue(timer is None or not timer.active())
        self.reload(cron={"enabled": True})
        self.assertTrue(self.app.cron.enabled)
        self.assertTrue(self.app.cron._timer is not None and self.app.cron._timer.active())

    def test_exec_tool_follows_tools_exec_enabled(self) -> None:
        self.assertIsNone(self.app.runtime.exec_tool)
        self.reload(tools={"exec": {"enabled": True}})
        self.assertIsNotNone(self.app.runtime.exec_tool)
        self.reload(tools={"exec": {"enabled": False}})
        self.assertIsNone(self.app.runtime.exec_tool)

    def test_mdns_mode_reaches_the_advertiser(self) -> None:
        self.reload(discovery={"mdns": {"mode": "off"}})
        self.assertEqual(self.advertiser.modes[-1], "off")
