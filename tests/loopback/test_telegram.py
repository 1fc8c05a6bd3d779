"""The Telegram provider against a fake Bot API server (tests/support/fakes/telegram_api.py) on a
real loopback port: DM pairing → approval → agent reply, group mention gating, forum topics,
chunking, offset persistence, and the API's errors (401, 409, 429 with retry_after)."""

from __future__ import annotations

from typing import Any

import attrs
from twisted.internet import defer
from twisted.trial import unittest
from twisted.web import server

from openclaw_tw.channels.ingress import BACKLOG
from tests.support.fakes.telegram_api import FakeBotAPI
from tests.support.loopback import listen_loopback, start_gateway, stop_gateway, within

TOKEN = "123456:bot-token"
TIMEOUT_S = 20
ANN = {"id": 42, "is_bot": False, "first_name": "Ann", "username": "ann"}


def dm(text: str, message_id: int = 1) -> dict[str, Any]:
    return {"message_id": message_id, "date": 1795000000, "text": text, "from": ANN,
            "chat": {"id": 42, "type": "private"}}


def group(text: str, **extra: Any) -> dict[str, Any]:
    return {"message_id": 7, "date": 1795000000, "text": text, "from": ANN,
            "chat": {"id": -100123, "type": "supergroup", "title": "ops"}, **extra}


