"""The Matrix provider against a real homeserver (Synapse, started here on a loopback port; see
tests/support/synapse.py), with a second Matrix user playing the human: DM invite → auto-join → pairing
code → approval → agent turn → reply in the DM; a group room by alias where only a mention is
answered; the homeserver killed and restarted mid-conversation (reconnect, nothing lost, no
duplicate reply); wrong credentials (truthful status, no crash loop, control plane serving); a
human flooding the bot (bounded backlog, nothing refused, a second account still answers).
Skips when Synapse is not installed (``scripts/install-synapse.sh``; ``.ci/run`` runs it)."""

from __future__ import annotations

import json
import os
import re
from typing import Any
from urllib.parse import quote

import attrs
from twisted.internet import defer, reactor
from twisted.trial import unittest

from openclaw_tw.channels.ingress import BACKLOG
from tests.support.helpers import stored_row
from tests.support.loopback import start_gateway, stop_gateway, within
from tests.support.reference_cli import reference_launcher, run_cli
from tests.support.synapse import Human, Synapse, synapse_missing

TIMEOUT_S = 30
BOT_PASSWORD = "bot-password"


class SynapseCase(unittest.TestCase):
    """A fresh Synapse with the bot's account, and our gateway (channels not yet started)."""

    timeout = 120

    async def setUp(self) -> None:
        why = synapse_missing()
        if why:
            raise unittest.SkipTest(why)
        start_gateway(self, "matrix-secret")
        self.app.runtime.startService()
        self.synapse = Synapse(self.mktemp())
        self.addCleanup(self.synapse.stop)  # also when setUp fails after this point
        await self.synapse.start()
        self.bot = await self.synapse.register("claw", BOT_PASSWORD)

    async def tearDown(self) -> None:
        if self.app.channels.running:
            await self.app.channels.stopService()
        await self.synapse.stop()
        await self.app.runtime.stopService()
        await stop_gateway(self)

    def configure(self, accounts: dict[str, dict[str, Any]] | None = None,
                  session: dict[str, Any] | None = None, **cfg: Any) -> None:
        matrix = {"homeserver": self.synapse.url, "userId": self.bot["user_id"],
                  "password": BOT_PASSWORD, "autoJoin": "always",
                  "network": {"dangerouslyAllowPrivateNetwork": True}, **cfg}
        matrix = {k: v for k, v in matrix.items() if v is not None}
        if accounts:
            matrix["accounts"] = accounts
        raw: dict[str, Any] = {"channels": {"matrix": matrix}}
        if session:
            raw["session"] = session
        self.gw.settings = attrs.evolve(self.gw.settings, raw=raw)

    async def start_channels(self, account_id: str = "default") -> Any:
        self.app.channels.startService()
        account = self.app.channels.account("matrix", account_id)
        await within(account.when_connected(), "the Matrix login and first sync", TIMEOUT_S)
        return account

    async def reply(self, human: Human, room: str) -> str:
        got_room, ev = await human.next_message(TIMEOUT_S)
        self.assertEqual(got_room, room)
        self.assertEqual(ev["sender"], self.bot["user_id"])
        return str(ev["content"]["body"])

    async def room_messages(self, human: Human, room: str) -> list[tuple[str, str]]:
        """(sender, body) of the room's messages, oldest first."""
        page = await human.call("GET", f"/rooms/{quote(room, safe='')}/messages",
                                query={"dir": "b", "limit": "1000"})
        return [(ev["sender"], ev["content"]["body"]) for ev in reversed(page["chunk"])
                if ev["type"] == "m.room.message"]

    async def bot_messages(self, human: Human, room: str) -> list[str]:
        return [body for sender, body in await self.room_messages(human, room)
                if sender == self.bot["user_id"]]


    async def all_answered(self, human: Human, room: str, n: int) -> list[str]:
        while True:
            answered = await self.bot_messages(human, room)
            if len(answered) >= n:
                return answered
            await human.sync(timeout_ms=1000)

    async def joined(self, human: Human, room: str) -> None:
        while True:
            members = await human.call("GET", f"/rooms/{quote(room, safe='')}/joined_members")
            if self.bot["user_id"] in members["joined"]:
                return
            await human.sync(timeout_ms=500)


