"""Interop: the real ``openclaw cron list|add|run|runs`` against our gateway on a loopback port;
an agent turn's run-log entry (model, provider, usage) as the real CLI reads it."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from tests.support.fakes.openai_server import FakeOpenAI
from tests.support.loopback import start_gateway
from tests.support.reference_cli import TOKEN, RealCLICase, reference_launcher


class RealCronCLI(RealCLICase):
    # The interop harness (tests/support/reference_cli.py), without the CLI tests.
    async def cron(self, *args: str) -> Any:
        r = await self.openclaw("cron", *args, "--url", self.url, "--token", TOKEN, "--json")
        self.assertEqual(r.code, 0, r)
        return r

    async def test_cron_list_add_runs(self) -> None:
        listed = (await self.cron("list", "--all")).json()
        self.assertEqual([j["declarationKey"] for j in listed["jobs"]], ["heartbeat:main"])

        added = (await self.cron("add", "--name", "tea", "--at", "2030-01-01T09:00:00Z",
                                 "--system-event", "Tea time", "--session", "main")).json()
        job = added.get("job", added)
        self.assertEqual(job["schedule"]["kind"], "at")
        self.assertEqual(job["payload"], {"kind": "systemEvent", "text": "Tea time"})
        self.assertIn(job["id"], self.app.cron.jobs)

        table = await self.openclaw("cron", "list", "--url", self.url, "--token", TOKEN)
        self.assertEqual(table.code, 0, table)
        self.assertIn("heartbeat:main", table.out)
        self.assertIn("tea", table.out)

        # a one-shot that succeeds is deleted; its history stays
        ran = await self.openclaw("cron", "run", job["id"], "--url", self.url, "--token", TOKEN)
        self.assertEqual(ran.code, 0, ran)
        runs = (await self.cron("runs", "--id", job["id"])).json()
        self.assertEqual([e["status"] for e in runs["entries"]], ["ok"])
        self.assertEqual(runs["entries"][0]["summary"], "Tea time")
        self.assertEqual((runs["entries"][0]["action"], runs["entries"][0]["completionStatus"],
                          runs["entries"][0]["deliveryStatus"]),
                         ("finished", "succeeded", "not-requested"))
        self.assertNotIn(job["id"], self.app.cron.jobs)

    async def test_cron_add_with_delivery_and_stagger(self) -> None:
        """Issue #20: what the real CLI sends for --announce/--channel/--to and --stagger is
        accepted and kept: the job's delivery and its stagger window."""
        added = (await self.cron(
            "add", "--name", "digest", "--cron", "0 * * * *", "--stagger", "2m",
            "--message", "Summarise the inbox", "--session", "isolated", "--announce",
            "--channel", "telegram", "--to", "-1001234567890")).json()
        job = added.get("job", added)
        stored = self.app.cron.jobs[job["id"]]
        self.assertEqual(stored["schedule"].get("staggerMs"), 120_000, stored)
        delivery = stored.get("delivery") or {}
        self.assertEqual((delivery.get("mode"), delivery.get("channel"), delivery.get("to")),
                         ("announce", "telegram", "-1001234567890"), stored)
        exact = (await self.cron("add", "--name", "exact", "--cron", "0 * * * *", "--exact",
                                 "--system-event", "tick", "--session", "main")).json()
        self.assertEqual(self.app.cron.jobs[exact.get("job", exact)["id"]]["schedule"].get(
            "staggerMs"), 0)


    async def test_cli_job_rules_run_ids_and_run_filters(self) -> None:
        """What the real CLI sends and reads of the real gateway's rules: an isolated agent
        turn added without delivery flags announces (to the last route), an agent turn on the
        main session is refused with the real message, ``cron run`` answers the run id that
        ``cron runs`` shows, and an unknown job is the real not-found error."""
        added = (await self.cron("add", "--name", "digest", "--every", "1h", "--message",
                                 "Summarise", "--session", "isolated")).json()
        job = self.app.cron.jobs[added.get("job", added)["id"]]
        self.assertEqual(job["delivery"].get("mode"), "announce", job)

        # (``cron add`` refuses this itself: the call goes through ``gateway call``)
        refused = await self.openclaw("gateway", "call", "cron.add", "--params", json.dumps({
            "name": "bad", "schedule": {"kind": "every", "everyMs": 3_600_000},
            "sessionTarget": "main", "wakeMode": "now",
            "payload": {"kind": "agentTurn", "message": "hi"}}), "--url", self.url,
            "--token", TOKEN, "--json")
        self.assertNotEqual(refused.code, 0, refused)
        self.assertEqual(json.loads(refused.out)["error"]["message"],
                         'invalid cron.add params: main cron jobs require '
                         'payload.kind="systemEvent" or "script"')

        tea = (await self.cron("add", "--name", "tea", "--every", "1h", "--system-event",
                               "Tea time", "--session", "main")).json()
        tea_id = tea.get("job", tea)["id"]
        ran = (await self.cron("run", tea_id)).json()
        self.assertTrue(ran["runId"].startswith(f"manual:{tea_id}:"), ran)
        self.assertEqual(ran["processInstanceId"], self.app.hub.boot_id)
        runs = (await self.cron("runs", "--id", tea_id)).json()
        self.assertEqual([e["runId"] for e in runs["entries"]], [ran["runId"]])
        # the CLI's filters, each applied by our gateway
        for flags, count in ((("--run-id", ran["runId"]), 1), (("--status", "error"), 0),
                             (("--query", "TEA TIME", "--sort", "asc"), 1),
                             (("--query", "coffee"), 0),
                             (("--delivery-status", "not-requested"), 1),
                             (("--delivery-status", "delivered"), 0),
                             (("--offset", "1"), 0)):
            page = (await self.cron("runs", "--id", tea_id, *flags)).json()
            self.assertEqual((len(page["entries"]), page["total"]), (count, count) if
                             flags[0] != "--offset" else (0, 1), (flags, page))

        unknown = await self.openclaw("cron", "runs", "--id", "nope", "--url", self.url,
                                      "--token", TOKEN, "--json")
        self.assertNotEqual(unknown.code, 0, unknown)
        self.assertIn("Automation not found: nope", unknown.out + unknown.err)


