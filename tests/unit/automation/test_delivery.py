"""Cron delivery, error backoff and stagger (issue #20), on a Clock."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred, fail, succeed
from twisted.trial import unittest

from openclaw_tw.agent.models import ProviderError
from openclaw_tw.automation import delivery as dv
from openclaw_tw.automation import schedule as sched
from openclaw_tw.automation.delivery import Announcer
from tests.support.cron import ADMIN
from tests.support.cron import CronCase as Base
from tests.support.helpers import hello


class FakeAccount:
    def __init__(self) -> None:
        self.connected = True
        self.sent: list[tuple[str, str, Any]] = []
        self.error: Exception | None = None

    def deliver(self, to: str, text: str, reply_to: Any = None, thread: Any = None) -> Any:
        if self.error is not None:
            return fail(self.error)
        self.sent.append((to, text, thread))
        return succeed({"ok": True})


class FakeChannels:
    def __init__(self) -> None:
        self.accounts = {("telegram", "default"): FakeAccount()}

    def account(self, channel: str, account_id: str) -> FakeAccount | None:
        return self.accounts.get((channel, account_id))


class Delivery(Base):
    def setUp(self) -> None:
        self.start()
        self.channels = FakeChannels()
        self.tg = self.channels.accounts[("telegram", "default")]
        self.app.cron.announcer = Announcer(
            self.channels, lambda: {"telegram": {"default": {}}}, self.clock)
        self.client = hello(self.gw, scopes=ADMIN)

    def run_job(self, message: str = "count to 3", **delivery: Any) -> dict[str, Any]:
        job = self.ok(self.client, "cron.add", {
            "name": "d", "schedule": {"kind": "every", "everyMs": 3_600_000},
            "sessionTarget": "isolated", "wakeMode": "now",
            "payload": {"kind": "agentTurn", "message": message},
            **({"delivery": delivery} if delivery else {})})
        self.ok(self.client, "cron.run", {"id": job["id"], "mode": "force"})
        self.spin(25)
        return self.app.cron.jobs[job["id"]]["state"]

    def test_delivery_previews_say_where_a_run_would_deliver(self) -> None:
        """cron.add's deliveryPreview and cron.list's deliveryPreviews, as the real gateway's
        ({label, detail}), resolved as a run resolves (nothing sent)."""
        def add(**delivery: Any) -> dict[str, Any]:
            return self.ok(self.client, "cron.add", {
                "name": "p", "schedule": {"kind": "every", "everyMs": 3_600_000},
                "sessionTarget": "isolated", "wakeMode": "next-heartbeat",
                "payload": {"kind": "agentTurn", "message": "hi"},
                **({"delivery": delivery} if delivery else {})})

        cases = [
            ({"mode": "announce", "channel": "telegram", "to": "42"},
             {"label": "announce -> telegram:42", "detail": "explicit"}),
            ({"mode": "announce", "to": "42"},
             {"label": "announce -> telegram:42", "detail": "the only configured channel"}),
            ({"mode": "none"}, {"label": "not requested", "detail": "not requested"}),
            ({"mode": "announce", "channel": "irc", "to": "#x"},
             {"label": "announce -> irc:#x", "detail": "unknown channel: irc"}),
            ({}, {"label": "announce -> last",
                  "detail": "last -> no route, will fail-closed: " + dv.NO_RECIPIENT}),
            ({"mode": "webhook", "to": "https://example.invalid/h"},
             {"label": "webhook:https://example.invalid/h",
              "detail": "delivery mode 'webhook' is not supported"}),
        ]
        ids = []
        for delivery, preview in cases:
            job = add(**delivery)
            self.assertEqual(job["deliveryPreview"], preview, delivery)
            ids.append(job["id"])
        listed = self.ok(self.client, "cron.list", {})
        self.assertEqual([listed["deliveryPreviews"][i] for i in ids], [p for _, p in cases])
        self.assertNotIn("deliveryPreviews",
                         self.ok(self.client, "cron.list", {"includeDeliveryPreviews": False}))
        self.assertEqual(self.tg.sent, [])

    def test_announce_sends_the_final_text(self) -> None:
        state = self.run_job(mode="announce", channel="telegram", to="42", threadId=7)
        self.assertEqual(self.tg.sent, [("42", "1, 2, 3.", "7")])
        self.assertEqual((state["lastDelivered"], state["lastDeliveryStatus"]),
                         (True, "delivered"))

    def last_entry(self) -> dict[str, Any]:
        return self.ok(self.client, "cron.runs", {})["entries"][0]

    def test_the_run_log_entry_says_where_the_output_went(self) -> None:
        self.run_job(mode="announce", channel="telegram", to="42", threadId=7)
        entry = self.last_entry()
        self.assertEqual((entry["completionStatus"], entry["delivered"],
                          entry["deliveryStatus"]), ("succeeded", True, "delivered"))
        self.assertEqual(entry["delivery"], {
            "intended": {"channel": "telegram", "to": "42", "threadId": 7,
                         "source": "explicit"},
            "resolved": {"ok": True, "channel": "telegram", "to": "42",
                         "accountId": "default", "threadId": 7, "source": "explicit"},
            "fallbackUsed": False, "delivered": True})

    def test_an_unresolvable_target_fails_the_run(self) -> None:
        """As the real gateway (2026.9.6, captured): a delivery target that cannot be
        resolved makes the run an error with that text; its output stays the summary."""
        state = self.run_job(mode="announce", channel="irc", to="#x")
        entry = self.last_entry()
        self.assertEqual((entry["status"], entry["error"], entry["completionStatus"],
                          entry["delivered"], entry["deliveryStatus"], entry["deliveryError"],
                          entry["summary"]),
                         ("error", "unknown channel: irc", "failed", False, "not-delivered",
                          "unknown channel: irc", "1, 2, 3."))
        self.assertEqual(entry["delivery"]["resolved"], {
            "ok": False, "to": "#x", "source": "explicit", "error": "unknown channel: irc"})
        self.assertEqual((state["lastRunStatus"], state["lastError"],
                          state["consecutiveErrors"]), ("error", "unknown channel: irc", 1))

    def test_a_best_effort_delivery_to_an_unresolvable_target(self) -> None:
        self.run_job(mode="announce", channel="irc", to="#x", bestEffort=True)
        entry = self.last_entry()
        self.assertEqual((entry["status"], entry["completionStatus"], entry["deliveryStatus"],
                          entry["deliveryError"]),
                         ("ok", "succeeded", "not-delivered", "unknown channel: irc"))
        self.assertNotIn("error", entry)

    def test_an_announce_without_a_recipient_fails_the_run(self) -> None:
        self.run_job(mode="announce", channel="telegram")
        entry = self.last_entry()
        self.assertEqual((entry["status"], entry["error"]), ("error", dv.NO_RECIPIENT))
        self.assertEqual(self.tg.sent, [])

    def test_a_silent_reply_is_not_a_failure_even_without_a_target(self) -> None:
        announcer = self.app.cron.announcer
        facts = self.successResultOf(ensureDeferred(announcer.deliver(
            {"mode": "announce", "channel": "irc", "to": "#x"}, "NO_REPLY")))
        self.assertEqual((facts["lastDeliveryStatus"], facts["deliverySuppressionReason"]),
                         ("not-delivered", "silent"))
        self.assertNotIn(dv.TARGET_ERROR, facts)

    def test_channel_last_picks_the_only_channel(self) -> None:
        self.run_job(mode="announce", channel="last", to="42")
        self.assertEqual([s[0] for s in self.tg.sent], ["42"])

    def test_mode_none_is_not_requested(self) -> None:
        self.assertEqual(self.run_job(mode="none", to="42")["lastDeliveryStatus"],
                         "not-requested")
        self.assertEqual(self.tg.sent, [])

    def test_no_delivery_announces_to_the_last_route(self) -> None:
        """An isolated agent turn without a delivery announces to the last route, as the
        real gateway's: this gateway keeps no previous recipient, so the run fails."""
        state = self.run_job()
        self.assertEqual((state["lastRunStatus"], state["lastError"],
                          state["lastDeliveryStatus"]),
                         ("error", dv.NO_RECIPIENT, "not-delivered"))
        self.assertEqual(self.last_entry()["delivery"]["intended"],
                         {"channel": "last", "to": None, "source": "last"})

    def test_a_disconnected_account_is_retried_then_recorded(self) -> None:
        self.tg.connected = False
        state = self.run_job(mode="announce", channel="telegram", to="42")
        self.assertEqual(self.tg.sent, [])
        self.assertEqual((state["lastRunStatus"], state["lastDeliveryStatus"],
                          state["lastDeliveryError"]),
                         ("ok", "not-delivered", "telegram:default is not connected"))

    def test_reconnecting_in_time_delivers(self) -> None:
        self.tg.connected = False
        self.clock.callLater(3, setattr, self.tg, "connected", True)
        state = self.run_job(mode="announce", channel="telegram", to="42")
        self.assertEqual(state["lastDeliveryStatus"], "delivered")

    def test_a_failed_send_is_recorded_not_replayed(self) -> None:
        self.tg.error = ConnectionError("reset by peer")
        state = self.run_job(mode="announce", channel="telegram", to="42")
        # the send failed, not the target: the run stays ok, its delivery says why
        self.assertEqual((state["lastRunStatus"], state["lastDeliveryError"]),
                         ("ok", "reset by peer"))
        self.assertEqual(self.last_entry()["completionStatus"], "failed")
        self.assertEqual(self.tg.sent, [])

    def test_unknown_channel_and_webhook_mode_are_not_delivered(self) -> None:
        for spec in ({"channel": "irc", "to": "#x"}, {"mode": "webhook", "to": "http://x"}):
            self.assertEqual(self.run_job(**spec)["lastDeliveryStatus"], "not-delivered")