class MatrixAgainstSynapse(SynapseCase):
    async def test_dm_pairing_then_agent_reply(self) -> None:
        self.configure(session={"dmScope": "per-channel-peer"})
        await self.start_channels()
        human = await self.synapse.human("alice")
        room = await human.create_dm(self.bot["user_id"])
        await human.say(room, "hello there")
        text = await self.reply(human, room)
        code = re.search(r"Pairing code: ([A-Z2-9]{8})", text)
        assert code is not None, text
        self.assertIn("@alice:localhost", text)
        pending = self.app.dm_pairing.pending("matrix")
        self.assertEqual([r.sender_id for r in pending], ["@alice:localhost"])
        await self.app.dm_pairing.approve("matrix", code.group(1))
        await human.say(room, "count to 3")
        self.assertEqual(await self.reply(human, room), "1, 2, 3.")
        # a password login mints a token once and the account remembers it
        cached = self.app.cursors.get("matrix:credentials", "default")
        self.assertIn("accessToken", cached)
        status = self.app.channels.account("matrix", "default").status()
        self.assertTrue(status["connected"])
        self.assertIsNotNone(status["lastInboundAt"])
        self.assertIsNotNone(status["lastOutboundAt"])
        # session.dmScope per-channel-peer: the DM partner's own session
        self.assertIsNotNone(stored_row(self.app, "agent:main:matrix:direct:@alice:localhost"))

    async def test_group_by_alias_needs_a_mention_and_access_token_auth(self) -> None:
        human = await self.synapse.human("bob")
        room = await human.create_group([self.bot["user_id"]], alias="ops")
        self.configure(password=None, userId=None, accessToken=self.bot["access_token"],
                       groups={"#ops:localhost": {}})
        account = await self.start_channels()
        self.assertEqual(account.user_id, "@claw:localhost")
        # the invite came before the bot was up: the first sync sees it, and joins
        await within(defer.ensureDeferred(self.joined(human, room)), "the bot joining the room", TIMEOUT_S)
        await human.say(room, "chatter without the bot's name")
        await human.say(room, "claw: count to 2")
        self.assertEqual(await self.reply(human, room), "1, 2.")
        self.assertEqual(await self.bot_messages(human, room), ["1, 2."])

    async def test_malformed_and_odd_events_are_skipped(self) -> None:
        self.configure(dm={"policy": "open", "allowFrom": ["*"]})
        account = await self.start_channels()
        human = await self.synapse.human("oscar")
        room = await human.create_dm(self.bot["user_id"])
        await within(defer.ensureDeferred(self.joined(human, room)), "the join", TIMEOUT_S)
        odd: list[dict[str, Any]] = [  # (Synapse itself refuses a bad body or m.mentions)
            {"msgtype": "m.notice", "body": "bots talk in notices"},
            {"msgtype": "m.image", "body": "cat.png"},
            {"msgtype": "m.text", "body": "   "},
        ]
        for i, content in enumerate(odd):
            await human.call("PUT", f"/rooms/{quote(room, safe='')}/send/m.room.message/"
                             f"odd{i}", content)
        await human.call("PUT", f"/rooms/{quote(room, safe='')}/send/org.example.custom/odd",
                         {"anything": [1, {"x": None}]})
        x = await human.say(room, "x", **{"m.relates_to": "not an object"})
        await human.say(room, "* edited", **{"m.new_content": {"msgtype": "m.text",
                                                                "body": "edited"},
                                             "m.relates_to": {"rel_type": "m.replace",
                                                              "event_id": x}})
        await human.say(room, "> <@oscar:localhost> x\n\ncount to 2",
                        **{"m.relates_to": {"m.in_reply_to": {"event_id": x}}})
        self.assertEqual(await self.reply(human, room), "[offline model] You said: x")
        self.assertEqual(await self.reply(human, room), "1, 2.")  # the reply fallback dropped
        self.assertTrue(account.status()["connected"])
        self.assertEqual(await self.bot_messages(human, room),
                         ["[offline model] You said: x", "1, 2."])

    async def test_homeserver_restart_mid_conversation(self) -> None:
        self.configure(dm={"policy": "open", "allowFrom": ["*"]})
        account = await self.start_channels()
        human = await self.synapse.human("carol")
        room = await human.create_dm(self.bot["user_id"])
        await human.say(room, "first")
        self.assertIn("You said: first", await self.reply(human, room))
        lost = account.when_lost()
        await self.synapse.kill()
        await within(lost, "the bot noticing the homeserver is gone", TIMEOUT_S)
        self.assertFalse(account.status()["connected"])
        await self.synapse.start()
        # said while the bot is still reconnecting: it must not be lost
        await human.say(room, "second")
        await within(account.when_connected(), "the reconnect", TIMEOUT_S)
        self.assertIn("You said: second", await self.reply(human, room))
        messages = await self.bot_messages(human, room)
        self.assertEqual(sorted(messages), ["[offline model] You said: first",
                                            "[offline model] You said: second"])

    async def test_wrong_password_is_reported_and_the_gateway_keeps_serving(self) -> None:
        self.configure(password="not-the-password")
        self.app.channels.startService()
        account = self.app.channels.account("matrix", "default")
        reason = await within(account.when_lost(), "the failed login", TIMEOUT_S)
        self.assertIn("login failed: M_FORBIDDEN", reason)
        status = account.status()
        self.assertEqual((status["connected"], status["running"], status["healthState"]),
                         (False, True, "reconnecting"))
        self.assertEqual(status["reconnectAttempts"], 1)
        self.assertTrue(self.gw.health.current()["ok"])

    async def test_private_homeserver_needs_the_opt_in(self) -> None:
        self.configure(network={})
        self.app.channels.startService()
        account = self.app.channels.account("matrix", "default")
        reason = await within(account.when_lost(), "the refusal", TIMEOUT_S)
        self.assertIn("dangerouslyAllowPrivateNetwork", reason)

    async def test_flood_is_bounded_and_other_accounts_keep_answering(self) -> None:
        other = await self.synapse.register("claw2", BOT_PASSWORD)
        self.configure(dm={"policy": "open", "allowFrom": ["*"]}, accounts={
            "loud": {}, "quiet": {"userId": other["user_id"]}})
        loud = await self.start_channels("loud")
        quiet = self.app.channels.account("matrix", "quiet")
        await within(quiet.when_connected(), "the second account", TIMEOUT_S)
        flooder = await self.synapse.human("mallory")
        room = await flooder.create_dm(self.bot["user_id"])
        await within(defer.ensureDeferred(self.joined(flooder, room)), "the bot joining", TIMEOUT_S)
        n = 150
        peak = [0]

        def watch() -> None:
            peak[0] = max(peak[0], loud.in_flight)

        sampler = _every(0.005, watch)
        try:
            await defer.gatherResults([defer.ensureDeferred(flooder.say(room, f"m{i}"))
                                       for i in range(n)])
            bystander = await self.synapse.human("dave")
            quiet_room = await bystander.create_dm(other["user_id"])
            await bystander.say(quiet_room, "are you there")
            self.assertIn("are you there", (await bystander.next_message(TIMEOUT_S))[1]
                          ["content"]["body"])
            replies = await within(defer.ensureDeferred(self.all_answered(flooder, room, n)),
                                   f"{n} replies", 60)
        finally:
            sampler.stop()
        # every message answered exactly once (concurrent sends have no one order: the room's
        # DAG and its sync stream may disagree), and never all of them held at once
        self.assertEqual(sorted(replies), sorted(f"[offline model] You said: m{i}"
                                                 for i in range(n)))
        self.assertLess(peak[0], n)
        self.assertGreaterEqual(peak[0], BACKLOG)  # the backlog did fill: intake paused
        self.assertEqual(loud.refused, 0)
        self.assertTrue(self.gw.health.current()["ok"])