class TelegramAgainstFakeAPI(unittest.TestCase):
    timeout = 60

    def setUp(self) -> None:
        start_gateway(self, "tg-secret")
        self.api = FakeBotAPI(TOKEN)
        self.api_port = listen_loopback(server.Site(self.api))
        self.app.runtime.startService()

    async def tearDown(self) -> None:
        if self.app.channels.running:
            await self.app.channels.stopService()
        self.api.release_all()
        await defer.maybeDeferred(self.api_port.stopListening)
        await defer.gatherResults([c.lost for c in self.api_port.connections])
        await self.app.runtime.stopService()
        await stop_gateway(self)

    def configure(self, **cfg: Any) -> None:
        port = self.api_port.getHost().port
        tg = {"botToken": TOKEN, "apiRoot": f"http://127.0.0.1:{port}",
              "pollTimeoutSeconds": 5, "groups": {"*": {}}, **cfg}
        self.gw.settings = attrs.evolve(self.gw.settings, raw={"channels": {"telegram": tg}})

    async def start(self) -> Any:
        self.app.channels.startService()
        account = self.app.channels.account("telegram", "default")
        await within(account.when_connected(), "the bot's getMe", TIMEOUT_S)
        return account

    async def sent(self) -> dict[str, Any]:
        return await within(self.api.sent.get(), "a sendMessage", TIMEOUT_S)

    async def test_dm_pairing_then_reply(self) -> None:
        self.configure()
        await self.start()
        self.api.push(dm("hello"))
        first = await self.sent()
        self.assertEqual(first["chat_id"], "42")
        self.assertIn("Pairing code:", first["text"])
        code = first["text"].split("Pairing code: ")[1][:8]
        await self.app.dm_pairing.approve("telegram", code)
        self.api.push(dm("ping after approval", message_id=2))
        reply = await self.sent()
        self.assertEqual((reply["chat_id"], reply["reply_to_message_id"]), ("42", 2))
        self.assertIn("ping after approval", reply["text"])
        # the offset is persisted after each batch
        self.assertEqual(self.app.cursors.get("telegram", "default"), "3")

    async def test_a_cron_turn_is_announced_in_the_chat(self) -> None:
        """Issue #20: a cron agent turn's output delivered to a Telegram chat (delivery
        announce), through the real provider and the fake Bot API on loopback."""
        self.configure()
        await self.start()
        self.app.cron.startService()
        self.addCleanup(self.app.cron.stopService)
        job = {"id": "job-deliver", "name": "digest", "enabled": True, "createdAtMs": 0,
               "updatedAtMs": 0, "schedule": {"kind": "every", "everyMs": 3_600_000,
                                              "anchorMs": 0},
               "sessionTarget": "isolated", "wakeMode": "now",
               "payload": {"kind": "agentTurn", "message": "count to 3"},
               "delivery": {"mode": "announce", "channel": "telegram", "to": "42"},
               "state": {}}
        await self.app.cron.put(job, "added")
        result = await within(self.app.cron.start_run(job, "manual"), "the cron run",
                              TIMEOUT_S)
        self.assertEqual(result["status"], "ok", result)
        sent = await self.sent()
        self.assertEqual((sent["chat_id"], sent["text"]), ("42", "1, 2, 3."))
        state = self.app.cron.jobs["job-deliver"]["state"]
        self.assertEqual((state["lastDelivered"], state["lastDeliveryStatus"]),
                         (True, "delivered"))

    async def test_group_mentions_and_topics(self) -> None:
        self.configure()
        await self.start()
        self.api.push(group("just chatting"))
        self.api.push(group("@claw_bot status please", message_thread_id=55,
                            is_topic_message=True))
        reply = await self.sent()
        self.assertEqual((reply["chat_id"], reply["message_thread_id"]), ("-100123", 55))
        self.assertIn("status please", reply["text"])
        self.assertNotIn("chatting", reply["text"])

    async def test_rate_limit_and_conflict_recover(self) -> None:
        self.configure(dmPolicy="open", allowFrom=["*"])
        self.api.poll_errors = [(429, "Too Many Requests: retry after 0", {"retry_after": 0}),
                                (409, "Conflict: terminated by other getUpdates request",
                                 None)]
        account = await self.start()
        self.assertIn("conflict", await within(account.when_lost(), "the 409", TIMEOUT_S))
        await within(account.when_connected(), "the reconnect after 409", TIMEOUT_S)
        self.api.push(dm("after the storm"))
        reply = await self.sent()
        self.assertIn("after the storm", reply["text"])
        self.assertEqual(account.status()["lastError"], None)

    async def test_bad_token_is_reported_without_crashing(self) -> None:
        self.configure(botToken="999:wrong")
        self.app.channels.startService()
        account = self.app.channels.account("telegram", "default")
        self.assertIn("unauthorized", await within(account.when_lost(), "the 401", TIMEOUT_S))
        status = account.status()
        self.assertEqual((status["connected"], status["healthState"]),
                         (False, "reconnecting"))
        self.assertNotIn("999:wrong", str(status))
        self.assertTrue(self.gw.health.current()["ok"])

    async def test_restart_resumes_from_the_saved_offset(self) -> None:
        self.configure(dmPolicy="open", allowFrom=["*"])
        await self.start()
        self.api.push(dm("one"))
        await self.sent()
        await self.app.channels.stopService()
        self.api.release_all()
        self.api.offsets.clear()
        self.api.polled = defer.DeferredQueue()
        await self.start()
        await within(self.api.polled.get(), "a getUpdates after the restart", TIMEOUT_S)
        self.assertEqual(self.api.offsets[-1], 2)

    async def test_typing_shows_while_the_turn_runs(self) -> None:
        self.configure(dmPolicy="open", allowFrom=["*"])
        await self.start()
        self.api.push(dm("count to 3"))
        action = await within(self.api.actions.get(), "a sendChatAction", TIMEOUT_S)
        self.assertEqual(action, {"chat_id": "42", "action": "typing"})
        self.assertEqual((await self.sent())["text"], "1, 2, 3.")

    async def test_network_drop_reconnects_and_loses_nothing(self) -> None:
        self.configure(dmPolicy="open", allowFrom=["*"])
        self.api.drop_polls = 1
        account = await self.start()
        lost = await within(account.when_lost(), "the dropped poll", TIMEOUT_S)
        self.assertIn("getUpdates failed", lost)
        self.api.push(dm("said during the outage"))
        await within(account.when_connected(), "the reconnect", TIMEOUT_S)
        reply = await self.sent()
        self.assertIn("said during the outage", reply["text"])
        self.assertEqual(account.status()["reconnectAttempts"], 0)
        self.assertTrue(self.api.sent.pending == [] and self.api.sent.waiting == [])

    async def test_flood_is_fetched_no_faster_than_the_backlog_drains(self) -> None:
        self.configure(dmPolicy="open", allowFrom=["*"])
        n = 150
        for i in range(n):
            self.api.push(dm(f"m{i}", message_id=i + 1))
        account = await self.start()
        peak = 0
        replies = []
        for _ in range(n):
            replies.append((await self.sent())["text"])
            peak = max(peak, account.in_flight)
        self.assertEqual(sorted(replies),
                         sorted(f"[offline model] You said: m{i}" for i in range(n)))
        self.assertLessEqual(max(lim for lim in self.api.limits if lim), BACKLOG)
        self.assertLessEqual(peak, BACKLOG)
        self.assertEqual(account.refused, 0)
        self.assertEqual(self.app.cursors.get("telegram", "default"), str(n + 1))