class Backoff(Base):
    def failing_job(self, schedule: dict[str, Any]) -> dict[str, Any]:
        self.start()
        self.spy_fail(ProviderError("upstream overloaded", "unknown", http_status=503))
        client = hello(self.gw, scopes=ADMIN)
        return self.ok(client, "cron.add", {
            "name": "f", "schedule": schedule, "sessionTarget": "isolated",
            "wakeMode": "now", "payload": {"kind": "agentTurn", "message": "x"}})

    def spy_fail(self, error: Exception) -> None:
        offline = self.app.runtime.registry.providers["offline"]

        class Failing:
            id, api = offline.id, offline.api

            def stream(self, *a: Any) -> Deferred[Any]:
                return fail(error)

        self.app.runtime.registry.providers["offline"] = Failing()

    def test_backoff_table(self) -> None:
        self.assertEqual([dv.error_backoff_ms(n) for n in range(7)],
                         [0, 30_000, 60_000, 300_000, 900_000, 3_600_000, 3_600_000])

    def test_recurring_errors_push_the_next_run_back(self) -> None:
        job = self.failing_job({"kind": "every", "everyMs": 10_000})
        state = self.app.cron.jobs[job["id"]]["state"]
        self.clock.advance(10)
        self.spin(1)
        self.assertEqual(state["consecutiveErrors"], 1)
        self.assertEqual(state["lastErrorReason"], "server_error")
        now = self.gw.now_ms()
        self.assertGreaterEqual(state["nextRunAtMs"], now + 29_000)  # not 10 s: 30 s

    def test_a_one_shot_transient_failure_is_retried(self) -> None:
        at = sched.normalize({"kind": "at", "at": "2099-01-01T00:00:00Z"}, 0)
        job = self.failing_job(at)
        self.ok(hello(self.gw, scopes=ADMIN), "cron.run", {"id": job["id"], "mode": "force"})
        self.spin(1)
        state = self.app.cron.jobs[job["id"]]["state"]
        self.assertTrue(self.app.cron.jobs[job["id"]]["enabled"])
        self.assertLessEqual(state["nextRunAtMs"] - self.gw.now_ms(), 30_000)

    def test_a_one_shot_permanent_failure_disables(self) -> None:
        self.start()
        self.spy_fail(ProviderError("bad key", "unknown", http_status=401))
        client = hello(self.gw, scopes=ADMIN)
        job = self.ok(client, "cron.add", {
            "name": "f", "schedule": {"kind": "at", "at": "2099-01-01T00:00:00Z"},
            "sessionTarget": "isolated", "wakeMode": "now",
            "payload": {"kind": "agentTurn", "message": "x"}})
        self.ok(client, "cron.run", {"id": job["id"], "mode": "force"})
        self.spin(1)
        self.assertFalse(self.app.cron.jobs[job["id"]]["enabled"])


