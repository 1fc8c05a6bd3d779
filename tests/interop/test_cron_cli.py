"""Interop: the real ``openclaw cron list|add|runs`` against our gateway on a loopback port."""

from __future__ import annotations

from typing import Any

from tests.support.reference_cli import TOKEN, RealCLICase


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