class MatrixWithTheRealCLI(SynapseCase):
    """The real ``openclaw`` CLI against our gateway's Matrix account."""

    async def setUp(self) -> None:
        self.launcher, why = reference_launcher()
        if self.launcher is None:
            raise unittest.SkipTest(why)
        await super().setUp()

    async def openclaw(self, *args: str) -> tuple[str, int]:
        home = os.path.abspath(self.mktemp())
        os.makedirs(f"{home}/.openclaw")
        port = int(self.url.rsplit(":", 1)[1].split("/")[0])
        with open(f"{home}/.openclaw/openclaw.json", "w") as f:
            f.write(f'{{"gateway": {{"port": {port}, "auth": {{"token": "matrix-secret"}}}}}}')
        result = await run_cli(self.launcher, args, home)
        return result.out + result.err, result.code

    async def test_status_probe_and_send(self) -> None:
        self.configure(dm={"policy": "open", "allowFrom": ["*"]})
        await self.start_channels()
        human = await self.synapse.human("erin")
        room = await human.create_dm(self.bot["user_id"])
        await within(defer.ensureDeferred(self.joined(human, room)), "the join", TIMEOUT_S)
        out, code = await self.openclaw("channels", "status", "--probe")
        self.assertEqual(code, 0, out)
        self.assertIn("Matrix default: enabled, configured, running, connected", out)
        self.assertIn("works", out)  # the CLI's word for probe.ok
        params = {"channel": "matrix", "to": "@erin:localhost", "idempotencyKey": "cli-1",
                  "message": "hello from the real CLI"}
        out, code = await self.openclaw("gateway", "call", "send", "--params",
                                        json.dumps(params), "--json")
        self.assertEqual(code, 0, out)
        self.assertEqual(await self.reply(human, room), "hello from the real CLI")


class _every:
    def __init__(self, interval: float, fn: Any) -> None:
        from twisted.internet.task import LoopingCall

        self.loop = LoopingCall(fn)
        self.loop.clock = reactor
        self.loop.start(interval)

    def stop(self) -> None:
        if self.loop.running:
            self.loop.stop()