class Stagger(unittest.TestCase):
    def test_top_of_hour_gets_a_fixed_offset_under_five_minutes(self) -> None:
        job = {"id": "j1", "schedule": {"kind": "cron", "expr": "0 * * * *"}}
        offset = dv.stagger_ms(job)
        self.assertTrue(0 <= offset < 300_000)
        self.assertEqual(offset, dv.stagger_ms(dict(job)))  # the same every time
        self.assertEqual(dv.stagger_ms({"id": "j1", "schedule": {
            "kind": "cron", "expr": "0 * * * *", "staggerMs": 0}}), 0)
        self.assertEqual(dv.stagger_ms({"id": "j1", "schedule": {
            "kind": "cron", "expr": "15 * * * *"}}), 0)
        self.assertLess(dv.stagger_ms({"id": "j1", "schedule": {
            "kind": "cron", "expr": "*/5 * * * *", "staggerMs": 60_000}}), 60_000)

    def test_staggered_slots_follow_the_expression(self) -> None:
        job = {"id": "j2", "schedule": {"kind": "cron", "expr": "0 * * * *"}}
        offset = dv.stagger_ms(job)
        hour = 3_600_000
        base = 1_795_000_000_000 - 1_795_000_000_000 % hour
        first = dv.staggered(sched.next_run, job, base + offset - 1)
        self.assertEqual(first, base + offset)
        self.assertEqual(dv.staggered(sched.next_run, job, first), base + hour + offset)