class RealCronRunLog(RealCLICase):
    """An agent turn on a fake OpenAI model (provider ``fake``), run by the real CLI: its
    ``cron runs`` entry says the model, the provider and the tokens the run used."""

    timeout = 120

    def setUp(self) -> None:
        launcher, why = reference_launcher()
        if launcher is None:
            raise unittest.SkipTest(why)
        self.launcher = launcher
        start_gateway(self, TOKEN, self.config)
        self.app.runtime.startService()

    def config(self) -> dict[str, Any]:
        self.model = FakeOpenAI(reactor, api_key="sk-fake").start()
        self.addCleanup(self.model.stop)
        self.model.behave(text="Cron says hello.", usage=(1234, 56))
        return {"models": {"providers": {"fake": {
            "baseUrl": self.model.base_url, "apiKey": "sk-fake", "api": "openai-completions",
            "models": [{"id": "fake-model", "name": "Fake model", "input": ["text"],
                        "contextWindow": 128000}]}}},
            "agents": {"defaults": {"model": {"primary": "fake/fake-model"}}}}

    async def tearDown(self) -> None:
        await self.app.runtime.stopService()
        await defer.gatherResults([defer.maybeDeferred(p.close) for p in
                                   self.app.runtime.registry.providers.values()
                                   if hasattr(p, "close")])
        await super().tearDown()

    async def cron(self, *args: str) -> Any:
        r = await self.openclaw("cron", *args, "--url", self.url, "--token", TOKEN, "--json")
        self.assertEqual(r.code, 0, r)
        return r.json()

    async def test_runs_show_model_provider_and_usage(self) -> None:
        added = await self.cron("add", "--name", "tea", "--every", "1h", "--message", "Say hi",
                                "--session", "isolated", "--no-deliver")
        job_id = added.get("job", added)["id"]
        await self.cron("run", job_id)
        for _ in range(200):  # the run is enqueued: wait (20 s at most) for it to finish
            if job_id not in self.app.cron.in_flight:
                break
            await task.deferLater(reactor, 0.1, lambda: None)
        self.assertNotIn(job_id, self.app.cron.in_flight)
        [entry] = (await self.cron("runs", "--id", job_id))["entries"]
        self.assertEqual((entry["status"], entry["completionStatus"], entry["summary"],
                          entry["model"], entry["provider"], entry["usage"]),
                         ("ok", "succeeded", "Cron says hello.", "fake-model", "fake",
                          {"input_tokens": 1234, "output_tokens": 56, "total_tokens": 1290}))
        self.assertEqual((entry["delivered"], entry["deliveryStatus"]), (False, "not-requested"))
        self.assertEqual(entry["sessionKey"],
                         f"agent:main:cron:{job_id}:run:{entry['sessionId']}")
        self.assertEqual(entry["jobName"], "tea")
        # the CLI dates what it reads as the real gateway's ts, runAtMs and nextRunAtMs
        self.assertEqual({k for k in entry if k.endswith("Iso")},
                         {"tsIso", "runAtIso", "nextRunAtIso"})
        self.assertEqual(entry["ts"], entry["runAtMs"] + entry["durationMs"])
